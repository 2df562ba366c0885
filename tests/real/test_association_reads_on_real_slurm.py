"""Association reads on each real SLURM: what 22.05's slurmdbd survives, with the same records.

22.05's slurmdbd dies on an association read with parent information when a parent row
is gone (README, "SLURM 22.05's slurmdbd and orphaned associations"). The client reads
without it there and computes the inherited values itself; these tests check, on a tree
with inherited MaxTRESMins, QoS lists and DefaultQOS, that its records are those of the
plain read, and that no read of the client carries parent information on 22.05. The
crash itself is reproduced on a stack of its own by ``bench/slurmdbd_orphans.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence

import pytest

from tests.real.conftest import USERS, remove_accounts, run, stack
from waldur_site_agent_slurm.slurm import parser
from waldur_site_agent_slurm.slurm.client import SlurmClient
from waldur_site_agent_slurm.slurm.runner import CommandResult, CommandRunner

pytestmark = pytest.mark.real_slurm


class RecordingRunner(CommandRunner):
    """The real runner, noting each command it runs."""

    def __init__(self, bin_path: str) -> None:
        super().__init__(bin_path=bin_path)
        self.argvs: list[list[str]] = []

    def run(
        self, argv: Sequence[str], *, mutating: bool, accept_nothing: bool = False
    ) -> CommandResult:
        self.argvs.append(list(argv))
        return super().run(argv, mutating=mutating, accept_nothing=accept_nothing)


def sacctmgr(*args: str) -> None:
    run("sacctmgr", "-i", *args, f"Cluster={stack().cluster}")


@pytest.fixture
def tree() -> Iterator[Mapping[str, str]]:
    """customer (limits, QoS) → project (QOS+=) → allocations (QOS-=, own QoS), with users."""
    tag = uuid.uuid4().hex[:6]
    names = {k: f"inh{k}{tag}" for k in ("c", "p", "a", "b")}
    c, p, a, b = names["c"], names["p"], names["a"], names["b"]
    try:
        limits = ("MaxTRESMins=cpu=10,mem=5", "QOS=normal,slowdown", "DefaultQOS=normal")
        sacctmgr("add", "account", c, "Parent=root", *limits)
        sacctmgr("add", "account", p, f"Parent={c}", "MaxTRESMins=cpu=20", "QOS+=blocked")
        sacctmgr("add", "account", a, f"Parent={p}", "QOS-=slowdown", "GrpTRESMins=cpu=100")
        sacctmgr("add", "account", b, f"Parent={p}", "QOS=slowdown", "DefaultQOS=slowdown")
        sacctmgr("add", "user", USERS[0], f"Account={a},{b}")
        sacctmgr("add", "user", USERS[1], f"Account={a}", "MaxTRESMins=mem=7", "QOS+=blocked")
        yield names
    finally:
        remove_accounts([a, b, p, c])


def plain_records(accounts: set[str]) -> list[parser.AssociationRecord]:
    """The records of the plain read (parent information included) for ``accounts``.

    Only these accounts' rows: a 22.05 slurmdbd dies on the plain read of the whole
    cluster when some other association lost its parent.
    """
    where = ("where", "account=" + ",".join(sorted(accounts)), f"cluster={stack().cluster}")
    fields = "format=" + ",".join(parser.ASSOC_FIELDS)
    out = run("sacctmgr", "--parsable2", "--noheader", "show", "assoc", *where, fields).stdout
    return [r for r in parser.parse_associations(out.splitlines()) if r.account in accounts]


def test_association_records_are_those_of_the_plain_read(tree: Mapping[str, str]) -> None:
    ours = set(tree.values())
    client = SlurmClient(CommandRunner(bin_path=stack().bin), cluster_name=stack().cluster)
    states = client.snapshot().accounts.values()
    records = [r for s in states for r in (s.record, *s.users.values())]
    expected = plain_records(ours)
    assert [r for r in records if r.account in ours] == expected
    allocation = next(r for r in expected if r.account == tree["a"] and r.user == USERS[1])
    assert allocation.qos == ("blocked", "normal")  # inherited, then changed twice below
    assert allocation.max_tres_mins == {"cpu": 20, "mem": 7}
    fresh = client.account_record(tree["b"], fresh=True)
    assert fresh == next(r for r in expected if r.account == tree["b"] and not r.user)


def test_22_05_reads_carry_no_parent_information(tree: Mapping[str, str]) -> None:
    runner = RecordingRunner(bin_path=stack().bin)
    client = SlurmClient(runner, cluster_name=stack().cluster)
    client.snapshot()
    client.submit_limits()
    client.account_record(tree["a"], fresh=True)
    defaults = client.user_defaults(USERS[:2])
    listed = run("sacctmgr", "-P", "-n", "list", "user", "where", "name=" + ",".join(USERS[:2]),
                 "format=User,DefaultAccount").stdout  # fmt: skip
    assert defaults == {r.user: r.default_account for r in parser.parse_users(listed.split())}
    reads = [argv for argv in runner.argvs if argv[-1].startswith("format=")]
    assert len(reads) == 4
    if stack().version == "22.05":
        assert all("WOPInfo" in argv and "show" in argv for argv in reads), reads
