"""SESSIONS: the other agent's conversation logs, read as turns.

A session is ``~/.claude/projects/<dir>/<id>.jsonl``, one JSON record per
line. Lines that are not JSON objects (a torn last line, garbage) are
skipped; a file with no ``cwd`` or no message is not a session. Records of
``type`` ``user``/``assistant`` (not ``isMeta``, not ``isSidechain``) are
messages; their ``message.content`` is a string or blocks: ``text`` is
kept, ``tool_use`` and ``tool_result`` become short bracketed notes (a user
record holding only tool results counts as the agent's), ``thinking`` is
dropped, other blocks are named. The title is the last ``custom-title``
record's, else the first line of the first user message (120 characters at
most).

Each user message opens a turn; the agent's messages up to the next one
belong to it (agent messages before any user message have no turn and are
dropped). A session's identity is its real path and the SHA-256 of its
bytes: :func:`thread_id_for` derives the imported thread's id from both,
so importing the same content twice can never make two threads, while a
session that grew since is a new import. Everything here blocks.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
import orjson

__all__ = [
    "LoadedSession",
    "Message",
    "connector_names",
    "find_sessions",
    "load_session",
    "session_source_path",
    "thread_id_for",
]

TITLE_MAX = 120
NOTE_MAX = 2000
RESULT_MAX = 4000
_NAMESPACE = uuid.UUID("6b1d3c52-9e0f-4c6e-a8f5-6f1d0e4c2a7b")  # this server's import ids
_MANIFESTS = "claude-code-sessions"


@attrs.frozen
class Message:
    """One message of a session: who, what, when (seconds since the epoch)."""

    role: str  # "user" or "agent"
    text: str
    at: float | None


@attrs.frozen
class LoadedSession:
    """A session read for import (or detection)."""

    path: str  # the real path
    sha256: str
    cwd: str
    title: str | None
    messages: tuple[Message, ...]
    attributions: frozenset[str]  # MCP server ids its records name (connector detection)

    @property
    def latest(self) -> float | None:
        """The newest message time."""
        times = [m.at for m in self.messages if m.at is not None]
        return max(times) if times else None

    def turns(self) -> list[dict[str, Any]]:
        """The conversation as ``import_thread`` turns (see the module docstring)."""
        turns: list[dict[str, Any]] = []
        for message in self.messages:
            at_ms = None if message.at is None else int(message.at * 1000)
            kind = "userMessage" if message.role == "user" else "agentMessage"
            if kind == "userMessage":
                turns.append({"startedAt": _seconds(message.at), "completedAt": None, "items": []})
            elif not turns:
                continue
            turns[-1]["items"].append({"type": kind, "text": message.text, "atMs": at_ms})
            if message.at is not None:
                turns[-1]["completedAt"] = _seconds(message.at)
        return turns

    def preview(self) -> str:
        """The first user message."""
        return next((m.text for m in self.messages if m.role == "user"), "")


def _seconds(at: float | None) -> int | None:
    """Whole seconds, or None."""
    return None if at is None else int(at)


def thread_id_for(path: str, sha256: str) -> str:
    """The id of the thread a session's content becomes (a UUID, stable per content)."""
    return str(uuid.uuid5(_NAMESPACE, f"{path}\0{sha256}"))


