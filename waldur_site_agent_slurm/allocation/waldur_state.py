"""An Erred resource's state read from Waldur again before the framework sets it OK.

A membership cycle lists the offering's resources once and then works on each in turn,
minutes later on a large offering. At the end of a resource's pass, waldur-site-agent
1.0.7 asks Waldur to set it OK when the listed copy says Erred. An order placed or
finished since the listing makes that copy stale: a terminate order (the resource
Terminating) would have its resource set back to OK under it, and a finished one (the
resource Terminated) has Waldur refuse the request, which the framework answers by
marking the Terminated resource Erred, for good, since no later cycle lists it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from waldur_api_client.api.marketplace_provider_resources import (
    marketplace_provider_resources_retrieve,
)
from waldur_api_client.models.resource import Resource as WaldurResource
from waldur_api_client.models.resource_state import ResourceState
from waldur_site_agent.backend import logger

SETTLED = (ResourceState.OK, ResourceState.ERRED)


def refresh_erred(waldur_resource: WaldurResource, waldur_rest_client: Any) -> bool:
    """Read an Erred resource's state from Waldur again; whether it is OK or Erred there.

    The listed copy takes the state read, so the framework sets the resource OK only
    while Waldur still has it Erred. A resource listed in another state is not read
    (the framework sets nothing for it) and counts as settled: one request per Erred
    resource and cycle. A Waldur error while reading is raised as it is (the framework
    keeps the resource's state on a transient one).
    """
    if waldur_resource.state != ResourceState.ERRED:
        return True
    if not isinstance(waldur_resource.uuid, UUID):
        return True  # not a resource Waldur listed: nothing to read again
    fresh = marketplace_provider_resources_retrieve.sync(
        uuid=waldur_resource.uuid, client=waldur_rest_client
    )
    waldur_resource.state = fresh.state
    if fresh.state in SETTLED:
        return True
    logger.info(
        "Resource %s (%s) is %s in Waldur since this cycle listed it Erred: an order works "
        "on it, so it is not set OK",
        waldur_resource.name,
        waldur_resource.backend_id,
        fresh.state,
    )
    return False
