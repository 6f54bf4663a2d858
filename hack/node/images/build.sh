#!/usr/bin/env bash
# Builds the container images the local node runs, without any registry:
# every image is made from Debian packages (mmdebstrap) or from a local static
# binary, and written as an OCI image archive that
# `ctr -n k8s.io images import ARCHIVE` loads under its name.
#
#   bash hack/node/images/build.sh [--only LIST] [--refresh] [--with-jit]
#                                  [--cnpg-manager PATH --cnpg-version VERSION]
#                                  [--mariadb-operator PATH --mariadb-operator-version VERSION]
#
# Images (LIST is a comma-separated subset of these ids; default: all that
# can be built):
#   pause           localhost/dbaas/pause:3.10            static Go pause (./pause)
#   postgresql-15   localhost/dbaas/postgresql:<15.x>     Debian 12 bookworm postgresql-15
#   postgresql-17   localhost/dbaas/postgresql:<17.x>     Debian 13 trixie postgresql-17
#   cloudnative-pg  localhost/cloudnative-pg/cloudnative-pg:<VER>  the given CNPG manager binary;
#                   built only with --cnpg-manager and --cnpg-version
#   mariadb-11.8    localhost/dbaas/mariadb:<11.8.x>      Debian 13 trixie mariadb-server (+ mariadb-backup,
#                   galera-4), with an entrypoint of ours (./mariadb/docker-entrypoint.sh)
#   mariadb-operator localhost/mariadb-operator/mariadb-operator:<VER>  the given mariadb-operator
#                   binary; built only with --mariadb-operator and --mariadb-operator-version
# The PostgreSQL tags are the upstream version (major.minor) of the Debian
# package that got installed: CloudNativePG reads the major version from the tag.
# The MariaDB tag is the upstream version (major.minor.patch) of Debian's
# mariadb-server: mariadb-operator reads major.minor from it (for the
# docker-entrypoint.sh it runs in its Galera init Job, for instance).
# The PostgreSQL images leave out LLVM JIT (llvmjit.so, its bitcode, libLLVM
# and libz3: ~160 of ~370 MB unpacked, the archive 133 -> 74 MB) unless
# --with-jit is given; PostgreSQL then runs with JIT unavailable
# (pg_jit_available() = false), as CNPG's PostgreSQL 18 minimal images do.
#
# Prints one line per image on stdout: `IMAGE <name> <archive>`; progress goes
# to stderr. Archives are cached in ${DBAAS_IMAGE_CACHE:-~/.cache/dbaas-operator/images}
# under names keyed by a hash of this script, the Go sources and the image's
# inputs (suite, mirrors, packages, the manager binary), so a second run only
# checks hashes. The Debian archive moving on (a security update) does not
# change the key: --refresh (or FORCE=1) rebuilds the selected images anyway.
#
# Needs: root (mmdebstrap creates root-owned files, uid 26 files and device
# nodes), mmdebstrap, Go (go on PATH or /usr/local/go/bin), and the Debian
# mirrors apt is configured with (read from apt at run time; override with
# DBAAS_DEBIAN_MIRROR / DBAAS_DEBIAN_SECURITY_MIRROR).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"

log() { echo "images: $*" >&2; }
die() {
    echo "images: error: $*" >&2
    exit 1
}

# Every file mtime in the layers and the images' "created" time; also
# SOURCE_DATE_EPOCH for mmdebstrap (e.g. /etc/shadow's last-change day), so the
# same packages give the same image digest. 2025-01-01T00:00:00Z.
EPOCH=1735689600
ARCH=amd64 # the only architecture this node runs; Debian and GOARCH agree on the name
PAUSE_TAG=3.10
POSTGRES_UID=26 # CloudNativePG's default postgresUID / postgresGID
# The operator image's user: CloudNativePG's Dockerfile (distroless nonroot)
# says USER 65532:65532; its release manifest overrides it with runAsUser 10001.
CNPG_UID=65532
# The MariaDB image's user (the official image's, and what mariadb-operator
# puts in the pods' securityContext); the operator image's (distroless nonroot,
# as upstream's Dockerfile).
MYSQL_UID=999
MARIADB_OPERATOR_UID=65532

# ---------------------------------------------------------------------------
# mmdebstrap hooks: build.sh calls itself, so the hooks are part of the script
# hash that keys the cache.

# Runs after the Essential packages are unpacked, before postgresql-common
# (whose postinst would create a `postgres` system user with a dynamic uid).
if [[ "${1:-}" == __essential-hook ]]; then
    root="${2:?essential hook: no chroot directory}"
    cd "$root"
    # CloudNativePG runs PostgreSQL as 26:26, its own images' postgres user is
    # uid 26. In Debian gid 26 is the static `tape` group (base-passwd), useless
    # in a container: drop it so group 26 can be `postgres`.
    sed -i '/^tape:/d' etc/group
    [[ ! -e etc/gshadow ]] || sed -i '/^tape:/d' etc/gshadow
    if awk -F: -v id="$POSTGRES_UID" '$3 == id { found = 1 } END { exit !found }' etc/passwd etc/group; then
        echo "essential hook: uid/gid $POSTGRES_UID is already taken in the chroot" >&2
        exit 1
    fi
    echo "postgres:x:$POSTGRES_UID:" >>etc/group
    echo "postgres:x:$POSTGRES_UID:$POSTGRES_UID:PostgreSQL administrator:/var/lib/postgresql:/bin/bash" >>etc/passwd
    # Shadow files exist only once `passwd` is configured (it runs pwconv then);
    # add the locked entries ourselves if they already exist.
    [[ ! -e etc/shadow ]] || echo "postgres:*:$((EPOCH / 86400)):0:99999:7:::" >>etc/shadow
    [[ ! -e etc/gshadow ]] || echo "postgres:!::" >>etc/gshadow
    # No "main" cluster at package installation (CNPG's images do the same):
    # the data directory is made by the instance manager on the volume.
    mkdir -p etc/postgresql-common
    printf '%s\n' '# written by hack/node/images/build.sh: no cluster at package install time' \
        'create_main_cluster = false' >etc/postgresql-common/createcluster.conf
    exit 0
