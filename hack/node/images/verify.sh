#!/usr/bin/env bash
# Checks the images of build.sh the way the node uses them, with a throwaway
# containerd that clashes with nothing else on the machine:
#   - its own network namespace (ip netns), root/state/socket in a temp dir,
#     CRI plugin disabled (only the content store, snapshotter and runc shim
#     are needed), its own runc root;
#   - every archive imported with `ctr -n k8s.io images import` and looked up
#     by name in `ctr images ls`;
#   - each PostgreSQL image run once as its image user (26): initdb with
#     CloudNativePG's default options, server start, psql, pg_controldata,
#     pg_isready, stop;
#   - pause: started, sent SIGTERM, must exit 0;
#   - the operator image (with --cnpg-manager): `/manager version`, the
#     architectures the operator detects (`/manager debug show-architectures`),
#     and what the instance pods' init container runs,
#     `/manager bootstrap /controller/manager`.
# Everything it started is stopped and removed on exit.
#
#   bash hack/node/images/verify.sh [build.sh arguments...]
# Needs root, containerd + ctr (Debian's containerd package), runc, iproute2.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { echo "verify: $*" >&2; }
die() {
    echo "verify: error: $*" >&2
    exit 1
}
for tool in containerd ctr runc ip nsenter; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (apt-get install -y containerd runc iproute2 util-linux)"
done
[[ "$(id -u)" == 0 ]] || die "must run as root"

