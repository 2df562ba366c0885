# Shared by scripts/real-slurm.sh and scripts/rabbitmq.sh (sourced, not run): logging,
# failing with the end of a log, root checks, PID checks, stopping a daemon, idempotent
# config writes and Debian installs that start no daemon.
#
# The sourcing script sets LOG_TAG (the log prefix) and, for install_packages, the
# PACKAGES array.

export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

POLICY_RC=/usr/sbin/policy-rc.d

T0=${EPOCHREALTIME/./}
log() {
  local us=$(( ${EPOCHREALTIME/./} - T0 ))
  printf '[%s %d.%02ds] %s\n' "$LOG_TAG" $((us / 1000000)) $((us % 1000000 / 10000)) "$*" >&2
}

die() {
  log "ERROR: $*"
  exit 1
}

# die with message $1, showing the end of each log file named after it (the reason is
# nearly always there).
die_with_log() {
  local file msg=$1; shift
  log "ERROR: $msg"
  for file in "$@"; do
    [[ -s $file ]] || continue
    printf -- '--- last lines of %s ---\n' "$file" >&2
    tail -n 40 "$file" >&2
    printf -- '---\n' >&2
  done
  exit 1
}

require_root() {
  [[ $EUID -eq 0 ]] || die "must run as root (try: sudo bash $0 ${COMMAND:-up})"
}

# True while process $1 runs. A zombie keeps its /proc entry but has no exe link, so it
# counts as gone (orphaned daemons may wait a while for a parent that reaps them).
pid_alive() { readlink "/proc/$1/exe" >/dev/null 2>&1; }

# Print the PID in PID file $1 if it names a live process of the binary called $2. A
# stale PID file, a zombie or a recycled PID all count as "not running".
pid_from_file() {
  local file=$1 binary=$2 pid exe
  pid=$(cat "$file" 2>/dev/null) || return 1   # a stopping daemon removes it
  pid=${pid//[^0-9]/}
  [[ -n $pid ]] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  exe=${exe% (deleted)}   # binary replaced by a package upgrade: still our daemon
  [[ ${exe##*/} == "$binary" ]] || return 1
  echo "$pid"
}

# Stop process $2 (called $1 in the log): SIGTERM, wait up to $3 seconds, then SIGKILL.
stop_pid() {
  local name=$1 pid=$2 timeout=$3 i
  log "$name: stopping (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  log "$name: still running after ${timeout}s, sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  die "$name (pid $pid) survived SIGKILL"
}

# Write stdin to $1 (owner $2, mode $3) only if the content differs, so that an
# unchanged `up` does not touch running daemons. Sets CONFIG_CHANGED=1 on a rewrite.
CONFIG_CHANGED=0
update_file() {
  local dest=$1 owner=$2 mode=$3 tmp
  tmp=$(mktemp "$dest.XXXXXX")   # mode 600 from the start: some files hold passwords
  cat >"$tmp"
  if [[ -f $dest ]] && cmp -s "$tmp" "$dest"; then
    rm -f "$tmp"
  else
    mv -f "$tmp" "$dest"
    CONFIG_CHANGED=1
  fi
  chown "$owner" "$dest"
  chmod "$mode" "$dest"
}

# Install the PACKAGES that are missing. Without systemd the maintainer scripts would
# start their daemons through invoke-rc.d, as the wrong user and without our PID files:
# a policy-rc.d that answers 101 forbids that for the length of the install.
install_packages() {
  local p missing=()
  for p in "${PACKAGES[@]}"; do
    [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true) == "install ok installed" ]] \
      || missing+=("$p")
  done
  ((${#missing[@]})) || return 0

  log "installing packages: ${missing[*]}"
  local own_policy=0
  if [[ ! -e $POLICY_RC ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC"
    chmod 755 "$POLICY_RC"
    own_policy=1
    trap 'rm -f "$POLICY_RC"' EXIT   # also on a failed install
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Use-Pty=0: no progress bars in a CI log.
  apt-get -q update >&2
  apt-get -q -o Dpkg::Use-Pty=0 install -y --no-install-recommends "${PACKAGES[@]}" >&2
  if ((own_policy)); then
    rm -f "$POLICY_RC"
    trap - EXIT
  fi
  log "packages installed"
}

# Run cmd_$1 of the sourcing script: one of up, down, reset, status, env.
dispatch() {
  COMMAND=${1:-}
  case "$COMMAND" in
    up | down | reset | status | env) "cmd_$COMMAND" ;;
    *)
      echo "usage: $0 up|down|reset|status|env" >&2
      exit 2
      ;;
  esac
}
