#!/usr/bin/env bash
# Print what a test run must never change on the host, so that two prints can be compared:
# /etc/slurm and /etc/munge (each file's path, mode, owner, size and checksum, or
# "absent"), the host's munge socket, the host's SLURM daemons (PID and executable; the
# test stacks' daemons run from /var/lib/waldur-slurm-test and are not listed) and, with
# --accounts, the host cluster's associations and QoS as its own sacctmgr shows them.
#
# Usage: scripts/host-fingerprint.sh [--accounts]
#
# scripts/test.sh prints it before and after pytest and fails the run on any difference.
set -euo pipefail

HOST_DAEMONS=(/usr/sbin/munged /usr/sbin/slurmdbd /usr/sbin/slurmctld /usr/sbin/slurmctld-wlm
  /usr/sbin/slurmd /usr/sbin/slurmd-wlm /usr/sbin/slurmrestd)

tree() {
  local dir=$1
  echo "== $dir"
  if [[ ! -e $dir ]]; then
    echo absent
    return 0
  fi
  find "$dir" -printf '%p %M %u:%g %s\n' | LC_ALL=C sort
  find "$dir" -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum
}

socket() {
  echo "== $1"
  stat -c '%F %i %U:%G %a' "$1" 2>/dev/null || echo absent
}

daemons() {
  local proc exe
  echo "== host SLURM daemons"
  for proc in /proc/[0-9]*; do
    exe=$(readlink "$proc/exe" 2>/dev/null) || continue
    exe=${exe% (deleted)}
    if [[ " ${HOST_DAEMONS[*]} " == *" $exe "* ]]; then
      echo "${proc#/proc/} $exe"
    fi
  done | sort -n
}

accounts() {
  echo "== host accounts"
  if [[ ! -x /usr/bin/sacctmgr ]]; then
    echo "no sacctmgr"
    return 0
  fi
  /usr/bin/sacctmgr -n -P show assoc \
    format=Cluster,Account,User,ParentName,Partition,Fairshare,GrpTRESMins,MaxTRESMins,QOS,DefaultQOS \
    2>&1 | LC_ALL=C sort || true
  /usr/bin/sacctmgr -n -P show qos format=Name,Priority,GrpTRESMins,MaxTRESPU,MaxSubmitPU,Flags \
    2>&1 | LC_ALL=C sort || true
}

tree /etc/slurm
tree /etc/munge
socket /run/munge/munge.socket.2
daemons
if [[ ${1:-} == --accounts ]]; then
  accounts
fi
