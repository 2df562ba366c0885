"""WALDUR_SITE_AGENT_LOG_LEVEL sets the level of the plugin's logging in the agent."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from waldur_site_agent.backend import configure_logger, logger

from tests.conftest import make_backend
from tests.fakes import FakeRunner


@pytest.fixture(autouse=True)
def console() -> Iterator[io.StringIO]:
    """The framework's console logging at the configuration's default level, INFO."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logger("INFO")
    stream = io.StringIO()
    for handler in root.handlers:
        if type(handler) is logging.StreamHandler:
            handler.setStream(stream)
    yield stream
    root.handlers, level = saved
    root.setLevel(level)


def logged(console: io.StringIO) -> list[dict[str, str]]:
    return [json.loads(line) for line in console.getvalue().splitlines() if line]


def test_debug_in_the_environment_shows_the_plugins_debug_lines(
    runner: FakeRunner, monkeypatch: pytest.MonkeyPatch, console: io.StringIO
) -> None:
    monkeypatch.setenv("WALDUR_SITE_AGENT_LOG_LEVEL", "debug")
    make_backend(runner)

    logger.debug("probe %s", 1)

    assert {"event": "probe 1", "level": "debug"}.items() <= logged(console)[-1].items()


def test_without_it_the_configured_info_level_holds(
    runner: FakeRunner, monkeypatch: pytest.MonkeyPatch, console: io.StringIO
) -> None:
    monkeypatch.delenv("WALDUR_SITE_AGENT_LOG_LEVEL", raising=False)
    make_backend(runner)

    logger.debug("probe")

    assert all(r["event"] != "probe" for r in logged(console))


def test_an_unknown_level_is_named_in_a_warning_and_ignored(
    runner: FakeRunner, monkeypatch: pytest.MonkeyPatch, console: io.StringIO
) -> None:
    monkeypatch.setenv("WALDUR_SITE_AGENT_LOG_LEVEL", "LOUD")
    make_backend(runner)
    logger.debug("probe")

    records = logged(console)
    assert any(
        r["level"] == "warning" and "Ignoring WALDUR_SITE_AGENT_LOG_LEVEL='LOUD'" in r["event"]
        for r in records
    )
    assert all(r["event"] != "probe" for r in records)
