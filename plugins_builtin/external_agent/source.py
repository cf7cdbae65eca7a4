"""The other agent (Claude Code) on disk, and where each thing lands on this server.

Read from ``$HOME`` (never a fixed path, so tests and multi-user machines
point it elsewhere): ``~/.claude/`` (``settings.json`` and
``settings.local.json``, ``CLAUDE.md``, ``skills/``, ``commands/``,
``agents/``, ``hooks/``, ``projects/<dir>/<session>.jsonl``),
``~/.claude.json`` and ``~/.mcp.json``; in a repository, ``CLAUDE.md`` or
``.claude/CLAUDE.md``, ``.claude/`` and ``.mcp.json``.

:class:`Scope` says, for the home or one repository, where each thing comes
from and where it goes (the reference's targets; home targets are inside
this server's home). Helpers here are pure or blocking file reads; callers
run them in the kernel's blocking threads.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import attrs
import yaml

__all__ = [
    "REWRITE_TERMS",
    "Scope",
    "SourceError",
    "effective_settings",
    "external_home",
    "find_repo_root",
    "is_missing_or_empty",
    "is_non_empty_text",
    "parse_document",
    "read_json",
    "rewrite_terms",
]

CONFIG_DIR = ".claude"
CONFIG_MD = "CLAUDE.md"
SETTINGS = "settings.json"
LOCAL_SETTINGS = "settings.local.json"
#: Names of the other agent in text, replaced by the target's (longest first).
REWRITE_TERMS = ("claude code", "claude-code", "claude_code", "claudecode", "claude")
_TARGET_NAME = "Codex"


class SourceError(Exception):
    """A file of the other agent cannot be used; the message says which and why."""


def external_home() -> Path:
    """``$HOME/.claude`` (``$HOME`` read now, so the process environment decides)."""
    home = os.environ.get("HOME") or os.path.expanduser("~")
    return Path(home) / CONFIG_DIR


@attrs.frozen
class Scope:
    """The home (``repo`` None) or one repository: sources and targets."""

    claude_home: Path
    server_home: Path
    repo: Path | None = None

    @property
    def cwd(self) -> str | None:
        """The ``cwd`` of this scope's items (null for the home)."""
        return None if self.repo is None else str(self.repo)

    @property
    def user_home(self) -> Path:
        """``$HOME`` (where ``.claude`` lives)."""
        return self.claude_home.parent

    @property
    def source_dir(self) -> Path:
        """``~/.claude`` or ``<repo>/.claude``."""
        return self.claude_home if self.repo is None else self.repo / CONFIG_DIR

    @property
    def mcp_root(self) -> Path:
        """Where ``.mcp.json`` and ``.claude.json`` are looked for."""
        return self.user_home if self.repo is None else self.repo

    @property
    def settings(self) -> Path:
        """The scope's ``settings.json`` (``settings.local.json`` is read beside it)."""
        return self.source_dir / SETTINGS

    @property
    def target_config(self) -> Path:
        """``<home>/config.toml`` or ``<repo>/.codex/config.toml``."""
        if self.repo is None:
            return self.server_home / "config.toml"
        return self.repo / ".codex" / "config.toml"

    @property
    def target_hooks(self) -> Path:
        """``<home>/hooks.json`` or ``<repo>/.codex/hooks.json``."""
        if self.repo is None:
            return self.server_home / "hooks.json"
        return self.repo / ".codex" / "hooks.json"

    @property
    def target_skills(self) -> Path:
        """Where the skills family finds user (``<home>/skills``) or repo skills."""
        if self.repo is None:
            return self.server_home / "skills"
        return self.repo / ".agents" / "skills"

    @property
    def target_agents(self) -> Path:
        """``<home>/agents`` or ``<repo>/.codex/agents`` (one TOML per subagent)."""
        if self.repo is None:
            return self.server_home / "agents"
        return self.repo / ".codex" / "agents"

    @property
    def target_agents_md(self) -> Path:
        """``<home>/AGENTS.md`` or ``<repo>/AGENTS.md``."""
        if self.repo is None:
            return self.server_home / "AGENTS.md"
        return self.repo / "AGENTS.md"

    def agents_md_source(self) -> Path | None:
        """The non-empty instructions file of this scope, if any."""
        if self.repo is None:
            candidates = [self.claude_home / CONFIG_MD]
        else:
            candidates = [self.repo / CONFIG_MD, self.repo / CONFIG_DIR / CONFIG_MD]
        return next((path for path in candidates if is_non_empty_text(path)), None)


