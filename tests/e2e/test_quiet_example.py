"""examples/emulator-config.yaml through the real agent: no warning in any mode's cycle."""

from __future__ import annotations

from tests.e2e.conftest import Agent

HOOK = "site agent: "  # what the hook that stops the agent after one cycle prints


def test_every_polling_mode_runs_the_example_without_a_warning(agent: Agent) -> None:
    for mode in ("order_process", "membership_sync", "report", "membership_sync"):
        result = agent.run(mode)

        assert result.messages("warning") == [], (mode, result.messages("warning"))
        # stderr holds only the one-cycle hook's own line
        others = [line for line in result.stderr.splitlines() if not line.startswith(HOOK)]
        assert others == [], (mode, others)
