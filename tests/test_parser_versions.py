"""Golden parser tests on SLURM 22.05 and 24.11 output: the same parser reads both.

The captures were taken with more columns than the client asks for; ``project`` keeps
the client's columns, picked by name from the capture's ``format=`` or header line.
Times differ between the versions (the jobs ran on other days), so the comparisons
between versions leave times out; everything else must match.
"""

from __future__ import annotations

import pytest

from tests.captures import VERSIONS, columns, load, names, project
from waldur_site_agent_slurm.errors import SlurmParseError
from waldur_site_agent_slurm.slurm import parser
from waldur_site_agent_slurm.slurm.answers import Answer, classify

BASE_TRES = {"cpu", "mem", "energy", "node", "billing", "fs/disk", "vmem", "pages", "gres/gpu"}
GPU_EXTRAS = {"gres/gpumem", "gres/gpuutil"}


def jobs(version: str, name: str) -> list[parser.JobRecord]:
    return list(parser.parse_jobs(project(load(version, name), parser.SACCT_FIELDS)))


def timeless(records: list[parser.JobRecord]) -> list[tuple[object, ...]]:
    return [(j.job_id, j.account, j.user, j.state, j.alloc_tres) for j in records]


def associations(version: str, name: str) -> dict[tuple[str, str, str], parser.AssociationRecord]:
    rows = project(load(version, name), parser.ASSOC_FIELDS)
    return {(r.account, r.user, r.partition): r for r in parser.parse_associations(rows)}


# ---- sacct ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_sacct_allocations_give_every_job_with_its_state_and_tres(version: str) -> None:
    records = {j.job_id: j for j in jobs(version, "sacct_allocations_all_accounts")}
    assert list(records) == [str(n) for n in range(1, 11)]
    assert records["2"].alloc_tres == {
        "billing": 2,
        "cpu": 2,
        "gres/gpu": 1,
        "mem": 1024,
        "node": 1,
    }
    assert records["5"].state == "FAILED"
    assert records["6"].state == "CANCELLED"  # "CANCELLED by 0"
    assert records["8"].state == "TIMEOUT"
    assert (records["9"].state, records["9"].end) == ("RUNNING", None)
    assert (records["10"].start, records["10"].alloc_tres) == (None, {})


@pytest.mark.parametrize(
    "name",
    [
        "sacct_allocations_all_accounts",
        "sacct_X_all_accounts",
        "sacct_allocations_without_noconvert",
        "sacct_with_steps_all_accounts",
        "sacct_with_steps_without_noconvert",
        "sacct_allocations_account_list",
        "sacct_allocations_single_account",
        "sacct_state_cancelled_window",
        "sacct_window_cuts_job",
        "sacct_job_cancelled_before_start",
    ],
)
def test_sacct_reads_the_same_jobs_from_both_versions(name: str) -> None:
    old, new = jobs("22.05", name), jobs("24.11", name)
    assert old
    assert timeless(old) == timeless(new)


@pytest.mark.parametrize("version", VERSIONS)
def test_sacct_job_times_keep_their_length_on_both_versions(version: str) -> None:
    # Job 7 ran exactly 30 s in both captures; the truncated window clips it to 10 s.
    whole = {j.job_id: j for j in jobs(version, "sacct_window_cuts_job")}["7"]
    clipped = {j.job_id: j for j in jobs(version, "sacct_window_cuts_job_truncate")}["7"]
    assert whole.start is not None and whole.end is not None
    assert (whole.end - whole.start).total_seconds() == 30
    assert clipped.start is not None and clipped.end is not None
    assert (clipped.end - clipped.start).total_seconds() == 10


@pytest.mark.parametrize("version", VERSIONS)
def test_sacct_gpu_memory_and_utilisation_never_appear_in_job_tres(version: str) -> None:
    for name in ("sacct_allocations_all_accounts", "sacct_with_steps_all_accounts"):
        assert all(not GPU_EXTRAS & set(j.alloc_tres) for j in jobs(version, name))


@pytest.mark.parametrize("version", VERSIONS)
def test_sacct_empty_windows_and_unknown_accounts_give_no_jobs(version: str) -> None:
    assert jobs(version, "sacct_window_before_any_job") == []
    assert jobs(version, "sacct_allocations_nonexistent_account") == []


# ---- sshare ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_sshare_tres_lists_parse_with_24_11s_extra_gpu_entries(version: str) -> None:
    run = load(version, "sshare_all_users_grptresraw")
    rows = [row.split("|") for row in project(run, ("GrpTRESRaw", "TRESRunMins"))]
    keys = {key for row in rows for text in row for key in parser.parse_tres(text)}
    assert keys == (BASE_TRES | GPU_EXTRAS if version == "24.11" else BASE_TRES)


def test_sshare_limits_are_the_same_in_both_versions() -> None:
    def limits(version: str) -> dict[str, dict[str, int]]:
        rows = project(
            load(version, "sshare_all_users_grptresraw"), ("Account", "User", "GrpTRESMins")
        )
        return {
            f"{account.strip()}/{user}": parser.parse_tres(mins)
            for account, user, mins in (row.split("|") for row in rows)
        }

    old = limits("22.05")
    assert old["hpc_alloc1/"] == {"cpu": 6000, "mem": 12288000, "billing": 6000, "gres/gpu": 600}
    assert old == limits("24.11")


# ---- sacctmgr show / list -------------------------------------------------------------------


