"""How an MCP server's tools are named and described to the model.

As the reference 0.169 does, each server's tools go to the model as one
Responses API namespace, ``mcp__<server>``, holding the server's tools as
function tools under their own names. Names are made safe for the API
(characters outside ``[a-zA-Z0-9_-]`` become ``_``) and kept unique and
within 64 characters together with their namespace: a name that would not
fit, or that two tools would share after cleaning, gets a short hash of the
original name. The raw name is kept for the MCP call.

Input schemas are sent without the ``title`` and ``$schema`` keywords (the
reference strips them too: they cost tokens and tell the model nothing).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MAX_NAME", "model_names", "model_schema", "namespace_name", "safe_name"]

MAX_NAME = 64
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_SCHEMA_NOISE = frozenset({"title", "$schema"})
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")
_SUBSCHEMA_ONE = ("items", "additionalProperties", "not", "contains", "if", "then", "else")


def safe_name(name: str) -> str:
    """``name`` with every character the Responses API refuses replaced by ``_``."""
    return _UNSAFE.sub("_", name) or "_"


def _hashed(name: str, room: int, identity: str) -> str:
    suffix = "_" + hashlib.sha1(identity.encode()).hexdigest()[:12]
    return name[: max(0, room - len(suffix))] + suffix


def namespace_name(server: str) -> str:
    """The namespace a server's tools live in: ``mcp__<server>`` (within 64 characters)."""
    name = f"mcp__{safe_name(server)}"
    return name if len(name) <= MAX_NAME else _hashed(name, MAX_NAME, server)


def model_names(server: str, tools: Iterable[str]) -> dict[str, str]:
    """Model-facing name → raw MCP tool name for one server's ``tools``."""
    namespace = namespace_name(server)
    room = MAX_NAME - len(namespace) - 2  # the reference counts "<namespace>__<tool>"
    raw = sorted(set(tools))
    cleaned = {name: safe_name(name) for name in raw}
    counts: dict[str, int] = {}
    for name in cleaned.values():
        counts[name] = counts.get(name, 0) + 1
    names: dict[str, str] = {}
    for original in raw:
        name = cleaned[original]
        if counts[name] > 1 or len(name) > room:
            name = _hashed(name, max(room, 13), f"{server}\0{original}")
        attempt = 0
        while name in names:  # a hash collision with another name: very unlikely
            attempt += 1
            name = _hashed(cleaned[original], max(room, 13), f"{server}\0{original}\0{attempt}")
        names[name] = original
    return names


def model_schema(schema: Any) -> dict[str, Any]:
    """An MCP input schema as the model gets it: an object schema, noise keywords removed."""
    cleaned = _clean(schema) if isinstance(schema, Mapping) else {}
    if not isinstance(cleaned, dict):
        cleaned = {}
    cleaned.setdefault("type", "object")
    if cleaned.get("type") == "object":
        cleaned.setdefault("properties", {})
    return cleaned


def _clean(schema: Any) -> Any:
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_NOISE:
            continue
        if key in _SUBSCHEMA_MAPS and isinstance(value, Mapping):
            out[key] = {name: _clean(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            out[key] = [_clean(sub) for sub in value]
        elif key in _SUBSCHEMA_ONE:
            out[key] = _clean(value) if isinstance(value, Mapping) else value
        else:
            out[key] = value
    return out
