"""SLURM backend for Waldur Site Agent."""

__version__ = "0.1.0"
