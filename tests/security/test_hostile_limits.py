"""Limit values and periodic-settings payloads from Waldur and STOMP, under hypothesis.

A limit becomes exactly ``round_half_up(value × unit_factor)`` TRES-minutes on the
command line, or is refused with a ``BackendError`` and nothing is written. A periodic
payload is applied as exactly one ``modify`` of the fields it changes, or refused with
``success: false`` before any command runs.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from waldur_api_client.models.resource import Resource
from waldur_site_agent.backend.exceptions import BackendError

from tests.conftest import make_backend
from tests.fakes import TRES_OUTPUT, AccountFake, FakeRunner, assoc_lines
from tests.security import limit_values

SI = ["sacctmgr", "--immediate"]
ALLOC = assoc_lines("a_x|||p_y|1||||normal|", "a_x|alice|||1||||normal|")
ROOT = assoc_lines("root||||1||||normal|")
FACTORS = {"cpu": 60000, "mem": 61440, "gpu": 60}  # tests.conftest.COMPONENTS
TRES = {"cpu": "cpu", "mem": "mem", "gpu": "gres/gpu", "billing": "billing"}
MAX = 2**53
EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PERIODIC = {"enabled": True, "state_dir": "/nonexistent/periodic-state"}


def fake(assoc: str = ALLOC) -> AccountFake:
    """``show assoc`` shows the accounts of ``assoc`` as the writes leave them."""
    return AccountFake.of(assoc, **{"list tres": TRES_OUTPUT})


def writes(runner: FakeRunner) -> list[list[str]]:
    return [c for c in runner.calls if c[:2] == SI or c[0] == "scancel"]


def half_up(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


def expected_minutes(value: object, factor: int) -> int | None:
    """TRES-minutes for a Waldur amount, or None when the amount must be refused."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    minutes = half_up(Decimal(str(value)) * factor)
    return minutes if minutes <= MAX else None


def tres_setting(minutes: dict[str, int]) -> str:
    return ",".join(f"{tres}={value}" for tres, value in sorted(minutes.items()))


# ---- Waldur limits: orders, updates, per-user limits --------------------------------------


@EXAMPLES
@given(values=st.fixed_dictionaries({}, optional=dict.fromkeys(FACTORS, limit_values)))
def test_waldur_limits_become_exact_tres_minutes_or_nothing_is_written(
    values: dict[str, Any],
) -> None:
    runner = fake()
    backend = make_backend(runner)
    minutes = {TRES[k]: expected_minutes(v, FACTORS[k]) for k, v in values.items()}
    event("refused" if None in minutes.values() else "accepted")

    if None in minutes.values():
        with pytest.raises(BackendError, match="limit of"):
            backend.set_resource_limits("a_x", values)
        with pytest.raises(BackendError, match="limit of"):
            backend.set_resource_user_limits("a_x", "alice", values)
        assert writes(runner) == []
        return
    backend.set_resource_limits("a_x", values)
    backend.set_resource_user_limits("a_x", "alice", values)

    expected = []
    if minutes:
        where = ["where", "name=a_x"]
        expected = [
            [*SI, "modify", "account", *where, "set", f"GrpTRESMins={tres_setting(minutes)}"],
            [
                *SI,
                "modify",
                "user",
                "where",
                "name=alice",
                "account=a_x",
                "set",
                f"MaxTRESMins={tres_setting(minutes)}",
            ],
        ]
    assert writes(runner) == expected


