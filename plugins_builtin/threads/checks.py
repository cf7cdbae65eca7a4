"""Checks of thread and turn params the schema leaves loose, with the reference's messages.

Errors the reference defines keep its code (-32600) and its exact message,
and add ``data.field`` naming the offending member, so a client can point at
it. Type errors the kernel finds while structuring stay ``-32602``.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from kernel import RpcError

__all__ = [
    "APPROVAL_POLICIES",
    "REASONING_SUMMARIES",
    "SANDBOX_MODES",
    "check_approval_policy",
    "check_dynamic_tools",
    "check_enum",
    "check_input",
    "check_thread_id",
    "invalid_request",
]

INVALID_REQUEST = -32600
SANDBOX_MODES = ("read-only", "workspace-write", "danger-full-access")
APPROVAL_POLICIES = ("untrusted", "on-failure", "on-request", "never")
REASONING_SUMMARIES = ("auto", "concise", "detailed", "none")
_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
_UUID_CHARS = frozenset("0123456789abcdefABCDEF-")
_RESERVED_NAMESPACES = frozenset({"functions", "multi_tool_use"})
_INPUT_TYPES = frozenset({"text", "image", "localImage", "audio", "localAudio", "skill", "mention"})


def invalid_request(message: str, field: str | None = None) -> RpcError:
    """-32600 with the reference's ``message``; ``data.field`` names the member."""
    return RpcError(INVALID_REQUEST, message, {"field": field} if field else None)


def check_thread_id(value: str, field: str = "threadId") -> str:
    """The canonical thread id (a UUID), with the reference's message when it is not one."""
    text = value[len("urn:uuid:") :] if value.startswith("urn:uuid:") else value
    for index, char in enumerate(text, start=1):
        if char not in _UUID_CHARS:
            raise invalid_request(
                "invalid thread id: invalid character: expected an optional prefix of "
                f"`urn:uuid:` followed by [0-9a-fA-F-], found `{char}` at {index}",
                field,
            )
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise invalid_request(
            f"invalid thread id: invalid length: expected a UUID, found {len(text)} characters",
            field,
        ) from None


def check_enum(value: str | None, choices: tuple[str, ...], field: str) -> None:
    """``value`` is None or one of ``choices``."""
    if value is not None and value not in choices:
        raise RpcError(
            -32602,
            f"Invalid params: {field}: expected one of {', '.join(choices)}",
            {"problems": [{"path": field, "message": f"expected one of {', '.join(choices)}"}]},
        )


def check_approval_policy(value: Any, field: str = "approvalPolicy") -> None:
    """A named policy, or ``{"granular": {...}}``."""
    if value is None or (isinstance(value, str) and value in APPROVAL_POLICIES):
        return
    if (
        isinstance(value, dict)
        and set(value) == {"granular"}
        and isinstance(value["granular"], dict)
    ):
        return
    check_enum(str(value) if not isinstance(value, str) else value, APPROVAL_POLICIES, field)


def check_input(items: list[Any], field: str = "input") -> None:
    """User input items: known types with their required members."""
    for index, item in enumerate(items):
        where = f"{field}[{index}]"
        if not isinstance(item, dict) or item.get("type") not in _INPUT_TYPES:
            raise RpcError(
                -32602,
                f"Invalid params: {where}.type: expected one of {', '.join(sorted(_INPUT_TYPES))}",
                {"problems": [{"path": f"{where}.type", "message": "unknown input type"}]},
            )
        kind = item["type"]
        required = {
            "text": ("text",),
            "localImage": ("path",),
            "localAudio": ("path",),
            "skill": ("name", "path"),
            "mention": ("name", "path"),
        }.get(kind, ())
        for member in required:
            if not isinstance(item.get(member), str):
                raise RpcError(
                    -32602,
                    f"Invalid params: {where}.{member}: expected a string",
                    {"problems": [{"path": f"{where}.{member}", "message": "expected a string"}]},
                )
        if kind in ("image", "audio") and not (
            isinstance(item.get("url"), str) or isinstance(item.get("fileId"), str)
        ):
            raise RpcError(
                -32602,
                f"Invalid params: {where}: expected url or fileId",
                {"problems": [{"path": where, "message": "expected url or fileId"}]},
            )


