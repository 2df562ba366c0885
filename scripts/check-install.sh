#!/usr/bin/env bash
# Check that `pip install .` without extras is a working production install. In a fresh
# virtualenv, from a copy of the checkout's files (tracked and new, nothing ignored, so no
# stale build/ leaks in), and run from outside the checkout:
#   - pip check finds the installed dependencies consistent;
#   - every module of the package imports with the development-only packages refused,
#     the framework finds our backend and schemas through the entry points, and builds the
#     backend from examples/cluster-config.yaml (scripts/check_install.py);
#   - `waldur_site_diagnose_slurm_account --help` and
#     `python -m waldur_site_agent_slurm.diagnostic_cli --help` print the help and exit 0.
# Uses Python 3.11 unless an interpreter is given: bash scripts/check-install.sh /path/to/python
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$PWD

# shellcheck source=scripts/venv.sh
. scripts/venv.sh
if [ "$#" -gt 0 ]; then
    python=$1
else
    python=$(python_bin)
fi

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
start=$SECONDS

echo "== pip install . (no extras) into a fresh virtualenv of $("$python" --version)"
mkdir "$workdir/src"
git ls-files -z --cached --others --exclude-standard |
    tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$workdir/src"
"$python" -m venv "$workdir/venv"
"$workdir/venv/bin/pip" install --quiet "$workdir/src"
installed=$((SECONDS - start))

cd "$workdir"
bin=$workdir/venv/bin
failures=0
check() {
    local what=$1
    shift
    if "$@" >"$workdir/out" 2>&1; then
        echo "ok: $what"
    else
        echo "FAILED: $what (exit $?):" >&2
        cat "$workdir/out" >&2
        failures=$((failures + 1))
    fi
}
help_shown() {
    "$@" >"$workdir/help" && grep -q "^usage: " "$workdir/help"
}

check "pip check" "$bin/pip" check
"$bin/python" "$checkout/scripts/check_install.py" || failures=$((failures + 1))
check "waldur_site_diagnose_slurm_account --help" help_shown "$bin/waldur_site_diagnose_slurm_account" --help
check "python -m waldur_site_agent_slurm.diagnostic_cli --help" \
    help_shown "$bin/python" -m waldur_site_agent_slurm.diagnostic_cli --help
check "waldur_site_diagnose_slurm_account --check-config -c examples/cluster-config.yaml" \
    "$bin/waldur_site_diagnose_slurm_account" --check-config -c "$checkout/examples/cluster-config.yaml"
demo_says_dev_extra() {
    ! "$bin/python" -m waldur_site_agent_slurm.devtools.demo 2>"$workdir/demo" &&
        grep -q "pip install 'waldur-site-agent-slurm\[dev\]'" "$workdir/demo"
}
check "the demo names the dev extra" demo_says_dev_extra

echo "== install check: install ${installed} s, total $((SECONDS - start)) s, $failures failed"
[ "$failures" = 0 ]
