"""Historical usage against a real SLURM: the historical path agrees with the report path."""

from __future__ import annotations

import pytest

from tests.real.conftest import USERS, real_backend, submit, wait_finished
from tests.test_backend_commands import resource
from waldur_site_agent_slurm.allocation.usage import current_month
from waldur_site_agent_slurm.errors import HistoricalLoadStopped

pytestmark = pytest.mark.real_slurm


def test_current_month_is_the_same_through_the_historical_and_the_report_path(
    names: dict[str, str],
) -> None:
    res = resource(**names, limits={})
    backend = real_backend()
    backend.create_resource_with_id(res, names["slug"])
    backend.add_users_to_resource(res, {USERS[0], USERS[1]})
    jobs = [
        submit(USERS[0], names["slug"], "-n2", wrap="sleep 3"),
        submit(USERS[1], names["slug"], "-n1", "--gres=gpu:1", wrap="sleep 2"),
    ]
    assert all(code == 0 for code, _ in jobs), jobs
    wait_finished([job_id for _, job_id in jobs])
    for zone in ("UTC", "Asia/Kathmandu"):
        # Report mode: the processor sets the agent's timezone on a fresh backend.
        report_backend = real_backend()
        report_backend.timezone = zone
        reported = report_backend._get_usage_report([names["slug"]])
        # The historical loader: a fresh backend, no processor, the zone from the settings.
        loader = real_backend(timezone=zone)
        year, month = current_month(zone)
        loaded = loader.get_usage_report_for_period([names["slug"]], year, month)
        assert loaded == reported, zone
        usage = loaded[names["slug"]]
        assert usage[USERS[0]]["cpu"] > 0 and usage[USERS[1]]["cpu"] > 0
        assert loader.runner.calls == 2  # one show assoc, one sacct


def test_allocation_missing_in_real_slurm_stops_the_loader(names: dict[str, str]) -> None:
    backend = real_backend(timezone="UTC")
    year, month = current_month("UTC")
    with pytest.raises(HistoricalLoadStopped, match=f"not in SLURM on cluster .*{names['slug']}"):
        backend.get_usage_report_for_period([names["slug"]], year, month)
    assert backend.runner.calls == 1  # the association read; sacct never ran
