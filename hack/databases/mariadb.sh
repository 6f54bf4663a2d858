#!/usr/bin/env bash
# A throw-away MariaDB server for tests, from the Debian `mariadb-server`
# package: a fresh data directory in a temp dir (mariadb-install-db), TCP on a
# free 127.0.0.1 port, its socket in the temp dir, and `root` with a password
# (root@'%' and root@localhost, all privileges WITH GRANT OPTION); with --tls
# also TLS (plain connections still allowed).
# Prints `READY host=127.0.0.1 port=N user=root password=P datadir=D version=V [ca=FILE]`.
# Commands on stdin: `stop`, `start` (same port and data). With
# --exit-on-stdin-close it stops and deletes everything when stdin closes.
# See hack/databases/lib.sh for the protocol.
set -euo pipefail
ENGINE=mariadb
ENGINE_RUN_AS=mysql
SERVER_PID=""
PASSWORD_SET=0

engine_init() {
  for tool in mariadbd mariadb-install-db mariadb-admin mariadb; do
    command -v "$tool" >/dev/null || PATH=$PATH:/usr/sbin
    command -v "$tool" >/dev/null || { echo "mariadb.sh: $tool not found (apt-get install mariadb-server)" >&2; return 1; }
  done
  ADMIN_USER=root
  mariadb-install-db --no-defaults --datadir="$DB_DIR/data" ${RUN_AS:+--user="$RUN_AS"} \
    --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
    >"$DB_DIR/install.log" 2>&1 || { cat "$DB_DIR/install.log" >&2; return 1; }
  [[ -n "$RUN_AS" ]] && chown -R "$RUN_AS:" "$DB_DIR"
  return 0
}

admin_client() {
  local password=()
  ((PASSWORD_SET)) && password=(--password="$ADMIN_PASSWORD")
  "$1" --no-defaults --protocol=socket --socket="$DB_DIR/mysqld.sock" --user=root "${password[@]}" "${@:2}"
}

engine_start() {
  local port=$1
  if ! db_port_free "$port"; then
    db_log "port $port is taken"
    return 1
  fi
  local tls_args=()
  ((DB_TLS)) && tls_args=(--ssl-ca="$DB_DIR/tls/ca.crt" --ssl-cert="$DB_DIR/tls/server.crt" --ssl-key="$DB_DIR/tls/server.key")
  # Test servers: no durability needed; room for parallel tests.
  mariadbd --no-defaults --datadir="$DB_DIR/data" ${RUN_AS:+--user="$RUN_AS"} \
    --port="$port" --bind-address=127.0.0.1 --socket="$DB_DIR/mysqld.sock" \
    --pid-file="$DB_DIR/mysqld.pid" --log-error="$DB_DIR/server.log" \
    --skip-name-resolve --skip-log-bin --max-connections=300 \
    --innodb-buffer-pool-size=64M --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    "${tls_args[@]}" </dev/null >>"$DB_DIR/server.log" 2>&1 &
  SERVER_PID=$!
  local deadline=$((SECONDS + 60))
  until admin_client mariadb-admin --connect-timeout=2 ping >/dev/null 2>&1; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null || ((SECONDS > deadline)); then
      tail -n 20 "$DB_DIR/server.log" >&2 2>/dev/null || true
      engine_kill >/dev/null 2>&1 || true
      return 1
    fi
    sleep 0.2
  done
  if ((!PASSWORD_SET)); then
    # mariadb-install-db also makes password-less root@127.0.0.1, ::1 and
    # @hostname; TCP logins would match those, so only root@'%' stays.
    local host drops=""
    while IFS= read -r host; do
      drops+="DROP USER 'root'@'${host//\'/}';"
    done < <(admin_client mariadb --batch --skip-column-names -e "SELECT host FROM mysql.user WHERE user = 'root' AND host <> 'localhost'")
    admin_client mariadb --batch -e "
      $drops
      ALTER USER root@localhost IDENTIFIED BY '$ADMIN_PASSWORD';
      CREATE USER root@'%' IDENTIFIED BY '$ADMIN_PASSWORD';
      GRANT ALL PRIVILEGES ON *.* TO root@'%' WITH GRANT OPTION;
      GRANT PROXY ON ''@'%' TO root@'%' WITH GRANT OPTION;
      FLUSH PRIVILEGES;" >&2 || { engine_kill >/dev/null 2>&1 || true; return 1; }
    PASSWORD_SET=1
  fi
  # A real login over TCP with the password, as a client will connect
  # (mariadb-admin ping succeeds even when access is denied).
  mariadb --no-defaults --protocol=tcp --host=127.0.0.1 --port="$port" \
    --user=root --password="$ADMIN_PASSWORD" --batch -e 'SELECT 1' >/dev/null
}

wait_server() {
  local deadline=$((SECONDS + $1))
  while kill -0 "$SERVER_PID" 2>/dev/null; do
    ((SECONDS > deadline)) && return 1
    sleep 0.1
  done
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

engine_stop() {
  [[ -z "$SERVER_PID" ]] && return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait_server 60
}

engine_kill() {
  [[ -z "$SERVER_PID" ]] && return 0
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait_server 30
}

engine_version() {
  mariadbd --version | awk '{print $3}'
}

# shellcheck source=hack/databases/lib.sh
source "$(dirname "$0")/lib.sh"
db_main "$@"
