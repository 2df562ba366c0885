"""The configuration schemas the framework's entry points name, and their enums."""

from waldur_site_agent_slurm.config import (
    ExecutionMode,
    LustreQuotaConfig,
    PeriodicLimitsSchema,
    ProjectDirectoryConfig,
    QosManagementConfig,
    SlurmBackendSettingsSchema,
    SlurmComponentSchema,
    SlurmLimitType,
    SlurmRestApiConfig,
)

PeriodicLimitsConfig = PeriodicLimitsSchema

__all__ = [
    "ExecutionMode",
    "LustreQuotaConfig",
    "PeriodicLimitsConfig",
    "PeriodicLimitsSchema",
    "ProjectDirectoryConfig",
    "QosManagementConfig",
    "SlurmBackendSettingsSchema",
    "SlurmComponentSchema",
    "SlurmLimitType",
    "SlurmRestApiConfig",
]
