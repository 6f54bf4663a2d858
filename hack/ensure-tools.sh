#!/usr/bin/env bash
# Checks (and where possible installs) what building and testing needs on a
# fresh machine: Go for hack/controlplane, the Rust toolchain with rustfmt and
# clippy, PostgreSQL and MariaDB for the database tests (installed with apt-get
# when we are root). Crates and Go modules are fetched by cargo and go themselves.
set -euo pipefail
missing=()
command -v go >/dev/null || missing+=("go (https://go.dev/dl; Debian: golang-go >= 1.25)")
command -v cargo >/dev/null || missing+=("cargo (rustup)")
if command -v cargo >/dev/null; then
  cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt >/dev/null 2>&1 || missing+=("rustfmt (rustup component add rustfmt)")
  cargo clippy --version >/dev/null 2>&1 || rustup component add clippy >/dev/null 2>&1 || missing+=("clippy (rustup component add clippy)")
fi
# Real PostgreSQL and MariaDB servers for the integration tests
# (hack/databases/*.sh start private ones on free ports), from Debian packages.
db_packages=()
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || db_packages+=(postgresql)
command -v mariadbd >/dev/null || [[ -x /usr/sbin/mariadbd ]] || db_packages+=(mariadb-server)
# Test servers with TLS get their certificates from the openssl CLI.
command -v openssl >/dev/null || db_packages+=(openssl)
if ((${#db_packages[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "ensure-tools: installing ${db_packages[*]}" >&2
    if DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${db_packages[@]}" >/dev/null; then
      # The services of what we just installed are not used; do not leave them running.
      if [[ -d /run/systemd/system ]]; then
        for package in "${db_packages[@]}"; do
          case $package in
            postgresql) systemctl disable --now postgresql >/dev/null 2>&1 || true ;;
            mariadb-server) systemctl disable --now mariadb >/dev/null 2>&1 || true ;;
          esac
        done
      fi
    else
      missing+=("${db_packages[*]} (apt-get install failed)")
    fi
  else
    missing+=("${db_packages[*]} (Debian packages: sudo apt-get install ${db_packages[*]})")
  fi
fi
if ((${#missing[@]})); then
  printf 'missing tools:\n' >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi
