#!/usr/bin/env bash
# Run the whole test suite: lint, types, parser, domain, emulator, real SLURM, LDAP and
# framework tiers. Sets up what it needs first: a virtualenv in .venv with the package
# and its dev dependencies and, when run as root, one real SLURM per tested version
# (scripts/real-slurm.sh reset VERSION: 22.05 and 24.11, each in its own chroot under
# /var/lib/waldur-slurm-test, started on an empty accounting database) and RabbitMQ and
# OpenLDAP (scripts/slapd.sh).
# Extra arguments go to pytest (e.g. -k usage, tests/emulator).
#
# As root, the run also proves that it leaves the host's SLURM alone: it prints
# scripts/host-fingerprint.sh before and after pytest (/etc/slurm, /etc/munge, the
# host's munge socket and SLURM daemons) and fails on any difference. In CI (CI=true)
# a SLURM installed on the host itself (scripts/host-slurm-decoy.sh) runs during the
# whole suite, as on a site's head node, and its accounts must be unchanged too.
# On Python 3.11; scripts/test-pythons.sh runs the tiers without services on 3.10, 3.12
# and 3.13, and .ci/run runs both.
set -euo pipefail
cd "$(dirname "$0")/.."

SLURM_VERSIONS=(22.05 24.11)
# Run in a pytest process of its own, beside the others (see "== pytest" below), with a
# broker of its own for its broker tests (the default one's queue serves the others).
SLOW_VERSION=22.05
SLOW_BROKER=(env RMQ_INSTANCE=v2205 RMQ_PORT_BASE=35900)

# shellcheck source=scripts/venv.sh
. scripts/venv.sh
ensure_venv

# Start each real SLURM from a clean slate, in parallel (a cold start builds a chroot:
# mostly downloads). A clean slate per run: nothing a previous run left in the accounting
# database (an association left without its parent makes SLURM 22.05's slurmdbd crash at
# every association read with parent information: README, "SLURM 22.05's slurmdbd and
# orphaned associations") carries over.
start_real_slurms() {
  local v logs=() pids=() i status=0
  for v in "${SLURM_VERSIONS[@]}"; do
    logs+=("$(mktemp)")
    bash scripts/real-slurm.sh reset "$v" >"${logs[-1]}" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[i]}" || status=1
    echo "-- SLURM ${SLURM_VERSIONS[i]}:"
    cat "${logs[i]}"
    rm -f "${logs[i]}"
  done
  return "$status"
}

fingerprint_args=()
if [ "$(id -u)" = 0 ]; then
    # setfacl/getfacl: the project-directory tests set and read real ACLs on the host.
    if ! command -v setfacl >/dev/null; then
        echo "== installing acl (setfacl, getfacl) for the project-directory tests"
        apt-get -q update && apt-get -q -o Dpkg::Use-Pty=0 install -y --no-install-recommends acl
    fi
    if [ "${CI:-}" = true ]; then
        echo "== a SLURM on the host itself, which the run must leave alone (scripts/host-slurm-decoy.sh)"
        # The decoy is the suite's own in CI: one whose database a crashed slurmdbd left
        # unreadable (SLURM 22.05 was seen to crash again on every start) is reset once.
        if ! bash scripts/host-slurm-decoy.sh status >/dev/null 2>&1 &&
            ! bash scripts/host-slurm-decoy.sh up; then
            echo "== the host SLURM did not come up: resetting it (scripts/host-slurm-decoy.sh reset)"
            bash scripts/host-slurm-decoy.sh reset
        fi
        fingerprint_args=(--accounts)
    fi
    echo "== starting the real SLURMs ${SLURM_VERSIONS[*]} (scripts/real-slurm.sh reset VERSION)"
    start=$SECONDS
    start_real_slurms
    echo "== real SLURMs up in $((SECONDS - start)) s"
    echo "== starting RabbitMQ for the broker tier (scripts/rabbitmq.sh up)"
    bash scripts/rabbitmq.sh up
    "${SLOW_BROKER[@]}" bash scripts/rabbitmq.sh up
    echo "== starting OpenLDAP for the LDAP tier (scripts/slapd.sh up)"
    bash scripts/slapd.sh up
    host_before=$(bash scripts/host-fingerprint.sh "${fingerprint_args[@]}")
else
    echo "== not root: the real SLURM, broker and LDAP tiers will be skipped (run as root to include them)"
fi

echo "== ruff and mypy"
.venv/bin/ruff check waldur_site_agent_slurm tests bench
.venv/bin/mypy

# Two pytest processes at once: the SLURM 22.05 tests (its accounting writes take about a
# second each, so they mostly wait) beside all the others. Each version's stack still sees
# one test at a time; each process's broker tests have a broker of their own. The 22.05
# half's output follows the other's.
slow_log=$(mktemp)
echo "== pytest: the SLURM $SLOW_VERSION tests (log: $slow_log) beside all others"
"${SLOW_BROKER[@]}" .venv/bin/python -m pytest --slurm-version-only "$SLOW_VERSION" "$@" >"$slow_log" 2>&1 &
slow_pid=$!
status=0
.venv/bin/python -m pytest --slurm-version-except "$SLOW_VERSION" "$@" || status=$?
slow_status=0
wait "$slow_pid" || slow_status=$?
echo "== pytest, the SLURM $SLOW_VERSION tests:"
cat "$slow_log"
rm -f "$slow_log"
if [ "$status" = 5 ] && [ "$slow_status" = 5 ]; then
    echo "pytest collected no tests for: $*"
fi
# Exit 5 (nothing collected) in one half is normal when the arguments narrow the run.
[ "$status" = 5 ] && status=0
[ "$slow_status" = 5 ] && slow_status=0
[ "$status" = 0 ] && status=$slow_status

if [ "$(id -u)" = 0 ]; then
    "${SLOW_BROKER[@]}" bash scripts/rabbitmq.sh down >/dev/null
    echo "== checking that the host's SLURM, /etc/slurm and munge are untouched"
    host_after=$(bash scripts/host-fingerprint.sh "${fingerprint_args[@]}")
    if [ "$host_before" != "$host_after" ]; then
        echo "the test run changed the host (before / after):"
        diff <(echo "$host_before") <(echo "$host_after") || true
        exit 1
    fi
    echo "host unchanged"
fi
exit "$status"
