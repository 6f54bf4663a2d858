#!/usr/bin/env bash
# The quickstart: builds everything, starts a local Kubernetes control plane
# (real etcd + kube-apiserver + kube-controller-manager) with our CRDs and the
# upstream engine CRDs, applies the samples and runs the operator against it
# until Ctrl-C. State lives in .dev/ (removed on exit).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
upstream=${DBAAS_UPSTREAM_CRDS:-$repo/../shared/upstream-crds}
dev="$repo/.dev"
cp_bin="$repo/target/controlplane/controlplane"

bash hack/ensure-tools.sh
bash hack/controlplane/build.sh
cargo build --locked -p dbaas-operator

rm -rf "$dev" && mkdir -p "$dev"
crd_args=(--crds "$repo/deploy/crds")
[[ -d "$upstream" ]] && crd_args+=(--crds "$upstream") || echo "dev: $upstream not found: engine CRDs not installed" >&2

# The control plane shuts itself down when this script's pipe to it closes.
coproc CONTROLPLANE { exec "$cp_bin" up --data-dir "$dev/controlplane" "${crd_args[@]}" --exit-on-stdin-close --cleanup; }
operator_pid=""
cleanup() {
  [[ -n "$operator_pid" ]] && kill "$operator_pid" 2>/dev/null && wait "$operator_pid" 2>/dev/null
  exec {CONTROLPLANE[1]}>&- 2>/dev/null || true
  wait "$CONTROLPLANE_PID" 2>/dev/null || true
  rm -rf "$dev"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ready=""
while IFS= read -r line <&"${CONTROLPLANE[0]}"; do
  if [[ "$line" == READY* ]]; then ready=$line; break; fi
done
[[ -n "$ready" ]] || { echo "dev: the control plane did not start" >&2; exit 1; }
kubeconfig=$(sed -E 's/.*kubeconfig=([^ ]+).*/\1/' <<<"$ready")
cp "$kubeconfig" "$dev/kubeconfig"
export KUBECONFIG="$dev/kubeconfig"
echo "dev: $ready"

"$cp_bin" kubectl apply -f deploy/samples/postgresql-engine.yaml -f deploy/samples/postgresql-cluster.yaml

RUST_LOG=${RUST_LOG:-info} "$repo/target/debug/dbaas-operator" &
operator_pid=$!

cat <<MSG

  dbaas-operator is running against a local control plane. In another shell:

    export KUBECONFIG=$dev/kubeconfig
    alias kubectl='$cp_bin kubectl'
    kubectl get dbaas
    kubectl get clusters.postgresql.cnpg.io my-postgres -o yaml

  Ctrl-C stops the operator and the control plane.

MSG
wait "$operator_pid"
