"""SLURM 22.05: association reads its slurmdbd survives, with inherited values computed here.

Captures in ``tests/data/slurm-<version>/inherited/`` (see the README there): one tree
with MaxTRESMins, QoS lists (absolute, ``+name``, ``-name``) and DefaultQOS set at
several levels, read the plain way and with ``WOPInfo WithRawQOS``; then the same after
a race left a user association whose account row is gone, which the plain read of 22.05
crashes slurmdbd on.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.captures import load
from tests.fakes import FakeRunner
from waldur_site_agent_slurm.slurm import inherit, parser
from waldur_site_agent_slurm.slurm.accounting import AssociationSnapshot
from waldur_site_agent_slurm.slurm.client import SlurmClient
from waldur_site_agent_slurm.slurm.runner import CommandRunner, parse_release

OWN = "inherited/sacctmgr_show_assoc_own_values"
PLAIN = "inherited/sacctmgr_show_assoc"
READ = ["sacctmgr", "--parsable2", "--noheader", "show", "assoc"]


def plain_records(version: str = "22.05") -> list[parser.AssociationRecord]:
    return parser.parse_associations(load(version, PLAIN).lines)


def test_own_values_of_22_05_come_to_what_its_plain_read_shows() -> None:
    assert inherit.inherited(load("22.05", OWN).lines) == plain_records()


def test_24_11_plain_read_shows_the_same_inherited_values_as_22_05() -> None:
    # slurmtest3 is missing on 24.11: it refused the QOS-=slowdown that leaves it without
    # its DefaultQOS.
    on_22_05 = [r for r in plain_records("22.05") if r.user != "slurmtest3"]
    assert plain_records("24.11") == on_22_05


def test_an_orphaned_user_association_keeps_its_own_values_and_the_rest_is_unchanged() -> None:
    records = inherit.inherited(load("22.05", OWN + "_orphan").lines)
    orphans = [r for r in records if r.account == "victim"]
    assert [(r.user, r.parent, r.qos, r.default_qos, r.max_tres_mins) for r in orphans] == [
        ("slurmtest3", "", (), "", {})
    ]
    assert [r for r in records if r.account != "victim"] == plain_records()


def test_the_plain_read_of_an_orphaned_association_kills_22_05_slurmdbd() -> None:
    run = load("22.05", "inherited/sacctmgr_show_assoc_orphan")
    assert (run.exit, run.stdout) == (1, "")
    assert "DBD_GET_ASSOCS failure: Connection refused" in run.stderr


@pytest.mark.parametrize(
    ("text", "release"),
    [
        (load("22.05", "inherited/sacctmgr_version").stdout, (22, 5)),
        (load("24.11", "inherited/sacctmgr_version").stdout, (24, 11)),
        ("slurm 26.05.3\n", (26, 5)),  # slurm-emulator
        ("", None),
        ("sacctmgr: error: something\n", None),
    ],
)
def test_release_is_read_from_sacctmgr_version(text: str, release: tuple[int, int] | None) -> None:
    assert parse_release(text) == release


@pytest.mark.parametrize(
    ("release", "own"), [((21, 8), True), ((22, 5), True), ((23, 2), False), ((24, 11), False)]
)
def test_only_releases_before_23_02_read_own_values(release: tuple[int, int], own: bool) -> None:
    assert inherit.needs_own_values(release) is own


def test_an_unknown_release_keeps_the_plain_read() -> None:
    assert inherit.needs_own_values(None) is False


def client_22_05(runner: FakeRunner) -> SlurmClient:
    runner.slurm_release = (22, 5)
    runner.outputs["WOPInfo WithRawQOS"] = load("22.05", OWN).stdout
    return SlurmClient(runner, cluster_name="dbd2205")


def test_22_05_snapshot_is_one_read_without_parent_information(runner: FakeRunner) -> None:
    snapshot = client_22_05(runner).snapshot()
    fields = "format=" + ",".join(inherit.OWN_FIELDS)
    assert runner.calls == [[*READ, "where", "cluster=dbd2205", "WOPInfo", "WithRawQOS", fields]]
    a1 = snapshot.account("a1")
    assert a1 is not None
    assert (a1.parent, a1.record.qos) == ("p1", ("blocked", "normal"))
    assert a1.record.default_qos == "normal"
    assert a1.users["slurmtest2"].max_tres_mins == {"cpu": 20, "mem": 7}


def test_24_11_snapshot_keeps_the_plain_read(runner: FakeRunner) -> None:
    runner.slurm_release = (24, 11)
    runner.outputs["show assoc"] = load("24.11", PLAIN).stdout
    snapshot = SlurmClient(runner, cluster_name="dbd2411").snapshot()
    fields = "format=" + ",".join(parser.ASSOC_FIELDS)
    assert runner.calls == [[*READ, "where", "cluster=dbd2411", fields]]
    assert [s.record for s in snapshot.accounts.values()] == [
        r for r in plain_records("24.11") if not r.user
    ]


def test_22_05_fresh_account_record_reads_the_whole_tree_it_inherits_from(
    runner: FakeRunner,
) -> None:
    record = client_22_05(runner).account_record("a2", fresh=True)
    assert [c[5:7] for c in runner.calls] == [["where", "cluster=dbd2205"]]
    assert record == next(r for r in plain_records() if r.account == "a2" and not r.user)


def test_22_05_default_accounts_come_from_default_associations(runner: FakeRunner) -> None:
    runner.outputs["OnlyDefaults"] = load(
        "22.05", "inherited/sacctmgr_show_assoc_only_defaults_orphan"
    ).stdout
    users = ["slurmtest3", "slurmtest1", "slurmtest2"]
    defaults = client_22_05(runner).user_defaults(users)
    where = ["where", "user=slurmtest1,slurmtest2,slurmtest3", "cluster=dbd2205"]
    assert runner.calls == [[*READ, *where, "OnlyDefaults", "WOPInfo", "format=User,Account"]]
    listed = load("22.05", "inherited/sacctmgr_list_user_defaults")
    assert defaults == {r.user: r.default_account for r in parser.parse_users(listed.lines)}


def test_the_release_is_asked_once_per_binary(tmp_path: Path) -> None:
    script = tmp_path / "sacctmgr"
    script.write_text(f"#!/bin/sh\necho \"$*\" >> {tmp_path}/calls\necho 'slurm-wlm 22.05.8'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    first, second = CommandRunner(bin_path=str(tmp_path)), CommandRunner(bin_path=str(tmp_path))
    assert (first.release(), second.release()) == ((22, 5), (22, 5))
    assert (tmp_path / "calls").read_text() == "--version\n"


def test_24_11_plain_read_shows_an_account_whose_parent_is_gone() -> None:
    records = parser.parse_associations(load("24.11", PLAIN + "_orphan").lines)
    snapshot = AssociationSnapshot(records)
    orphan = snapshot.account("pv2c")
    assert orphan is not None
    assert (orphan.parent, orphan.record.qos, snapshot.account("pv2")) == ("pv2", (), None)
