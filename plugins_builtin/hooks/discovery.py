"""Where hooks come from, for one working directory, and whether each may run.

Sources, in the order ``hooks/list`` shows them (each file's entries in
canonical event order):

1. managed: ``[hooks]`` of requirements.toml (keyed by its ``managed_dir``);
2. system: ``<system dir>/hooks.json`` and ``[hooks]`` of the system config.toml;
3. user: ``<home>/hooks.json`` and ``[hooks]`` of the user's config.toml;
4. project: ``<root>/.codex/hooks.json`` and ``<root>/.codex/config.toml``,
   only when ``[projects."<root>"] trust_level = "trusted"``; ``<root>`` is
   the git checkout holding the cwd (a linked worktree uses its main
   checkout, files and trust), or the cwd itself outside git;
5. session flags: ``-c hooks....`` (path ``/<session-flags>/config.toml``);
6. installed plugin bundles (the ``hooks_bundles`` hook).

Managed and system hooks always run. Every other hook runs only when the
user trusted exactly its current definition (``[hooks.state."<key>"]
trusted_hash`` equals its ``currentHash``) and did not disable it
(``enabled = false``). ``allow_managed_hooks_only = true`` in
requirements.toml leaves out 3 to 6 (the key means nothing elsewhere).
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from kernel.config import MANAGED, SESSION_FLAGS, SYSTEM, USER, Config

from .events import hook_hash
from .sources import Definition, parse_hooks_json, parse_hooks_table

__all__ = ["Bundle", "Hook", "Listing", "discover", "project_root", "project_trusted"]

SESSION_FLAGS_PATH = "/<session-flags>/config.toml"


@attrs.frozen
class Bundle:
    """An installed plugin bundle's hooks file (from the ``hooks_bundles`` hook)."""

    plugin_id: str
    root: str
    hooks_file: str
    relative_path: str
    version: str
    data_dir: str


@attrs.frozen
class Hook:
    """One discovered hook, ready to list or run."""

    key: str
    definition: Definition
    source: str
    source_path: str
    plugin: Bundle | None
    is_managed: bool
    current_hash: str
    trust_status: str
    enabled: bool
    display_order: int

    @property
    def runnable(self) -> bool:
        """Enabled, and managed or trusted as it is now."""
        return self.enabled and self.trust_status in ("managed", "trusted")

    def metadata(self) -> dict[str, Any]:
        """``HookMetadata`` on the wire."""
        d, h = self.definition, self.definition.handler
        meta: dict[str, Any] = {"key": self.key, "eventName": d.event.wire}
        meta["handlerType"] = h.wire_type
        if h.type == "command":
            meta.update(command=h.command, **{"async": h.run_async})
        elif h.type == "mcp_tool":
            meta.update(server=h.server, tool=h.tool)
        meta.update(
            matcher=d.matcher,
            timeoutSec=h.timeout,
            statusMessage=h.status_message,
            additionalContextLimit=h.additional_context_limit,
            sourcePath=self.source_path,
            source=self.source,
            pluginId=self.plugin.plugin_id if self.plugin else None,
            environmentId=None,
            displayOrder=self.display_order,
            enabled=self.enabled,
            isManaged=self.is_managed,
            currentHash=self.current_hash,
            trustStatus=self.trust_status,
        )
        return meta


@attrs.frozen
class Listing:
    """What ``hooks/list`` reports for one cwd."""

    cwd: str
    hooks: list[Hook]
    warnings: list[str]

    def wire(self) -> dict[str, Any]:
        """``HooksListEntry``."""
        return {
            "cwd": self.cwd,
            "hooks": [hook.metadata() for hook in self.hooks],
            "warnings": list(self.warnings),
            "errors": [],
        }


def project_root(cwd: Path) -> Path:
    """The checkout whose ``.codex`` applies to ``cwd`` (a worktree's main checkout)."""
    for folder in (cwd, *cwd.parents):
        marker = folder / ".git"
        if marker.is_dir():
            return folder
        if marker.is_file():
            return _main_checkout(marker) or folder
    return cwd


def project_trusted(config: Config, root: Path) -> bool:
    """``[projects."<root>"] trust_level = "trusted"`` in the configuration."""
    projects = config.get("projects")
    entry = projects.get(str(root)) if isinstance(projects, Mapping) else None
    return isinstance(entry, Mapping) and entry.get("trust_level") == "trusted"


def _main_checkout(marker: Path) -> Path | None:
    """For a linked worktree's ``.git`` file, the main checkout (via ``commondir``)."""
    try:
        text = marker.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("gitdir:"):
        return None
    gitdir = Path(text.removeprefix("gitdir:").strip())
    if not gitdir.is_absolute():
        gitdir = (marker.parent / gitdir).resolve()
    try:
        common = (gitdir / "commondir").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    common_dir = (gitdir / common).resolve()
    return common_dir.parent if common_dir.name == ".git" else None


