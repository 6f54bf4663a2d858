#!/usr/bin/env bash
# Builds everything the local node runs besides the control plane binary:
# the CloudNativePG operator (hack/node/cnpg), CoreDNS (hack/node/coredns)
# and the container images (hack/node/images: pause, PostgreSQL from
# Debian's packages, and the CNPG operator image made from the manager
# built here). No registry is involved: `controlplane up --node --image ...`
# imports the image archives into the node's containerd.
#
# Prints on stdout, one per line (progress goes to stderr):
#   IMAGE <name> <archive>        every image archive (repeated)
#   COREDNS <path>
#   CNPG_VERSION <version>        e.g. 1.30.1
#   CNPG_MANIFEST <path>          the release manifest shipped in CNPG's module
#   CNPG_IMAGE <name>             the operator image the manifest must run
# Each part skips its work when its outputs are up to date.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

field() { awk -v k="$1" '$1 == k { print $2; exit }'; }

cnpg_out=$(bash "$here/cnpg/build.sh")
manager=$(field MANAGER <<<"$cnpg_out")
manifest=$(field MANIFEST <<<"$cnpg_out")
version=$(field VERSION <<<"$cnpg_out")
coredns=$(bash "$here/coredns/build.sh" | field COREDNS)
images=$(bash "$here/images/build.sh" --cnpg-manager "$manager" --cnpg-version "$version")
operator_image=$(awk '$1 == "IMAGE" && $2 ~ /\/cloudnative-pg:/ { print $2; exit }' <<<"$images")
if [[ -z "$manager" || -z "$manifest" || -z "$version" || -z "$coredns" || -z "$operator_image" ]]; then
  echo "node: a part did not report its output (see above)" >&2
  exit 1
fi
printf '%s\n' "$images"
echo "COREDNS $coredns"
echo "CNPG_VERSION $version"
echo "CNPG_MANIFEST $manifest"
echo "CNPG_IMAGE $operator_image"