fi

# Runs after the Essential packages are unpacked, before mariadb-server's
# postinst (which would create a `mysql` system user with a dynamic uid).
# mariadb-operator runs MariaDB pods as 999:999 (runAsUser/runAsGroup/fsGroup),
# the official image's mysql user and group.
if [[ "${1:-}" == __essential-hook-mariadb ]]; then
    root="${2:?essential hook: no chroot directory}"
    cd "$root"
    if awk -F: -v id="$MYSQL_UID" '$3 == id { found = 1 } END { exit !found }' etc/passwd etc/group; then
        echo "essential hook: uid/gid $MYSQL_UID is already taken in the chroot" >&2
        exit 1
    fi
    echo "mysql:x:$MYSQL_UID:" >>etc/group
    echo "mysql:x:$MYSQL_UID:$MYSQL_UID:MariaDB Server:/var/lib/mysql:/bin/false" >>etc/passwd
    [[ ! -e etc/shadow ]] || echo "mysql:*:$((EPOCH / 86400)):0:99999:7:::" >>etc/shadow
    [[ ! -e etc/gshadow ]] || echo "mysql:!::" >>etc/gshadow
    exit 0
fi

# ---------------------------------------------------------------------------
# Arguments.
ONLY=""
REFRESH="${FORCE:-0}"
WITH_JIT=0
CNPG_MANAGER=""
CNPG_VERSION=""
MDBOP_BIN=""
MDBOP_VERSION=""
while [[ $# -gt 0 ]]; do
    case "$1" in
    --only)
        ONLY="${2:?--only needs a list}"
        shift 2
        ;;
    --refresh)
        REFRESH=1
        shift
        ;;
    --with-jit)
        WITH_JIT=1
        shift
        ;;
    --cnpg-manager)
        CNPG_MANAGER="${2:?--cnpg-manager needs a path}"
        shift 2
        ;;
    --cnpg-version)
        CNPG_VERSION="${2:?--cnpg-version needs a version}"
        shift 2
        ;;
    --mariadb-operator)
        MDBOP_BIN="${2:?--mariadb-operator needs a path}"
        shift 2
        ;;
    --mariadb-operator-version)
        MDBOP_VERSION="${2:?--mariadb-operator-version needs a version}"
        shift 2
        ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$SELF" | sed '$d; s/^# \{0,1\}//' >&2
        exit 0
        ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
done
if [[ -n "$CNPG_MANAGER" || -n "$CNPG_VERSION" ]]; then
    [[ -n "$CNPG_MANAGER" && -n "$CNPG_VERSION" ]] || die "--cnpg-manager and --cnpg-version go together"
    [[ -f "$CNPG_MANAGER" ]] || die "--cnpg-manager $CNPG_MANAGER: no such file"
    CNPG_MANAGER="$(cd "$(dirname "$CNPG_MANAGER")" && pwd)/$(basename "$CNPG_MANAGER")"
    CNPG_VERSION="${CNPG_VERSION#v}" # CNPG's own image tags carry no "v"
    [[ "$CNPG_VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+.][0-9A-Za-z.-]+)?$ ]] ||
        die "--cnpg-version '$CNPG_VERSION' is not a version such as 1.27.1"
fi

if [[ -n "$MDBOP_BIN" || -n "$MDBOP_VERSION" ]]; then
    [[ -n "$MDBOP_BIN" && -n "$MDBOP_VERSION" ]] || die "--mariadb-operator and --mariadb-operator-version go together"
    [[ -f "$MDBOP_BIN" ]] || die "--mariadb-operator $MDBOP_BIN: no such file"
    MDBOP_BIN="$(cd "$(dirname "$MDBOP_BIN")" && pwd)/$(basename "$MDBOP_BIN")"
    MDBOP_VERSION="${MDBOP_VERSION#v}" # upstream's image tags carry no "v"
    [[ "$MDBOP_VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+.][0-9A-Za-z.-]+)?$ ]] ||
        die "--mariadb-operator-version '$MDBOP_VERSION' is not a version such as 25.10.2"
fi

ALL_IDS=(pause postgresql-15 postgresql-17 mariadb-11.8)
[[ -z "$CNPG_MANAGER" ]] || ALL_IDS+=(cloudnative-pg)
[[ -z "$MDBOP_BIN" ]] || ALL_IDS+=(mariadb-operator)
if [[ -n "$ONLY" ]]; then
    IFS=, read -r -a IDS <<<"$ONLY"
    for id in "${IDS[@]}"; do
        case "$id" in
        pause | postgresql-15 | postgresql-17 | mariadb-11.8) ;;
        cloudnative-pg) [[ -n "$CNPG_MANAGER" ]] || die "cloudnative-pg needs --cnpg-manager PATH --cnpg-version VERSION" ;;
        mariadb-operator) [[ -n "$MDBOP_BIN" ]] || die "mariadb-operator needs --mariadb-operator PATH --mariadb-operator-version VERSION" ;;
        *) die "unknown image id '$id' (pause, postgresql-15, postgresql-17, mariadb-11.8, cloudnative-pg, mariadb-operator)" ;;
        esac
    done
