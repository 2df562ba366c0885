"""Public entry of ``waldur_site_diagnose_slurm_account`` (``python -m`` works too)."""

from waldur_site_agent_slurm.diagnose.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
