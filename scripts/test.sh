#!/usr/bin/env bash
# Run the whole test suite: lint, types, parser, domain, emulator, real SLURM, LDAP and
# framework tiers. Sets up what it needs first: a virtualenv in .venv with the package
# and its dev dependencies and, when run as root, the real one-node SLURM of
# scripts/real-slurm.sh, RabbitMQ and OpenLDAP. Extra arguments go to pytest (e.g.
# -k usage, tests/emulator).
# On Python 3.11; scripts/test-pythons.sh runs the tiers without services on 3.10, 3.12
# and 3.13, and .ci/run runs both.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/venv.sh
. scripts/venv.sh
ensure_venv

if [ "$(id -u)" = 0 ]; then
    echo "== starting the real SLURM tier (scripts/real-slurm.sh up)"
    bash scripts/real-slurm.sh up
    echo "== starting RabbitMQ for the broker tier (scripts/rabbitmq.sh up)"
    bash scripts/rabbitmq.sh up
    echo "== starting OpenLDAP for the LDAP tier (scripts/slapd.sh up)"
    bash scripts/slapd.sh up
else
    echo "== not root: the real SLURM, broker and LDAP tiers will be skipped (run as root to include them)"
fi

echo "== ruff and mypy"
.venv/bin/ruff check waldur_site_agent_slurm tests bench
.venv/bin/mypy

echo "== pytest"
status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$status" = 5 ]; then
    echo "pytest collected no tests for: $*"
    exit 0
fi
exit "$status"
