#!/usr/bin/env bash
# Run a real one-node SLURM 22.05 (Debian 12 packages) on loopback, as root, without
# systemd, for integration tests of the SLURM backend.
#
# Usage: scripts/real-slurm.sh up|down|reset|status|env
#
#   up      install the packages if missing, write the configs, start munged, mariadbd,
#           slurmdbd, slurmctld and slurmd, and wait until the node is idle.
#           Idempotent: daemons that already run are left alone.
#   down    cancel all jobs, then stop the daemons (by PID file, never by name).
#   reset   clean slate: stop the slurm daemons, drop the accounting database, wipe the
#           controller state and the slurmd spool, then `up`.
#   status  print each daemon's state; exit 0 only if all run and the node is usable.
#   env     print `export` lines describing the cluster, for the tests.
#
# Environment: REAL_SLURM_CLUSTER (default testcluster) names the cluster.
# Facts and gotchas behind every step: shared/docs/real-slurm.md.

set -euo pipefail

# Slurm stores cluster names in lower case; use the same spelling everywhere.
CLUSTER="${REAL_SLURM_CLUSTER:-testcluster}"
CLUSTER="${CLUSTER,,}"
NODE="$(hostname -s)"
PARTITION=debug
GPUS=2
TEST_USERS=(slurmtest1 slurmtest2 slurmtest3)
# acl: setfacl/getfacl, which the project-directory tests run on the real file system.
PACKAGES=(munge mariadb-server slurmdbd slurmctld slurmd slurm-client acl)

CONF_DIR=/etc/slurm
STATE_DIR=/var/lib/slurm/slurmctld   # job-ID counter, job state, node drain state
SPOOL_DIR=/var/lib/slurm/slurmd      # batch scripts and credentials
GPU_DIR=/var/lib/slurm/fake-gpu
DBPASS_FILE=/var/lib/slurm/.dbpass
LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm                   # slurm-owned: slurmctld writes its PID file as `slurm`
MYSQL_RUN_DIR=/run/mysqld
MYSQL_SOCKET=$MYSQL_RUN_DIR/mysqld.sock
DB_NAME=slurm_acct_db

# Start order; `down` walks it backwards.
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)
declare -A PIDFILE=(
  [munged]=/run/munge/munged.pid
  [mariadbd]=$MYSQL_RUN_DIR/mysqld.pid
  [slurmdbd]=$RUN_DIR/slurmdbd.pid
  [slurmctld]=$RUN_DIR/slurmctld.pid
  [slurmd]=$RUN_DIR/slurmd.pid
)
# basename of /proc/PID/exe: slurmctld and slurmd are alternatives symlinks to *-wlm.
declare -A EXE=(
  [munged]=munged [mariadbd]=mariadbd [slurmdbd]=slurmdbd
  [slurmctld]=slurmctld-wlm [slurmd]=slurmd-wlm
)
declare -A LOGFILE=(
  [munged]=/var/log/munge/munged.log
  [mariadbd]=$LOG_DIR/mariadbd.log
  [slurmdbd]=$LOG_DIR/slurmdbd.log
  [slurmctld]=$LOG_DIR/slurmctld.log
  [slurmd]=$LOG_DIR/slurmd.log
)

START_TIMEOUT=60   # seconds per readiness wait (a cold slurmdbd creates the schema first)
PID_GRACE=3        # seconds a starting daemon may take to write its PID file
STOP_TIMEOUT=20    # seconds between SIGTERM and SIGKILL
JOBS_TIMEOUT=60    # seconds to wait for cancelled jobs to leave squeue

LOG_TAG=real-slurm
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---------------------------------------------------------------------------- helpers

# Print the PID of daemon $1 if it runs.
running_pid() { pid_from_file "${PIDFILE[$1]}" "${EXE[$1]}"; }

