"""LDAP tier: project groups in the OpenLDAP started by scripts/slapd.sh.

The tier needs root and a running slapd. Outside CI a missing slapd skips the tier with
the command that starts it; in CI (CI=true) it is a failure, never a skip. Each test
names its groups with its own prefix and removes them afterwards, so runs can overlap;
the tests that stop slapd bring it back whatever happens.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.e2e.conftest import standin  # noqa: F401 - the per-test Waldur stand-in
from tests.emulator.conftest import emulator  # noqa: F401 - the per-test emulator state
from tests.ldap import ROOT, SCRIPT, delete_matching, slapd
from tests.real.slurmdbd import other_test_runs
from tests.services import unavailable

SERVICE_SCRIPTS = ("real-slurm.sh", "rabbitmq.sh")


def _slapd_status() -> str | None:
    """None if slapd is ready, else why not."""
    if os.geteuid() != 0:
        return "the LDAP tier needs root"
    status = slapd("status")
    if status.returncode == 0:
        return None
    return "slapd is not ready: " + "; ".join((status.stdout + status.stderr).strip().splitlines())


def require_slapd() -> None:
    problem = _slapd_status()
    if problem is None:
        return
    message = f"{problem} (start it: sudo bash {SCRIPT.relative_to(ROOT)} up)"
    unavailable(message)


@pytest.fixture(autouse=True)
def openldap() -> None:
    require_slapd()


@pytest.fixture
def prefix() -> Iterator[str]:
    """A group-name prefix of this test; its groups are deleted afterwards."""
    tag = f"t{uuid.uuid4().hex[:6]}_"
    yield tag
    if slapd("status").returncode == 0:
        delete_matching(tag)


def other_ldap_runs() -> list[str]:
    """Other test runs that may use slapd now: the LDAP tier or a whole suite."""
    return [
        run
        for run in other_test_runs()
        if "tests/ldap" in run
        or (not any(script in run for script in SERVICE_SCRIPTS) and "tests/" not in run)
    ]


@contextmanager
def slapd_stopped() -> Iterator[None]:
    """slapd is down inside the block (``slapd.sh down``) and up again after it.

    Outside CI the test is skipped while another run may be using slapd.
    """
    others = other_ldap_runs()
    if others and os.environ.get("CI") != "true":
        pytest.skip(f"stops slapd, which another test run may use now: {others[0][:120]}")
    down = slapd("down")
    assert down.returncode == 0, down.stderr
    try:
        yield
    finally:
        up = slapd("up")
        assert up.returncode == 0, up.stderr[-2000:]