else
    IDS=("${ALL_IDS[@]}")
fi

# ---------------------------------------------------------------------------
# Prerequisites: say what is missing instead of failing half-way.
[[ "$(id -u)" == 0 ]] || die "must run as root (the rootfs holds root- and uid-$POSTGRES_UID-owned files)"
if ! command -v go >/dev/null 2>&1; then
    [[ -x /usr/local/go/bin/go ]] || die "go not found (PATH or /usr/local/go/bin)"
    PATH="$PATH:/usr/local/go/bin"
fi
needs_debian=0
for id in "${IDS[@]}"; do [[ "$id" != postgresql-* && "$id" != mariadb-1* ]] || needs_debian=1; done
if [[ "$needs_debian" == 1 ]]; then
    command -v mmdebstrap >/dev/null 2>&1 || die "mmdebstrap not found: apt-get install -y mmdebstrap"
    command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found (this script expects a Debian host)"
fi
export GOTOOLCHAIN=local CGO_ENABLED=0

CACHE="${DBAAS_IMAGE_CACHE:-$HOME/.cache/dbaas-operator/images}"
mkdir -p "$CACHE/tools" "$CACHE/work"
# One build at a time per cache (test runners may call this concurrently).
exec 9>"$CACHE/.lock"
flock 9

# Temporary directories of this run; removed on exit, mounts first.
WORKDIRS=()
safe_rm() {
    local dir="$1" mnt
    [[ -e "$dir" ]] || return 0
    # mmdebstrap unmounts /proc, /sys, /dev of the chroot itself; after a crash
    # they could remain, and rm -rf must never descend into a host mount.
    while read -r mnt; do
        umount -l "$mnt" 2>/dev/null || true
    done < <(awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
    rm -rf --one-file-system "$dir"
}
cleanup() {
    local d
    for d in "${WORKDIRS[@]}"; do safe_rm "$d"; done
}
trap cleanup EXIT
# Sets WORK (not printed: a $(...) subshell would not record it for cleanup).
new_workdir() {
    WORK="$(mktemp -d "$CACHE/work/$1.XXXXXX")"
    WORKDIRS+=("$WORK")
}

sha() { sha256sum | cut -c1-16; }
# The hash of the builder itself: this script and every Go source of its module.
TOOLS_HASH="$(cd "$HERE" && find go.mod ocitool pause -type f -name '*.go' -o -name go.mod | sort | xargs cat | sha)"
SCRIPT_HASH="$( (cat "$SELF"; echo "$TOOLS_HASH"; go env GOVERSION) | sha)"

# Builds a Go command of this module into the cache (keyed by the sources).
go_tool() {
    local pkg="$1" ldflags="${2:-}" bin
    bin="$CACHE/tools/$pkg-$( (echo "$TOOLS_HASH $ldflags"; go env GOVERSION) | sha)"
    if [[ ! -x "$bin" ]]; then
        log "building $pkg ($(go env GOVERSION))"
        (cd "$HERE" && nice -n 10 go build -trimpath -buildvcs=false -ldflags "-s -w $ldflags" -o "$bin.tmp" "./$pkg") ||
            die "go build ./$pkg failed"
        mv -f "$bin.tmp" "$bin"
        # Builds from older sources are never used again.
        find "$CACHE/tools" -maxdepth 1 -name "$pkg-*" ! -path "$bin" -delete
    fi
    echo "$bin"
}
OCITOOL="$(go_tool ocitool)"

# Cache entries: $CACHE/<id>-<key>.tar and .name (the image name, written
# last: an archive without its .name file is not a finished build).
cached() { # id key -> prints "name archive" when present
    local base="$CACHE/$1-$2"
    [[ "$REFRESH" != 1 && -s "$base.tar" && -s "$base.name" ]] || return 1
    echo "$(cat "$base.name") $base.tar"
}
finish() { # id key name: record the build, drop older builds of the same id
    local id="$1" key="$2" name="$3" old
    echo "$name" >"$CACHE/$id-$key.name.tmp"
    mv -f "$CACHE/$id-$key.name.tmp" "$CACHE/$id-$key.name"
    for old in "$CACHE/$id"-*.tar "$CACHE/$id"-*.name "$CACHE/$id"-*.log; do
        [[ -e "$old" && "$old" != "$CACHE/$id-$key".* ]] || continue
        [[ "$(basename "$old")" =~ ^$id-[0-9a-f]{16}\.(tar|name|log)$ ]] && rm -f "$old"
    done
}
report() { # "name archive" (one word each)
    local name archive
    read -r name archive <<<"$1"
    echo "IMAGE $name $archive"
}

# ---------------------------------------------------------------------------
# Debian mirrors: the ones apt uses on this host (deb822 or one-line sources),
# read through apt itself so both formats work.
debian_mirrors() {
    [[ -n "${MAIN_MIRROR:-}" ]] && return 0
    local codename targets
    codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
    # shellcheck disable=SC2016 # $(...) are apt's format fields, not shell
    targets="$(apt-get indextargets --format '$(TARGET_OF) $(IDENTIFIER) $(REPO_URI) $(RELEASE)' 2>/dev/null |
        awk '$1 == "deb" && $2 == "Packages"')" || true
    MAIN_MIRROR="${DBAAS_DEBIAN_MIRROR:-$(awk -v c="$codename" '$4 == c || $4 == "stable" || $4 == "oldstable" { print $3; exit }' <<<"$targets")}"
    SECURITY_MIRROR="${DBAAS_DEBIAN_SECURITY_MIRROR:-$(awk -v c="$codename" '$4 == c "-security" || $4 == "stable-security" || $4 == "oldstable-security" { print $3; exit }' <<<"$targets")}"
    MAIN_MIRROR="${MAIN_MIRROR%/}"
    SECURITY_MIRROR="${SECURITY_MIRROR%/}"
    [[ -n "$MAIN_MIRROR" ]] ||
        die "no Debian mirror found in apt's sources (suite '$codename'); set DBAAS_DEBIAN_MIRROR=http://.../debian"
    [[ -n "$SECURITY_MIRROR" ]] ||
        die "no Debian security mirror found in apt's sources ('$codename-security'); set DBAAS_DEBIAN_SECURITY_MIRROR=http://.../debian-security"
}

