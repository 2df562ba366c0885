"""The answer classifier on real SLURM 22.05 and 24.11 output (``tests/data``).

Both versions ran the same commands on the same state, so every capture present in both
directories must mean the same thing in both; the few that do not differ because SLURM
itself behaved differently, and each is named below with the reason.
"""

from __future__ import annotations

import pytest

from tests.captures import VERSIONS, Run, load, names
from waldur_site_agent_slurm.slurm.answers import NOTHING_TO_DO, Answer, classify, verb


def answer(run: Run) -> Answer:
    return classify(run.argv, run.exit, run.stdout, run.stderr)


# Captures of both versions whose meaning differs because SLURM's behaviour does.
DIFFERENT_BEHAVIOUR = {
    # bob's job 9 runs: 22.05 refuses for the default account, 24.11 checks jobs first.
    "sacctmgr_delete_account_default_of_user": (Answer.DEFAULT_ACCOUNT, Answer.JOBS_ACTIVE),
    # --json is an unknown option in 22.05 and works in 24.11.
    "sacctmgr_json_show_assoc": (Answer.FAILED, Answer.DONE),
    "sshare_json": (Answer.FAILED, Answer.DONE),
    # An association without its parent: 22.05's slurmdbd dies on the plain read, 24.11's answers.
    "inherited/sacctmgr_show_assoc_orphan": (Answer.UNAVAILABLE, Answer.DONE),
}

SHARED = sorted(names("22.05") & names("24.11"))


def test_every_22_05_capture_has_a_24_11_counterpart() -> None:
    assert len(SHARED) == len(names("22.05")) > 100


@pytest.mark.parametrize("name", SHARED)
def test_a_24_11_capture_means_what_the_22_05_capture_of_the_same_name_means(name: str) -> None:
    old, new = answer(load("22.05", name)), answer(load("24.11", name))
    assert (old, new) == DIFFERENT_BEHAVIOUR.get(name, (old, old))


# ---- what each capture means, in both versions -------------------------------------------

SAME_IN_BOTH = {
    "sacctmgr_add_account_new": Answer.DONE,
    "sacctmgr_add_user_new": Answer.DONE,
    "sacctmgr_modify_account_same_value": Answer.DONE,
    "sacctmgr_modify_account_rawusage_0": Answer.DONE,
    "sacctmgr_delete_user_assoc": Answer.DONE,
    "sacctmgr_add_account_existing": Answer.ALREADY_EXISTS,
    "sacctmgr_add_user_existing": Answer.ALREADY_EXISTS,
    "sacctmgr_add_qos_existing": Answer.ALREADY_EXISTS,
    "sacctmgr_delete_account_nonexistent": Answer.NOTHING_DELETED,
    "sacctmgr_modify_account_nonexistent": Answer.NO_MATCH,
    "sacctmgr_modify_user_assoc_not_member": Answer.NO_MATCH,
    "sacctmgr_modify_qos_nonexistent": Answer.NO_MATCH,
    "sacctmgr_add_account_parent_nonexistent": Answer.MISSING_PARENT,
    "sacctmgr_add_user_account_nonexistent": Answer.MISSING_ACCOUNT,
    "sacctmgr_delete_account_with_running_job": Answer.JOBS_ACTIVE,
    "sacctmgr_delete_user_assoc_with_running_job": Answer.JOBS_ACTIVE,
    "sacctmgr_modify_invalid_tres_name": Answer.FAILED,
    "sacctmgr_modify_invalid_gres_name": Answer.FAILED,
    "sacctmgr_modify_qos_unknown_name": Answer.FAILED,
    "sacctmgr_modify_account_rawusage_nonzero": Answer.FAILED,
}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("name", "expected"), sorted(SAME_IN_BOTH.items()))
def test_capture_is_classified_by_meaning(version: str, name: str, expected: Answer) -> None:
    assert answer(load(version, name)) is expected


def test_the_texts_differ_where_the_meaning_is_the_same() -> None:
    # The classifier earns its keep only if the bytes differ: check that they still do.
    for name in (
        "sacctmgr_add_account_existing",
        "sacctmgr_add_user_existing",
        "sacctmgr_modify_account_nonexistent",
        "sacctmgr_add_account_parent_nonexistent",
        "sacctmgr_add_user_account_nonexistent",
    ):
        old, new = load("22.05", name), load("24.11", name)
        assert (old.stdout, old.stderr) != (new.stdout, new.stderr), name


def test_24_11_add_user_with_a_missing_account_says_so_only_on_stdout() -> None:
    run = load("24.11", "sacctmgr_add_user_account_nonexistent")
    assert run.stderr == ""
    assert "Nothing added." in run.stdout  # a "nothing changed" text that must not win
    assert answer(run) is Answer.MISSING_ACCOUNT


def test_24_11_modify_that_matched_nothing_prints_only_on_stderr() -> None:
    run = load("24.11", "sacctmgr_modify_account_nonexistent")
    assert run.stdout == ""
    assert answer(run) is Answer.NO_MATCH


