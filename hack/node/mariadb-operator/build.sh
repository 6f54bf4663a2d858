#!/usr/bin/env bash
# Builds the mariadb-operator binary from the official Go module pinned in
# hack/node/mariadb-operator/go.mod (`cmd/controller`, as upstream's Dockerfile
# builds it: one binary that is the operator, and also its `webhook`,
# `cert-controller`, `backup`, `init` and `agent` subcommands, which the
# MariaDB pods' init containers, agent sidecars and backup Jobs run from the
# operator image) into $REPO/target/node/mariadb-operator/mariadb-operator,
# and writes that version's install manifests beside it:
#
#   crds-<v>.yaml               the module's deploy/crds/crds.yaml (every k8s.mariadb.com CRD)
#   mariadb-operator-<v>.yaml   a Namespace `mariadb-operator`, the CRDs, and the
#                               operator as the module's Helm chart
#                               (deploy/charts/mariadb-operator) renders it with
#                               `controlplane helm template`, with the webhook and
#                               the cert-controller disabled (they need
#                               cert-manager or their own certificates; nothing
#                               here does), and the images of the local node:
#                               the operator image localhost/mariadb-operator/mariadb-operator:<v>
#                               (hack/node/images, id `mariadb-operator`) and, as
#                               the default MariaDB image (RELATED_IMAGE_MARIADB),
#                               --mariadb-image NAME (default: the chart's own,
#                               which no registry-less node can pull).
#   Apply it with `kubectl apply --server-side -f` (the MariaDB CRD is too big
#   for client-side apply's annotation).
#
#   bash hack/node/mariadb-operator/build.sh [--mariadb-image NAME] [--no-manifest]
#
# Prints, on stdout, one line each: MANAGER <path>, VERSION <v> (no leading
# "v", e.g. 25.10.2), CRDS <path>, MANIFEST <path> (not with --no-manifest,
# which leaves the manifest alone: hack/node/build.sh builds the binary first,
# then the images, then the manifest naming the MariaDB image it got).
# Progress goes to stderr.
#
# The binary is rebuilt only when it is older than a *.go / go.mod / go.sum /
# build.sh here (FORCE=1 rebuilds); the manifests are rendered again (cheap)
# only when their inputs changed (they are replaced only when their content
# differs). Needs Go (modules come from the Go module proxy; no C compiler)
# and the control plane binary for helm (built by hack/controlplane/build.sh
# when missing or out of date; CONTROLPLANE=path overrides).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null || (cd "$HERE/../../.." && pwd))"
OUT_DIR="$REPO/target/node/mariadb-operator"
BIN="$OUT_DIR/mariadb-operator"
MODULE=github.com/mariadb-operator/mariadb-operator/v25
NAMESPACE=mariadb-operator
# The operator image hack/node/images/build.sh makes from $BIN (same tag as
# upstream's: the chart's appVersion, no "v").
OPERATOR_REPOSITORY=localhost/mariadb-operator/mariadb-operator
export GOTOOLCHAIN=local
command -v go >/dev/null 2>&1 || PATH="/usr/local/go/bin:$PATH"

MARIADB_IMAGE=""
NO_MANIFEST=0
while [[ $# -gt 0 ]]; do
    case "$1" in
    --mariadb-image)
        MARIADB_IMAGE="${2:?--mariadb-image needs an image name}"
        shift 2
        ;;
    --no-manifest)
        NO_MANIFEST=1
        shift
        ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
        exit 0
        ;;
    *)
        echo "mariadb-operator: unknown argument '$1' (see --help)" >&2
        exit 2
        ;;
    esac
done

MOD_VERSION="$(awk -v m="$MODULE" '$1 == "require" { $1 = "" ; $0 = $0 } $1 == m && $2 ~ /^v/ { print $2; exit }' "$HERE/go.mod")"
if [[ ! "$MOD_VERSION" =~ ^v[0-9]+\.[0-9]+\.[0-9]+ ]]; then
    echo "mariadb-operator: cannot find the $MODULE version in $HERE/go.mod" >&2
    exit 1
fi
VERSION="${MOD_VERSION#v}"
CRDS="$OUT_DIR/crds-$VERSION.yaml"
MANIFEST="$OUT_DIR/mariadb-operator-$VERSION.yaml"

report() {
    echo "MANAGER $BIN"
    echo "VERSION $VERSION"
    echo "CRDS $CRDS"
    [[ "$NO_MANIFEST" == 1 ]] || echo "MANIFEST $MANIFEST"
}

bin_fresh() {
    [[ -x "$BIN" && "${FORCE:-0}" != 1 ]] || return 1
    [[ -z "$(find "$HERE" -maxdepth 1 -type f \( -name '*.go' -o -name go.mod -o -name go.sum -o -name build.sh \) \
        -newer "$BIN" -print -quit)" ]]
}

mkdir -p "$OUT_DIR"
# Several callers may run this at once: one build at a time.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$OUT_DIR/.build.lock"
    flock 9
fi

cd "$HERE"
mod_dir() {
    local dir
    dir="$(go list -m -f '{{.Dir}}' "$MODULE" 2>/dev/null || true)"
    if [[ -z "$dir" || ! -d "$dir" ]]; then
        go mod download "$MODULE"
        dir="$(go list -m -f '{{.Dir}}' "$MODULE")"
    fi
    echo "$dir"
}
MOD_DIR="$(mod_dir)"
[[ -d "$MOD_DIR" ]] || {
    echo "mariadb-operator: $MODULE is not in the module cache" >&2
    exit 1
}

if bin_fresh; then
    echo "mariadb-operator: $BIN is up to date" >&2