# dpkg path filters: no documentation, manual pages or translations in the
# images (PostgreSQL runs with the C locale's English messages anyway);
# copyright files stay.
DPKG_OPTS=(
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/lintian/*'
    --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-include=/usr/share/locale/locale.alias'
)
# The PostgreSQL packages' manual pages are update-alternatives masters
# (postinst fails when they are missing): they are unpacked, then deleted.
# Without JIT: PostgreSQL's JIT provider and what only it needs (the libllvm
# package's library and libz3, used by nothing else in the image). With no
# llvmjit.so PostgreSQL silently runs without JIT; with llvmjit.so but no
# libLLVM queries above jit_above_cost would fail, hence all or nothing.
NO_JIT_OPTS=(
    --dpkgopt='path-exclude=/usr/lib/postgresql/*/lib/llvmjit*'
    --dpkgopt='path-exclude=/usr/lib/postgresql/*/lib/bitcode/*'
    --dpkgopt='path-exclude=/usr/lib/*/libLLVM*'
    --dpkgopt='path-exclude=/usr/lib/llvm-*/lib/libLLVM*'
    --dpkgopt='path-exclude=/usr/lib/*/libz3.so*'
)
# Besides the server: what CloudNativePG's images add (SASL and LDAP client
# data for LDAP authentication). postgresql-M brings postgresql-client-M
# (psql, pg_basebackup, pg_dump...), locales (postgresql needs locales or
# locales-all) and tzdata.
pg_packages() { echo "postgresql-$1,libsasl2-modules,libldap-common"; }

