#!/usr/bin/env bash
# Builds CoreDNS (the cluster DNS of the local node) from the official Go module
# pinned in hack/node/coredns/go.mod, with only the plugins main.go imports,
# into $REPO/target/node/coredns/coredns.
#
# Prints, on stdout, one line: COREDNS <path>. Progress goes to stderr.
#
# Skips the build when the binary is newer than every *.go / go.mod / go.sum /
# build.sh in hack/node/coredns. FORCE=1 rebuilds unconditionally.
# Needs only Go (modules come from the Go module proxy); no C compiler.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null || (cd "$HERE/../../.." && pwd))"
OUT_DIR="$REPO/target/node/coredns"
BIN="$OUT_DIR/coredns"
MODULE=github.com/coredns/coredns
# Never let go.mod's go line fetch another toolchain: only the local Go is used.
export GOTOOLCHAIN=local
# Go's default install place, for shells that do not have it on PATH.
command -v go >/dev/null 2>&1 || PATH="/usr/local/go/bin:$PATH"

is_fresh() {
    [[ -x "$BIN" && "${FORCE:-0}" != 1 ]] || return 1
    local newer
    newer="$(find "$HERE" -maxdepth 1 -type f \( -name '*.go' -o -name go.mod -o -name go.sum -o -name build.sh \) \
        -newer "$BIN" -print -quit)"
    [[ -z "$newer" ]]
}
if is_fresh; then
    echo "coredns: $BIN is up to date" >&2
    echo "COREDNS $BIN"
    exit 0
fi

mkdir -p "$OUT_DIR"
# Several test binaries may call this script at once: build only once.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$OUT_DIR/.build.lock"
    flock 9
    if is_fresh; then
        echo "coredns: $BIN is up to date (built concurrently)" >&2
        echo "COREDNS $BIN"
        exit 0
    fi
fi

cd "$HERE"
# (Both go.mod spellings: `require m v` and a line `m v` inside a require block.)
MOD_VERSION="$(awk -v m="$MODULE" '$1 == "require" { $1 = "" ; $0 = $0 } $1 == m && $2 ~ /^v/ { print $2; exit }' go.mod)"
if [[ ! "$MOD_VERSION" =~ ^v[0-9]+\.[0-9]+\.[0-9]+ ]]; then
    echo "coredns: cannot find the $MODULE version in $HERE/go.mod" >&2
    exit 1
fi
# CoreDNS's Makefile stamps the commit (coremain.GitCommit, shown by -version);
# the tag's commit comes from the proxy's .info record of the version.
INFO="$(go env GOMODCACHE)/cache/download/$MODULE/@v/$MOD_VERSION.info"
COMMIT=""
if [[ -r "$INFO" ]]; then
    COMMIT="$(sed -n 's/.*"Hash":"\([0-9a-f]\{7,\}\)".*/\1/p' "$INFO")"
    COMMIT="${COMMIT:0:7}"
fi
LDFLAGS="-s -w"
[[ -z "$COMMIT" ]] || LDFLAGS+=" -X $MODULE/coremain.GitCommit=$COMMIT"

echo "coredns: building $BIN (CoreDNS $MOD_VERSION, $(go env GOVERSION))..." >&2
start=$(date +%s)
trap 'rm -f "$BIN.tmp.$$"' EXIT
# CGO_ENABLED=0: a static binary, which also makes Go's own resolver read
# /etc/resolv.conf (what the forward plugin is usually pointed at).
CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "$LDFLAGS" -o "$BIN.tmp.$$" .
end=$(date +%s)
# Stamp the binary with the build *start* time: a source edited during the
# build is then newer than the binary and triggers the next build.
touch -d "@$start" "$BIN.tmp.$$"
mv -f "$BIN.tmp.$$" "$BIN" # atomic: a running DNS server keeps its (old) inode
echo "coredns: built $BIN ($(du -h "$BIN" | cut -f1)) in $((end - start))s" >&2
echo "COREDNS $BIN"
