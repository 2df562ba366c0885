"""QoS enforcement's GrpSubmitJobs lever and the flat tree, diagnosed and fixed on the real SLURM.

The diagnostic's steps are applied as ``--fix`` applies them; ``sbatch`` shows that the
lever it sets (and the one a threshold message sets) refuses and then accepts jobs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.diagnosing import diagnose, failed, fix, view_of
from tests.real.conftest import (
    USERS,
    assoc_rows,
    real_backend,
    run,
    stack,
    submit,
    submit_until,
    wait_finished,
)
from tests.real.test_account_tree_on_real_slurm import flat_parent, own_row, prefixes, tagged
from tests.test_backend_commands import resource

pytestmark = pytest.mark.real_slurm

ENFORCED = {"qos_enforcement_enabled": True, "enforce_offering_qos": True}
LEVER = "User,QOS,DefaultQOS,GrpSubmitJobs"


def account_lever(account: str) -> list[str]:
    """(QOS, DefaultQOS, GrpSubmitJobs) of the account's own association."""
    return next(row[1:] for row in assoc_rows(account, LEVER) if not row[0])


def test_enforced_pause_is_diagnosed_on_grp_submit_jobs_and_fix_refuses_then_accepts_sbatch(
    names: dict[str, str], boost: str
) -> None:
    res = resource(**names, limits={}, attributes={"qos": boost, "partition": "debug"})
    real_backend(**ENFORCED).create_resource_with_id(res, names["slug"])
    real_backend(**ENFORCED).add_users_to_resource(res, {USERS[0]})
    paused = view_of(res, (USERS[0],), paused=True)

    found = diagnose(real_backend(**ENFORCED), paused)
    assert failed(found) == {"GrpSubmitJobs": ("unlimited", "0")}
    assert [s.line for s in found.steps] == [
        f"sacctmgr --immediate modify account where name={names['slug']} cluster={stack().cluster} "
        "set GrpSubmitJobs=0"
    ]
    fix(real_backend(**ENFORCED), found)
    assert account_lever(names["slug"]) == ["normal", "", "0"]
    submit_until(USERS[0], names["slug"], accepted=False)
    assert diagnose(real_backend(**ENFORCED), paused).status == "OK"

    restored = view_of(res, (USERS[0],))
    lifted = diagnose(real_backend(**ENFORCED), restored)
    assert failed(lifted) == {"GrpSubmitJobs": ("0", "unlimited")}
    fix(real_backend(**ENFORCED), lifted)
    assert account_lever(names["slug"]) == ["normal", "", ""]
    accepted = submit_until(USERS[0], names["slug"], accepted=True)
    run("scancel", accepted, check=False)  # accepted is enough; the queue may be busy
    assert diagnose(real_backend(**ENFORCED), restored).status == "OK"


def test_a_flat_project_moved_to_the_root_is_diagnosed_and_put_back(tag: str) -> None:
    flatp = flat_parent(tag)
    settings = prefixes(tag, parent_account=flatp)
    res = tagged(tag)
    real_backend(**settings).create_resource_with_id(res, f"a{tag}_r1")
    project = f"p{tag}_proj"
    run("sacctmgr", "-i", "modify", "account", "where", f"name={project}",
        f"cluster={stack().cluster}", "set", "parent=root")  # fmt: skip
    assert own_row(project)[2] == "root"

    found = diagnose(real_backend(**settings), view_of(res))
    assert failed(found) == {"project parent": ("root", flatp)}
    fix(real_backend(**settings), found)

    assert own_row(project)[2] == flatp
    assert own_row(f"a{tag}_r1")[2] == project
    assert diagnose(real_backend(**settings), view_of(res)).status == "OK"


def test_a_threshold_message_under_enforcement_blocks_sbatch_through_grp_submit_jobs(
    names: dict[str, str], boost: str, tmp_path: Path
) -> None:
    res = resource(**names, limits={}, attributes={"qos": boost, "partition": "debug"})
    real_backend(**ENFORCED).create_resource_with_id(res, names["slug"])
    real_backend(**ENFORCED).add_users_to_resource(res, {USERS[1]})
    code, job = submit(USERS[1], names["slug"], "-n1", wrap="sleep 3")
    assert code == 0, job
    wait_finished([job])
    periodic = {"enabled": True, "state_dir": str(tmp_path), "threshold_qos": True}

    # A few CPU-minutes of this period are past a 1-minute threshold ("node": unweighted).
    result = real_backend(periodic_limits=periodic, **ENFORCED).apply_periodic_settings(
        names["slug"], {"qos_threshold": {"node": 1}, "grace_limit": {"node": 1}}
    )

    assert result["success"] is True, result["error"]
    assert result["commands_executed"] == [
        f"sacctmgr --immediate modify account where name={names['slug']} cluster={stack().cluster} "
        "set GrpSubmitJobs=0"
    ]
    assert account_lever(names["slug"]) == ["normal", "", "0"]
    submit_until(USERS[1], names["slug"], accepted=False)
    real_backend(periodic_limits=periodic, **ENFORCED).restore_resource(names["slug"])
    assert account_lever(names["slug"]) == ["normal", "", "0"]
