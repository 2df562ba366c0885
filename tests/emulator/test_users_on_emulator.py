"""User removal, active jobs and home directories against slurm-emulator's commands."""

from __future__ import annotations

import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from waldur_site_agent.backend.structures import BackendResourceInfo

from tests.emulator.conftest import BIN, assoc_rows, emulator_backend, sacctmgr
from tests.test_backend_commands import resource
from tests.test_users_and_homedirs import offering_user

pytestmark = pytest.mark.emulator


def active_job(account: str, user: str, state: str) -> str:
    """Put a pending or running job of ``user`` under ``account`` into the emulator."""
    from emulator.core.database import Job, SlurmDatabase

    db = SlurmDatabase()
    db.load_state()
    now = datetime.now().replace(microsecond=0)
    running = state == "RUNNING"
    job = Job(
        job_id=str(db.allocate_job_id()),
        account=account,
        user=user,
        state=state,
        submit_time=now,
        start_time=now if running else None,
        cluster=db.current_cluster,
        node_list=["node001"] if running else [],
        alloc_cpus=1,
    )
    db.add_job(job)
    db.save_state()
    return job.job_id


def job_states(account: str) -> dict[str, str]:
    out = subprocess.run(
        [str(BIN / "sacct"), "-P", "-n", "-a", f"--accounts={account}", "--format=JobID,State"],
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
    ).stdout
    return dict(line.split("|") for line in out.splitlines() if line)


def user_rows(user: str) -> list[str]:
    return sorted(row[0] for row in assoc_rows() if row[1] == user)


def test_removing_a_user_cancels_their_active_jobs_then_the_association(emulator: Path) -> None:
    res = resource()
    emulator_backend().create_resource_with_id(res, "alloc-1")
    emulator_backend().add_users_to_resource(res, {"alice", "bob"})
    running = active_job("alloc-1", "bob", "RUNNING")
    pending = active_job("alloc-1", "bob", "PENDING")
    alices = active_job("alloc-1", "alice", "RUNNING")
    backend = emulator_backend()
    assert backend.list_active_user_jobs("alloc-1", "bob") == [running, pending]
    assert backend.remove_users_from_resource(res, {"bob"}) == ["bob"]
    states = job_states("alloc-1")
    assert states[running].startswith("CANCELLED")
    assert states[pending].startswith("CANCELLED")
    assert states[alices] == "RUNNING"
    assert user_rows("bob") == []
    assert emulator_backend().list_active_user_jobs("alloc-1", "bob") == []


def test_cancelling_without_active_jobs_runs_only_the_listing(emulator: Path) -> None:
    emulator_backend().create_resource_with_id(resource(), "alloc-1")
    backend = emulator_backend()
    backend.cancel_active_jobs_for_account_user("alloc-1", "bob")
    assert backend.runner.calls == 1


@pytest.mark.parametrize(("keep", "left"), [(False, []), (True, ["common"])])
def test_leaving_the_last_allocation_drops_the_common_association(
    emulator: Path, keep: bool, left: list[str]
) -> None:
    sacctmgr("-i", "add", "account", "common", "Parent=root")
    res = resource()
    backend = emulator_backend(default_account="common", default_account_policy="common")
    backend.create_resource_with_id(res, "alloc-1")
    backend.add_users_to_resource(res, {"bob"})
    assert user_rows("bob") == ["alloc-1", "common"]
    emulator_backend(
        default_account="common",
        default_account_policy="common",
        keep_default_account_association=keep,
    ).remove_users_from_resource(res, {"bob"})
    assert user_rows("bob") == left


def test_user_with_another_allocation_keeps_the_common_association(emulator: Path) -> None:
    sacctmgr("-i", "add", "account", "common", "Parent=root")
    first, second = resource(), resource(slug="alloc-2", backend_id="alloc-2")
    backend = emulator_backend(default_account="common", default_account_policy="common")
    for res in (first, second):
        backend.create_resource_with_id(res, res.backend_id)
        backend.add_users_to_resource(res, {"bob"})
    emulator_backend(default_account="common").remove_users_from_resource(first, {"bob"})
    assert user_rows("bob") == ["alloc-2", "common"]


def test_removing_no_users_runs_no_command(emulator: Path) -> None:
    emulator_backend().create_resource_with_id(resource(), "alloc-1")
    backend = emulator_backend()
    assert backend.remove_users_from_resource(resource(), set()) == []
    assert backend.runner.calls == 0


def test_no_home_directories_in_emulator_mode(emulator: Path, tmp_path: Path) -> None:
    base = tmp_path / "home"
    base.mkdir()
    backend = emulator_backend(
        enable_user_homedir_account_creation=True, homedir_base_path=str(base)
    )
    context = {"offering_user_mappings": {"u": offering_user("alice")}}
    backend.post_create_resource(BackendResourceInfo(backend_id="alloc-1"), resource(), context)
    backend.process_existing_users({"alice"})
    assert list(base.iterdir()) == []
    assert backend.runner.calls == 0


def test_pulling_resources_missing_in_slurm_reads_no_usage(emulator: Path) -> None:
    backend = emulator_backend()
    assert (
        backend.pull_resources([resource(backend_id="gone-1"), resource(backend_id="gone-2")]) == {}
    )
    assert backend.runner.calls == 1  # the association read; no sacct
