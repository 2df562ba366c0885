# Sourced by scripts/demo.sh, scripts/test.sh and scripts/test-pythons.sh: make sure a
# virtualenv holds the package (editable) with its development dependencies
# (slurm-emulator, pytest ...) as of the current pyproject.toml.

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

# ensure_dev_venv DIR PYTHON: DIR is a virtualenv of the interpreter PYTHON with the
# package installed editable with its dev extras. It is made anew when it is missing,
# broken, or older than pyproject.toml (a hash of it is kept in DIR/.pyproject.sha256).
ensure_dev_venv() {
    local dir=$1 python=$2 stamp
    stamp=$(sha256sum pyproject.toml | cut -d' ' -f1)
    if [ -x "$dir/bin/python" ] && [ -x "$dir/bin/waldur_site_diagnose_slurm_account" ] &&
        [ "$(cat "$dir/.pyproject.sha256" 2>/dev/null)" = "$stamp" ] &&
        "$dir/bin/python" -c 'import waldur_site_agent_slurm, emulator, jsonschema' 2>/dev/null; then
        return
    fi
    echo "== creating $dir with $("$python" --version) and installing the package with its dev dependencies"
    if ! "$python" -m venv --clear "$dir" 2>/dev/null; then
        echo "$python -m venv failed: install the venv module (Debian: apt-get install python3-venv)" >&2
        exit 1
    fi
    "$dir/bin/pip" install --quiet --upgrade pip
    "$dir/bin/pip" install --quiet -e '.[dev]'
    echo "$stamp" >"$dir/.pyproject.sha256"
}

ensure_venv() {
    local python
    python=$(python_bin)
    ensure_dev_venv .venv "$python"
}
