"""The configuration schemas the framework's entry points name."""

from waldur_site_agent_slurm.config import (
    PeriodicLimitsSchema,
    SlurmBackendSettingsSchema,
    SlurmComponentSchema,
)

__all__ = ["PeriodicLimitsSchema", "SlurmBackendSettingsSchema", "SlurmComponentSchema"]
