"""The ``export NAME=value`` lines a project script's ``env`` command prints, as a dict."""

from __future__ import annotations

import shlex


def exports(out: str) -> dict[str, str]:
    """``NAME: value`` of each ``export NAME=value`` line of ``out`` (shell quoting undone)."""
    env: dict[str, str] = {}
    for line in out.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, _, value = words[1].partition("=")
            env[name] = value
    return env
