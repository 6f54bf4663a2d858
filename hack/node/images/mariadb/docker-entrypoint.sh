#!/bin/bash
# Entrypoint of localhost/dbaas/mariadb (hack/node/images/build.sh), written
# for this project. It gives Debian's mariadb-server what the official MariaDB
# image's entrypoint contract promises and mariadb-operator relies on:
#
#   - `docker-entrypoint.sh mariadbd [ARGS]` (the image's Cmd), or ARGS alone
#     when the first one starts with "-": on an empty data directory
#     (no DATADIR/mysql), create the system tables, set the root password from
#     MARIADB_ROOT_PASSWORD (MYSQL_ROOT_PASSWORD; or allow an empty one with
#     MARIADB_ALLOW_EMPTY_ROOT_PASSWORD, or generate one with
#     MARIADB_RANDOM_ROOT_PASSWORD), create root@MARIADB_ROOT_HOST (default
#     "%") too, load the time zone tables unless MARIADB_INITDB_SKIP_TZINFO /
#     MYSQL_INITDB_SKIP_TZINFO, create MARIADB_DATABASE and MARIADB_USER /
#     MARIADB_PASSWORD, run /docker-entrypoint-initdb.d/*.{sh,sql,sql.gz,sql.zst}
#     ... all without writing the binary log, so that replicas initialised
#     this way hold no GTIDs of their own; then exec mariadbd.
#   - anything else is exec'd as it is (mariadb-operator's Jobs run `bash -c`
#     with their own command anyway).
#
# The server runs as whoever starts the container (the operator's pods: uid
# 999 = mysql, the image's user too); run as root it drops to mysql through
# setpriv (util-linux), as the official image does with gosu.
set -euo pipefail

note() { printf '%s [Note] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$*"; }
fail() {
    printf '%s [ERROR] [Entrypoint]: %s\n' "$(date --rfc-3339=seconds)" "$*" >&2
    exit 1
}

if [[ "${1:-}" == -* ]]; then
    set -- mariadbd "$@"
fi
case "${1:-}" in
mariadbd | mysqld) ;;
*) exec "$@" ;;
esac
# Informational runs never touch the data directory.
for arg in "${@:2}"; do
    case "$arg" in
    -'?' | --help | --print-defaults | -V | --version) exec "$@" ;;
    esac
done

if [[ "$(id -u)" == 0 ]]; then
    # Root: make the directories the server writes its own, then start again
    # as mysql (runuser/setpriv keep the environment).
    datadir="$("$@" --verbose --help 2>/dev/null | awk '$1 == "datadir" { print $2; exit }')"
    mkdir -p "${datadir:-/var/lib/mysql}" /run/mysqld
    chown -R mysql:mysql "${datadir:-/var/lib/mysql}" /run/mysqld
    exec setpriv --reuid=mysql --regid=mysql --init-groups "$0" "$@"
fi

# The server's effective settings (config files and ARGS), as mariadbd sees them.
server_option() { "$@" --verbose --help 2>/dev/null | awk -v k="$OPTION" '$1 == k { print $2; exit }'; }
OPTION=datadir DATADIR="$(server_option "$@")"
OPTION=socket SOCKET="$(server_option "$@")"
[[ -n "$DATADIR" ]] || fail "cannot read datadir from '$* --verbose --help' (broken configuration?)"
DATADIR="${DATADIR%/}"
SOCKET="${SOCKET:-/run/mysqld/mysqld.sock}"
mkdir -p "$DATADIR"

if [[ -d "$DATADIR/mysql" ]]; then
    note "the data directory $DATADIR holds a database: starting $1"
    exec "$@"
fi

# --- First start: initialise the data directory. ---------------------------
ROOT_PASSWORD="${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}"
if [[ -n "${MARIADB_ROOT_PASSWORD_HASH:-}" ]]; then
    :
elif [[ -z "$ROOT_PASSWORD" ]]; then
    if [[ -n "${MARIADB_RANDOM_ROOT_PASSWORD:-${MYSQL_RANDOM_ROOT_PASSWORD:-}}" ]]; then
        ROOT_PASSWORD="$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32)"
        note "GENERATED ROOT PASSWORD: $ROOT_PASSWORD"
    elif [[ -z "${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:-${MYSQL_ALLOW_EMPTY_PASSWORD:-}}" ]]; then
        fail "the database is uninitialised and no root password is given: set MARIADB_ROOT_PASSWORD, MARIADB_ROOT_PASSWORD_HASH, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD or MARIADB_RANDOM_ROOT_PASSWORD"
    fi
fi
ROOT_HOST="${MARIADB_ROOT_HOST:-${MYSQL_ROOT_HOST:-%}}"
DATABASE="${MARIADB_DATABASE:-${MYSQL_DATABASE:-}}"
APP_USER="${MARIADB_USER:-${MYSQL_USER:-}}"
APP_PASSWORD="${MARIADB_PASSWORD:-${MYSQL_PASSWORD:-}}"
SKIP_TZINFO="${MARIADB_INITDB_SKIP_TZINFO:-${MYSQL_INITDB_SKIP_TZINFO:-}}"

