"""An account removed (by a terminate order) after a membership cycle read it.

The cycle reads every allocation, then works on each in turn; the order process may
remove one in between. What is left to do for that account is nothing, not an error
that the framework would turn into an Erred resource.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from waldur_site_agent.backend.exceptions import BackendError

from tests.emulator.conftest import assoc_rows, emulator_backend
from tests.test_backend_commands import resource
from waldur_site_agent_slurm.backend import SlurmBackend

pytestmark = pytest.mark.emulator

STATES = {"offering_user_states": {"bob": "OK", "carol": "OK"}}


def read_then_terminated() -> SlurmBackend:
    """A cycle that read alloc-1 (with alice), which a terminate order then removed.

    A write for another allocation then makes the cycle read SLURM again, so it finds
    the account gone. (A cycle that wrote nothing since still believes the account is
    there until SLURM refuses the write: the emulator answers that refusal with "Nothing
    added", so that case is tested on the real SLURM, in
    ``tests/real/test_users_and_homedirs_on_real_slurm.py``.)
    """
    res, other = resource(), resource(slug="alloc-2", backend_id="alloc-2")
    setup = emulator_backend()
    for each in (res, other):
        setup.create_resource_with_id(each, each.backend_id)
    setup.add_users_to_resource(res, {"alice"})
    cycle = emulator_backend()
    assert set(cycle.pull_resources([res, other])) == {"alloc-1", "alloc-2"}
    emulator_backend().delete_resource(res)
    cycle.add_users_to_resource(other, {"carol"}, **STATES)
    return cycle


def test_a_cycle_adds_no_one_to_an_account_removed_after_its_read(
    emulator: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cycle = read_then_terminated()
    with caplog.at_level(logging.WARNING):
        assert cycle.add_users_to_resource(resource(), {"bob"}, **STATES) == set()
    assert not any(row[0] == "alloc-1" for row in assoc_rows())
    assert "Account alloc-1 was removed after this cycle read it" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_the_rest_of_the_cycle_on_the_removed_account_is_no_error(emulator: Path) -> None:
    cycle = read_then_terminated()
    res = resource()
    assert cycle.remove_users_from_resource(res, {"alice"}) == []
    cycle.reconcile_existing_user_roles(res, {"alice"}, {}, {})
    assert cycle.pause_resource("alloc-1") is False
    assert cycle.downscale_resource("alloc-1") is False
    assert cycle.restore_resource("alloc-1") is False
    cycle.set_resource_user_limits("alloc-1", "alice", {"cpu": 10})
    assert cycle.get_resource_metadata("alloc-1") in ({}, {"qos": "normal"})
    assert not any(row[0] == "alloc-1" for row in assoc_rows())


def test_an_order_adding_users_to_a_missing_account_is_an_error(emulator: Path) -> None:
    # An order's create (no cycle read) and a cycle that found no account at its read.
    with pytest.raises(BackendError, match="Account alloc-1 does not exist; cannot add users"):
        emulator_backend().add_users_to_resource(resource(), {"bob"})
    cycle = emulator_backend()
    assert cycle.pull_resources([resource()]) == {}
    with pytest.raises(BackendError, match="does not exist"):
        cycle.add_users_to_resource(resource(), {"bob"}, **STATES)
    with pytest.raises(BackendError, match="does not exist; cannot set its QoS"):
        cycle.pause_resource("alloc-1")


def test_a_failure_on_an_account_that_is_still_there_stays_an_error(emulator: Path) -> None:
    res = resource()
    emulator_backend().create_resource_with_id(res, "alloc-1")
    cycle = emulator_backend()
    assert set(cycle.pull_resources([res])) == {"alloc-1"}
    with pytest.raises(BackendError, match="no association with alloc-1"):
        cycle.set_resource_user_limits("alloc-1", "nobody", {"cpu": 10})
