"""Scenario files: the demo loads, and every mistake names its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.standin.conftest import EXAMPLE_CONFIG, SCENARIO, demo_data
from waldur_site_agent_slurm.devtools.standin import ScenarioError, load_scenario
from waldur_site_agent_slurm.devtools.standin.scenario import parse_scenario


def test_the_demo_scenario_matches_the_example_agent_config() -> None:
    scenario = load_scenario(SCENARIO)
    offering = yaml.safe_load(EXAMPLE_CONFIG.read_text())["offerings"][0]

    assert scenario.offering.uuid == offering["waldur_offering_uuid"]
    assert scenario.token(offering["waldur_api_token"]) is not None
    assert [c.type for c in scenario.offering.components] == list(offering["backend_components"])
    for component in scenario.offering.components:
        configured = offering["backend_components"][component.type]
        assert component.measured_unit == configured["measured_unit"]
        assert component.unit_factor == configured["unit_factor"]


def test_the_demo_scenario_has_the_documented_content() -> None:
    scenario = load_scenario(SCENARIO)
    staff, user = scenario.tokens
    assert (staff.token, staff.username, staff.is_staff, staff.provider) == (
        "demo-offering-token",
        "site-agent",
        True,
        True,
    )
    assert (user.token, user.is_staff, user.provider) == ("demo-user-token", False, False)
    assert [p.slug for c in scenario.customers for p in c.projects] == ["hydro-sim", "astro-sky"]
    assert {u.username: u.state for u in scenario.offering_users} == {
        "alice": "OK",
        "bob": "OK",
        "carol": "OK",
        "dave": "Requested",
    }
    assert [(r.slug, r.state, r.backend_id) for r in scenario.resources] == [
        ("flood-model", "Creating", ""),
        ("sky-survey", "Creating", ""),
    ]
    assert [(o.type, o.state, o.limits) for o in scenario.orders] == [
        ("Create", "pending-provider", {"cpu": 100, "mem": 200, "gpu": 10})
    ] * 2


def broken(change: Any) -> dict[str, Any]:
    data = demo_data()
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["offering"].pop("uuid"), "offering.uuid: Field required"),
        (lambda d: d["tokens"][0].update(colour="red"), "tokens.0.colour"),
        (lambda d: d["offering"].update(uuid=12345), "offering.uuid"),
        (lambda d: d["resources"][0].update(state="Happy"), "resources.0.state"),
        (lambda d: d["resources"][0].update(project="0" * 32), "resources.0.project: no project"),
        (lambda d: d["orders"][0].update(limits={"ram": 1}), "orders.0.limits: unknown component"),
        (lambda d: d["orders"][1].update(uuid=d["orders"][0]["uuid"]), "orders: "),
        (lambda d: d["offering"]["components"][0].update(billing_type="fixed"), "billing_type"),
    ],
)
def test_a_bad_scenario_names_the_key(change: Any, expected: str) -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(broken(change), "test.yaml")
    assert expected in str(err.value)
    assert str(err.value).startswith("test.yaml: invalid scenario")


def test_uuids_may_be_written_with_dashes(tmp_path: Path) -> None:
    data = demo_data()
    data["offering"]["uuid"] = "d0e1f2a3-b4c5-4d6e-8f9a-0b1c2d3e4f50"
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_scenario(path).offering.uuid == "d0e1f2a3b4c54d6e8f9a0b1c2d3e4f50"


def test_missing_and_malformed_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read scenario file"):
        load_scenario(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tokens: [unclosed\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(bad)
    bad.write_text("- just a list\n")
    with pytest.raises(ScenarioError, match="top level must be a mapping"):
        load_scenario(bad)
