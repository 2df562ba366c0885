"""Shared fixtures: offering components and backends wired to a fake runner."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.fakes import TRES_OUTPUT, FakeRunner
from waldur_site_agent_slurm.backend import SlurmBackend
from waldur_site_agent_slurm.slurm.client import SlurmClient

COMPONENTS: dict[str, dict[str, Any]] = {
    "cpu": {
        "measured_unit": "k-Hours",
        "unit_factor": 60000,
        "accounting_type": "limit",
        "label": "CPU",
    },
    "mem": {
        "measured_unit": "GB-Hours",
        "unit_factor": 61440,
        "accounting_type": "limit",
        "label": "Memory",
    },
    "gpu": {
        "measured_unit": "GPU-Hours",
        "unit_factor": 60,
        "accounting_type": "limit",
        "label": "GPU",
    },
}


def make_backend(runner: FakeRunner, **settings: Any) -> SlurmBackend:
    """A backend whose client runs commands through ``runner``."""
    backend = SlurmBackend(settings, {k: dict(v) for k, v in COMPONENTS.items()})
    backend.client = SlurmClient(runner, backend.settings.cluster_name)
    return backend


@pytest.fixture
def runner() -> FakeRunner:
    return FakeRunner(outputs={"list tres": TRES_OUTPUT})


# ---- one SLURM version's tests in a pytest process of their own ---------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--slurm-version-only",
        metavar="VERSION",
        help="run only the tests parametrised by this real SLURM version ([slurm-VERSION])",
    )
    parser.addoption(
        "--slurm-version-except",
        metavar="VERSION",
        help="run every test except those parametrised by this real SLURM version",
    )


def real_slurm_version(item: pytest.Item) -> str | None:
    """The real SLURM version a test is parametrised by ([slurm-VERSION]), if any."""
    callspec = getattr(item, "callspec", None)
    version = None if callspec is None else callspec.params.get("real_slurm")
    return version if isinstance(version, str) else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Split the run by SLURM version (scripts/test.sh runs the two halves at once)."""
    only = config.getoption("--slurm-version-only")
    excluded = config.getoption("--slurm-version-except")
    if only is None and excluded is None:
        return

    # A version's tests stay in one process, the broker's too: a test stopping that
    # version's slurmdbd must never overlap another test on it. Two processes each
    # running broker tests need a broker each (scripts/test.sh starts a second one).
    def wanted(item: pytest.Item) -> bool:
        found = real_slurm_version(item)
        return (only is None or found == only) and (excluded is None or found != excluded)

    kept = [item for item in items if wanted(item)]
    if len(kept) < len(items):
        kept_ids = {id(item) for item in kept}
        config.hook.pytest_deselected(items=[item for item in items if id(item) not in kept_ids])
        items[:] = kept


# ---- a real SLURM whose slurmdbd died: each later test of it fails, saying why ---------------


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before a test on a real SLURM version, check that its slurmdbd still runs."""
    version = real_slurm_version(item)
    if version is not None:
        # Imported here: tests.real.conftest imports this module.
        from tests.real.conftest import check_slurmdbd

        check_slurmdbd(version)


# ---- in CI, every real SLURM version must run: a skip of one is a failure ----------------

_skipped_on_real_slurm: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Note the tests parametrised by a real SLURM version that were skipped."""
    if report.skipped and "[slurm-" in report.nodeid and not hasattr(report, "wasxfail"):
        _skipped_on_real_slurm.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """In CI (CI=true), fail the run when a test was skipped on any real SLURM version."""
    if os.environ.get("CI") != "true" or not _skipped_on_real_slurm:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write_line(
            f"CI: {len(_skipped_on_real_slurm)} test(s) skipped on a real SLURM version "
            f"(every version must run): {', '.join(_skipped_on_real_slurm[:5])}",
            red=True,
        )
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