# Die with the tail of daemon $1's log if it is not running (PID_GRACE seconds after
# start time $2, long enough to daemonise and write its PID file) or if $3 (what we
# are waiting for) has taken more than START_TIMEOUT seconds.
check_starting() {
  local name=$1 start=$2 what=$3
  if ((SECONDS - start >= PID_GRACE)) && ! running_pid "$name" >/dev/null; then
    die_with_log "$name is not running" "${LOGFILE[$name]}"
  fi
  ((SECONDS - start < START_TIMEOUT)) \
    || die_with_log "$what not ready after ${START_TIMEOUT}s" "${LOGFILE[$name]}"
}

# Poll "$@" every 0.1 s until it succeeds, failing early if daemon $1 dies.
wait_for() {
  local name=$1 start=$SECONDS; shift
  until "$@" >/dev/null 2>&1; do
    check_starting "$name" "$start" "$name"
    sleep 0.1
  done
}

# ---------------------------------------------------------------------------- host setup

# /run may be a tmpfs, so the runtime directories are recreated on every `up`.
prepare_dirs() {
  install -d -o munge -g munge -m 755 /run/munge
  install -d -o mysql -g mysql -m 755 "$MYSQL_RUN_DIR"
  install -d -o slurm -g slurm -m 755 "$RUN_DIR" "$LOG_DIR" "$STATE_DIR"
  install -d -o root -g root -m 755 "$SPOOL_DIR" "$GPU_DIR"
}

# srun and slurmstepd look the node name up, so it must resolve. Every daemon and
# client connects through 127.0.0.1. NoInAddrAny keeps the listeners on loopback, but
# it binds them to the address the name resolves to, and slurmd calls srun back at the
# source address of srun's connection (127.0.0.1). So it is only usable when the name
# resolves to 127.0.0.1 exactly; with Debian's 127.0.1.1 or Docker's container IP
# srun steps hang ("Slurmd could not connect IO"), and the daemons listen on all
# addresses instead.
COMM_PARAMS="CommunicationParameters=NoCtldInAddrAny,NoInAddrAny"
resolve_node_address() {
  local entry addr
  if ! entry=$(getent hosts "$NODE"); then
    log "adding '127.0.0.1 $NODE' to /etc/hosts"
    printf '127.0.0.1 %s\n' "$NODE" >>/etc/hosts
    entry=$(getent hosts "$NODE") || die "$NODE still does not resolve"
  fi
  addr=${entry%% *}
  if [[ $addr != 127.0.0.1 ]]; then
    log "note: $NODE resolves to $addr, not 127.0.0.1: daemons will listen on all addresses"
    COMM_PARAMS="# $NODE resolves to $addr: listening on all addresses (no NoInAddrAny)"
  fi
}

ensure_test_users() {
  local u
  for u in "${TEST_USERS[@]}"; do
    id -u "$u" >/dev/null 2>&1 || { log "creating user $u"; useradd -m "$u"; }
  done
}

# Fake GPUs: gres.conf needs a File= per GPU or slurmd drops them. Character devices
# like /dev/null (c 1 3) avoid a slurmd error; plain files work where mknod is denied.
ensure_fake_gpus() {
  local i f
  for ((i = 0; i < GPUS; i++)); do
    f=$GPU_DIR/gpu$i
    [[ -e $f ]] && continue
    if ! mknod -m 666 "$f" c 1 3 2>/dev/null; then
      log "mknod not permitted: using a plain file for $f"
      install -m 666 /dev/null "$f"
    fi
  done
}