def tres_rows(version: str) -> list[str]:
    """``list tres`` rows (default columns, no header) as the client's ``format=Type,Name``.

    The default columns are read from the same version's capture with a header.
    """
    header = columns(load(version, "sacctmgr_list_tres_with_header"))[0]
    index = [header.index(field) for field in parser.TRES_FIELDS]
    return [
        "|".join(line.split("|")[i] for i in index)
        for line in load(version, "sacctmgr_list_tres").lines
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_list_tres_names_include_24_11s_gpu_memory_and_utilisation(version: str) -> None:
    rows = tres_rows(version)
    assert len(rows) == (11 if version == "24.11" else 9)
    assert parser.parse_tres_names(rows) == (
        BASE_TRES | GPU_EXTRAS if version == "24.11" else BASE_TRES
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_show_qos_default_columns_are_read_by_name_not_position(version: str) -> None:
    run = load(version, "sacctmgr_show_qos_default_format_with_header")
    header, rows = columns(run)
    assert len(header) == (28 if version == "24.11" else 26)
    assert parser.parse_names(project(run, ("Name",))) == {"normal", "slowdown", "blocked"}
    by_name = {row.split("|")[0]: dict(zip(header, row.split("|"), strict=True)) for row in rows}
    assert by_name["blocked"]["MaxSubmitPU"] == "0"
    assert by_name["blocked"]["GrpTRESMins"] == "cpu=0"
    assert by_name["slowdown"]["MaxTRESPU"] == "cpu=1"


@pytest.mark.parametrize("version", VERSIONS)
def test_show_qos_names_as_the_client_asks_for_them(version: str) -> None:
    run = load(version, "sacctmgr_show_qos")
    assert parser.parse_names(project(run, ("Name",))) == {"normal", "slowdown", "blocked"}


@pytest.mark.parametrize(
    "name",
    [
        "sacctmgr_show_assoc",
        "sacctmgr_show_assoc_where_account",
        "sacctmgr_show_assoc_where_accounts_list",
        "sacctmgr_show_assoc_where_cluster_user",
        "sacctmgr_show_assoc_where_account_withsubaccounts",
    ],
)
def test_show_assoc_gives_the_same_associations_in_both_versions(name: str) -> None:
    old = associations("22.05", name)
    assert old
    assert old == associations("24.11", name)  # row order aside


@pytest.mark.parametrize("version", VERSIONS)
def test_show_assoc_limits_qos_and_parents(version: str) -> None:
    assocs = associations(version, "sacctmgr_show_assoc")
    alloc1 = assocs["hpc_alloc1", "", ""]
    assert alloc1.parent == "hpc_proj1"
    assert alloc1.grp_tres_mins == {"billing": 6000, "cpu": 6000, "gres/gpu": 600, "mem": 12288000}
    assert alloc1.qos == ("blocked", "normal", "slowdown")
    assert assocs["hpc_alloc1", "alice", ""].max_tres_mins == {"cpu": 60, "gres/gpu": 30}
    assert assocs["hpc_alloc2", "bob", ""].fairshare == "parent"


@pytest.mark.parametrize("version", VERSIONS)
def test_show_assoc_rows_with_the_cluster_column_are_refused(version: str) -> None:
    with pytest.raises(SlurmParseError):
        parser.parse_associations(load(version, "sacctmgr_show_assoc").lines)


@pytest.mark.parametrize("version", VERSIONS)
def test_list_user_defaults(version: str) -> None:
    users = parser.parse_users(load(version, "sacctmgr_list_user").lines)
    assert {u.user: u.default_account for u in users} == {
        "alice": "hpc_alloc1",
        "bob": "hpc_alloc2",
        "carol": "hpc_alloc3",
        "root": "root",
    }


def test_24_11_user_whose_only_default_association_was_deleted_has_an_empty_default() -> None:
    users = parser.parse_users(
        load("24.11", "extra/sacctmgr_list_user_after_default_deleted").lines
    )
    assert parser.UserRecord("slurmtest2", "") in users


@pytest.mark.parametrize("version", VERSIONS)
def test_list_account_reads_organization_and_description(version: str) -> None:
    # The capture names the columns Account,Descr,Org; the client asks ACCOUNT_FIELDS.
    assert parser.ACCOUNT_FIELDS == ("Account", "Organization", "Description")
    run = load(version, "sacctmgr_list_account_format")
    records = {r.name: r for r in parser.parse_accounts(project(run, ("Account", "Org", "Descr")))}
    assert records["hpc_alloc1"] == parser.AccountRecord(
        "hpc_alloc1", "cust1", "allocation 1 (gpu)"
    )


# ---- add / modify / delete outputs ----------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(n for n in names("22.05") if n.startswith("setup/")))
def test_every_setup_add_and_modify_succeeds_whatever_its_layout(version: str, name: str) -> None:
    # 24.11 lays the add output out differently (cluster first, names padded, no
    # "Parent = root"): the client reads only the exit status and the error texts.
    run = load(version, name)
    assert classify(run.argv, run.exit, run.stdout, run.stderr) is Answer.DONE


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    "name",
    [
        "sacctmgr_add_account_new",
        "sacctmgr_add_account_mixed_case",
        "sacctmgr_add_user_new",
        "sacctmgr_modify_account_changes",
        "sacctmgr_modify_account_clear_limit",
        "sacctmgr_modify_user_assoc_changes",
        "sacctmgr_modify_qos_add_remove",
        "sacctmgr_delete_account",
        "sacctmgr_delete_user_assoc",
    ],
)
def test_successful_changes_are_done_on_both_versions(version: str, name: str) -> None:
    run = load(version, name)
    assert run.exit == 0
    assert classify(run.argv, run.exit, run.stdout, run.stderr) is Answer.DONE
