#!/usr/bin/env bash
# Run a real RabbitMQ 3.10 (Debian 12 package) with STOMP, Web-STOMP and the management
# API on 127.0.0.1, as root, without systemd, for the event-processing tests.
#
# Usage: scripts/rabbitmq.sh up|down|reset|status|env
#
#   up      install rabbitmq-server if missing, write the configs, start the broker and
#           wait until it has booted, then create what Waldur Mastermind would: a vhost,
#           a consumer user whose password is the offering token, its permissions and
#           a durable queue `consumer_<uuid>`. Idempotent: a running broker is left
#           alone and the objects are re-applied over the API (so another RMQ_USER or
#           RMQ_QUEUE adds a second consumer in well under a second); only a changed
#           listener configuration or administrator password restarts it.
#   down    stop the broker, then epmd (by PID or by epmd's own command, never by name).
#   reset   `up`, then purge the queue.
#   status  print the state; exit 0 only if the broker runs, answers on every port and
#           the queue exists.
#   env     print `export` lines for the tests. No secret is printed: the passwords
#           live in root-only files whose paths are printed instead.
#
# Environment (read by every command; defaults match the demo offering):
#   RMQ_VHOST           vhost (Mastermind: the owning user)      [waldur]
#   RMQ_USER            consumer user: register_queue's rmq_username [offering-d0e1f2a3]
#   RMQ_PASSWORD        its password: the offering's waldur_api_token [demo-offering-token]
#   RMQ_QUEUE           the pre-created durable queue [consumer_d0e1f2a3b4c54d6e8f9a0b1c2d3e4f50]
#   RMQ_ADMIN_USER      administrator that publishes and purges  [admin]
#   RMQ_ADMIN_PASSWORD  its password  [random, made once]
# The two passwords are kept in $RMQ_BASE/secrets/{offering-token,admin-password}.
#
# Isolation: the broker is the suite's own and leaves a RabbitMQ of the host alone. Its
# node (waldur-slurm-test@localhost), configuration, Erlang cookie, database, logs and
# PID file all live under RMQ_BASE [/var/lib/waldur-slurm-test/rabbitmq]; the host's
# /etc/rabbitmq, /var/lib/rabbitmq and /var/log/rabbitmq are never read or written, and
# its own epmd runs on a port of its own. Listeners, all on 127.0.0.1 and away from
# RabbitMQ's defaults (5672, 61613, 15672, 15674, 25672, epmd 4369, CLI 35672-35682):
# AMQP 35700, STOMP 35701, Web-STOMP 35702 (path /ws), management HTTP API 35703,
# Erlang distribution 35704, epmd 35705, CLI tools 35710-35720. `env` prints them.
# Logs: $RMQ_BASE/log/waldur-slurm-test@localhost.log and startup.log; PID file:
# $RMQ_BASE/run/rabbitmq.pid. RMQ_INSTANCE=NAME runs a second, independent broker (one
# a run may restart, as the soak does: bench/soak.py): node waldur-slurm-test-NAME,
# RMQ_BASE .../rabbitmq-NAME and every port 100 above (AMQP 35800 ... CLI 35810-35820);
# RMQ_PORT_BASE moves the first port (the others follow), for two instances at once.
# The only host changes are the Debian package (installed
# without starting its service) and its `rabbitmq` system user.

set -euo pipefail

VHOST="${RMQ_VHOST:-waldur}"
USER_NAME="${RMQ_USER:-offering-d0e1f2a3}"
QUEUE="${RMQ_QUEUE:-consumer_d0e1f2a3b4c54d6e8f9a0b1c2d3e4f50}"
ADMIN_USER="${RMQ_ADMIN_USER:-admin}"
DEFAULT_TOKEN=demo-offering-token

INSTANCE=${RMQ_INSTANCE:-}
[[ -z $INSTANCE || $INSTANCE =~ ^[a-z][a-z0-9]{0,9}$ ]] \
  || { echo "RMQ_INSTANCE: 1-10 lower-case letters and digits, not '$INSTANCE'" >&2; exit 2; }
PORT_BASE=${RMQ_PORT_BASE:-$((35700 + ${INSTANCE:+100} + 0))}
[[ $PORT_BASE =~ ^[1-9][0-9]{3,4}$ && $PORT_BASE -le 65500 ]] \
  || { echo "RMQ_PORT_BASE: a port number from 1000 to 65500, not '$PORT_BASE'" >&2; exit 2; }

