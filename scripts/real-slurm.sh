#!/usr/bin/env bash
# Run a real one-node SLURM of a given version in its own chroot, isolated from the
# host, as root, without systemd, for integration tests of the SLURM backend.
#
# Usage: scripts/real-slurm.sh up|down|reset|status|env VERSION
#
#   VERSION 22.05 (Debian 12 "bookworm" packages) or 24.11 (Debian 13 "trixie").
#
#   up      build the chroot with mmdebstrap if missing, write the configs, mount /proc,
#           /sys, /dev and /tmp into it, start munged, mariadbd, slurmdbd, slurmctld and
#           slurmd inside it, and wait until the node is idle; on 24.11 also slurmrestd
#           (JWT auth, 127.0.0.1:7820, as the unprivileged user nobody). Idempotent:
#           daemons that already run are left alone.
#   down    cancel all jobs, stop the daemons (by PID file, never by name), unmount.
#   reset   clean slate: stop the slurm daemons, drop the accounting database, wipe the
#           controller state and the slurmd spool, then `up`.
#   status  print each daemon's state; exit 0 only if all run and the node is usable.
#   env     print `export` lines describing the cluster, for the tests.
#
# REAL_SLURM_INSTANCE=NAME runs a second, independent stack of the same version (one a
# run may kill daemons of, as the soak does: bench/soak.py): its own directory
# VERSION-NAME, cluster NAMEVERSION without the dot (e.g. soak2411) and ports 100 above
# the default stack's (REAL_SLURM_PORT_OFFSET=N: N above, when another instance holds
# those). Without it, the default stack.
#
# Everything lives under /var/lib/waldur-slurm-test/VERSION (REAL_SLURM_BASE overrides
# /var/lib/waldur-slurm-test): root/ is the chroot, bin/ holds host-side wrappers of the
# SLURM commands (a `slurm_bin_path`). Each stack has its own munge key and socket,
# MariaDB socket (no TCP), cluster name and ports. The host's /etc/slurm, /etc/munge,
# munged and any SLURM running on the host are never touched; the only host change is
# the test users (useradd) and, if the host name does not resolve, a line in /etc/hosts.
# Facts and gotchas behind every step: shared/docs/real-slurm.md and real-slurm-24.11.md.

set -euo pipefail

LOG_TAG=real-slurm
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VERSION=${2:-}
case "$VERSION" in
  22.05)
    SUITE=bookworm
    CLUSTER=test2205
    CTLD_PORT=6917 SLURMD_PORT=6918 DBD_PORT=6919
    ;;
  24.11)
    SUITE=trixie
    CLUSTER=test2411
    CTLD_PORT=7817 SLURMD_PORT=7818 DBD_PORT=7819
    RESTD_PORT=7820
    ;;
  *)
    echo "usage: $0 up|down|reset|status|env 22.05|24.11" >&2
    exit 2
    ;;
esac
INSTANCE=${REAL_SLURM_INSTANCE:-}
if [[ -n $INSTANCE ]]; then
  [[ $INSTANCE =~ ^[a-z][a-z0-9]{0,9}$ ]] \
    || { echo "REAL_SLURM_INSTANCE: 1-10 lower-case letters and digits, not '$INSTANCE'" >&2; exit 2; }
  CLUSTER=$INSTANCE${VERSION/./}
  OFFSET=${REAL_SLURM_PORT_OFFSET:-100}
  [[ $OFFSET =~ ^[1-9][0-9]{0,2}0$ ]] \
    || { echo "REAL_SLURM_PORT_OFFSET: a multiple of 10 from 10 to 9990, not '$OFFSET'" >&2; exit 2; }
  CTLD_PORT=$((CTLD_PORT + OFFSET)) SLURMD_PORT=$((SLURMD_PORT + OFFSET))
  DBD_PORT=$((DBD_PORT + OFFSET))
  [[ -z ${RESTD_PORT:-} ]] || RESTD_PORT=$((RESTD_PORT + OFFSET))
fi

