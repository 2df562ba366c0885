"""A sample of hostile input against the real sacctmgr: it parses the commands as meant.

``tests/security`` checks the exact argv the plugin builds from hostile names, free
text, limits and user names. Here hypothesis draws a sample of the same values, the
plugin runs its commands against the SLURM of scripts/real-slurm.sh, and the test reads
SLURM back: every account, description, organisation, parent, limit and user is what
the argv said (sacctmgr lower-cases descriptions), and a refused order left SLURM as it
was.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from waldur_api_client.models.resource import Resource
from waldur_site_agent.backend.exceptions import BackendError

from tests.real.conftest import assoc_rows, real_backend, run, stack
from tests.security import account_slugs, free_text, limit_values, usernames
from waldur_site_agent_slurm.slurm.parser import parse_tres
from waldur_site_agent_slurm.slurm.runner import CommandResult, CommandRunner

SAMPLE = settings(
    max_examples=10,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def mostly(good: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Three draws in four from ``good``: a small sample should mostly reach sacctmgr."""
    return st.integers(0, 3).flatmap(lambda n: good if n else hostile)


edgy_slugs = st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,40}", fullmatch=True)
edgy_users = st.from_regex(r"[a-z0-9_][a-z0-9_.@-]{0,30}", fullmatch=True)


class RecordingRunner(CommandRunner):
    """The real runner, keeping the argv of every command that ran."""

    def __init__(self) -> None:
        super().__init__(bin_path=stack().bin, timeout=60)
        self.ran: list[list[str]] = []

    def run(
        self, argv: Sequence[str], *, mutating: bool, accept_nothing: bool = False
    ) -> CommandResult:
        result = super().run(argv, mutating=mutating, accept_nothing=accept_nothing)
        self.ran.append(list(argv))
        return result


def accounts() -> set[str]:
    out = run("sacctmgr", "-P", "-n", "list", "account", "format=Account").stdout
    return set(out.split())


def fields(argv: list[str]) -> dict[str, str]:
    return dict(a.split("=", 1) for a in argv if "=" in a)


def cleanup(tag: str, users: set[str]) -> None:
    """Remove this example's accounts and user associations (two commands when it can)."""
    ours = sorted(a for a in accounts() if a.startswith(("hc", "hp", "ha")) and tag in a)
    if not ours:
        return
    names = ",".join(sorted(u for u in users if u and u.isprintable() and "," not in u))
    if names:
        where = ["where", f"name={names}", "account=" + ",".join(ours)]
        run("sacctmgr", "-i", "delete", "user", *where, check=False)
    run("sacctmgr", "-i", "delete", "account", "where", "name=" + ",".join(ours), check=False)
    left = [a for a in accounts() if a in ours]
    for account in sorted(left, key=lambda a: "hahphc".index(a[:2])):
        run("sacctmgr", "-i", "delete", "account", "where", f"name={account}", check=False)
    assert not [a for a in accounts() if a in ours]


@SAMPLE
@given(
    slug=mostly(edgy_slugs, account_slugs),
    texts=st.tuples(free_text, free_text, free_text),
    limit=mostly(st.one_of(st.integers(0, 10**6), st.floats(0, 1e4)), limit_values),
    users=st.sets(mostly(edgy_users, usernames), min_size=1, max_size=3),
)
def test_sacctmgr_stores_exactly_what_the_plugin_meant(
    slug: str, texts: tuple[str, str, str], limit: Any, users: set[str]
) -> None:
    tag = uuid.uuid4().hex[:6]
    prefixes = {"customer_prefix": f"hc{tag}_", "project_prefix": f"hp{tag}_"}
    backend = real_backend(allocation_prefix=f"ha{tag}_", **prefixes)
    runner = RecordingRunner()
    backend.client.runner = runner
    resource = Resource.from_dict(
        {
            "uuid": uuid.uuid4().hex,
            "slug": slug,
            "project_slug": "proj",
            "customer_slug": "cust",
            "name": texts[0],
            "project_name": texts[1],
            "customer_name": texts[2],
            "limits": {"gpu": limit},
        }
    )
    before = accounts()
    try:
        try:
            backend.create_resource_with_id(resource, backend._get_resource_backend_id(slug))
        except BackendError:
            event("order refused")
            assert accounts() == before
            assert not [a for a in runner.ran if a[1] == "--immediate"]
            return
        event("order applied")
        check_accounts(runner.ran)
        account = backend._get_resource_backend_id(slug)
        runner.ran.clear()
        try:
            allocation = Resource.from_dict({"uuid": uuid.uuid4().hex, "backend_id": account})
            backend.add_users_to_resource(allocation, users)
        except BackendError as err:
            event("users refused")
            assert "username" in str(err)
            assert not runner.ran
            return
        event("users added" if users else "no users")
        check_users(account, runner.ran)
    finally:
        cleanup(tag, users)


