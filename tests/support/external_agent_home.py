"""A realistic Claude Code home for the external_agent tests, built by code.

``build_home(root)`` writes, under ``root`` (the fake ``$HOME``):

* ``.claude/settings.json`` (env, sandbox, hooks, MCP filters) and
  ``settings.local.json`` (one more env variable, one more hook);
* ``.claude/CLAUDE.md``; skills ``review`` (valid) and ``broken`` (no
  description); commands ``deploy``, ``pr/review`` and ``args`` (uses
  ``$ARGUMENTS``: refused); subagents ``reviewer`` and ``README``; a hook
  script ``.claude/hooks/check.py``;
* ``.claude.json`` (MCP servers: stdio ``docs``, HTTP ``tracker`` with a
  bearer token variable, SSE ``legacy`` (unsupported), ``muted``
  (disabled by settings)) and ``.mcp.json`` (``search``);
* sessions under ``.claude/projects/-work-app/``: ``alpha`` (tools,
  thinking, a tool result, a custom title), ``beta`` (two turns), ``gamma``
  (garbage lines and a torn last line around real messages), ``broken``
  (nothing usable), ``ancient`` (older than 30 days), ``orphan`` (agent
  messages only); a memory note;
* the desktop app's session manifest naming connector ``Linear`` for
  ``alpha``;
* a repository ``work/app`` (``.git``, ``CLAUDE.md``, ``.claude/settings.json``
  with hooks naming scripts in the ways commands do, a hook script,
  ``.mcp.json``, a skill) that is the sessions' cwd.

``write_sessions(root, count, cwd)`` adds ``count`` more small sessions
(the large-history test and the benchmark).
"""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path
from typing import Any

__all__ = ["SESSION_IDS", "FakeHome", "build_home", "session_record", "write_sessions"]

SESSION_IDS = {
    "alpha": "11111111-1111-4111-8111-111111111111",
    "beta": "22222222-2222-4222-8222-222222222222",
    "gamma": "33333333-3333-4333-8333-333333333333",
    "broken": "44444444-4444-4444-8444-444444444444",
    "ancient": "55555555-5555-4555-8555-555555555555",
    "orphan": "66666666-6666-4666-8666-666666666666",
}


