#!/usr/bin/env bash
# Checks (and where possible installs) what building and testing needs on a
# fresh machine: Go for hack/controlplane, the Rust toolchain with rustfmt and
# clippy. Crates and Go modules are fetched by cargo and go themselves.
set -euo pipefail
missing=()
command -v go >/dev/null || missing+=("go (https://go.dev/dl; Debian: golang-go >= 1.25)")
command -v cargo >/dev/null || missing+=("cargo (rustup)")
if command -v cargo >/dev/null; then
  cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt >/dev/null 2>&1 || missing+=("rustfmt (rustup component add rustfmt)")
  cargo clippy --version >/dev/null 2>&1 || rustup component add clippy >/dev/null 2>&1 || missing+=("clippy (rustup component add clippy)")
fi
if ((${#missing[@]})); then
  printf 'missing tools:\n' >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi
