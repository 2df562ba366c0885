"""Checks for every value that ends up on a SLURM command line or in a slurmrestd request.

The runner never uses a shell, but ``sacctmgr`` has its own small language: ``=``
separates keys from values, ``,`` separates list items, a leading ``-`` reads as an
option or as the "remove" operator, quotes are stripped and whitespace splits words.
Values that could change the meaning of a command are rejected here, before any
command is built. Descriptions are free text from Waldur, so they are cleaned rather
than rejected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from waldur_site_agent_slurm.errors import InvalidValueError, SlurmError

MAX_NAME_LENGTH = 64
MAX_DESCRIPTION_LENGTH = 100
# SLURM stores limits as unsigned 64-bit integers; values above 2**53 cannot come
# exactly from a float, and no real allocation comes near them.
MAX_LIMIT_VALUE = 2**53
MAX_FAIRSHARE = 2**31 - 1

_ACCOUNT_RE = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_USERNAME_RE = re.compile(r"[a-z0-9_][a-z0-9_.@-]*")
_QOS_RE = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_TRES_RE = re.compile(r"[a-z]+(/[a-z0-9_.:-]+)?")
# Waldur's partition names (^[A-Za-z0-9_-]+$), and no leading '-' (sacctmgr's "remove").
_OFFERING_PARTITION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_DESCRIPTION_DROP_RE = re.compile(r"[^A-Za-z0-9 _.:()/+@-]")
_WHITESPACE_RE = re.compile(r"\s+")


def _check_name(field: str, value: object, pattern: re.Pattern[str], allowed: str) -> str:
    if not isinstance(value, str):
        raise InvalidValueError(field, value, "expected a string")
    if not value:
        raise InvalidValueError(field, value, "must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidValueError(field, value, f"longer than {MAX_NAME_LENGTH} characters")
    if not pattern.fullmatch(value):
        raise InvalidValueError(field, value, f"allowed: {allowed}")
    return value


def account_name(value: object, field: str = "account name") -> str:
    """Return a valid SLURM account name or raise ``InvalidValueError``.

    SLURM lower-cases account names itself; an upper-case name would be stored under
    another spelling than the one the agent later looks up, so it is rejected here
    and callers lower-case generated names first.
    """
    return _check_name(
        field,
        value,
        _ACCOUNT_RE,
        "lower-case letters, digits, '_', '.', '-', starting with a letter or digit",
    )


def account_prefix(value: str, field: str = "account prefix") -> str:
    """Return a valid (possibly empty) prefix for generated account names or raise."""
    if value:
        account_name(value, field)
    return value


def username(value: object, field: str = "username") -> str:
    """Return a valid SLURM user name or raise ``InvalidValueError``.

    sacctmgr stores user names in lower case (without ``PreserveCaseUser``): an
    association added for ``Alice`` is listed as ``alice``, so membership sync would
    find it stale and remove it every other cycle. Upper case is therefore rejected.
    """
    return _check_name(
        field,
        value,
        _USERNAME_RE,
        "lower-case letters, digits, '_', '.', '@', '-', starting with a letter, digit or "
        "'_' (SLURM stores user names in lower case)",
    )


def usernames(values: set[str]) -> set[str]:
    """Return ``values`` if every one is a valid user name, else raise naming each bad one."""
    bad = []
    for name in sorted(values):
        try:
            username(name)
        except InvalidValueError as err:
            bad.append(str(err))
    if bad:
        raise SlurmError("; ".join(bad))
    return values


def qos_name(value: object, field: str = "QoS name") -> str:
    """Return a valid QoS (or partition) name or raise ``InvalidValueError``.

    sacctmgr lower-cases QoS and partition names; the configuration lower-cases them
    before they get here, so the names compared with SLURM's are the names it stores.
    """
    return _check_name(
        field,
        value,
        _QOS_RE,
        "lower-case letters, digits, '_', '.', '-', starting with a letter or digit",
    )


def partition_name(value: object, field: str = "partition name") -> str:
    """Return a valid partition name or raise ``InvalidValueError``."""
    return qos_name(value, field)


def offering_partition(value: object, field: str = "offering partition") -> str:
    """Return a partition name from Waldur (``[A-Za-z0-9_-]+``) in SLURM's lower case, or raise.

    Offering partitions and a resource's ``partition`` attribute come from Waldur in
    any case; sacctmgr stores association partitions in lower case, so the lower-case
    spelling is what is written and later compared.
    """
    name = _check_name(
        field,
        value,
        _OFFERING_PARTITION_RE,
        "letters, digits, '_', '-', starting with a letter or digit",
    )
    return name.lower()


def resource_qos(value: object, field: str = "resource QoS") -> str:
    """Return a QoS name from a Waldur resource's attributes, lower-cased as SLURM stores it."""
    lowered = value.lower() if isinstance(value, str) else value
    return qos_name(lowered, field)


def tres_name(value: object, field: str = "TRES name") -> str:
    """Return a valid TRES name (``cpu``, ``mem``, ``gres/gpu`` …) or raise."""
    return _check_name(
        field, value, _TRES_RE, "a lower-case type, optionally '/name' (e.g. cpu, gres/gpu)"
    )


