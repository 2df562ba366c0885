"""The OpenLDAP of scripts/slapd.sh, seen from the tests: settings, reads, start and stop.

Entries are read with OpenLDAP's own ``ldapsearch`` (not with the code under test), as
the administrator, whose password stays in the script's root-only file (``-y``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from tests.exports import exports

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "slapd.sh"


def slapd(command: str) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/slapd.sh <command>``."""
    return subprocess.run(
        ["bash", str(SCRIPT), command], capture_output=True, text=True, check=False, timeout=300
    )


def ldap_env() -> dict[str, str]:
    """WALDUR_LDAP_URI, _BASE_DN, _BIND_DN and _PASSWORD_FILE from ``slapd.sh env``."""
    out = slapd("env").stdout
    env = exports(out)
    if "WALDUR_LDAP_URI" not in env:
        raise RuntimeError(f"{SCRIPT} env printed no settings: {out!r}")
    return env


def password() -> str:
    return Path(ldap_env()["WALDUR_LDAP_PASSWORD_FILE"]).read_text()


def ldap_block(prefix: str, **changes: Any) -> dict[str, Any]:
    """The ``ldap`` block for the test directory; groups named ``<prefix><project>``."""
    env = ldap_env()
    block: dict[str, Any] = {
        "uri": env["WALDUR_LDAP_URI"],
        "bind_dn": env["WALDUR_LDAP_BIND_DN"],
        "bind_password_file": env["WALDUR_LDAP_PASSWORD_FILE"],
        "base_dn": env["WALDUR_LDAP_BASE_DN"],
        "project_group_prefix": prefix,
        "timeout": 3,
    }
    block.update(changes)
    return block


def _admin(tool: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = ldap_env()
    argv = [
        tool,
        "-x",
        "-H",
        env["WALDUR_LDAP_URI"],
        "-D",
        env["WALDUR_LDAP_BIND_DN"],
        "-y",
        env["WALDUR_LDAP_PASSWORD_FILE"],
        *args,
    ]
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)


def search(filter_: str, *attributes: str) -> dict[str, dict[str, list[str]]]:
    """Entries under the base DN matching ``filter_``: {dn: {attribute: values}}."""
    proc = _admin(
        "ldapsearch", "-LLL", "-o", "ldif_wrap=no", "-b", ldap_env()["WALDUR_LDAP_BASE_DN"],
        filter_, *attributes,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    entries: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for line in proc.stdout.splitlines():
        if line.startswith("dn: "):
            current = entries.setdefault(line[4:], {})
        elif current is not None and ": " in line:
            name, _, value = line.partition(": ")
            current.setdefault(name, []).append(value)
    return entries


def group(name: str) -> tuple[int, set[str]] | None:
    """(gidNumber, memberUid values) of the posixGroup ``name`` in ou=Groups, or None."""
    found = search(f"(&(objectClass=posixGroup)(cn={name}))", "gidNumber", "memberUid")
    dn = f"cn={name},ou=Groups,{ldap_env()['WALDUR_LDAP_BASE_DN']}"
    if dn not in found:
        return None
    entry = found[dn]
    return int(entry["gidNumber"][0]), set(entry.get("memberUid", []))


def add_posix_group(name: str, gid: int, ou: str = "People") -> str:
    """Put a posixGroup ``name`` with ``gid`` under ``ou`` (someone else's entry)."""
    dn = f"cn={name},ou={ou},{ldap_env()['WALDUR_LDAP_BASE_DN']}"
    ldif = f"dn: {dn}\nobjectClass: posixGroup\ncn: {name}\ngidNumber: {gid}\n"
    proc = _admin("ldapadd", stdin=ldif)
    assert proc.returncode == 0, proc.stderr
    return dn


def delete_matching(prefix: str) -> None:
    """Delete every entry whose cn starts with ``prefix`` (a test's own groups)."""
    for dn in search(f"(cn={prefix}*)", "1.1"):
        _admin("ldapdelete", dn)
