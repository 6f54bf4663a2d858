#!/usr/bin/env bash
# End-to-end check of the local control plane:
#   READY line, CRDs listed, ownerReference garbage collection (KCM), namespace
#   deletion (KCM), RBAC denies a ServiceAccount, shutdown on stdin EOF leaves
#   no process and no data dir behind.
# usage: hack/controlplane/smoke-test.sh [CRD_PATH...]   (default: /work/shared/upstream-crds if present)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null || (cd "$HERE/../.." && pwd))"
bash "$HERE/build.sh"
BIN="$REPO/target/controlplane/controlplane"

crd_args=()
if [[ $# -gt 0 ]]; then
    for p in "$@"; do crd_args+=(--crds "$p"); done
elif [[ -d /work/shared/upstream-crds ]]; then
    crd_args+=(--crds /work/shared/upstream-crds)
fi

WORK="$(mktemp -d)"
DATA="$WORK/cp"
FIFO="$WORK/stdin"
mkfifo "$FIFO"
# Hold the write end of the control plane's stdin; closing it must stop it.
sleep 1000000 >"$FIFO" &
HOLDER=$!
"$BIN" up --data-dir "$DATA" "${crd_args[@]}" --exit-on-stdin-close --cleanup <"$FIFO" >"$WORK/out" 2>"$WORK/err" &
CP=$!
cleanup() {
    kill "$HOLDER" 2>/dev/null || true
    wait "$CP" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    echo "--- controlplane stderr:" >&2
    cat "$WORK/err" >&2
    exit 1
}

for _ in $(seq 1 1500); do
    grep -q '^READY ' "$WORK/out" && break
    kill -0 "$CP" 2>/dev/null || fail "controlplane exited before READY"
    sleep 0.2
done
line="$(head -n1 "$WORK/out")"
[[ "$line" =~ ^READY\ kubeconfig=(/[^ ]+)\ server=(https://127\.0\.0\.1:[0-9]+)\ startup=([0-9]+\.[0-9]{2})s$ ]] ||
    fail "bad READY line: $line"
export KUBECONFIG="${BASH_REMATCH[1]}"
echo "ok   READY line: $line"
k() { "$BIN" kubectl "$@"; }

ncrds="$(k get crds --no-headers | wc -l)"
echo "ok   $ncrds CRDs served"
if [[ ${#crd_args[@]} -gt 0 && -d /work/shared/upstream-crds ]]; then
    k get crd clusters.postgresql.cnpg.io >/dev/null || fail "clusters.postgresql.cnpg.io missing"
fi

# Garbage collection of an owned object (kube-controller-manager).
k create namespace smoke >/dev/null
k -n smoke create configmap owner --from-literal=a=b >/dev/null
uid="$(k -n smoke get configmap owner -o jsonpath='{.metadata.uid}')"
k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: dependent
  namespace: smoke
  ownerReferences:
  - {apiVersion: v1, kind: ConfigMap, name: owner, uid: "$uid"}
data: {x: "1"}
EOF
k -n smoke delete configmap owner --wait=false >/dev/null
start=$(date +%s%N)
for _ in $(seq 1 150); do
    k -n smoke get configmap dependent >/dev/null 2>&1 || break
    sleep 0.2
done
k -n smoke get configmap dependent >/dev/null 2>&1 && fail "dependent ConfigMap not garbage-collected"
echo "ok   dependent garbage-collected in $(((($(date +%s%N) - start)) / 1000000)) ms"

# RBAC: a ServiceAccount may not list secrets.
if k -n default get secrets --as=system:serviceaccount:default:default >/dev/null 2>"$WORK/rbac"; then
    fail "system:serviceaccount:default:default could list secrets"
fi
grep -q Forbidden "$WORK/rbac" || fail "expected Forbidden, got: $(cat "$WORK/rbac")"
echo "ok   RBAC: ServiceAccount gets 403 on secrets"

# Namespace deletion (namespace controller).
k delete namespace smoke --wait=false >/dev/null
start=$(date +%s%N)
for _ in $(seq 1 300); do
    k get namespace smoke >/dev/null 2>&1 || break
    sleep 0.2
done
k get namespace smoke >/dev/null 2>&1 && fail "namespace smoke not deleted"
echo "ok   namespace deleted in $(((($(date +%s%N) - start)) / 1000000)) ms"

# Shutdown on stdin EOF.
children="$(pgrep -P "$CP" | tr '\n' ' ')"
kill "$HOLDER"
for _ in $(seq 1 100); do
    kill -0 "$CP" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$CP" 2>/dev/null && fail "controlplane still running after stdin EOF"
sleep 0.5
for c in $children; do
    if [[ -e /proc/$c ]] && [[ "$(awk '{print $3}' "/proc/$c/stat" 2>/dev/null)" != Z ]]; then
        fail "child $c still running"
    fi
done
[[ -e "$DATA" ]] && fail "$DATA not removed"
echo "ok   stdin EOF: orchestrator and children ($children) gone, data dir removed"
echo PASS
