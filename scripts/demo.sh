#!/usr/bin/env bash
# The demo: sets up .venv if needed, then runs the real waldur_site_agent against the
# Waldur stand-in and slurm-emulator (order_process, report, membership_sync) and
# prints what happened at each step. Needs no root, no SLURM and no network after the
# first install. Extra arguments go to `python -m waldur_site_agent_slurm.devtools.demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/venv.sh
. scripts/venv.sh
ensure_venv
exec .venv/bin/python -m waldur_site_agent_slurm.devtools.demo "$@"
