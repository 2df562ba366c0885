"""SlurmRestClient against slurm-emulator's slurmrestd, one run per data-parser version.

Where the emulator and the real slurmrestd 24.11 were seen to differ, the real one is
the reference (tests/rest, tests/data/slurm-24.11/rest) and the test says so.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.emulator.conftest import seed_job
from tests.emulator.rest.conftest import rest_settings, token_file
from tests.emulator.test_users_on_emulator import active_job, job_states
from waldur_site_agent_slurm.allocation import own_qos
from waldur_site_agent_slurm.allocation.usage import Window
from waldur_site_agent_slurm.devtools.restd import API_VERSIONS, RestdEmulator
from waldur_site_agent_slurm.errors import SlurmConfigError
from waldur_site_agent_slurm.rest_client import SlurmRestClient
from waldur_site_agent_slurm.slurm.client import SlurmClient
from waldur_site_agent_slurm.slurm.runner import CommandRunner

pytestmark = pytest.mark.emulator
UTC_NAIVE_START = datetime(2026, 3, 1)


def make_account(client: SlurmRestClient, name: str, **limits: int) -> None:
    assert client.add_account(name, f"allocation {name}", "resttest", "root", limits or None)


def test_the_reads_of_a_cycle_answer(client: SlurmRestClient, emulated: RestdEmulator) -> None:
    client.api.check_version()
    assert client.api.ping()
    assert "default" in client.clusters()
    assert {"cpu", "mem", "gres/gpu"} <= client.tres_names()
    assert "normal" in client.qos_names()


def test_a_version_the_emulator_does_not_serve_is_named_at_start_up(
    emulated: RestdEmulator, tmp_path: Path
) -> None:
    other = next(v for v in API_VERSIONS.values() if v != emulated.api_version)
    settings = rest_settings(emulated, token_file(tmp_path), api_version=other)
    with pytest.raises(SlurmConfigError, match=f"does not offer data parser {other}"):
        SlurmRestClient(settings, "default").api.check_version()


def test_an_account_is_created_with_its_limits_listed_and_removed(
    client: SlurmRestClient, account: str
) -> None:
    make_account(client, account, cpu=600, mem=1024)
    assert not client.add_account(account, "again", "resttest", "root")
    listed = {r.name: r for r in client.list_accounts()}
    assert listed[account].description == f"allocation {account}"
    assert listed[account].organization == "resttest"
    record = client.account_record(account, fresh=True)
    assert record is not None and record.parent == "root"
    assert record.grp_tres_mins == {"cpu": 600, "mem": 1024}
    client.remove_account(account)
    assert client.account_record(account, fresh=True) is None
    client.remove_account(account)  # a missing account is not an error


def test_users_are_associated_and_one_is_removed(client: SlurmRestClient, account: str) -> None:
    make_account(client, account)
    client.add_users(["alice", "bob"], [account])
    client.add_users(["alice"], [account])  # already there: no error
    assert set(client.snapshot().accounts[account].users) == {"alice", "bob"}
    client.remove_user("bob", account)
    assert set(client.snapshot().accounts[account].users) == {"alice"}
    assert {r.account for r in client.api.associations(user="alice")} >= {account}
    assert not client.api.associations(account=account, user="bob")


def test_a_limit_change_sets_the_named_tres_and_keeps_the_others(
    client: SlurmRestClient, account: str
) -> None:
    """As ``sacctmgr modify account set GrpTRESMins=cpu=…`` does."""
    make_account(client, account, cpu=600)
    client.modify_account(account, {"GrpTRESMins": "cpu=900,gres/gpu=60"})
    record = client.account_record(account, fresh=True)
    assert record is not None and record.grp_tres_mins == {"cpu": 900, "gres/gpu": 60}
    client.modify_account(account, {"GrpTRESMins": "cpu=300"})
    record = client.account_record(account, fresh=True)
    assert record is not None and record.grp_tres_mins == {"cpu": 300, "gres/gpu": 60}


def test_a_fairshare_change_keeps_the_limits(client: SlurmRestClient, account: str) -> None:
    make_account(client, account, cpu=600)
    client.modify_account(account, {"Fairshare": "9"})
    record = client.account_record(account, fresh=True)
    assert record is not None and record.fairshare == "9"
    assert record.grp_tres_mins == {"cpu": 600}


def test_jobs_are_the_records_sacct_gives(client: SlurmRestClient, account: str) -> None:
    make_account(client, account)
    client.add_users(["alice"], [account])
    start = UTC_NAIVE_START
    seed_job(account, "alice", start, start + timedelta(hours=2), {"cpu": 4, "mem": 8192})
    seed_job(account, "alice", start + timedelta(days=40), None, {"cpu": 1}, state="RUNNING")
    window = Window(start.replace(day=1), start.replace(month=4))
    over_rest = client.jobs(window, [account])
    over_sacct = SlurmClient(CommandRunner(emulator=True), "default").jobs(window, [account])
    assert sorted(over_rest) == sorted(over_sacct)
    [job] = list(client.jobs(window, [account]))
    assert (job.start, job.end, job.alloc_tres["cpu"]) == (start, start + timedelta(hours=2), 4)


def test_a_users_running_job_is_cancelled(client: SlurmRestClient, account: str) -> None:
    make_account(client, account)
    client.add_users(["alice", "bob"], [account])
    bobs = active_job(account, "bob", "RUNNING")
    alices = active_job(account, "alice", "RUNNING")
    assert client.active_jobs(account, "bob") == [bobs]
    client.cancel_user_jobs("bob", account)
    assert client.active_jobs(account, "bob") == []
    states = job_states(account)
    assert states[bobs].startswith("CANCELLED") and states[alices] == "RUNNING"


def test_an_allocation_qos_is_created_attached_corrected_and_removed(
    client: SlurmRestClient, account: str
) -> None:
    # The emulator keeps flags an update leaves out and stores flags as sent; the real
    # slurmrestd clears them (tests/rest/test_own_qos_over_rest.py), so they are sent again.
    # It ignores the QoS of a new account on /accounts_association/ (the real one sets
    # them): the account is attached as a re-run attaches an adopted one.
    options = own_qos.QosOptions(
        flags=("DenyOnLimit", "NoDecay"), grp_tres={"cpu": 4}, max_jobs=1, max_wall=90
    )
    assert client.qos_record(account) is None
    assert client.add_qos(account, options.settings()) is True
    assert not client.add_qos(account, options.settings())
    made = client.qos_record(account)
    assert made is not None and own_qos.differences(options, made) == {}
    assert client.add_account(account, "own QoS", "resttest", "root")
    client.modify_account(account, {"QOS+": account, "DefaultQOS": account})
    record = client.account_record(account, fresh=True)
    assert record is not None and account in record.qos and record.default_qos == account
    client.modify_qos(account, {"MaxJobs": "3"})
    changed = client.qos_record(account)
    assert changed is not None and (changed.max_jobs, changed.flags) == (3, made.flags)
    client.remove_account(account)
    client.remove_qos(account)
    assert client.qos_record(account) is None
