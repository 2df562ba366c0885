"""Real slurmrestd 24.11 answers (``tests/data/slurm-24.11/rest/``) served to the REST client.

Each ``NAME.txt`` holds ``# request: METHOD PATH``, ``# status: CODE TEXT``,
``# response-headers: …`` and then the body byte for byte; ``NAME.request.json`` is the
body that was sent. ``Replay`` is an ``httpx`` transport that answers each request with
the capture registered for its method and path and records what was sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

REST = Path(__file__).parent / "data" / "slurm-24.11" / "rest"
RouteKey = tuple[str, str, frozenset[tuple[str, str]]]
Handler = Callable[[httpx.Request], httpx.Response]


@dataclass(frozen=True)
class Capture:
    """One recorded exchange with slurmrestd."""

    method: str
    path: str
    status: int
    headers: dict[str, str]
    body: bytes

    def response(self) -> httpx.Response:
        return httpx.Response(self.status, headers=self.headers, content=self.body)


def capture(name: str) -> Capture:
    raw = (REST / f"{name}.txt").read_bytes()
    meta: dict[str, str] = {}
    rest = raw
    while rest.startswith(b"# "):
        line, _, rest = rest.partition(b"\n")
        key, _, value = line[2:].decode().partition(": ")
        meta[key.rstrip(":")] = value
    method, _, path = meta["request"].partition(" ")
    headers = {}
    for item in filter(None, meta.get("response-headers", "").split("; ")):
        k, _, v = item.partition(": ")
        headers[k] = v
    return Capture(method, path, int(meta["status"].split()[0]), headers, rest)


def request_body(name: str) -> Any:
    return json.loads((REST / f"{name}.request.json").read_text())


@dataclass
class Replay:
    """An httpx transport answering from captures (or handlers), recording every request."""

    routes: dict[RouteKey, Handler] = field(default_factory=dict)
    sent: list[httpx.Request] = field(default_factory=list)

    def on(self, method: str, path: str, answer: str | Handler) -> Replay:
        """Answer ``method path`` (its query in any order) with a capture name or a handler."""
        if isinstance(answer, str):
            recorded = capture(answer)

            def answer(_request: httpx.Request) -> httpx.Response:
                return recorded.response()

        self.routes[_key(method, path)] = answer
        return self

    def replay(self, name: str) -> Replay:
        """Answer the request the capture ``name`` was recorded for with its answer."""
        found = capture(name)
        return self.on(found.method, found.path, name)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        key = _key(request.method, request.url.raw_path.decode())
        if key not in self.routes:
            return httpx.Response(404, text=f"no capture for {key}")
        return self.routes[key](request)


def _key(method: str, path: str) -> RouteKey:
    parts = urlsplit(path)
    return method, parts.path, frozenset(parse_qsl(parts.query))
