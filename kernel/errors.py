"""The exceptions a plugin author or embedder may catch, in one place.

They are defined where they are raised and re-exported here (and from
``kernel``), so ``from kernel import StartupError`` works without importing
the machinery that raises it.
"""

from __future__ import annotations

from .config import ConfigError
from .connection import ConnectionClosed, ServerRequestTimeout
from .plugins import PluginCallError, StartupError
from .rpc.errors import RpcError
from .rpc.registry import RegistrationConflict
from .settings import SettingError

__all__ = [
    "ConfigError",
    "ConnectionClosed",
    "PluginCallError",
    "RegistrationConflict",
    "RpcError",
    "ServerRequestTimeout",
    "SettingError",
    "StartupError",
]
