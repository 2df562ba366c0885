"""The diagnostic in-process against a backend's SLURM: expectations, then the same steps applied.

Shared by the emulator and real SLURM tiers, which build the backend; Waldur's side is a
``ResourceView`` made from the same resource the backend created the allocation for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from waldur_api_client.models.resource import Resource

from waldur_site_agent_slurm.backend import SlurmBackend
from waldur_site_agent_slurm.diagnose.expected import Diagnoser
from waldur_site_agent_slurm.diagnose.model import AccountDiagnosis, FixResult, ResourceView, Step
from waldur_site_agent_slurm.diagnose.model import TeamMember as Member
from waldur_site_agent_slurm.diagnose.service import apply_steps
from waldur_site_agent_slurm.periodic.service import PeriodicService
from waldur_site_agent_slurm.slurm.client import SlurmClient


def view_of(res: Resource, users: tuple[str, ...] = (), **flags: Any) -> ResourceView:
    """Waldur's view of ``res``: its slugs and limits, ``users`` in state OK, ``flags``."""
    values: dict[str, Any] = {
        "uuid": str(res.uuid),
        "name": str(res.name),
        "backend_id": str(res.backend_id),
        "state": "OK",
        "limits": dict(res.limits.to_dict()) if res.limits else {},
        "paused": False,
        "downscaled": False,
        "restrict_member_access": False,
        "project_uuid": "cd" * 16,
        "project_slug": str(res.project_slug),
        "project_name": str(res.project_name),
        "customer_slug": str(res.customer_slug),
        "customer_name": str(res.customer_name),
        "team": tuple(Member(user, "OK") for user in users),
    }
    return ResourceView(**{**values, **flags})


def diagnose(backend: SlurmBackend, view: ResourceView) -> AccountDiagnosis:
    """Diagnose ``view``'s allocation as the command-line tool does (lever included)."""
    periodic = PeriodicService(backend.client, backend.settings)
    diagnoser = Diagnoser(
        backend.settings,
        backend.client,
        periodic,
        None,
        {},
        lever=backend.submit_lever(),
    )
    return diagnoser.diagnose(view.backend_id, backend.client.snapshot(), view)


def fix(backend: SlurmBackend, diagnosis: AccountDiagnosis) -> FixResult:
    """Apply the diagnosis's steps through the backend's runner, as ``--fix`` does."""
    result = apply_steps(backend.client, diagnosis.steps)
    assert result.error is None, result.error
    return result


def failed(diagnosis: AccountDiagnosis) -> dict[str, tuple[str, str]]:
    """The mismatching checks: field → (actual, expected)."""
    return {c.field: (c.actual, c.expected) for c in diagnosis.issues}


def argvs(steps: Iterable[Step], cluster_name: str | None = None) -> list[list[str]]:
    """The sacctmgr/scancel command line of each step, as the command-line client makes it."""
    client = SlurmClient(cluster_name=cluster_name)
    return [client.argv(step.operation) for step in steps]
