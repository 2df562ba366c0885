#!/usr/bin/env bash
# The soak under faults (bench/soak.py; README, "Soak under faults") with the project's
# virtualenv, made first if needed. As root. Arguments go to bench/soak.py, e.g.
#   bash scripts/soak.sh --seed 17 --duration 600
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/venv.sh
. scripts/venv.sh
ensure_venv
exec .venv/bin/python bench/soak.py "$@"
