"""Prepaid limits × months, target_components, and limits synced back to Waldur.

Checked through the exact argv with the fake runner, and through the requests the
backend sends to a Waldur answered by an in-memory transport.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from typing import Any

import httpx
import pytest
from waldur_api_client import AuthenticatedClient
from waldur_site_agent.backend.exceptions import BackendError

from tests.fakes import FakeRunner, assoc_lines
from tests.test_backend_commands import SI, TREE, resource
from waldur_site_agent_slurm.allocation import prepaid
from waldur_site_agent_slurm.allocation.usage import UsageAccumulator, build_report, month_window
from waldur_site_agent_slurm.backend import SlurmBackend
from waldur_site_agent_slurm.config import load_settings
from waldur_site_agent_slurm.slurm.client import SlurmClient
from waldur_site_agent_slurm.slurm.parser import JobRecord

UTC = timezone.utc  # datetime.UTC from Python 3.11 on

PREPAID = {
    "cpu": {"unit_factor": 60000, "accounting_type": "one", "measured_unit": "k-Hours"},
    "gpu": {"unit_factor": 60, "accounting_type": "limit", "measured_unit": "GPU-Hours"},
}
# One Waldur component limited and reported through two TRES, each with its own factor.
TARGETS = {
    "compute": {
        "unit_factor": 1,
        "accounting_type": "limit",
        "target_components": {"cpu": {"factor": 60}, "billing": {"factor": 120}},
    },
    "gpu": {"unit_factor": 60, "accounting_type": "limit"},
}
ALLOC = "alloc-1|||proj-1|1|{}|||normal|"
MODIFY = [*SI, "modify", "account", "where", "name=alloc-1", "set"]


def backend_with(
    runner: FakeRunner, components: dict[str, dict[str, Any]], **settings: Any
) -> SlurmBackend:
    backend = SlurmBackend(settings, {k: dict(v) for k, v in components.items()})
    backend.client = SlurmClient(runner, backend.settings.cluster_name)
    return backend


def prepaid_resource(end_date: str | None, **overrides: Any) -> Any:
    data = {"limits": {"cpu": 6, "gpu": 5}, "created": "2026-01-15T10:00:00Z", **overrides}
    return resource(end_date=end_date, **data)


# ---- months ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "months"),
    [
        (date(2026, 1, 15), date(2026, 1, 15), 1),  # same day: at least one
        (date(2026, 1, 15), date(2026, 1, 16), 1),  # a partial month is one
        (date(2026, 1, 15), date(2026, 6, 15), 5),  # whole months
        (date(2026, 1, 15), date(2026, 6, 16), 6),  # one day over: one more
        (date(2026, 1, 15), date(2026, 6, 14), 5),
        (date(2026, 1, 31), date(2026, 2, 28), 1),  # 31 Jan + 1 month ends on 28 Feb
        (date(2026, 1, 31), date(2026, 3, 1), 2),
        (date(2028, 1, 31), date(2028, 2, 29), 1),  # leap year: on 29 Feb
        (date(2028, 1, 31), date(2028, 3, 1), 2),
        (date(2028, 2, 29), date(2029, 2, 28), 12),  # from a leap day, a year on
        (date(2028, 2, 29), date(2029, 3, 1), 13),
        (date(2026, 12, 15), date(2027, 1, 15), 1),  # across a year end
        (date(2026, 6, 1), date(2026, 1, 1), 1),  # an end before the start
    ],
)
def test_months_count_partial_months_as_one_and_at_least_one(
    start: date, end: date, months: int
) -> None:
    assert prepaid.months_between(start, end) == months


def test_created_is_read_as_a_date_in_the_configured_zone() -> None:
    # 23:30 UTC on 14 Jan is already 15 Jan in Tallinn: exactly 5 months to 15 Jun there.
    created = datetime(2026, 1, 14, 23, 30, tzinfo=UTC)
    assert prepaid.resource_months(created, date(2026, 6, 15), "UTC") == 6
    assert prepaid.resource_months(created, date(2026, 6, 15), "Europe/Tallinn") == 5


def test_no_end_date_is_one_month_and_no_created_starts_today() -> None:
    assert prepaid.resource_months(datetime(2026, 1, 1, tzinfo=UTC), None, "UTC") == 1
    assert prepaid.resource_months(None, date(2026, 4, 2), "UTC", today=date(2026, 1, 2)) == 3


# ---- prepaid limits ----------------------------------------------------------------------


def test_prepaid_create_sets_limit_times_unit_factor_times_months(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = TREE
    backend = backend_with(runner, PREPAID)
    info = backend.create_resource_with_id(prepaid_resource("2026-06-15"), "alloc-1")
    # 6 × 60000 × 5 months; gpu is not prepaid: 5 × 60 once.
    assert runner.writes[-1][2:4] == ["add", "account"]  # the add carries the limits
    assert runner.writes[-1][-1] == "GrpTRESMins=cpu=1800000,gres/gpu=300"
    assert info.limits == {"cpu": 6, "gpu": 5}  # Waldur keeps the monthly amount


def test_prepaid_without_end_date_gets_one_month(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = TREE
    backend_with(runner, PREPAID).create_resource_with_id(prepaid_resource(None), "alloc-1")
    assert runner.writes[-1][2:4] == ["add", "account"]  # the add carries the limits
    assert runner.writes[-1][-1] == "GrpTRESMins=cpu=360000,gres/gpu=300"


def test_prepaid_months_follow_the_configured_timezone(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = TREE
    backend = backend_with(runner, PREPAID, timezone="Europe/Tallinn")
    res = prepaid_resource("2026-06-15", created="2026-01-14T23:30:00Z")
    backend.create_resource_with_id(res, "alloc-1")
    assert runner.writes[-1][2:4] == ["add", "account"]  # the add carries the limits
    assert runner.writes[-1][-1] == "GrpTRESMins=cpu=1800000,gres/gpu=300"


def test_has_prepaid_components_only_with_accounting_type_one(runner: FakeRunner) -> None:
    assert backend_with(runner, PREPAID).has_prepaid_components() is True
    assert backend_with(runner, TARGETS).has_prepaid_components() is False


def test_moved_end_date_rewrites_only_the_prepaid_limit(runner: FakeRunner) -> None:
    # gpu differs from Waldur too, but it is not prepaid: the end date does not touch it.
    runner.outputs["show assoc"] = assoc_lines(ALLOC.format("cpu=1800000,gres/gpu=120"))
    backend = backend_with(runner, PREPAID)
    backend.sync_resource_end_date(prepaid_resource("2026-12-15"), None)
    assert runner.writes == [[*MODIFY, "GrpTRESMins=cpu=3960000"]]  # 6 × 60000 × 11


def test_unchanged_end_date_writes_nothing(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines(ALLOC.format("cpu=1800000,gres/gpu=300"))
    backend_with(runner, PREPAID).sync_resource_end_date(prepaid_resource("2026-06-15"), None)
    assert runner.writes == []


def test_end_date_sync_without_prepaid_components_runs_nothing(runner: FakeRunner) -> None:
    backend_with(runner, TARGETS).sync_resource_end_date(prepaid_resource("2026-12-15"), None)
    assert runner.calls == []


def test_end_date_sync_leaves_limits_to_a_periodic_policy(runner: FakeRunner) -> None:
    backend = backend_with(runner, PREPAID, periodic_limits={"enabled": True})
    backend.sync_resource_end_date(prepaid_resource("2026-12-15"), None)
    assert runner.calls == []


def test_end_date_sync_with_a_bad_backend_id_runs_nothing(runner: FakeRunner) -> None:
    res = prepaid_resource("2026-12-15", backend_id="a;touch /tmp/x")
    with pytest.raises(BackendError, match="allocation account"):
        backend_with(runner, PREPAID).sync_resource_end_date(res, None)
    assert runner.calls == []


# ---- target_components -------------------------------------------------------------------


def test_target_components_limit_every_target_with_its_factor(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = TREE
    backend = backend_with(runner, TARGETS)
    info = backend.create_resource_with_id(resource(limits={"compute": 10, "gpu": 2}), "alloc-1")
    assert runner.writes[-1][2:4] == ["add", "account"]  # the add carries the limits
    assert runner.writes[-1][-1] == "GrpTRESMins=billing=1200,cpu=600,gres/gpu=120"
    assert info.limits == {"compute": 10, "gpu": 2}


def test_target_unknown_to_the_cluster_is_skipped_and_the_others_are_limited(
    runner: FakeRunner,
) -> None:
    runner.outputs["list tres"] = "cpu|\nmem|\ngres|gpu\n"
    runner.outputs["show assoc"] = assoc_lines(ALLOC.format(""))
    backend_with(runner, TARGETS).set_resource_limits("alloc-1", {"compute": 10})
    assert runner.writes == [[*MODIFY, "GrpTRESMins=cpu=600"]]


def test_target_usage_is_the_sum_of_each_target_over_its_factor_rounded_once() -> None:
    settings = load_settings({}, TARGETS)
    window = month_window(2026, 3, "UTC")
    acc = UsageAccumulator(window, now=datetime(2026, 4, 1, tzinfo=UTC))
    start = datetime(2026, 3, 2, 10)
    # One hour of 4 CPUs and 6 billing: 240/60 + 360/120 = 7 units.
    acc.add(
        JobRecord(
            "1",
            "alloc-1",
            "alice",
            "COMPLETED",
            start,
            start.replace(hour=11),
            {"cpu": 4, "billing": 6},
        )
    )
    # 18 s of 1 CPU and 2 billing: 0.005 + 0.005 = 0.01 (rounded per target: 0.02).
    acc.add(
        JobRecord(
            "2",
            "alloc-1",
            "bob",
            "COMPLETED",
            start,
            start.replace(second=18),
            {"cpu": 1, "billing": 2},
        )
    )
    report = build_report(acc, ["alloc-1"], settings.components)["alloc-1"]
    assert report["alice"] == {"compute": 7.0, "gpu": 0.0}
    assert report["bob"] == {"compute": 0.01, "gpu": 0.0}
    assert report["TOTAL_ACCOUNT_USAGE"] == {"compute": 7.01, "gpu": 0.0}


def test_target_limits_read_back_as_the_binding_target_in_waldur_units(
    runner: FakeRunner,
) -> None:
    runner.outputs["show assoc"] = assoc_lines(ALLOC.format("billing=1200,cpu=540,gres/gpu=120"))
    assert backend_with(runner, TARGETS).get_resource_limits("alloc-1") == {"compute": 9, "gpu": 2}


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ({"cpu": {"factor": 0}}, "target_components.cpu.factor: Input should be greater than 0"),
        ({"cpu": {"factor": -60}}, "greater than 0"),
        ({"cpu": {"factor": float("inf")}}, "finite number"),
        ({"cpu": {"factor": float("nan")}}, "finite number"),
        ({"cpu": {"factor": "60"}}, "valid number"),
        ({"cpu": {"factor": True}}, "valid number"),
        ({"cpu": {}}, "factor: Field required"),
        ({"CPU;x": {"factor": 60}}, "target_components 'CPU;x'"),
        ({}, "expected at least one TRES"),
    ],
)
def test_bad_target_components_fail_at_start_up_naming_the_key(
    targets: dict[str, Any], message: str
) -> None:
    where = r"backend_components\.compute\.target_components"
    with pytest.raises(BackendError, match=where) as err:
        SlurmBackend({}, {"compute": {"unit_factor": 1, "target_components": targets}})
    assert message in str(err.value)


def test_a_tres_limited_from_two_components_fails_at_start_up() -> None:
    components = {**TARGETS, "cpu": {"unit_factor": 60}}
    with pytest.raises(BackendError, match="TRES cpu is mapped from both compute and cpu"):
        SlurmBackend({}, components)


# ---- limits back to Waldur ---------------------------------------------------------------


class Waldur:
    """The Waldur API as far as set_limits goes; records what was posted."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, dict[str, Any]]] = []
        self.client = AuthenticatedClient(base_url="http://waldur.test", token="t")  # noqa: S106
        self.client.set_httpx_client(
            httpx.Client(base_url="http://waldur.test", transport=httpx.MockTransport(self.answer))
        )

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.posted.append((request.url.path, json.loads(request.content)))
        return httpx.Response(200, json={"status": "OK"})


