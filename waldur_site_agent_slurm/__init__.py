"""SLURM backend for Waldur Site Agent."""

__version__ = "1.1.0"
