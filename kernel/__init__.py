"""A pluggable microkernel app-server speaking the Codex app-server protocol v2.

The names a plugin author needs are importable from here; everything else
lives in the submodules named in docs/plugin-authors.md.
"""

from __future__ import annotations

from ._version import __version__
from .auth import AuthResult
from .connection import Connection
from .context import RequestContext
from .errors import (
    ConfigError,
    ConnectionClosed,
    PluginCallError,
    RegistrationConflict,
    RpcError,
    ServerRequestTimeout,
    SettingError,
    StartupError,
)
from .files import atomic_write
from .hookspecs import hookimpl, hookspec, may_be_async
from .plugin_config import PluginConfig
from .rpc.declare import (
    Notification,
    ServerRequest,
    client_notification,
    method,
    notification,
    server_request,
)
from .rpc.errors import invalid_field
from .rpc.fields import AbsolutePath, field, wire_meta
from .rpc.registry import Registrar
from .runtime import Kernel

__all__ = [
    "AbsolutePath",
    "AuthResult",
    "ConfigError",
    "Connection",
    "ConnectionClosed",
    "Kernel",
    "Notification",
    "PluginCallError",
    "PluginConfig",
    "Registrar",
    "RegistrationConflict",
    "RequestContext",
    "RpcError",
    "ServerRequest",
    "ServerRequestTimeout",
    "SettingError",
    "StartupError",
    "__version__",
    "atomic_write",
    "client_notification",
    "field",
    "hookimpl",
    "hookspec",
    "invalid_field",
    "may_be_async",
    "method",
    "notification",
    "server_request",
    "wire_meta",
]