def find_repo_root(cwd: str) -> Path | None:
    """The nearest ancestor of ``cwd`` holding ``.git``, else ``cwd``; None if it is missing."""
    path = Path(cwd)
    if not path.exists():
        return None
    if path.is_file():
        path = path.parent
    probe = path
    while True:
        if (probe / ".git").exists():
            return probe
        if probe.parent == probe:
            return path
        probe = probe.parent


def read_json(path: Path) -> Any:
    """The JSON in ``path``; None when it does not exist; :class:`SourceError` if unusable."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read {path}: {exc}") from None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise SourceError(f"invalid JSON in {path}: {exc}") from None


def _merge(existing: Any, incoming: Any) -> Any:
    """``incoming`` merged over ``existing``, tables key by key."""
    if isinstance(existing, dict) and isinstance(incoming, dict):
        merged = dict(existing)
        for key, value in incoming.items():
            merged[key] = _merge(merged[key], value) if key in merged else value
        return merged
    return incoming


def effective_settings(settings: Path) -> dict[str, Any] | None:
    """``settings.json`` with ``settings.local.json`` beside it merged over it.

    A local file that is not valid JSON is ignored, as the reference does;
    a broken ``settings.json`` raises :class:`SourceError`.
    """
    base = read_json(settings)
    if base is not None and not isinstance(base, dict):
        raise SourceError(f"{settings}: the settings root must be an object")
    try:
        local = read_json(settings.with_name(LOCAL_SETTINGS))
    except SourceError:
        local = None
    if not isinstance(local, dict):
        return base
    return local if base is None else _merge(base, local)


def is_non_empty_text(path: Path) -> bool:
    """A readable text file with more than whitespace."""
    try:
        return path.is_file() and bool(path.read_text(encoding="utf-8").strip())
    except (OSError, UnicodeDecodeError):
        return False


def is_missing_or_empty(path: Path) -> bool:
    """Nothing at ``path``, or a file holding only whitespace (safe to write)."""
    if not path.exists():
        return True
    if not path.is_file():
        return False
    try:
        return not path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return False


def _replace_word(text: str, needle: str, replacement: str) -> str:
    """Replace ``needle`` as a whole word, ignoring case."""
    pattern = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(needle)}(?![A-Za-z0-9_])", re.IGNORECASE)
    return pattern.sub(replacement, text)


def rewrite_terms(text: str) -> str:
    """The other agent's names in ``text`` replaced (``CLAUDE.md`` → ``AGENTS.md``...)."""
    text = _replace_word(text, CONFIG_MD, "AGENTS.md")
    for term in REWRITE_TERMS:
        text = _replace_word(text, term, _TARGET_NAME)
    return text


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A safe YAML loader for frontmatter."""


def parse_document(text: str) -> tuple[dict[str, Any] | None, str]:
    """``(frontmatter, body)`` of a Markdown file; frontmatter None when unusable.

    A file without a ``---`` block has an empty frontmatter and is all body.
    """
    for opening in ("---\n", "---\r\n"):
        if text.startswith(opening):
            rest = text[len(opening) :]
            break
    else:
        return {}, text
    match = re.search(r"\r?\n---[ \t]*(?:\r?\n|$)", rest)
    if match is None:
        return {}, text
    raw, body = rest[: match.start()], rest[match.end() :]
    try:
        data = yaml.load(raw, Loader=_Loader)  # a safe loader
    except yaml.YAMLError:
        return None, body
    if data is None:
        return {}, body
    if not isinstance(data, dict):
        return None, body
    front: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(key, str) and key.strip():
            if isinstance(value, str):
                front[key.strip()] = value.strip()
            elif isinstance(value, bool | int | float):
                front[key.strip()] = str(value).lower() if isinstance(value, bool) else str(value)
    return front, body
