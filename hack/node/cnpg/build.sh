#!/usr/bin/env bash
# Builds the CloudNativePG operator binary (`manager`: the operator itself, and
# also the instance manager that CNPG copies into every PostgreSQL pod) from the
# official Go module pinned in hack/node/cnpg/go.mod, into
# $REPO/target/node/cnpg/manager, and copies that release's install manifest
# (releases/cnpg-<version>.yaml, shipped inside the module) beside it.
#
# Prints, on stdout, one line each: MANAGER <path>, MANIFEST <path>, VERSION <v>
# (v as CNPG spells it: no leading "v", e.g. 1.30.1). Progress goes to stderr.
#
# Skips the work when both outputs are newer than every *.go / go.mod / go.sum /
# build.sh in hack/node/cnpg. FORCE=1 rebuilds unconditionally.
# Needs only Go (modules come from the Go module proxy); no C compiler.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null || (cd "$HERE/../../.." && pwd))"
OUT_DIR="$REPO/target/node/cnpg"
BIN="$OUT_DIR/manager"
MODULE=github.com/cloudnative-pg/cloudnative-pg
# Never let go.mod's go line fetch another toolchain: only the local Go is used.
export GOTOOLCHAIN=local
# Go's default install place, for shells that do not have it on PATH.
command -v go >/dev/null 2>&1 || PATH="/usr/local/go/bin:$PATH"

# The version comes from go.mod so the binary, the manifest and the printed
# version cannot drift apart.
# (Both go.mod spellings: `require m v` and a line `m v` inside a require block.)
MOD_VERSION="$(awk -v m="$MODULE" '$1 == "require" { $1 = "" ; $0 = $0 } $1 == m && $2 ~ /^v/ { print $2; exit }' "$HERE/go.mod")"
if [[ ! "$MOD_VERSION" =~ ^v[0-9]+\.[0-9]+\.[0-9]+ ]]; then
    echo "cnpg: cannot find the $MODULE version in $HERE/go.mod" >&2
    exit 1
fi
VERSION="${MOD_VERSION#v}"
MANIFEST="$OUT_DIR/cnpg-$VERSION.yaml"

report() {
    echo "MANAGER $BIN"
    echo "MANIFEST $MANIFEST"
    echo "VERSION $VERSION"
}

is_fresh() {
    [[ -x "$BIN" && -s "$MANIFEST" && "${FORCE:-0}" != 1 ]] || return 1
    local out newer
    for out in "$BIN" "$MANIFEST"; do
        newer="$(find "$HERE" -maxdepth 1 -type f \( -name '*.go' -o -name go.mod -o -name go.sum -o -name build.sh \) \
            -newer "$out" -print -quit)"
        [[ -z "$newer" ]] || return 1
    done
}
if is_fresh; then
    echo "cnpg: $BIN is up to date" >&2
    report
    exit 0
fi

mkdir -p "$OUT_DIR"
# Several test binaries may call this script at once: build only once.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$OUT_DIR/.build.lock"
    flock 9
    if is_fresh; then
        echo "cnpg: $BIN is up to date (built concurrently)" >&2
        report
        exit 0
    fi
fi

cd "$HERE"
# The module's directory in the module cache (downloads it when missing).
MOD_DIR="$(go list -m -f '{{.Dir}}' "$MODULE")"
if [[ -z "$MOD_DIR" || ! -d "$MOD_DIR" ]]; then
    go mod download "$MODULE"
    MOD_DIR="$(go list -m -f '{{.Dir}}' "$MODULE")"
fi
SRC_MANIFEST="$MOD_DIR/releases/cnpg-$VERSION.yaml"
if [[ ! -s "$SRC_MANIFEST" ]]; then
    echo "cnpg: $SRC_MANIFEST is missing from the module" >&2
    exit 1
fi

# Stamp what CNPG's own release build stamps (.goreleaser.yml: pkg/versions
# buildVersion/buildCommit/buildDate): the tag's commit and date come from the
# proxy's .info record of the version ("Origin.Hash", "Time").
INFO="$(go env GOMODCACHE)/cache/download/$MODULE/@v/$MOD_VERSION.info"
COMMIT=none
DATE=unknown
if [[ -r "$INFO" ]]; then
    hash="$(sed -n 's/.*"Hash":"\([0-9a-f]\{7,\}\)".*/\1/p' "$INFO")"
    [[ -z "$hash" ]] || COMMIT="${hash:0:7}"
    time_="$(sed -n 's/.*"Time":"\([0-9-]\{10\}\)T.*/\1/p' "$INFO")"
    [[ -z "$time_" ]] || DATE="$time_"
fi
PKG="$MODULE/pkg/versions"
LDFLAGS="-s -w -X $PKG.buildVersion=$VERSION -X $PKG.buildCommit=$COMMIT -X $PKG.buildDate=$DATE"

echo "cnpg: building $BIN (CloudNativePG $VERSION, commit $COMMIT, $(go env GOVERSION))..." >&2
start=$(date +%s)
trap 'rm -f "$BIN.tmp.$$" "$MANIFEST.tmp.$$"' EXIT
# CGO_ENABLED=0: a static binary, as upstream ships it; the instance pods run it
# inside whatever PostgreSQL image they use.
CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "$LDFLAGS" -o "$BIN.tmp.$$" "$MODULE/cmd/manager"
# The module cache is read-only: copy with a writable mode.
install -m 0644 "$SRC_MANIFEST" "$MANIFEST.tmp.$$"
end=$(date +%s)
# Stamp the outputs with the build *start* time: a source edited during the
# build is then newer than them and triggers the next build.
touch -d "@$start" "$BIN.tmp.$$" "$MANIFEST.tmp.$$"
mv -f "$MANIFEST.tmp.$$" "$MANIFEST"
mv -f "$BIN.tmp.$$" "$BIN" # atomic: running operators keep their (old) inode
echo "cnpg: built $BIN ($(du -h "$BIN" | cut -f1)) in $((end - start))s" >&2
report