build_postgresql() { # id suite major
    local id="$1" suite="$2" major="$3" key hit work rootfs pkgver upstream name out start
    debian_mirrors
    local sources=(
        "deb $MAIN_MIRROR $suite main"
        "deb $MAIN_MIRROR $suite-updates main"
        "deb $SECURITY_MIRROR $suite-security main"
    )
    local opts=("${DPKG_OPTS[@]}")
    [[ "$WITH_JIT" == 1 ]] || opts+=("${NO_JIT_OPTS[@]}")
    key="$( (echo "$SCRIPT_HASH $id $suite $major $ARCH $(pg_packages "$major") jit=$WITH_JIT"; printf '%s\n' "${sources[@]}") | sha)"
    if hit="$(cached "$id" "$key")"; then
        log "$id: cached ($hit)"
        report "$hit"
        return 0
    fi
    start=$(date +%s)
    new_workdir "$id"
    work="$WORK"
    rootfs="$work/rootfs"
    log "$id: mmdebstrap $suite (postgresql-$major) from $MAIN_MIRROR + $SECURITY_MIRROR; log in $CACHE/$id-$key.log"
    if ! SOURCE_DATE_EPOCH=$EPOCH nice -n 10 mmdebstrap \
        --mode=root --variant=apt --format=directory --arch="$ARCH" \
        --aptopt='Acquire::Retries "3"' \
        --include="$(pg_packages "$major")" \
        "${opts[@]}" \
        --essential-hook="bash '$SELF' __essential-hook \"\$1\"" \
        "$suite" "$rootfs" "${sources[@]}" >"$CACHE/$id-$key.log" 2>&1; then
        tail -n 30 "$CACHE/$id-$key.log" >&2
        die "$id: mmdebstrap failed (full log: $CACHE/$id-$key.log)"
    fi

    # The upstream PostgreSQL version is the Debian version without epoch and
    # revision (15.14-0+deb12u1 -> 15.14); CNPG wants <major>.<minor> in the tag.
    pkgver="$(dpkg-query --admindir="$rootfs/var/lib/dpkg" -W -f '${Version}' "postgresql-$major")" ||
        die "$id: postgresql-$major is not installed in the rootfs"
    upstream="${pkgver#*:}"
    upstream="${upstream%%-*}"
    [[ "$upstream" =~ ^$major\.[0-9]+$ ]] || die "$id: cannot read a $major.<minor> version from package version '$pkgver'"
    # ...and it is what the server binary says it is.
    chroot "$rootfs" "/usr/lib/postgresql/$major/bin/postgres" --version | grep -q " $upstream" ||
        die "$id: /usr/lib/postgresql/$major/bin/postgres --version does not report $upstream"
    # Every program the CloudNativePG instance manager runs.
    local prog
    for prog in postgres initdb pg_ctl pg_controldata pg_basebackup pg_rewind pg_isready psql pg_dump pg_restore pg_upgrade; do
        [[ -x "$rootfs/usr/lib/postgresql/$major/bin/$prog" ]] || die "$id: $prog missing from /usr/lib/postgresql/$major/bin"
    done
    [[ "$(chroot "$rootfs" id -u postgres):$(chroot "$rootfs" id -g postgres)" == "$POSTGRES_UID:$POSTGRES_UID" ]] ||
        die "$id: user postgres is not $POSTGRES_UID:$POSTGRES_UID in the rootfs"
    [[ -d "$rootfs/usr/lib/locale/C.utf8" ]] || die "$id: the C.UTF-8 locale (libc) is missing"
    if [[ "$WITH_JIT" == 1 ]]; then
        [[ -e "$rootfs/usr/lib/postgresql/$major/lib/llvmjit.so" ]] || die "$id: --with-jit but no llvmjit.so"
    else
        [[ ! -e "$rootfs/usr/lib/postgresql/$major/lib/llvmjit.so" ]] || die "$id: llvmjit.so left in the image without libLLVM"
        if compgen -G "$rootfs/usr/lib/*/libLLVM*" >/dev/null; then die "$id: libLLVM left in the image"; fi
    fi

    # Leftovers that do not belong in an image:
    # - a cluster, had createcluster.conf been ignored (the data directory is
    #   CNPG's, on the volume mounted at /var/lib/postgresql/data);
    # - ssl-cert's snakeoil key pair, generated at install time: a private key
    #   shared by every copy of the image (CNPG brings its own certificates),
    #   and its hash link;
    # - logs and caches, apt lists, the manual pages (see DPKG_OPTS).
    rm -rf "$rootfs"/etc/postgresql/*/main "$rootfs"/var/lib/postgresql/* \
        "$rootfs"/etc/ssl/private/ssl-cert-snakeoil.key "$rootfs"/etc/ssl/certs/ssl-cert-snakeoil.pem \
        "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
        "$rootfs"/var/log/* "$rootfs"/etc/hostname "$rootfs"/etc/resolv.conf \
        "$rootfs"/usr/share/postgresql/*/man "$rootfs"/usr/share/man \
        "$rootfs"/etc/passwd- "$rootfs"/etc/group- "$rootfs"/etc/shadow- "$rootfs"/etc/gshadow-
    find "$rootfs/etc/ssl/certs" -lname ssl-cert-snakeoil.pem -delete
    : >"$rootfs/etc/machine-id"
    # ucf's debconf record of the createcluster.conf prompt names a mktemp
    # file: the one byte that made two builds of the same packages differ.
    sed -i -E 's#^( NEW = /tmp/postgresql-common\.)[A-Za-z0-9]+$#\1XXXXXX#' "$rootfs/var/cache/debconf/config.dat"
    # Writable for uid 26: its home, the socket directory (Debian's layout:
    # 2775 postgres:postgres; /var/run -> /run, which mmdebstrap emptied) and /tmp.
    install -d -m 0755 -o "$POSTGRES_UID" -g "$POSTGRES_UID" "$rootfs/var/lib/postgresql"
    install -d -m 2775 -o "$POSTGRES_UID" -g "$POSTGRES_UID" "$rootfs/run/postgresql"
    chmod 1777 "$rootfs/tmp"

    name="localhost/dbaas/postgresql:$upstream"
    out="$CACHE/$id-$key.tar"
    log "$id: writing $name"
    nice -n 10 "$OCITOOL" build --rootfs "$rootfs" --name "$name" --out "$out" --mtime "$EPOCH" --arch "$ARCH" \
        --user "$POSTGRES_UID" \
        --env "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/$major/bin" \
        --cmd '["bash"]' \
        --label "org.opencontainers.image.title=PostgreSQL $upstream (Debian $suite postgresql-$major $pkgver)" \
        --label "org.opencontainers.image.version=$upstream" \
        --label "org.opencontainers.image.base.name=debian:$suite" \
        --label "io.dbaas.debian.package=postgresql-$major=$pkgver" \
        --label "io.dbaas.postgresql.jit=$([[ "$WITH_JIT" == 1 ]] && echo true || echo false)" ||
        die "$id: ocitool failed"
    finish "$id" "$key" "$name"
    safe_rm "$work"
    log "$id: built $name in $(($(date +%s) - start))s ($(du -h "$out" | cut -f1))"
    report "$name $out"
}

