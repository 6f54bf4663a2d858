#!/usr/bin/env bash
# A throw-away PostgreSQL server for tests, from the Debian `postgresql`
# package: a fresh data directory in a temp dir, a free 127.0.0.1 port,
# password (scram-sha-256) authentication for the superuser `postgres`;
# with --tls also TLS (plain connections still allowed).
# Prints `READY host=127.0.0.1 port=N user=postgres password=P datadir=D version=V [ca=FILE]`.
# Commands on stdin: `stop`, `start` (same port and data). With
# --exit-on-stdin-close it stops and deletes everything when stdin closes.
# See hack/databases/lib.sh for the protocol.
set -euo pipefail
ENGINE=postgres
ENGINE_RUN_AS=postgres

pg_bin() {
  local dir
  if [[ -n "${DBAAS_PG_BINDIR:-}" ]]; then
    dir=$DBAAS_PG_BINDIR
  else
    # The newest installed major version.
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  fi
  if [[ -z "$dir" || ! -x "$dir/postgres" ]]; then
    echo "postgres.sh: no PostgreSQL server under /usr/lib/postgresql/*/bin (apt-get install postgresql, or set DBAAS_PG_BINDIR)" >&2
    return 1
  fi
  echo "$dir"
}

engine_init() {
  PG_BIN=$(pg_bin)
  ADMIN_USER=postgres
  local pwfile="$DB_DIR/pwfile"
  printf '%s\n' "$ADMIN_PASSWORD" >"$pwfile"
  [[ -n "$RUN_AS" ]] && chown "$RUN_AS:" "$pwfile"
  db_as_runner "$PG_BIN/initdb" -D "$DB_DIR/data" -U "$ADMIN_USER" --pwfile="$pwfile" \
    --auth=scram-sha-256 --encoding=UTF8 --no-locale --no-instructions \
    >"$DB_DIR/initdb.log" 2>&1 || { cat "$DB_DIR/initdb.log" >&2; return 1; }
  rm -f "$pwfile"
  # Test servers: no durability needed, so skip fsyncs; room for parallel tests.
  cat >>"$DB_DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DB_DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
shared_buffers = 64MB
log_min_messages = warning
CONF
  if ((DB_TLS)); then
    cat >>"$DB_DIR/data/postgresql.conf" <<CONF
ssl = on
ssl_cert_file = '$DB_DIR/tls/server.crt'
ssl_key_file = '$DB_DIR/tls/server.key'
CONF
  fi
}

engine_start() {
  local port=$1
  if ! db_port_free "$port"; then
    db_log "port $port is taken"
    return 1
  fi
  db_as_runner "$PG_BIN/pg_ctl" -D "$DB_DIR/data" -l "$DB_DIR/server.log" -o "-p $port" \
    -w -t 60 -s start </dev/null >/dev/null 2>&1 && return 0
  tail -n 20 "$DB_DIR/server.log" >&2 2>/dev/null || true
  # pg_ctl may have given up while the server lingers.
  engine_kill >/dev/null 2>&1 || true
  return 1
}

engine_stop() {
  db_as_runner "$PG_BIN/pg_ctl" -D "$DB_DIR/data" -m fast -w -t 60 -s stop </dev/null >/dev/null
}

engine_kill() {
  db_as_runner "$PG_BIN/pg_ctl" -D "$DB_DIR/data" -m immediate -w -t 30 -s stop </dev/null >/dev/null
}

engine_version() {
  "$PG_BIN/postgres" --version | awk '{print $3}'
}

# shellcheck source=hack/databases/lib.sh
source "$(dirname "$0")/lib.sh"
db_main "$@"
