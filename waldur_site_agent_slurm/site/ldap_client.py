"""The LDAP connection of the project groups: waldur-site-agent-ldap's client, hardened.

``waldur_site_agent_ldap.client.LdapClient`` (the ``ldap`` extra) provides the group
operations used here: create a POSIX group entry, read its gid, add and remove
``memberUid`` values (idempotently), delete it. This subclass changes how it connects
and how it picks a gid:

- it binds only after STARTTLS (the package binds first, sending the password in
  clear text before the encryption starts), checks the server certificate (against
  ``tls_ca_file`` when given) and gives up after ``timeout`` seconds instead of waiting
  for the operating system;
- a new group's gid is derived from its name (a hash into the gid range) and probed
  upwards until a number is found that no entry anywhere under ``base_dn`` and no group
  known to this host uses, one exact search per candidate. The package instead takes
  the lowest number unused within the groups OU, from a listing the server may cut
  short at its size limit; a re-created project also gets the same gid back.

Every failure leaves as ``LdapError``; an unreachable or unanswering server as
``LdapUnavailableError``, so the framework retries the order later. Messages name the
server and the entry, never the password.
"""

from __future__ import annotations

import grp
import hashlib
import math
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from ldap3 import AUTO_BIND_NONE, BASE, NONE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPCommunicationError, LDAPException, LDAPResponseTimeoutError
from waldur_site_agent.backend.exceptions import BackendError
from waldur_site_agent_ldap.client import LdapClient

from waldur_site_agent_slurm.errors import LdapError, LdapUnavailableError
from waldur_site_agent_slurm.site.ldap_settings import LdapSettings

# Result codes of a server that is there but cannot serve now (RFC 4511).
UNAVAILABLE_RESULTS = {"busy", "unavailable", "unwillingToPerform", "other", "timeLimitExceeded"}
MAX_GID_PROBES = 1000
T = TypeVar("T")


def _down(err: BaseException) -> bool:
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, LDAPCommunicationError | LDAPResponseTimeoutError | OSError):
            return True
        cause = cause.__cause__
    return False