NODE="$(hostname -s)"
PARTITION=debug
GPUS=2
TEST_USERS=(slurmtest1 slurmtest2 slurmtest3)
PACKAGES=(munge mariadb-server slurmdbd slurmctld slurmd slurm-client)
[[ $VERSION == 22.05 ]] || PACKAGES+=(slurmrestd slurm-wlm-jwt-plugin)
MIRROR=${REAL_SLURM_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${REAL_SLURM_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

STACKS=${REAL_SLURM_BASE:-/var/lib/waldur-slurm-test}
BASE=$STACKS/$VERSION${INSTANCE:+-$INSTANCE}
ROOT=$BASE/root       # the chroot
BIN_DIR=$BASE/bin     # host-side wrappers: the slurm_bin_path of this stack
LIBS=$ROOT/usr/lib/x86_64-linux-gnu
# Host directories mounted into the chroot, in mount order. /tmp: jobs run in the
# directory they were submitted from, and tests submit from host temporary directories.
MOUNTS=(proc sys dev dev/pts tmp)

# Paths as seen inside the chroot. A relative symlink at $ROOT$ROOT points to the
# chroot's own root, so $ROOT/... names the same file inside the chroot and on the host:
# the configs can name the munge socket and the plugin directory by their host path,
# which host-side clients and chrooted daemons both resolve.
CONF_DIR=/etc/slurm
STATE_DIR=/var/lib/slurm/slurmctld   # job-ID counter, job state, node drain state
SPOOL_DIR=/var/lib/slurm/slurmd      # batch scripts and credentials
GPU_DIR=/var/lib/slurm/fake-gpu
DBPASS_FILE=/var/lib/slurm/.dbpass
LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm
MUNGE_SOCKET=/run/munge/munge.socket.2
MYSQL_RUN_DIR=/run/mysqld
MYSQL_SOCKET=$MYSQL_RUN_DIR/mysqld.sock
DB_NAME=slurm_acct_db
# 24.11 only: the HS256 key of JWT auth (slurm only may read it), and slurmrestd, which
# refuses to run as root or SlurmUser: it runs as nobody and keeps its PID file in a
# directory of its own.
JWT_KEY=/var/lib/slurm/jwt_hs256.key
RESTD_USER=nobody
RESTD_GROUP=nogroup
RESTD_RUN_DIR=/run/slurmrestd
RESTD_PLUGINS=openapi/slurmdbd,openapi/slurmctld

# Start order; `down` walks it backwards.
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)
declare -A PIDFILE=(
  [munged]=/run/munge/munged.pid
  [mariadbd]=$MYSQL_RUN_DIR/mysqld.pid
  [slurmdbd]=$RUN_DIR/slurmdbd.pid
  [slurmctld]=$RUN_DIR/slurmctld.pid
  [slurmd]=$RUN_DIR/slurmd.pid
  [slurmrestd]=$RESTD_RUN_DIR/slurmrestd.pid
)
declare -A BINARY=(
  [munged]=/usr/sbin/munged [mariadbd]=/usr/sbin/mariadbd [slurmdbd]=/usr/sbin/slurmdbd
  [slurmctld]=/usr/sbin/slurmctld [slurmd]=/usr/sbin/slurmd [slurmrestd]=/usr/sbin/slurmrestd
)
declare -A LOGFILE=(
  [munged]=/var/log/munge/munged.log
  [mariadbd]=$LOG_DIR/mariadbd.log
  [slurmdbd]=$LOG_DIR/slurmdbd.log
  [slurmctld]=$LOG_DIR/slurmctld.log
  [slurmd]=$LOG_DIR/slurmd.log
  [slurmrestd]=$RESTD_RUN_DIR/slurmrestd.log
)
# The SLURM daemons a configuration change restarts, in stop order.
SLURM_DAEMONS=(slurmd slurmctld slurmdbd)
if [[ $VERSION != 22.05 ]]; then
  DAEMONS+=(slurmrestd)
  SLURM_DAEMONS=(slurmrestd "${SLURM_DAEMONS[@]}")
fi
WRAPPED=(sacctmgr sacct sbatch squeue scancel sshare scontrol sinfo srun)

START_TIMEOUT=60   # seconds per readiness wait (a cold slurmdbd creates the schema first)
PID_GRACE=3        # seconds a starting daemon may take to write its PID file
STOP_TIMEOUT=20    # seconds between SIGTERM and SIGKILL
JOBS_TIMEOUT=60    # seconds to wait for cancelled jobs to leave squeue

# ---------------------------------------------------------------------------- helpers

# Run a command inside the chroot with a clean environment.
in_root() {
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 chroot "$ROOT" "$@"
}

# Run one of this stack's client commands from the host (the wrapper in BIN_DIR).
slurm() { "$BIN_DIR/$1" "${@:2}"; }

# Print the PID of daemon $1 if it runs: the PID file must name a live process whose
# executable is this chroot's binary (a host daemon of the same name never matches).
running_pid() {
  local name=$1 pid exe want
  pid=$(cat "$ROOT${PIDFILE[$name]}" 2>/dev/null) || return 1
  pid=${pid//[^0-9]/}
  [[ -n $pid ]] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  exe=${exe% (deleted)}
  [[ $exe == "$(real_binary "$name")" ]] || return 1
  echo "$pid"
}

# The host path of daemon $1's executable, its symlinks resolved inside the chroot
# (22.05's slurmctld and slurmd are alternatives links to slurmctld-wlm and slurmd-wlm).
declare -A REAL_BINARY=()
real_binary() {
  local name=$1
  [[ -n ${REAL_BINARY[$name]:-} ]] \
    || REAL_BINARY[$name]=$ROOT$(in_root readlink -f "${BINARY[$name]}")
  echo "${REAL_BINARY[$name]}"
}

log_of() { echo "$ROOT${LOGFILE[$1]}"; }

check_starting() {
  local name=$1 start=$2 what=$3
  if ((SECONDS - start >= PID_GRACE)) && ! running_pid "$name" >/dev/null; then
    die_with_log "$name is not running" "$(log_of "$name")"
  fi
  ((SECONDS - start < START_TIMEOUT)) \
    || die_with_log "$what not ready after ${START_TIMEOUT}s" "$(log_of "$name")"
}

# Poll "$@" every 0.1 s until it succeeds, failing early if daemon $1 dies.
wait_for() {
  local name=$1 start=$SECONDS; shift
  until "$@" >/dev/null 2>&1; do
    check_starting "$name" "$start" "$name"
    sleep 0.1
  done
}

# Mount points inside the chroot that are mounted now, deepest first.
mounted_in_root() {
  awk -v root="$ROOT" '$5 == root || index($5, root "/") == 1 { print $5 }' \
    /proc/self/mountinfo | sort -r
}

# Run "$@" holding the lock of host changes: `up` of two versions may run at once, and
# apt-get, useradd and the /etc/hosts append must not.
host_locked() {
  install -d -m 755 "$STACKS"
  flock "$STACKS/.host.lock" "$@"
}

# ---------------------------------------------------------------------------- chroot

# mmdebstrap runs the packages' maintainer scripts with a policy-rc.d that forbids
# starting daemons. It builds into a temporary directory first, so a failed build never
# leaves a half chroot behind under the real name.
build_root() {
  [[ -x $ROOT/usr/sbin/slurmdbd ]] && return 0
  if ! command -v mmdebstrap >/dev/null; then
    log "installing mmdebstrap on the host"
    export DEBIAN_FRONTEND=noninteractive
    host_locked sh -c 'command -v mmdebstrap >/dev/null || {
      apt-get -q update && apt-get -q -o Dpkg::Use-Pty=0 install -y --no-install-recommends mmdebstrap
    }' >&2
  fi
  local tmp=$BASE/root.building include
  remove_tree "$tmp"
  install -d -m 755 "$BASE"
  include=$(IFS=,; echo "${PACKAGES[*]}")
  log "building the $SUITE chroot in $ROOT (packages: $include)"
  mmdebstrap --mode=root --variant=minbase --include="$include" --quiet "$SUITE" "$tmp" \
    "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" \
    "deb $SECURITY_MIRROR $SUITE-security main" >&2
  mv "$tmp" "$ROOT"
  log "chroot built ($(du -sh "$ROOT" | cut -f1))"
}

# Delete directory $1, refusing while anything is mounted inside it.
remove_tree() {
  local dir=$1
  [[ -e $dir ]] || return 0
  if awk -v d="$dir" 'index($5, d "/") == 1 || $5 == d { f = 1 } END { exit !f }' \
    /proc/self/mountinfo; then
    die "refusing to delete $dir: something is mounted inside it"
  fi
  rm -rf --one-file-system "$dir"
}

mount_root() {
  local m
  for m in "${MOUNTS[@]}"; do
    if ! mountpoint -q "$ROOT/$m"; then
      install -d "$ROOT/$m"
      # Recursive for /sys: 22.05's slurmd needs the cgroup file system under it.
      mount --rbind "/$m" "$ROOT/$m"
      # Private: nothing mounted or unmounted later on either side propagates.
      mount --make-rprivate "$ROOT/$m"
    fi
  done
}

unmount_root() {
  local m
  while read -r m; do
    [[ -n $m ]] || continue
    umount "$m" || umount -l "$m"
  done < <(mounted_in_root)
}

# The host path of the chroot, made valid inside it (see CONF_DIR above).
link_host_path() {
  local link=$ROOT$ROOT rel
  [[ -L $link ]] && return 0
  install -d "$(dirname "$link")"
  rel=$(realpath --relative-to="$(dirname "$link")" "$ROOT")
  ln -s "$rel" "$link"
}

# /run inside the chroot is a plain directory, so runtime directories are made on
# every `up`; the chroot's own users own them.
prepare_dirs() {
  in_root install -d -o munge -g munge -m 755 /run/munge
  in_root install -d -o mysql -g mysql -m 755 "$MYSQL_RUN_DIR"
  in_root install -d -o slurm -g slurm -m 755 "$RUN_DIR" "$LOG_DIR" "$STATE_DIR"
  in_root install -d -o root -g root -m 755 "$SPOOL_DIR" "$GPU_DIR"
  [[ $VERSION == 22.05 ]] \
    || in_root install -d -o "$RESTD_USER" -g "$RESTD_GROUP" -m 755 "$RESTD_RUN_DIR"
}

# The node's name must resolve on the host (srun) and in the chroot (the daemons,
# slurmstepd). Every daemon and client connects through 127.0.0.1; NoInAddrAny keeps
# the listeners there only when the name resolves to 127.0.0.1 exactly.
COMM_PARAMS="CommunicationParameters=NoCtldInAddrAny,NoInAddrAny"
resolve_node_address() {
  local entry addr
  if ! entry=$(getent hosts "$NODE"); then
    log "adding '127.0.0.1 $NODE' to /etc/hosts"
    host_locked sh -c "getent hosts '$NODE' >/dev/null || echo '127.0.0.1 $NODE' >>/etc/hosts"
    entry=$(getent hosts "$NODE") || die "$NODE still does not resolve"
  fi
  addr=${entry%% *}
  if [[ $addr != 127.0.0.1 ]]; then
    log "note: $NODE resolves to $addr, not 127.0.0.1: daemons will listen on all addresses"
    COMM_PARAMS="# $NODE resolves to $addr: listening on all addresses (no NoInAddrAny)"
  fi
  update_file "$ROOT/etc/hosts" root:root 644 <<EOF
127.0.0.1 localhost
$addr $NODE
EOF
}

# Test users exist on the host (host-side clients send their uid, squeue prints names)
# and in the chroot with the same uid and gid (slurmctld and slurmstepd look them up).
ensure_test_users() {
  local u entry group
  for u in "${TEST_USERS[@]}"; do
    if ! id -u "$u" >/dev/null 2>&1; then
      log "creating user $u on the host"
      host_locked sh -c "id -u '$u' >/dev/null 2>&1 || useradd -m '$u'"
    fi
    entry=$(getent passwd "$u")
    group=$(getent group "$(id -g "$u")")
    grep -q "^${group%%:*}:" "$ROOT/etc/group" || echo "$group" >>"$ROOT/etc/group"
    grep -q "^$u:" "$ROOT/etc/passwd" || echo "$entry" >>"$ROOT/etc/passwd"
  done
}

ensure_fake_gpus() {
  local i f
  for ((i = 0; i < GPUS; i++)); do
    f=$ROOT$GPU_DIR/gpu$i
    [[ -e $f ]] && continue
    if ! mknod -m 666 "$f" c 1 3 2>/dev/null; then
      log "mknod not permitted: using a plain file for $f"
      install -m 666 /dev/null "$f"
    fi
  done
}

# One random password, made once and kept in a root-only file; never printed.
db_password() {
  local file=$ROOT$DBPASS_FILE
  if [[ ! -s $file ]]; then
    (umask 077 && od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$file")
  fi
  chmod 600 "$file"
  cat "$file"
}

# A host-side command per SLURM client: the chroot's binary through the chroot's own
# dynamic loader and libraries, with this stack's slurm.conf. No chroot call, so any
# user can run it.
write_wrappers() {
  local cmd loader=$ROOT/lib64/ld-linux-x86-64.so.2
  install -d -m 755 "$BIN_DIR"
  for cmd in "${WRAPPED[@]}"; do
    update_file "$BIN_DIR/$cmd" root:root 755 <<EOF
#!/bin/sh
# $cmd of the SLURM $VERSION test stack (scripts/real-slurm.sh), run from the host.
SLURM_CONF=$ROOT$CONF_DIR/slurm.conf
export SLURM_CONF
exec $loader --argv0 $cmd --library-path $LIBS/slurm-wlm:$LIBS $ROOT/usr/bin/$cmd "\$@"
EOF
  done
}

# ---------------------------------------------------------------------------- configs

node_topology() {
  local hw field value topo=() mem
  hw=$(in_root slurmd -C)
  hw=${hw%%$'\n'*}
  for field in CPUs Boards SocketsPerBoard CoresPerSocket ThreadsPerCore; do
    value=$(grep -oE "(^| )$field=[0-9]+" <<<"$hw") || die "slurmd -C gave no $field: $hw"
    topo+=("${value# }")
  done
  mem=$(grep -oE 'RealMemory=[0-9]+' <<<"$hw") || die "slurmd -C gave no RealMemory: $hw"
  echo "${topo[*]} RealMemory=$(( ${mem#RealMemory=} * 9 / 10 ))"
}

write_slurm_conf() {
  local topology switch=SwitchType=switch/none
  topology=$(node_topology)
  # 24.11 has no switch/none plugin any more.
  [[ $VERSION == 22.05 ]] || switch="# SwitchType: none (no switch plugin in $VERSION)"
  update_file "$ROOT$CONF_DIR/slurm.conf" root:root 644 <<EOF
# Written by scripts/real-slurm.sh: SLURM $VERSION test stack, one node on loopback.
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
$(jwt_conf)
# The munge socket by its host path: clients on the host use it too. Connections to
# slurmctld take it from AuthInfo, connections to slurmdbd from AccountingStoragePass.
AuthInfo=socket=$ROOT$MUNGE_SOCKET
AccountingStoragePass=$ROOT$MUNGE_SOCKET
PluginDir=$LIBS/slurm-wlm
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
$switch
ReturnToService=2
SlurmdParameters=config_overrides
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
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
  update_file "$ROOT$CONF_DIR/slurmdbd.conf" "$(slurm_owner)" 600 <<EOF
# Written by scripts/real-slurm.sh: SLURM $VERSION test stack.
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
$(jwt_conf)
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
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

# 24.11: JWT as the second authentication type (slurmrestd's tokens), in slurm.conf and
# slurmdbd.conf alike; 22.05 stays munge only.
jwt_conf() {
  if [[ $VERSION == 22.05 ]]; then
    echo "# AuthAltTypes: none (no slurmrestd on $VERSION)"
  else
    echo "AuthAltTypes=auth/jwt"
    echo "AuthAltParameters=jwt_key=$JWT_KEY"
  fi
}

# The JWT signing key: 32 random bytes, made once, slurm's alone (the daemons refuse a
# key others can read). Never printed.
ensure_jwt_key() {
  [[ $VERSION == 22.05 ]] && return 0
  local file=$ROOT$JWT_KEY
  if [[ ! -s $file ]]; then
    log "making the JWT key $JWT_KEY"
    (umask 077 && head -c 32 /dev/urandom >"$file")
  fi
  chown "$(slurm_owner)" "$file"
  chmod 600 "$file"
}

# The chroot's slurm user, by number: the host may have no user of that name.
slurm_owner() { echo "$(in_root id -u slurm):$(in_root id -g slurm)"; }

write_gres_conf() {
  update_file "$ROOT$CONF_DIR/gres.conf" root:root 644 <<EOF
# Written by scripts/real-slurm.sh: fake GPUs.
AutoDetect=off
NodeName=$NODE Name=gpu File=$GPU_DIR/gpu[0-$((GPUS - 1))]
EOF
}

# 24.11's slurmd dies without a cgroup mount unless the cgroup plugin is disabled.
write_cgroup_conf() {
  [[ $VERSION == 22.05 ]] && return 0
  update_file "$ROOT$CONF_DIR/cgroup.conf" root:root 644 <<EOF
# Written by scripts/real-slurm.sh: no cgroups here.
CgroupPlugin=disabled
EOF
}

check_state_cluster() {
  local saved file=$ROOT$STATE_DIR/clustername
  [[ -r $file ]] || return 0
  saved=$(<"$file")
  saved=${saved%%|*}   # 24.11 writes "name|id"
  [[ $saved == "$CLUSTER" ]] \
    || die "state in $ROOT$STATE_DIR belongs to cluster '$saved', not '$CLUSTER': run reset"
}

# ---------------------------------------------------------------------------- start

start_daemon() {
  local name=$1 pid; shift
  if pid=$(running_pid "$name"); then
    log "$name: already running (pid $pid)"
    return 0
  fi
  log "$name: starting"
  "$@" || die_with_log "$name failed to start" "$(log_of "$name")"
}

munge_works() { in_root sh -c 'munge -n | unmunge'; }

start_munged() {
  # --force: a crash leaves the socket behind in the chroot's on-disk /run.
  start_daemon munged in_root runuser -u munge -- /usr/sbin/munged --force
  wait_for munged munge_works
}

spawn_mariadbd() {
  setsid -f env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot "$ROOT" /usr/sbin/mariadbd \
    --user=mysql --skip-networking --socket="$MYSQL_SOCKET" \
    --pid-file="${PIDFILE[mariadbd]}" --skip-log-bin --expire-logs-days=0 \
    --innodb-buffer-pool-size=256M --innodb-log-file-size=64M \
    --innodb-lock-wait-timeout=900 --log-error="${LOGFILE[mariadbd]}" \
    </dev/null >/dev/null 2>&1
}

start_mariadbd() {
  if [[ ! -d $ROOT/var/lib/mysql/mysql ]]; then
    log "mariadbd: initialising /var/lib/mysql"
    in_root mariadb-install-db --user=mysql --datadir=/var/lib/mysql \
      --auth-root-authentication-method=socket >/dev/null
  fi
  # The log lives in the slurm-owned log directory, where mysql cannot create files.
  in_root sh -c "touch ${LOGFILE[mariadbd]} && chown mysql:mysql ${LOGFILE[mariadbd]}"
  start_daemon mariadbd spawn_mariadbd
  wait_for mariadbd in_root mariadb-admin --socket="$MYSQL_SOCKET" ping
}

mariadb_root() { in_root mariadb --socket="$MYSQL_SOCKET" -u root "$@"; }

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

cluster_list() { slurm sacctmgr -n -P show cluster format=cluster; }

start_slurmdbd() {
  start_daemon slurmdbd in_root /usr/sbin/slurmdbd
  wait_for slurmdbd cluster_list
}

ensure_cluster() {
  local clusters
  clusters=$(cluster_list)
  grep -qx "$CLUSTER" <<<"$clusters" && return 0
  log "adding cluster $CLUSTER to the accounting database"
  slurm sacctmgr -i add cluster "$CLUSTER" >/dev/null
}

ctld_up() { [[ $(slurm scontrol ping 2>/dev/null) == *"is UP"* ]]; }

start_slurmctld() {
  start_daemon slurmctld in_root /usr/sbin/slurmctld
  wait_for slurmctld ctld_up
}

node_state() { slurm sinfo -h -n "$NODE" -o %t 2>/dev/null || true; }

wait_node_ready() {
  local start=$SECONDS state resumed=0
  while :; do
    state=$(node_state)
    [[ $state =~ ^(idle|mix|alloc)$ ]] && return 0
    if ((!resumed)) && [[ $state =~ ^(drain|drng|down|inval)$ ]] \
      && [[ $(slurm scontrol show node "$NODE" 2>/dev/null) == *SlurmdStartTime=2* ]]; then
      log "node $NODE is $state: resuming it"
      slurm scontrol update nodename="$NODE" state=resume
      resumed=1
    fi
    check_starting slurmd "$start" "node $NODE (state '$state')"
    sleep 0.1
  done
}

start_slurmd() {
  start_daemon slurmd in_root /usr/sbin/slurmd
  wait_node_ready
}

ensure_qos() {
  local existing
  existing=$(slurm sacctmgr -n -P show qos format=name)
  if ! grep -qx slowdown <<<"$existing"; then
    log "adding QoS slowdown"
    slurm sacctmgr -i add qos slowdown Priority=0 MaxTRESPerUser=cpu=1 >/dev/null
  fi
  if ! grep -qx blocked <<<"$existing"; then
    log "adding QoS blocked"
    slurm sacctmgr -i add qos blocked Priority=0 MaxSubmitJobsPerUser=0 GrpTRESMins=cpu=0 \
      Flags=DenyOnLimit >/dev/null
  fi
}

# slurmrestd writes no PID file: a shell run as the unprivileged user writes its own PID
# and execs slurmrestd in its place. SLURM_JWT=daemon makes auth/jwt its own
# authentication plugin, so it passes each request's token on; without it every token
# is refused ("Rejecting thread config token").
spawn_slurmrestd() {
  setsid -f env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin SLURM_JWT=daemon chroot "$ROOT" \
    setpriv --reuid="$RESTD_USER" --regid="$RESTD_GROUP" --clear-groups \
    sh -c 'echo $$ >"$1" && shift && exec "$@"' sh "${PIDFILE[slurmrestd]}" \
    /usr/sbin/slurmrestd -a rest_auth/jwt -s "$RESTD_PLUGINS" "127.0.0.1:$RESTD_PORT" \
    </dev/null >>"$(log_of slurmrestd)" 2>&1
}

restd_listens() { (exec 3<>"/dev/tcp/127.0.0.1/$RESTD_PORT") 2>/dev/null; }

start_slurmrestd() {
  [[ $VERSION == 22.05 ]] && return 0
  start_daemon slurmrestd spawn_slurmrestd
  wait_for slurmrestd restd_listens
}

# ---------------------------------------------------------------------------- stop

stop_daemon() {
  local name=$1 pid
  if ! pid=$(running_pid "$name"); then
    log "$name: not running"
    return 0
  fi
  stop_pid "$name" "$pid" "$STOP_TIMEOUT"
}

stop_slurm_daemons() {
  local name
  for name in "${SLURM_DAEMONS[@]}"; do
    stop_daemon "$name"
  done
}

cancel_all_jobs() {
  local ids deadline
  running_pid slurmctld >/dev/null || return 0
  if ! ids=$(slurm squeue -h -o %A); then
    log "warning: slurmctld does not answer; cannot cancel jobs"
    return 0
  fi
  [[ -n $ids ]] || return 0
  log "cancelling jobs: $(tr '\n' ' ' <<<"$ids")"
  # shellcheck disable=SC2086 # one job ID per word
  slurm scancel $ids || true
  deadline=$((SECONDS + JOBS_TIMEOUT))
  while [[ -n $(slurm squeue -h -o %A) ]]; do
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
  build_root
  link_host_path
  mount_root
  prepare_dirs
  resolve_node_address
  ensure_test_users
  ensure_fake_gpus
  check_state_cluster
  write_wrappers
  write_slurm_conf
  write_slurmdbd_conf
  write_gres_conf
  write_cgroup_conf
  ensure_jwt_key
  if ((CONFIG_CHANGED)) && any_running "${SLURM_DAEMONS[@]}"; then
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
  start_slurmrestd
  log "up: SLURM $VERSION, cluster $CLUSTER, node $NODE is $(node_state)"
}

cmd_down() {
  require_root
  if [[ -d $ROOT ]]; then
    cancel_all_jobs
    local i
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
      stop_daemon "${DAEMONS[i]}"
    done
    unmount_root
  fi
  log "down: SLURM $VERSION"
}

cmd_reset() {
  require_root
  build_root
  link_host_path
  mount_root
  prepare_dirs
  cancel_all_jobs
  stop_slurm_daemons
  start_munged
  start_mariadbd
  log "dropping database $DB_NAME, wiping $STATE_DIR and $SPOOL_DIR"
  mariadb_root -e "DROP DATABASE IF EXISTS $DB_NAME"
  find "$ROOT$STATE_DIR" "$ROOT$SPOOL_DIR" -mindepth 1 -delete
  cmd_up
}

cmd_status() {
  require_root
  local name pid state rc=0
  echo "SLURM $VERSION: cluster $CLUSTER in $ROOT"
  if [[ ! -x $ROOT/usr/sbin/slurmdbd ]]; then
    echo "chroot: missing"
    return 1
  fi
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
    # comp: jobs are completing; the node still takes new ones.
    [[ $state =~ ^(idle|mix|alloc|comp)$ ]] || rc=1
  else
    echo "node $NODE: unknown (slurmctld down)"
  fi
  [[ $VERSION == 22.05 ]] || echo "slurmrestd: http://127.0.0.1:$RESTD_PORT (JWT)"
  return "$rc"
}

any_running() {
  local name
  for name in "$@"; do
    running_pid "$name" >/dev/null && return 0
  done
  return 1
}

cmd_env() {
  printf 'export %s=%q\n' \
    REAL_SLURM_VERSION "$VERSION" \
    REAL_SLURM_CLUSTER "$CLUSTER" \
    REAL_SLURM_BIN "$BIN_DIR" \
    REAL_SLURM_ROOT "$ROOT" \
    REAL_SLURM_NODE "$NODE" \
    REAL_SLURM_PARTITION "$PARTITION" \
    REAL_SLURM_GPUS "$GPUS" \
    REAL_SLURM_USERS "${TEST_USERS[*]}" \
    REAL_SLURMDBD_PID_FILE "$ROOT${PIDFILE[slurmdbd]}" \
    REAL_SLURMDBD_EXE "$ROOT${BINARY[slurmdbd]}"
  # A token for user U, valid S seconds: `$BIN_DIR/scontrol token username=U lifespan=S`
  # (as root) prints SLURM_JWT=<token>.
  [[ $VERSION == 22.05 ]] || printf 'export %s=%q\n' \
    REAL_SLURMRESTD_URL "http://127.0.0.1:$RESTD_PORT" \
    REAL_SLURMRESTD_TOKEN_COMMAND "$BIN_DIR/scontrol token"
}

dispatch "${1:-}"
