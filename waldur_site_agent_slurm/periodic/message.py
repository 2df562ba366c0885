"""One ``apply_periodic_settings`` message, start to end: checks, apply, the result.

``apply_settings`` never raises: whatever happens becomes the result Waldur gets
(``success``, ``error``, ``commands_executed``, ``mode``, ``raw_usage_reset``, …).
``PeriodicService`` does the work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from waldur_site_agent.backend import logger
from waldur_site_agent.backend.exceptions import BackendError

from waldur_site_agent_slurm.allocation.usage import usage_zone
from waldur_site_agent_slurm.config import SlurmSettings
from waldur_site_agent_slurm.periodic.clock import Clock
from waldur_site_agent_slurm.periodic.plan import Progress, ResetOutcome
from waldur_site_agent_slurm.periodic.service import PeriodicService
from waldur_site_agent_slurm.periodic.settings import PeriodicSettingsError, parse_settings
from waldur_site_agent_slurm.slurm import validation
from waldur_site_agent_slurm.slurm.accounting import AccountingClient

NOT_ENABLED = "periodic_limits_not_enabled"


def apply_settings(
    client: AccountingClient,
    settings: SlurmSettings,
    resource_id: str,
    raw: object,
    agent_zone: str = "",
    *,
    override: Mapping[str, Any] | None = None,
    clock: Clock | None = None,
    lever: bool | None = False,
) -> dict[str, Any]:
    """Apply one message's settings; never raises.

    Periods are cut in ``backend_settings.timezone`` or the agent's zone (UTC without).
    ``lever``: QoS enforcement applies, so a threshold level goes to GrpSubmitJobs
    (None: unknown here, see ``PeriodicService._message_target``).

    Returns:
        ``success``, ``error`` and ``commands_executed`` (the exact command lines that
        ran, also on a partial failure, or the request sent to slurm-emulator's API) for
        Waldur; ``mode`` (``production``: sacctmgr; ``emulator``: slurm-emulator's API),
        ``raw_usage_reset`` (requested, performed, reason), ``actions``, ``period`` and
        ``carryover_details``; ``reason: periodic_limits_not_enabled`` when switched off.
    """
    progress = Progress()
    details = raw.get("carryover_details") if isinstance(raw, Mapping) else None
    mode = "emulator" if settings.periodic.emulator_mode else "production"
    result: dict[str, Any] = {"carryover_details": details, "mode": mode}
    try:
        zone = usage_zone(agent_zone, settings.timezone)
        service = PeriodicService(
            client, settings, timezone=zone, clock=clock, override=override, lever=lever
        )
        result["mode"] = service.config.mode
        if not service.config.enabled:
            error = "periodic_limits.enabled is false in backend_settings; nothing applied"
            logger.warning("Periodic settings for %s not applied: %s", resource_id, error)
            return {
                **result,
                "success": False,
                "reason": NOT_ENABLED,
                "error": error,
                "commands_executed": [],
                "raw_usage_reset": progress.reset_report(raw),
            }
        if service.config.emulator_mode and not service.config.emulator_base_url:
            raise PeriodicSettingsError(
                "periodic_limits.emulator_mode needs periodic_limits.emulator_base_url, the "
                "address of slurm-emulator's API (e.g. http://127.0.0.1:8080); nothing applied"
            )
        account = validation.account_name(resource_id, "resource backend_id")
        parsed = parse_settings(raw, service.config, settings.components)
        apply = service.apply_on_emulator if service.config.emulator_mode else service.apply
        plan, period, threshold_refusals = apply(account, parsed, progress)
    except BackendError as err:
        logger.error("Periodic settings for %s failed: %s", resource_id, err)
        error = str(err)
    except Exception as err:  # the contract is a result, never an exception
        logger.exception("Periodic settings for %s failed unexpectedly", resource_id)
        error = f"Unexpected {type(err).__name__}: {err}"
    else:
        error = ""
    done = {"commands_executed": progress.commands, "raw_usage_reset": progress.reset_report(raw)}
    if error:
        return {**result, "success": False, "error": error, **done}
    refused = (*threshold_refusals, *plan.refused)
    if refused:
        error = "Not applied: " + "; ".join(str(r) for r in refused)
        logger.error("Periodic settings for %s: %s", resource_id, error)
    reset = progress.reset or ResetOutcome.not_requested()
    if reset.requested and not reset.performed:
        logger.info("RawUsage of %s not reset: %s", resource_id, reset.reason)
    return {
        **result,
        "success": not refused,
        "error": error,
        **done,
        "actions": plan.describe(),
        "period": period.id,
    }