class ProjectGroupClient(LdapClient):
    """``LdapClient`` with a safe connection, gid probing and a member listing."""

    def __init__(self, settings: LdapSettings) -> None:
        """Build the package's client from the validated settings."""
        super().__init__(settings.client_settings())
        self.settings = settings

    # ---- connection --------------------------------------------------------------------

    def _server(self) -> Server:
        tls = Tls(
            validate=ssl.CERT_REQUIRED if self.settings.tls_verify else ssl.CERT_NONE,
            ca_certs_file=self.settings.tls_ca_file,
        )
        return Server(
            self.settings.uri, get_info=NONE, tls=tls, connect_timeout=self.settings.timeout
        )

    def _connect(self) -> Connection:
        """Open, encrypt (STARTTLS) when configured, then bind."""
        uri = self.settings.uri
        conn = Connection(
            self._server(),
            user=self.settings.bind_dn,
            password=self.settings.password.get_secret_value(),
            auto_bind=AUTO_BIND_NONE,
            receive_timeout=math.ceil(self.settings.timeout),  # ldap3 wants whole seconds
            raise_exceptions=False,
        )
        try:
            conn.open()
            if self.settings.use_starttls and not conn.start_tls():
                raise LdapError(f"LDAP server {uri} refused STARTTLS: {_describe(conn)}")
            if not conn.bind():
                result = _describe(conn)
                if result in UNAVAILABLE_RESULTS:
                    raise LdapUnavailableError(f"LDAP server {uri} is not serving: {result}")
                raise LdapError(
                    f"LDAP server {uri} refused the bind as {self.settings.bind_dn}: {result}"
                )
        except LDAPException as err:
            conn.unbind()
            message = f"LDAP server {uri} cannot be reached: {_reason(err)}"
            if _down(err):
                raise LdapUnavailableError(message) from None
            raise LdapError(message) from None
        except LdapError:
            conn.unbind()
            raise
        return conn

    @contextmanager
    def session(self) -> Iterator[Connection]:
        """One bound connection, closed afterwards."""
        conn = self._connect()
        try:
            yield conn
        except LDAPException as err:
            message = f"LDAP server {self.settings.uri} failed: {_reason(err)}"
            if _down(err):
                raise LdapUnavailableError(message) from None
            raise LdapError(message) from None
        finally:
            conn.unbind()

    def ping(self) -> bool:
        """True when the server accepts the bind."""
        with self.session():
            return True

    # ---- reads -------------------------------------------------------------------------

    def group(self, name: str) -> tuple[int, frozenset[str]] | None:
        """The gid and ``memberUid`` values of group ``name`` in the groups OU, or None."""
        with self.session() as conn:
            found = conn.search(
                self._group_dn(name),
                "(objectClass=posixGroup)",
                search_scope=BASE,
                attributes=["gidNumber", "memberUid"],
            )
            if not found:
                if _describe(conn) in {"noSuchObject", "success"}:
                    return None
                raise _failure(conn, f"reading group {name}")
            entry = conn.entries[0]
            gid = entry.gidNumber.value
            members = entry.memberUid.values if "memberUid" in entry else []
            return int(gid), frozenset(str(m) for m in members)

    def gid_in_use(self, conn: Connection, gid: int) -> bool:
        """Whether any entry under ``base_dn`` or any group of this host has ``gid``."""
        try:
            grp.getgrgid(gid)
            return True
        except KeyError:
            pass
        ok = conn.search(
            self.settings.base_dn,
            f"(gidNumber={int(gid)})",
            attributes=["1.1"],
            size_limit=1,
        )
        if not ok and _describe(conn) not in {"success", "sizeLimitExceeded"}:
            raise _failure(conn, f"looking for gid {gid}")
        return bool(conn.entries) or _describe(conn) == "sizeLimitExceeded"

    def free_gid(self, name: str) -> int:
        """The first gid unused anywhere, probing from the one ``name`` hashes to."""
        start, end = self.settings.gid_range
        size = end - start + 1
        offset = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % size
        with self.session() as conn:
            for step in range(min(size, MAX_GID_PROBES)):
                gid = start + (offset + step) % size
                if not self.gid_in_use(conn, gid):
                    return gid
        raise LdapError(
            f"No free gid for group {name} after {min(size, MAX_GID_PROBES)} tries in "
            f"{start}-{end}: widen backend_settings.ldap.gid_range_start/gid_range_end"
        )

    # ---- writes (the package's operations, errors translated) -----------------------------

    def create_group(self, name: str) -> int:
        """Create group ``name`` with a free gid; return the gid."""
        gid = self.free_gid(name)
        self.call(
            self._create_group_entry,
            group_name=name,
            gid_number=gid,
            object_classes=list(self.settings.object_classes),
        )
        return gid

    def add_user_to_group(
        self, group_name: str, username: str, membership_type: str = "memberUid"
    ) -> None:
        """Add ``memberUid: username`` (the package's operation; present is no change)."""
        self.call(super().add_user_to_group, group_name, username, membership_type)

    def remove_user_from_group(
        self, group_name: str, username: str, membership_type: str = "memberUid"
    ) -> None:
        """Remove ``memberUid: username`` (the package's operation; absent is no change)."""
        self.call(super().remove_user_from_group, group_name, username, membership_type)

    def delete_group(self, group_name: str) -> None:
        """Delete the group entry (the package's operation)."""
        self.call(super().delete_group, group_name)

    def call(self, operation: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one of the package's operations; its ``BackendError`` becomes ours."""
        try:
            return operation(*args, **kwargs)
        except LdapError:
            raise
        except BackendError as err:
            text = str(err)
            if _down(err) or any(code in text for code in UNAVAILABLE_RESULTS - {"other"}):
                raise LdapUnavailableError(text) from None
            raise LdapError(text) from None


def _describe(conn: Connection) -> str:
    result = conn.result or {}
    return str(result.get("description", "")) if isinstance(result, dict) else ""


def _failure(conn: Connection, what: str) -> LdapError:
    result = _describe(conn)
    message = f"LDAP {what} failed: {result}"
    if result in UNAVAILABLE_RESULTS:
        return LdapUnavailableError(message)
    return LdapError(message)


def _reason(err: BaseException) -> str:
    """The exception's own words (ldap3 never puts the password into them)."""
    return f"{type(err).__name__}: {err}"
