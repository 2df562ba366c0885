"""The client of the configured ``execution_mode``: command-line tools or slurmrestd."""

from __future__ import annotations

from pathlib import Path

from waldur_site_agent_slurm.config import ExecutionMode, SlurmSettings
from waldur_site_agent_slurm.errors import SlurmConfigError
from waldur_site_agent_slurm.rest_client import SlurmRestClient
from waldur_site_agent_slurm.slurm.accounting import AccountingClient
from waldur_site_agent_slurm.slurm.client import SlurmClient
from waldur_site_agent_slurm.slurm.rest import RestSettings
from waldur_site_agent_slurm.slurm.runner import CommandRunner


def rest_settings(settings: SlurmSettings) -> RestSettings:
    """The checked ``rest_api`` block (each value checked before any request)."""
    block = settings.rest_api
    if block is None or not block.url:
        raise SlurmConfigError("execution_mode: rest needs backend_settings.rest_api.url")
    if not block.username:
        raise SlurmConfigError(
            "execution_mode: rest needs backend_settings.rest_api.username (the SLURM user "
            "whose token the agent sends)"
        )
    return RestSettings(
        url=block.url,
        api_version=block.api_version,
        username=block.username,
        token_file=Path(block.token_file) if block.token_file else None,
        token_env=block.token_env,
        verify_ssl=block.verify_ssl,
        timeout=float(block.timeout),
    )


def make_client(settings: SlurmSettings, runner: CommandRunner) -> AccountingClient:
    """SlurmClient on ``runner`` (cli), or SlurmRestClient (rest; ``runner`` for RawUsage)."""
    if settings.execution_mode == ExecutionMode.REST.value:
        cluster = settings.cluster_name or ""
        return SlurmRestClient(
            rest_settings(settings), cluster, command_runner=runner, write_lock=runner.write_lock
        )
    return SlurmClient(
        runner,
        settings.cluster_name,
        active_jobs_from_sacct=settings.emulator_mode,  # the emulator has no squeue
    )
