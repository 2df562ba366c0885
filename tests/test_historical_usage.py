"""Historical usage through ``get_usage_report_for_period``, with the fake runner.

The historical loader builds a fresh backend per month without a processor (so
``backend.timezone`` is ""), then asks once for all allocations of the month, without
``waldur_resource``. Report mode sets ``backend.timezone`` and asks per resource, with it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from typing import Any

import pytest
from waldur_site_agent.backend.exceptions import BackendError

from tests.conftest import make_backend
from tests.fakes import FakeRunner, assoc_lines
from tests.test_backend_commands import resource
from waldur_site_agent_slurm.allocation.usage import (
    UsageAccumulator,
    month_window,
    period_window,
)
from waldur_site_agent_slurm.errors import HistoricalLoadStopped, SlurmConfigError
from waldur_site_agent_slurm.slurm.parser import JobRecord

UTC = timezone.utc  # datetime.UTC from Python 3.11 on

ALLOCATIONS = ("alloc-1", "alloc-2", "alloc-3")
TREE = assoc_lines(
    "root||||1||||normal|",
    "cust-1|||root|1||||normal|",
    "proj-1|||cust-1|1||||normal|",
    *(f"{name}|||proj-1|1||||normal|" for name in ALLOCATIONS),
    "alloc-1|alice||proj-1|1||||normal|",
    "alloc-2|bob||proj-1|1||||normal|",
)
ZERO = {"cpu": 0.0, "mem": 0.0, "gpu": 0.0}


@pytest.fixture
def slurm(runner: FakeRunner) -> FakeRunner:
    runner.outputs["show assoc"] = TREE
    return runner


def sacct_calls(runner: FakeRunner) -> list[list[str]]:
    return [call for call in runner.calls if call[0] == "sacct"]


def window_args(call: list[str]) -> tuple[str, str]:
    args = dict(arg.split("=", 1) for arg in call if arg.startswith("--") and "=" in arg)
    return args["--starttime"], args["--endtime"]


def job_line(account: str, user: str, start: str, end: str, tres: str, job_id: int = 1) -> str:
    return f"{job_id}|{account}|{user}|COMPLETED|{start}|{end}|{tres}"


# ---- which zone months are cut in ----------------------------------------------------------


def test_loader_months_take_the_zone_from_backend_settings(slurm: FakeRunner) -> None:
    backend = make_backend(slurm, timezone="Europe/Tallinn")
    assert backend.timezone == ""  # what the loader leaves it as
    backend.get_usage_report_for_period(["alloc-1"], 2026, 2)
    # Tallinn is UTC+2 in winter: February starts on Jan 31 at 22:00 UTC.
    assert window_args(sacct_calls(slurm)[0]) == ("2026-01-31T22:00:00", "2026-02-28T22:00:00")


def test_report_mode_uses_the_agents_zone(slurm: FakeRunner) -> None:
    backend = make_backend(slurm)
    backend.timezone = "America/New_York"  # set by the report processor
    backend.get_usage_report_for_period(["alloc-1"], 2026, 1, waldur_resource=resource())
    assert window_args(sacct_calls(slurm)[0]) == ("2026-01-01T05:00:00", "2026-02-01T05:00:00")


def test_same_zone_in_settings_and_agent_is_accepted(slurm: FakeRunner) -> None:
    backend = make_backend(slurm, timezone="Europe/Tallinn")
    backend.timezone = "Europe/Tallinn"
    backend._get_usage_report(["alloc-1"])
    assert len(sacct_calls(slurm)) == 1


def test_zone_different_from_the_agents_is_refused(slurm: FakeRunner) -> None:
    backend = make_backend(slurm, timezone="Europe/Tallinn")
    backend.timezone = "UTC"
    with pytest.raises(SlurmConfigError, match="differs from the agent's timezone 'UTC'"):
        backend._get_usage_report(["alloc-1"])
    assert sacct_calls(slurm) == []


def test_without_any_zone_months_are_utc_and_the_log_says_how_to_set_one(
    slurm: FakeRunner, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        make_backend(slurm).get_usage_report_for_period(["alloc-1"], 2026, 3)
    assert window_args(sacct_calls(slurm)[0]) == ("2026-03-01T00:00:00", "2026-04-01T00:00:00")
    assert "set backend_settings.timezone" in caplog.text


@pytest.mark.parametrize("bad", ["Mars/Olympus_Mons", "", "../etc/passwd"])
def test_unknown_zone_in_settings_stops_the_backend_at_start(bad: str) -> None:
    with pytest.raises(SlurmConfigError, match=r"backend_settings\.timezone"):
        make_backend(FakeRunner(), timezone=bad)


# ---- one sacct per month, every allocation, every component ---------------------------------


def test_one_sacct_serves_every_allocation_of_the_month(slurm: FakeRunner) -> None:
    slurm.outputs["sacct"] = "\n".join(
        [
            job_line("alloc-1", "alice", "2026-01-10T00:00:00", "2026-01-10T01:00:00", "cpu=60"),
            job_line("alloc-2", "bob", "2026-01-11T00:00:00", "2026-01-11T00:30:00", "cpu=120"),
        ]
    )
    report = make_backend(slurm, timezone="UTC").get_usage_report_for_period(
        list(ALLOCATIONS), 2026, 1
    )
    [call] = sacct_calls(slurm)
    assert "--accounts=alloc-1,alloc-2,alloc-3" in call
    # cpu k-hours (factor 60000): 60 CPUs × 60 min = 3600 CPU-min → 0.06.
    assert report["alloc-1"] == {
        "TOTAL_ACCOUNT_USAGE": {"cpu": 0.06, "mem": 0.0, "gpu": 0.0},
        "alice": {"cpu": 0.06, "mem": 0.0, "gpu": 0.0},
    }
    assert report["alloc-2"]["bob"]["cpu"] == 0.06
    assert report["alloc-3"] == {"TOTAL_ACCOUNT_USAGE": ZERO}


def test_month_without_jobs_reports_zero_for_every_component(slurm: FakeRunner) -> None:
    report = make_backend(slurm, timezone="UTC").get_usage_report_for_period(
        list(ALLOCATIONS), 2025, 7
    )
    assert report == {name: {"TOTAL_ACCOUNT_USAGE": ZERO} for name in ALLOCATIONS}


def test_job_without_an_end_counts_once_its_end_is_recorded(slurm: FakeRunner) -> None:
    # A record without an end may be a job that ended while slurmdbd was down (its end
    # still queued in slurmctld): counted up to now it would be billed too much, and the
    # framework never posts a lower value afterwards. It counts once its end is recorded.
    slurm.outputs["sacct"] = "7|alloc-1|alice|RUNNING|2026-01-31T23:00:00|Unknown|gres/gpu=2\n"
    report = make_backend(slurm, timezone="UTC").get_usage_report_for_period(["alloc-1"], 2026, 1)
    assert report["alloc-1"] == {"TOTAL_ACCOUNT_USAGE": ZERO}
    slurm.outputs["sacct"] = (
        "7|alloc-1|alice|COMPLETED|2026-01-31T23:00:00|2026-02-01T05:00:00|gres/gpu=2\n"
    )
    report = make_backend(slurm, timezone="UTC").get_usage_report_for_period(["alloc-1"], 2026, 1)
    assert report["alloc-1"]["alice"]["gpu"] == 2.0  # 2 GPUs × 1 hour in January, GPU-hours


def test_report_cycle_never_posts_more_than_the_jobs_final_record(slurm: FakeRunner) -> None:
    # As in the soak: a 4 s job ended while slurmdbd was down; after slurmdbd came back,
    # sacct showed its start but not yet its end (slurmctld delivered it a few seconds
    # later). Counted up to now, the first cycle posted 0.37 CPU-minutes, the next read
    # 0.07, and the framework refused to post the lower value: 0.37 stayed in Waldur.
    # Here 900 GPUs, so that 4 s are one GPU-hour and 26 s would be 6.5.
    now = datetime.now(UTC)
    if now.day == 1 and now.hour == 0 and now.minute < 2:
        pytest.skip("the job would start in the previous month")
    start, end = now - timedelta(seconds=26), now - timedelta(seconds=22)
    fmt = "%Y-%m-%dT%H:%M:%S"
    record = f"503|alloc-1|alice|{{}}|{start.strftime(fmt)}|{{}}|gres/gpu=900\n"
    posted = []
    for state, ended in (("RUNNING", "Unknown"), ("COMPLETED", end.strftime(fmt))):
        slurm.outputs["sacct"] = record.format(state, ended)
        backend = make_backend(slurm, timezone="UTC")  # each report cycle is a new process
        backend.timezone = "UTC"
        total = backend._get_usage_report(["alloc-1"])["alloc-1"]["TOTAL_ACCOUNT_USAGE"]
        posted.append(total["gpu"])
    assert posted == [0.0, 1.0]  # 900 GPUs × 4 s, once the job's end is recorded


# ---- requests the plugin refuses ------------------------------------------------------------


def test_unknown_allocation_stops_the_loader_before_sacct(slurm: FakeRunner) -> None:
    backend = make_backend(slurm, timezone="UTC")
    with pytest.raises(HistoricalLoadStopped) as stopped:
        backend.get_usage_report_for_period(["alloc-1", "gone-1", "gone-2"], 2026, 1)
    message = str(stopped.value.code)
    assert "Usage of 2026-01 not loaded" in message
    assert "gone-1, gone-2" in message and "alloc-1" not in message.split("SLURM")[1]
    assert "--resource-backend-id" in message
    assert "\n" not in message
    assert sacct_calls(slurm) == []


def test_unknown_allocation_is_a_backend_error_in_report_mode(slurm: FakeRunner) -> None:
    backend = make_backend(slurm)
    backend.timezone = "UTC"
    with pytest.raises(BackendError, match="not in SLURM: gone-1"):
        backend.get_usage_report_for_period(["gone-1"], 2026, 1, waldur_resource=resource())


def test_month_that_has_not_begun_stops_the_loader(slurm: FakeRunner) -> None:
    next_month = datetime.now(UTC).replace(day=1) + timedelta(days=32)
    backend = make_backend(slurm, timezone="UTC")
    with pytest.raises(HistoricalLoadStopped, match=r"has not begun.*end the date range"):
        backend.get_usage_report_for_period(["alloc-1"], next_month.year, next_month.month)
    assert slurm.calls == []


def test_current_month_is_allowed_and_counts_ended_jobs(slurm: FakeRunner) -> None:
    now = datetime.now(UTC)
    if now.day == 1 and now.hour == 0 and now.minute < 31:
        pytest.skip("the jobs would start in the previous month")
    started = (now - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S")
    ended = (now - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S")
    slurm.outputs["sacct"] = (
        f"8|alloc-1|alice|COMPLETED|{started}|{ended}|gres/gpu=60\n"
        f"9|alloc-1|alice|RUNNING|{started}|Unknown|gres/gpu=60\n"
    )
    report = make_backend(slurm, timezone="UTC").get_usage_report_for_period(
        ["alloc-1"], now.year, now.month
    )
    assert report["alloc-1"]["alice"]["gpu"] == 20.0  # 60 GPUs × 20 minutes; job 9 not yet


def test_sacct_failure_stops_the_loader(slurm: FakeRunner) -> None:
    slurm.failures["sacct"] = (1, "", "sacct: error: Problem talking to the database\n")
    with pytest.raises(HistoricalLoadStopped, match=r"Usage of 2026-01 not loaded.*database"):
        make_backend(slurm, timezone="UTC").get_usage_report_for_period(["alloc-1"], 2026, 1)


@pytest.mark.parametrize(("year", "month"), [(2026, 0), (2026, 13), (1969, 12)])
def test_invalid_month_is_refused(slurm: FakeRunner, year: int, month: int) -> None:
    with pytest.raises(HistoricalLoadStopped, match="Invalid usage month"):
        make_backend(slurm, timezone="UTC").get_usage_report_for_period(["alloc-1"], year, month)


# ---- months across a daylight saving change -------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "year", "month", "start", "end", "hours"),
    [
        # New York springs forward on 8 March 2026: March is an hour short.
        ("America/New_York", 2026, 3, "2026-03-01T05:00:00", "2026-04-01T04:00:00", 31 * 24 - 1),
        # and falls back on 1 November 2026, at 2:00, after midnight: November is an hour long.
        ("America/New_York", 2026, 11, "2026-11-01T04:00:00", "2026-12-01T05:00:00", 30 * 24 + 1),
        # Tallinn springs forward on 29 March 2026 and falls back on 25 October.
        ("Europe/Tallinn", 2026, 3, "2026-02-28T22:00:00", "2026-03-31T21:00:00", 31 * 24 - 1),
        ("Europe/Tallinn", 2026, 10, "2026-09-30T21:00:00", "2026-10-31T22:00:00", 31 * 24 + 1),
        # No change inside the month: the offset is the same at both ends.
        ("Europe/Tallinn", 2026, 2, "2026-01-31T22:00:00", "2026-02-28T22:00:00", 28 * 24),
    ],
)
def test_month_windows_across_a_dst_change(
    zone: str, year: int, month: int, start: str, end: str, hours: int
) -> None:
    window = month_window(year, month, zone)
    assert window.sacct_bounds() == (start, end)
    assert window.end - window.start == timedelta(hours=hours)


def test_consecutive_months_meet_exactly_across_dst_changes() -> None:
    for zone in ("America/New_York", "Europe/Tallinn", "Australia/Lord_Howe"):
        windows = [month_window(2026, m, zone) for m in range(1, 13)]
        assert all(a.end == b.start for a, b in pairwise(windows))
        assert windows[-1].end - windows[0].start == timedelta(days=365)


def job(start: datetime, end: datetime | None, **tres: int) -> JobRecord:
    return JobRecord("1", "alloc-1", "alice", "COMPLETED", start, end, dict(tres))


def cpu_seconds(year: int, month: int, zone: str, *jobs: JobRecord) -> int:
    now = datetime(2027, 1, 1, tzinfo=UTC)
    acc = UsageAccumulator(month_window(year, month, zone), now=now).add_all(jobs)
    return acc.tres_seconds["alloc-1"]["alice"]["cpu"] if acc.tres_seconds else 0


def test_job_over_the_spring_forward_night_counts_real_seconds() -> None:
    # 00:00 to 06:00 on the clocks in Tallinn on 29 March 2026 is 5 real hours (sacct: UTC).
    night = job(datetime(2026, 3, 28, 22), datetime(2026, 3, 29, 3), cpu=1)
    assert cpu_seconds(2026, 3, "Europe/Tallinn", night) == 5 * 3600


def test_job_crossing_midnight_into_a_dst_change_day_is_split_at_local_midnight() -> None:
    # Runs 23:00 to 01:00 New York time, 31 Oct → 1 Nov 2026, both on daylight time (UTC-4).
    crossing = job(datetime(2026, 11, 1, 3), datetime(2026, 11, 1, 5), cpu=2)
    assert cpu_seconds(2026, 10, "America/New_York", crossing) == 2 * 3600
    assert cpu_seconds(2026, 11, "America/New_York", crossing) == 2 * 3600
    # The same job in UTC months lies wholly in November.
    assert cpu_seconds(2026, 11, "UTC", crossing) == 4 * 3600


def test_loader_month_through_the_backend_across_the_fall_back(slurm: FakeRunner) -> None:
    lines = [
        # 1000 CPUs from 30 Oct 22:00 EDT to 2 Nov 02:00 EST in New York: 53 real hours.
        job_line("alloc-1", "alice", "2026-10-31T02:00:00", "2026-11-02T07:00:00", "cpu=1000"),
    ]
    slurm.outputs["sacct"] = "\n".join(lines)
    reports: dict[int, Any] = {}
    for month in (10, 11):
        backend = make_backend(slurm, timezone="America/New_York")
        reports[month] = backend.get_usage_report_for_period(["alloc-1"], 2026, month)
    # October ends 1 Nov 04:00 UTC: 26 hours of the job; November gets the other 27.
    assert reports[10]["alloc-1"]["alice"]["cpu"] == round(1000 * 26 * 60 / 60000, 2)
    assert reports[11]["alloc-1"]["alice"]["cpu"] == round(1000 * 27 * 60 / 60000, 2)
    assert [window_args(c) for c in sacct_calls(slurm)] == [
        ("2026-10-01T04:00:00", "2026-11-01T04:00:00"),
        ("2026-11-01T04:00:00", "2026-12-01T05:00:00"),
    ]


def test_period_window_is_the_month_window_once_the_month_has_begun() -> None:
    now = datetime(2026, 3, 1, 5, 0, 1, tzinfo=UTC)
    assert period_window(2026, 3, "America/New_York", now) == month_window(
        2026, 3, "America/New_York"
    )
