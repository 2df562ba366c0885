"""Prepaid months and target_components on the real SLURM, read back with sacctmgr."""

from __future__ import annotations

import pytest

from tests.conftest import COMPONENTS
from tests.real.conftest import assoc_rows, stack
from tests.test_backend_commands import resource
from tests.test_limits_prepaid_targets import PREPAID, TARGETS, prepaid_resource
from waldur_site_agent_slurm.backend import SlurmBackend

pytestmark = pytest.mark.real_slurm


def backend(components: dict[str, dict[str, object]]) -> SlurmBackend:
    settings = {
        "slurm_bin_path": stack().bin,
        "cluster_name": stack().cluster,
        "enable_user_homedir_account_creation": False,
    }
    return SlurmBackend(settings, {k: dict(v) for k, v in components.items()})


def grp_tres_mins(account: str) -> str:
    return next(row[3] for row in assoc_rows(account) if not row[1])


def test_prepaid_limit_is_months_and_follows_the_end_date(names: dict[str, str]) -> None:
    account = names["slug"]
    backend(PREPAID).create_resource_with_id(prepaid_resource("2026-06-15", **names), account)
    assert grp_tres_mins(account) == "cpu=1800000,gres/gpu=300"
    backend(PREPAID).sync_resource_end_date(prepaid_resource("2026-12-15", **names), None)
    assert grp_tres_mins(account) == "cpu=3960000,gres/gpu=300"
    assert backend(PREPAID).get_resource_limits(account) == {"cpu": 66, "gpu": 5}


def test_target_components_limit_every_target(names: dict[str, str]) -> None:
    account = names["slug"]
    res = resource(limits={"compute": 10, "gpu": 2}, **names)
    backend(TARGETS).create_resource_with_id(res, account)
    assert grp_tres_mins(account) == "billing=1200,cpu=600,gres/gpu=120"
    assert backend(TARGETS).get_resource_limits(account) == {"compute": 10, "gpu": 2}


def test_a_memory_limit_sacctmgr_shows_with_decimals_reads_back_exactly(
    names: dict[str, str],
) -> None:
    """128 GB-hours × 61440 is 7864320 MB, which sacctmgr shows as ``mem=7.50T``."""
    account = names["slug"]
    limits = {"cpu": 1, "mem": 128, "gpu": 2}
    backend(COMPONENTS).create_resource_with_id(resource(limits=limits, **names), account)
    assert grp_tres_mins(account) == "cpu=60000,gres/gpu=120,mem=7.50T"
    assert backend(COMPONENTS).get_resource_limits(account) == limits
