"""Fields of a Waldur resource as the allocation domain reads them."""

from __future__ import annotations

from typing import Any

from waldur_api_client.models.resource import Resource as WaldurResource


def text(value: object) -> str:
    """A string field of a Waldur model ('' when the API left it unset)."""
    return value if isinstance(value, str) else ""


def limits_of(waldur_resource: WaldurResource) -> dict[str, Any]:
    """The resource's limits as a plain dict ({} when it has none)."""
    raw = getattr(waldur_resource, "limits", None)
    if raw is None or not hasattr(raw, "to_dict"):
        return dict(raw) if isinstance(raw, dict) else {}
    return dict(raw.to_dict())
