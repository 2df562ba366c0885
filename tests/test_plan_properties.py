"""Properties of the periodic-settings plan over random sequences of Waldur messages.

Whatever the association holds before (any Fairshare, any GrpTRESMins), one apply of a
message brings SLURM to what the message asks for, and applying the same message again
writes nothing: no modify and no second RawUsage reset in the same period. A sequence of
messages (periods moving on, re-sent and out-of-order ones among them) keeps both true
after every step. SLURM is the association fake, which shows what was written.
"""

from __future__ import annotations

from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_periodic import backend, fake
from waldur_site_agent_slurm.slurm.parser import parse_tres

TRES = {"cpu": "cpu", "mem": "mem", "gpu": "gres/gpu"}
FACTORS = {"cpu": 1000, "mem": 1024, "gpu": 1}  # Mastermind's units → TRES-minutes
PERIODS = ("2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4")

slurm_tres = st.dictionaries(
    st.sampled_from(["cpu", "mem", "gres/gpu", "billing"]), st.integers(0, 10**9), max_size=4
).map(lambda tres: ",".join(f"{k}={v}" for k, v in sorted(tres.items())))

messages = st.fixed_dictionaries(
    {"limit_type": st.just("GrpTRESMins")},
    optional={
        "fairshare": st.integers(1, 10_000),
        "grp_tres_mins": st.dictionaries(
            st.sampled_from(sorted(TRES)), st.integers(1, 10**5), min_size=1
        ),
        "reset_raw_usage": st.booleans(),
        "carryover_details": st.sampled_from(PERIODS).map(lambda p: {"previous_period": p}),
    },
)


def writes(result: dict[str, Any]) -> list[str]:
    return list(result["commands_executed"])


@settings(max_examples=60, deadline=None)
@given(
    fairshare=st.integers(1, 10_000).map(str),
    grp=slurm_tres,
    sequence=st.lists(messages, min_size=1, max_size=6),
)
def test_each_message_converges_in_one_apply_and_a_second_apply_writes_nothing(
    fairshare: str, grp: str, sequence: list[dict[str, Any]]
) -> None:
    runner = fake(fairshare=fairshare, grp=grp)
    with TemporaryDirectory() as state:
        agent = backend(runner, Path(state), tres_billing_enabled=False)
        resets: dict[str, int] = {}
        for message in sequence:
            first = agent.apply_periodic_settings("alloc-1", message)
            assert first["success"] is True, first["error"]
            held = runner.accounts["alloc-1"]
            if "fairshare" in message:
                assert held["Fairshare"] == str(message["fairshare"])
            stored = parse_tres(held["GrpTRESMins"])
            for key, value in message.get("grp_tres_mins", {}).items():
                assert stored[TRES[key]] == value * FACTORS[key]
            period = first["period"]
            resets[period] = resets.get(period, 0) + first["raw_usage_reset"]["performed"]

            again = agent.apply_periodic_settings("alloc-1", message)
            assert again["success"] is True, again["error"]
            assert writes(again) == [], again["actions"]
            assert again["raw_usage_reset"]["performed"] is False
        assert all(count <= 1 for count in resets.values()), resets
