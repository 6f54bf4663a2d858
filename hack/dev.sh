#!/usr/bin/env bash
# The quickstart: builds everything, starts a local Kubernetes control plane
# (real etcd + kube-apiserver + kube-controller-manager) with our CRDs and the
# upstream engine CRDs, applies the samples and runs the operator against it
# until Ctrl-C. State lives in .dev/ (removed on exit).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
upstream=$(bash hack/upstream-crds.sh || true)
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
postgres_in=""
cleanup() {
  [[ -n "$operator_pid" ]] && kill "$operator_pid" 2>/dev/null && wait "$operator_pid" 2>/dev/null
  [[ -n "${postgres_in:-}" ]] && { exec {postgres_in}>&- 2>/dev/null || true; wait "${postgres_pid:-}" 2>/dev/null || true; }
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
"$cp_bin" kubectl apply -f deploy/samples/backups.yaml

# A real PostgreSQL (Debian's) as an external DatabaseServer, and a claim on it.
# It stops when this script's end of the FIFO closes (bash runs one coproc at a time).
mkfifo "$dev/postgres.in"
bash hack/databases/postgres.sh --exit-on-stdin-close <"$dev/postgres.in" >"$dev/postgres.out" &
postgres_pid=$!
exec {postgres_in}>"$dev/postgres.in"
pg_ready=""
for _ in $(seq 1 300); do
  pg_ready=$(grep -m1 '^READY' "$dev/postgres.out" || true)
  [[ -n "$pg_ready" ]] && break
  kill -0 "$postgres_pid" 2>/dev/null || break
  sleep 0.1
done
[[ -n "$pg_ready" ]] || { echo "dev: PostgreSQL did not start" >&2; exit 1; }
pg_field() { sed -E "s/.* $1=([^ ]+).*/\1/" <<<"$pg_ready"; }
"$cp_bin" kubectl create secret generic local-postgres-admin \
  --from-literal=username="$(pg_field user)" --from-literal=password="$(pg_field password)"
"$cp_bin" kubectl apply -f - <<YAML
apiVersion: dbaas.io/v1
kind: DatabaseServer
metadata: {name: local-postgres, labels: {dbaas.io/instance: local}}
spec:
  engine: postgres
  host: $(pg_field host)
  port: $(pg_field port)
  sslMode: disable
  adminCredentials:
    username: {name: local-postgres-admin, key: username}
    password: {name: local-postgres-admin, key: password}
YAML
"$cp_bin" kubectl apply -f deploy/samples/database-claim.yaml

RUST_LOG=${RUST_LOG:-info} "$repo/target/debug/dbaas-operator" --metrics-addr 127.0.0.1:8080 &
operator_pid=$!

cat <<MSG

  dbaas-operator is running against a local control plane. In another shell:

    export KUBECONFIG=$dev/kubeconfig
    alias kubectl='$cp_bin kubectl'
    kubectl get dbaas
    kubectl get clusters.postgresql.cnpg.io my-postgres -o yaml
    kubectl get dbclaim orders -o yaml             # a database on the local PostgreSQL
    kubectl get secret orders-db -o jsonpath='{.data.DATABASE_DSN}' | base64 -d
    curl -s localhost:8080/metrics | grep dbaas_claim

  Ctrl-C stops the operator and the control plane.

MSG
wait "$operator_pid"
