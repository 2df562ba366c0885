"""The one place an HTTP request goes to slurmrestd.

``RestTransport`` is the REST counterpart of ``CommandRunner``: one ``httpx.Client`` per
backend (its connections are reused), a timeout on every call, the JWT headers
``X-SLURM-USER-NAME`` / ``X-SLURM-USER-TOKEN``, and every failure mapped onto the error
classes of the command-line path:

- slurmrestd unreachable, or answering that slurmdbd/slurmctld is → ``SlurmUnavailableError``
  (a timeout → ``SlurmTimeoutError``), so orders wait for the next cycle;
- an ``errors[]`` entry in any answer, even a 200 → ``SlurmCommandError`` whose ``answer``
  says what SLURM meant (``Answer.JOBS_ACTIVE`` …);
- a body that is not the JSON object slurmrestd sends → ``SlurmParseError``.

The token is read from a file or an environment variable, read again once when
slurmrestd refuses it, and never appears in a log line, an error or a result.
"""

from __future__ import annotations

import functools
import json
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from waldur_site_agent.backend import logger

from waldur_site_agent_slurm.errors import (
    SlurmCommandError,
    SlurmConfigError,
    SlurmParseError,
    SlurmTimeoutError,
    SlurmUnavailableError,
)
from waldur_site_agent_slurm.slurm import validation
from waldur_site_agent_slurm.slurm.answers import Answer
from waldur_site_agent_slurm.slurm.write_lock import WriteLock, holding

# Data-parser versions this plugin speaks: SLURM 24.05/24.11 (v0.0.40-v0.0.42) and 25.05
# (v0.0.43). SLURM 22.05's slurmrestd offers v0.0.38 at most, which is not supported.
SUPPORTED_VERSIONS = ("v0.0.40", "v0.0.41", "v0.0.42", "v0.0.43")
DEFAULT_TIMEOUT = 30.0
# The API families of slurmrestd: accounting (slurmdbd) and jobs (slurmctld).
SLURMDB = "slurmdb"
SLURM = "slurm"
_UNIX_PREFIX = "unix://"
# Error numbers of slurmrestd answers (SLURM's slurm_errno.h).
_ESLURM_DB_CONNECTION = 7000
_ESLURM_JOBS_RUNNING_ON_ASSOC = 7001
_UNAVAILABLE_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class RestSettings:
    """Where slurmrestd is and how to authenticate to it (the ``rest_api`` block)."""

    url: str
    api_version: str
    username: str
    token_file: Path | None = None
    token_env: str | None = None
    verify_ssl: bool = True
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        """Check every value before anything is sent."""
        validation.rest_url(self.url, "rest_api.url")
        validation.api_version(self.api_version, SUPPORTED_VERSIONS, "rest_api.api_version")
        validation.username(self.username, "rest_api.username")
        if (self.token_file is None) == (self.token_env is None):
            raise SlurmConfigError("rest_api: set exactly one of token_file and token_env")
        if self.token_env is not None and not self.token_env.isidentifier():
            raise SlurmConfigError(
                f"rest_api.token_env {self.token_env!r}: not an environment variable name"
            )
        if not 0 < self.timeout <= 3600:
            raise SlurmConfigError(
                f"rest_api.timeout {self.timeout!r}: expected seconds in (0, 3600]"
            )


@dataclass(frozen=True)
class RestAnswer:
    """A successful slurmrestd answer: the HTTP status and the decoded JSON body.

    ``status`` 304 (an empty body) is slurmrestd's "nothing changed": an account that
    already exists, nothing to delete.
    """

    status: int
    data: Mapping[str, Any]

    @property
    def unchanged(self) -> bool:
        """True when slurmrestd answered 304: the write changed nothing."""
        return self.status == 304


