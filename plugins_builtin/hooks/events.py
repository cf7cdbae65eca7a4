"""Hook events, handlers, matchers and hashes: the vocabulary of the hooks family.

Event names appear three ways: PascalCase in files (``PreToolUse``),
camelCase on the wire (``preToolUse``) and snake_case in keys and hashes
(``pre_tool_use``). Their canonical order (the protocol's ``HookEventName``)
orders each file's entries in ``hooks/list``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = [
    "DEFAULT_CONTEXT_LIMIT",
    "EVENTS",
    "Event",
    "Handler",
    "event_by_file_name",
    "hook_hash",
    "matcher_matches",
]

DEFAULT_TIMEOUT = 600
DEFAULT_CONTEXT_LIMIT = 2500


@attrs.frozen
class Event:
    """One hook event under its three names, and how its matcher works."""

    file: str
    """``PreToolUse``: the name in hooks.json and config.toml."""
    wire: str
    """``preToolUse``: ``HookEventName`` on the wire."""
    snake: str
    """``pre_tool_use``: the name in keys and hashes."""
    label: str
    """``pre-tool-use``: the prefix of a run's id."""
    uses_matcher: bool
    scope: str
    """``thread`` or ``turn`` (``HookRunSummary.scope``)."""
    default_timeout: int = DEFAULT_TIMEOUT


def _event(file: str, uses_matcher: bool = True, scope: str = "turn", timeout: int = 600) -> Event:
    snake = re.sub(r"(?<!^)([A-Z])", r"_\1", file).lower()
    wire = file[0].lower() + file[1:]
    return Event(file, wire, snake, snake.replace("_", "-"), uses_matcher, scope, timeout)


EVENTS: tuple[Event, ...] = (
    _event("PreModelRequest"),
    _event("PostModelRequest"),
    _event("PreToolUse"),
    _event("PermissionRequest"),
    _event("PostToolUse"),
    _event("PreCompact"),
    _event("PostCompact"),
    _event("SessionStart", scope="thread"),
    _event("SessionEnd", scope="thread", timeout=1),
    _event("UserPromptSubmit", uses_matcher=False),
    _event("SubagentStart", scope="thread"),
    _event("SubagentStop"),
    _event("Stop", uses_matcher=False),
    _event("Interrupt", uses_matcher=False),
)
_BY_FILE = {event.file: event for event in EVENTS}
_BY_WIRE = {event.wire: event for event in EVENTS}


def event_by_file_name(name: str) -> Event | None:
    """The event named ``name`` in a file (``PreToolUse``), or None."""
    return _BY_FILE.get(name)


def event_by_wire_name(name: str) -> Event:
    """The event named ``name`` on the wire (``preToolUse``)."""
    return _BY_WIRE[name]


@attrs.frozen
class Handler:
    """One configured handler, normalized (defaults filled in)."""

    type: str
    """``command``, ``mcp_tool``, ``prompt`` or ``agent``."""
    command: str = ""
    command_windows: str | None = None
    timeout: int = DEFAULT_TIMEOUT
    run_async: bool = False
    status_message: str | None = None
    additional_context_limit: int | None = None
    server: str = ""
    tool: str = ""
    input: Mapping[str, Any] = attrs.Factory(dict)

    @property
    def wire_type(self) -> str:
        """``HookHandlerType``: ``command``, ``mcpTool``, ``prompt``, ``agent``."""
        return "mcpTool" if self.type == "mcp_tool" else self.type

    def identity(self) -> dict[str, Any]:
        """What the hook's hash covers: everything that changes what it does."""
        if self.type == "mcp_tool":
            found: dict[str, Any] = {
                "type": "mcp_tool",
                "server": self.server,
                "tool": self.tool,
                "input": dict(self.input),
                "timeout": self.timeout,
            }
        else:
            found = {
                "type": self.type,
                "command": self.command,
                "timeout": self.timeout,
                "async": self.run_async,
            }
        if self.status_message is not None:
            found["statusMessage"] = self.status_message
        limit = self.additional_context_limit
        if limit is not None and limit != DEFAULT_CONTEXT_LIMIT:
            found["additionalContextLimit"] = limit
        return found


def hook_hash(event: Event, matcher: str | None, handler: Handler) -> str:
    """``sha256:<hex>`` of a hook's normalized definition.

    The same hook written in hooks.json or in config.toml hashes the same
    (both are normalized to one shape first: defaults filled, sorted keys,
    compact JSON), so trusting it once covers either spelling; a change to
    anything it runs changes the hash, so a trusted hook that was edited
    reads ``modified`` and stops running until trusted again.
    """
    identity: dict[str, Any] = {"event_name": event.snake, "hooks": [handler.identity()]}
    if matcher is not None:
        identity["matcher"] = matcher
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


_EXACT = re.compile(r"[A-Za-z0-9_|]+")


def matcher_matches(matcher: str | None, value: str) -> bool:
    """Whether ``matcher`` selects ``value`` (a tool name, a session source...).

    Empty, absent or ``*`` match everything; a plain word or ``a|b`` list
    matches exactly one of its words (``Bash`` does not match
    ``BashOutput``); anything else is a regular expression searched in the
    value (``^Bash``, ``mcp__.*__write``).
    """
    if matcher is None or matcher in ("", "*"):
        return True
    if _EXACT.fullmatch(matcher):
        return value in matcher.split("|")
    try:
        return re.search(matcher, value) is not None
    except re.error:
        return False