class _Collector:
    def __init__(self, state: Mapping[str, Any]) -> None:
        self.state = state
        self.hooks: list[Hook] = []

    def add(
        self,
        definitions: Sequence[Definition],
        key_prefix: str,
        source: str,
        source_path: str,
        managed: bool,
        plugin: Bundle | None = None,
    ) -> None:
        for d in definitions:
            key = f"{key_prefix}:{d.event.snake}:{d.group_index}:{d.handler_index}"
            current = hook_hash(d.event, d.matcher, d.handler)
            if plugin is not None:  # a new bundle version must be trusted again
                digest = hashlib.sha256(f"{plugin.plugin_id}@{plugin.version}".encode())
                current = f"{current}/sha256:{digest.hexdigest()}"
            entry = self.state.get(key)
            entry = entry if isinstance(entry, Mapping) else {}
            if managed:
                trust, enabled = "managed", True
            else:
                trusted = entry.get("trusted_hash")
                trust = (
                    "untrusted"
                    if not isinstance(trusted, str)
                    else ("trusted" if trusted == current else "modified")
                )
                enabled = entry.get("enabled") is not False
            order = len(self.hooks)
            self.hooks.append(
                Hook(key, d, source, source_path, plugin, managed, current, trust, enabled, order)
            )


def _layer(config: Config, name: str) -> Mapping[str, Any]:
    return config.layer_tree(name)


def _toml_hooks(tree: Mapping[str, Any]) -> Any:
    table = tree.get("hooks")
    if not isinstance(table, Mapping):
        return None
    events = {k: v for k, v in table.items() if k not in ("state", "managed_dir")}
    return events or None


def _pair(
    collector: _Collector,
    folder: Path,
    toml_tree: Mapping[str, Any] | None,
    toml_path: Path,
    source: str,
    managed: bool,
    warnings: list[str],
) -> None:
    """A layer's hooks.json then its config.toml ``[hooks]``, with the both-present warning."""
    json_path = folder / "hooks.json"
    table = _toml_hooks(toml_tree or {})
    if json_path.is_file() and table is not None:
        warnings.append(
            f"loading hooks from both {json_path} and {toml_path}; prefer a single "
            "representation for this layer"
        )
    collector.add(
        parse_hooks_json(json_path, warnings), str(json_path), source, str(json_path), managed
    )
    if table is not None:
        definitions = parse_hooks_table(table, toml_path, warnings)
        collector.add(definitions, str(toml_path), source, str(toml_path), managed)


def _project_tree(path: Path, warnings: list[str]) -> dict[str, Any] | None:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        warnings.append(f"failed to parse hooks config {path}: {exc}")
        return None


def discover(
    config: Config, cwd: str, bundles: Sequence[Bundle], home: Path | None = None
) -> Listing:
    """Every hook that applies in ``cwd`` (blocking: reads files)."""
    home = home or config.home
    warnings: list[str] = []
    user_tree, flags_tree = _layer(config, USER), _layer(config, SESSION_FLAGS)
    state: dict[str, Any] = {}
    for tree in (user_tree, flags_tree):
        hooks = tree.get("hooks")
        table = hooks.get("state") if isinstance(hooks, Mapping) else None
        if isinstance(table, Mapping):
            state.update(table)
    collector = _Collector(state)
    managed_tree = _layer(config, MANAGED)
    managed_hooks = managed_tree.get("hooks")
    if isinstance(managed_hooks, Mapping):
        where = managed_hooks.get("managed_dir")
        path = str(where) if isinstance(where, str) else str(config.requirements_path)
        definitions = parse_hooks_table(_toml_hooks(managed_tree) or {}, path, warnings)
        collector.add(definitions, path, "system", path, True)
    system_tree = _layer(config, SYSTEM)
    _pair(collector, config.system_dir, system_tree, config.system_path, "system", True, warnings)
    if managed_tree.get("allow_managed_hooks_only") is True:
        return Listing(cwd, collector.hooks, warnings)
    _pair(collector, home, user_tree, config.user_path, "user", False, warnings)
    if os.path.isabs(cwd):
        root = project_root(Path(cwd))
        if project_trusted(config, root):
            dot = root / ".codex"
            project_tree = _project_tree(dot / "config.toml", warnings)
            _pair(collector, dot, project_tree, dot / "config.toml", "project", False, warnings)
    table = _toml_hooks(flags_tree)
    if table is not None:
        definitions = parse_hooks_table(table, SESSION_FLAGS_PATH, warnings)
        collector.add(definitions, SESSION_FLAGS_PATH, "sessionFlags", SESSION_FLAGS_PATH, False)
    for bundle in bundles:
        found = parse_hooks_json(Path(bundle.hooks_file), warnings)
        found = [_substituted(d, bundle) for d in found]
        prefix = f"{bundle.plugin_id}:{bundle.relative_path}"
        collector.add(found, prefix, "plugin", bundle.hooks_file, False, bundle)
    return Listing(cwd, collector.hooks, warnings)


def _substituted(definition: Definition, bundle: Bundle) -> Definition:
    """``${PLUGIN_ROOT}`` (and the Claude spelling) in a bundle's command, made real."""
    handler = definition.handler
    command = handler.command
    for name, value in (
        ("PLUGIN_ROOT", bundle.root),
        ("CLAUDE_PLUGIN_ROOT", bundle.root),
        ("PLUGIN_DATA", bundle.data_dir),
        ("CLAUDE_PLUGIN_DATA", bundle.data_dir),
    ):
        command = command.replace("${" + name + "}", value)
    return attrs.evolve(definition, handler=attrs.evolve(handler, command=command))