def check_accounts(ran: list[list[str]]) -> None:
    """Each ``add account`` and ``modify … GrpTRESMins`` reads back as its argv said."""
    for argv in ran:
        if argv[2:4] == ["add", "account"]:
            name, given = argv[4], fields(argv)
            out = run("sacctmgr", "-P", "-n", "show", "account", "where", f"name={name}",
                      "format=Account,Descr,Org").stdout  # fmt: skip
            assert out.splitlines() == [
                f"{name}|{given['Description'].lower()}|{given['Organization']}"
            ]
            parent = [r for r in assoc_rows(name) if r[1] == ""]
            assert [p[2] for p in parent] == [given["Parent"]]
        elif argv[2:4] == ["modify", "account"]:
            name = fields(argv)["name"]
            wanted = parse_tres(argv[-1].removeprefix("GrpTRESMins="))
            [own] = [r for r in assoc_rows(name) if r[1] == ""]
            assert {k: v for k, v in parse_tres(own[3]).items() if k in wanted} == wanted


def check_users(account: str, ran: list[list[str]]) -> None:
    """The users listed in ``add user`` are exactly the user associations of the account."""
    added = [argv for argv in ran if argv[2:4] == ["add", "user"]]
    expected = set(added[0][4].split(",")) if added else set()
    found = {r[1] for r in assoc_rows(account)} - {""}
    assert found == expected


# ---- what SLURM does to case, and why the plugin refuses or lower-cases it ---------------


def test_slurm_stores_user_qos_and_partition_names_in_lower_case(names: dict[str, str]) -> None:
    account = names["slug"]
    run("sacctmgr", "-i", "add", "account", account, "Parent=root", f"Cluster={stack().cluster}")
    run("sacctmgr", "-i", "add", "user", "SlurmTest1", f"Account={account}", "Partition=Debug",
        f"Cluster={stack().cluster}")  # fmt: skip
    run("sacctmgr", "-i", "modify", "account", "where", f"name={account}", "set", "QOS=Blocked")
    rows = {row[0]: row[1:] for row in assoc_rows(account, "User,Partition,QOS")}
    assert set(rows) == {"", "slurmtest1"}  # not SlurmTest1: Waldur's "Alice" would flap
    assert rows["slurmtest1"][0] == "debug"
    assert rows[""][1] == "blocked"


def test_a_mixed_case_qos_from_the_config_is_set_once_and_then_left_alone(
    names: dict[str, str],
) -> None:
    account = names["slug"]
    run("sacctmgr", "-i", "add", "account", account, "Parent=root", f"Cluster={stack().cluster}")
    first = real_backend(qos_paused="Blocked")
    first.pause_resource(account)
    assert assoc_rows(account, "User,QOS,DefaultQOS") == [["", "blocked", "blocked"]]

    again = real_backend(qos_paused="Blocked")
    runner = RecordingRunner()
    again.client.runner = runner
    again.pause_resource(account)  # a later cycle: already on the paused QoS
    assert [a for a in runner.ran if a[1] == "--immediate"] == []
    assert again.get_resource_metadata(account) == {"qos": "blocked"}
