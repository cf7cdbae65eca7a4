"""``[mcp_servers.<name>]`` in config.toml: the reference's keys, checked at startup.

One table per server. A server is either stdio (``command``, ``args``,
``env``, ``env_vars``, ``cwd``) or streamable HTTP (``url``,
``bearer_token_env_var``, ``http_headers``, ``env_http_headers``); a key of
the other transport is an error naming it, as in the reference. Shared keys:
``enabled``, ``startup_timeout_sec`` (or ``startup_timeout_ms``),
``tool_timeout_sec``, ``enabled_tools`` / ``disabled_tools``,
``default_tools_approval_mode`` and ``tools.<tool>.approval_mode``.

Keys the reference has for features this server lacks (OAuth ``scopes``,
``oauth``, ``oauth_resource``, ``required``, ``supports_parallel_tool_calls``,
``experimental_environment``, the legacy ``name``) are accepted and
ignored, so a user's existing table loads unchanged. An inline
``bearer_token`` is refused: secrets belong in the environment.

A table's rules (command xor url, the other transport's keys, ranges) are
checked when :class:`McpServerSettings` is built, so the settings catalog
refuses a bad table wherever it validates: startup, ``kernel config set``
and the ``config/*Write`` methods (nothing is written). Only the server
name, a key of ``[mcp_servers]``, is checked by :func:`read_servers` alone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs
from cattrs.errors import AttributeValidationNote, ClassValidationError

__all__ = [
    "DEFAULT_STARTUP_TIMEOUT",
    "DEFAULT_TOOL_TIMEOUT",
    "McpServerSettings",
    "ServerSpec",
    "StartupProblem",
    "http_origin",
    "read_servers",
]

DEFAULT_STARTUP_TIMEOUT = 10.0  # seconds, as the reference
DEFAULT_TOOL_TIMEOUT = 60.0
_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
ApprovalMode = Literal["auto", "prompt", "approve"]
# What a stdio server inherits from the kernel's environment (the reference's list).
_INHERITED = (
    "HOME",
    "LOGNAME",
    "PATH",
    "SHELL",
    "USER",
    "__CF_USER_TEXT_ENCODING",
    "LANG",
    "LC_ALL",
    "TERM",
    "TMPDIR",
    "TZ",
)
_STDIO_ONLY = ("args", "env", "env_vars", "cwd")
_HTTP_ONLY = ("bearer_token_env_var", "http_headers", "env_http_headers", "oauth", "oauth_resource")


@attrs.frozen
class McpToolSettings:
    """``[mcp_servers.<name>.tools.<tool>]``."""

    approval_mode: ApprovalMode | None = None


@attrs.frozen
class McpServerSettings:
    """One ``[mcp_servers.<name>]`` table as written (see the module docstring)."""

    command: str | None = None
    args: list[str] | None = None
    env: dict[str, str] | None = None
    env_vars: list[Any] | None = None
    cwd: str | None = None
    url: str | None = None
    bearer_token: str | None = None
    bearer_token_env_var: str | None = None
    http_headers: dict[str, str] | None = None
    env_http_headers: dict[str, str] | None = None
    startup_timeout_sec: float | None = None
    startup_timeout_ms: int | None = None
    tool_timeout_sec: float | None = None
    enabled: bool | None = None
    enabled_tools: list[str] | None = None
    disabled_tools: list[str] | None = None
    default_tools_approval_mode: ApprovalMode | None = None
    tools: dict[str, McpToolSettings] | None = None
    # Accepted for compatibility, not used by this server.
    required: bool | None = None
    supports_parallel_tool_calls: bool | None = None
    experimental_environment: str | None = None
    scopes: list[str] | None = None
    oauth: dict[str, Any] | None = None
    oauth_resource: str | None = None
    name: str | None = None

    def __attrs_post_init__(self) -> None:
        """Refuse a table the server cannot use, naming the key (see :func:`_table_problem`)."""
        found = _table_problem(self)
        if found is None:
            return
        field, problem = found
        if not field:
            raise ValueError(problem)  # reported at the table: mcp_servers.<name>
        # Reported at the field, as cattrs reports a value of the wrong type:
        # the settings catalog and read_servers name mcp_servers.<name>.<field>.
        error = ValueError(problem)
        error.add_note(AttributeValidationNote(f"Checking {field}", field, Any))
        raise ClassValidationError("While checking McpServerSettings", [error], type(self))


def _table_problem(raw: McpServerSettings) -> tuple[str, str] | None:
    """The first ``(field, problem)`` of a table, or None when it is usable.

    ``field`` is empty for a problem of the whole table. Problems never
    quote the value (it may be a secret).
    """
    if raw.bearer_token is not None:
        return "bearer_token", "inline tokens are not supported; use bearer_token_env_var"
    for field in ("startup_timeout_sec", "tool_timeout_sec"):
        value = getattr(raw, field)
        if value is not None and not value > 0:
            return field, "must be a positive number of seconds"
    if raw.startup_timeout_ms is not None and raw.startup_timeout_ms <= 0:
        return "startup_timeout_ms", "must be a positive number of milliseconds"
    if raw.command is not None:
        if raw.url is not None:
            return "url", "is not supported for stdio (this server has a command)"
        for field in _HTTP_ONLY:
            if getattr(raw, field) is not None:
                return field, "is not supported for stdio"
        if not raw.command.strip():
            return "command", "must not be empty"
        if raw.cwd is not None and not os.path.isabs(raw.cwd):
            return "cwd", "must be an absolute path"
        return _env_vars_problem(raw.env_vars or [])
    if raw.url is not None:
        for field in _STDIO_ONLY:
            if getattr(raw, field) is not None:
                return field, "is not supported for streamable_http"
        if urlsplit(raw.url).scheme not in ("http", "https") or http_origin(raw.url) is None:
            return "url", "must be an http:// or https:// URL"
        return None
    return "", "set either command (a stdio server) or url (a streamable HTTP server)"


def _env_vars_problem(items: list[Any]) -> tuple[str, str] | None:
    """What is wrong with ``env_vars`` (names, or ``{name, source = "local"}``), if anything."""
    for index, item in enumerate(items):
        if isinstance(item, Mapping):
            if set(item) - {"name", "source"}:
                return f"env_vars[{index}]", "only name and source are allowed"
            if item.get("source") not in (None, "local"):
                return f"env_vars[{index}].source", "only local variables are supported"
            item = item.get("name")
        if not isinstance(item, str) or not item:
            return f"env_vars[{index}]", "expected a variable name"
    return None


def _env_var_names(items: list[Any]) -> tuple[str, ...]:
    """The variable names of a checked ``env_vars``."""
    return tuple(item["name"] if isinstance(item, Mapping) else item for item in items)


class StartupProblem(Exception):
    """A server cannot start for a reason of its configuration (a missing variable)."""


@attrs.frozen
class ServerSpec:
    """A checked server configuration."""

    name: str
    transport: Literal["stdio", "http"]
    command: str = ""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = attrs.Factory(dict)
    env_vars: tuple[str, ...] = ()
    cwd: str | None = None
    url: str = ""
    bearer_token_env_var: str | None = None
    http_headers: Mapping[str, str] = attrs.Factory(dict)
    env_http_headers: Mapping[str, str] = attrs.Factory(dict)
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
    tool_timeout: float = DEFAULT_TOOL_TIMEOUT
    enabled: bool = True
    enabled_tools: frozenset[str] | None = None
    disabled_tools: frozenset[str] = frozenset()
    default_approval_mode: str = "auto"
    tool_approval_modes: Mapping[str, str] = attrs.Factory(dict)

    def exposes(self, tool: str) -> bool:
        """Whether ``tool`` passes ``enabled_tools`` and then ``disabled_tools``."""
        if self.enabled_tools is not None and tool not in self.enabled_tools:
            return False
        return tool not in self.disabled_tools

    def approval_mode(self, tool: str) -> str:
        """``tools.<tool>.approval_mode``, else ``default_tools_approval_mode``, else auto."""
        return self.tool_approval_modes.get(tool, self.default_approval_mode)

    def environment(self) -> dict[str, str]:
        """The stdio server's environment: the inherited list, ``env_vars``, then ``env``."""
        env = {k: os.environ[k] for k in _INHERITED if k in os.environ}
        env.update({k: os.environ[k] for k in self.env_vars if k in os.environ})
        env.update(self.env)
        return env

    def headers(self) -> dict[str, str]:
        """HTTP headers: ``http_headers``, ``env_http_headers`` (set variables), the bearer."""
        headers = dict(self.http_headers)
        for header, variable in self.env_http_headers.items():
            value = os.environ.get(variable)
            if value:
                headers[header] = value
        if self.bearer_token_env_var is not None:
            token = os.environ.get(self.bearer_token_env_var)
            if not token:
                raise StartupProblem(
                    f"Environment variable {self.bearer_token_env_var} for MCP server "
                    f"'{self.name}' is not set"
                )
            headers["Authorization"] = f"Bearer {token}"
        return headers

    @property
    def auth_status(self) -> str:
        """``McpAuthStatus``: a bearer token is configured, else unsupported (no OAuth here)."""
        if self.transport == "http" and (
            self.bearer_token_env_var is not None
            or any(
                h.lower() == "authorization" for h in (*self.http_headers, *self.env_http_headers)
            )
        ):
            return "bearerToken"
        return "unsupported"


