"""HOOKS: the other agent's ``hooks`` settings as a hooks.json in the reference's format.

Read from ``settings.json`` then ``settings.local.json`` of ``~/.claude`` (or
``<repo>/.claude``); ``disableAllHooks: true`` in either means none. For
each event the reference knows, a matcher group carrying only ``matcher``
and ``hooks`` is kept with its command hooks (``type: "command"``, a
non-empty ``command``, optionally ``timeout``/``timeoutSec`` and
``statusMessage``); asynchronous hooks, other hook types and extra keys
(``if``, ``shell``, ``once``...) have no equivalent and are left out.
``matcher`` is kept for the events that use one.

The result is ``{"hooks": {"<Event>": [{"matcher", "hooks": [{"type":
"command", "command", "timeout", "statusMessage"}]}]}}`` written to
``<home>/hooks.json`` (``<repo>/.codex/hooks.json``), only when that file is
missing or empty, with the scripts of ``.claude/hooks/`` copied to
``hooks/`` beside it (existing files kept). A command naming a script by
``.claude/hooks/<file>`` (plain, ``./``, ``$CLAUDE_PROJECT_DIR/`` or
``~/`` prefixed, quoted or not) is rewritten to the copied script's
absolute path, single-quoted; a path with shell expansions in it is left as
written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from kernel import atomic_write

from .source import LOCAL_SETTINGS, SETTINGS, Scope, SourceError, read_json, rewrite_terms

__all__ = ["EVENTS", "hook_groups", "write_hooks"]

EVENTS = (
    "PreToolUse",
    "PermissionRequest",
    "PostToolUse",
    "PreCompact",
    "PostCompact",
    "SessionStart",
    "SessionEnd",
    "UserPromptSubmit",
    "SubagentStart",
    "SubagentStop",
    "Stop",
)
_WITH_MATCHERS = frozenset(EVENTS) - {"UserPromptSubmit", "Stop"}
_HOOK_KEYS = frozenset({"type", "command", "timeout", "timeoutSec", "statusMessage", "async"})
_MARKER = ".claude/hooks/"
_BOUNDARY = frozenset(" \t\n;|&<>()=")
_DYNAMIC = frozenset("\\$`*?[{}'\"")


def hook_groups(scope: Scope) -> dict[str, list[dict[str, Any]]]:
    """The convertible hook groups per event (empty when there is nothing to migrate)."""
    documents = []
    disabled = False
    for name in (SETTINGS, LOCAL_SETTINGS):
        settings = read_json(scope.source_dir / name)
        if settings is None:
            continue
        if not isinstance(settings, dict):
            raise SourceError(f"{scope.source_dir / name}: the settings root must be an object")
        if isinstance(settings.get("disableAllHooks"), bool):
            disabled = settings["disableAllHooks"]
        documents.append(settings)
    if disabled:
        return {}
    scripts = scope.target_hooks.parent / "hooks"
    groups: dict[str, list[dict[str, Any]]] = {}
    for settings in documents:
        table = settings.get("hooks")
        if not isinstance(table, dict):
            continue
        for event in EVENTS:
            for group in table.get(event) or []:
                converted = _group(event, group, scripts)
                if converted is not None:
                    groups.setdefault(event, []).append(converted)
    return groups


def _group(event: str, group: Any, scripts: Path) -> dict[str, Any] | None:
    """One matcher group in the target format, or None when nothing in it converts."""
    if not isinstance(group, dict) or set(group) - {"matcher", "hooks"}:
        return None
    hooks = []
    for hook in group.get("hooks") or []:
        if not isinstance(hook, dict) or set(hook) - _HOOK_KEYS:
            continue
        if hook.get("type", "command") != "command" or hook.get("async") is True:
            continue
        command = hook.get("command")
        if not isinstance(command, str) or not command.strip():
            continue
        converted: dict[str, Any] = {
            "type": "command",
            "command": rewrite_command(command.strip(), scripts),
        }
        timeout = _seconds(hook.get("timeout", hook.get("timeoutSec")))
        if timeout is not None:
            converted["timeout"] = timeout
        if isinstance(hook.get("statusMessage"), str):
            converted["statusMessage"] = rewrite_terms(hook["statusMessage"])
        hooks.append(converted)
    if not hooks:
        return None
    payload: dict[str, Any] = {}
    if event in _WITH_MATCHERS and isinstance(group.get("matcher"), str):
        payload["matcher"] = group["matcher"]
    payload["hooks"] = hooks
    return payload


def _seconds(value: Any) -> int | None:
    """A hook timeout in whole seconds, or None when unusable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _tokens(command: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each shell word: split at unquoted boundaries."""
    spans, start, quote, escaped = [], None, "", False
    for index, char in enumerate(command):
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in _BOUNDARY:
            if start is not None:
                spans.append((start, index))
                start = None
            continue
        if start is None:
            start = index
    if start is not None:
        spans.append((start, len(command)))
    return spans


def _replacement(word: str, scripts: Path) -> str | None:
    """The quoted target path for one shell word naming a hook script, or None."""
    content = word
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"":
        content = word[1:-1]
    at = content.find(_MARKER)
    if at < 0:
        return None
    prefix, suffix = content[:at], content[at + len(_MARKER) :]
    if prefix and prefix != "./" and not prefix.endswith("/"):
        return None
    if any(c in " \t" for c in prefix) or not suffix or any(c in _DYNAMIC for c in suffix):
        return None
    target = str(scripts / suffix)
    return "'" + target.replace("'", "'\\''") + "'"


def rewrite_command(command: str, scripts: Path) -> str:
    """``command`` with each ``.claude/hooks/<file>`` word pointing at the copied script."""
    if "%CLAUDE_PROJECT_DIR%" in command or "$env:CLAUDE_PROJECT_DIR" in command:
        return command  # a Windows command: its paths are not ours to rewrite
    out, last = [], 0
    for start, end in _tokens(command):
        if start > 0 and command[start - 1] == "=":
            continue  # an assignment's value (VAR=path) stays as written
        replacement = _replacement(command[start:end], scripts)
        if replacement is not None:
            out.append(command[last:start] + replacement)
            last = end
    out.append(command[last:])
    return "".join(out)


def _copy_scripts(source: Path, target: Path) -> None:
    """Copy hook scripts recursively, keeping files already there."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in sorted(source.iterdir()):
        destination = target / entry.name
        if entry.is_symlink():
            continue
        if entry.is_dir():
            _copy_scripts(entry, destination)
        elif entry.is_file() and not destination.exists():
            shutil.copy2(entry, destination)


def write_hooks(scope: Scope, groups: dict[str, list[dict[str, Any]]]) -> None:
    """Write ``groups`` as the target hooks.json and copy the hook scripts beside it."""
    target = scope.target_hooks
    target.parent.mkdir(parents=True, exist_ok=True)
    scripts = scope.source_dir / "hooks"
    if scripts.is_dir():
        _copy_scripts(scripts, target.parent / "hooks")
    text = json.dumps({"hooks": groups}, indent=2) + "\n"
    atomic_write(target, text.encode("utf-8"), mode=0o600)