# ---- 24.11-only probes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("extra/sacctmgr_modify_user_nonexistent", Answer.NO_MATCH),
        ("extra/sacctmgr_modify_account_unknown_cluster", Answer.NO_MATCH),
        ("extra/sacctmgr_add_account_unknown_cluster", Answer.MISSING_PARENT),
        ("extra/sacctmgr_delete_account_default_of_user_other_assoc", Answer.DEFAULT_ACCOUNT),
        ("extra/sacctmgr_delete_account_default_of_user_no_jobs", Answer.DONE),
        ("extra/sacctmgr_delete_account_with_subaccounts", Answer.JOBS_ACTIVE),
        ("extra/sacctmgr_delete_user_only_assoc", Answer.NOTHING_DELETED),
        ("extra/sacctmgr_add_account_bad_option", Answer.FAILED),
        ("extra/sacctmgr_add_user_no_unix_user", Answer.DONE),
        ("extra/sacctmgr_modify_account_same_fairshare", Answer.DONE),
    ],
)
def test_24_11_probe_is_classified_by_meaning(name: str, expected: Answer) -> None:
    assert answer(load("24.11", name)) is expected


def test_an_error_on_stderr_fails_a_change_that_exited_0() -> None:
    # 24.11 stores cpu=0 for "cpu=abc", says "Modified", exits 0 and prints an error.
    run = load("24.11", "extra/sacctmgr_modify_account_bad_value")
    assert run.exit == 0
    assert "Modified account associations" in run.stdout
    assert answer(run) is Answer.FAILED


def test_an_error_on_stderr_of_a_read_that_exited_0_is_left_to_the_parser() -> None:
    assert classify(["sacctmgr", "show", "assoc"], 0, "a|b\n", "sacctmgr: error: x\n") is (
        Answer.DONE
    )


@pytest.mark.parametrize(
    "name",
    sorted(n for n in names("24.11") if n.startswith("extra/dbd_down_") and load("24.11", n).exit),
)
def test_24_11_slurmdbd_down_is_unavailable(name: str) -> None:
    run = load("24.11", name)
    assert "_open_persist_conn:" in run.stderr
    assert answer(run) is Answer.UNAVAILABLE


def test_22_05_slurmdbd_down_is_unavailable() -> None:
    # 22.05's words (docs: emulated with a closed port); no capture of it exists.
    stderr = (
        "sacctmgr: error: slurm_persist_conn_open_without_init: failed to open persistent "
        "connection to host:localhost:6899: Connection refused\n"
        "sacctmgr: error: Sending PersistInit msg: Connection refused\n"
    )
    argv = ["sacctmgr", "--immediate", "modify", "account", "where", "name=a", "set", "Fairshare=1"]
    assert classify(argv, 1, "", stderr) is Answer.UNAVAILABLE


def test_slurmdbd_down_is_recognised_by_meaning_not_by_the_function_name() -> None:
    stderr = "sacctmgr: error: some_future_name: failed to open persistent connection to host\n"
    assert classify(["sacctmgr", "list", "tres"], 1, "", stderr) is Answer.UNAVAILABLE


# ---- the verb decides what "nothing changed" means -----------------------------------------


def test_nothing_changed_means_already_there_for_add_and_no_match_for_modify() -> None:
    text = "Request didn't affect anything\n"
    add = ["sacctmgr", "-i", "add", "user", "u", "Account=a"]
    modify = ["sacctmgr", "-i", "modify", "user", "where", "name=u", "set", "Fairshare=1"]
    delete = ["sacctmgr", "-i", "delete", "user", "where", "name=u"]
    assert classify(add, 1, text, "") is Answer.ALREADY_EXISTS
    assert classify(modify, 1, "", "sacctmgr: error: " + text) is Answer.NO_MATCH
    assert classify(delete, 1, " Nothing deleted\n", "") is Answer.NOTHING_DELETED
    assert {Answer.ALREADY_EXISTS, Answer.NO_MATCH, Answer.NOTHING_DELETED} == NOTHING_TO_DO


def test_nothing_changed_with_another_error_beside_it_is_a_failure() -> None:
    argv = ["sacctmgr", "-i", "add", "account", "a"]
    assert classify(argv, 1, " Nothing new added.\n", "sacctmgr: error: disk full\n") is (
        Answer.FAILED
    )


def test_a_read_that_exits_1_is_never_nothing_to_do() -> None:
    assert classify(["sacctmgr", "show", "assoc"], 1, " Nothing modified\n", "") is Answer.FAILED


def test_an_association_skipped_by_an_add_that_exited_0_is_a_missing_account() -> None:
    out = "No account gone on cluster c, skipping.\n Associations =\n  C = c A = here U = u\n"
    assert classify(["sacctmgr", "-i", "add", "user", "u", "Account=gone,here"], 0, out, "") is (
        Answer.MISSING_ACCOUNT
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["sacctmgr", "--immediate", "add", "account", "a"], "add"),
        (["/usr/bin/sacctmgr", "-i", "modify", "user"], "modify"),
        (["sacctmgr", "--parsable2", "--noheader", "show", "assoc"], "show"),
        (["scancel", "--account=a"], None),
        ([], None),
    ],
)
def test_verb_is_the_first_sacctmgr_word_that_is_not_an_option(
    argv: list[str], expected: str | None
) -> None:
    assert verb(argv) == expected