class _Token:
    """The JWT, read lazily from its file or environment variable and cached."""

    def __init__(self, settings: RestSettings) -> None:
        self._file = settings.token_file
        self._env = settings.token_env
        self._value: str | None = None

    def source(self) -> str:
        return f"token_file {self._file}" if self._file is not None else f"token_env {self._env}"

    def value(self) -> str:
        if self._value is None:
            self._value = self._read()
        return self._value

    def reread(self) -> None:
        self._value = None

    def _read(self) -> str:
        if self._file is not None:
            try:
                text = self._file.read_text(encoding="utf-8")
            except OSError as err:
                raise SlurmConfigError(
                    f"rest_api: cannot read the token file {self._file}: {err.strerror}"
                ) from None
        else:
            text = os.environ.get(str(self._env), "")
        token = text.strip().removeprefix("SLURM_JWT=")
        if not token:
            raise SlurmConfigError(f"rest_api: the {self.source()} holds no token")
        if any(c.isspace() or not c.isprintable() for c in token):
            raise SlurmConfigError(f"rest_api: the {self.source()} does not hold one token")
        return token


@functools.cache
def _tls(verify: bool) -> ssl.SSLContext:
    """The TLS settings of every client of this process that has ``verify_ssl`` = ``verify``.

    Made once: making one reads the CA bundle (about 80 ms on a busy host), and a backend,
    with its HTTP client, is built every cycle.
    """
    return httpx.create_ssl_context(verify=verify)


def _connection(url: str, tls: ssl.SSLContext) -> tuple[str, httpx.HTTPTransport | None]:
    """The base URL httpx sends to and, for a unix socket, the transport that reaches it."""
    if url.startswith(_UNIX_PREFIX):
        path = url.removeprefix(_UNIX_PREFIX)
        return "http://localhost", httpx.HTTPTransport(uds=path, verify=tls)
    return url.rstrip("/"), None


class RestTransport:
    """One HTTP client to one slurmrestd; ``request`` is the only way to call it."""

    def __init__(
        self,
        settings: RestSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        write_lock: WriteLock | None = None,
    ) -> None:
        """Build the client; ``transport`` replaces the network in tests.

        ``write_lock``, when given, is held around each request that is not a GET.
        """
        self.settings = settings
        self.write_lock = write_lock
        self._token = _Token(settings)
        tls = _tls(settings.verify_ssl)
        base_url, uds = _connection(settings.url, tls)
        self._client = httpx.Client(
            base_url=base_url,
            transport=transport or uds,
            timeout=settings.timeout,
            verify=tls,
            headers={"X-SLURM-USER-NAME": settings.username, "Accept": "application/json"},
        )

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()

    def path(self, api: str, tail: str) -> str:
        """The request path of ``tail`` in the ``api`` family at the configured version."""
        return f"/{api}/{self.settings.api_version}/{tail}"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> RestAnswer:
        """Send one request; a refused token is read again and the request sent once more."""
        what = [method, path]
        logger.debug("Requesting: %s %s", method, path)  # as CLI mode logs each command
        with holding(None if method == "GET" else self.write_lock, what):
            response = self._send(method, path, params, body, what)
            if _auth_refused(response):
                logger.info(
                    "slurmrestd refused the token: reading the %s again", self._token.source()
                )
                self._token.reread()
                response = self._send(method, path, params, body, what)
        if _auth_refused(response):
            raise SlurmCommandError(
                what,
                response.status_code,
                "",
                "",
                f"slurmrestd refused the token of user {self.settings.username} "
                f"(from the {self._token.source()}), also after reading it again",
            )
        return _answer(response, what)

    def offered_versions(self) -> frozenset[str]:
        """The data-parser versions the server's ``/openapi/v3`` lists for both API families."""
        data = self.request("GET", "/openapi/v3").data
        paths = data.get("paths")
        if not isinstance(paths, Mapping):
            raise SlurmParseError("slurmrestd's /openapi/v3 lists no paths")
        found: dict[str, set[str]] = {SLURMDB: set(), SLURM: set()}
        for path in paths:
            parts = str(path).split("/")
            if len(parts) > 2 and parts[1] in found:
                found[parts[1]].add(parts[2])
        return frozenset(found[SLURMDB] & found[SLURM])

    def check_version(self) -> None:
        """Fail at start-up, clearly, when the server does not offer the configured version."""
        wanted = self.settings.api_version
        offered = self.offered_versions()
        if wanted not in offered:
            listed = ", ".join(sorted(offered)) or "none"
            usable = sorted(offered & set(SUPPORTED_VERSIONS))
            hint = (
                f"set rest_api.api_version to one of {', '.join(usable)}"
                if usable
                else f"this plugin supports {', '.join(SUPPORTED_VERSIONS)} (SLURM 24.05 or newer)"
            )
            raise SlurmConfigError(
                f"slurmrestd at {self.settings.url} does not offer data parser {wanted} "
                f"(it offers: {listed}); {hint}"
            )

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        what: list[str],
    ) -> httpx.Response:
        headers = {"X-SLURM-USER-TOKEN": self._token.value()}
        try:
            return self._client.request(method, path, params=params, json=body, headers=headers)
        except httpx.TimeoutException:
            raise SlurmTimeoutError(
                what,
                None,
                "",
                "",
                f"slurmrestd at {self.settings.url} did not answer within "
                f"{self.settings.timeout:g}s",
                answer=Answer.UNAVAILABLE,
            ) from None
        except httpx.TransportError as err:
            raise SlurmUnavailableError(
                what,
                None,
                "",
                "",
                f"slurmrestd at {self.settings.url} cannot be reached ({type(err).__name__})",
                answer=Answer.UNAVAILABLE,
            ) from None


