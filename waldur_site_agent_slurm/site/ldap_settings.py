"""The ``ldap`` block of ``backend_settings``: the directory that holds project groups.

The block is shared with the LDAP username-management backend of the
``waldur-site-agent-ldap`` package, which reads it from the same ``backend_settings``;
its keys (``uid_range_start``, ``username_format``, ``welcome_email`` ...) are accepted
here without a warning and left to it. This module checks the keys the project groups
use, once, when the backend starts, and names the key in every error. The bind password
never appears in an error, a log line or a ``repr``.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, SecretStr
from waldur_site_agent.backend import logger

from waldur_site_agent_slurm.errors import SlurmConfigError

WHERE = "backend_settings.ldap"
DEFAULT_OBJECT_CLASSES = ("posixGroup", "top")
# POSIX group names as groupadd accepts them by default, and a length NSS copes with.
GROUP_NAME_RE = re.compile(r"[a-z_][a-z0-9_-]*")
MAX_GROUP_NAME = 32
MAX_GID = 2**31 - 1
_OBJECT_CLASS_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
EXTRA_HINT = "pip install 'waldur-site-agent-slurm[ldap]'"


class LdapSchema(BaseModel):
    """The ``ldap`` block as written in the configuration (every key optional here).

    Required keys and combinations are checked by ``load``, so that an error message
    never has to quote the block (which holds the password).
    """

    model_config = ConfigDict(extra="allow")

    enabled: bool = True
    uri: str | None = Field(default=None, description="ldap://host[:port] or ldaps://host[:port]")
    bind_dn: str | None = None
    bind_password: str | None = Field(default=None, repr=False)
    bind_password_file: str | None = Field(
        default=None, description="File holding the bind password (instead of bind_password)"
    )
    base_dn: str | None = None
    groups_ou: str = "ou=Groups"
    people_ou: str = "ou=People"
    use_starttls: bool = False
    tls_ca_file: str | None = Field(default=None, description="CA bundle for ldaps/STARTTLS")
    tls_verify: bool = True
    timeout: PositiveFloat = Field(default=10.0, description="Seconds to connect and to answer")
    gid_range_start: int = 10000
    gid_range_end: int = 65000
    project_group_prefix: str = ""
    project_group_object_classes: list[str] | None = None
    # Keys of the username-management backend of waldur-site-agent-ldap (same block).
    uid_range_start: Any = None
    uid_range_end: Any = None
    default_login_shell: Any = None
    default_home_base: Any = None
    username_format: Any = None
    remove_user_on_deactivate: Any = None
    generate_vpn_password: Any = None
    access_groups: Any = None
    welcome_email: Any = None
    user_object_classes: Any = None
    user_group_object_classes: Any = None
    waldur_username_attribute: Any = None


@dataclass(frozen=True)
class LdapSettings:
    """The validated ``ldap`` block the project groups work with."""

    uri: str
    bind_dn: str
    password: SecretStr = field(repr=False)
    base_dn: str
    groups_ou: str
    people_ou: str
    use_starttls: bool
    tls_ca_file: str | None
    tls_verify: bool
    timeout: float
    gid_range: tuple[int, int]
    group_prefix: str
    object_classes: tuple[str, ...]

    @property
    def groups_dn(self) -> str:
        """Where project groups are created."""
        return f"{self.groups_ou},{self.base_dn}"

    @property
    def tls(self) -> bool:
        """Whether the connection is encrypted (ldaps:// or STARTTLS)."""
        return self.use_starttls or self.uri.lower().startswith("ldaps://")

    def client_settings(self) -> dict[str, Any]:
        """The settings dict ``waldur_site_agent_ldap.client.LdapClient`` is built from."""
        return {
            "uri": self.uri,
            "bind_dn": self.bind_dn,
            "bind_password": self.password.get_secret_value(),
            "base_dn": self.base_dn,
            "groups_ou": self.groups_ou,
            "people_ou": self.people_ou,
            "gid_range_start": self.gid_range[0],
            "gid_range_end": self.gid_range[1],
            "project_group_object_classes": list(self.object_classes),
            "use_starttls": self.use_starttls,
        }


def _fail(key: str, reason: str) -> SlurmConfigError:
    return SlurmConfigError(f"Invalid {WHERE}.{key}: {reason}")


def _required(value: str | None, key: str, example: str) -> str:
    if value is None or not value.strip():
        raise SlurmConfigError(f"{WHERE}.{key} is not set: give it, e.g. {key}: {example}")
    return value.strip()


def _uri(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme.lower() not in {"ldap", "ldaps"} or not parts.hostname:
        raise _fail("uri", f"{value!r}: expected ldap://host[:port] or ldaps://host[:port]")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as err:
        raise _fail("uri", f"{value!r}: the port is not a number from 1 to 65535") from err
    if parts.path not in {"", "/"} or parts.query or parts.fragment or parts.username:
        raise _fail("uri", f"{value!r}: only scheme, host and port are allowed")
    return value


def _dn(value: str, key: str) -> str:
    from ldap3.core.exceptions import LDAPInvalidDnError  # noqa: PLC0415 - the ldap extra
    from ldap3.utils.dn import parse_dn  # noqa: PLC0415

    try:
        if not parse_dn(value):
            raise LDAPInvalidDnError("empty")
    except LDAPInvalidDnError as err:
        raise _fail(key, f"{value!r} is not a distinguished name (e.g. dc=example,dc=org)") from err
    return value


def _password(schema: LdapSchema) -> SecretStr:
    given = [k for k in ("bind_password", "bind_password_file") if getattr(schema, k) is not None]
    if len(given) != 1:
        problem = "both are set" if given else "neither is set"
        raise SlurmConfigError(
            f"{WHERE}.bind_password and {WHERE}.bind_password_file: {problem}; "
            "give exactly one (bind_password_file keeps the password out of the configuration)"
        )
    if schema.bind_password is not None:
        if not schema.bind_password:
            raise _fail("bind_password", "must not be empty")
        return SecretStr(schema.bind_password)
    path = Path(str(schema.bind_password_file))
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else type(err).__name__
        raise _fail("bind_password_file", f"cannot read {str(path)!r}: {reason}") from None
    secret = text.rstrip("\r\n")
    if not secret:
        raise _fail("bind_password_file", f"{str(path)!r} is empty")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning(
            "%s.bind_password_file %s can be read by other users: chmod 600 it", WHERE, path
        )
    return SecretStr(secret)


def _gid_range(schema: LdapSchema) -> tuple[int, int]:
    start, end = schema.gid_range_start, schema.gid_range_end
    for key, value in (("gid_range_start", start), ("gid_range_end", end)):
        if not 1 <= value <= MAX_GID:
            raise _fail(key, f"{value}: must be from 1 to {MAX_GID}")
    if start > end:
        raise SlurmConfigError(
            f"{WHERE}.gid_range_start ({start}) is above {WHERE}.gid_range_end ({end})"
        )
    return start, end


def _object_classes(schema: LdapSchema) -> tuple[str, ...]:
    classes = tuple(schema.project_group_object_classes or DEFAULT_OBJECT_CLASSES)
    for name in classes:
        if not _OBJECT_CLASS_RE.fullmatch(name):
            raise _fail("project_group_object_classes", f"{name!r} is not an object class name")
    if "posixgroup" not in {name.lower() for name in classes}:
        raise _fail("project_group_object_classes", "must include posixGroup")
    return classes


def _tls(schema: LdapSchema, uri: str) -> None:
    if schema.use_starttls and uri.lower().startswith("ldaps://"):
        raise SlurmConfigError(
            f"{WHERE}.use_starttls is set but {WHERE}.uri is ldaps://, already encrypted: "
            "use one of them"
        )
    if schema.tls_ca_file is not None and not os.path.isfile(schema.tls_ca_file):
        raise _fail("tls_ca_file", f"{schema.tls_ca_file!r} is not a file")


def _loopback(uri: str) -> bool:
    host = urlsplit(uri).hostname or ""
    return host in {"localhost", "::1"} or host.startswith("127.")


def require_client() -> None:
    """Refuse to start when the ``ldap`` extra (waldur-site-agent-ldap) is not installed."""
    try:
        import waldur_site_agent_ldap.client  # noqa: F401, PLC0415
    except ImportError as err:
        raise SlurmConfigError(
            f"{WHERE} needs the package waldur-site-agent-ldap: {EXTRA_HINT}, "
            "or remove the ldap block (or set ldap.enabled: false)"
        ) from err


def load(schema: LdapSchema | None) -> LdapSettings | None:
    """Validate the block; None when it is absent, empty or ``enabled: false``.

    Raises:
        SlurmConfigError: naming the key at fault; never quoting the password.
    """
    if schema is None or not schema.enabled or not (schema.model_fields_set or schema.model_extra):
        return None
    require_client()
    uri = _uri(_required(schema.uri, "uri", "ldap://ldap.example.org"))
    bind_dn = _dn(_required(schema.bind_dn, "bind_dn", "cn=admin,dc=example,dc=org"), "bind_dn")
    base_dn = _dn(_required(schema.base_dn, "base_dn", "dc=example,dc=org"), "base_dn")
    _dn(schema.groups_ou, "groups_ou")
    _dn(schema.people_ou, "people_ou")
    _tls(schema, uri)
    prefix = schema.project_group_prefix
    if prefix and not GROUP_NAME_RE.fullmatch(prefix):
        raise _fail(
            "project_group_prefix",
            f"{prefix!r}: allowed are lower-case letters, digits, '_' and '-', "
            "starting with a letter or '_'",
        )
    settings = LdapSettings(
        uri=uri,
        bind_dn=bind_dn,
        password=_password(schema),
        base_dn=base_dn,
        groups_ou=schema.groups_ou,
        people_ou=schema.people_ou,
        use_starttls=schema.use_starttls,
        tls_ca_file=schema.tls_ca_file,
        tls_verify=schema.tls_verify,
        timeout=schema.timeout,
        gid_range=_gid_range(schema),
        group_prefix=prefix,
        object_classes=_object_classes(schema),
    )
    if not settings.tls and not _loopback(uri):
        logger.warning(
            "%s.uri %s is neither ldaps:// nor used with use_starttls: the bind password "
            "crosses the network unencrypted",
            WHERE,
            uri,
        )
    return settings