@EXAMPLES
@given(value=limit_values)
def test_a_bad_limit_in_a_create_order_leaves_slurm_untouched(value: Any) -> None:
    runner = fake(ROOT)
    backend = make_backend(runner)
    resource = Resource.from_dict(
        {
            "uuid": "3f2b0c7e1d2a4b6c9f000123456789ab",
            "slug": "x",
            "project_slug": "y",
            "customer_slug": "z",
            "name": "n",
            "limits": {"cpu": 1, "gpu": value},
        }
    )
    minutes = expected_minutes(value, FACTORS["gpu"])
    event("accepted" if minutes is not None else "refused")
    if minutes is None:
        with pytest.raises(BackendError, match="limit of gpu"):
            backend.create_resource_with_id(resource, "a_x")
        assert writes(runner) == []  # not even the customer and project accounts
        return
    backend.create_resource_with_id(resource, "a_x")
    assert writes(runner)[-1][-1] == f"GrpTRESMins=cpu=60000,gres/gpu={minutes}"


# ---- periodic settings over STOMP ---------------------------------------------------------


@st.composite
def valid_payloads(draw: st.DrawFn) -> dict[str, Any]:
    """What Mastermind may send, with optional parts left out and unknown keys added."""
    payload: dict[str, Any] = {}
    if draw(st.booleans()):
        payload["fairshare"] = draw(st.integers(1, 2**31 - 1))
    if draw(st.booleans()):
        payload["limit_type"] = "GrpTRESMins"
    keys = draw(st.sets(st.sampled_from(sorted(TRES))))
    if keys or draw(st.booleans()):
        payload["grp_tres_mins"] = {
            k: draw(st.one_of(st.integers(1, 10**9), st.integers(1, 10**6).map(float)))
            for k in keys
        }
    if draw(st.booleans()):
        threshold = draw(st.integers(1, 10**6))
        payload["qos_threshold"] = {"billing": threshold}
        payload["grace_limit"] = {"billing": threshold + draw(st.integers(0, 10**5))}
    if draw(st.booleans()):
        payload["carryover_details"] = {"previous_period": "2026-04", "carryover_applied": True}
    payload["reset_raw_usage"] = False
    extra = draw(st.dictionaries(st.text(max_size=8), st.integers(), max_size=2))
    return {**{k: v for k, v in extra.items() if k not in KNOWN}, **payload}


KNOWN = {
    "fairshare",
    "limit_type",
    "grp_tres_mins",
    "max_tres_mins",
    "grp_tres",
    "qos_threshold",
    "grace_limit",
    "carryover_details",
    "reset_raw_usage",
}


def expected_fields(payload: dict[str, Any]) -> list[str]:
    """The ``set`` clause against an association with Fairshare 1 and no limits."""
    fields = []
    if payload.get("fairshare", 1) != 1:
        fields.append(f"Fairshare={payload['fairshare']}")
    limits = {}
    for key, sent in (payload.get("grp_tres_mins") or {}).items():
        factor = FACTORS.get(key)
        # Mastermind sends Waldur units × 60; billing is in billing-minutes already.
        exact = Fraction(int(sent), 60) * factor if factor else Fraction(int(sent))
        limits[TRES[key]] = math.floor(exact + Fraction(1, 2))
    if limits:
        fields.append(f"GrpTRESMins={tres_setting(limits)}")
    return fields


@EXAMPLES
@given(payload=valid_payloads())
def test_valid_periodic_settings_are_applied_as_one_exact_modify(payload: dict[str, Any]) -> None:
    runner = fake()
    backend = make_backend(runner, periodic_limits=PERIODIC)

    result = backend.apply_periodic_settings("a_x", payload)

    assert result["success"] is True, result
    fields = expected_fields(payload)
    line = ["sacctmgr", "--immediate", "modify", "account", "where", "name=a_x", "set", *fields]
    assert writes(runner) == ([line] if fields else [])
    assert result["commands_executed"] == ([" ".join(line)] if fields else [])


bad_numbers = st.one_of(
    st.integers(max_value=-1),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.5, 0.5, 1e300, 2**60]),
    st.floats(-1e9, 1e9).filter(lambda v: not v.is_integer()),
    st.booleans(),
    st.text(max_size=6),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
