"""RestVerbs against a real slurmrestd 24.11 with JWT auth.

Each write is checked through ``sacctmgr``, independently of the REST reads.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.rest.conftest import API_VERSION, USERS, RestStack
from waldur_site_agent_slurm.allocation.usage import Window
from waldur_site_agent_slurm.errors import SlurmCommandError, SlurmConfigError
from waldur_site_agent_slurm.slurm.answers import Answer
from waldur_site_agent_slurm.slurm.client import SlurmClient
from waldur_site_agent_slurm.slurm.rest_verbs import RestSettings, RestVerbs
from waldur_site_agent_slurm.slurm.runner import CommandRunner

pytestmark = pytest.mark.rest


def sacctmgr_assocs(stack: RestStack, account: str) -> set[tuple[str, str, str]]:
    """(user, parent, fairshare) of every association of ``account``, read by sacctmgr."""
    out = stack.run(
        "sacctmgr", "-P", "-n", "show", "assoc", "where", f"account={account}",
        f"cluster={stack.cluster}", "format=User,ParentName,Fairshare",
    ).stdout  # fmt: skip
    return {tuple(line.split("|")) for line in out.splitlines() if line}  # type: ignore[misc]


def test_the_configured_version_is_offered(client: RestVerbs) -> None:
    client.check_version()
    assert client.ping()


def test_a_version_the_server_lacks_fails_clearly(rest_stack: RestStack, token_file: Path) -> None:
    settings = RestSettings(
        url=rest_stack.url, api_version="v0.0.43", username="root", token_file=token_file
    )
    with pytest.raises(SlurmConfigError, match=r"does not offer data parser v0\.0\.43"):
        RestVerbs(settings, rest_stack.cluster).check_version()


def test_account_with_association_is_created_read_and_deleted(
    client: RestVerbs, rest_stack: RestStack, account: str
) -> None:
    assert client.add_account(
        account, description="made over REST", organization="resttest", parent="root",
        fairshare=7,
    )  # fmt: skip
    assert not client.add_account(
        account, description="made over REST", organization="resttest", parent="root"
    )
    found = client.account(account)
    assert found is not None and found.description == "made over REST"
    [record] = client.associations(account=account)
    assert (record.user, record.parent, record.fairshare) == ("", "root", "7")
    assert sacctmgr_assocs(rest_stack, account) == {("", "root", "7")}

    assert client.remove_account(account)
    assert client.account(account) is None
    assert sacctmgr_assocs(rest_stack, account) == set()
    assert not client.remove_account(account)


def test_account_limits_are_set(client: RestVerbs, rest_stack: RestStack, account: str) -> None:
    client.add_account(account, description="d", organization="resttest", parent="root")
    client.set_account_limits(account, {"cpu": 600, "gres/gpu": 60})
    [record] = client.associations(account=account)
    assert record.grp_tres_mins == {"cpu": 600, "gres/gpu": 60}
    out = rest_stack.run(
        "sacctmgr", "-P", "-n", "show", "assoc", "where", f"account={account}", "format=GrpTRESMins"
    ).stdout
    assert out.strip() == "cpu=600,gres/gpu=60"


def test_fairshare_and_qos_of_an_account_are_changed(
    client: RestVerbs, rest_stack: RestStack, account: str
) -> None:
    client.add_account(account, description="d", organization="resttest", parent="root")
    client.modify_account(account, fairshare=42, qos=["normal", "slowdown"], default_qos="slowdown")
    client.modify_account(account, qos=["normal", "slowdown"])  # the same again: no error
    out = rest_stack.run(
        "sacctmgr", "-P", "-n", "show", "assoc", "where", f"account={account}",
        "format=Fairshare,QOS,DefaultQOS",
    ).stdout  # fmt: skip
    assert out.strip() == "42|normal,slowdown|slowdown"


def test_a_user_association_is_added_and_removed(
    client: RestVerbs, rest_stack: RestStack, account: str
) -> None:
    client.add_account(account, description="d", organization="resttest", parent="root")
    assert client.add_users([USERS[0], USERS[1]], account)
    assert not client.add_users([USERS[0]], account)
    users = {r.user for r in client.associations(account=account)}
    assert users == {"", USERS[0], USERS[1]}
    assert {u for u, _p, _f in sacctmgr_assocs(rest_stack, account)} == users

    assert client.remove_user(USERS[0], account)
    assert {r.user for r in client.associations(account=account)} == {"", USERS[1]}
    assert not client.remove_user(USERS[0], account)
    assert {r.user for r in client.associations(account=account, user=USERS[1])} == {USERS[1]}


def test_a_bad_token_is_refused_and_a_fixed_token_file_is_picked_up(
    rest_stack: RestStack, token_file: Path
) -> None:
    good = token_file.read_text()
    token_file.write_text("not.a.token\n")
    settings = RestSettings(
        url=rest_stack.url, api_version=API_VERSION, username="root", token_file=token_file
    )
    client = RestVerbs(settings, rest_stack.cluster)
    with pytest.raises(SlurmCommandError, match="refused the token of user root") as err:
        client.accounts()
    assert "not.a.token" not in str(err.value)

    token_file.write_text(good)
    assert any(a.name == "root" for a in client.accounts())


def test_removing_an_account_with_a_job_is_refused_as_jobs_active(
    client: RestVerbs, rest_stack: RestStack, account: str
) -> None:
    client.add_account(account, description="d", organization="resttest", parent="root")
    client.add_users([USERS[0]], account)
    job = submit_until_accepted(rest_stack, account)
    try:
        with pytest.raises(SlurmCommandError, match=r"Job\(s\) active") as err:
            client.remove_account(account)
        assert err.value.answer is Answer.JOBS_ACTIVE
        assert client.account(account) is not None
    finally:
        client.cancel_job(job)
    assert wait_gone(rest_stack, job)


def test_jobs_read_over_rest_equal_what_sacct_reports(
    client: RestVerbs, rest_stack: RestStack, account: str
) -> None:
    client.add_account(account, description="d", organization="resttest", parent="root")
    client.add_users([USERS[0]], account)
    finished = submit_until_accepted(rest_stack, account, wrap="sleep 1")
    cancelled = submit_until_accepted(rest_stack, account)
    client.cancel_job(cancelled)
    cli = SlurmClient(CommandRunner(bin_path=rest_stack.bin, timeout=60), rest_stack.cluster)
    now = datetime.now(timezone.utc)
    window = Window(now - timedelta(hours=1), now + timedelta(hours=1))
    deadline = time.monotonic() + 120
    while True:
        by_sacct = sorted(cli.jobs(window, [account]))
        if all(job.end is not None for job in by_sacct) and len(by_sacct) == 2:
            break
        assert time.monotonic() < deadline, by_sacct
        time.sleep(1)
    assert {job.job_id for job in by_sacct} == {finished, cancelled}
    assert sorted(client.jobs(window, [account])) == by_sacct
    done = next(job for job in by_sacct if job.job_id == finished)
    assert done.state == "COMPLETED" and done.alloc_tres["cpu"] >= 1


def submit_until_accepted(
    stack: RestStack, account: str, *, wrap: str = "sleep 120", timeout: float = 20
) -> str:
    """sbatch a long job as the test user; the association reaches slurmctld shortly after."""
    deadline = time.monotonic() + timeout
    while True:
        proc = stack.run(
            "sbatch", "--parsable", "-A", account, "--output=/dev/null", "--time=5",
            "--wrap", wrap, user=USERS[0],
        )  # fmt: skip
        if proc.returncode == 0:
            return proc.stdout.strip().split(";")[0]
        assert time.monotonic() < deadline, proc.stderr
        time.sleep(0.5)


def wait_gone(stack: RestStack, job: str, timeout: float = 30) -> bool:
    """True once the job has left squeue (the cancel reached slurmctld)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not stack.run("squeue", "-h", "-j", job, "-o", "%A").stdout.strip():
            return True
        time.sleep(0.5)
    return False
