#!/usr/bin/env bash
# Run the whole test suite: lint, types, parser, domain, emulator, real SLURM and
# framework tiers. Sets up what it needs first: a virtualenv in .venv with the package
# and its dev dependencies and, when run as root, the real one-node SLURM of
# scripts/real-slurm.sh. Extra arguments go to pytest (e.g. -k usage, tests/emulator).
set -euo pipefail
cd "$(dirname "$0")/.."

python_bin() {
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
            command -v "$candidate"
            return
        fi
    done
    echo "Python 3.11 is required (python3.11 or python3 on PATH)" >&2
    exit 1
}

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import waldur_site_agent_slurm, emulator' 2>/dev/null; then
    echo "== creating .venv and installing the package with its dev dependencies"
    "$(python_bin)" -m venv .venv
    .venv/bin/pip install --quiet --upgrade pip
    .venv/bin/pip install --quiet -e '.[dev]'
fi

if [ "$(id -u)" = 0 ]; then
    echo "== starting the real SLURM tier (scripts/real-slurm.sh up)"
    bash scripts/real-slurm.sh up
else
    echo "== not root: the real SLURM tier will be skipped (run as root to include it)"
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