not_a_mapping = st.one_of(st.text(max_size=6), st.integers(), st.lists(st.integers(), max_size=2))
bad_thresholds = st.one_of(
    not_a_mapping,
    st.just({}),
    st.just({"billing": 1, "node": 1}),
    st.dictionaries(
        st.text(max_size=5).filter(lambda k: k not in {"billing", "node"}),
        st.integers(0, 100),
        min_size=1,
        max_size=1,
    ),
    bad_numbers.map(lambda v: {"billing": v}),
)

# What one corruption does to a valid payload: (changes, text the error must contain).
# Each entry maps the drawn limits to a strategy of those two.
CORRUPTIONS: dict[str, Any] = {
    "fairshare": lambda _: st.one_of(bad_numbers, st.sampled_from([0, 2**31])).map(
        lambda v: ({"fairshare": v}, "fairshare")
    ),
    "limit value": lambda limits: st.tuples(st.sampled_from(sorted(TRES)), bad_numbers).map(
        lambda kv: ({"grp_tres_mins": {**limits, kv[0]: kv[1]}}, f"grp_tres_mins.{kv[0]}")
    ),
    "unknown tres": lambda limits: (
        st.text(min_size=1, max_size=8)
        .filter(lambda k: k not in TRES)
        .map(lambda k: ({"grp_tres_mins": {**limits, k: 60}}, "unknown component"))
    ),
    "limits not a mapping": lambda _: not_a_mapping.map(
        lambda v: ({"grp_tres_mins": v}, "grp_tres_mins must be a mapping")
    ),
    "limit_type": lambda _: st.one_of(
        st.sampled_from(["MaxTRESMins", "GrpTRES"]), st.text(max_size=8)
    ).map(lambda v: ({"limit_type": v}, "limit_type")),
    "second limit key": lambda _: st.sampled_from(["max_tres_mins", "grp_tres"]).map(
        lambda k: ({k: {"cpu": 60}}, f"{k} present")
    ),
    "reset flag": lambda _: st.one_of(st.text(max_size=5), st.integers(), st.just([True])).map(
        lambda v: ({"reset_raw_usage": v}, "reset_raw_usage")
    ),
    "threshold": lambda _: bad_thresholds.map(
        lambda v: ({"qos_threshold": v, "grace_limit": None}, "qos_threshold")
    ),
    "carryover": lambda _: st.one_of(not_a_mapping, st.just({"previous_period": "April"})).map(
        lambda v: ({"carryover_details": v}, "carryover_details")
    ),
}


@st.composite
def corrupted(draw: st.DrawFn) -> tuple[str, Any, str]:
    """A valid payload with one thing broken: (what, payload, what the error must name)."""
    payload = draw(valid_payloads())
    limits = dict(payload.get("grp_tres_mins") or {"cpu": 6000})
    kind = draw(st.sampled_from(sorted(CORRUPTIONS)))
    changes, named = draw(CORRUPTIONS[kind](limits))
    return kind, {**payload, **changes}, named


@EXAMPLES
@given(case=corrupted())
def test_malformed_periodic_settings_are_refused_before_any_command(
    case: tuple[str, Any, str],
) -> None:
    kind, payload, named = case
    event(kind)
    runner = fake()
    backend = make_backend(runner, periodic_limits=PERIODIC)

    result = backend.apply_periodic_settings("a_x", payload)

    assert result["success"] is False, (kind, payload, result)
    assert "nothing applied" in result["error"], result
    assert named in result["error"], (kind, result["error"])
    assert result["commands_executed"] == []
    assert runner.calls == []


@given(payload=st.one_of(st.none(), not_a_mapping, st.booleans(), st.floats()))
@settings(max_examples=100, deadline=None)
def test_a_payload_that_is_not_a_mapping_is_refused(payload: Any) -> None:
    runner = fake()
    result = make_backend(runner, periodic_limits=PERIODIC).apply_periodic_settings("a_x", payload)
    assert result["success"] is False
    assert "must be a mapping" in result["error"]
    assert runner.calls == []
