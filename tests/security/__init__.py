"""Hostile input: strategies for values from Waldur, STOMP and the configuration.

Every value that reaches a SLURM command line is drawn from the same mix: names that are
fine, arbitrary Unicode, and fine names with one character that means something to
sacctmgr or a shell spliced in. ``HAZARDS`` is the test's own list of what must never
reach sacctmgr inside a name; ``safe_account``/``safe_user``/``safe_qos`` say, independently
of the plugin's code, which names must be accepted verbatim.
"""

from __future__ import annotations

import string

from hypothesis import strategies as st

# Characters with a meaning to sacctmgr's argument parser (key=value, lists, options,
# quoting, word splitting) or to a shell, should a command ever be pasted into one.
HAZARDS = frozenset(" \t\n\r\x0b\x0c\x00=,'\";$`\\&|<>(){}[]*?!#~")
MAX_NAME = 64

_ACCOUNT_CHARS = frozenset(string.ascii_lowercase + string.digits + "_.-")
_USER_CHARS = frozenset(string.ascii_lowercase + string.digits + "_.@-")
_QOS_CHARS = frozenset(string.ascii_lowercase + string.digits + "_.-")
DESCRIPTION_CHARS = frozenset(string.ascii_letters + string.digits + " _.:()/+@-")


def _name_ok(value: str, chars: frozenset[str], first: str) -> bool:
    return 0 < len(value) <= MAX_NAME and set(value) <= chars and value[0] in first


def safe_account(value: str) -> bool:
    """An account name sacctmgr stores exactly as given (lower case, no operators)."""
    return _name_ok(value, _ACCOUNT_CHARS, string.ascii_lowercase + string.digits)


def safe_user(value: str) -> bool:
    """A user name sacctmgr stores as given: lower case, no operator characters."""
    return _name_ok(value, _USER_CHARS, string.ascii_lowercase + string.digits + "_")


def safe_qos(value: str) -> bool:
    """A QoS or partition name sacctmgr stores as given (it lower-cases them)."""
    return _name_ok(value, _QOS_CHARS, string.ascii_lowercase + string.digits)


def hazardous(value: str) -> bool:
    """True when a name holds anything the README promises never reaches sacctmgr."""
    return (
        not value
        or bool(set(value) & HAZARDS)
        or value.startswith("-")
        or any(not c.isascii() for c in value)
    )


_unicode = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=70)
_hazard = st.sampled_from(sorted(HAZARDS | {"-", "A", "Z", "é", "\u212a", "\u2028", "%", "/"}))


def names(valid: str) -> st.SearchStrategy[str]:
    """Valid names of ``valid`` (a regex), arbitrary text, and valid names with a hazard."""
    good = st.from_regex(valid, fullmatch=True)
    spliced = st.builds(lambda a, h, b: a + h + b, good, _hazard, st.one_of(st.just(""), good))
    leading = st.builds(lambda h, a: h + a, _hazard, good)
    return st.one_of(good, _unicode, spliced, leading)


account_slugs = names(r"[a-z0-9][a-z0-9_.-]{0,30}")
usernames = names(r"[a-z0-9_][a-z0-9_.@-]{0,20}")
qos_names = names(r"[a-z0-9][a-z0-9_.-]{0,20}")
free_text = st.one_of(
    _unicode,
    st.text(st.sampled_from(sorted(DESCRIPTION_CHARS | HAZARDS)), max_size=150),
)

# Limit values as Waldur might send them: numbers of every kind and things that are not.
limit_values = st.one_of(
    st.integers(-(2**70), 2**70),
    st.integers(0, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(0, 1e6),
    st.booleans(),
    st.none(),
    st.text(max_size=10),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