# One random password, made once and kept in a root-only file; never printed.
db_password() {
  if [[ ! -s $DBPASS_FILE ]]; then
    (umask 077 && od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$DBPASS_FILE")
  fi
  chmod 600 "$DBPASS_FILE"
  cat "$DBPASS_FILE"
}

# ---------------------------------------------------------------------------- configs

# "CPUs=2 Boards=1 ..." copied from `slurmd -C` avoids "configuration differs from
# hardware"; RealMemory at 90% of detected keeps the node from draining for memory.
node_topology() {
  local hw field value topo=() mem
  hw=$(slurmd -C)
  hw=${hw%%$'\n'*}   # first line; the second is UpTime
  for field in CPUs Boards SocketsPerBoard CoresPerSocket ThreadsPerCore; do
    value=$(grep -oE "(^| )$field=[0-9]+" <<<"$hw") || die "slurmd -C gave no $field: $hw"
    topo+=("${value# }")
  done
  mem=$(grep -oE 'RealMemory=[0-9]+' <<<"$hw") || die "slurmd -C gave no RealMemory: $hw"
  echo "${topo[*]} RealMemory=$(( ${mem#RealMemory=} * 9 / 10 ))"
}

write_slurm_conf() {
  local topology
  topology=$(node_topology)
  update_file "$CONF_DIR/slurm.conf" root:root 644 <<EOF
# Written by scripts/real-slurm.sh: one node on loopback, no cgroups, no systemd.
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
$COMM_PARAMS
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR
SlurmctldPidFile=${PIDFILE[slurmctld]}
SlurmdPidFile=${PIDFILE[slurmd]}
SlurmctldLogFile=${LOGFILE[slurmctld]}
SlurmdLogFile=${LOGFILE[slurmd]}
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SlurmdParameters=config_overrides
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
AccountingStorageTRES=gres/gpu
AccountingStorageEnforce=associations,limits,qos
JobCompType=jobcomp/none
PriorityType=priority/multifactor
PriorityCalcPeriod=1
PriorityDecayHalfLife=7-0
PriorityWeightFairshare=10000
PriorityWeightQOS=1000
PriorityWeightAge=100
InactiveLimit=0
KillWait=5
MinJobAge=300
Waittime=0
MailProg=/bin/true
NodeName=$NODE NodeAddr=127.0.0.1 $topology Gres=gpu:$GPUS State=UNKNOWN
# DefaultTime: without a time limit, jobs under MaxTRESMins limits would pend forever.
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE DefaultTime=10 State=UP
EOF
}

write_slurmdbd_conf() {
  local pass
  pass=$(db_password)
  # Must be owned by SlurmUser and mode 600, or slurmdbd refuses to start.
  update_file "$CONF_DIR/slurmdbd.conf" slurm:slurm 600 <<EOF
# Written by scripts/real-slurm.sh.
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=slurm
DebugLevel=info
LogFile=${LOGFILE[slurmdbd]}
PidFile=${PIDFILE[slurmdbd]}
StorageType=accounting_storage/mysql
# "localhost" makes the client library use the Unix socket; MariaDB has no TCP port.
StorageHost=localhost
StorageUser=slurm
StoragePass=$pass
StorageLoc=$DB_NAME
EOF
}

write_gres_conf() {
  update_file "$CONF_DIR/gres.conf" root:root 644 <<EOF
# Written by scripts/real-slurm.sh: fake GPUs.
AutoDetect=off
NodeName=$NODE Name=gpu File=$GPU_DIR/gpu[0-$((GPUS - 1))]
EOF
}

# slurmctld refuses to start on a state directory saved under another cluster name.
check_state_cluster() {
  local saved
  [[ -r $STATE_DIR/clustername ]] || return 0
  saved=$(<"$STATE_DIR/clustername")
  [[ $saved == "$CLUSTER" ]] \
    || die "state in $STATE_DIR belongs to cluster '$saved', not '$CLUSTER': run reset"
}

# ---------------------------------------------------------------------------- start

# Start daemon $1 with the rest of the command line unless it already runs:
# a second slurmdbd, for one, kills the first.
start_daemon() {
  local name=$1 pid; shift
  if pid=$(running_pid "$name"); then
    log "$name: already running (pid $pid)"
    return 0
  fi
  log "$name: starting"
  "$@" || die_with_log "$name failed to start" "${LOGFILE[$name]}"
}

munge_works() { munge -n | unmunge; }

start_munged() {
  start_daemon munged runuser -u munge -- /usr/sbin/munged
  wait_for munged munge_works
}

# mariadbd does not daemonise itself: setsid detaches it from our session so that it
# outlives this script and its caller's process group. Flags: no TCP listener (slurmdbd
# uses the socket), no binary logs, the InnoDB settings recommended for Slurm.
spawn_mariadbd() {
  setsid -f /usr/sbin/mariadbd --user=mysql \
    --skip-networking --socket="$MYSQL_SOCKET" --pid-file="${PIDFILE[mariadbd]}" \
    --skip-log-bin --expire-logs-days=0 \
    --innodb-buffer-pool-size=1024M --innodb-log-file-size=64M \
    --innodb-lock-wait-timeout=900 --log-error="${LOGFILE[mariadbd]}" \
    </dev/null >/dev/null 2>&1
}

start_mariadbd() {
  # A fresh volume or a purge leaves no system tables; the postinst normally makes them.
  if [[ ! -d /var/lib/mysql/mysql ]]; then
    log "mariadbd: initialising /var/lib/mysql"
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql \
      --auth-root-authentication-method=socket >/dev/null
  fi
  # The log lives in the slurm-owned log directory, where mysql cannot create files.
  touch "${LOGFILE[mariadbd]}"
  chown mysql:mysql "${LOGFILE[mariadbd]}"
  start_daemon mariadbd spawn_mariadbd
  wait_for mariadbd mariadb-admin --socket="$MYSQL_SOCKET" ping
}

mariadb_root() { mariadb --socket="$MYSQL_SOCKET" -u root "$@"; }

# The password goes through stdin, so it never shows in a process list.
setup_database() {
  local pass
  pass=$(db_password)
  mariadb_root <<EOF
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$pass';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$pass';
GRANT ALL ON $DB_NAME.* TO 'slurm'@'localhost';
EOF
}

cluster_list() { sacctmgr -n -P show cluster format=cluster; }

start_slurmdbd() {
  start_daemon slurmdbd slurmdbd
  wait_for slurmdbd cluster_list
}

# The cluster must exist in the database before slurmctld first starts.
ensure_cluster() {
  local clusters
  clusters=$(cluster_list)
  grep -qx "$CLUSTER" <<<"$clusters" && return 0
  log "adding cluster $CLUSTER to the accounting database"
  sacctmgr -i add cluster "$CLUSTER" >/dev/null
}

ctld_up() { [[ $(scontrol ping 2>/dev/null) == *"is UP"* ]]; }

start_slurmctld() {
  start_daemon slurmctld slurmctld
  wait_for slurmctld ctld_up
}

node_state() { sinfo -h -n "$NODE" -o %t 2>/dev/null || true; }

# Ready means slurmd registered and the node is exactly idle/mix/alloc: a suffix such as
# "idle*" (not responding) does not count. A drain survives restarts in the saved state
# (ReturnToService does not clear it), so a responding drained/down node is resumed once.
wait_node_ready() {
  local start=$SECONDS state resumed=0
  while :; do
    state=$(node_state)
    [[ $state =~ ^(idle|mix|alloc)$ ]] && return 0
    if ((!resumed)) && [[ $state =~ ^(drain|drng|down|inval)$ ]] \
      && [[ $(scontrol show node "$NODE" 2>/dev/null) == *SlurmdStartTime=2* ]]; then
      log "node $NODE is $state: resuming it"
      scontrol update nodename="$NODE" state=resume
      resumed=1
    fi
    check_starting slurmd "$start" "node $NODE (state '$state')"
    sleep 0.1
  done
}

start_slurmd() {
  start_daemon slurmd slurmd
  wait_node_ready
}

# QoS used by the tests. They need slurmdbd only, but the doc's rule is to create
# accounting objects once slurmd is up and every TRES exists.
ensure_qos() {
  local existing
  existing=$(sacctmgr -n -P show qos format=name)
  if ! grep -qx slowdown <<<"$existing"; then
    log "adding QoS slowdown"
    sacctmgr -i add qos slowdown Priority=0 MaxTRESPerUser=cpu=1 >/dev/null
  fi
  if ! grep -qx blocked <<<"$existing"; then
    log "adding QoS blocked"
    sacctmgr -i add qos blocked Priority=0 MaxSubmitJobsPerUser=0 GrpTRESMins=cpu=0 \
      Flags=DenyOnLimit >/dev/null
  fi
}

# ---------------------------------------------------------------------------- stop

# SIGTERM, poll, SIGKILL after STOP_TIMEOUT. Only a PID whose /proc/PID/exe is the
# expected binary is signalled.
stop_daemon() {
  local name=$1 pid
  if ! pid=$(running_pid "$name"); then
    log "$name: not running"
    return 0
  fi
  stop_pid "$name" "$pid" "$STOP_TIMEOUT"
}

stop_slurm_daemons() {
  stop_daemon slurmd
  stop_daemon slurmctld
  stop_daemon slurmdbd
}

# Each job's slurmstepd is daemonised and would outlive slurmd: cancel jobs first.
cancel_all_jobs() {
  local ids deadline
  running_pid slurmctld >/dev/null || return 0
  if ! ids=$(squeue -h -o %A); then
    log "warning: slurmctld does not answer; cannot cancel jobs"
    return 0
  fi
  [[ -n $ids ]] || return 0
  log "cancelling jobs: $(tr '\n' ' ' <<<"$ids")"
  # shellcheck disable=SC2086 # one job ID per word
  scancel $ids || true
  deadline=$((SECONDS + JOBS_TIMEOUT))
  while [[ -n $(squeue -h -o %A) ]]; do
    if ((SECONDS >= deadline)); then
      log "warning: jobs still in squeue after ${JOBS_TIMEOUT}s; stopping anyway"
      return 0
    fi
    sleep 0.25
  done
}

# ---------------------------------------------------------------------------- commands

cmd_up() {
  require_root
  install_packages
  prepare_dirs
  resolve_node_address
  ensure_test_users
  ensure_fake_gpus
  check_state_cluster
  write_slurm_conf
  write_slurmdbd_conf
  write_gres_conf
  if ((CONFIG_CHANGED)) && { running_pid slurmdbd || running_pid slurmctld \
    || running_pid slurmd; } >/dev/null; then
    log "configuration changed: restarting the slurm daemons"
    stop_slurm_daemons
  fi

  start_munged
  start_mariadbd
  setup_database
  start_slurmdbd
  ensure_cluster
  start_slurmctld
  start_slurmd
  ensure_qos
  log "up: cluster $CLUSTER, node $NODE is $(node_state)"
}

cmd_down() {
  require_root
  cancel_all_jobs
  local i
  for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
    stop_daemon "${DAEMONS[i]}"
  done
  log "down"
}

cmd_reset() {
  require_root
  install_packages
  prepare_dirs
  cancel_all_jobs
  stop_slurm_daemons
  start_mariadbd
  log "dropping database $DB_NAME, wiping $STATE_DIR and $SPOOL_DIR"
  mariadb_root -e "DROP DATABASE IF EXISTS $DB_NAME"
  find "$STATE_DIR" "$SPOOL_DIR" -mindepth 1 -delete
  cmd_up
}

cmd_status() {
  require_root   # /proc/PID/exe of other users' processes is readable by root only
  local name pid state rc=0
  echo "cluster: $CLUSTER"
  for name in "${DAEMONS[@]}"; do
    if pid=$(running_pid "$name"); then
      echo "$name: up (pid $pid)"
    else
      echo "$name: down"
      rc=1
    fi
  done
  if running_pid slurmctld >/dev/null; then
    state=$(node_state)
    echo "node $NODE: ${state:-unknown}"
    [[ $state =~ ^(idle|mix|alloc)$ ]] || rc=1
  else
    echo "node $NODE: unknown (slurmctld down)"
  fi
  return "$rc"
}

cmd_env() {
  printf 'export %s=%q\n' \
    REAL_SLURM_CLUSTER "$CLUSTER" \
    REAL_SLURM_NODE "$NODE" \
    REAL_SLURM_PARTITION "$PARTITION" \
    REAL_SLURM_GPUS "$GPUS" \
    REAL_SLURM_USERS "${TEST_USERS[*]}"
}

dispatch "$@"
