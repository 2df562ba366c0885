"""Shared fixtures: offering components and backends wired to a fake runner."""

from __future__ import annotations

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
