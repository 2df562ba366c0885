"""Golden tests of ``parser`` against real Slurm 22.05.8 output (``tests/data/slurm-22.05``).

Every capture starts with ``# command: ...`` and ``# exit: N``; ``load`` strips them.
The captures were taken with more columns than the client asks for, so the helpers
below turn capture rows into the rows our client would get, always by column *name*
(from the capture's own ``format=`` or header line), never by guessing positions.
The raw rows are also fed to the parser, to check it rejects a column set it did not ask for.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

from waldur_site_agent_slurm.allocation.usage import UsageAccumulator, Window
from waldur_site_agent_slurm.errors import SlurmParseError
from waldur_site_agent_slurm.slurm import parser
from waldur_site_agent_slurm.slurm.parser import JobRecord

UTC = timezone.utc  # datetime.UTC from Python 3.11 on

DATA = Path(__file__).parent / "data" / "slurm-22.05"

# The main sacct window of the captures (README), and the moment the usage tests use as now.
MAIN_WINDOW = Window(
    datetime(2026, 11, 21, 14, 29, 21, tzinfo=UTC), datetime(2026, 11, 21, 14, 32, 55, tzinfo=UTC)
)
CUT_WINDOW = Window(
    datetime(2026, 11, 21, 14, 30, 21, tzinfo=UTC), datetime(2026, 11, 21, 14, 30, 31, tzinfo=UTC)
)
NOW = datetime(2026, 11, 21, 14, 32, 55, tzinfo=UTC)


def ts(hour: int, minute: int, second: int) -> datetime:
    """A naive sacct time on the capture day (sacct prints local time, here UTC)."""
    return datetime(2026, 11, 21, hour, minute, second)


# ---- capture helpers -----------------------------------------------------------------------


@dataclass(frozen=True)
class Capture:
    """One capture file: the command line, its exit status and its stdout lines."""

    command: str
    exit: int
    stdout: list[str]

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.command)

    @property
    def requested_columns(self) -> tuple[str, ...] | None:
        """The columns named by ``format=`` / ``--format=`` on the command line, if any."""
        for arg in self.argv:
            for prefix in ("format=", "--format="):
                if arg.startswith(prefix):
                    return tuple(arg.removeprefix(prefix).split(","))
        return None

    @property
    def has_header(self) -> bool:
        return "--noheader" not in self.argv


def load(name: str) -> Capture:
    """Read ``NAME`` and strip its two header lines."""
    command_line, exit_line, *stdout = (DATA / name).read_text().splitlines()
    assert command_line.startswith("# command: "), name
    assert exit_line.startswith("# exit: "), name
    return Capture(
        command=command_line.removeprefix("# command: "),
        exit=int(exit_line.removeprefix("# exit: ")),
        stdout=stdout,
    )


def data_rows(capture: Capture, columns: tuple[str, ...]) -> list[str]:
    """Stdout without the header line (checked against ``columns`` when there is one)."""
    if not capture.has_header:
        return capture.stdout
    header, *rows = capture.stdout
    assert tuple(header.split("|")) == columns, "header titles differ from column names"
    return rows


def project(rows: Iterable[str], columns: tuple[str, ...], fields: tuple[str, ...]) -> list[str]:
    """Rewrite ``--parsable2`` rows with ``columns`` into rows with only ``fields``, by name."""
    index = [columns.index(field) for field in fields]
    projected = []
    for row in rows:
        values = row.split("|")
        assert len(values) == len(columns), row
        projected.append("|".join(values[i] for i in index))
    return projected


def assoc_lines(name: str) -> list[str]:
    """``sacctmgr show assoc`` capture rows in the client's ``ASSOC_FIELDS`` layout.

    The captures were taken with ``format=Cluster,<ASSOC_FIELDS>``. Our client asks for
    ``format=<ASSOC_FIELDS>`` without Cluster (it selects the cluster with
    ``where cluster=...`` instead), so the leading Cluster column is dropped here, explicitly.
    """
    capture = load(name)
    assert capture.requested_columns == ("Cluster", *parser.ASSOC_FIELDS)
    assert not capture.has_header
    return [line.split("|", 1)[1] for line in capture.stdout]


def sacct_lines(name: str) -> list[str]:
    """``sacct`` capture rows reduced to ``SACCT_FIELDS``, by the capture's ``--format`` names.

    The captures carry extra columns (ElapsedRaw, ReqTRES, CPUTimeRAW, sometimes Submit
    and Eligible) that the client does not request.
    """
    capture = load(name)
    columns = capture.requested_columns
    assert columns is not None
    return project(data_rows(capture, columns), columns, parser.SACCT_FIELDS)


def list_tres_default_columns() -> tuple[str, ...]:
    """The default columns of ``sacctmgr list tres``, read from the capture with a header."""
    capture = load("sacctmgr_list_tres_with_header.txt")
    assert capture.requested_columns is None
    return tuple(capture.stdout[0].split("|"))


def tres_lines() -> list[str]:
    """``sacctmgr list tres`` rows reduced to the client's ``format=Type,Name``.

    The capture used the default format (Type|Name|ID, no ``format=``).
    """
    capture = load("sacctmgr_list_tres.txt")
    assert capture.requested_columns is None
    return project(capture.stdout, list_tres_default_columns(), parser.TRES_FIELDS)


def jobs_by_id(name: str) -> dict[str, JobRecord]:
    return {job.job_id: job for job in parser.parse_jobs(sacct_lines(name))}


def assocs_by_key(name: str) -> dict[tuple[str, str], parser.AssociationRecord]:
    return {(rec.account, rec.user): rec for rec in parser.parse_associations(assoc_lines(name))}


def test_load_strips_the_command_and_exit_lines() -> None:
    capture = load("sacctmgr_list_user.txt")
    assert capture.command.startswith("sacctmgr --parsable2 --noheader list user")
    assert capture.exit == 0
    assert capture.stdout[0] == "alice|hpc_alloc1"


# ---- split_row ------------------------------------------------------------------------------


def test_split_row_returns_one_value_per_field_keeping_empty_ones() -> None:
    assert parser.split_row("alice||x", ("A", "B", "C")) == ["alice", "", "x"]


def test_split_row_rejects_too_few_fields() -> None:
    with pytest.raises(SlurmParseError, match="Expected 3 fields"):
        parser.split_row("alice|x", ("A", "B", "C"))


def test_split_row_rejects_trailing_separator_of_parsable_format() -> None:
    # ``--parsable`` (not ``--parsable2``) ends each line with '|': one field too many.
    with pytest.raises(SlurmParseError, match="got 3"):
        parser.split_row("alice|hpc_alloc1|", parser.USER_FIELDS)


# ---- parse_time -----------------------------------------------------------------------------


def test_parse_time_reads_iso_local_time() -> None:
    assert parser.parse_time("2026-11-21T14:29:36") == ts(14, 29, 36)


@pytest.mark.parametrize("text", ["Unknown", "None", ""])
def test_parse_time_maps_unknown_none_and_empty_to_none(text: str) -> None:
    assert parser.parse_time(text) is None


@pytest.mark.parametrize("text", ["garbage", "2026-13-01T00:00:00", "14:29:36 today", "unknown"])
def test_parse_time_rejects_garbage(text: str) -> None:
    with pytest.raises(SlurmParseError, match="Bad time"):
        parser.parse_time(text)


# ---- parse_tres / format_tres ---------------------------------------------------------------


def test_parse_tres_reads_sorted_sacctmgr_string() -> None:
    # hpc_alloc1's GrpTRESMins as sacctmgr prints it: sorted by name, memory with a unit.
    assert parser.parse_tres("billing=6000,cpu=6000,gres/gpu=600,mem=12000G") == {
        "billing": 6000,
        "cpu": 6000,
        "gres/gpu": 600,
        "mem": 12288000,
    }


def test_parse_tres_keeps_the_gres_gpu_name() -> None:
    assert parser.parse_tres("cpu=60,gres/gpu=30") == {"cpu": 60, "gres/gpu": 30}


@pytest.mark.parametrize(
    ("text", "megabytes"),
    [
        ("mem=300", 300),
        ("mem=300M", 300),
        ("mem=1000000M", 1000000),
        ("mem=1G", 1024),
        ("mem=4G", 4096),
        ("mem=12000G", 12000 * 1024),
        ("mem=1T", 1024 * 1024),
        ("mem=3T", 3 * 1024 * 1024),
    ],
)
def test_parse_tres_converts_memory_suffixes_to_megabytes(text: str, megabytes: int) -> None:
    assert parser.parse_tres(text) == {"mem": megabytes}


@pytest.mark.parametrize(
    ("text", "megabytes"),
    [  # what sacctmgr 22.05 and 24.11 print for GrpTRESMins=mem=<MB> (the soak found the first)
        ("mem=7.50T", 7864320),
        ("mem=12.50T", 13107200),
        ("mem=1.50T", 1572864),
        ("mem=1.50G", 1536),
    ],
)
def test_parse_tres_reads_memory_shown_with_two_decimals(text: str, megabytes: int) -> None:
    assert parser.parse_tres(f"cpu=234,gres/gpu=180,{text}") == {
        "cpu": 234, "gres/gpu": 180, "mem": megabytes,
    }  # fmt: skip


@pytest.mark.parametrize("text", ["mem=1.5M", "mem=0.01G", "mem=1.50K"])
def test_parse_tres_refuses_memory_that_is_not_a_whole_number_of_megabytes(text: str) -> None:
    with pytest.raises(SlurmParseError, match="not a whole number of MB"):
        parser.parse_tres(text)


def test_parse_tres_accepts_kilobytes_divisible_by_1024() -> None:
    assert parser.parse_tres("mem=2048K") == {"mem": 2}


def test_parse_tres_rejects_kilobytes_below_a_whole_megabyte() -> None:
    with pytest.raises(SlurmParseError, match="not a whole number of MB"):
        parser.parse_tres("mem=1000K")


def test_parse_tres_empty_string_is_empty_dict() -> None:
    assert parser.parse_tres("") == {}


@pytest.mark.parametrize(
    "text",
    [
        "cpu",  # no '='
        "=60",  # no name
        "cpu=",  # no value
        "cpu=x",  # not a number
        "cpu=-1",  # negative
        "cpu=1.5",  # a fraction without a unit
        "mem=1.505T",  # more than the two decimals sacctmgr prints
        "mem=1.G",  # no decimals after the point
        "mem=1X",  # unknown unit
        "mem=1g",  # units are upper case
        "cpu=1,,mem=2",  # empty entry
        "cpu=1,",  # trailing comma
        "cpu=1 ",  # trailing space
    ],
)
def test_parse_tres_rejects_malformed_entries(text: str) -> None:
    with pytest.raises(SlurmParseError, match="Bad TRES entry"):
        parser.parse_tres(text)


def test_format_tres_sorts_names_and_prints_plain_numbers() -> None:
    assert parser.format_tres({"mem": 1024, "cpu": 60, "gres/gpu": 2}) == (
        "cpu=60,gres/gpu=2,mem=1024"
    )


def test_format_tres_round_trips_through_parse_tres() -> None:
    values = parser.parse_tres("billing=6000,cpu=6000,gres/gpu=600,mem=12000G")
    text = parser.format_tres(values)
    assert text == "billing=6000,cpu=6000,gres/gpu=600,mem=12288000"
    assert parser.parse_tres(text) == values


# ---- parse_associations ---------------------------------------------------------------------


def test_parse_associations_rejects_rows_with_the_extra_cluster_column() -> None:
    raw = load("sacctmgr_show_assoc.txt").stdout
    with pytest.raises(SlurmParseError, match=f"Expected {len(parser.ASSOC_FIELDS)} fields"):
        parser.parse_associations(raw)


def test_parse_associations_reads_all_13_rows_in_order() -> None:
    records = parser.parse_associations(assoc_lines("sacctmgr_show_assoc.txt"))
    assert [(rec.account, rec.user) for rec in records] == [
        ("root", ""),
        ("root", "root"),
        ("hpc_cust1", ""),
        ("hpc_proj1", ""),
        ("hpc_alloc1", ""),
        ("hpc_alloc1", "alice"),
        ("hpc_alloc2", ""),
        ("hpc_alloc2", "alice"),
        ("hpc_alloc2", "bob"),
        ("hpc_cust2", ""),
        ("hpc_proj2", ""),
        ("hpc_alloc3", ""),
        ("hpc_alloc3", "carol"),
    ]


def test_account_rows_have_empty_user_and_their_parent() -> None:
    records = parser.parse_associations(assoc_lines("sacctmgr_show_assoc.txt"))
    parents = {rec.account: rec.parent for rec in records if not rec.user}
    assert parents == {
        "root": "",  # the top has no parent
        "hpc_cust1": "root",
        "hpc_proj1": "hpc_cust1",
        "hpc_alloc1": "hpc_proj1",
        "hpc_alloc2": "hpc_proj1",
        "hpc_cust2": "root",
        "hpc_proj2": "hpc_cust2",
        "hpc_alloc3": "hpc_proj2",
    }


def test_user_rows_have_no_parent_and_no_partition() -> None:
    records = parser.parse_associations(assoc_lines("sacctmgr_show_assoc.txt"))
    users = [rec for rec in records if rec.user]
    assert {(rec.account, rec.user) for rec in users} == {
        ("root", "root"),
        ("hpc_alloc1", "alice"),
        ("hpc_alloc2", "alice"),
        ("hpc_alloc2", "bob"),
        ("hpc_alloc3", "carol"),
    }
    assert all(rec.parent == "" and rec.partition == "" for rec in users)


def test_fairshare_is_kept_as_text_including_parent() -> None:
    assocs = assocs_by_key("sacctmgr_show_assoc.txt")
    assert assocs["hpc_alloc2", "bob"].fairshare == "parent"
    assert assocs["hpc_alloc1", ""].fairshare == "60"
    assert assocs["hpc_alloc1", "alice"].fairshare == "1"


def test_qos_lists_are_split_into_tuples_in_printed_order() -> None:
    assocs = assocs_by_key("sacctmgr_show_assoc.txt")
    assert assocs["hpc_alloc1", ""].qos == ("blocked", "normal", "slowdown")
    assert assocs["hpc_alloc1", "alice"].qos == ("blocked", "normal", "slowdown")
    assert assocs["hpc_alloc2", "bob"].qos == ("normal", "slowdown")
    assert assocs["root", ""].qos == ("normal",)


def test_default_qos_is_text_and_empty_when_unset() -> None:
    assocs = assocs_by_key("sacctmgr_show_assoc.txt")
    assert assocs["hpc_alloc1", ""].default_qos == "normal"
    assert assocs["hpc_alloc3", "carol"].default_qos == "slowdown"
    assert assocs["hpc_cust1", ""].default_qos == ""


def test_grp_tres_memory_with_g_suffix_is_in_megabytes() -> None:
    # GrpTRES mem=4096 is printed as mem=4G.
    assert assocs_by_key("sacctmgr_show_assoc.txt")["hpc_alloc2", ""].grp_tres == {
        "cpu": 2,
        "gres/gpu": 1,
        "mem": 4096,
    }


def test_grp_tres_mins_memory_with_g_suffix_is_in_megabyte_minutes() -> None:
    # GrpTRESMins mem=12288000 is printed as mem=12000G.
    assert assocs_by_key("sacctmgr_show_assoc.txt")["hpc_alloc1", ""].grp_tres_mins == {
        "billing": 6000,
        "cpu": 6000,
        "gres/gpu": 600,
        "mem": 12288000,
    }


def test_max_tres_mins_of_a_user_association() -> None:
    alice = assocs_by_key("sacctmgr_show_assoc.txt")["hpc_alloc1", "alice"]
    assert alice.max_tres_mins == {"cpu": 60, "gres/gpu": 30}
    assert alice.grp_tres_mins == {}


def test_unset_limits_are_empty_dicts() -> None:
    carol = assocs_by_key("sacctmgr_show_assoc.txt")["hpc_alloc3", "carol"]
    assert (carol.grp_tres_mins, carol.max_tres_mins, carol.grp_tres) == ({}, {}, {})


def test_where_account_gives_the_account_and_its_users_only() -> None:
    records = parser.parse_associations(assoc_lines("sacctmgr_show_assoc_where_account.txt"))
    assert [(rec.account, rec.user, rec.parent) for rec in records] == [
        ("hpc_alloc1", "", "hpc_proj1"),
        ("hpc_alloc1", "alice", ""),
    ]


def test_where_accounts_list_gives_every_listed_account_with_users() -> None:
    assocs = assocs_by_key("sacctmgr_show_assoc_where_accounts_list.txt")
    assert set(assocs) == {
        ("hpc_alloc1", ""),
        ("hpc_alloc1", "alice"),
        ("hpc_alloc2", ""),
        ("hpc_alloc2", "alice"),
        ("hpc_alloc2", "bob"),
        ("hpc_alloc3", ""),
        ("hpc_alloc3", "carol"),
    }
    # Same values as in the unfiltered listing.
    everything = assocs_by_key("sacctmgr_show_assoc.txt")
    assert all(assocs[key] == everything[key] for key in assocs)


def test_where_cluster_user_keeps_slurms_unsorted_row_order() -> None:
    records = parser.parse_associations(assoc_lines("sacctmgr_show_assoc_where_cluster_user.txt"))
    assert [(rec.account, rec.user) for rec in records] == [
        ("hpc_alloc2", "alice"),
        ("hpc_alloc1", "alice"),
    ]
    assert records[1].max_tres_mins == {"cpu": 60, "gres/gpu": 30}


def test_nonexistent_account_gives_no_associations() -> None:
    capture = load("sacctmgr_show_assoc_where_account_nonexistent.txt")
    assert capture.exit == 0
    assert capture.stdout == []
    assert parser.parse_associations(capture.stdout) == []


def test_parse_associations_skips_blank_lines() -> None:
    lines = assoc_lines("sacctmgr_show_assoc_where_account.txt")
    assert parser.parse_associations(["", *lines, "  "]) == parser.parse_associations(lines)


# ---- parse_tres_names -----------------------------------------------------------------------


def test_parse_tres_names_rejects_default_three_column_list() -> None:
    raw = load("sacctmgr_list_tres.txt").stdout
    assert raw[0].count("|") == 2  # Type|Name|ID
    with pytest.raises(SlurmParseError, match="Expected 2 fields"):
        parser.parse_tres_names(raw)


def test_parse_tres_names_joins_type_and_name() -> None:
    assert parser.parse_tres_names(tres_lines()) == frozenset(
        {"cpu", "mem", "energy", "node", "billing", "fs/disk", "vmem", "pages", "gres/gpu"}
    )


def test_parse_tres_names_never_yields_bare_gpu() -> None:
    names = parser.parse_tres_names(tres_lines())
    assert "gres/gpu" in names
    assert "gpu" not in names


# ---- parse_users ----------------------------------------------------------------------------


def test_parse_users_reads_user_and_default_account() -> None:
    capture = load("sacctmgr_list_user.txt")
    assert capture.requested_columns == parser.USER_FIELDS
    assert parser.parse_users(capture.stdout) == [
        parser.UserRecord("alice", "hpc_alloc1"),
        parser.UserRecord("bob", "hpc_alloc2"),
        parser.UserRecord("carol", "hpc_alloc3"),
        parser.UserRecord("root", "root"),
    ]


# ---- parse_jobs -----------------------------------------------------------------------------


def test_parse_jobs_rejects_rows_with_extra_sacct_columns() -> None:
    raw = load("sacct_allocations_all_accounts.txt").stdout
    with pytest.raises(SlurmParseError, match=f"Expected {len(parser.SACCT_FIELDS)} fields"):
        list(parser.parse_jobs(raw))


def test_parse_jobs_is_lazy_and_fails_only_at_the_bad_row() -> None:
    good = sacct_lines("sacct_allocations_all_accounts.txt")[0]
    jobs: Iterator[JobRecord] = parser.parse_jobs([good, "1|broken"])
    assert next(jobs).job_id == "1"
    with pytest.raises(SlurmParseError):
        next(jobs)


def test_parse_jobs_reads_every_allocation_in_the_window() -> None:
    jobs = list(parser.parse_jobs(sacct_lines("sacct_allocations_all_accounts.txt")))
    assert [job.job_id for job in jobs] == [str(n) for n in range(1, 11)]
    assert jobs[0] == JobRecord(
        job_id="1",
        account="hpc_alloc1",
        user="alice",
        state="COMPLETED",
        start=ts(14, 29, 36),
        end=ts(14, 29, 41),
        alloc_tres={"billing": 1, "cpu": 1, "mem": 256, "node": 1},
    )


def test_job_memory_is_in_megabytes_with_and_without_noconvert() -> None:
    converted = jobs_by_id("sacct_allocations_all_accounts.txt")
    unconverted = jobs_by_id("sacct_allocations_without_noconvert.txt")
    assert "mem=1G" in load("sacct_allocations_without_noconvert.txt").stdout[1]
    assert converted["2"].alloc_tres == {
        "billing": 2,
        "cpu": 2,
        "gres/gpu": 1,
        "mem": 1024,
        "node": 1,
    }
    assert converted["9"].alloc_tres["mem"] == 2048
    assert converted["3"].alloc_tres["mem"] == 300
    # The only column that differed (job 9's growing ElapsedRaw) is not one we read.
    assert unconverted == converted


def test_sacct_x_and_allocations_give_the_same_jobs() -> None:
    assert jobs_by_id("sacct_X_all_accounts.txt") == jobs_by_id(
        "sacct_allocations_all_accounts.txt"
    )


def test_running_job_has_a_start_and_no_end() -> None:
    job = jobs_by_id("sacct_allocations_all_accounts.txt")["9"]
    assert (job.state, job.start, job.end) == ("RUNNING", ts(14, 30, 42), None)


def test_pending_job_has_no_start_no_end_and_empty_alloc_tres() -> None:
    job = jobs_by_id("sacct_allocations_all_accounts.txt")["10"]
    assert (job.state, job.start, job.end, job.alloc_tres) == ("PENDING", None, None, {})


def test_cancelled_by_uid_state_keeps_the_first_word() -> None:
    job = jobs_by_id("sacct_allocations_all_accounts.txt")["6"]
    assert job.state == "CANCELLED"
    assert job.alloc_tres["gres/gpu"] == 2


def test_other_final_states_are_kept_as_printed() -> None:
    jobs = jobs_by_id("sacct_allocations_all_accounts.txt")
    assert {jobs[n].state for n in ("1", "2", "3", "4", "7")} == {"COMPLETED"}
    assert jobs["5"].state == "FAILED"
    assert jobs["8"].state == "TIMEOUT"


def test_job_cancelled_before_start_has_start_none() -> None:
    # This capture has a header line and Submit/Eligible columns; sacct printed Start=None.
    capture = load("sacct_job_cancelled_before_start.txt")
    assert capture.has_header
    jobs = list(parser.parse_jobs(sacct_lines("sacct_job_cancelled_before_start.txt")))
    assert jobs == [
        JobRecord(
            job_id="11",
            account="hpc_alloc1",
            user="alice",
            state="CANCELLED",
            start=None,
            end=ts(14, 30, 45),
            alloc_tres={},
        )
    ]


def test_window_cutting_a_job_still_returns_its_full_times() -> None:
    jobs = list(parser.parse_jobs(sacct_lines("sacct_window_cuts_job.txt")))
    assert [(job.job_id, job.start, job.end) for job in jobs] == [
        ("7", ts(14, 30, 11), ts(14, 30, 41))
    ]


def test_truncated_window_returns_clipped_times() -> None:
    jobs = list(parser.parse_jobs(sacct_lines("sacct_window_cuts_job_truncate.txt")))
    assert [(job.job_id, job.start, job.end) for job in jobs] == [
        ("7", ts(14, 30, 21), ts(14, 30, 31))
    ]


def test_nonexistent_account_gives_no_jobs() -> None:
    capture = load("sacct_allocations_nonexistent_account.txt")
    assert capture.exit == 0
    assert capture.stdout == []
    assert list(parser.parse_jobs(sacct_lines("sacct_allocations_nonexistent_account.txt"))) == []


def test_step_rows_parse_with_empty_user_and_no_billing() -> None:
    jobs = jobs_by_id("sacct_with_steps_all_accounts.txt")
    assert {"1.batch", "3.0", "4.batch", "4.0", "4.1", "9.batch"} <= set(jobs)
    step = jobs["4.batch"]
    assert (step.account, step.user, step.state) == ("hpc_alloc2", "", "COMPLETED")
    assert step.alloc_tres == {"cpu": 2, "gres/gpu": 1, "mem": 1024, "node": 1}
    assert jobs["4.1"].alloc_tres["cpu"] == 2  # srun -n1 still shows the job's cpu=2
    assert jobs["6.batch"].state == "CANCELLED"
    assert jobs["9.batch"].end is None


# ---- usage from parsed jobs -----------------------------------------------------------------


def test_usage_of_alice_in_hpc_alloc1_is_exact_tres_seconds() -> None:
    jobs = parser.parse_jobs(sacct_lines("sacct_allocations_all_accounts.txt"))
    usage = UsageAccumulator(MAIN_WINDOW, now=NOW).add_all(jobs)
    # Job 1: 14:29:36-14:29:41 = 5 s, cpu=1, mem=256M, billing=1, node=1.
    # Job 2: 14:29:42-14:29:50 = 8 s, cpu=2, mem=1024M, gres/gpu=1, billing=2, node=1.
    assert usage.tres_seconds["hpc_alloc1"]["alice"] == {
        "billing": 1 * 5 + 2 * 8,
        "cpu": 1 * 5 + 2 * 8,
        "mem": 256 * 5 + 1024 * 8,
        "gres/gpu": 1 * 8,
        "node": 1 * 5 + 1 * 8,
    }
    assert usage.tres_seconds["hpc_alloc1"]["alice"]["cpu"] == 21
    assert usage.tres_seconds["hpc_alloc1"]["alice"]["mem"] == 9472
    assert usage.jobs == 10


def running_job_9() -> list[JobRecord]:
    """Bob's job 9, still running when the main sacct capture was taken."""
    jobs = parser.parse_jobs(sacct_lines("sacct_allocations_all_accounts.txt"))
    return [job for job in jobs if job.job_id == "9"]


