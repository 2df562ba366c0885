"""Domain tests: the backend's decisions, checked through the exact argv it runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from waldur_api_client.models.resource import Resource
from waldur_site_agent.backend.exceptions import BackendError, BackendNotReadyError

from tests.conftest import make_backend
from tests.fakes import TRES_OUTPUT, FakeRunner, assoc_lines
from waldur_site_agent_slurm.config import load_settings
from waldur_site_agent_slurm.errors import SlurmConfigError, SlurmTimeoutError

SI = ["sacctmgr", "--immediate"]

TREE = assoc_lines(
    "root||||1||||normal|",
    "root|root|||1||||normal|",
)


def resource(**overrides: Any) -> Resource:
    data = {
        "uuid": "3f2b0c7e1d2a4b6c9f000123456789ab",
        "backend_id": "alloc-1",
        "slug": "alloc-1",
        "project_slug": "proj-1",
        "customer_slug": "cust-1",
        "name": "My Allocation; rm -rf /",
        "project_name": "Project One",
        "customer_name": 'Customer "One"',
        "limits": {"cpu": 100, "mem": 10, "gpu": 5},
    }
    data.update(overrides)
    return Resource.from_dict(data)


def test_create_builds_customer_project_allocation_tree_with_sanitised_descriptions(
    runner: FakeRunner,
) -> None:
    runner.outputs["show assoc"] = TREE
    backend = make_backend(runner)
    info = backend.create_resource_with_id(resource(), "alloc-1")
    assert runner.writes == [
        [
            *SI,
            "add",
            "account",
            "cust-1",
            "Description=Customer One",
            "Organization=cust-1",
            "Parent=root",
        ],
        [
            *SI,
            "add",
            "account",
            "proj-1",
            "Description=Project One",
            "Organization=cust-1",
            "Parent=cust-1",
        ],
        [
            *SI,
            "add",
            "account",
            "alloc-1",
            "Description=My Allocation rm -rf /",
            "Organization=proj-1",
            "Parent=proj-1",
            "GrpTRESMins=cpu=6000000,gres/gpu=300,mem=614400",
        ],
    ]
    assert info.limits == {"cpu": 100, "mem": 10, "gpu": 5}


def test_cluster_name_scopes_every_sacctmgr_command(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = TREE
    backend = make_backend(runner, cluster_name="hpc")
    backend.create_resource_with_id(resource(), "alloc-1")
    runner.outputs["show assoc"] = assoc_lines(
        "alloc-1|||proj-1|1||||normal|", "alloc-1|bob|||1||||normal|"
    )
    backend.remove_users_from_resource(resource(), {"bob"})
    backend.pause_resource("alloc-1")
    # TRES, QoS and cluster listings are global; everything about associations is scoped.
    sacctmgr = [c for c in runner.calls if c[0] == "sacctmgr" and "tres" not in c]
    assert any("list" in c and "user" in c for c in sacctmgr)
    for argv in sacctmgr:
        assert "cluster=hpc" in argv or "Cluster=hpc" in argv, argv


def test_rerun_after_crash_adopts_existing_accounts_and_writes_nothing(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines(
        "root||||1||||normal|",
        "cust-1|||root|1||||normal|",
        "proj-1|||cust-1|1||||normal|",
        "alloc-1|||proj-1|1|cpu=6000000,gres/gpu=300,mem=614400|||normal|",
    )
    backend = make_backend(runner)
    info = backend.create_resource_with_id(resource(), "alloc-1")
    assert runner.writes == []
    assert info.backend_id == "alloc-1"


def test_existing_account_under_another_parent_is_a_duplicate(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines(
        "root||||1||||normal|",
        "cust-1|||root|1||||normal|",
        "proj-1|||cust-1|1||||normal|",
        "alloc-1|||other|1||||normal|",
    )
    backend = make_backend(runner)
    with pytest.raises(BackendError, match="alloc-1 already exists"):
        backend.create_resource_with_id(resource(), "alloc-1")
    assert runner.writes == []


def test_account_prefix_applies_to_all_tiers_unless_overridden() -> None:
    settings = load_settings({"account_prefix": "W_", "project_prefix": "p_"}, {})
    assert (settings.customer_prefix, settings.project_prefix, settings.allocation_prefix) == (
        "w_",
        "p_",
        "w_",
    )


def test_update_limits_writes_only_changed_tres(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines(
        "alloc-1|||proj-1|1|cpu=6000000,gres/gpu=300,mem=614400|||normal|"
    )
    backend = make_backend(runner)
    backend.set_resource_limits("alloc-1", {"cpu": 100, "mem": 20})
    assert runner.writes == [
        [*SI, "modify", "account", "where", "name=alloc-1", "set", "GrpTRESMins=mem=1228800"]
    ]


def test_update_with_same_limits_writes_nothing(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines(
        "alloc-1|||proj-1|1|cpu=6000000,gres/gpu=300,mem=614400|||normal|"
    )
    backend = make_backend(runner)
    backend.set_resource_limits("alloc-1", {"cpu": 100, "mem": 10, "gpu": 5})
    assert runner.writes == []


def test_fractional_waldur_limits_convert_exactly(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines("alloc-1|||proj-1|1||||normal|")
    backend = make_backend(runner)
    backend.set_resource_limits("alloc-1", {"gpu": 0.29 * 100})
    assert runner.writes[-1][-1] == "GrpTRESMins=gres/gpu=1740"


def test_tres_unknown_to_cluster_is_not_limited(runner: FakeRunner) -> None:
    runner.outputs["list tres"] = "cpu|\nmem|\n"
    runner.outputs["show assoc"] = assoc_lines("alloc-1|||proj-1|1||||normal|")
    backend = make_backend(runner)
    backend.set_resource_limits("alloc-1", {"cpu": 1, "gpu": 5})
    assert runner.writes == [
        [*SI, "modify", "account", "where", "name=alloc-1", "set", "GrpTRESMins=cpu=60000"]
    ]


@pytest.mark.parametrize("value", [-1, float("nan"), float("inf"), "100", True, 1e30])
def test_invalid_limit_value_is_rejected_before_any_command(runner: FakeRunner, value: Any) -> None:
    runner.outputs["show assoc"] = assoc_lines("alloc-1|||proj-1|1||||normal|")
    backend = make_backend(runner)
    with pytest.raises(BackendError, match="limit of cpu"):
        backend.set_resource_limits("alloc-1", {"cpu": value})
    assert runner.writes == []


@pytest.mark.parametrize(
    "backend_id",
    ["", "Alloc", "a b", "a=b", "a,b", "a'b", 'a"b', "a;b", "a$b", "a\nb", "-rf", "x" * 65],
)
def test_invalid_account_name_is_rejected_before_any_command(
    runner: FakeRunner, backend_id: str
) -> None:
    backend = make_backend(runner)
    with pytest.raises(BackendError, match="account"):
        backend.pause_resource(backend_id)
    assert runner.calls == []


@pytest.mark.parametrize("name", ["a b", "a=b", "a,b", "a;b", "a$b", "a\nb", "-x", "'q'", ""])
def test_invalid_username_is_rejected_before_any_command(runner: FakeRunner, name: str) -> None:
    runner.outputs["show assoc"] = assoc_lines("alloc-1|||proj-1|1||||normal|")
    backend = make_backend(runner)
    with pytest.raises(BackendError, match="username"):
        backend.add_users_to_resource(resource(), {"good", name})
    assert runner.writes == []


def test_users_are_added_in_one_command_only_when_missing(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines(
        "alloc-1|||proj-1|1||||normal|", "alloc-1|bob|||1||||normal|"
    )
    backend = make_backend(runner, enable_user_homedir_account_creation=False)
    backend.add_users_to_resource(resource(), {"bob", "alice", "carol"})
    assert runner.writes == [[*SI, "add", "user", "alice,carol", "Account=alloc-1"]]


def test_common_policy_gives_users_the_common_default_account(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines("alloc-1|||proj-1|1||||normal|")
    backend = make_backend(
        runner, default_account="noaccess", enable_user_homedir_account_creation=False
    )
    backend.add_users_to_resource(resource(), {"alice"})
    assert runner.writes == [
        [*SI, "add", "user", "alice", "Account=alloc-1,noaccess", "DefaultAccount=noaccess"]
    ]


def test_individual_policy_defaults_new_users_to_their_first_allocation(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines(
        "alloc-1|||proj-1|1||||normal|", "other|||proj-1|1||||normal|", "other|bob|||1||||normal|"
    )
    backend = make_backend(
        runner,
        default_account_policy="individual",
        enable_user_homedir_account_creation=False,
        default_partition="debug",
    )
    backend.add_users_to_resource(resource(), {"alice", "bob"})
    assert runner.writes == [
        [
            *SI,
            "add",
            "user",
            "alice",
            "Account=alloc-1",
            "DefaultAccount=alloc-1",
            "Partition=debug",
        ],
        [*SI, "add", "user", "bob", "Account=alloc-1", "Partition=debug"],
    ]


def test_users_not_ok_in_waldur_are_not_added(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines("alloc-1|||proj-1|1||||normal|")
    backend = make_backend(runner, enable_user_homedir_account_creation=False)
    backend.add_users_to_resource(
        resource(), {"alice", "bob"}, offering_user_states={"bob": "Requested", "alice": "OK"}
    )
    assert runner.writes == [[*SI, "add", "user", "alice", "Account=alloc-1"]]


def test_removing_a_users_default_account_moves_the_default_first(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines(
        "alloc-1|||proj-1|1||||normal|",
        "alloc-1|bob|||1||||normal|",
        "alloc-2|||proj-1|1||||normal|",
        "alloc-2|bob|||1||||normal|",
    )
    runner.outputs["list user"] = "bob|alloc-1\n"
    runner.outputs["squeue"] = "41\n"
    backend = make_backend(runner)
    assert backend.remove_users_from_resource(resource(), {"bob", "nobody"}) == ["bob"]
    assert runner.writes == [
        ["scancel", "--account=alloc-1", "--user=bob"],
        [*SI, "modify", "user", "where", "name=bob", "set", "DefaultAccount=alloc-2"],
        [*SI, "delete", "user", "where", "name=bob", "account=alloc-1"],
    ]


def test_removing_a_users_last_association_removes_the_user(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines(
        "alloc-1|||proj-1|1||||normal|", "alloc-1|bob|||1||||normal|"
    )
    runner.outputs["list user"] = "bob|alloc-1\n"
    backend = make_backend(runner)
    backend.remove_users_from_resource(resource(), {"bob"})
    assert runner.writes[-1] == [*SI, "delete", "user", "where", "name=bob", "account=alloc-1"]


def test_pause_sets_paused_qos_once(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines("alloc-1|||proj-1|1||||normal|normal")
    backend = make_backend(runner, qos_paused="hold")
    assert backend.pause_resource("alloc-1")
    assert runner.writes == [
        [*SI, "modify", "account", "where", "name=alloc-1", "set", "QOS=hold", "DefaultQOS=hold"]
    ]


def test_restore_when_already_default_writes_nothing(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines("alloc-1|||proj-1|1||||normal|normal")
    backend = make_backend(runner)
    assert backend.restore_resource("alloc-1")
    assert backend.get_resource_metadata("alloc-1") == {"qos": "normal"}
    assert runner.writes == []
    assert len(runner.calls) == 1


def test_downscale_then_metadata_reports_new_qos(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines("alloc-1|||proj-1|1||||normal|normal")
    backend = make_backend(runner)
    backend.downscale_resource("alloc-1")
    assert runner.writes[-1][-2:] == ["QOS=slowdown", "DefaultQOS=slowdown"]


def test_user_limits_set_as_max_tres_mins_and_cleared_with_empty_dict(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines(
        "alloc-1|||proj-1|1||||normal|", "alloc-1|bob|||1||cpu=60000,gres/gpu=60||normal|"
    )
    backend = make_backend(runner)
    assert backend.get_resource_user_limits("alloc-1") == {"bob": {"cpu": 1.0, "gpu": 1.0}}
    backend.set_resource_user_limits("alloc-1", "bob", {"cpu": 2})
    backend.set_resource_user_limits("alloc-1", "bob", {})
    assert [w[-1] for w in runner.writes] == [
        "MaxTRESMins=cpu=120000,gres/gpu=-1",
        "MaxTRESMins=cpu=-1,gres/gpu=-1",
    ]


def test_terminate_cancels_jobs_removes_users_account_and_empty_project(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines(
        "root||||1||||normal|",
        "cust-1|||root|1||||normal|",
        "proj-1|||cust-1|1||||normal|",
        "alloc-1|||proj-1|1||||normal|",
        "alloc-1|bob|||1||||normal|",
        "other|||root|1||||normal|",
        "other|bob|||1||||normal|",
    )
    runner.outputs["list user"] = "bob|other\n"
    backend = make_backend(runner)

    # After the allocation is deleted, the next read shows the project without children.
    def after_delete() -> None:
        runner.outputs["show assoc"] = assoc_lines(
            "root||||1||||normal|", "cust-1|||root|1||||normal|", "proj-1|||cust-1|1||||normal|"
        )

    original = backend.client.remove_account

    def remove_account(name: str) -> None:
        original(name)
        after_delete()

    backend.client.remove_account = remove_account  # type: ignore[method-assign]
    backend.delete_resource(resource(), project_slug="proj-1")
    # The account's jobs are cancelled at once; bob then has none left there to cancel.
    assert runner.writes == [
        ["scancel", "--account=alloc-1"],
        [*SI, "delete", "user", "where", "name=bob", "account=alloc-1"],
        [*SI, "delete", "account", "where", "name=alloc-1"],
        [*SI, "delete", "account", "where", "name=proj-1"],
    ]


def test_terminate_of_missing_account_is_a_no_op(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines(
        "root||||1||||normal|", "proj-1|||root|1||||normal|", "alloc-9|||proj-1|1||||normal|"
    )
    backend = make_backend(runner)
    backend.delete_resource(resource(), project_slug="proj-1")
    assert runner.writes == []


def test_delete_retries_while_jobs_are_still_ending(
    runner: FakeRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("waldur_site_agent_slurm.allocation.member_sync.JOB_WAIT_SECONDS", 0)
    runner.outputs["show assoc"] = assoc_lines(
        "proj-1|||root|1||||normal|", "alloc-1|||proj-1|1||||normal|"
    )
    attempts = []
    backend = make_backend(runner)
    original = backend.client.remove_account

    def flaky(name: str) -> None:
        attempts.append(name)
        if len(attempts) < 3:
            runner.failures["delete account"] = (
                1,
                "",
                " Error with request: Job(s) active, cancel job(s) before remove\n",
            )
        else:
            runner.failures.clear()
        original(name)

    backend.client.remove_account = flaky  # type: ignore[method-assign]
    backend.delete_resource(resource())
    assert len(attempts) == 3


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"default_account_policy": "everyone"}, "default_account_policy"),
        ({"default_account_policy": "common"}, "default_account"),
        ({"qos_paused": "bad qos"}, "qos_paused"),
        ({"cluster_name": "my cluster"}, "cluster_name"),
        ({"cpu_unit_factor": 0}, "cpu_unit_factor"),
        ({"periodic_limits": {"limit_type": "GrpCPU"}}, "periodic_limits.limit_type"),
        ({"account_prefix": "a,b"}, "account_prefix"),
    ],
)
def test_invalid_settings_fail_naming_the_key(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(SlurmConfigError, match=message):
        load_settings(settings, {})


def test_unknown_settings_keys_are_only_warned_about() -> None:
    assert load_settings({"some_old_key": 1}, {}).root_account == "root"


def test_component_tres_mapping_and_unit_factor_defaults() -> None:
    settings = load_settings(
        {"cpu_unit_factor": 60000},
        {
            "cpu": {"accounting_type": "usage"},
            "gpu": {},
            "gres/tpu": {},
            "storage": {},
            "licenses": {"tres_name": "license/matlab", "unit_factor": 2},
        },
    )
    comps = settings.components
    assert (comps["cpu"].tres, comps["cpu"].unit_factor) == ("cpu", 60000)
    assert comps["gpu"].tres == "gres/gpu"
    assert comps["gres/tpu"].tres == "gres/tpu"
    assert comps["storage"].tres is None
    assert (comps["licenses"].tres, comps["licenses"].unit_factor) == ("license/matlab", 2)


def test_bad_component_accounting_type_fails_naming_allowed_values() -> None:
    with pytest.raises(SlurmConfigError, match="'usage', 'limit', 'one'"):
        load_settings({}, {"cpu": {"accounting_type": "fixed"}})


def test_bad_allocation_name_leaves_no_customer_or_project_behind(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = TREE
    with pytest.raises(BackendError, match="allocation account"):
        make_backend(runner).create_resource_with_id(resource(), "bad name")
    assert runner.calls == []


def test_home_directories_of_new_users_are_created_through_the_runner(
    runner: FakeRunner, tmp_path: Path
) -> None:
    runner.outputs["show assoc"] = assoc_lines("alloc-1|||proj-1|1||||normal|")
    backend = make_backend(runner, default_homedir_umask="0027", homedir_base_path=str(tmp_path))
    backend.add_users_to_resource(resource(), {"alice"})
    assert runner.calls[-1] == ["/sbin/mkhomedir_helper", "alice", "0027"]


def test_soft_delete_keeps_the_account_with_zero_limits(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = assoc_lines(
        "alloc-1|||proj-1|1|cpu=6000000,gres/gpu=300,mem=614400|||normal|"
    )
    make_backend(runner, soft_delete=True).delete_resource(resource(), project_slug="proj-1")
    assert runner.writes == [
        ["scancel", "--account=alloc-1"],
        [
            *SI,
            "modify",
            "account",
            "where",
            "name=alloc-1",
            "set",
            "GrpTRESMins=cpu=0,gres/gpu=0,mem=0",
        ],
    ]


def test_a_refused_allocation_add_removes_the_parents_the_create_added(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = TREE
    runner.failures["GrpTRESMins="] = (1, "", " Error with request: Unknown TRES\n")
    backend = make_backend(runner)
    with pytest.raises(BackendError, match="Unknown TRES"):
        backend.create_resource_with_id(resource(), "alloc-1")
    removed = [c for c in runner.writes if "delete" in c]
    assert [c[c.index("where") + 1] for c in removed] == ["name=proj-1", "name=cust-1"]


def test_a_failed_create_does_not_remove_what_an_earlier_create_of_the_cycle_added(
    runner: FakeRunner,
) -> None:
    runner.outputs["show assoc"] = TREE
    backend = make_backend(runner)  # one backend serves every order of a cycle
    backend.create_resource_with_id(resource(), "alloc-1")
    runner.failures["GrpTRESMins="] = (1, "", " Error with request: Unknown TRES\n")
    second = resource(slug="alloc-2", project_slug="proj-2", customer_slug="cust-2")
    with pytest.raises(BackendError, match="Unknown TRES"):
        backend.create_resource_with_id(second, "alloc-2")
    removed = [c for c in runner.writes if "delete" in c]
    assert [c[c.index("where") + 1] for c in removed] == ["name=proj-2", "name=cust-2"]


def test_slurm_unreachable_during_create_keeps_what_exists_for_the_next_cycle(
    runner: FakeRunner,
) -> None:
    runner.outputs["show assoc"] = TREE
    runner.failures["GrpTRESMins="] = (
        1,
        "",
        "sacctmgr: error: Problem talking to the database: Connection refused\n",
    )
    backend = make_backend(runner)
    with pytest.raises(BackendNotReadyError):
        backend.create_resource_with_id(resource(), "alloc-1")
    assert not [c for c in runner.writes if "delete" in c]


def test_negative_limits_are_refused_before_any_account_is_added(runner: FakeRunner) -> None:
    runner.outputs["show assoc"] = TREE
    backend = make_backend(runner)
    with pytest.raises(BackendError, match="cpu"):
        backend.create_resource_with_id(resource(limits={"cpu": -5}), "alloc-1")
    assert runner.writes == []


# ---- a hanging SLURM costs a cycle one command_timeout, not one per allocation ------------


class HangingAssocRunner(FakeRunner):
    """The cluster-wide ``show assoc`` times out, as when slurmdbd hangs."""

    def run(self, argv: Sequence[str], *, mutating: bool, accept_nothing: bool = False) -> Any:
        if "show" in argv and "assoc" in argv and "where" in argv and "cluster=c1" in argv:
            self.calls.append(list(argv))
            raise SlurmTimeoutError(argv, None, "", "", "Timed out after 120s")
        return super().run(argv, mutating=mutating, accept_nothing=accept_nothing)


def test_a_timed_out_bulk_read_is_not_run_again_for_each_allocation_of_the_cycle() -> None:
    runner = HangingAssocRunner(outputs={"list tres": TRES_OUTPUT})
    backend = make_backend(runner, cluster_name="c1")
    pulled = [
        backend.pull_resource(resource(backend_id=name, slug=name))
        for name in ("alloc-1", "alloc-2", "alloc-3")
    ]
    assert pulled == [None, None, None]  # each skipped this cycle, as the first one
    assert len(runner.calls) == 1, runner.calls  # one wait for the hanging read, not three
    with pytest.raises(SlurmTimeoutError, match="Timed out after 120s"):
        backend.client.get_resource("alloc-2")  # the same error, named, for every caller
    assert len(runner.calls) == 1

    # The next cycle builds a new backend, and with it a new client: it reads again.
    make_backend(runner, cluster_name="c1").pull_resource(resource())
    assert len(runner.calls) == 2