def http_origin(url: str) -> str | None:
    """``scheme://host[:port]`` of ``url``: no credentials, path, query or fragment."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme}://{host}{port}"


def read_servers(config: Any) -> dict[str, ServerSpec]:
    """Every ``[mcp_servers.<name>]`` of ``config`` (a ``kernel.config.Config``), checked.

    Raises ``ConfigError`` naming the key and the file it came from: a
    table's own rules are run while structuring it (:class:`McpServerSettings`),
    the server names here.
    """
    raw = config.structure_value("mcp_servers", dict[str, McpServerSettings] | None) or {}
    for name in raw:
        if not _NAME.match(name):
            raise config.error(
                f"mcp_servers.{name}", "server names may only contain letters, digits, '_' and '-'"
            )
    return {name: _spec(name, settings) for name, settings in sorted(raw.items())}


def _spec(name: str, raw: McpServerSettings) -> ServerSpec:
    """The spec of a table that passed :func:`_table_problem`."""
    startup = raw.startup_timeout_sec
    if startup is None and raw.startup_timeout_ms is not None:
        startup = raw.startup_timeout_ms / 1000
    common: dict[str, Any] = {
        "name": name,
        "startup_timeout": startup or DEFAULT_STARTUP_TIMEOUT,
        "tool_timeout": raw.tool_timeout_sec or DEFAULT_TOOL_TIMEOUT,
        "enabled": raw.enabled is not False,
        "enabled_tools": None if raw.enabled_tools is None else frozenset(raw.enabled_tools),
        "disabled_tools": frozenset(raw.disabled_tools or ()),
        "default_approval_mode": raw.default_tools_approval_mode or "auto",
        "tool_approval_modes": {
            tool: s.approval_mode for tool, s in (raw.tools or {}).items() if s.approval_mode
        },
    }
    if raw.command is not None:
        return ServerSpec(
            transport="stdio",
            command=raw.command,
            args=tuple(raw.args or ()),
            env=dict(raw.env or {}),
            env_vars=_env_var_names(raw.env_vars or []),
            cwd=raw.cwd,
            **common,
        )
    assert raw.url is not None  # _table_problem: command or url
    return ServerSpec(
        transport="http",
        url=raw.url,
        bearer_token_env_var=raw.bearer_token_env_var,
        http_headers=dict(raw.http_headers or {}),
        env_http_headers=dict(raw.env_http_headers or {}),
        **common,
    )
