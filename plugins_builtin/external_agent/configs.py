"""CONFIG and MCP_SERVER_CONFIG: the other agent's settings as config.toml tables.

CONFIG (the reference's mapping): ``env`` becomes ``[shell_environment_policy]``
``inherit = "core"`` with ``set`` holding the variables (strings; numbers
and booleans as text; null, lists and objects dropped);
``sandbox.enabled = true`` becomes ``sandbox_mode = "workspace-write"``.

MCP_SERVER_CONFIG: servers from ``.mcp.json`` and ``.claude.json`` (its
top-level ``mcpServers`` and those of its ``projects`` entry for the
scope's directory; for a repository also the entry in ``~/.claude.json``,
where the repository's own files win), filtered by
``enabledMcpjsonServers``/``disabledMcpjsonServers`` and each server's
``disabled``/``enabled`` flag. A stdio server keeps ``command``, ``args``
and ``env`` (``"${NAME}"`` for the variable of the same name becomes
``env_vars``); an HTTP server keeps ``url`` and its headers
(``Authorization: Bearer ${TOKEN}`` becomes ``bearer_token_env_var``,
``"${VAR}"`` values ``env_http_headers``). A server this server cannot run
as written (SSE transport, ``${...}`` inside a value, a name outside
``[a-zA-Z0-9_-]``) is not migrated, and the import says why.

Only keys missing from the target are ever added: a user's own values win.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .source import Scope, SourceError, read_json

__all__ = [
    "config_from_settings",
    "mcp_servers_from_sources",
    "merge_missing",
    "missing_part",
]

_SERVER_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
_PLACEHOLDER = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}$")


def config_from_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The config.toml keys the other agent's effective settings map to."""
    tree: dict[str, Any] = {}
    env = settings.get("env")
    if isinstance(env, dict) and env:
        values = {str(k): t for k, v in env.items() if (t := _scalar_text(v)) is not None}
        tree["shell_environment_policy"] = {"inherit": "core", "set": values}
    sandbox = settings.get("sandbox")
    if isinstance(sandbox, dict) and sandbox.get("enabled") is True:
        tree["sandbox_mode"] = "workspace-write"
    return tree


