"""Edit a TOML document in place, keeping what was not changed as it was written.

config.toml is a file people write by hand: comments, blank lines, key
order and quoting are theirs. The server changes a configuration as a plain
dict (that is what validation and the config methods work on) and then
carries only the difference over to the parsed document with tomlkit, so
every untouched table, key and comment stays byte for byte.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from typing import Any

import tomlkit
import tomlkit.exceptions
from tomlkit.container import Container
from tomlkit.items import AoT, Table

__all__ = ["TomlEditError", "changed_paths", "edit_document", "parse_key_path", "version_of"]


class TomlEditError(ValueError):
    """The document or a key path is not valid TOML; the message says where."""


def version_of(data: bytes) -> str:
    """The version string of a layer's bytes: ``sha256:<hex>`` (as the reference reports)."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def parse_key_path(key_path: str) -> list[str]:
    """Split a TOML dotted key (``hooks.state."/a/b:pre_tool_use:0:0".enabled``) into its parts.

    Quoted segments may hold dots, colons and slashes; the rules are TOML's
    own (the key is parsed by tomllib, never by hand).
    """
    if not key_path.strip():
        raise TomlEditError("keyPath must not be empty")
    try:
        tree: Any = tomllib.loads(f"{key_path} = 0")
    except tomllib.TOMLDecodeError as exc:
        raise TomlEditError(f"keyPath {key_path!r} is not a TOML key: {exc}") from None
    parts: list[str] = []
    while isinstance(tree, dict):
        if len(tree) != 1:  # pragma: no cover - one assignment gives one chain
            raise TomlEditError(f"keyPath {key_path!r} is not a single key")
        ((key, tree),) = tree.items()
        parts.append(key)
    return parts


def changed_paths(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Dotted paths of every leaf that differs between two trees (tables descended)."""
    found: list[str] = []

    def walk(old: Any, new: Any, prefix: str) -> None:
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            for key in sorted(set(old) | set(new)):
                walk(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else key)
        elif old != new:
            found.append(prefix)

    walk(before, after, "")
    return found


def edit_document(text: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """``text`` (whose plain value is ``before``) changed to hold ``after``.

    Keys whose values are unchanged keep their formatting and comments;
    removed keys disappear with their own lines; new tables are appended
    where tomlkit places them.
    """
    try:
        document = tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise TomlEditError(f"not valid TOML: {exc}") from None
    _carry(document, before, after)
    result = tomlkit.dumps(document)
    if tomllib.loads(result) != after:  # pragma: no cover - a tomlkit surprise: start clean
        result = tomlkit.dumps(tomlkit.item(dict(after)))  # type: ignore[arg-type]
    return result


def _carry(node: Any, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
    for key in [k for k in before if k not in after]:
        del node[key]
    for key, value in after.items():
        old = before.get(key)
        if key in before and old == value:
            continue
        child = node.get(key) if key in before else None
        if (
            isinstance(value, Mapping)
            and isinstance(old, Mapping)
            and isinstance(child, Table | Container)
        ):
            _carry(child, old, value)
            continue
        if isinstance(child, AoT) or _is_table_list(value):
            node[key] = tomlkit.aot()
            for entry in value:
                node[key].append(tomlkit.item(entry))
            continue
        node[key] = tomlkit.item(value)


def _is_table_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)
