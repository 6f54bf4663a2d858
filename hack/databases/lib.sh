# Shared driver for hack/databases/{postgres,mariadb}.sh: a throw-away
# database server on a free 127.0.0.1 port, controlled through stdin.
#
# The engine script defines before sourcing `db_main`:
#   ENGINE                 short name used in messages and the temp dir name
#   engine_init            create the data directory and the admin password
#   engine_start PORT      start the server on PORT; return non-zero if it did not come up
#   engine_stop            stop it cleanly (data kept)
#   engine_kill            stop it fast (data about to be deleted)
#   engine_version         print the server version (one word)
# and may read/write: DB_DIR (temp dir, removed on exit), RUN_AS (the
# unprivileged user when we are root, else empty), ADMIN_USER, ADMIN_PASSWORD,
# DB_TLS (1 with --tls: serve TLS with $DB_DIR/tls/server.{crt,key}, signed by
# $DB_DIR/tls/ca.crt).
#
# Protocol: stdout gets one line per state change:
#   READY host=127.0.0.1 port=N user=U password=P datadir=D version=V [ca=FILE]
#   STOPPED
#   ERROR <message>
# stdin takes the commands `stop` and `start` (one per line). With
# --exit-on-stdin-close the server is stopped and DB_DIR removed when stdin
# reaches EOF (the parent went away); otherwise it runs until a signal.

set -euo pipefail

DB_DIR=""
RUN_AS=""
ADMIN_USER=""
ADMIN_PASSWORD=""
DB_PORT=""
DB_RUNNING=0
DB_TLS=0

db_log() { printf '%s: %s\n' "$ENGINE" "$*" >&2; }

# Runs a command as RUN_AS (servers refuse to run as root, or should not).
db_as_runner() {
  if [[ -n "$RUN_AS" ]]; then
    setpriv --reuid="$RUN_AS" --regid="$RUN_AS" --init-groups -- "$@"
  else
    "$@"
  fi
}

db_random_hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# True when nothing listens on 127.0.0.1:$1.
db_port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

db_pick_port() {
  local port
  for _ in $(seq 1 200); do
    port=$((20000 + (0x$(db_random_hex 2) % 40000)))
    if db_port_free "$port"; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

db_ready_line() {
  local ca=""
  ((DB_TLS)) && ca=" ca=$DB_DIR/tls/ca.crt"
  printf 'READY host=127.0.0.1 port=%s user=%s password=%s datadir=%s version=%s%s\n' \
    "$DB_PORT" "$ADMIN_USER" "$ADMIN_PASSWORD" "$DB_DIR" "$(engine_version)" "$ca"
}

# A throw-away CA and a server certificate from it for the IP 127.0.0.1 only
# (so verify-full to "localhost" fails where verify-ca passes).
db_make_certificates() {
  local dir="$DB_DIR/tls"
  mkdir -p "$dir"
  (
    cd "$dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout ca.key -out ca.crt -days 7 -subj "/CN=dbaas-operator test CA" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout server.key -out server.csr -subj "/CN=localhost"
    printf '%s\n' 'subjectAltName=IP:127.0.0.1' 'basicConstraints=CA:FALSE' \
      'keyUsage=critical,digitalSignature' 'extendedKeyUsage=serverAuth' >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out server.crt -days 7 -extfile server.ext
    chmod 600 server.key ca.key
  ) >"$DB_DIR/openssl.log" 2>&1 || { cat "$DB_DIR/openssl.log" >&2; return 1; }
  [[ -n "$RUN_AS" ]] && chown -R "$RUN_AS:" "$dir"
  return 0
}

db_cleanup() {
  trap - EXIT INT TERM HUP
  if ((DB_RUNNING)); then
    engine_kill >/dev/null 2>&1 || true
    DB_RUNNING=0
  fi
  [[ -n "$DB_DIR" && -d "$DB_DIR" ]] || return 0
  # The server is gone (its port closed); its files may take a while: a
  # PostgreSQL that served 1,000 claims holds 1,000 databases, ~8 GB that
  # took 19 s to remove. They are renamed aside and removed by a detached
  # process, so that whoever waits for this script is not held up.
  local trash="$DB_DIR.deleting"
  if mv "$DB_DIR" "$trash" 2>/dev/null; then
    setsid rm -rf "$trash" </dev/null >/dev/null 2>&1 &
  else
    rm -rf "$DB_DIR"
  fi
}

db_start() {
  local fixed_port=$1 attempts=1
  [[ -z "$fixed_port" ]] && attempts=5
  for ((i = 0; i < attempts; i++)); do
    DB_PORT=${fixed_port:-$(db_pick_port)} || { echo "ERROR no free port found"; return 1; }
    if engine_start "$DB_PORT"; then
      DB_RUNNING=1
      db_ready_line
      return 0
    fi
    db_log "server did not start on port $DB_PORT (attempt $((i + 1)) of $attempts)"
  done
  echo "ERROR $ENGINE did not start on port $DB_PORT; see the log above"
  return 1
}

db_main() {
  local exit_on_stdin_close=0 port=""
  while (($#)); do
    case $1 in
      --exit-on-stdin-close) exit_on_stdin_close=1 ;;
      --tls) DB_TLS=1 ;;
      --port) port=$2; shift ;;
      --port=*) port=${1#--port=} ;;
      -h | --help)
        echo "usage: $0 [--port N] [--tls] [--exit-on-stdin-close]   (stdin commands: stop, start)"
        return 0
        ;;
      *) echo "$0: unknown argument $1" >&2; return 2 ;;
    esac
    shift
  done

  if [[ $(id -u) == 0 ]]; then
    RUN_AS=$ENGINE_RUN_AS
    getent passwd "$RUN_AS" >/dev/null || RUN_AS=nobody
  fi
  DB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/dbaas-$ENGINE-XXXXXX")
  trap db_cleanup EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT
  trap 'exit 129' HUP
  [[ -n "$RUN_AS" ]] && chown "$RUN_AS:" "$DB_DIR"
  ADMIN_PASSWORD=$(db_random_hex 16)
  if ((DB_TLS)); then
    db_make_certificates || { echo "ERROR making TLS certificates failed; see the log above"; return 1; }
  fi

  engine_init || { echo "ERROR $ENGINE: initialising the data directory failed; see the log above"; return 1; }
  db_start "$port" || return 1
  port=$DB_PORT # a restart comes back on the same port

  local command
  while true; do
    if ! IFS= read -r command; then
      ((exit_on_stdin_close)) && return 0
      # Without --exit-on-stdin-close: run until a signal.
      while true; do sleep 3600 & wait $! || true; done
    fi
    case $command in
      stop)
        if ((DB_RUNNING)); then
          engine_stop || engine_kill || true
          DB_RUNNING=0
        fi
        echo STOPPED
        ;;
      start)
        if ((DB_RUNNING)); then db_ready_line; else db_start "$port" || true; fi
        ;;
      "") ;;
      *) echo "ERROR unknown command: $command (expected stop or start)" ;;
    esac
  done
}
