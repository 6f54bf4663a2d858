#!/usr/bin/env bash
# The quickstart: builds everything, starts a local Kubernetes control plane
# (real etcd + kube-apiserver + kube-controller-manager, and a real node with
# CloudNativePG where the machine can run one) with our CRDs and the upstream
# engine CRDs, applies the samples, and runs the operator and dbaas-server
# (the REST API and the web console) against it until Ctrl-C. State lives in
# .dev/ (removed on exit).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
upstream=$(bash hack/upstream-crds.sh || true)
dev="$repo/.dev"
cp_bin="$repo/target/controlplane/controlplane"

bash hack/ensure-tools.sh
bash hack/controlplane/build.sh
# The console's assets are embedded into dbaas-server when it compiles.
bash hack/ensure-console.sh
cargo build --locked -p dbaas-operator -p dbaas-server

rm -rf "$dev" && mkdir -p "$dev"

# The node: kubelet, containerd, CNI, kube-proxy, CoreDNS and the real
# CloudNativePG operator, with images built from Debian's packages. If the
# machine cannot run it, say what is missing and go on without a node
# (engine objects are then created but no database runs).
node_args=()
node_out=""
if [[ "${DBAAS_NO_NODE:-0}" == 1 ]]; then
  echo "dev: DBAAS_NO_NODE=1: no node" >&2
elif ! bash hack/node/ensure-node-tools.sh; then
  echo "dev: the node cannot run on this machine (see above): continuing without a node" >&2
elif ! node_out=$(bash hack/node/build.sh); then
  echo "dev: building the node's images and operators failed (see above): continuing without a node" >&2
  node_out=""
else
  node_args=(--node --coredns "$(awk '$1 == "COREDNS" { print $2 }' <<<"$node_out")" --startup-timeout 5m)
  while read -r _ _ archive; do node_args+=(--image "$archive"); done < <(grep '^IMAGE ' <<<"$node_out")
fi

