"""Emulator tier, REST mode: slurm-emulator's slurmrestd, one process per release per module.

Each module gets one ``slurmrestd`` emulator per data-parser version it serves (24.11:
v0.0.42, 25.05: v0.0.43) with its own state, on a free port of 127.0.0.1; the tests of
a module share it and use account names of their own. v0.0.40 and v0.0.41 exist only
on a real slurmrestd (the emulator has no 24.05): the REST tier and the captured answers
of tests/test_rest_client.py cover them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from waldur_site_agent_slurm.devtools.restd import API_VERSIONS, RestdEmulator
from waldur_site_agent_slurm.rest_client import RestSettings, SlurmRestClient

pytestmark = pytest.mark.emulator
ADMIN = "root"


@pytest.fixture(scope="module", params=sorted(API_VERSIONS))
def restd(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RestdEmulator]:
    """The module's slurmrestd emulator of one release."""
    with RestdEmulator(request.param, tmp_path_factory.mktemp("restd")) as server:
        yield server


@pytest.fixture
def emulated(restd: RestdEmulator, monkeypatch: pytest.MonkeyPatch) -> RestdEmulator:
    """The emulator, with this process's seeding helpers and CLI tools on its state."""
    for key, value in restd.env.items():
        monkeypatch.setenv(key, value)
    return restd


def token_file(directory: Path, token: str = "emulated.jwt.token") -> Path:  # noqa: S107
    path = directory / "slurmrestd.token"
    path.write_text(f"SLURM_JWT={token}\n")
    return path


def rest_settings(restd: RestdEmulator, token: Path, **overrides: object) -> RestSettings:
    values: dict[str, object] = {
        "url": restd.url,
        "api_version": restd.api_version,
        "username": ADMIN,
        "token_file": token,
        "timeout": 10,
    }
    values.update(overrides)
    return RestSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def client(emulated: RestdEmulator, tmp_path: Path) -> Iterator[SlurmRestClient]:
    """A SlurmRestClient of the emulator's cluster over its slurmrestd."""
    rest = SlurmRestClient(rest_settings(emulated, token_file(tmp_path)), "default")
    yield rest
    rest.close()


@pytest.fixture
def account() -> str:
    """An account name no other test of the module uses."""
    return f"rest{uuid.uuid4().hex[:8]}"
