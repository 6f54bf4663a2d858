#!/usr/bin/env bash
# Prints the directory of the upstream engine CRDs (test data: the real
# CloudNativePG, Percona, OLM and mariadb-operator schemas): $DBAAS_UPSTREAM_CRDS,
# else ../shared/upstream-crds beside the repository, else the workplace's
# /work/shared/upstream-crds (a clone elsewhere, e.g. CI's /tmp checkout).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
for candidate in ${DBAAS_UPSTREAM_CRDS:+"$DBAAS_UPSTREAM_CRDS"} "$repo/../shared/upstream-crds" /work/shared/upstream-crds; do
  if [[ -d "$candidate" ]]; then
    (cd "$candidate" && pwd)
    exit 0
  fi
done
echo "upstream-crds: not found (set DBAAS_UPSTREAM_CRDS, or put shared/upstream-crds beside the repository)" >&2
exit 1