def _auth_refused(response: httpx.Response) -> bool:
    """True when slurmrestd (401) or slurmdbd behind it (502, error 7000) refused the token."""
    if response.status_code == 401:
        return True
    if response.status_code != 502:
        return False
    return any(
        entry.get("error_number") == _ESLURM_DB_CONNECTION
        and "authentication" in str(entry.get("description", "")).lower()
        for entry in _errors(_json(response))
    )


def _json(response: httpx.Response) -> Mapping[str, Any] | None:
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        data = json.loads(response.content)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _errors(data: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    if data is None:
        return []
    entries = data.get("errors") or []
    return [e for e in entries if isinstance(e, Mapping)] if isinstance(entries, list) else []


def _describe(errors: list[Mapping[str, Any]]) -> str:
    return "; ".join(
        " / ".join(str(e[k]) for k in ("error", "description") if e.get(k)) or "unknown error"
        for e in errors
    )


def classify(errors: list[Mapping[str, Any]]) -> Answer:
    """What slurmrestd's ``errors[]`` mean, in the words of the command-line path."""
    numbers = {e.get("error_number") for e in errors}
    text = _describe(errors).lower()
    if _ESLURM_JOBS_RUNNING_ON_ASSOC in numbers or "job(s) active" in text:
        return Answer.JOBS_ACTIVE
    if _ESLURM_DB_CONNECTION in numbers or "unable to contact slurm controller" in text:
        return Answer.UNAVAILABLE
    return Answer.FAILED


def _answer(response: httpx.Response, what: list[str]) -> RestAnswer:
    status = response.status_code
    if status == 304:
        return RestAnswer(status, {})
    data = _json(response)
    errors = _errors(data)
    text = response.text if data is None else ""
    if errors or status >= 400:
        answer = classify(errors)
        detail = _describe(errors) if errors else (text.strip()[:200] or f"HTTP {status}")
        cls = SlurmCommandError
        if answer is Answer.UNAVAILABLE or (not errors and status in _UNAVAILABLE_STATUSES):
            cls, answer = SlurmUnavailableError, Answer.UNAVAILABLE
        raise cls(
            what,
            status,
            "" if data is None else json.dumps(data),
            detail,
            f"slurmrestd answered {status}: {detail}",
            answer=answer,
        )
    if data is None:
        raise SlurmParseError(f"slurmrestd answered {' '.join(what)} with no JSON object")
    return RestAnswer(status, data)