HOST=127.0.0.1
AMQP_PORT=$PORT_BASE
STOMP_PORT=$((PORT_BASE + 1))
WS_PORT=$((PORT_BASE + 2))
WS_PATH=/ws
MGMT_PORT=$((PORT_BASE + 3))
DIST_PORT=$((PORT_BASE + 4))
EPMD_PORT=$((PORT_BASE + 5))
CTL_PORT_MIN=$((PORT_BASE + 10))   # rabbitmqctl's own distribution listener
CTL_PORT_MAX=$((PORT_BASE + 20))
PLUGINS=(rabbitmq_management rabbitmq_stomp rabbitmq_web_stomp)
PACKAGES=(rabbitmq-server)

# A node name of its own: `localhost` always resolves, whatever the host name is.
NODENAME=waldur-slurm-test${INSTANCE:+-$INSTANCE}@localhost
BASE=${RMQ_BASE:-/var/lib/waldur-slurm-test/rabbitmq${INSTANCE:+-$INSTANCE}}
CONF_DIR=$BASE/etc
SECRET_DIR=$BASE/secrets             # root-only
ADMIN_PASS_FILE=$SECRET_DIR/admin-password
TOKEN_FILE=$SECRET_DIR/offering-token
DEFS_FILE=$CONF_DIR/definitions.json # holds both passwords: root:rabbitmq 640
HOME_DIR=$BASE/home                  # HOME of the broker and its CLI: .erlang.cookie
MNESIA_DIR=$BASE/mnesia              # the database
RUN_DIR=$BASE/run
PID_FILE=$RUN_DIR/rabbitmq.pid
LOG_DIR=$BASE/log
LOG_FILE=$LOG_DIR/$NODENAME.log
STARTUP_LOG=$LOG_DIR/startup.log
RMQ_BIN=/usr/lib/rabbitmq/bin        # the real scripts; /usr/sbin ones wrap them in su

START_TIMEOUT=90   # seconds for a cold boot (the first one creates the database)
PID_GRACE=5        # seconds the launcher may take to write the PID file
STOP_TIMEOUT=30    # seconds between SIGTERM and SIGKILL

LOG_TAG=rabbitmq
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---------------------------------------------------------------------------- helpers

