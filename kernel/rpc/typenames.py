"""The named types a wire type reaches: what schema definitions will be called.

JSON Schema and TypeScript output name each attrs class and enum after the
class (``FsReadFileParams``), as the reference does, and the protocol's
absolute path after the reference's ``AbsolutePathBuf``. Two different
classes with one name would make one definition silently describe the
other, so the registry checks every declaration against the names already
taken (:class:`kernel.rpc.registry.Registry`), and ``kernel run`` fails at
registration, naming both owners.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Iterator
from typing import Any, Union, get_args, get_origin

import attrs

from .fields import AbsolutePath

__all__ = ["ABSOLUTE_PATH_NAME", "named_types", "schema_name"]

ABSOLUTE_PATH_NAME = "AbsolutePathBuf"


def schema_name(tp: Any) -> str | None:
    """The definition name of ``tp``, or None for types described inline."""
    if tp is AbsolutePath:
        return ABSOLUTE_PATH_NAME
    if attrs.has(tp) or (isinstance(tp, type) and issubclass(tp, enum.Enum)):
        return str(tp.__name__)
    return None


def named_types(tp: Any) -> Iterator[tuple[str, Any]]:
    """``(name, type)`` for every named type reachable from ``tp``, each once."""
    seen: set[int] = set()
    stack = [tp]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        name = schema_name(current)
        if name is not None:
            yield name, current
        if attrs.has(current):
            hints = typing.get_type_hints(current)
            stack.extend(hints.get(a.name, a.type) for a in attrs.fields(current))
        elif get_origin(current) in (Union, types.UnionType, list, dict):
            stack.extend(get_args(current))
