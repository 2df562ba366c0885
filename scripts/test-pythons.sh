#!/usr/bin/env bash
# Run the tiers that need no service (parser, domain, framework loading, emulator,
# stand-in, security, the in-process fault tests and the site tests) on every supported
# Python besides the 3.11 of scripts/test.sh: 3.10, 3.12 and 3.13 by default, or those named in
# TEST_PYTHONS (e.g. TEST_PYTHONS="3.13"). Each gets its own virtualenv, .venv-X.Y, with
# the package and its dev dependencies. The interpreters come from pyenv
# ($PYENV_ROOT/versions/X.Y.*) or PATH (pythonX.Y); a missing one fails the run before
# any test starts. Extra arguments go to pytest (e.g. -k parser); a selection that
# collects no test (pytest's exit 5) fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/venv.sh
. scripts/venv.sh

read -r -a versions <<<"${TEST_PYTHONS:-3.10 3.12 3.13}"
tiers=(tests/test_*.py tests/emulator tests/standin tests/security tests/faults tests/site)
# Some files of those folders also hold tests that need the real SLURM, RabbitMQ or
# the agent's processes end to end: scripts/test.sh runs those on 3.11.
no_services="not real_slurm and not broker and not e2e and not ldap"

# find_python X.Y: the newest pyenv build of X.Y, else pythonX.Y on PATH.
find_python() {
    local version=$1 candidate found=""
    for candidate in "${PYENV_ROOT:-$HOME/.pyenv}/versions/$version".*/bin/python"$version"; do
        if [ -x "$candidate" ]; then
            found=$candidate
        fi
    done
    if [ -z "$found" ] && command -v "python$version" >/dev/null; then
        found=$(command -v "python$version")
    fi
    if [ -n "$found" ] && "$found" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$version'.split('.'))))"; then
        echo "$found"
    fi
}

declare -A pythons
missing=()
for version in "${versions[@]}"; do
    pythons[$version]=$(find_python "$version")
    if [ -z "${pythons[$version]}" ]; then
        missing+=("$version")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    for version in "${missing[@]}"; do
        echo "Python $version not found: looked for ${PYENV_ROOT:-$HOME/.pyenv}/versions/$version.*/bin/python$version" \
            "and python$version on PATH (install it, e.g. pyenv install $version)" >&2
    done
    exit 1
fi

# The virtualenvs are made one after the other (editable installs share the source tree);
# the test runs go two at a time (the machine's cores), each into a log printed when all end.
# A run's last log line is its summary: "Python X.Y: exit N, tests S s".
run_tests() {
    local version=$1 log=$2 start=$SECONDS result=0
    shift 2
    {
        echo "== pytest on $("${pythons[$version]}" --version) (${pythons[$version]}): ${tiers[*]} -m '$no_services'"
        ".venv-$version/bin/python" -m pytest -m "$no_services" "${tiers[@]}" "$@" || result=$?
        if [ "$result" = 5 ]; then
            echo "pytest collected no tests on Python $version: the selection matches nothing"
        fi
        echo "Python $version: exit $result, tests $((SECONDS - start)) s"
    } >"$log" 2>&1
}

declare -A logs installed
running=0
for version in "${versions[@]}"; do
    start=$SECONDS
    ensure_dev_venv ".venv-$version" "${pythons[$version]}"
    installed[$version]=$((SECONDS - start))
    if [ "$running" -ge 2 ]; then
        wait -n
        running=$((running - 1))
    fi
    logs[$version]=$(mktemp)
    echo "== Python $version: testing in the background, two runs at a time"
    run_tests "$version" "${logs[$version]}" "$@" &
    running=$((running + 1))
done
wait

summary=()
status=0
for version in "${versions[@]}"; do
    cat "${logs[$version]}"
    last=$(tail -n 1 "${logs[$version]}")
    rm -f "${logs[$version]}"
    summary+=("$last, virtualenv ${installed[$version]} s")
    if [[ "$last" != "Python $version: exit 0,"* ]]; then
        status=1
    fi
done

echo "== tiers without services on other Pythons"
printf '%s\n' "${summary[@]}"
exit "$status"