# Names end up in JSON, in URLs and in a permission regex: keep them plain. Passwords
# may hold anything printable except the two characters JSON and curl configs escape.
validate_settings() {
  local name value
  declare -A given=(
    [RMQ_VHOST]=$VHOST [RMQ_USER]=$USER_NAME [RMQ_QUEUE]=$QUEUE [RMQ_ADMIN_USER]=$ADMIN_USER
  )
  for name in "${!given[@]}"; do
    value=${given[$name]}
    [[ $value =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$ ]] \
      || die "$name '$value' is invalid: use letters, digits, '.', '_' and '-' only"
  done
  [[ $USER_NAME != "$ADMIN_USER" ]] || die "RMQ_USER and RMQ_ADMIN_USER must differ"
  for name in RMQ_PASSWORD RMQ_ADMIN_PASSWORD; do
    value=${!name-}
    [[ -z $value ]] && continue
    [[ $value =~ ^[[:print:]]+$ && $value != *[\"\\]* ]] \
      || die "$name is invalid: printable characters without '\"' or '\\' only"
  done
}

# Run a command as the rabbitmq user from the broker's own home, the way the broker and
# its CLI expect (they find the Erlang cookie through HOME), with every location and
# port of this broker in the environment, so nothing falls back to /etc/rabbitmq or the
# default ports. setpriv execs: unlike the su of the /usr/sbin wrappers, no extra
# process stays behind, and no argument is re-quoted.
as_rabbitmq() {
  (cd "$HOME_DIR" && exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups \
    env HOME="$HOME_DIR" ERL_EPMD_ADDRESS=$HOST ERL_EPMD_PORT=$EPMD_PORT \
    RABBITMQ_CONF_ENV_FILE="$CONF_DIR/rabbitmq-env.conf" \
    RABBITMQ_NODENAME=$NODENAME \
    RABBITMQ_CONFIG_FILE="$CONF_DIR/rabbitmq.conf" \
    RABBITMQ_ADVANCED_CONFIG_FILE="$CONF_DIR/advanced.config" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$CONF_DIR/enabled_plugins" \
    RABBITMQ_MNESIA_BASE="$MNESIA_DIR" \
    RABBITMQ_LOG_BASE="$LOG_DIR" \
    RABBITMQ_PID_FILE="$PID_FILE" \
    RABBITMQ_DIST_PORT=$DIST_PORT \
    RABBITMQ_CTL_DIST_PORT_MIN=$CTL_PORT_MIN RABBITMQ_CTL_DIST_PORT_MAX=$CTL_PORT_MAX \
    "$@")
}

# Print the broker's PID if its PID file names a live Erlang VM.
running_pid() { pid_from_file "$PID_FILE" beam.smp; }

epmd_up() { epmd -port "$EPMD_PORT" -names >/dev/null 2>&1; }

# ---------------------------------------------------------------------------- HTTP API

# curl against the management API as the administrator. The credentials go through a
# config on stdin, so they never show in a process list. Prints the body; returns
# non-zero unless the status is 2xx. Extra arguments go to curl.
api() {
  local method=$1 path=$2 pass; shift 2
  pass=$(<"$ADMIN_PASS_FILE")
  printf 'user = "%s:%s"\n' "$ADMIN_USER" "$pass" \
    | curl -sS -f -K - -X "$method" --max-time 10 \
      -H 'content-type: application/json' "$@" "http://$HOST:$MGMT_PORT/api$path"
}

api_ok() { api "$@" >/dev/null 2>&1; }

queue_path() { echo "/queues/$VHOST/$QUEUE"; }

# ---------------------------------------------------------------------------- install

# ---------------------------------------------------------------------------- configs

prepare_dirs() {
  install -d -o root -g root -m 755 "$(dirname "$BASE")" "$BASE"
  install -d -o root -g rabbitmq -m 750 "$CONF_DIR"
  install -d -o rabbitmq -g rabbitmq -m 750 "$HOME_DIR" "$MNESIA_DIR" "$RUN_DIR" "$LOG_DIR"
  install -d -o root -g root -m 700 "$SECRET_DIR"
  touch "$STARTUP_LOG"
  chown rabbitmq:rabbitmq "$STARTUP_LOG"
}

# Secret $1 (file) gets value $2 if given, else keeps its content, else $3 (a default
# or "random"). Never printed.
ensure_secret() {
  local file=$1 value=$2 fallback=$3
  if [[ -n $value ]]; then
    printf '%s' "$value" | update_file "$file" root:root 600
  elif [[ ! -s $file ]]; then
    if [[ $fallback == random ]]; then
      od -An -tx1 -N24 /dev/urandom | tr -d ' \n' | update_file "$file" root:root 600
    else
      printf '%s' "$fallback" | update_file "$file" root:root 600
    fi
  fi
  chmod 600 "$file"
}

write_secrets() {
  ensure_secret "$ADMIN_PASS_FILE" "${RMQ_ADMIN_PASSWORD-}" random
  # The offering token follows RMQ_PASSWORD, or the demo token when it is unset.
  ensure_secret "$TOKEN_FILE" "${RMQ_PASSWORD:-$DEFAULT_TOKEN}" "$DEFAULT_TOKEN"
}

write_env_conf() {
  # Read by the broker and by its CLI tools instead of /etc/rabbitmq/rabbitmq-env.conf
  # (as_rabbitmq points RABBITMQ_CONF_ENV_FILE here and sets the same values). The
  # distribution listener and epmd stay on loopback too.
  update_file "$CONF_DIR/rabbitmq-env.conf" root:rabbitmq 644 <<EOF
# Written by scripts/rabbitmq.sh.
NODENAME=$NODENAME
PID_FILE=$PID_FILE
DIST_PORT=$DIST_PORT
SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
}

write_rabbitmq_conf() {
  update_file "$CONF_DIR/rabbitmq.conf" root:rabbitmq 644 <<EOF
# Written by scripts/rabbitmq.sh: every listener on loopback.
listeners.tcp.1 = $HOST:$AMQP_PORT
stomp.listeners.tcp.1 = $HOST:$STOMP_PORT
web_stomp.tcp.ip = $HOST
web_stomp.tcp.port = $WS_PORT
web_stomp.ws_path = $WS_PATH
management.tcp.ip = $HOST
management.tcp.port = $MGMT_PORT
# Creates the administrator on boot; \`up\` re-applies the same file over the API.
load_definitions = $DEFS_FILE
# Statistics every 0.5 s instead of 5 s: near-live message counts in the status command and in
# the management API's queue listings.
collect_statistics_interval = 500
log.file.level = info
log.console = false
EOF
  local IFS=,
  update_file "$CONF_DIR/enabled_plugins" root:rabbitmq 644 <<<"[${PLUGINS[*]}]."
}

# What Mastermind sets up for an offering consumer, plus the administrator. The
# consumer may read its own queue and nothing else: subscribing to /amq/queue/<name>
# declares nothing, so it needs no configure or write permission.
write_definitions() {
  local admin_pass token read_re
  admin_pass=$(<"$ADMIN_PASS_FILE")
  token=$(<"$TOKEN_FILE")
  read_re="^${QUEUE//./\\\\.}\$"
  update_file "$DEFS_FILE" root:rabbitmq 640 <<EOF
{
  "vhosts": [{"name": "$VHOST"}],
  "users": [
    {"name": "$ADMIN_USER", "password": "$admin_pass", "tags": "administrator"},
    {"name": "$USER_NAME", "password": "$token", "tags": ""}
  ],
  "permissions": [
    {"user": "$ADMIN_USER", "vhost": "$VHOST",
     "configure": ".*", "write": ".*", "read": ".*"},
    {"user": "$USER_NAME", "vhost": "$VHOST",
     "configure": "^\$", "write": "^\$", "read": "$read_re"}
  ],
  "queues": [
    {"name": "$QUEUE", "vhost": "$VHOST", "durable": true, "auto_delete": false,
     "arguments": {}}
  ]
}
EOF
}

# ---------------------------------------------------------------------------- start/stop

check_ports_free() {
  local port
  for port in "$AMQP_PORT" "$STOMP_PORT" "$WS_PORT" "$MGMT_PORT" "$DIST_PORT"; do
    if (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null; then
      die "port $port on $HOST is taken by another process; stop it first"
    fi
  done
}

start_broker() {
  local pid start
  if pid=$(running_pid); then
    if api_ok GET /whoami; then
      log "broker: already running (pid $pid)"
      return 0
    fi
    log "broker: running (pid $pid) but not answering yet: waiting for its boot"
  else
    check_ports_free
    rm -f "$PID_FILE"
    log "broker: starting node $NODENAME"
    # -detached: the VM forks away from this script and writes the PID file itself.
    as_rabbitmq "$RMQ_BIN/rabbitmq-server" -detached </dev/null >>"$STARTUP_LOG" 2>&1 \
      || die_with_log "broker failed to start" "$STARTUP_LOG" "$LOG_FILE"
    start=$SECONDS
    until running_pid >/dev/null; do
      ((SECONDS - start < PID_GRACE)) \
        || die_with_log "broker wrote no PID file to $PID_FILE" "$STARTUP_LOG" "$LOG_FILE"
      sleep 0.1
    done
  fi
  # Waits for the node itself, then for the boot (database, plugins, definitions).
  as_rabbitmq "$RMQ_BIN/rabbitmqctl" -q await_startup --timeout "$START_TIMEOUT" >&2 \
    || die_with_log "broker did not finish booting in ${START_TIMEOUT}s (if it stays so: \
$0 down, then up)" "$LOG_FILE"
  log "broker: booted (pid $(running_pid || echo '?'))"
}

# The consumer objects, re-applied on every `up` (the import only adds and updates),
# so that a queue or user deleted by a test comes back without a restart.
apply_definitions() {
  api POST /definitions --data-binary "@$DEFS_FILE" >/dev/null \
    || die_with_log "management API refused the definitions" "$LOG_FILE"
  # A fresh node may have made the well-known guest/guest account: drop it.
  if api_ok GET /users/guest; then
    log "deleting the default guest user"
    api DELETE /users/guest >/dev/null
  fi
  api_ok GET "$(queue_path)" || die "queue $QUEUE missing in vhost $VHOST after import"
}

stop_broker() {
  local pid
  if ! pid=$(running_pid); then
    log "broker: not running"
    return 0
  fi
  # The VM traps SIGTERM and shuts RabbitMQ down cleanly.
  stop_pid broker "$pid" "$STOP_TIMEOUT"
  rm -f "$PID_FILE"
}

# epmd has no PID file; `epmd -kill` asks the one on this broker's own port to exit, and
# it refuses while any node is still registered. The host's epmd (port 4369) is never
# asked.
stop_epmd() {
  local i names
  epmd_up || { log "epmd: not running"; return 0; }
  names=$(epmd -port "$EPMD_PORT" -names 2>/dev/null | grep '^name ' || true)
  if [[ -n $names ]]; then
    log "epmd: other Erlang nodes still registered, leaving it running: ${names//$'\n'/; }"
    return 0
  fi
  log "epmd: stopping"
  epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1 || true
  for ((i = 0; i < 50; i++)); do
    epmd_up || return 0
    sleep 0.1
  done
  die "epmd still answers on port $EPMD_PORT"
}

# ---------------------------------------------------------------------------- commands

cmd_up() {
  require_root
  validate_settings
  install_packages
  prepare_dirs
  write_env_conf
  write_rabbitmq_conf
  local restart=$CONFIG_CHANGED
  CONFIG_CHANGED=0
  write_secrets
  write_definitions
  if running_pid >/dev/null; then
    if ((restart)); then
      log "configuration changed: restarting the broker"
      stop_broker
    elif ((CONFIG_CHANGED)) && ! api_ok GET /whoami; then
      # New objects or passwords alone go in over the API; a new administrator
      # password cannot, since the API needs the old one: boot with the new file.
      log "administrator credentials changed: restarting the broker"
      stop_broker
    fi
  fi
  start_broker
  apply_definitions
  log "up: vhost $VHOST, user $USER_NAME, queue $QUEUE; ws://$HOST:$WS_PORT$WS_PATH"
}

cmd_down() {
  require_root
  stop_broker
  stop_epmd
  log "down"
}

cmd_reset() {
  cmd_up
  log "purging queue $QUEUE"
  api DELETE "$(queue_path)/contents" >/dev/null || die "could not purge queue $QUEUE"
}

cmd_status() {
  require_root
  validate_settings
  local pid rc=0 port depth
  if pid=$(running_pid); then
    echo "broker: up (pid $pid, node $NODENAME)"
  else
    echo "broker: down"
    rc=1
  fi
  if epmd_up; then echo "epmd: up (port $EPMD_PORT)"; else echo "epmd: down"; rc=1; fi
  if ((rc == 0)) && [[ -r $ADMIN_PASS_FILE ]]; then
    for port in "$AMQP_PORT" "$STOMP_PORT" "$WS_PORT" "$MGMT_PORT"; do
      if api_ok GET "/health/checks/port-listener/$port"; then
        echo "listener $HOST:$port: up"
      else
        echo "listener $HOST:$port: down"
        rc=1
      fi
    done
    if depth=$(api GET "$(queue_path)?columns=messages" 2>/dev/null); then
      depth=${depth//[^0-9]/}
      echo "queue $VHOST/$QUEUE: ${depth:-0} messages"
    else
      echo "queue $VHOST/$QUEUE: missing"
      rc=1
    fi
  fi
  return "$rc"
}

cmd_env() {
  require_root
  validate_settings
  printf 'export %s=%q\n' \
    RMQ_HOST "$HOST" \
    RMQ_AMQP_PORT "$AMQP_PORT" \
    RMQ_STOMP_PORT "$STOMP_PORT" \
    RMQ_WS_PORT "$WS_PORT" \
    RMQ_WS_PATH "$WS_PATH" \
    RMQ_MGMT_PORT "$MGMT_PORT" \
    RMQ_VHOST "$VHOST" \
    RMQ_USER "$USER_NAME" \
    RMQ_PASSWORD_FILE "$TOKEN_FILE" \
    RMQ_QUEUE "$QUEUE" \
    RMQ_ADMIN_USER "$ADMIN_USER" \
    RMQ_ADMIN_PASSWORD_FILE "$ADMIN_PASS_FILE"
}

dispatch "$@"