def test_get_resource_limits_are_whole_waldur_units(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines(ALLOC.format("cpu=90000,gres/gpu=90"))
    limits = backend_with(runner, PREPAID | {"cpu": {"unit_factor": 60000}}).get_resource_limits(
        "alloc-1"
    )
    assert limits == {"cpu": 2, "gpu": 2}  # 1.5 and 1.5, rounded half up
    assert all(type(v) is int for v in limits.values())


def test_limits_changed_in_slurm_are_pushed_to_waldur(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines(ALLOC.format("cpu=1800000,gres/gpu=600"))
    waldur = Waldur()
    res = prepaid_resource("2026-06-15", limits={"cpu": 6, "gpu": 5, "storage": 100})
    backend_with(runner, PREPAID).sync_resource_limits(res, waldur.client)
    # cpu is 6 a month for 5 months; gpu changed to 10 in SLURM; storage is Waldur's own.
    assert waldur.posted == [
        (
            "/api/marketplace-provider-resources/3f2b0c7e1d2a4b6c9f000123456789ab/set_limits/",
            {"limits": {"cpu": 6, "gpu": 10, "storage": 100}},
        )
    ]
    assert runner.writes == []


def test_limits_equal_to_waldurs_post_nothing(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines(ALLOC.format("cpu=1800000,gres/gpu=300"))
    waldur = Waldur()
    backend_with(runner, PREPAID).sync_resource_limits(
        prepaid_resource("2026-06-15"), waldur.client
    )
    assert waldur.posted == []


def test_with_periodic_limits_slurm_limits_never_reach_waldur(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines(ALLOC.format("cpu=9999999,gres/gpu=600"))
    waldur = Waldur()
    backend = backend_with(runner, PREPAID, periodic_limits={"enabled": True})
    backend.sync_resource_limits(prepaid_resource("2026-06-15"), waldur.client)
    assert waldur.posted == []
    assert runner.calls == []