def test_running_job_counts_up_to_now() -> None:
    jobs = running_job_9()
    usage = UsageAccumulator(MAIN_WINDOW, now=NOW).add_all(jobs)
    # Job 9 started 14:30:42 and is still running; now is 14:32:55: 2 min 13 s.
    seconds = 2 * 60 + 13
    assert seconds == 133
    assert usage.tres_seconds["hpc_alloc2"]["bob"] == {
        "billing": 1 * seconds,
        "cpu": 1 * seconds,
        "mem": 2048 * seconds,
        "node": 1 * seconds,
    }


def test_running_job_stops_at_now_inside_a_longer_window() -> None:
    jobs = running_job_9()
    window = Window(MAIN_WINDOW.start, datetime(2026, 11, 21, 15, 0, 0, tzinfo=UTC))
    usage = UsageAccumulator(window, now=NOW).add_all(jobs)
    assert usage.tres_seconds["hpc_alloc2"]["bob"]["cpu"] == 133


def test_window_cutting_a_job_counts_only_the_seconds_inside() -> None:
    jobs = parser.parse_jobs(sacct_lines("sacct_window_cuts_job.txt"))
    usage = UsageAccumulator(CUT_WINDOW, now=NOW).add_all(jobs)
    # Job 7 ran 14:30:11-14:30:41; the window 14:30:21-14:30:31 holds 10 s of it.
    seconds = 10
    assert usage.tres_seconds["hpc_alloc3"]["carol"] == {
        "billing": 1 * seconds,
        "cpu": 1 * seconds,
        "mem": 512 * seconds,
        "node": 1 * seconds,
    }


def test_pending_and_never_started_jobs_add_no_usage() -> None:
    jobs = [
        *parser.parse_jobs(sacct_lines("sacct_allocations_all_accounts.txt")),
        *parser.parse_jobs(sacct_lines("sacct_job_cancelled_before_start.txt")),
    ]
    usage = UsageAccumulator(MAIN_WINDOW, now=NOW).add_all(
        job for job in jobs if job.job_id in {"10", "11"}
    )
    assert usage.jobs == 2
    assert dict(usage.tres_seconds) == {}


@pytest.mark.parametrize("text", ["2026-11-21T14:29:36+01:00", "2026-11-21", "20261121T142936"])
def test_parse_time_rejects_forms_sacct_never_prints(text: str) -> None:
    with pytest.raises(SlurmParseError):
        parser.parse_time(text)
