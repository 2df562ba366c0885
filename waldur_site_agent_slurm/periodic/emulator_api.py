"""Periodic settings sent to slurm-emulator's HTTP API instead of run through sacctmgr.

With ``periodic_limits.emulator_mode`` a development setup points the plugin at a
running slurm-emulator server (``emulator_base_url``); each message becomes one ``POST
<emulator_base_url>/api/apply-periodic-settings`` with the fields that server defines
(``resource_id``, ``fairshare``, ``grp_tres_mins``/``max_tres_mins``/``grp_tres``,
``qos_threshold``, ``qos_default``, ``qos_slowdown``, ``billing_weights``,
``reset_raw_usage``, ``cluster``). Limits go as SLURM TRES and TRES-minutes, converted
exactly as for sacctmgr, so the emulator ends where a cluster would.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from waldur_site_agent_slurm.errors import SlurmError
from waldur_site_agent_slurm.periodic.clock import START_HINT, TIMEOUT_SECONDS
from waldur_site_agent_slurm.periodic.settings import (
    LIMIT_KEYS,
    PeriodicSettings,
    Refusal,
    Threshold,
)

APPLY_PATH = "/api/apply-periodic-settings"


class EmulatorApiError(SlurmError):
    """slurm-emulator's API could not be reached or did not apply the settings."""


def apply_url(base_url: str) -> str:
    """Where the settings are posted."""
    return base_url.rstrip("/") + APPLY_PATH


def payload(
    account: str,
    settings: PeriodicSettings,
    *,
    reset: bool,
    threshold: Threshold | None,
    qos_names: tuple[str, str],
    weights: Mapping[str, float],
    cluster: str | None,
) -> dict[str, Any]:
    """The request body for ``account``: what is set, and only that."""
    body: dict[str, Any] = {"resource_id": account}
    if settings.fairshare is not None:
        body["fairshare"] = settings.fairshare
    if settings.limit_type is not None and settings.limits:
        body[LIMIT_KEYS[settings.limit_type]] = {e.tres: e.minutes for e in settings.limits}
    if threshold is not None:
        body["qos_threshold"] = {threshold.key: threshold.minutes}
    body["qos_default"], body["qos_slowdown"] = qos_names
    body["billing_weights"] = dict(weights)
    body["reset_raw_usage"] = reset
    body["cluster"] = cluster or "default"
    return body


def zero_limit_refusals(settings: PeriodicSettings) -> tuple[PeriodicSettings, tuple[Refusal, ...]]:
    """The settings without zero limits, and a refusal for each one left out.

    The API cannot tell what the account has now, so every zero limit would be a new
    block; ``allow_blocking_limits`` lets them through (the caller then skips this).
    """
    if settings.limit_type is None:
        return settings, ()
    kept = tuple(e for e in settings.limits if e.minutes != 0)
    refused = tuple(
        Refusal(
            f"{settings.limit_type} {e.tres}=0 ({LIMIT_KEYS[settings.limit_type]}.{e.key})",
            "would block the account; set periodic_limits.allow_blocking_limits to apply it",
        )
        for e in settings.limits
        if e.minutes == 0
    )
    return replace(settings, limits=kept), refused


def command_line(base_url: str, body: Mapping[str, Any]) -> str:
    """The request as it is listed in ``commands_executed``."""
    return f"POST {apply_url(base_url)} {json.dumps(body, sort_keys=True, separators=(',', ':'))}"


def post(base_url: str, body: Mapping[str, Any], timeout: float = TIMEOUT_SECONDS) -> None:
    """POST the settings; raise ``EmulatorApiError`` unless the emulator applied them."""
    url = apply_url(base_url)
    request = urllib.request.Request(  # noqa: S310 - http(s) checked by validation.http_url
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310
            answer = json.load(reply)
    except urllib.error.HTTPError as err:
        detail = err.read().decode(errors="replace")[:300]
        raise EmulatorApiError(
            f"slurm-emulator at {url} refused the settings: HTTP {err.code} {detail}"
        ) from err
    except (OSError, ValueError) as err:  # refused, timed out, reset, not JSON
        raise EmulatorApiError(
            f"slurm-emulator's API at {url} is not reachable ({err}); nothing applied. "
            f"{START_HINT}, or correct periodic_limits.emulator_base_url"
        ) from err
    if not isinstance(answer, Mapping) or answer.get("status") != "success":
        raise EmulatorApiError(f"slurm-emulator at {url} did not apply the settings: {answer!r}")
