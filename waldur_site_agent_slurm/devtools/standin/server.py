"""``StandIn``: a local HTTP server that answers like Waldur Mastermind.

Requests under ``/api/`` go through: fault injection → token check → route lookup →
permission check → handler (under the state lock) → pagination → validation with
``waldur_api_client`` → answer, and are recorded. Requests under ``/_standin/`` are the
control endpoints (see ``control``).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from waldur_site_agent.backend import logger

from waldur_site_agent_slurm.devtools.standin import control
from waldur_site_agent_slurm.devtools.standin.api import (
    FORBIDDEN,
    NOT_FOUND,
    ApiError,
    ApiRequest,
    Permission,
    Reply,
    Route,
)
from waldur_site_agent_slurm.devtools.standin.routes import allowed_methods, find_route
from waldur_site_agent_slurm.devtools.standin.scenario import Scenario, TokenSpec
from waldur_site_agent_slurm.devtools.standin.state import State
from waldur_site_agent_slurm.devtools.standin.validation import ResponseDriftError, encode, validate

API_PREFIX = "/api/"
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 300
LOOPBACK = ("127.0.0.1", "::1")


class StandIn:
    """A Waldur Mastermind stand-in serving one scenario on a loopback port."""

    def __init__(self, scenario: Scenario, host: str = "127.0.0.1", port: int = 0) -> None:
        """Prepare the server; nothing listens until ``start``."""
        self.scenario = scenario
        self.host = host
        self.port = port
        self.state = State(scenario)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def api_url(self) -> str:
        """``http://HOST:PORT/api/`` (ends with a port, as the framework needs)."""
        return f"http://{self.host}:{self.port}/api/"

    def start(self) -> StandIn:
        """Bind the port and serve on a daemon thread."""
        if self._server is not None:
            return self
        server = ThreadingHTTPServer((self.host, self.port), _Handler)
        server.daemon_threads = True
        server.standin = self  # type: ignore[attr-defined]
        self.port = int(server.server_address[1])
        self.state.base_url = f"http://{self.host}:{self.port}"
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"standin-{self.port}",
            daemon=True,
        )
        self._thread.start()
        logger.info("Waldur stand-in serving %s", self.api_url)
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server, self._thread = None, None

    def __enter__(self) -> StandIn:
        """Start on entering a ``with`` block."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop on leaving it."""
        self.stop()

    # ----------------------------------------------------------------- serving
    def serve_api(
        self, method: str, raw_path: str, headers: dict[str, str], body: Any
    ) -> tuple[Reply, str | None]:
        """Answer one /api/ request; returns the reply and the caller's username."""
        split = urlsplit(raw_path)
        fault = self.state.take_fault(method, split.path)
        if fault is not None:
            if fault.delay > 0:
                time.sleep(fault.delay)
            if fault.drop:
                return Reply(0, drop=True), None
            if fault.status is not None:
                payload = fault.body if fault.body is not None else {"detail": "Injected fault."}
                return Reply(fault.status, payload), None
        caller, auth_error = self._authenticate(headers.get("authorization", ""))
        if auth_error is not None:
            return auth_error, None
        rel = split.path[len(API_PREFIX) :]
        found = find_route(method, rel)
        if found is None:
            if allowed_methods(rel):
                return Reply(405, {"detail": f'Method "{method}" not allowed.'}), _name(caller)
            return Reply(404, {"detail": "Not found."}), _name(caller)
        route, args = found
        params = parse_qs(split.query, keep_blank_values=True)
        req = ApiRequest(method, rel, params, body, caller, args, headers.get("user-agent", ""))
        reply = _check_permission(route, req) or self._handle(route, req)
        if route.paginated and reply.status == 200 and isinstance(reply.body, list):
            reply = self._paginate(reply, split.path, params)
        return self._validated(route, method, raw_path, reply), req.username

    def _handle(self, route: Route, req: ApiRequest) -> Reply:
        with self.state.lock:
            try:
                return route.handler(self.state, req)
            except ApiError as err:
                return Reply(err.status, err.body)
            except Exception as err:
                logger.exception("Stand-in handler for %s %s crashed", req.method, req.path)
                return Reply(500, {"detail": "Stand-in handler crashed.", "error": repr(err)})

    def _authenticate(self, header: str) -> tuple[TokenSpec | None, Reply | None]:
        if not header:
            return None, None
        scheme, _, value = header.partition(" ")
        token = self.scenario.token(value.strip()) if scheme.lower() == "token" else None
        if token is None:
            return None, Reply(401, {"detail": "Invalid token."})
        return token, None

    def _paginate(self, reply: Reply, path: str, params: dict[str, list[str]]) -> Reply:
        items: list[Any] = reply.body
        try:
            page = int((params.get("page") or ["1"])[-1])
            size = int((params.get("page_size") or [str(DEFAULT_PAGE_SIZE)])[-1])
        except ValueError:
            return Reply(404, {"detail": "Invalid page."})
        size = max(1, min(size, MAX_PAGE_SIZE))
        pages = max(1, -(-len(items) // size))
        if page < 1 or page > pages:
            return Reply(404, {"detail": "Invalid page."})
        headers = {"X-Result-Count": str(len(items))}
        if page < pages:
            query = {k: v for k, v in params.items() if k != "page"}
            query["page"] = [str(page + 1)]
            link = f"{self.state.base_url}{path}?{urlencode(query, doseq=True)}"
            headers["Link"] = f'<{link}>; rel="next"'
        return Reply(200, items[(page - 1) * size : page * size], headers)

    def _validated(self, route: Route, method: str, raw_path: str, reply: Reply) -> Reply:
        if reply.status >= 400:
            return reply
        try:
            validate(
                route.api,
                method=method,
                url=f"{self.state.base_url}{raw_path}",
                status=reply.status,
                content=encode(reply.body),
                headers=reply.headers,
            )
        except ResponseDriftError as err:
            logger.error(
                "STAND-IN RESPONSE DRIFT on %s %s (%s): %s",
                method,
                route.pattern.pattern,
                route.api,
                err,
            )
            return Reply(
                500,
                {
                    "detail": "Stand-in answer rejected by waldur_api_client.",
                    "route": f"{method} {API_PREFIX}{route.pattern.pattern}",
                    "api": route.api,
                    "model": err.model,
                    "error": str(err),
                },
            )
        return reply


def _name(caller: TokenSpec | None) -> str | None:
    return caller.username if caller else None


def _check_permission(route: Route, req: ApiRequest) -> Reply | None:
    if route.permission is Permission.PUBLIC:
        return None
    if req.caller is None:
        return Reply(401, {"detail": "Authentication credentials were not provided."})
    if route.permission is Permission.STAFF and not req.is_staff:
        return Reply(403, FORBIDDEN)
    if route.permission is Permission.PROVIDER and not req.is_provider:
        return Reply(403, FORBIDDEN)
    if route.permission is Permission.PROVIDER_READ and not req.is_provider:
        return Reply(200, []) if route.is_list else Reply(404, NOT_FOUND)
    return None


class _Handler(BaseHTTPRequestHandler):
    """Turns HTTP requests into ``StandIn.serve_api`` / control calls."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 30
    server_version = "WaldurStandIn/1.0"

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("stand-in: " + format, *args)

    def _serve(self, method: str) -> None:
        standin: StandIn = self.server.standin  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw.strip() else None
        except json.JSONDecodeError as err:
            self._send(Reply(400, {"detail": f"JSON parse error - {err}"}))
            return
        path = self.path
        if path.startswith(control.PREFIX.rstrip("/")):
            if self.client_address[0] not in LOOPBACK:
                self._send(Reply(403, {"detail": "control endpoints answer loopback only"}))
                return
            with standin.state.lock:
                status, answer = control.handle(
                    standin.state, method, urlsplit(path).path, parse_qs(urlsplit(path).query), body
                )
            self._send(Reply(status, answer))
            return
        if not path.startswith(API_PREFIX):
            self._send(Reply(404, {"detail": "Not found.", "hint": "API under /api/"}))
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply, username = standin.serve_api(method, path, headers, body)
        standin.state.record(
            {
                "method": method,
                "path": urlsplit(path).path,
                "query": parse_qs(urlsplit(path).query, keep_blank_values=True),
                "body": body,
                "status": reply.status,
                "user_agent": headers.get("user-agent", ""),
                "username": username,
                "time": time.time(),
            },
            write=method != "GET",
        )
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        if reply.drop:
            self.close_connection = True
            return
        content = encode(reply.body)
        self.send_response(reply.status)
        if content:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(content)