def _timestamp(value: Any) -> float | None:
    """An RFC 3339 time as seconds since the epoch (UTC when no zone), or None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()


def _clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _tool_call(block: dict[str, Any]) -> str:
    """A ``tool_use`` block as a short bracketed note."""
    lines = [f"[tool call: {block.get('name') or 'unknown'}]"]
    tool_input = block.get("input")
    if isinstance(tool_input, dict):
        for key, label in (("description", "description"), ("command", "command")):
            if isinstance(tool_input.get(key), str):
                lines.append(f"{label}: {tool_input[key]}")
        path = tool_input.get("file_path") or tool_input.get("file")
        if isinstance(path, str):
            lines.append(f"file: {path}")
    if len(lines) == 1 and tool_input is not None:
        lines.append("input: " + _clip(orjson.dumps(tool_input).decode(), NOTE_MAX))
    return "\n".join(lines)


def _tool_result(block: dict[str, Any]) -> str:
    """A ``tool_result`` block as a short bracketed note (its text clipped)."""
    label = "[tool result: error]" if block.get("is_error") is True else "[tool result]"
    content = block.get("content")
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = "\n".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str) and part["text"]
        )
    else:
        text = ""
    return f"{label}\n{_clip(text, RESULT_MAX)}" if text else label


def _message(record: dict[str, Any]) -> Message | None:
    """The message a record holds, or None (not a message, meta, empty)."""
    kind = record.get("type")
    if kind not in ("user", "assistant") or record.get("isMeta") is True:
        return None
    if record.get("isSidechain") is True:
        return None
    body = record.get("message")
    content = body.get("content") if isinstance(body, dict) else None
    if isinstance(content, str):
        blocks: list[dict[str, Any]] = [{"type": "text", "text": content}]
    elif isinstance(content, list):
        blocks = [b for b in content if isinstance(b, dict)]
    else:
        return None
    parts: list[str] = []
    only_results = bool(blocks)
    for block in blocks:
        block_type = block.get("type")
        if block_type == "text":
            if isinstance(block.get("text"), str) and block["text"]:
                parts.append(block["text"])
                only_results = False
        elif block_type == "tool_use":
            parts.append(_tool_call(block))
            only_results = False
        elif block_type == "tool_result":
            parts.append(_tool_result(block))
        elif block_type in ("thinking", "redacted_thinking"):
            continue
        elif isinstance(block_type, str):
            parts.append(f"[unsupported content: {block_type}]")
            only_results = False
    text = "\n\n".join(part for part in parts if part.strip())
    if not text:
        return None
    role = "agent" if kind == "assistant" or only_results else "user"
    return Message(role, text, _timestamp(record.get("timestamp")))


def parse_session(path: str, data: bytes) -> LoadedSession | None:
    """The session in ``data`` (read from ``path``); None when it holds no conversation."""
    cwd = None
    custom_title = None
    messages: list[Message] = []
    attributions: set[str] = set()
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        if cwd is None and isinstance(record.get("cwd"), str):
            cwd = record["cwd"]
        if record.get("type") == "custom-title" and isinstance(record.get("customTitle"), str):
            custom_title = record["customTitle"].strip() or custom_title
        server = record.get("attributionMcpServer")
        if isinstance(server, str) and server.strip():
            attributions.add(server.strip())
        message = _message(record)
        if message is not None:
            messages.append(message)
    if cwd is None or not os.path.isabs(cwd) or not messages:
        return None
    title = custom_title
    if title is None:
        first = next((m.text for m in messages if m.role == "user"), None)
        if first is not None:
            title = _clip((first.splitlines() or [""])[0].strip(), TITLE_MAX) or None
    return LoadedSession(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        cwd=cwd,
        title=title,
        messages=tuple(messages),
        attributions=frozenset(attributions),
    )


def load_session(path: str) -> LoadedSession | None:
    """Read and parse one session file (``path`` already real); OSError when unreadable."""
    with open(path, "rb") as handle:
        data = handle.read()
    return parse_session(path, data)


def session_source_path(claude_home: Path, path: str) -> str | None:
    """The real path of a ``.jsonl`` under ``~/.claude/projects``, else None.

    What a client names for import must be one of the other agent's
    sessions: anything else (``/etc/passwd``, a link leading out) is refused.
    """
    if not path.endswith(".jsonl"):
        return None
    try:
        real = os.path.realpath(path, strict=True)
        root = os.path.realpath(claude_home / "projects", strict=True)
    except OSError:
        return None
    if not real.startswith(root + os.sep) or not os.path.isfile(real):
        return None
    return real


def find_sessions(
    claude_home: Path,
    imported: set[tuple[str, str]],
    max_age_seconds: float,
    max_count: int,
    now: float,
) -> list[LoadedSession]:
    """Recent sessions not imported yet, newest first (at most ``max_count``).

    ``imported`` holds ``(real path, sha256)`` of sessions already imported
    with that content. A session qualifies when its newest message is at
    most ``max_age_seconds`` old and its cwd still exists.
    """
    root = claude_home / "projects"
    if not root.is_dir() or max_count <= 0:
        return []
    found: list[LoadedSession] = []
    for project in sorted(root.iterdir()):
        if not project.is_dir():
            continue
        for file in sorted(project.glob("*.jsonl")):
            try:
                session = load_session(os.path.realpath(file))
            except OSError:
                continue
            if session is None or (session.path, session.sha256) in imported:
                continue
            if not any(m.role == "user" for m in session.messages):
                continue  # nothing would open a turn: not importable
            latest = session.latest
            if latest is None or latest < now - max_age_seconds:
                continue
            if os.path.isdir(session.cwd):
                found.append(session)
    found.sort(key=lambda s: (-(s.latest or 0.0), s.path))
    return found[:max_count]


def _manifest_roots(user_home: Path) -> list[Path]:
    """Where the desktop app keeps session manifests (Linux and macOS)."""
    return [
        user_home / ".config" / "Claude" / _MANIFESTS,
        user_home / "Library" / "Application Support" / "Claude" / _MANIFESTS,
    ]


def connector_names(
    sessions: Iterable[tuple[str, str, frozenset[str]]], user_home: Path
) -> dict[str, list[str]]:
    """Remote MCP connectors each session used: ``{key: [display names]}``.

    ``sessions`` are ``(key, session id, attributed server ids)``. The other
    agent's desktop app keeps, per session, a manifest naming its remote
    servers (``cliSessionId``, ``remoteMcpServersConfig: [{name, uuid}]``);
    a server counts when a record of the session was attributed to its
    uuid or name.
    """
    wanted: dict[str, list[tuple[str, frozenset[str]]]] = {}
    for key, session_id, ids in sessions:
        if ids:
            wanted.setdefault(session_id, []).append((key, ids))
    names: dict[str, dict[str, str]] = {}
    if not wanted:
        return {}
    for root in _manifest_roots(user_home):
        if not root.is_dir():
            continue
        for manifest_path in sorted(root.rglob("*.json")):
            try:
                manifest = orjson.loads(manifest_path.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue
            if not isinstance(manifest, dict) or manifest.get("cliSessionId") not in wanted:
                continue
            for server in manifest.get("remoteMcpServersConfig") or []:
                name = server.get("name") if isinstance(server, dict) else None
                if not isinstance(name, str) or not name.strip():
                    continue
                name = name.strip()
                for key, ids in wanted[manifest["cliSessionId"]]:
                    lowered = {i.lower() for i in ids}
                    if server.get("uuid") in ids or name.lower() in lowered:
                        names.setdefault(key, {}).setdefault(name.lower(), name)
    return {key: sorted(found.values()) for key, found in names.items()}
