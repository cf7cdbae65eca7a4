"""A pluggable microkernel app-server speaking the Codex app-server protocol v2.

The names a plugin author needs are importable from here; everything else
lives in the submodules named in docs/plugin-authors.md.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .auth import AuthResult
from .config import ConfigError, PluginConfig
from .connection import Connection, ConnectionClosed, ServerRequestTimeout
from .context import RequestContext
from .files import atomic_write
from .hookspecs import hookimpl, hookspec
from .rpc.errors import RpcError, invalid_field
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
    "PluginConfig",
    "Registrar",
    "RequestContext",
    "RpcError",
    "ServerRequestTimeout",
    "__version__",
    "atomic_write",
    "field",
    "hookimpl",
    "hookspec",
    "invalid_field",
    "wire_meta",
]