def check_dynamic_tools(tools: list[Any], builtin: frozenset[str]) -> None:
    """The reference's validation of ``dynamicTools``, with its messages.

    One thing is stricter: a tool named like a built-in tool is refused
    (the reference accepts it and silently drops it).
    """
    top_names: set[str] = set()
    namespaces: set[str] = set()
    for index, spec in enumerate(tools):
        where = f"dynamicTools[{index}]"
        if not isinstance(spec, dict):
            raise invalid_request("Invalid request: expected a dynamic tool object", where)
        kind = spec.get("type", "function")
        if kind == "namespace":
            name = _name(spec, where, namespace=True)
            if name in _RESERVED_NAMESPACES:
                raise invalid_request(
                    "dynamic tool namespace collides with a reserved Responses API namespace: "
                    f"{name}",
                    f"{where}.name",
                )
            _required(spec, where, ("description", "tools"))
            inner = spec.get("tools")
            if not isinstance(inner, list) or not inner:
                raise invalid_request(
                    f"dynamic tool namespace must contain at least one tool: {name}",
                    f"{where}.tools",
                )
            seen: set[str] = set()
            for position, tool in enumerate(inner):
                inner_where = f"{where}.tools[{position}]"
                if not isinstance(tool, dict):
                    raise invalid_request(
                        "Invalid request: expected a dynamic tool object", inner_where
                    )
                tool_name = _function(tool, inner_where, allow_defer=True)
                if tool_name in seen:
                    raise invalid_request(
                        f"duplicate dynamic tool name in namespace {name}: {tool_name}",
                        f"{inner_where}.name",
                    )
                seen.add(tool_name)
            namespaces.add(name)
        elif kind == "function":
            name = _function(spec, where, allow_defer=False)
            if name in top_names:
                raise invalid_request(f"duplicate dynamic tool name: {name}", f"{where}.name")
            if name in builtin:
                raise invalid_request(
                    f"dynamic tool name collides with a built-in tool: {name}", f"{where}.name"
                )
            top_names.add(name)
        else:
            raise invalid_request(
                f"Invalid request: unknown variant `{kind}`, expected `function` or `namespace`",
                f"{where}.type",
            )


def _required(spec: dict[str, Any], where: str, members: tuple[str, ...]) -> None:
    for member in members:
        if member not in spec:
            raise invalid_request(f"Invalid request: missing field `{member}`", f"{where}.{member}")


def _function(spec: dict[str, Any], where: str, allow_defer: bool) -> str:
    name = _name(spec, where, namespace=False)
    _required(spec, where, ("inputSchema", "description"))
    schema = spec["inputSchema"]
    if not isinstance(schema, dict):
        raise invalid_request(
            "dynamic tool input schema is not supported for "
            f"{name}: invalid type: {_json_kind(schema)}, expected struct JsonSchema",
            f"{where}.inputSchema",
        )
    if spec.get("deferLoading") and not allow_defer:
        raise invalid_request(
            f"deferred dynamic tool must include a namespace: {name}", f"{where}.deferLoading"
        )
    return name


def _name(spec: dict[str, Any], where: str, namespace: bool) -> str:
    name = spec.get("name")
    what = "namespace" if namespace else "name"
    if not isinstance(name, str):
        raise invalid_request("Invalid request: missing field `name`", f"{where}.name")
    if not name:
        raise invalid_request(f"dynamic tool {what} must not be empty", f"{where}.name")
    if not _NAME.match(name):
        shown = "".join(c if c.isascii() else f"\\u{{{ord(c):x}}}" for c in name)
        raise invalid_request(
            f"dynamic tool {what} must match ^[a-zA-Z0-9_-]+$ to match Responses API: {shown}",
            f"{where}.name",
        )
    limit = 64 if namespace else 128
    if len(name) > limit:
        raise invalid_request(
            f"dynamic tool {what} must be at most {limit} characters to match Responses API: "
            f"{name}",
            f"{where}.name",
        )
    return name


def _json_kind(value: Any) -> str:
    if isinstance(value, str):
        return f'string "{value}"'
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int | float):
        return f"number `{value}`"
    if isinstance(value, list):
        return "sequence"
    return "null" if value is None else type(value).__name__
