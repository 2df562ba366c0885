"""Names and free text from Waldur, STOMP and the configuration, under hypothesis.

Each value either ends up on the command line exactly as intended (checked through the
exact argv) or is refused with a ``BackendError`` before any command runs.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from waldur_api_client.models.resource import Resource
from waldur_site_agent.backend.exceptions import BackendError

from tests.conftest import make_backend
from tests.fakes import TRES_OUTPUT, AccountFake, FakeRunner, assoc_lines
from tests.security import (
    DESCRIPTION_CHARS,
    HAZARDS,
    account_slugs,
    free_text,
    hazardous,
    qos_names,
    safe_account,
    safe_qos,
    safe_user,
    usernames,
)
from waldur_site_agent_slurm.backend import SlurmBackend
from waldur_site_agent_slurm.slurm.client import SlurmClient

SI = ["sacctmgr", "--immediate"]
ROOT = assoc_lines("root||||1||||normal|", "root|root|||1||||normal|")
ALLOC = assoc_lines("a_x|||p_y|1||||normal|")
PREFIXES = {"customer_prefix": "c_", "project_prefix": "p_", "allocation_prefix": "a_"}
EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def fake(assoc: str = ROOT) -> AccountFake:
    """``show assoc`` shows the accounts of ``assoc`` as the writes leave them."""
    return AccountFake.of(assoc, **{"list tres": TRES_OUTPUT})


def writes(runner: FakeRunner) -> list[list[str]]:
    """Commands that change SLURM, told apart by their position, not by their words."""
    return [c for c in runner.calls if c[:2] == SI or c[0] == "scancel"]


def waldur_resource(**fields: Any) -> Resource:
    data = {
        "uuid": "3f2b0c7e1d2a4b6c9f000123456789ab",
        "backend_id": "a_x",
        "slug": "x",
        "project_slug": "y",
        "customer_slug": "z",
        "name": "Allocation",
        "project_name": "Project",
        "customer_name": "Customer",
        "limits": {},
    }
    data.update(fields)
    return Resource.from_dict(data)


def description_of(argv: list[str]) -> str:
    [value] = [a.removeprefix("Description=") for a in argv if a.startswith("Description=")]
    return value


def assert_plain_words(argv: list[str]) -> None:
    """Every value on the line is plain: lists split on ',' and TRES on '=' only.

    Description (one argv item, never split by sacctmgr) is checked on its own.
    """
    for item in argv[2:] if argv[:2] == SI else argv[1:]:
        key, eq, value = item.partition("=")
        if key == "Description":
            continue
        for part in (value if eq else item).split(","):
            if key in {"GrpTRESMins", "MaxTRESMins"}:
                part = part.replace("=", "", 1)  # noqa: PLW2901 - cpu=60 is one TRES entry
            assert part, argv
            assert not set(part) & HAZARDS, argv
            assert not part.startswith("-"), argv


# ---- account names: slugs of customers, projects and allocations ------------------------


@EXAMPLES
@given(customer=account_slugs, project=account_slugs, slug=account_slugs)
def test_order_slugs_become_exactly_these_accounts_or_nothing_runs(
    customer: str, project: str, slug: str
) -> None:
    runner = fake()
    backend = make_backend(runner, **PREFIXES)
    names = [f"c_{customer}".lower(), f"p_{project}".lower(), f"a_{slug}".lower()]
    resource = waldur_resource(slug=slug, project_slug=project, customer_slug=customer)

    event("refused" if not all(safe_account(n) for n in names) else "accepted")
    if not all(safe_account(n) for n in names):
        with pytest.raises(BackendError, match="account"):
            backend.create_resource_with_id(resource, backend._get_resource_backend_id(slug))
        assert runner.calls == []
        return
    assert not any(hazardous(n) for n in names)
    backend.create_resource_with_id(resource, backend._get_resource_backend_id(slug))

    c, p, a = names
    assert writes(runner) == [
        [*SI, "add", "account", c, "Description=Customer", f"Organization={c}", "Parent=root"],
        [*SI, "add", "account", p, "Description=Project", f"Organization={c}", f"Parent={c}"],
        [*SI, "add", "account", a, "Description=Allocation", f"Organization={p}", f"Parent={p}"],
    ]
    for argv in writes(runner):
        assert_plain_words(argv)


@EXAMPLES
@given(backend_id=st.one_of(account_slugs, st.text(max_size=5)))
def test_backend_ids_from_waldur_or_stomp_are_used_verbatim_or_refused(backend_id: str) -> None:
    ok = safe_account(backend_id)
    runner = fake(assoc_lines(f"{backend_id}|||p_y|1||||normal|") if ok else ALLOC)
    backend = make_backend(runner, periodic_limits={"enabled": True, "state_dir": "/nonexistent"})

    result = backend.apply_periodic_settings(backend_id, {"fairshare": 10})  # a STOMP message
    event("accepted" if ok else "refused")
    if not ok:
        assert result["success"] is False
        assert "resource backend_id" in result["error"]
        assert result["commands_executed"] == []
        with pytest.raises(BackendError, match="account"):
            backend.pause_resource(backend_id)  # membership sync
        assert runner.calls == []
        return
    backend.pause_resource(backend_id)
    where = ["where", f"name={backend_id}", "set"]
    assert result["success"] is True, result
    assert writes(runner) == [
        [*SI, "modify", "account", *where, "Fairshare=10"],
        [*SI, "modify", "account", *where, "QOS=blocked", "DefaultQOS=blocked"],
    ]
    for argv in writes(runner):
        assert_plain_words(argv)


# ---- descriptions: free text ------------------------------------------------------------


@EXAMPLES
@given(name=free_text, project_name=free_text, customer_name=free_text)
def test_free_text_becomes_one_plain_description_item(
    name: str, project_name: str, customer_name: str
) -> None:
    runner = fake()
    backend = make_backend(runner, **PREFIXES)
    resource = waldur_resource(name=name, project_name=project_name, customer_name=customer_name)

    backend.create_resource_with_id(resource, "a_x")

    added = [argv for argv in writes(runner) if argv[2:4] == ["add", "account"]]
    assert [argv[4] for argv in added] == ["c_z", "p_y", "a_x"]
    for argv, original in zip(added, (customer_name, project_name, name), strict=True):
        assert len(argv) == 8, argv  # however many words, the description stays one item
        text = description_of(argv)
        assert set(text) <= DESCRIPTION_CHARS, text
        assert text == text.strip() and "  " not in text and 0 < len(text) <= 100
        usable = [c for c in original if c in DESCRIPTION_CHARS and c != " "]
        if not usable:
            assert text == argv[4]  # nothing printable left: the account name stands in
            continue
        plain = set(original) <= DESCRIPTION_CHARS and " ".join(original.split()) == original
        if plain and len(original) <= 100:
            assert text == original  # nothing to clean: stored as Waldur sent it
        kept = iter(usable)  # what is kept comes from the original, in its order
        assert all(any(c == u for u in kept) for c in text.replace(" ", "")), (original, text)


# ---- user names -------------------------------------------------------------------------


@EXAMPLES
@given(names=st.sets(usernames, min_size=1, max_size=4))
def test_usernames_are_added_verbatim_in_one_command_or_refused_before_anything_runs(
    names: set[str],
) -> None:
    runner = fake(ALLOC)
    backend = make_backend(runner, enable_user_homedir_account_creation=False)
    resource = waldur_resource()

    event("refused" if not all(safe_user(n) for n in names) else "accepted")
    if not all(safe_user(n) for n in names):
        with pytest.raises(BackendError, match="username"):
            backend.add_users_to_resource(resource, names)
        with pytest.raises(BackendError, match="username"):
            backend.remove_users_from_resource(resource, names)
        assert runner.calls == []
        return
    assert not any(hazardous(n) for n in names)
    backend.add_users_to_resource(resource, names)
    assert writes(runner) == [[*SI, "add", "user", ",".join(sorted(names)), "Account=a_x"]]


def test_upper_case_usernames_are_refused_since_slurm_would_store_them_lower_case() -> None:
    """sacctmgr stores ``Alice`` as ``alice``: membership sync would then see ``alice`` as
    stale and remove the association (cancelling her jobs) every other cycle."""
    runner = fake(ALLOC)
    backend = make_backend(runner, enable_user_homedir_account_creation=False)
    with pytest.raises(BackendError, match="lower case"):
        backend.add_users_to_resource(waldur_resource(), {"Alice"})
    assert runner.calls == []


@EXAMPLES
@given(user=usernames, limit=st.integers(0, 10**6))
def test_per_user_limits_name_exactly_that_user_or_nothing_runs(user: str, limit: int) -> None:
    row = f"a_x|{user}|||1||||normal|" if safe_user(user) else ""
    runner = fake(ALLOC + assoc_lines(row))
    backend = make_backend(runner)

    if not safe_user(user):
        with pytest.raises(BackendError, match="username"):
            backend.set_resource_user_limits("a_x", user, {"cpu": limit})
        assert runner.calls == []
        return
    backend.set_resource_user_limits("a_x", user, {"cpu": limit})
    assert writes(runner) == [
        [
            *SI,
            "modify",
            "user",
            "where",
            f"name={user}",
            "account=a_x",
            "set",
            f"MaxTRESMins=cpu={limit * 60000}",
        ]
    ]


# ---- configuration: QoS, partition, cluster, prefixes, component TRES ----------------------


@EXAMPLES
@given(qos=qos_names, partition=qos_names)
def test_configured_qos_and_partition_reach_sacctmgr_as_slurm_stores_them(
    qos: str, partition: str
) -> None:
    runner = fake(ALLOC)
    low, part = (qos.lower() or "blocked"), partition.lower()  # an empty QoS means the default
    ok = safe_qos(low) and safe_qos(part)
    event("accepted" if ok else "refused")
    if not ok:
        with pytest.raises(BackendError, match=r"qos_paused|default_partition"):
            make_backend(runner, qos_paused=qos, default_partition=partition)
        assert runner.calls == []
        return
    backend = make_backend(
        runner,
        qos_paused=qos,
        default_partition=partition,
        enable_user_homedir_account_creation=False,
    )
    backend.pause_resource("a_x")
    backend.add_users_to_resource(waldur_resource(), {"alice"})
    assert writes(runner) == [
        [*SI, "modify", "account", "where", "name=a_x", "set", f"QOS={low}", f"DefaultQOS={low}"],
        [*SI, "add", "user", "alice", "Account=a_x", f"Partition={part}"],
    ]


@EXAMPLES
@given(cluster=account_slugs, prefix=st.one_of(st.just(""), account_slugs))
def test_cluster_name_and_prefixes_from_config_are_checked_at_start(
    cluster: str, prefix: str
) -> None:
    runner = fake()
    ok = safe_account(cluster.lower()) and (not prefix or safe_account(prefix.lower()))
    event("accepted" if ok else "refused")
    if not ok:
        with pytest.raises(BackendError, match=r"cluster_name|account_prefix"):
            make_backend(runner, cluster_name=cluster, account_prefix=prefix)
        return
    backend = make_backend(runner, cluster_name=cluster, account_prefix=prefix)
    backend.create_resource_with_id(waldur_resource(), backend._get_resource_backend_id("x"))
    for argv in writes(runner):
        assert argv[-1].lower() == f"cluster={cluster.lower()}"
        assert argv[4].startswith(prefix.lower())
        assert_plain_words(argv)


CLUSTER_TRES = {"cpu", "mem", "energy", "node", "billing", "fs/disk", "vmem", "pages", "gres/gpu"}
DEFAULT_TRES = {
    "cpu": "cpu",
    "mem": "mem",
    "gpu": "gres/gpu",
    "billing": "billing",
    "node": "node",
    "energy": "energy",
}
TRES_SHAPE = re.compile(r"[a-z]+(/[a-z0-9_.:-]+)?")


@EXAMPLES
@given(
    key=st.one_of(st.text(max_size=12), st.sampled_from(sorted(DEFAULT_TRES))),
    tres=st.one_of(st.none(), st.text(max_size=12), st.sampled_from(sorted(CLUSTER_TRES))),
)
def test_component_keys_and_tres_names_from_config(key: str, tres: str | None) -> None:
    component: dict[str, Any] = {"unit_factor": 60, "accounting_type": "limit"}
    if tres is not None:
        component["tres_name"] = tres
    chosen = tres or DEFAULT_TRES.get(key) or (key if key.startswith("gres/") else None)
    if chosen is not None and not TRES_SHAPE.fullmatch(chosen):
        with pytest.raises(BackendError, match="tres_name"):
            SlurmBackend({}, {key: component})
        return
    runner = fake(ALLOC)
    backend = SlurmBackend({}, {key: component})
    backend.client = SlurmClient(runner)

    backend.set_resource_limits("a_x", {key: 2})

    if chosen not in CLUSTER_TRES:
        assert writes(runner) == []  # no TRES, or one the cluster does not account: skipped
        return
    assert writes(runner) == [
        [*SI, "modify", "account", "where", "name=a_x", "set", f"GrpTRESMins={chosen}=120"]
    ]


@given(key=st.text(min_size=1, max_size=12))
@settings(max_examples=200, deadline=None)
def test_limit_keys_from_waldur_never_reach_the_command_line(key: str) -> None:
    assume(key not in {"cpu", "mem", "gpu"})
    runner = fake(ALLOC)
    backend = make_backend(runner)
    backend.set_resource_limits("a_x", {key: 5, "cpu": 1})
    assert writes(runner) == [
        [*SI, "modify", "account", "where", "name=a_x", "set", "GrpTRESMins=cpu=60000"]
    ]