crd_args=(--crds "$repo/deploy/crds")
if [[ -d "$upstream" ]]; then
  for dir in "$upstream"/*/; do
    # With a node, CloudNativePG's and mariadb-operator's own CRDs come with
    # their manifests, at the versions that run.
    [[ -n "$node_out" && "$(basename "$dir")" =~ ^(cloudnative-pg|mariadb-operator)$ ]] && continue
    crd_args+=(--crds "$dir")
  done
else
  echo "dev: $upstream not found: engine CRDs not installed" >&2
fi

# The control plane shuts itself down when this script's pipe to it closes.
coproc CONTROLPLANE { exec "$cp_bin" up --data-dir "$dev/controlplane" "${crd_args[@]}" "${node_args[@]}" --exit-on-stdin-close --cleanup; }
operator_pid=""
server_pid=""
postgres_in=""
cleanup() {
  [[ -n "${port_forward_pid:-}" ]] && kill "$port_forward_pid" 2>/dev/null
  # A process stopped by a signal makes `wait` fail: not a reason to stop cleaning up.
  [[ -n "$server_pid" ]] && { kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; }
  [[ -n "$operator_pid" ]] && { kill "$operator_pid" 2>/dev/null; wait "$operator_pid" 2>/dev/null || true; }
  [[ -n "${postgres_in:-}" ]] && { exec {postgres_in}>&- 2>/dev/null || true; wait "${postgres_pid:-}" 2>/dev/null || true; }
  # bash unsets a coproc's variables once it has exited.
  if [[ -n "${CONTROLPLANE[1]:-}" ]]; then exec {CONTROLPLANE[1]}>&- 2>/dev/null || true; fi
  [[ -n "${CONTROLPLANE_PID:-}" ]] && wait "$CONTROLPLANE_PID" 2>/dev/null || true
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

if [[ -n "$node_out" ]]; then
  # CloudNativePG from its own release manifest, running the image built here.
  version=$(awk '$1 == "CNPG_VERSION" { print $2 }' <<<"$node_out")
  manifest=$(awk '$1 == "CNPG_MANIFEST" { print $2 }' <<<"$node_out")
  image=$(awk '$1 == "CNPG_IMAGE" { print $2 }' <<<"$node_out")
  # Our image, and never a pull: no registry can be reached.
  sed -e "s#ghcr.io/cloudnative-pg/cloudnative-pg:$version#$image#g" \
    -e 's/imagePullPolicy: Always/imagePullPolicy: IfNotPresent/' "$manifest" >"$dev/cnpg.yaml"
  "$cp_bin" kubectl apply --server-side --force-conflicts -f "$dev/cnpg.yaml" >/dev/null
  "$cp_bin" kubectl -n cnpg-system rollout status deployment/cnpg-controller-manager --timeout=300s
  # The namespace's PostgreSQL versions: the images built from Debian's packages.
  images_json=$(awk '$1 == "IMAGE" && $2 ~ /\/postgresql:/ { split($2, p, ":"); printf "%s\"%s\": \"%s\"", (n++ ? ", " : ""), p[2], $2 }' <<<"$node_out")
  newest=$(awk '$1 == "IMAGE" && $2 ~ /\/postgresql:/ { split($2, p, ":"); print p[2] }' <<<"$node_out" | sort -V | tail -1)
  "$cp_bin" kubectl apply --server-side -f - <<YAML
apiVersion: dbaas.io/v1
kind: DatabaseEngine
metadata: {name: postgresql}
spec:
  type: postgresql
  images: {$images_json}
  defaultVersion: "$newest"
YAML
  "$cp_bin" kubectl apply -f hack/node/sample-postgresql.yaml
  # mariadb-operator from its own CRDs and Helm chart, running the image built
  # here; the namespace's MariaDB version: the image built from Debian's package.
  "$cp_bin" kubectl apply --server-side --force-conflicts \
    -f "$(awk '$1 == "MARIADB_OPERATOR_MANIFEST" { print $2 }' <<<"$node_out")" >/dev/null
  "$cp_bin" kubectl -n mariadb-operator rollout status deployment/mariadb-operator --timeout=300s
  mariadb_image=$(awk '$1 == "MARIADB_IMAGE" { print $2 }' <<<"$node_out")
  "$cp_bin" kubectl apply --server-side -f - <<YAML
apiVersion: dbaas.io/v1
kind: DatabaseEngine
metadata: {name: mariadb}
spec:
  type: mariadb
  images: {"${mariadb_image##*:}": "$mariadb_image"}
  defaultVersion: "${mariadb_image##*:}"
YAML
else
  "$cp_bin" kubectl apply -f deploy/samples/postgresql-engine.yaml -f deploy/samples/postgresql-cluster.yaml
fi
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
# The admin Secret says where its credentials may be sent (README: DatabaseServer).
"$cp_bin" kubectl annotate secret local-postgres-admin "dbaas.io/database-server-endpoints=$(pg_field host):$(pg_field port)"
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

RUST_LOG=${RUST_LOG:-info} "$repo/target/debug/dbaas-operator" --metrics-addr 127.0.0.1:8080 >"$dev/operator.log" 2>&1 &
operator_pid=$!
echo "dev: dbaas-operator running (log: $dev/operator.log)"

# dbaas-server: the REST API and the web console, on loopback in plain HTTP
# (bearer tokens never leave this machine). Cluster registrations live in
# dbaas-system.
"$cp_bin" kubectl create namespace dbaas-system >/dev/null
server_addr=${DBAAS_SERVER_LISTEN:-127.0.0.1:8443}
RUST_LOG=${RUST_LOG:-info} "$repo/target/debug/dbaas-server" --listen "$server_addr" --insecure-plain-http \
  >"$dev/server.log" 2>&1 &
server_pid=$!
# A user to sign in as: everything of dbaas.io in the default namespace, the
# clusters' Secrets, and the nodes' capacity for the create wizard.
"$cp_bin" kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: ServiceAccount
metadata: {name: console-admin, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: console-admin, namespace: default}
rules:
- {apiGroups: [dbaas.io], resources: ["*"], verbs: ["*"]}
- {apiGroups: [""], resources: [secrets], verbs: [get]}
- {apiGroups: [""], resources: [events], verbs: [list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: console-admin, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: console-admin}
subjects: [{kind: ServiceAccount, name: console-admin, namespace: default}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: dev-console-nodes}
rules: [{apiGroups: [""], resources: [nodes], verbs: [list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: dev-console-nodes}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: dev-console-nodes}
subjects: [{kind: ServiceAccount, name: console-admin, namespace: default}]
YAML
console_token=$("$cp_bin" kubectl -n default create token console-admin --duration=24h)
for _ in $(seq 1 300); do
  curl -sf "http://$server_addr/readyz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { echo "dev: dbaas-server exited; see $dev/server.log" >&2; exit 1; }
  sleep 0.1
done
echo "dev: dbaas-server running (log: $dev/server.log)"

if [[ -n "$node_out" ]]; then
  echo "dev: waiting for local-postgres to be Ready (CloudNativePG runs initdb, then PostgreSQL)..."
  if "$cp_bin" kubectl wait databasecluster/local-postgres --for=jsonpath='{.status.phase}'=Ready --timeout=600s; then
    # A port on this machine's loopback, forwarded through the API server and
    # kubelet to the read-write Service.
    "$cp_bin" kubectl port-forward svc/local-postgres-rw 15432:5432 >"$dev/port-forward.log" 2>&1 &
    port_forward_pid=$!
    password=$("$cp_bin" kubectl get secret local-postgres-superuser -o jsonpath='{.data.password}' | base64 -d)
    for _ in $(seq 1 50); do grep -q Forwarding "$dev/port-forward.log" && break; sleep 0.1; done
    echo "dev: psql postgresql://postgres:***@127.0.0.1:15432/postgres -c 'select version()'"
    PGPASSWORD=$password psql -h 127.0.0.1 -p 15432 -U postgres -d postgres -c 'select version()' || true
  else
    echo "dev: local-postgres is not Ready yet; see: kubectl get databasecluster local-postgres -o yaml" >&2
  fi
fi

cat <<MSG

  The web console:  http://$server_addr/console/
  Sign in with this token (namespace: default), valid for 24 hours:

$console_token

  dbaas-operator and dbaas-server are running against a local control plane.
  In another shell:

    export KUBECONFIG=$dev/kubeconfig
    alias kubectl='$cp_bin kubectl'
    kubectl get dbaas
    kubectl get clusters.postgresql.cnpg.io -o yaml
    kubectl get pods -o wide                       # with a node: the PostgreSQL pods
    dbaasctl cluster connect-string local-postgres # with a node; psql on 127.0.0.1:15432 (port-forward)
    kubectl get dbclaim orders -o yaml             # a database on the local PostgreSQL
    kubectl get secret orders-db -o jsonpath='{.data.DATABASE_DSN}' | base64 -d
    curl -s localhost:8080/metrics | grep dbaas_claim
    curl -s -H "Authorization: Bearer \$TOKEN" http://$server_addr/v1/namespaces/default/databaseclusters

  Ctrl-C stops the server, the operator and the control plane.

MSG
wait "$operator_pid"
