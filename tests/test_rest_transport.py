"""The slurmrestd transport: auth headers, token re-read, error mapping, timeouts, sockets."""

from __future__ import annotations

import json
import logging
import os
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from tests.rest_captures import Replay, capture
from waldur_site_agent_slurm.errors import (
    InvalidValueError,
    SlurmCommandError,
    SlurmConfigError,
    SlurmParseError,
    SlurmTimeoutError,
    SlurmUnavailableError,
)
from waldur_site_agent_slurm.slurm.answers import Answer
from waldur_site_agent_slurm.slurm.rest import RestSettings, RestTransport

ACCOUNTS = "/slurmdb/v0.0.42/accounts/"
GOOD = "good.token.value"
BAD = "stale.token.value"
TOKEN_VARIABLE = "TEST_SLURM_JWT"  # noqa: S105 - a variable name, not a secret


def settings(path: Path, **overrides: object) -> RestSettings:
    values: dict[str, object] = {
        "url": "http://127.0.0.1:7820",
        "api_version": "v0.0.42",
        "username": "root",
        "token_file": path,
    }
    values.update(overrides)
    return RestSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(f"SLURM_JWT={GOOD}\n")
    return path


def only_token(token: str, refused: str) -> Replay:
    """A server whose accounts answer needs ``token``; any other gets capture ``refused``."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("X-SLURM-USER-TOKEN") == token:
            return capture("get_accounts").response()
        return capture(refused).response()

    return Replay().on("GET", ACCOUNTS, handler)


def test_sends_user_name_and_token_from_the_file(token_file: Path) -> None:
    replay = Replay().replay("get_accounts")
    answer = RestTransport(settings(token_file), transport=replay.transport()).request(
        "GET", ACCOUNTS
    )
    assert answer.data["accounts"][0]["name"] == "hpc_alloc1"
    assert replay.sent[0].headers["X-SLURM-USER-NAME"] == "root"
    assert replay.sent[0].headers["X-SLURM-USER-TOKEN"] == GOOD


def test_token_from_an_environment_variable(
    token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, GOOD)
    replay = only_token(GOOD, "err_no_token")
    rest = RestTransport(
        settings(token_file, token_file=None, token_env=TOKEN_VARIABLE),
        transport=replay.transport(),
    )
    assert rest.request("GET", ACCOUNTS).status == 200


@pytest.mark.parametrize("refused", ["err_no_token", "err_bad_token"])
def test_a_refused_token_is_read_again_and_the_request_sent_once_more(
    token_file: Path, refused: str
) -> None:
    """401 from slurmrestd, or 502/7000 "authentication error" from slurmdbd behind it."""
    token_file.write_text(BAD)
    replay = Replay()

    def handler(request: httpx.Request) -> httpx.Response:
        token_file.write_text(GOOD)  # fixed while the refused request is in flight
        if request.headers["X-SLURM-USER-TOKEN"] == GOOD:
            return capture("get_accounts").response()
        return capture(refused).response()

    replay.on("GET", ACCOUNTS, handler)
    rest = RestTransport(settings(token_file), transport=replay.transport())
    assert rest.request("GET", ACCOUNTS).status == 200
    assert [r.headers["X-SLURM-USER-TOKEN"] for r in replay.sent] == [BAD, GOOD]


def test_a_token_refused_twice_is_an_error_that_does_not_show_it(
    token_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token_file.write_text(BAD)
    replay = only_token(GOOD, "err_no_token")
    rest = RestTransport(settings(token_file), transport=replay.transport())
    with caplog.at_level(logging.DEBUG), pytest.raises(SlurmCommandError) as err:
        rest.request("GET", ACCOUNTS)
    assert len(replay.sent) == 2
    assert "refused the token of user root" in str(err.value)
    assert BAD not in str(err.value) and BAD not in repr(err.value.__dict__)
    assert BAD not in caplog.text


def test_a_missing_token_file_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    rest = RestTransport(settings(tmp_path / "nothing"), transport=Replay().transport())
    with pytest.raises(SlurmConfigError, match=r"cannot read the token file .*nothing"):
        rest.request("GET", ACCOUNTS)


def test_errors_in_a_200_answer_are_an_error(token_file: Path) -> None:
    body = json.loads(capture("get_ping").body)
    body["errors"] = [{"error_number": 9000, "error": "Unspecified error", "description": "x"}]
    replay = Replay().on("GET", ACCOUNTS, lambda _r: httpx.Response(200, json=body))
    rest = RestTransport(settings(token_file), transport=replay.transport())
    with pytest.raises(SlurmCommandError, match="Unspecified error") as err:
        rest.request("GET", ACCOUNTS)
    assert err.value.answer is Answer.FAILED
    assert not isinstance(err.value, SlurmUnavailableError)


def test_active_jobs_answer_is_classified_as_on_the_command_line(token_file: Path) -> None:
    replay = Replay().replay("delete_account_with_running_job")
    rest = RestTransport(settings(token_file), transport=replay.transport())
    with pytest.raises(SlurmCommandError, match="Job\\(s\\) active") as err:
        rest.request("DELETE", "/slurmdb/v0.0.42/account/hpc_alloc2")
    assert err.value.answer is Answer.JOBS_ACTIVE
    assert err.value.returncode == 500


def test_slurmdbd_down_behind_slurmrestd_is_unavailable(token_file: Path) -> None:
    body = json.loads(capture("err_bad_token").body)
    body["errors"][0]["description"] = "Failed to open slurmdbd connection"
    replay = Replay().on("GET", ACCOUNTS, lambda _r: httpx.Response(502, json=body))
    rest = RestTransport(settings(token_file), transport=replay.transport())
    with pytest.raises(SlurmUnavailableError) as err:
        rest.request("GET", ACCOUNTS)
    assert err.value.answer is Answer.UNAVAILABLE
    assert len(replay.sent) == 1  # not an authentication failure: no retry


def test_not_modified_is_an_unchanged_answer(token_file: Path) -> None:
    replay = Replay().replay("delete_account_nonexistent")
    rest = RestTransport(settings(token_file), transport=replay.transport())
    assert rest.request("DELETE", "/slurmdb/v0.0.42/account/hpc_nosuch").unchanged


def test_an_unknown_path_is_a_command_error(token_file: Path) -> None:
    replay = Replay().replay("err_unknown_path")
    rest = RestTransport(settings(token_file), transport=replay.transport())
    with pytest.raises(SlurmCommandError, match="404: Unable find requested URL") as err:
        rest.request("GET", "/slurmdb/v0.0.42/nosuch/")
    assert not isinstance(err.value, SlurmUnavailableError)


def test_a_200_that_is_not_json_is_a_parse_error(token_file: Path) -> None:
    replay = Replay().on("GET", ACCOUNTS, lambda _r: httpx.Response(200, text="<html>"))
    rest = RestTransport(settings(token_file), transport=replay.transport())
    with pytest.raises(SlurmParseError):
        rest.request("GET", ACCOUNTS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_slurmrestd_is_slurm_unavailable(token_file: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    rest = RestTransport(settings(token_file, url=url))
    with pytest.raises(SlurmUnavailableError, match="cannot be reached") as err:
        rest.request("GET", ACCOUNTS)
    assert err.value.answer is Answer.UNAVAILABLE


@pytest.fixture
def hanging_server() -> Iterator[str]:
    """A TCP server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def test_a_hanging_slurmrestd_times_out(token_file: Path, hanging_server: str) -> None:
    rest = RestTransport(settings(token_file, url=hanging_server, timeout=0.3))
    started = time.monotonic()
    with pytest.raises(SlurmTimeoutError, match=r"did not answer within 0\.3s"):
        rest.request("GET", ACCOUNTS)
    assert time.monotonic() - started < 5


