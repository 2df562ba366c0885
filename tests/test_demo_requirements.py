"""The demo in an installation without the development extras says what it needs."""

from __future__ import annotations

import subprocess
import sys

# A production install: slurm-emulator is not importable.
WITHOUT_EMULATOR = (
    "import sys; sys.modules['emulator'] = None; "
    "from waldur_site_agent_slurm.devtools.demo.__main__ import main; sys.exit(main([]))"
)


def test_without_slurm_emulator_the_demo_says_in_one_line_to_install_the_dev_extra() -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_EMULATOR],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "pip install 'waldur-site-agent-slurm[dev]'" in lines[0]
    assert "Traceback" not in result.stderr
