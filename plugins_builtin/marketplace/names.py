"""The one rule for marketplace and plugin names, which are also directory names.

A marketplace's git clone lives in ``<home>/marketplaces/<marketplace>/``
and an installed bundle in ``<home>/plugins/cache/<marketplace>/<plugin>/``,
and listing looks for them under the very same names. So a name is valid
only when it can be used as it is: one path segment of ASCII letters,
digits, ``.``, ``_``, ``+``, ``~`` and ``-``, not starting with ``.`` (the
cache scan skips hidden directories), at most 128 characters. That is
exactly the names :func:`safe_segment` leaves unchanged. The marketplace
file parser, installs, uninstalls, ``marketplace/*`` and discovery all ask
:func:`valid_name`, and refuse with :data:`NAME_RULE` (:func:`bad_name`).
"""

from __future__ import annotations

import re
from typing import TypeGuard

__all__ = ["NAME_RULE", "bad_name", "safe_segment", "valid_name"]

NAME_RULE = (
    "a name must be ASCII letters, digits, `.`, `_`, `+`, `~` or `-`, not starting "
    "with `.`, at most 128 characters"
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._+~-]")


def safe_segment(text: str, fallback: str = "local") -> str:
    """``text`` usable as one directory name (no separators, not hidden, not ``..``)."""
    cleaned = _UNSAFE.sub("_", text).lstrip(".")
    return cleaned[:128] or fallback


def valid_name(name: object) -> TypeGuard[str]:
    """Whether ``name`` is a usable marketplace or plugin name (see the module docstring)."""
    return isinstance(name, str) and bool(name) and safe_segment(name) == name


def bad_name(name: object, what: str = "name") -> str:
    """Why ``name`` is refused (``what`` says which name: ``marketplace name``...)."""
    if not isinstance(name, str):
        return f"`{what}` is missing or not a string"
    return f"{what} `{name}` is not valid: {NAME_RULE}"
