"""Public name of the SLURM command-line client (``waldur_site_agent_slurm.client.SlurmClient``)."""

from waldur_site_agent_slurm.slurm.client import SlurmClient

__all__ = ["SlurmClient"]
