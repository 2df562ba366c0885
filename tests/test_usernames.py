"""``username_management_backend: waldur`` of the examples: found by the framework, quiet."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from waldur_site_agent.backend.backends import UnknownUsernameManagementBackend
from waldur_site_agent.common import utils

from waldur_site_agent_slurm.usernames import WaldurUsernames

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("name", ["cluster-config.yaml", "emulator-config.yaml"])
def test_the_examples_username_backend_is_found_without_a_warning(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    offering = utils.load_configuration(str(EXAMPLES / name)).waldur_offerings[0]

    with caplog.at_level(logging.WARNING):
        backend, _ = utils.get_username_management_backend(offering)

    assert isinstance(backend, WaldurUsernames)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_it_behaves_as_the_frameworks_fallback_generating_no_username() -> None:
    backend = WaldurUsernames(backend_settings={}, offering=None)

    # The framework skips username generation and profile sync for this class.
    assert isinstance(backend, UnknownUsernameManagementBackend)