def _stamp(at: float) -> str:
    moment = datetime.datetime.fromtimestamp(at, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def session_record(kind: str, content: Any, cwd: str, at: float, **extra: Any) -> dict[str, Any]:
    """One line of a Claude Code session."""
    role = "user" if kind == "user" else "assistant"
    return {
        "type": kind,
        "cwd": cwd,
        "sessionId": "x",
        "timestamp": _stamp(at),
        "message": {"role": role, "content": content},
        **extra,
    }


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _jsonl(path: Path, records: list[Any]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    return _write(path, "\n".join(lines) + "\n")


class FakeHome:
    """Paths of a built home."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.claude = root / ".claude"
        self.repo = root / "work" / "app"
        self.project = self.claude / "projects" / "-work-app"

    def session(self, name: str) -> Path:
        return self.project / f"{SESSION_IDS[name]}.jsonl"


def _settings(home: FakeHome) -> None:
    hook = {"type": "command", "command": "python3 ~/.claude/hooks/check.py", "timeout": 5}
    settings = {
        "model": "opus",
        "env": {"FOO": "bar", "DEBUG": 1, "EMPTY": None},
        "sandbox": {"enabled": True},
        "disabledMcpjsonServers": ["muted"],
        "hooks": {
            "PreToolUse": [
                {
                    "matcher": "Bash",
                    "hooks": [hook, {"type": "command", "command": "x", "async": True}],
                }
            ],
            "Stop": [{"hooks": [{"type": "command", "command": "echo claude stopped"}]}],
            "Notification": [{"hooks": [{"type": "command", "command": "notify-send hi"}]}],
        },
    }
    _write(home.claude / "settings.json", json.dumps(settings))
    local = {
        "env": {"LOCAL_ONLY": "yes"},
        "hooks": {"UserPromptSubmit": [{"hooks": [{"type": "command", "command": "log-prompt"}]}]},
    }
    _write(home.claude / "settings.local.json", json.dumps(local))
    _write(home.claude / "CLAUDE.md", "# Rules\n\nClaude Code must read CLAUDE.md first.\n")
    _write(home.claude / "hooks" / "check.py", "print('checked')\n")


def _documents(home: FakeHome) -> None:
    skill = "---\nname: review\ndescription: Review code like Claude does\n---\nLook closely.\n"
    _write(home.claude / "skills" / "review" / "SKILL.md", skill)
    _write(home.claude / "skills" / "review" / "scripts" / "lint.sh", "echo lint\n")
    _write(
        home.claude / "skills" / "broken" / "SKILL.md", "---\nname: broken\n---\nNo description.\n"
    )
    _write(
        home.claude / "commands" / "deploy.md",
        "---\ndescription: Deploy the app\n---\nRun the deploy script and report.\n",
    )
    _write(
        home.claude / "commands" / "pr" / "review.md",
        "---\ndescription: Review a pull request\n---\nRead the diff with claude care.\n",
    )
    _write(
        home.claude / "commands" / "args.md",
        "---\ndescription: Takes arguments\n---\nDo $ARGUMENTS now.\n",
    )
    agent = (
        "---\nname: reviewer\ndescription: Reviews changes for Claude Code\neffort: high\n"
        "permissionMode: readOnly\n---\nYou review code carefully.\n"
    )
    _write(home.claude / "agents" / "reviewer.md", agent)
    _write(home.claude / "agents" / "README.md", "# about agents\n")


def _mcp(home: FakeHome) -> None:
    state = {
        "mcpServers": {
            "docs": {
                "command": "npx",
                "args": ["-y", "docs-server"],
                "env": {"API_KEY": "${API_KEY}", "MODE": "fast"},
            },
            "tracker": {
                "type": "http",
                "url": "https://tracker.example/mcp",
                "headers": {"Authorization": "Bearer ${TRACKER_TOKEN}", "X-Team": "core"},
            },
            "legacy": {"type": "sse", "url": "https://legacy.example/sse"},
            "muted": {"command": "muted-server"},
        },
        "projects": {str(home.repo): {"mcpServers": {"repo-only": {"command": "repo-server"}}}},
    }
    _write(home.root / ".claude.json", json.dumps(state))
    _write(
        home.root / ".mcp.json", json.dumps({"mcpServers": {"search": {"command": "search-mcp"}}})
    )


def _repo(home: FakeHome) -> None:
    (home.repo / ".git").mkdir(parents=True)
    _write(home.repo / "CLAUDE.md", "Repository rules for claude.\n")
    hooks = {
        "PostToolUse": [
            {
                "matcher": "Edit",
                "hooks": [{"command": '"$CLAUDE_PROJECT_DIR"/.claude/hooks/fmt.sh'}],
            }
        ],
        "SessionStart": [{"hooks": [{"command": "bash '.claude/hooks/start up.sh' --quiet"}]}],
        "Stop": [{"hooks": [{"command": "A=.claude/hooks/x.sh run ./.claude/hooks/$NAME"}]}],
    }
    _write(
        home.repo / ".claude" / "settings.json", json.dumps({"env": {"REPO": "1"}, "hooks": hooks})
    )
    _write(home.repo / ".claude" / "hooks" / "fmt.sh", "#!/bin/sh\nexit 0\n")
    _write(home.repo / ".mcp.json", json.dumps({"mcpServers": {"lint": {"command": "lint-mcp"}}}))
    _write(
        home.repo / ".claude" / "skills" / "fmt" / "SKILL.md",
        "---\nname: fmt\ndescription: Format code\n---\nRun the formatter.\n",
    )


def _sessions(home: FakeHome, now: float) -> None:
    cwd = str(home.repo)
    alpha = [
        {"type": "summary", "summary": "ignored"},
        session_record("user", "Fix the login bug\nIt fails on Safari", cwd, now - 3600),
        session_record(
            "assistant",
            [
                {"type": "thinking", "thinking": "secret thoughts"},
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "name": "Bash", "input": {"command": "ls src"}},
            ],
            cwd,
            now - 3590,
            attributionMcpServer="srv-linear",
        ),
        session_record(
            "user",
            [{"type": "tool_result", "content": "login.py\nmain.py", "is_error": False}],
            cwd,
            now - 3580,
        ),
        session_record("assistant", "Fixed it in login.py.", cwd, now - 3570),
        session_record("user", "meta note", cwd, now - 3565, isMeta=True),
        {"type": "custom-title", "customTitle": "Safari login fix"},
    ]
    _jsonl(home.session("alpha"), alpha)
    beta = [
        session_record("user", "Write a README", cwd, now - 7200),
        session_record("assistant", "Here is a README draft.", cwd, now - 7190),
        session_record("user", "Shorter please", cwd, now - 7100),
        session_record("assistant", "Shorter draft.", cwd, now - 7090),
    ]
    _jsonl(home.session("beta"), beta)
    gamma = [
        "this is not json",
        session_record("user", "Rename the module", cwd, now - 10800),
        "{broken json",
        "[1, 2, 3]",
        session_record("assistant", "Renamed.", cwd, now - 10790),
    ]
    path = _jsonl(home.session("gamma"), gamma)
    with path.open("a") as handle:
        handle.write('{"type": "user", "cwd": "' + cwd + '", "message": {"cont')  # torn
    _jsonl(home.session("broken"), ["garbage", '{"no": ', "42"])
    old = now - 60 * 86400
    _jsonl(
        home.session("ancient"),
        [
            session_record("user", "Old question", cwd, old),
            session_record("assistant", "Old answer", cwd, old + 5),
        ],
    )
    _jsonl(home.session("orphan"), [session_record("assistant", "Nobody asked.", cwd, now - 100)])
    _write(home.project / "memory" / "notes.md", "Prefers tabs.\n")
    manifest = {
        "cliSessionId": SESSION_IDS["alpha"],
        "remoteMcpServersConfig": [{"name": "Linear", "uuid": "srv-linear"}, {"name": "Gmail"}],
    }
    _write(
        home.root / ".config" / "Claude" / "claude-code-sessions" / "a" / "m.json",
        json.dumps(manifest),
    )


def build_home(root: Path, *, now: float | None = None) -> FakeHome:
    """Write the whole fake home under ``root``; see the module docstring."""
    home = FakeHome(root)
    now = time.time() if now is None else now
    _repo(home)
    _settings(home)
    _documents(home)
    _mcp(home)
    _sessions(home, now)
    return home


def write_sessions(root: Path, count: int, cwd: Path, *, now: float | None = None) -> list[Path]:
    """``count`` more sessions (two turns each) under ``root/.claude/projects/-bulk``."""
    now = time.time() if now is None else now
    project = root / ".claude" / "projects" / "-bulk"
    project.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        at = now - 60 - index
        records = [
            session_record("user", f"question {index}", str(cwd), at),
            session_record("assistant", f"answer {index}", str(cwd), at + 1),
            session_record("user", f"follow-up {index}", str(cwd), at + 2),
            session_record("assistant", f"done {index}", str(cwd), at + 3),
        ]
        path = project / f"bulk-{index:05d}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        paths.append(path)
    return paths