build_pause() {
    local id=pause key hit work bin name out start
    key="$(echo "$SCRIPT_HASH $id $PAUSE_TAG $ARCH" | sha)"
    if hit="$(cached "$id" "$key")"; then
        log "$id: cached ($hit)"
        report "$hit"
        return 0
    fi
    start=$(date +%s)
    bin="$(go_tool pause "-X main.version=$PAUSE_TAG")"
    new_workdir "$id"
    work="$WORK"
    install -d -m 0755 "$work/rootfs"
    install -m 0755 "$bin" "$work/rootfs/pause"
    name="localhost/dbaas/pause:$PAUSE_TAG"
    out="$CACHE/$id-$key.tar"
    # Like registry.k8s.io/pause: only /pause, run as 65535:65535.
    "$OCITOOL" build --rootfs "$work/rootfs" --name "$name" --out "$out" --mtime "$EPOCH" --arch "$ARCH" \
        --entrypoint '["/pause"]' --user 65535:65535 ||
        die "$id: ocitool failed"
    finish "$id" "$key" "$name"
    safe_rm "$work"
    log "$id: built $name in $(($(date +%s) - start))s ($(du -h "$out" | cut -f1))"
    report "$name $out"
}

build_cnpg() {
    local id=cloudnative-pg key hit work r name out start
    "$OCITOOL" check-static "$CNPG_MANAGER" || die "$id: $CNPG_MANAGER must be a static $ARCH binary"
    key="$( (echo "$SCRIPT_HASH $id $CNPG_VERSION $ARCH"; sha256sum <"$CNPG_MANAGER") | sha)"
    if hit="$(cached "$id" "$key")"; then
        log "$id: cached ($hit)"
        report "$hit"
        return 0
    fi
    start=$(date +%s)
    new_workdir "$id"
    work="$WORK"
    r="$work/rootfs"
    # CNPG's image layout (distroless static, nonroot): the manager at /manager,
    # WORKDIR / (`manager bootstrap` copies ./manager from the working
    # directory), world-readable so the instance pods' init container (uid 26)
    # can run `/manager bootstrap /controller/manager`.
    install -d -m 0755 "$r" "$r/etc"
    install -d -m 1777 "$r/tmp"
    install -d -m 0700 -o "$CNPG_UID" -g "$CNPG_UID" "$r/home" "$r/home/nonroot"
    chmod 0755 "$r/home"
    chown 0:0 "$r/home"
    # The operator hashes operator/manager_<arch> (relative to its working
    # directory) to know the instance manager it deploys; /manager is the
    # same file, as in CNPG's own image.
    install -d -m 0755 "$r/operator"
    install -m 0755 -o "$CNPG_UID" -g "$CNPG_UID" "$CNPG_MANAGER" "$r/operator/manager_$ARCH"
    ln -s "operator/manager_$ARCH" "$r/manager"
    printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
        'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
        "nonroot:x:$CNPG_UID:$CNPG_UID:nonroot:/home/nonroot:/sbin/nologin" >"$r/etc/passwd"
    printf '%s\n' 'root:x:0:' 'nobody:x:65534:' "nonroot:x:$CNPG_UID:" >"$r/etc/group"
    chmod 0644 "$r/etc/passwd" "$r/etc/group"
    # The repository ends in cloudnative-pg/cloudnative-pg like CNPG's own, so
    # that the DatabaseEngine recognises the operator's Deployment by it.
    name="localhost/cloudnative-pg/cloudnative-pg:$CNPG_VERSION"
    out="$CACHE/$id-$key.tar"
    "$OCITOOL" build --rootfs "$r" --name "$name" --out "$out" --mtime "$EPOCH" --arch "$ARCH" \
        --entrypoint '["/manager"]' --user "$CNPG_UID:$CNPG_UID" --workdir / \
        --label "org.opencontainers.image.version=$CNPG_VERSION" \
        --label "org.opencontainers.image.title=CloudNativePG operator $CNPG_VERSION (local build)" ||
        die "$id: ocitool failed"
    finish "$id" "$key" "$name"
    safe_rm "$work"
    log "$id: built $name in $(($(date +%s) - start))s ($(du -h "$out" | cut -f1))"
    report "$name $out"
}

# ---------------------------------------------------------------------------
# MariaDB, for mariadb-operator: Debian's mariadb-server laid out as the
# official image (library/mariadb) is, as far as the operator's pods use it.
# Besides the server: mariadb-backup (physical backups, Galera SST), galera-4
# (/usr/lib/galera/libgalera_smm.so, the operator's MARIADB_GALERA_LIB_PATH),
# socat, iproute2 (ss) and procps for the mariabackup SST script, pwgen (the
# official docker-entrypoint.sh the operator runs in its Galera init Job uses
# it), zstd and tzdata (time zone tables), as the official image has them.
mariadb_packages() { echo "mariadb-server,mariadb-client,mariadb-backup,galera-4,socat,iproute2,procps,pwgen,zstd,tzdata"; }
MARIADB_ENTRYPOINT="$HERE/mariadb/docker-entrypoint.sh"