# The images (build.sh prints `IMAGE <name> <archive>`; cached ones cost nothing).
mapfile -t LINES < <(bash "$HERE/build.sh" "$@" | awk '$1 == "IMAGE"')
[[ ${#LINES[@]} -gt 0 ]] || die "build.sh reported no image"

NETNS="${VERIFY_NETNS:-img-test}"
ip netns list | awk '{print $1}' | grep -qx "$NETNS" && die "network namespace $NETNS already exists (another verify running?)"
T="$(mktemp -d /tmp/img-test.XXXXXX)"
SOCK="$T/containerd.sock"
CTR=(ctr --address "$SOCK" -n k8s.io)
CONTAINERD_PID=""
# containerd 1.6 puts shim sockets in /run/containerd/s and ctr its fifos in
# /run/containerd/fifo whatever the config says; remove those directories
# afterwards only if this run created them (and only when empty).
RUN_CONTAINERD_EXISTED=0
[[ ! -e /run/containerd ]] || RUN_CONTAINERD_EXISTED=1

cleanup() {
    local rc=$? pid mnt
    set +e
    if [[ -n "$CONTAINERD_PID" ]]; then
        # Shims of our containerd (started with -address $SOCK) outlive it:
        # stop them by pid, then containerd itself.
        for pid in $(pgrep -f -- "-address $SOCK( |$)"); do kill "$pid" 2>/dev/null; done
        kill "$CONTAINERD_PID" 2>/dev/null
        wait "$CONTAINERD_PID" 2>/dev/null
    fi
    ip netns del "$NETNS" 2>/dev/null
    while read -r mnt; do umount -l "$mnt"; done < <(awk -v d="$T/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
    rm -rf --one-file-system "$T"
    [[ $RUN_CONTAINERD_EXISTED == 1 ]] || rmdir /run/containerd/s /run/containerd/fifo /run/containerd 2>/dev/null
    if [[ $rc == 0 ]]; then log "OK"; else log "FAILED (exit $rc)"; fi
    exit $rc
}
trap cleanup EXIT

ip netns add "$NETNS"
ip netns exec "$NETNS" ip link set lo up
mkdir -p "$T/root" "$T/state" "$T/opt" "$T/runc"
cat >"$T/config.toml" <<EOF
version = 2
root = "$T/root"
state = "$T/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$SOCK"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$T/opt"
EOF
log "starting containerd ($(containerd --version | awk '{print $3}')) in netns $NETNS, socket $SOCK"
# nsenter --net, not `ip netns exec`: the latter also makes a mount namespace
# with a fresh /sys, which hides /sys/fs/cgroup from containerd and runc
# ("runc create failed: no cgroup mount found in mountinfo").
nsenter --net="/run/netns/$NETNS" containerd --config "$T/config.toml" >"$T/containerd.log" 2>&1 &
CONTAINERD_PID=$!
for _ in $(seq 1 100); do
    "${CTR[@]}" version >/dev/null 2>&1 && break
    kill -0 "$CONTAINERD_PID" 2>/dev/null || { tail -20 "$T/containerd.log" >&2; die "containerd exited"; }
    sleep 0.1
done
"${CTR[@]}" version >/dev/null || die "containerd did not answer on $SOCK"

run() { # echo a command, then run it
    echo "+ $*" >&2
    "$@"
}

for line in "${LINES[@]}"; do
    read -r _ name archive <<<"$line"
    start=$(date +%s%N)
    run "${CTR[@]}" images import "$archive"
    log "imported $name in $((($(date +%s%N) - start) / 1000000)) ms"
done
run "${CTR[@]}" images ls
NAMES="$("${CTR[@]}" images ls -q)" # captured: grep -q in a pipe would SIGPIPE ctr
for line in "${LINES[@]}"; do
    read -r _ name _ <<<"$line"
    grep -qx "$name" <<<"$NAMES" || die "$name is not in ctr images ls"
done

RUN=("${CTR[@]}" run --rm --runc-root "$T/runc")
n=0
for line in "${LINES[@]}"; do
    read -r _ name _ <<<"$line"
    n=$((n + 1))
    case "$name" in
    localhost/dbaas/postgresql:*)
        # CloudNativePG runs: initdb --username postgres -D PGDATA
        # --encoding=UTF8 --lc-collate=C --lc-ctype=C (its defaults).
        log "running $name as its image user"
        # shellcheck disable=SC2016 # expanded by the container's bash
        run "${RUN[@]}" "$name" "verify-pg-$n" bash -c '
            set -euo pipefail
            echo "id: $(id)"; echo "PATH=$PATH"; echo "initdb: $(command -v initdb)"
            initdb --username postgres -D /tmp/x --encoding=UTF8 --lc-collate=C --lc-ctype=C >/tmp/initdb.log 2>&1 ||
                { cat /tmp/initdb.log; exit 1; }
            tail -n 3 /tmp/initdb.log
            pg_ctl -D /tmp/x -l /tmp/server.log -o "-c listen_addresses=localhost -k /tmp" -w start
            psql -h /tmp -U postgres -Atc "select version()"
            psql -h localhost -U postgres -Atc "select current_user, pg_encoding_to_char(encoding), datcollate, datctype, pg_jit_available() from pg_database where datname = current_database()"
            pg_isready -h /tmp
            pg_controldata /tmp/x | head -n 4
            pg_ctl -D /tmp/x -m fast -w stop'
        ;;
    localhost/dbaas/pause:*)
        log "running $name, then SIGTERM"
        "${RUN[@]}" "$name" "verify-pause-$n" &
        ctr_pid=$!
        for _ in $(seq 1 50); do
            "${CTR[@]}" task ls 2>/dev/null | grep "^verify-pause-$n .*RUNNING" >/dev/null && break
            if ! kill -0 "$ctr_pid" 2>/dev/null; then
                rc=0
                wait "$ctr_pid" || rc=$?
                die "pause did not start (ctr run exited $rc)"
            fi
            sleep 0.1
        done
        run "${CTR[@]}" task ls
        run "${CTR[@]}" task kill --signal SIGTERM "verify-pause-$n"
        rc=0
        wait "$ctr_pid" || rc=$?
        echo "pause exit status: $rc" >&2
        [[ $rc == 0 ]] || die "pause exited $rc on SIGTERM"
        ;;
    */cloudnative-pg:*)
        log "running $name: version, detected architectures, the init container's bootstrap"
        run "${RUN[@]}" "$name" "verify-cnpg-$n" /manager version
        # The operator finds the instance managers it can deploy as
        # operator/manager_<goarch> relative to its working directory.
        archs="$("${RUN[@]}" "$name" "verify-cnpg-arch-$n" /manager debug show-architectures)"
        echo "$archs" >&2
        grep -q '"amd64"' <<<"$archs" || die "the operator image offers no amd64 instance manager"
        mkdir -p "$T/controller"
        chmod 1777 "$T/controller"
        run "${RUN[@]}" --mount "type=bind,src=$T/controller,dst=/controller,options=rbind:rw" \
            "$name" "verify-cnpg-boot-$n" /manager bootstrap /controller/manager
        ls -l "$T/controller/manager" >&2
        [[ "$(stat -c %a "$T/controller/manager")" == 750 ]] || die "bootstrap did not install /controller/manager 0750"
        ;;
    esac
done
run "${CTR[@]}" images ls -q
