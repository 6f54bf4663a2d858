#!/usr/bin/env bash
# Runs every check and test: formatting, lints, generated-code drift, unit
# tests, and the integration tests against a real local control plane
# (hack/controlplane) with the real upstream CRDs installed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
started=$SECONDS
step() { printf '\n==> %s (%ss)\n' "$1" "$((SECONDS - started))"; }

step "tools"
bash hack/ensure-tools.sh
# kopium, the test control planes and the benches all read this.
DBAAS_UPSTREAM_CRDS=$(bash hack/upstream-crds.sh)
export DBAAS_UPSTREAM_CRDS
# The API fuzzer (crates/server/tests/fuzz.rs runs it): schemathesis, pinned,
# in a virtualenv under ~/.cache/dbaas-operator.
DBAAS_SCHEMATHESIS=$(bash hack/ensure-fuzz-tools.sh)
export DBAAS_SCHEMATHESIS

step "console: npm packages, Chromium, API types, typecheck, unit tests, build (hack/ensure-console.sh)"
# dbaas-server embeds console/dist when it compiles, so this comes first.
bash hack/ensure-console.sh --no-build
(
  cd console
  npm run --silent check:api
  npm run --silent typecheck
  npm run --silent test -- --reporter=dot
  npm run --silent build >/dev/null
)

step "cargo fmt --check"
cargo fmt --all -- --check

step "generated engine types are up to date (hack/kopium.sh --check)"
bash hack/kopium.sh --check

step "control plane (hack/controlplane/build.sh)"
bash hack/controlplane/build.sh

step "node: tools, CloudNativePG, CoreDNS and images (hack/node)"
# The end-to-end tests (crates/operator/tests/cnpg_e2e.rs) run the real
# CloudNativePG operator on a real node; what it runs is built here.
bash hack/node/ensure-node-tools.sh
bash hack/node/build.sh >/dev/null

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (unit + integration against the real control plane)"
cargo test --workspace --locked --no-fail-fast

step "done in $((SECONDS - started))s"
