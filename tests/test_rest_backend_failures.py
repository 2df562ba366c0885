"""SlurmBackend in REST mode when slurmrestd fails: away, slow, refusing, or saying no.

A small in-memory slurmrestd (an ``httpx.MockTransport``) keeps accounts and their
parents; a plain socket that never answers stands for a hanging server.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from waldur_site_agent.backend.exceptions import BackendError, BackendNotReadyError

from tests.conftest import COMPONENTS
from tests.test_backend_commands import resource
from waldur_site_agent_slurm.backend import SlurmBackend
from waldur_site_agent_slurm.errors import (
    SlurmCommandError,
    SlurmConfigError,
    SlurmUnavailableError,
)
from waldur_site_agent_slurm.rest_client import SlurmRestClient
from waldur_site_agent_slurm.slurm.modes import rest_settings
from waldur_site_agent_slurm.slurm.runner import CommandRunner

VERSION = "v0.0.42"
DB = f"/slurmdb/{VERSION}/"
ALLOCATION = {"customer_slug": "cust-1", "project_slug": "proj-1", "limits": {}}


class Slurmrestd:
    """Accounts with their parents, served as slurmrestd answers them."""

    def __init__(self) -> None:
        self.accounts: dict[str, str] = {"root": ""}
        self.fail: Callable[[httpx.Request], httpx.Response | None] = lambda request: None
        self.tokens: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.tokens.append(request.headers["X-SLURM-USER-TOKEN"])
        failed = self.fail(request)
        if failed is not None:
            return failed
        path = request.url.path
        if path == "/openapi/v3":
            return answer({"paths": {f"{DB}ping/": {}, f"/slurm/{VERSION}/ping/": {}}})
        tail = path.removeprefix(DB)
        if request.method == "GET":
            return answer(self.reads()[tail])
        if request.method == "POST" and tail == "accounts_association/":
            body = json.loads(request.content)
            [name] = body["association_condition"]["accounts"]
            if name in self.accounts:
                return httpx.Response(304)
            self.accounts[name] = body["association_condition"]["association"]["parent"]
            return answer({})
        if request.method == "DELETE" and tail == "associations/":
            removed = self.accounts.pop(request.url.params["account"], None)
            return answer({"removed_associations": [] if removed is None else ["removed"]})
        raise AssertionError(f"unexpected {request.method} {path}")

    def reads(self) -> dict[str, dict[str, Any]]:
        """The answers of the GET requests a create and a ping make."""
        return {
            "associations/": {"associations": [assoc(a, p) for a, p in self.accounts.items()]},
            "clusters/": {"clusters": [{"name": "hpc"}]},
            "tres/": {"TRES": [{"type": "cpu"}, {"type": "mem"}, {"type": "gres", "name": "gpu"}]},
        }


def answer(data: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={**data, "errors": []})


def assoc(account: str, parent: str) -> dict[str, Any]:
    return {
        "account": account,
        "user": "",
        "parent_account": parent,
        "shares_raw": 1,
        "qos": ["normal"],
        "default": {"qos": ""},
    }


@pytest.fixture
def token(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("old-token\n")
    return path


def rest_backend(
    url: str, token: Path, transport: httpx.BaseTransport | None = None
) -> SlurmBackend:
    rest_api = {"url": url, "api_version": VERSION, "username": "root", "token_file": str(token)}
    backend = SlurmBackend(
        {"execution_mode": "rest", "cluster_name": "hpc", "rest_api": {**rest_api, "timeout": 0.5}},
        {k: dict(v) for k, v in COMPONENTS.items()},
    )
    if transport is not None:
        backend.client = SlurmRestClient(
            rest_settings(backend.settings), "hpc", transport=transport
        )
    return backend


def test_slurmrestd_away_mid_order_makes_the_order_wait_and_the_retry_adopts(
    token: Path,
) -> None:
    server = Slurmrestd()

    def away_for_the_allocation(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and b"alloc-1" in request.content:
            raise httpx.ConnectError("connection refused", request=request)
        return None

    server.fail = away_for_the_allocation
    backend = rest_backend("http://slurmrestd:6820", token, httpx.MockTransport(server))
    with pytest.raises(SlurmUnavailableError) as err:
        backend.create_resource_with_id(resource(**ALLOCATION), "alloc-1")
    assert isinstance(err.value, BackendNotReadyError)  # the framework leaves the order
    assert "cannot be reached" in str(err.value)
    assert server.accounts == {"root": "", "cust-1": "root", "proj-1": "cust-1"}

    server.fail = lambda request: None
    backend = rest_backend("http://slurmrestd:6820", token, httpx.MockTransport(server))
    backend.create_resource_with_id(resource(**ALLOCATION), "alloc-1")
    assert server.accounts["alloc-1"] == "proj-1"


def test_an_errors_answer_fails_the_order_and_undoes_what_it_added(token: Path) -> None:
    server = Slurmrestd()

    def refuse_the_allocation(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and b"alloc-1" in request.content:
            error = {"error_number": 9000, "error": "Unknown", "description": "Parent refused"}
            return httpx.Response(200, json={"errors": [error]})
        return None

    server.fail = refuse_the_allocation
    backend = rest_backend("http://slurmrestd:6820", token, httpx.MockTransport(server))
    with pytest.raises(SlurmCommandError, match="Parent refused") as err:
        backend.create_resource_with_id(resource(**ALLOCATION), "alloc-1")
    assert not isinstance(err.value, SlurmUnavailableError)
    assert server.accounts == {"root": ""}


def test_a_refused_token_is_read_again_once(token: Path) -> None:
    server = Slurmrestd()

    def rotate(request: httpx.Request) -> httpx.Response | None:
        if request.headers["X-SLURM-USER-TOKEN"] == "old-token":
            token.write_text("new-token\n")  # the site's token refresher ran meanwhile
            return httpx.Response(401)
        return None

    server.fail = rotate
    assert rest_backend("http://slurmrestd:6820", token, httpx.MockTransport(server)).ping()
    assert server.tokens[:2] == ["old-token", "new-token"]


def test_a_token_refused_again_is_reported_without_the_token(token: Path) -> None:
    server = Slurmrestd()
    server.fail = lambda request: httpx.Response(401)
    backend = rest_backend("http://slurmrestd:6820", token, httpx.MockTransport(server))
    with pytest.raises(BackendError) as err:
        backend.ping(raise_exception=True)
    assert "refused the token of user root" in str(err.value)
    assert "old-token" not in str(err.value)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_a_hanging_slurmrestd_times_out_and_the_order_waits(
    silent_server: str, token: Path
) -> None:
    backend = rest_backend(silent_server, token)
    started = time.monotonic()
    with pytest.raises(SlurmUnavailableError, match=r"did not answer within 0\.5s"):
        backend.create_resource_with_id(resource(**ALLOCATION), "alloc-1")
    assert time.monotonic() - started < 10  # given up after the timeout, not hanging
    assert not backend.ping()


@pytest.mark.parametrize(
    ("rest_api", "message"),
    [
        (
            {"api_version": "v0.0.38"},
            r"v0\.0\.38'.*not supported \(a parser of SLURM 23\.11 or older; SLURM 22\.05",
        ),
        ({"username": None}, r"needs backend_settings\.rest_api\.username"),
        ({"token_file": None}, "set exactly one of token_file and token_env"),
    ],
)
def test_a_rest_api_block_that_cannot_work_stops_start_up(
    token: Path, rest_api: dict[str, Any], message: str
) -> None:
    block = {"url": "http://slurmrestd:6820", "username": "root", "token_file": str(token)}
    settings = {"execution_mode": "rest", "cluster_name": "hpc", "rest_api": {**block, **rest_api}}
    with pytest.raises(BackendError, match=message):
        SlurmBackend(settings, {k: dict(v) for k, v in COMPONENTS.items()})


def test_a_version_the_server_lacks_is_named_with_what_it_offers(token: Path) -> None:
    def old_server(request: httpx.Request) -> httpx.Response:
        paths = {"/slurmdb/v0.0.41/ping/": {}, "/slurm/v0.0.41/ping/": {}}
        return answer({"paths": paths})

    backend = rest_backend("http://old-slurmrestd:6820", token, httpx.MockTransport(old_server))
    with pytest.raises(BackendError, match=r"does not offer data parser v0\.0\.42 \(it offers: "):
        backend.ping(raise_exception=True)


def test_a_raw_usage_reset_without_sacctmgr_says_what_it_needs(token: Path, tmp_path: Path) -> None:
    server = Slurmrestd()
    server.accounts["alloc-1"] = "root"
    backend = rest_backend("http://slurmrestd:6820", token, httpx.MockTransport(server))
    client = backend.client
    assert isinstance(client, SlurmRestClient)
    client.commands = CommandRunner(bin_path=str(tmp_path))  # no sacctmgr there
    with pytest.raises(SlurmConfigError, match="RawUsage of alloc-1 needs sacctmgr on the agent"):
        client.modify_account("alloc-1", {"RawUsage": "0"})


@pytest.mark.parametrize(
    "settings",
    [
        {"GrpSubmitJobs": "none"},
        {"Fairshare": "1e3"},
        {"GrpTRESMins": "cpu=1;rm"},
        {"QOS": "normal,bad qos"},
        {"Parent": "../root"},
        {"MaxWall": "10"},
    ],
)
def test_a_bad_setting_is_refused_before_any_write(token: Path, settings: dict[str, str]) -> None:
    server = Slurmrestd()
    server.accounts["alloc-1"] = "root"
    writes: list[str] = []

    def record_writes(request: httpx.Request) -> httpx.Response | None:
        if request.method != "GET":
            writes.append(request.url.path)
        return None

    server.fail = record_writes
    backend = rest_backend("http://slurmrestd:6820", token, httpx.MockTransport(server))
    with pytest.raises(BackendError):
        backend.client.modify_account("alloc-1", settings)
    assert writes == []