def limit_value(value: object, field: str = "limit") -> int:
    """Return a limit as a non-negative integer or raise ``InvalidValueError``.

    Accepts ints and integral floats (Waldur sends floats); rejects booleans, strings,
    NaN, infinities, fractions, negatives and values beyond ``MAX_LIMIT_VALUE``.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValueError(field, value, "expected a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidValueError(field, value, "must be a finite number")
        if not value.is_integer():
            raise InvalidValueError(field, value, "must be a whole number")
        value = int(value)
    if value < 0:
        raise InvalidValueError(field, value, "must not be negative")
    if value > MAX_LIMIT_VALUE:
        raise InvalidValueError(field, value, f"must not exceed {MAX_LIMIT_VALUE}")
    return value


def zone(value: object, field: str = "timezone") -> ZoneInfo:
    """Return the IANA time zone ``value`` names or raise ``InvalidValueError``."""
    if isinstance(value, str):
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise InvalidValueError(
        field, value, "use an IANA zone name such as UTC or Europe/Tallinn, the agent's timezone"
    )


def fairshare(value: object, field: str = "fairshare") -> int:
    """Return a Fairshare value (a whole number of shares, at least 1) or raise.

    SLURM keeps shares in 32 bits with the top values reserved; 0 would leave the
    account without any share of the cluster.
    """
    number = limit_value(value, field)
    if number < 1:
        raise InvalidValueError(field, value, "must be at least 1")
    if number > MAX_FAIRSHARE:
        raise InvalidValueError(field, value, f"must not exceed {MAX_FAIRSHARE}")
    return number


def amount(value: object, field: str = "amount") -> float:
    """Return a Waldur amount (fractions allowed) or raise ``InvalidValueError``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValueError(field, value, "expected a number")
    if not math.isfinite(value):
        raise InvalidValueError(field, value, "must be a finite number")
    if value < 0:
        raise InvalidValueError(field, value, "must not be negative")
    if value > MAX_LIMIT_VALUE:
        raise InvalidValueError(field, value, f"must not exceed {MAX_LIMIT_VALUE}")
    return float(value)


def description(value: object, fallback: str) -> str:
    """Turn free text from Waldur into a description sacctmgr stores as given.

    Characters outside a small safe set are dropped, whitespace is collapsed and the
    result is cut to ``MAX_DESCRIPTION_LENGTH``; an empty result becomes ``fallback``.
    """
    text = value if isinstance(value, str) else ""
    text = _DESCRIPTION_DROP_RE.sub(" ", text)
    text = _WHITESPACE_RE.sub(" ", text).strip()[:MAX_DESCRIPTION_LENGTH].strip()
    return text or fallback


def http_url(value: object, field: str = "URL") -> str:
    """An ``http(s)://host[:port][/path]`` base URL, without credentials, query or fragment.

    Returned without a trailing slash, so paths can be appended to it.
    """
    if not isinstance(value, str) or not value:
        raise InvalidValueError(field, value, "expected an http:// or https:// URL")
    if _WHITESPACE_RE.search(value):
        raise InvalidValueError(field, value, "must not contain whitespace")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as err:
        raise InvalidValueError(field, value, f"not a URL ({err})") from err
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidValueError(field, value, "expected http://host[:port] or https://host[:port]")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidValueError(field, value, "must not carry credentials, a query or a fragment")
    return value.rstrip("/")


def rest_url(value: object, field: str = "slurmrestd URL") -> str:
    """An ``http(s)://host[:port]`` URL or a ``unix:///absolute/socket/path``."""
    if isinstance(value, str) and value.startswith("unix://"):
        path = value.removeprefix("unix://")
        if not path.startswith("/") or _WHITESPACE_RE.search(path) or "\x00" in path:
            raise InvalidValueError(field, value, "expected unix:///absolute/path/to/socket")
        return value
    return http_url(value, field)


_API_VERSION_RE = re.compile(r"v0\.0\.[0-9]{1,3}")


def api_version(value: object, supported: Sequence[str], field: str = "API version") -> str:
    """A slurmrestd data-parser version (``v0.0.42``) among the ``supported`` ones."""
    if not isinstance(value, str) or not _API_VERSION_RE.fullmatch(value):
        raise InvalidValueError(field, value, "expected a data-parser version like v0.0.42")
    if value not in supported:
        minor = int(value.rsplit(".", 1)[1])
        older = (
            " (a parser of SLURM 23.11 or older; SLURM 22.05 offers v0.0.38)" if minor < 40 else ""
        )
        raise InvalidValueError(
            field,
            value,
            f"not supported{older}; supported: {', '.join(supported)} (SLURM 24.05+)",
        )
    return value


def job_id(value: object, field: str = "job ID") -> str:
    """A SLURM job ID: digits, optionally ``_`` and an array index."""
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{1,12}(_[0-9]{1,9})?", value):
        raise InvalidValueError(field, value, "expected a job ID like 123 or 123_4")
    return value


def home_directory(base_path: str, name: str) -> Path:
    """``base_path/<name>`` for a valid user name, never a path outside ``base_path``."""
    base = Path(base_path)
    path = base / username(name)
    if path.parent != base or path.name != name:
        raise InvalidValueError("username", name, f"is no directory name below {base_path}")
    return path