build_mariadb() { # id suite major.minor
    local id="$1" suite="$2" series="$3" key hit work rootfs pkgver upstream name out start
    [[ -s "$MARIADB_ENTRYPOINT" ]] || die "$id: $MARIADB_ENTRYPOINT is missing"
    debian_mirrors
    local sources=(
        "deb $MAIN_MIRROR $suite main"
        "deb $MAIN_MIRROR $suite-updates main"
        "deb $SECURITY_MIRROR $suite-security main"
    )
    key="$( (echo "$SCRIPT_HASH $id $suite $series $ARCH $(mariadb_packages)"; printf '%s\n' "${sources[@]}"; sha256sum <"$MARIADB_ENTRYPOINT") | sha)"
    if hit="$(cached "$id" "$key")"; then
        log "$id: cached ($hit)"
        report "$hit"
        return 0
    fi
    start=$(date +%s)
    new_workdir "$id"
    work="$WORK"
    rootfs="$work/rootfs"
    log "$id: mmdebstrap $suite (mariadb-server) from $MAIN_MIRROR + $SECURITY_MIRROR; log in $CACHE/$id-$key.log"
    if ! SOURCE_DATE_EPOCH=$EPOCH nice -n 10 mmdebstrap \
        --mode=root --variant=apt --format=directory --arch="$ARCH" \
        --aptopt='Acquire::Retries "3"' \
        --include="$(mariadb_packages)" \
        "${DPKG_OPTS[@]}" \
        --essential-hook="bash '$SELF' __essential-hook-mariadb \"\$1\"" \
        "$suite" "$rootfs" "${sources[@]}" >"$CACHE/$id-$key.log" 2>&1; then
        tail -n 30 "$CACHE/$id-$key.log" >&2
        die "$id: mmdebstrap failed (full log: $CACHE/$id-$key.log)"
    fi

    # 1:11.8.3-0+deb13u1 -> 11.8.3: the tag mariadb-operator reads the version from.
    pkgver="$(dpkg-query --admindir="$rootfs/var/lib/dpkg" -W -f '${Version}' mariadb-server)" ||
        die "$id: mariadb-server is not installed in the rootfs"
    upstream="${pkgver#*:}"
    upstream="${upstream%%-*}"
    upstream="${upstream%%+*}"
    [[ "$upstream" =~ ^${series//./\\.}\.[0-9]+$ ]] || die "$id: cannot read a $series.<patch> version from package version '$pkgver'"
    chroot "$rootfs" mariadbd --version | grep -q "Ver $upstream-" ||
        die "$id: mariadbd --version does not report $upstream"
    # What the operator's pods and Jobs run (container probes, backup and
    # restore Jobs, the Galera init Job's entrypoint, SST).
    local prog
    for prog in mariadbd mariadb mariadb-admin mariadb-dump mariadb-backup mariadb-install-db mariadb-tzinfo-to-sql \
        mariadb-upgrade my_print_defaults wsrep_sst_mariabackup wsrep_sst_common socat ss pwgen zstd bash; do
        [[ -n "$(chroot "$rootfs" sh -c "command -v $prog")" ]] || die "$id: $prog is not on PATH in the image"
    done
    [[ -e "$rootfs/usr/lib/galera/libgalera_smm.so" ]] || die "$id: /usr/lib/galera/libgalera_smm.so is missing"
    [[ "$(chroot "$rootfs" id -u mysql):$(chroot "$rootfs" id -g mysql)" == "$MYSQL_UID:$MYSQL_UID" ]] ||
        die "$id: user mysql is not $MYSQL_UID:$MYSQL_UID in the rootfs"
    grep -q '^!includedir /etc/mysql/conf.d' "$rootfs/etc/mysql/mariadb.cnf" &&
        grep -q '^!includedir /etc/mysql/mariadb.conf.d' "$rootfs/etc/mysql/mariadb.cnf" ||
        die "$id: /etc/mysql/mariadb.cnf does not include conf.d and mariadb.conf.d (where the operator mounts its config)"

    # As the official image: the server listens on every address (Debian's
    # 50-server.cnf says bind-address = 127.0.0.1), and no config file names
    # a user (the pods run as mysql already) or a log file.
    find "$rootfs/etc/mysql" -name '*.cnf' -type f -print0 |
        xargs -0 -r sed -i -E 's/^(bind-address|user|log_error|log-error)([[:space:]]*=.*)?$/#&/'
    if grep -rqE '^(bind-address|user)[[:space:]]*=' "$rootfs/etc/mysql"; then die "$id: bind-address/user left in /etc/mysql"; fi

    # Leftovers: the system tables Debian's postinst made (the data directory
    # is the operator's volume; the entrypoint initialises it), logs, caches,
    # apt lists, the debian-sys-maint config, the snakeoil key pair if any.
    rm -rf "$rootfs"/var/lib/mysql/* "$rootfs"/var/lib/mysql/.[!.]* "$rootfs"/var/log/* \
        "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
        "$rootfs"/etc/hostname "$rootfs"/etc/resolv.conf "$rootfs"/usr/share/man \
        "$rootfs"/etc/ssl/private/ssl-cert-snakeoil.key "$rootfs"/etc/ssl/certs/ssl-cert-snakeoil.pem \
        "$rootfs"/etc/passwd- "$rootfs"/etc/group- "$rootfs"/etc/shadow- "$rootfs"/etc/gshadow-
    [[ ! -d "$rootfs/etc/ssl/certs" ]] || find "$rootfs/etc/ssl/certs" -lname ssl-cert-snakeoil.pem -delete
    : >"$rootfs/etc/machine-id"
    # Writable for mysql: the data directory (a volume in the pods), the
    # socket directory (1777 as the official image: any uid the pod runs as),
    # /tmp.
    install -d -m 0755 -o "$MYSQL_UID" -g "$MYSQL_UID" "$rootfs/var/lib/mysql"
    install -d -m 1777 -o "$MYSQL_UID" -g "$MYSQL_UID" "$rootfs/run/mysqld"
    install -d -m 0755 "$rootfs/docker-entrypoint-initdb.d"
    chmod 1777 "$rootfs/tmp"
    install -m 0755 "$MARIADB_ENTRYPOINT" "$rootfs/usr/local/bin/docker-entrypoint.sh"

    name="localhost/dbaas/mariadb:$upstream"
    out="$CACHE/$id-$key.tar"
    log "$id: writing $name"
    nice -n 10 "$OCITOOL" build --rootfs "$rootfs" --name "$name" --out "$out" --mtime "$EPOCH" --arch "$ARCH" \
        --user "$MYSQL_UID:$MYSQL_UID" \
        --env "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        --env "LANG=C.UTF-8" \
        --env "MARIADB_VERSION=$pkgver" \
        --entrypoint '["docker-entrypoint.sh"]' \
        --cmd '["mariadbd"]' \
        --label "org.opencontainers.image.title=MariaDB $upstream (Debian $suite mariadb-server $pkgver)" \
        --label "org.opencontainers.image.version=$upstream" \
        --label "org.opencontainers.image.base.name=debian:$suite" \
        --label "io.dbaas.debian.package=mariadb-server=$pkgver" ||
        die "$id: ocitool failed"
    finish "$id" "$key" "$name"
    safe_rm "$work"
    log "$id: built $name in $(($(date +%s) - start))s ($(du -h "$out" | cut -f1))"
    report "$name $out"
}

# The mariadb-operator image, laid out as upstream's Dockerfile makes it
# (gcr.io/distroless/static, the binary at /bin/mariadb-operator, WORKDIR /,
# USER 65532:65532, ENTRYPOINT ["/bin/mariadb-operator"]). Besides the operator
# Deployment, the MariaDB pods run it as their `init` container and `agent`
# sidecar (replication, Galera) and the backup/restore Jobs as their
# `mariadb-operator` container, with arguments only (`init replication ...`,
# `agent galera ...`, `backup ...`) and as the pods' uid (999): hence 0755.
build_mariadb_operator() {
    local id=mariadb-operator key hit work r name out start
    "$OCITOOL" check-static "$MDBOP_BIN" || die "$id: $MDBOP_BIN must be a static $ARCH binary"
    key="$( (echo "$SCRIPT_HASH $id $MDBOP_VERSION $ARCH"; sha256sum <"$MDBOP_BIN") | sha)"
    if hit="$(cached "$id" "$key")"; then
        log "$id: cached ($hit)"
        report "$hit"
        return 0
    fi
    start=$(date +%s)
    new_workdir "$id"
    work="$WORK"
    r="$work/rootfs"
    install -d -m 0755 "$r" "$r/etc" "$r/bin" "$r/home"
    install -d -m 1777 "$r/tmp"
    install -d -m 0700 -o "$MARIADB_OPERATOR_UID" -g "$MARIADB_OPERATOR_UID" "$r/home/nonroot"
    install -m 0755 "$MDBOP_BIN" "$r/bin/mariadb-operator"
    printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
        'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
        "nonroot:x:$MARIADB_OPERATOR_UID:$MARIADB_OPERATOR_UID:nonroot:/home/nonroot:/sbin/nologin" >"$r/etc/passwd"
    printf '%s\n' 'root:x:0:' 'nobody:x:65534:' "nonroot:x:$MARIADB_OPERATOR_UID:" >"$r/etc/group"
    chmod 0644 "$r/etc/passwd" "$r/etc/group"
    name="localhost/mariadb-operator/mariadb-operator:$MDBOP_VERSION"
    out="$CACHE/$id-$key.tar"
    "$OCITOOL" build --rootfs "$r" --name "$name" --out "$out" --mtime "$EPOCH" --arch "$ARCH" \
        --entrypoint '["/bin/mariadb-operator"]' --user "$MARIADB_OPERATOR_UID:$MARIADB_OPERATOR_UID" --workdir / \
        --label "org.opencontainers.image.version=$MDBOP_VERSION" \
        --label "org.opencontainers.image.title=mariadb-operator $MDBOP_VERSION (local build)" ||
        die "$id: ocitool failed"
    finish "$id" "$key" "$name"
    safe_rm "$work"
    log "$id: built $name in $(($(date +%s) - start))s ($(du -h "$out" | cut -f1))"
    report "$name $out"
}

for id in "${IDS[@]}"; do
    case "$id" in
    pause) build_pause ;;
    postgresql-15) build_postgresql postgresql-15 bookworm 15 ;;
    postgresql-17) build_postgresql postgresql-17 trixie 17 ;;
    cloudnative-pg) build_cnpg ;;
    mariadb-11.8) build_mariadb mariadb-11.8 trixie 11.8 ;;
    mariadb-operator) build_mariadb_operator ;;
    esac
done
