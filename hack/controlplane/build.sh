#!/usr/bin/env bash
# Builds the multi-call control-plane binary (etcd + kube-apiserver +
# kube-controller-manager + kubectl + orchestrator) from the official Go modules
# into $REPO/target/controlplane/controlplane.
#
# Skips the build when the binary is newer than every *.go / go.mod / go.sum /
# build.sh in hack/controlplane. FORCE=1 rebuilds unconditionally.
# Needs only Go (modules come from the Go module proxy); no C compiler.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null || (cd "$HERE/../.." && pwd))"
OUT_DIR="$REPO/target/controlplane"
BIN="$OUT_DIR/controlplane"

is_fresh() {
    [[ -x "$BIN" && "${FORCE:-0}" != 1 ]] || return 1
    local newer
    newer="$(find "$HERE" -maxdepth 1 -type f \( -name '*.go' -o -name go.mod -o -name go.sum -o -name build.sh \) \
        -newer "$BIN" -print -quit)"
    [[ -z "$newer" ]]
}
if is_fresh; then
    echo "controlplane: $BIN is up to date" >&2
    exit 0
fi

mkdir -p "$OUT_DIR"
# Several test binaries may call this script at once: build only once.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$OUT_DIR/.build.lock"
    flock 9
    if is_fresh; then
        echo "controlplane: $BIN is up to date (built concurrently)" >&2
        exit 0
    fi
fi

# Version stamped into the Kubernetes components (what /version and
# `kubectl version` report), taken from go.mod so it cannot drift.
K8S_VERSION="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2; exit }' "$HERE/go.mod")"
if [[ ! "$K8S_VERSION" =~ ^v([0-9]+)\.([0-9]+)\. ]]; then
    echo "controlplane: cannot find the k8s.io/kubernetes version in $HERE/go.mod" >&2
    exit 1
fi
MAJOR="${BASH_REMATCH[1]}"
MINOR="${BASH_REMATCH[2]}"
LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    LDFLAGS+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$MAJOR -X $pkg.gitMinor=$MINOR -X $pkg.gitTreeState=clean"
done

echo "controlplane: building $BIN (k8s.io/kubernetes $K8S_VERSION, $(go env GOVERSION))..." >&2
start=$(date +%s)
trap 'rm -f "$BIN.tmp.$$"' EXIT
(
    cd "$HERE"
    CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "$LDFLAGS" -o "$BIN.tmp.$$" .
)
end=$(date +%s)
# Stamp the binary with the build *start* time: a source edited during the
# build is then newer than the binary and triggers the next build.
touch -d "@$start" "$BIN.tmp.$$"
mv -f "$BIN.tmp.$$" "$BIN" # atomic: running control planes keep their (old) inode
echo "controlplane: built $BIN ($(du -h "$BIN" | cut -f1)) in $((end - start))s" >&2
