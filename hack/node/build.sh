#!/usr/bin/env bash
# Builds everything the local node runs besides the control plane binary:
# the CloudNativePG operator (hack/node/cnpg), mariadb-operator
# (hack/node/mariadb-operator), CoreDNS (hack/node/coredns) and the container
# images (hack/node/images: pause, PostgreSQL and MariaDB from Debian's
# packages, and the CNPG and mariadb-operator images made from the binaries
# built here). No registry is involved: `controlplane up --node --image ...`
# imports the image archives into the node's containerd.
#
# Prints on stdout, one per line (progress goes to stderr):
#   IMAGE <name> <archive>        every image archive (repeated)
#   COREDNS <path>
#   CNPG_VERSION <version>        e.g. 1.30.1
#   CNPG_MANIFEST <path>          the release manifest shipped in CNPG's module
#   CNPG_IMAGE <name>             the operator image the manifest must run
#   MARIADB_OPERATOR_VERSION <v>  e.g. 25.10.2
#   MARIADB_OPERATOR_CRDS <path>  every k8s.mariadb.com CRD of that version
#   MARIADB_OPERATOR_MANIFEST <path>  Namespace + CRDs + the operator (its Helm
#                                 chart rendered without webhook and cert-controller),
#                                 running MARIADB_OPERATOR_IMAGE, MariaDB pods
#                                 defaulting to MARIADB_IMAGE; apply server-side
#   MARIADB_OPERATOR_IMAGE <name> the operator image (ours, from the module)
#   MARIADB_IMAGE <name>          MariaDB from Debian's mariadb-server (tag: its version)
# Each part skips its work when its outputs are up to date.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

field() { awk -v k="$1" '$1 == k { print $2; exit }'; }

cnpg_out=$(bash "$here/cnpg/build.sh")
manager=$(field MANAGER <<<"$cnpg_out")
manifest=$(field MANIFEST <<<"$cnpg_out")
version=$(field VERSION <<<"$cnpg_out")
mdb_out=$(bash "$here/mariadb-operator/build.sh" --no-manifest)
mdb_manager=$(field MANAGER <<<"$mdb_out")
mdb_version=$(field VERSION <<<"$mdb_out")
mdb_crds=$(field CRDS <<<"$mdb_out")
coredns=$(bash "$here/coredns/build.sh" | field COREDNS)
images=$(bash "$here/images/build.sh" --cnpg-manager "$manager" --cnpg-version "$version" \
    --mariadb-operator "$mdb_manager" --mariadb-operator-version "$mdb_version")
operator_image=$(awk '$1 == "IMAGE" && $2 ~ /\/cloudnative-pg:/ { print $2; exit }' <<<"$images")
mdb_operator_image=$(awk '$1 == "IMAGE" && $2 ~ /\/mariadb-operator\/mariadb-operator:/ { print $2; exit }' <<<"$images")
mariadb_image=$(awk '$1 == "IMAGE" && $2 ~ /\/dbaas\/mariadb:/ { print $2; exit }' <<<"$images")
# The manifest names the MariaDB image just built as the operator's default.
mdb_manifest=""
[[ -z "$mariadb_image" ]] ||
    mdb_manifest=$(bash "$here/mariadb-operator/build.sh" --mariadb-image "$mariadb_image" | field MANIFEST)
if [[ -z "$manager" || -z "$manifest" || -z "$version" || -z "$coredns" || -z "$operator_image" ||
    -z "$mdb_manager" || -z "$mdb_version" || -z "$mdb_crds" || -z "$mdb_operator_image" ||
    -z "$mariadb_image" || -z "$mdb_manifest" ]]; then
  echo "node: a part did not report its output (see above)" >&2
  exit 1
fi
printf '%s\n' "$images"
echo "COREDNS $coredns"
echo "CNPG_VERSION $version"
echo "CNPG_MANIFEST $manifest"
echo "CNPG_IMAGE $operator_image"
echo "MARIADB_OPERATOR_VERSION $mdb_version"
echo "MARIADB_OPERATOR_CRDS $mdb_crds"
echo "MARIADB_OPERATOR_MANIFEST $mdb_manifest"
echo "MARIADB_OPERATOR_IMAGE $mdb_operator_image"
echo "MARIADB_IMAGE $mariadb_image"
