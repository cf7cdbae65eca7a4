"""JSON Schema (draft-07) for what a composition serves, read from the registry.

The output follows the reference server's layout: union files
``ClientRequest.json``, ``ClientNotification.json``, ``ServerRequest.json``
and ``ServerNotification.json``; the JSON-RPC envelopes (``RequestId.json``,
``JSONRPCMessage.json``...); one file per declared type under ``v2/``; and a
bundle, ``kernel_protocol.schemas.json``, holding every definition. Without
``experimental`` the experimental methods and fields are left out, exactly as
a client without ``experimentalApi`` sees the server.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import attrs

from .rpc.fields import AbsolutePath, field_doc, is_experimental, wire_name
from .rpc.registry import Entry, Registry

__all__ = ["SchemaConflict", "build_schema", "write_schema"]

DRAFT = "http://json-schema.org/draft-07/schema#"
BUNDLE_NAME = "kernel_protocol.schemas.json"

_ENVELOPES: dict[str, dict[str, Any]] = {
    "RequestId": {"anyOf": [{"type": "string"}, {"type": "integer", "format": "int64"}]},
    "JSONRPCErrorError": {
        "type": "object",
        "properties": {
            "code": {"type": "integer", "format": "int64"},
            "data": True,
            "message": {"type": "string"},
        },
        "required": ["code", "message"],
    },
    "JSONRPCRequest": {
        "type": "object",
        "properties": {
            "id": {"$ref": "#/definitions/RequestId"},
            "method": {"type": "string"},
            "params": True,
        },
        "required": ["id", "method"],
    },
    "JSONRPCNotification": {
        "type": "object",
        "properties": {"method": {"type": "string"}, "params": True},
        "required": ["method"],
    },
    "JSONRPCResponse": {
        "type": "object",
        "properties": {"id": {"$ref": "#/definitions/RequestId"}, "result": True},
        "required": ["id", "result"],
    },
    "JSONRPCError": {
        "type": "object",
        "properties": {
            "error": {"$ref": "#/definitions/JSONRPCErrorError"},
            "id": {"anyOf": [{"$ref": "#/definitions/RequestId"}, {"type": "null"}]},
        },
        "required": ["error", "id"],
    },
    "JSONRPCMessage": {
        "anyOf": [
            {"$ref": f"#/definitions/{n}"}
            for n in ("JSONRPCRequest", "JSONRPCNotification", "JSONRPCResponse", "JSONRPCError")
        ],
    },
}

_UNIONS = {
    "ClientRequest": ("method", True),
    "ClientNotification": ("client_notification", False),
    "ServerRequest": ("server_request", True),
    "ServerNotification": ("notification", False),
}


class SchemaConflict(Exception):
    """Two different types would get the same schema name."""


class _Builder:
    def __init__(self, experimental: bool) -> None:
        self.experimental = experimental
        self.definitions: dict[str, dict[str, Any]] = {}
        self._owners: dict[str, Any] = {}

    def _define(self, name: str, owner: Any, make: Any) -> dict[str, Any]:
        if name in self._owners:
            if self._owners[name] is not owner:
                raise SchemaConflict(
                    f"two types are both named {name}: {_qualname(self._owners[name])} and "
                    f"{_qualname(owner)}; rename one"
                )
        else:
            self._owners[name] = owner
            self.definitions[name] = {}  # placeholder: breaks recursion
            self.definitions[name] = make()
        return {"$ref": f"#/definitions/{name}"}

    def of(self, tp: Any) -> Any:
        """The schema of a Python type annotation."""
        if tp is Any:
            return True
        if tp is AbsolutePath:
            return self._define("AbsolutePathBuf", AbsolutePath, lambda: {"type": "string"})
        simple = {str: "string", bool: "boolean", type(None): "null"}
        if tp in simple:
            return {"type": simple[tp]}
        if tp is int:
            return {"type": "integer", "format": "int64"}
        if tp is float:
            return {"type": "number", "format": "double"}
        origin = get_origin(tp)
        if origin is Literal:
            values = list(get_args(tp))
            return {"enum": values, "type": _json_type(values[0])}
        if origin in (Union, types.UnionType):
            return self._union(get_args(tp))
        if tp is list or origin is list:
            args = get_args(tp)
            return {"type": "array", "items": self.of(args[0]) if args else True}
        if tp is dict or origin is dict:
            args = get_args(tp)
            return {"type": "object", "additionalProperties": self.of(args[1]) if args else True}
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            values = [m.value for m in tp]
            return self._define(
                tp.__name__, tp, lambda: {"enum": values, "type": _json_type(values[0])}
            )
        if attrs.has(tp):
            return self._define(tp.__name__, tp, lambda: self._object(tp))
        raise TypeError(f"cannot describe {tp!r} in JSON Schema")

    def _union(self, members: tuple[Any, ...]) -> Any:
        nullable = type(None) in members
        rest = [m for m in members if m is not type(None)]
        schemas = [self.of(m) for m in rest]
        if len(schemas) == 1 and nullable:
            only = schemas[0]
            if isinstance(only, dict) and isinstance(only.get("type"), str) and "$ref" not in only:
                return {**only, "type": [only["type"], "null"]}
            return {"anyOf": [only, {"type": "null"}]}
        if nullable:
            schemas.append({"type": "null"})
        return {"anyOf": schemas}

    def _object(self, cls: type) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        required: list[str] = []
        hints = typing.get_type_hints(cls)
        for attribute in attrs.fields(cls):
            if is_experimental(attribute) and not self.experimental:
                continue
            name = wire_name(attribute)
            schema = self.of(hints.get(attribute.name, attribute.type))
            doc = field_doc(attribute)
            extra: dict[str, Any] = {}
            if doc:
                extra["description"] = doc
            if attribute.default is attrs.NOTHING:
                required.append(name)
            elif isinstance(attribute.default, (str, int, float, bool, type(None))):
                extra["default"] = attribute.default
            if extra:
                schema = (
                    {**schema, **extra}
                    if isinstance(schema, dict) and "$ref" not in schema
                    else {"allOf": [schema], **extra}
                )
            properties[name] = schema
        out: dict[str, Any] = {"type": "object", "title": cls.__name__, "properties": properties}
        if required:
            out["required"] = required
        if cls.__doc__ and not cls.__doc__.startswith(f"{cls.__name__}("):
            out["description"] = " ".join(cls.__doc__.split())
        return out

    def union_file(self, title: str, entries: list[Entry], with_id: bool) -> dict[str, Any]:
        variants = []
        for entry in entries:
            props: dict[str, Any] = {}
            required = ["method"]
            if with_id:
                props["id"] = {"$ref": "#/definitions/RequestId"}
                required.insert(0, "id")
            props["method"] = {"type": "string", "enum": [entry.name]}
            if entry.params is not None:
                props["params"] = self.of(entry.params)
                required.append("params")
            variant = {
                "type": "object",
                "title": _variant_title(entry),
                "properties": props,
                "required": required,
            }
            if entry.doc:
                variant["description"] = entry.doc
            variants.append(variant)
        return {"title": title, "oneOf": variants}


def _json_type(value: Any) -> str:
    return {str: "string", int: "integer", bool: "boolean", float: "number"}.get(
        type(value), "string"
    )


def _qualname(owner: Any) -> str:
    return f"{getattr(owner, '__module__', '?')}.{getattr(owner, '__qualname__', owner)}"


def _variant_title(entry: Entry) -> str:
    words = entry.name.replace("/", " ").replace("_", " ").split()
    base = "".join(w[:1].upper() + w[1:] for w in words)
    suffix = {"method": "Request", "server_request": "Request"}.get(entry.kind, "Notification")
    return base + suffix


def build_schema(registry: Registry, experimental: bool = False) -> dict[str, dict[str, Any]]:
    """Every schema document, keyed by its relative file path."""
    builder = _Builder(experimental)
    for name, schema in _ENVELOPES.items():
        builder.definitions[name] = schema
    unions: dict[str, dict[str, Any]] = {}
    for title, (kind, with_id) in _UNIONS.items():
        entries = [e for e in registry.entries(kind) if experimental or not e.experimental]  # type: ignore[arg-type]
        unions[title] = builder.union_file(title, entries, with_id)
    type_names: list[str] = []
    for entry in registry.entries():
        if entry.experimental and not experimental:
            continue
        for tp in (entry.params, entry.result):
            if tp is not None and attrs.has(tp):
                builder.of(tp)
                type_names.append(tp.__name__)
    defs = builder.definitions
    files: dict[str, dict[str, Any]] = {}
    for title, union in unions.items():
        files[f"{title}.json"] = _standalone(union, defs)
    for name, schema in _ENVELOPES.items():
        files[f"{name}.json"] = _standalone({"title": name, **schema}, defs)
    for name in dict.fromkeys(type_names):
        files[f"v2/{name}.json"] = _standalone(defs[name], defs)
    bundle_defs = {**defs, **unions}
    files[BUNDLE_NAME] = {
        "$schema": DRAFT,
        "title": "KernelProtocol",
        "type": "object",
        "definitions": dict(sorted(bundle_defs.items())),
    }
    return files


def _standalone(schema: dict[str, Any], defs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``schema`` with exactly the definitions it reaches."""
    needed: dict[str, Any] = {}
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/definitions/"):
                name = ref.rsplit("/", 1)[1]
                if name not in needed:
                    needed[name] = defs[name]
                    stack.append(defs[name])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    out = {"$schema": DRAFT, **schema}
    if needed:
        out["definitions"] = dict(sorted(needed.items()))
    return out


def write_schema(registry: Registry, out: Path, experimental: bool = False) -> list[Path]:
    """Write :func:`build_schema` output under ``out``; returns the files written."""
    written = []
    for relative, document in build_schema(registry, experimental).items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
        written.append(path)
    return written
