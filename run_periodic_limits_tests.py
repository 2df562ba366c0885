#!/usr/bin/env python3
"""Run the periodic-limits tests with pytest; extra arguments go to pytest.

    python run_periodic_limits_tests.py              # domain, emulator, real SLURM, e2e
    python run_periodic_limits_tests.py -k reset -q  # a selection

Uses the project's .venv when there is one. Files that do not exist (yet) are left out.
The exit status is pytest's, except that "no tests collected" (5) counts as success.

The real SLURM and broker tests only ever run against the suite's own stacks: they are
selected when ``scripts/real-slurm.sh status VERSION`` and ``scripts/rabbitmq.sh status`` (as
root) report those stacks up, and left out otherwise, with a line saying so. A SLURM
or RabbitMQ that merely answers on this host (on PATH, on the default ports) is never
used. In CI (``CI=true``) they are always selected, so a missing stack fails the run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TEST_FILES = (
    "tests/test_periodic.py",
    "tests/emulator/test_periodic_on_emulator.py",
    "tests/real/test_periodic_on_real_slurm.py",
    "tests/e2e/test_event_periodic.py",
)
NO_TESTS_COLLECTED = 5


@dataclass(frozen=True)
class ServiceTier:
    """Tests of one pytest marker that need a stack started by one project script."""

    marker: str
    script: Path
    status_commands: tuple[tuple[str, ...], ...]  # one per stack; any one up selects the tier

    def up(self) -> bool:
        """True when the script reports one of its own stacks running (root only)."""
        if os.geteuid() != 0:
            return False
        return any(
            subprocess.run(  # noqa: S603
                ["bash", str(self.script), *args],  # noqa: S607
                capture_output=True,
                check=False,
            ).returncode
            == 0
            for args in self.status_commands
        )


SERVICE_TIERS = (
    ServiceTier(
        "real_slurm",
        ROOT / "scripts" / "real-slurm.sh",
        (("status", "22.05"), ("status", "24.11")),
    ),
    ServiceTier("broker", ROOT / "scripts" / "rabbitmq.sh", (("status",),)),
)


def deselect_args(tiers: tuple[ServiceTier, ...] = SERVICE_TIERS) -> list[str]:
    """``-m`` arguments leaving out the tiers whose stack is not up; prints the choice."""
    if os.environ.get("CI") == "true":
        return []
    left_out = []
    for tier in tiers:
        script = tier.script.name
        if tier.up():
            sys.stdout.write(f"{tier.marker}: included (scripts/{script} reports its stack up)\n")
        else:
            sys.stdout.write(
                f"{tier.marker}: left out (scripts/{script} reports no stack of its own "
                f"running; start it as root: bash scripts/{script} up)\n"
            )
            left_out.append(tier.marker)
    if not left_out:
        return []
    return ["-m", " and ".join(f"not {marker}" for marker in left_out)]


def run_pytest(test_files: list[str] | tuple[str, ...], args: list[str]) -> int:
    """Run pytest on those of ``test_files`` that exist; return its exit status (5 → 0)."""
    venv_python = ROOT / ".venv" / "bin" / "python"
    python = str(venv_python) if venv_python.exists() else sys.executable
    files = [name for name in test_files if (ROOT / name).exists()]
    command = [python, "-m", "pytest", *files, *deselect_args(), *args]
    sys.stdout.flush()
    status = subprocess.call(command, cwd=ROOT)  # noqa: S603
    return 0 if status == NO_TESTS_COLLECTED else status


if __name__ == "__main__":
    sys.exit(run_pytest(TEST_FILES, sys.argv[1:]))
