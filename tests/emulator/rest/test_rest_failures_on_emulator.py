"""REST mode's failures against slurmrestd emulator processes of its own.

slurmrestd killed between two requests of one cycle, and a token that expired and was
renewed in its file while the agent ran (the emulator checks HS256 tokens when it has
a key, as real ``rest_auth/jwt`` does). A hanging server and ``errors[]`` in a 200 are
in tests/test_rest_transport.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from emulator.api.slurmrestd.auth import encode_jwt_hs256
from waldur_site_agent.backend.exceptions import BackendNotReadyError

from tests.emulator.rest.conftest import ADMIN, rest_settings, token_file
from waldur_site_agent_slurm.devtools.restd import RestdEmulator
from waldur_site_agent_slurm.errors import SlurmCommandError, SlurmUnavailableError
from waldur_site_agent_slurm.rest_client import SlurmRestClient
from waldur_site_agent_slurm.slurm.answers import Answer

pytestmark = pytest.mark.emulator
RELEASE = "24.11"
KEY = "emulated-jwt-key"


def jwt(*, expired: bool = False) -> str:
    issued = int(time.time()) - (7200 if expired else 0)
    return encode_jwt_hs256(ADMIN, lifespan=3600, key=KEY, now=issued)


@pytest.fixture(scope="module")
def checking_restd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestdEmulator]:
    """A slurmrestd emulator that verifies tokens with ``KEY``."""
    state = tmp_path_factory.mktemp("restd-jwt")
    with RestdEmulator(RELEASE, state, extra_env={"SLURM_EMULATOR_JWT_KEY": KEY}) as server:
        yield server


def test_slurmrestd_killed_mid_cycle_is_slurm_unavailable(tmp_path: Path) -> None:
    with RestdEmulator(RELEASE, tmp_path) as restd:
        client = SlurmRestClient(rest_settings(restd, token_file(tmp_path)), "default")
        assert "root" in client.snapshot().accounts
        restd.stop()
        with pytest.raises(SlurmUnavailableError, match="cannot be reached") as err:
            client.list_accounts()
    assert err.value.answer is Answer.UNAVAILABLE
    assert isinstance(err.value, BackendNotReadyError)  # the framework retries next cycle


def test_a_token_renewed_in_its_file_is_picked_up_after_a_401(
    checking_restd: RestdEmulator, tmp_path: Path
) -> None:
    token = token_file(tmp_path, jwt(expired=True))
    client = SlurmRestClient(rest_settings(checking_restd, token), "default")
    with pytest.raises(SlurmCommandError, match="refused the token of user root") as err:
        client.list_accounts()
    assert err.value.returncode == 401
    assert not isinstance(err.value, SlurmUnavailableError)
    token.write_text(f"SLURM_JWT={jwt()}\n")  # as a cron job renewing the token does
    assert "root" in {a.name for a in client.list_accounts()}