note "initialising $DATADIR"
# --cross-bootstrap: no accounts named after this container's host name (and
# no resolveip check of it); the config files (read too) hold the rest.
mariadb-install-db --datadir="$DATADIR" --auth-root-authentication-method=normal \
    --cross-bootstrap --skip-test-db --skip-log-bin --default-time-zone=SYSTEM \
    --loose-innodb_buffer_pool_load_at_startup=0 --loose-innodb_buffer_pool_dump_at_shutdown=0 >/dev/null ||
    fail "mariadb-install-db failed"

# A private server: no TCP, no binary log, no replication, no Galera, a socket of its own.
init_socket="$(mktemp -u /tmp/mariadb-init.XXXXXX).sock"
"$@" --skip-networking --socket="$init_socket" --skip-log-bin --skip-slave-start --wsrep-on=OFF \
    --default-time-zone=SYSTEM --expire-logs-days=0 --loose-innodb_buffer_pool_load_at_startup=0 &
init_pid=$!
sql() { mariadb --protocol=socket --socket="$init_socket" -uroot --batch --skip-column-names "$@"; }
for _ in $(seq 1 60); do
    sql -e 'SELECT 1' >/dev/null 2>&1 && break
    kill -0 "$init_pid" 2>/dev/null || fail "the initialisation server exited"
    sleep 1
done
sql -e 'SELECT 1' >/dev/null || fail "the initialisation server did not answer in 60 s"

if [[ -z "$SKIP_TZINFO" ]]; then
    note "loading the time zone tables"
    { echo 'SET @@SESSION.SQL_LOG_BIN = 0;'; mariadb-tzinfo-to-sql /usr/share/zoneinfo 2>/dev/null; } | sql mysql
fi

# An SQL string literal: backslashes and single quotes escaped.
quote() { local s="${1//\\/\\\\}"; printf "'%s'" "${s//\'/\\\'}"; }
if [[ -n "${MARIADB_ROOT_PASSWORD_HASH:-}" ]]; then
    auth="IDENTIFIED BY PASSWORD $(quote "$MARIADB_ROOT_PASSWORD_HASH")"
else
    auth="IDENTIFIED BY $(quote "$ROOT_PASSWORD")"
fi
{
    echo 'SET @@SESSION.SQL_LOG_BIN = 0;'
    # Only root@localhost and the system accounts (mariadb.sys, the PUBLIC role) remain.
    sql -e "SELECT CONCAT(QUOTE(User), '@', QUOTE(Host)) FROM mysql.global_priv
            WHERE NOT (User = 'root' AND Host = 'localhost') AND User NOT IN ('mariadb.sys', 'PUBLIC')" |
        while read -r account; do echo "DROP USER IF EXISTS $account;"; done
    echo "ALTER USER 'root'@'localhost' $auth;"
    if [[ "$ROOT_HOST" != localhost ]]; then
        echo "CREATE USER 'root'@$(quote "$ROOT_HOST") $auth;"
        echo "GRANT ALL ON *.* TO 'root'@$(quote "$ROOT_HOST") WITH GRANT OPTION;"
        echo "GRANT PROXY ON ''@'%' TO 'root'@$(quote "$ROOT_HOST") WITH GRANT OPTION;"
    fi
    if [[ -n "$DATABASE" ]]; then
        echo "CREATE DATABASE IF NOT EXISTS \`${DATABASE//\`/\`\`}\`;"
    fi
    if [[ -n "$APP_USER" ]]; then
        echo "CREATE USER $(quote "$APP_USER")@'%' IDENTIFIED BY $(quote "$APP_PASSWORD");"
        [[ -z "$DATABASE" ]] || echo "GRANT ALL ON \`${DATABASE//\`/\`\`}\`.* TO $(quote "$APP_USER")@'%';"
    fi
    echo 'FLUSH PRIVILEGES;'
} | sql

# From here on root needs its password (when it has one).
if [[ -n "$ROOT_PASSWORD" ]]; then
    export MYSQL_PWD="$ROOT_PASSWORD"
fi
if [[ -d /docker-entrypoint-initdb.d ]]; then
    for f in /docker-entrypoint-initdb.d/*; do
        [[ -e "$f" ]] || continue
        note "running $f"
        case "$f" in
        *.sh) if [[ -x "$f" ]]; then "$f"; else . "$f"; fi ;;
        *.sql) { echo 'SET @@SESSION.SQL_LOG_BIN = 0;'; cat "$f"; } | sql ${DATABASE:+"$DATABASE"} ;;
        *.sql.gz) { echo 'SET @@SESSION.SQL_LOG_BIN = 0;'; gzip -dc "$f"; } | sql ${DATABASE:+"$DATABASE"} ;;
        *.sql.zst) { echo 'SET @@SESSION.SQL_LOG_BIN = 0;'; zstd -dc "$f"; } | sql ${DATABASE:+"$DATABASE"} ;;
        *) note "ignoring $f" ;;
        esac
    done
fi
unset MYSQL_PWD

kill -TERM "$init_pid"
wait "$init_pid" || fail "the initialisation server did not stop cleanly"
rm -f "$init_socket"
note "$DATADIR is initialised: starting $1"
exec "$@"