class _Accounts(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        found = capture("get_accounts")
        self.send_response(200 if self.headers["X-SLURM-USER-TOKEN"] == GOOD else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(found.body)))
        self.end_headers()
        self.wfile.write(found.body)

    def address_string(self) -> str:
        return "unix"

    def log_message(self, *args: object) -> None:
        pass


def test_a_unix_socket_url_reaches_slurmrestd_there(token_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "restd.socket"
    server = socketserver.UnixStreamServer(str(path), _Accounts)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        rest = RestTransport(settings(token_file, url=f"unix://{path}"))
        assert rest.request("GET", ACCOUNTS).data["accounts"][0]["name"] == "hpc_alloc1"
        assert rest.request("GET", ACCOUNTS).status == 200  # the connection is reused
    finally:
        server.shutdown()
        server.server_close()


def openapi(*versions: str) -> httpx.Response:
    paths = {}
    for v in versions:
        paths[f"/slurmdb/{v}/accounts/"] = {}
        paths[f"/slurm/{v}/jobs/"] = {}
    return httpx.Response(200, json={"openapi": "3.0.2", "paths": paths})


def test_an_offered_version_passes_the_start_up_check(token_file: Path) -> None:
    replay = Replay().on("GET", "/openapi/v3", lambda _r: openapi("v0.0.41", "v0.0.42"))
    RestTransport(settings(token_file), transport=replay.transport()).check_version()


def test_a_version_the_server_does_not_offer_fails_at_start_up(token_file: Path) -> None:
    replay = Replay().on("GET", "/openapi/v3", lambda _r: openapi("v0.0.40", "v0.0.41"))
    rest = RestTransport(settings(token_file), transport=replay.transport())
    with pytest.raises(SlurmConfigError, match=r"does not offer data parser v0\.0\.42") as err:
        rest.check_version()
    assert "one of v0.0.40, v0.0.41" in str(err.value)


def test_slurm_22_05_slurmrestd_is_refused_clearly(token_file: Path) -> None:
    replay = Replay().on("GET", "/openapi/v3", lambda _r: openapi("v0.0.37", "v0.0.38"))
    rest = RestTransport(settings(token_file), transport=replay.transport())
    with pytest.raises(SlurmConfigError, match=r"offers: v0.0.37, v0.0.38\); this plugin supports"):
        rest.check_version()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"url": "ftp://host"}, "rest_api.url"),
        ({"url": "unix://relative.sock"}, "rest_api.url"),
        ({"url": "http://user:pw@host:1"}, "rest_api.url"),
        ({"api_version": "v0.0.38"}, "not supported"),
        ({"api_version": "v0.0.42/../x"}, "data-parser version"),
        ({"username": "root;x"}, "rest_api.username"),
        ({"token_env": "X"}, "exactly one of token_file and token_env"),
        ({"token_file": None}, "exactly one of token_file and token_env"),
        ({"timeout": 0}, "rest_api.timeout"),
    ],
)
def test_bad_settings_are_refused_before_any_request(
    token_file: Path, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises((InvalidValueError, SlurmConfigError), match=message):
        settings(token_file, **overrides)


def test_token_env_must_name_a_variable(token_file: Path) -> None:
    with pytest.raises(SlurmConfigError, match="not an environment variable name"):
        settings(token_file, token_file=None, token_env=TOKEN_VARIABLE.replace("_", "-"))


def test_an_empty_token_environment_variable_is_a_config_error(
    token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_VARIABLE, raising=False)
    rest = RestTransport(
        settings(token_file, token_file=None, token_env=TOKEN_VARIABLE),
        transport=Replay().transport(),
    )
    with pytest.raises(SlurmConfigError, match="token_env TEST_SLURM_JWT holds no token"):
        rest.request("GET", ACCOUNTS)
    assert TOKEN_VARIABLE not in os.environ
