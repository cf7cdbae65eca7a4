"""Reading hook definitions: hooks.json files and ``[hooks]`` tables, as the reference writes them.

hooks.json::

    {"hooks": {"PreToolUse": [{"matcher": "Bash",
                               "hooks": [{"type": "command", "command": "check.sh",
                                          "timeout": 30, "statusMessage": "checking"}]}]}}

config.toml::

    [[hooks.PreToolUse]]
    matcher = "Bash"
    [[hooks.PreToolUse.hooks]]
    type = "command"
    command = "check.sh"

A file that cannot be parsed, or names an unknown handler type, is dropped
whole with a warning; a bad entry (an invalid matcher, an empty command, a
``prompt``/``agent`` handler this server cannot run) is skipped with a
warning. The warnings are the reference's words.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .events import EVENTS, Event, Handler, event_by_file_name

__all__ = ["Definition", "parse_hooks_json", "parse_hooks_table"]

_TYPES = ("command", "mcp_tool", "prompt", "agent")
_NOT_EVENTS = frozenset({"state", "managed_dir", "windows_managed_dir"})


@attrs.frozen
class Definition:
    """One handler as written: its event, matcher, place in the file and normalized form."""

    event: Event
    matcher: str | None
    group_index: int
    handler_index: int
    handler: Handler


class _FileError(ValueError):
    pass


def parse_hooks_json(path: Path, warnings: list[str]) -> list[Definition]:
    """The definitions of a hooks.json file ([] when absent or dropped with a warning)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        warnings.append(f"failed to read hooks config {path}: {exc}")
        return []
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        warnings.append(f"failed to parse hooks config {path}: {exc}")
        return []
    if not isinstance(document, Mapping):
        warnings.append(f"failed to parse hooks config {path}: expected an object")
        return []
    return parse_hooks_table(document.get("hooks") or {}, path, warnings)


def parse_hooks_table(table: Any, path: Path | str, warnings: list[str]) -> list[Definition]:
    """The definitions of a ``hooks`` table (TOML ``[hooks]`` or hooks.json's ``hooks``).

    Ordered by canonical event, then as written.
    """
    if not isinstance(table, Mapping):
        warnings.append(f"failed to parse hooks config {path}: hooks must be a table")
        return []
    try:
        found = _definitions(table, str(path), warnings)
    except _FileError as exc:
        warnings.append(f"failed to parse hooks config {path}: {exc}")
        return []
    order = {event.file: index for index, event in enumerate(EVENTS)}
    found.sort(key=lambda d: order[d.event.file])  # stable: file order within an event
    return found


def _definitions(table: Mapping[str, Any], path: str, warnings: list[str]) -> list[Definition]:
    found: list[Definition] = []
    for name, groups in table.items():
        if name in _NOT_EVENTS:
            continue
        event = event_by_file_name(str(name))
        if event is None:
            raise _FileError(f"unknown hook event `{name}`")
        if not isinstance(groups, list):
            raise _FileError(f"{name}: expected a list of matcher groups")
        for group_index, group in enumerate(groups):
            if not isinstance(group, Mapping):
                raise _FileError(f"{name}[{group_index}]: expected a table")
            keep, matcher = _matcher(event, group.get("matcher"), path, warnings)
            if not keep:
                continue
            handlers = group.get("hooks") or []
            if not isinstance(handlers, list):
                raise _FileError(f"{name}[{group_index}].hooks: expected a list")
            for handler_index, raw in enumerate(handlers):
                handler = _handler(event, raw, path, warnings)
                if handler is not None:
                    found.append(Definition(event, matcher, group_index, handler_index, handler))
    return found


def _matcher(event: Event, raw: Any, path: str, warnings: list[str]) -> tuple[bool, str | None]:
    """``(keep, matcher)``: the group's matcher, and False when the group must be skipped."""
    if raw is not None and not isinstance(raw, str):
        raise _FileError("matcher must be a string")
    if not event.uses_matcher:
        return True, None  # these events run for everything; a matcher there is ignored
    if raw is not None and raw not in ("", "*"):
        try:
            re.compile(raw)
        except re.error as exc:
            warnings.append(f'invalid matcher "{raw}" in {path}: regex parse error: {exc}')
            return False, None
    return True, raw


def _integer(raw: Any, what: str) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise _FileError(f"{what} must be a non-negative integer")
    return raw


def _handler(event: Event, raw: Any, path: str, warnings: list[str]) -> Handler | None:
    if not isinstance(raw, Mapping):
        raise _FileError("a hook handler must be a table")
    kind = raw.get("type")
    if kind not in _TYPES:
        expected = ", ".join(f"`{t}`" for t in _TYPES)
        raise _FileError(f"unknown variant `{kind}`, expected one of {expected}")
    if kind in ("prompt", "agent"):
        warnings.append(f"skipping {kind} hook in {path}: {kind} hooks are not supported yet")
        return None
    timeout = _integer(raw.get("timeout", raw.get("timeoutSec")), "timeout")
    timeout = max(1, event.default_timeout if timeout is None else timeout)
    if event.file == "SessionEnd" and timeout > 3:
        warnings.append(f"clamping SessionEnd hook timeout to 3s in {path}")
        timeout = 3
    status = raw.get("statusMessage", raw.get("status_message"))
    limit = _integer(raw.get("additionalContextLimit"), "additionalContextLimit")
    if kind == "mcp_tool":
        server, tool = raw.get("server"), raw.get("tool")
        if not isinstance(server, str) or not isinstance(tool, str):
            raise _FileError("an mcp_tool hook needs string `server` and `tool`")
        return Handler(
            type="mcp_tool",
            server=server,
            tool=tool,
            input=dict(raw.get("input") or {}),
            timeout=timeout,
            status_message=status if isinstance(status, str) else None,
            additional_context_limit=limit,
        )
    command = raw.get("command")
    if not isinstance(command, str):
        raise _FileError("a command hook needs a string `command`")
    if not command.strip():
        warnings.append(f"skipping empty hook command in {path}")
        return None
    windows = raw.get("commandWindows", raw.get("command_windows"))
    return Handler(
        type="command",
        command=command,
        command_windows=windows if isinstance(windows, str) else None,
        timeout=timeout,
        run_async=bool(raw.get("async", False)),
        status_message=status if isinstance(status, str) else None,
        additional_context_limit=limit,
    )
