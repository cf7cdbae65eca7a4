"""Real marketplace folders, plugin bundles, skills and git repositories for the tests.

Everything is written to disk exactly as a user (or a marketplace author)
would lay it out; the kernel under test reads these files, nothing is faked.
``marketplace_server(serve, tmp)`` starts a kernel with the marketplace
family (and skills, fs, process) and ``HOME`` pointed at ``tmp/user``.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "MARKET_PLUGINS",
    "commit_all",
    "git",
    "make_bundle",
    "make_marketplace",
    "marketplace_server",
    "write_skill",
]

MARKET_PLUGINS = ("marketplace", "skills", "fs", "process")


def write_skill(
    root: Path, name: str, description: str | None = "does things", *, body: str = "Do it.\n",
    front: str = "", directory: str | None = None,
) -> Path:  # fmt: skip
    """``root/<directory or name>/SKILL.md`` with frontmatter; returns the file."""
    folder = root / (directory or name)
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["---", f"name: {name}"]
    if description is not None:
        lines.append(f"description: {description}")
    if front:
        lines.append(front.rstrip("\n"))
    lines.append("---")
    path = folder / "SKILL.md"
    path.write_text("\n".join(lines) + "\n" + body)
    return path


def make_bundle(
    folder: Path,
    name: str,
    *,
    version: str | None = None,
    skills: dict[str, str] | None = None,
    hooks: dict[str, Any] | None = None,
    mcp: Sequence[str] = (),
    apps: dict[str, Any] | None = None,
    interface: dict[str, Any] | None = None,
    manifest: dict[str, Any] | None = None,
) -> Path:
    """A plugin bundle: ``.codex-plugin/plugin.json`` plus its skills, hooks, MCP servers, apps."""
    (folder / ".codex-plugin").mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"name": name, "description": f"the {name} bundle"}
    if version is not None:
        data["version"] = version
    for skill, description in (skills or {}).items():
        write_skill(folder / "skills", skill, description)
    if skills:
        data["skills"] = "./skills/"
    if hooks is not None:
        (folder / "hooks").mkdir(exist_ok=True)
        (folder / "hooks" / "hooks.json").write_text(json.dumps({"hooks": hooks}))
        data["hooks"] = "./hooks/hooks.json"
    if mcp:
        servers = {s: {"command": "true"} for s in mcp}
        (folder / ".mcp.json").write_text(json.dumps({"mcpServers": servers}))
        data["mcpServers"] = "./.mcp.json"
    if apps is not None:
        (folder / ".app.json").write_text(json.dumps({"apps": apps}))
        data["apps"] = "./.app.json"
    if interface is not None:
        data["interface"] = interface
    data.update(manifest or {})
    (folder / ".codex-plugin" / "plugin.json").write_text(json.dumps(data))
    return folder


def make_marketplace(
    root: Path,
    name: str,
    plugins: Sequence[dict[str, Any]],
    *,
    display: str | None = None,
    claude: bool = False,
) -> Path:
    """``root/.agents/plugins/marketplace.json`` (or ``.claude-plugin/``); returns the file."""
    folder = root / (".claude-plugin" if claude else ".agents/plugins")
    folder.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"name": name, "plugins": list(plugins)}
    if display is not None:
        data["interface"] = {"displayName": display}
    path = folder / "marketplace.json"
    path.write_text(json.dumps(data))
    return path


def git(cwd: Path, *args: str) -> str:
    """Run the system git in ``cwd`` (fixed identity); its stdout."""
    done = subprocess.run(
        ["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def commit_all(repo: Path, message: str = "change") -> str:
    """Commit everything in work tree ``repo`` (initialising it first); the new head."""
    if not (repo / ".git").exists():
        git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


@contextlib.asynccontextmanager
async def marketplace_server(
    serve: Any,
    tmp: Path,
    *,
    plugins: Sequence[str] = MARKET_PLUGINS,
    args: Sequence[str] = (),
    home: Path | None = None,
    experimental: bool = True,
) -> AsyncIterator[Any]:
    """A kernel serving ``plugins`` with ``HOME`` at ``tmp/user``; yields the ``Served``."""
    user = tmp / "user"
    user.mkdir(exist_ok=True)
    async with serve(
        plugins=list(plugins), args=list(args), env={"HOME": str(user)}, home=home
    ) as served:
        await served.client.initialize(experimental=experimental)
        yield served
