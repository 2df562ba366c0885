# Sourced by scripts/demo.sh and scripts/test.sh: make sure .venv exists and holds the
# package with its development dependencies (slurm-emulator, pytest ...).

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

ensure_venv() {
    if [ ! -x .venv/bin/python ] || [ ! -x .venv/bin/waldur_site_diagnose_slurm_account ] ||
        ! .venv/bin/python -c 'import waldur_site_agent_slurm, emulator, jsonschema' 2>/dev/null; then
        echo "== creating .venv and installing the package with its dev dependencies"
        if ! "$(python_bin)" -m venv .venv 2>/dev/null; then
            echo "python3 -m venv failed: install the venv module (Debian: apt-get install python3-venv)" >&2
            exit 1
        fi
        .venv/bin/pip install --quiet --upgrade pip
        .venv/bin/pip install --quiet -e '.[dev]'
    fi
}