def _scalar_text(value: Any) -> str | None:
    """A JSON scalar as text (booleans lowercase); None for null, lists, objects."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


def missing_part(existing: Mapping[str, Any], incoming: Mapping[str, Any]) -> dict[str, Any]:
    """What of ``incoming`` ``existing`` lacks (tables compared key by key)."""
    missing: dict[str, Any] = {}
    for key, value in incoming.items():
        if key not in existing:
            missing[key] = value
        elif isinstance(value, dict) and isinstance(existing[key], dict):
            nested = missing_part(existing[key], value)
            if nested:
                missing[key] = nested
    return missing


def merge_missing(tree: dict[str, Any], incoming: Mapping[str, Any]) -> list[str]:
    """Add to ``tree`` what it lacks of ``incoming``; returns the dotted keys added."""
    added: list[str] = []
    for key, value in incoming.items():
        if key not in tree:
            tree[key] = value
            added.append(key)
        elif isinstance(value, dict) and isinstance(tree[key], dict):
            added.extend(f"{key}.{sub}" for sub in merge_missing(tree[key], value))
    return added


# -- MCP servers --------------------------------------------------------------------------


def _servers_of(value: Any) -> dict[str, Any]:
    """The ``mcpServers`` table of a JSON document (empty when absent)."""
    servers = value.get("mcpServers") if isinstance(value, dict) else None
    return dict(servers) if isinstance(servers, dict) else {}


def _project_entry(document: Any, root: str) -> dict[str, Any]:
    """The servers of ``projects[root]`` in a ``.claude.json`` document."""
    projects = document.get("projects") if isinstance(document, dict) else None
    if not isinstance(projects, dict):
        return {}
    for path, entry in projects.items():
        if isinstance(path, str) and path.rstrip("/") == root.rstrip("/"):
            return _servers_of(entry)
    return {}


def _raw_servers(scope: Scope) -> dict[str, Any]:
    """Every server the other agent configures for the scope, before filtering."""
    root = scope.mcp_root
    servers: dict[str, Any] = {}
    servers.update(_servers_of(read_json(root / ".mcp.json")))
    state = read_json(root / ".claude.json")
    servers.update(_servers_of(state))
    servers.update(_project_entry(state, str(root)))
    if scope.repo is not None:
        try:
            home_state = read_json(scope.user_home / ".claude.json")
        except SourceError:
            home_state = None  # the repository's own files still count
        for name, server in _project_entry(home_state, str(root)).items():
            servers.setdefault(name, server)
    return servers


def mcp_servers_from_sources(
    scope: Scope, settings: Mapping[str, Any] | None
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """``(servers as [mcp_servers.<name>] tables, {name: why not migrated})``.

    Disabled servers appear in neither: leaving them out is what the user
    configured, not a failure.
    """
    enabled = _names(settings.get("enabledMcpjsonServers")) if settings else []
    disabled = set(_names(settings.get("disabledMcpjsonServers"))) if settings else set()
    converted: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for name, raw in sorted(_raw_servers(scope).items()):
        if not isinstance(raw, dict):
            skipped[name] = "the server's configuration is not an object"
            continue
        if (
            raw.get("enabled") is False
            or raw.get("disabled") is True
            or (enabled and name not in enabled)
            or name in disabled
        ):
            continue
        if not _SERVER_NAME.match(name):
            skipped[name] = (
                f"server name {name!r} has characters outside [a-zA-Z0-9_-], "
                "which [mcp_servers.<name>] does not allow"
            )
            continue
        table, why = _server_table(raw)
        if table is None:
            skipped[name] = why
        else:
            converted[name] = table
    return converted, skipped


def _names(value: Any) -> list[str]:
    """Server names from a settings list (or a lone string)."""
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str | int | float)]
    return [value] if isinstance(value, str) else []


def _server_table(raw: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """One server as an ``[mcp_servers.<name>]`` table, or None and the reason."""
    transport = raw.get("type")
    command = _scalar_text(raw.get("command"))
    if command:
        if transport not in (None, "stdio"):
            return None, f"transport {transport!r} with a command is not supported"
        if "${" in command:
            return None, "the command uses a ${...} placeholder"
        table: dict[str, Any] = {"command": command}
        args = [a for a in (_scalar_text(v) for v in raw.get("args") or []) if a is not None]
        if any("${" in arg for arg in args):
            return None, "an argument uses a ${...} placeholder"
        if args:
            table["args"] = args
        env = raw.get("env")
        if isinstance(env, dict) and not _env(table, env):
            return None, "an environment value uses a ${...} placeholder other than its own name"
        return table, ""
    url = _scalar_text(raw.get("url"))
    if url:
        if transport not in (None, "http", "streamable_http"):
            return None, f"transport {transport!r} is not supported (streamable HTTP or stdio)"
        if "${" in url:
            return None, "the URL uses a ${...} placeholder"
        table = {"url": url}
        headers = raw.get("headers")
        if isinstance(headers, dict) and not _headers(table, headers):
            return None, "a header uses a ${...} placeholder inside other text"
        return table, ""
    return None, "the server has neither a command nor a url"


def _env(table: dict[str, Any], env: Mapping[str, Any]) -> bool:
    """Add ``env``/``env_vars`` to ``table``; False when a value cannot be kept."""
    static: dict[str, str] = {}
    inherited: list[str] = []
    for key, value in env.items():
        text = _scalar_text(value)
        if text is None:
            continue
        placeholder = _PLACEHOLDER.match(text)
        if placeholder and placeholder.group(1) == key:
            inherited.append(str(key))
        elif "${" in text:
            return False
        else:
            static[str(key)] = text
    if inherited:
        table["env_vars"] = inherited
    if static:
        table["env"] = static
    return True


def _headers(table: dict[str, Any], headers: Mapping[str, Any]) -> bool:
    """Add the header keys to ``table``; False when a value cannot be kept."""
    static: dict[str, str] = {}
    from_env: dict[str, str] = {}
    for key, value in headers.items():
        text = _scalar_text(value)
        if text is None:
            continue
        if str(key).lower() == "authorization" and text.startswith("Bearer "):
            token = _PLACEHOLDER.match(text[len("Bearer ") :])
            if token:
                table["bearer_token_env_var"] = token.group(1)
                continue
        placeholder = _PLACEHOLDER.match(text)
        if placeholder:
            from_env[str(key)] = placeholder.group(1)
        elif "${" in text:
            return False
        else:
            static[str(key)] = text
    if static:
        table["http_headers"] = static
    if from_env:
        table["env_http_headers"] = from_env
    return True