else
    # Upstream's Dockerfile: CGO_ENABLED=0 go build -o mariadb-operator cmd/controller/*.go
    # (no version stamping: the operator has no version variables).
    echo "mariadb-operator: building $BIN ($MODULE $MOD_VERSION, $(go env GOVERSION))..." >&2
    start=$(date +%s)
    trap 'rm -f "$BIN.tmp.$$"' EXIT
    CGO_ENABLED=0 nice -n 10 go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$BIN.tmp.$$" "$MODULE/cmd/controller"
    end=$(date +%s)
    # Stamped with the build's start: a source edited meanwhile triggers the next build.
    touch -d "@$start" "$BIN.tmp.$$"
    mv -f "$BIN.tmp.$$" "$BIN" # atomic: running operators keep their (old) inode
    echo "mariadb-operator: built $BIN ($(du -h "$BIN" | cut -f1)) in $((end - start))s" >&2
fi

# ---------------------------------------------------------------------------
# Manifests. Rendered into temp files, moved over the old ones only when they
# differ (so their mtimes say when their content last changed).
replace_if_changed() { # tmp dest
    if [[ -s "$2" ]] && cmp -s "$1" "$2"; then
        rm -f "$1"
    else
        mv -f "$1" "$2"
        echo "mariadb-operator: wrote $2" >&2
    fi
}

SRC_CRDS="$MOD_DIR/deploy/crds/crds.yaml"
CHART="$MOD_DIR/deploy/charts/mariadb-operator"
CRDS_CHART="$MOD_DIR/deploy/charts/mariadb-operator-crds"
for f in "$SRC_CRDS" "$CHART/Chart.yaml" "$CRDS_CHART/Chart.yaml"; do
    [[ -s "$f" ]] || {
        echo "mariadb-operator: $f is missing from the module" >&2
        exit 1
    }
done
app_version="$(awk '$1 == "appVersion:" { gsub(/"/, "", $2); print $2; exit }' "$CHART/Chart.yaml")"
[[ "$app_version" == "$VERSION" ]] || {
    echo "mariadb-operator: the chart's appVersion '$app_version' is not $VERSION" >&2
    exit 1
}

tmp_crds="$CRDS.tmp.$$"
install -m 0644 "$SRC_CRDS" "$tmp_crds"
replace_if_changed "$tmp_crds" "$CRDS"
if [[ "$NO_MANIFEST" == 1 ]]; then
    report
    exit 0
fi

CONTROLPLANE="${CONTROLPLANE:-}"
if [[ -z "$CONTROLPLANE" ]]; then
    bash "$REPO/hack/controlplane/build.sh" >&2
    CONTROLPLANE="$REPO/target/controlplane/controlplane"
fi
[[ -x "$CONTROLPLANE" ]] || {
    echo "mariadb-operator: no control plane binary at $CONTROLPLANE (for helm)" >&2
    exit 1
}

work="$(mktemp -d)"
trap 'rm -rf "$work"; rm -f "$BIN.tmp.$$" "$MANIFEST.tmp.$$"' EXIT
# The module cache is read-only, and the chart's file:// dependency (the CRDs
# chart, disabled by crds.enabled=false but still checked for) must sit in its
# charts/ directory, as `helm dependency build` would put it.
cp -r "$CHART" "$work/chart"
mkdir -p "$work/chart/charts"
cp -r "$CRDS_CHART" "$work/chart/charts/mariadb-operator-crds"
chmod -R u+w "$work"
helm_args=(
    --namespace "$NAMESPACE"
    --set crds.enabled=false
    --set webhook.enabled=false
    --set certController.enabled=false
    --set "image.repository=$OPERATOR_REPOSITORY"
    --set "image.tag=$VERSION"
    --set image.pullPolicy=IfNotPresent
)
[[ -z "$MARIADB_IMAGE" ]] || helm_args+=(--set "config.mariadbImage=$MARIADB_IMAGE")
"$CONTROLPLANE" helm template mariadb-operator "$work/chart" "${helm_args[@]}" >"$work/operator.yaml"

# helm template leaves namespaced objects without metadata.namespace (helm
# install would add it): add it, so that the file applies as it is.
awk -v ns="$NAMESPACE" '
function flush(   i, namespaced) {
    namespaced = (kind ~ /^(ServiceAccount|ConfigMap|Secret|Service|Deployment|Role|RoleBinding|PodDisruptionBudget|ServiceMonitor)$/)
    for (i = 1; i <= n; i++) {
        print doc[i]
        if (namespaced && doc[i] == "metadata:" && !has_ns) print "  namespace: " ns
    }
    n = 0; kind = ""; has_ns = 0
}
/^---/ { flush(); print; next }
{ doc[++n] = $0 }
/^kind: / { kind = $2 }
/^  namespace: / { has_ns = 1 }
END { flush() }
' "$work/operator.yaml" >"$work/operator-ns.yaml"

{
    echo "# mariadb-operator $VERSION for the local node, written by hack/node/mariadb-operator/build.sh:"
    echo "# the Namespace, $MODULE@$MOD_VERSION deploy/crds/crds.yaml, and"
    echo "# deploy/charts/mariadb-operator rendered with: ${helm_args[*]}"
    echo "apiVersion: v1"
    echo "kind: Namespace"
    echo "metadata:"
    echo "  name: $NAMESPACE"
    echo "---"
    cat "$SRC_CRDS"
    echo
    cat "$work/operator-ns.yaml"
} >"$MANIFEST.tmp.$$"
chmod 0644 "$MANIFEST.tmp.$$"
replace_if_changed "$MANIFEST.tmp.$$" "$MANIFEST"
report
