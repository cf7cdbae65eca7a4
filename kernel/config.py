"""Layered TOML configuration under the kernel's home directory.

Layers, lowest precedence first:

1. built-in defaults (the attrs classes that structure each section);
2. ``config.toml`` in the home directory — the user layer, the only one the
   server writes, always atomically (temp file + rename);
3. ``-c key=value`` command-line overrides (the value is parsed as TOML, and
   taken as a plain string when it is not valid TOML);
4. ``requirements.toml`` in the home directory — the managed layer. The server
   never writes it; its values win over every other layer, and a lower layer
   that tries to change one is logged.

Keys are dotted paths (``plugins.echo.enabled``). Every error names the key
and the layer it came from, never the value (it may be a secret).
"""

from __future__ import annotations

import copy
import logging
import os
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import attrs
import tomli_w

from .files import atomic_write
from .rpc.converter import StructureError, WireConverter

__all__ = [
    "Config",
    "ConfigError",
    "KernelSettings",
    "PluginConfig",
    "parse_override",
    "resolve_home",
]

log = logging.getLogger("kernel.config")
T = TypeVar("T")

DEFAULT_HOME = "~/.kernel"


class ConfigError(Exception):
    """Configuration is unusable; the message names the key and its source."""


@attrs.frozen
class KernelSettings:
    """The ``[kernel]`` section: limits of every connection."""

    max_in_flight: int = 256
    overload_timeout_seconds: float = 10.0
    max_outbound_messages: int = 1024
    max_message_bytes: int = 128 * 1024 * 1024
    shutdown_grace_seconds: float = 5.0
    server_request_timeout_seconds: float = 300.0
    websocket_heartbeat_seconds: float = 30.0
    send_timeout_seconds: float = 60.0
    # "auto": uvloop when installed, else asyncio's loop; or force one.
    event_loop: str = "auto"
    # Threads for blocking calls (file I/O) shared by all connections, and
    # how many of them one connection may hold at once.
    blocking_threads: int = 64
    blocking_threads_per_connection: int = 8
    # Network listeners (ws://, unix://): how long a connection may take to
    # send a complete HTTP request head, how long a websocket may stay open
    # before its ``initialize`` succeeds, and how many connections one
    # listener keeps open at once (slow or idle clients cannot exhaust
    # the process's file descriptors).
    http_header_timeout_seconds: float = 10.0
    handshake_timeout_seconds: float = 30.0
    max_connections: int = 1024

    def check(self, config: Config) -> None:
        """Reject values that cannot work, naming the key."""
        if self.event_loop not in ("auto", "asyncio", "uvloop"):
            raise config.error("kernel.event_loop", 'must be "auto", "asyncio" or "uvloop"')
        for name in (
            "max_in_flight",
            "max_outbound_messages",
            "max_message_bytes",
            "blocking_threads",
            "blocking_threads_per_connection",
            "max_connections",
        ):
            if getattr(self, name) < 1:
                raise config.error(f"kernel.{name}", "must be at least 1")
        for name in ("http_header_timeout_seconds", "handshake_timeout_seconds"):
            if not getattr(self, name) > 0:
                raise config.error(f"kernel.{name}", "must be greater than 0")
        for name in (
            "overload_timeout_seconds",
            "shutdown_grace_seconds",
            "server_request_timeout_seconds",
            "websocket_heartbeat_seconds",
            "send_timeout_seconds",
        ):
            if getattr(self, name) < 0:
                raise config.error(f"kernel.{name}", "must not be negative")


def resolve_home(cli_home: str | None = None) -> Path:
    """The home directory: ``--home``, else ``$KERNEL_HOME``, else ``~/.kernel``."""
    raw = cli_home or os.environ.get("KERNEL_HOME") or DEFAULT_HOME
    return Path(raw).expanduser().absolute()


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``key.path=value``; the value is TOML if it parses, else a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"-c {text!r}: expected key.path=value")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.split("."), value


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _set(tree: dict[str, Any], parts: list[str], value: Any, origin: str) -> None:
    node = tree
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(
                f"{'.'.join(parts[: i + 1])}: is a value, cannot hold "
                f"{'.'.join(parts)} (from {origin})"
            )
        node = child
    node[parts[-1]] = value


def _walk(
    tree: dict[str, Any], prefix: tuple[str, ...] = ()
) -> Iterable[tuple[tuple[str, ...], Any]]:
    for key, value in tree.items():
        path = (*prefix, key)
        if isinstance(value, dict) and value:
            yield from _walk(value, path)
        else:
            yield path, value


class Config:
    """The merged configuration of one kernel, with the origin of every key."""

    def __init__(self, home: Path, overrides: Iterable[str] = ()) -> None:
        self.home = home
        self.user_path = home / "config.toml"
        self.requirements_path = home / "requirements.toml"
        self._user = _read_toml(self.user_path)
        self._cli: dict[str, Any] = {}
        for text in overrides:
            parts, value = parse_override(text)
            _set(self._cli, parts, value, "-c")
        self._managed = _read_toml(self.requirements_path)
        self._merge()
        self._converter = WireConverter(wire_names=False, forbid_extra_keys=True)

    def _merge(self) -> None:
        merged: dict[str, Any] = {}
        origins: dict[tuple[str, ...], str] = {}
        layers = [
            (self._user, str(self.user_path)),
            (self._cli, "-c override"),
            (self._managed, f"{self.requirements_path} (managed)"),
        ]
        self._layer_names = [name for _, name in layers]
        for tree, origin in layers:
            for path, value in _walk(tree):
                if (
                    path in origins
                    and origin.endswith("(managed)")
                    and self._lookup(merged, path) != value
                ):
                    log.warning(
                        "%s from %s is overridden by %s", ".".join(path), origins[path], origin
                    )
                _set(merged, list(path), copy.deepcopy(value), origin)
                origins[path] = origin
        self._merged = merged
        self._origins = origins

    @staticmethod
    def _lookup(tree: dict[str, Any], path: Iterable[str]) -> Any:
        node: Any = tree
        for part in path:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def get(self, key: str, default: Any = None) -> Any:
        """The merged value at dotted ``key``, or ``default``."""
        value = self._lookup(self._merged, key.split("."))
        return default if value is None else value

    def section(self, key: str) -> dict[str, Any]:
        """A copy of the table at dotted ``key`` (empty if absent)."""
        value = self.get(key, {})
        if not isinstance(value, dict):
            raise self.error(key, "must be a table")
        return copy.deepcopy(value)

    def merged(self) -> dict[str, Any]:
        """A copy of the whole merged configuration."""
        return copy.deepcopy(self._merged)

    def managed(self, key: str) -> Any:
        """The value the managed layer pins at ``key``, or None."""
        return self._lookup(self._managed, key.split("."))

    def origin(self, key: str) -> str:
        """Which layer set ``key``; for a table, every layer that set keys in it."""
        parts = tuple(key.split("."))
        while parts:
            if parts in self._origins:
                return self._origins[parts]
            found = {o for p, o in self._origins.items() if p[: len(parts)] == parts}
            if found:
                return ", ".join(o for o in self._layer_names if o in found)
            parts = parts[:-1]
        return "defaults"

    def error(self, key: str, problem: str) -> ConfigError:
        """A :class:`ConfigError` for ``key`` that names where it was set."""
        return ConfigError(f"config error: {key}: {problem} (from {self.origin(key)})")

    def structure(self, key: str, cls: type[T], *, ignore: Iterable[str] = ()) -> T:
        """Structure the table at ``key`` as ``cls``; unknown keys are errors.

        Keys named in ``ignore`` are left out before structuring.
        """
        values = self.section(key)
        for name in ignore:
            values.pop(name, None)
        try:
            return self._converter.structure(values, cls)
        except StructureError as exc:
            problem = exc.problems[0]
            full = ".".join(p for p in (key, problem.path) if p)
            raise self.error(full, problem.message) from None

    def kernel_settings(self) -> KernelSettings:
        """The validated ``[kernel]`` section."""
        settings = self.structure("kernel", KernelSettings)
        settings.check(self)
        return settings

    def plugin_enabled(self, name: str) -> bool | None:
        """``plugins.<name>.enabled`` if any layer sets it, else None."""
        value = self.get(f"plugins.{name}.enabled")
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self.error(f"plugins.{name}.enabled", "expected true or false")
        return value

    def plugin(self, name: str) -> PluginConfig:
        """The view of ``[plugins.<name>]`` handed to that plugin."""
        return PluginConfig(self, name)

    # -- writing the user layer -------------------------------------------

    def set_user_value(self, key: str, value: Any) -> None:
        """Set dotted ``key`` in config.toml (atomically) and in this view."""
        user = _read_toml(self.user_path)
        _set(user, key.split("."), value, str(self.user_path))
        self._write_user(user)

    def unset_user_value(self, key: str) -> bool:
        """Remove dotted ``key`` from config.toml; False if it was not set."""
        user = _read_toml(self.user_path)
        parts = key.split(".")
        parent = self._lookup(user, parts[:-1]) if len(parts) > 1 else user
        if not isinstance(parent, dict) or parts[-1] not in parent:
            return False
        del parent[parts[-1]]
        self._write_user(user)
        return True

    def _write_user(self, user: dict[str, Any]) -> None:
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(self.user_path, tomli_w.dumps(user).encode())
        self._user = user
        self._merge()


class PluginConfig:
    """One plugin's ``[plugins.<name>]`` section (``enabled`` left out)."""

    def __init__(self, config: Config, name: str) -> None:
        self.name = name
        self.key = f"plugins.{name}"
        self._config = config
        self.values = config.section(self.key)
        self.values.pop("enabled", None)

    def get(self, key: str, default: Any = None) -> Any:
        """The value at ``key`` inside this section."""
        return self._config.get(f"{self.key}.{key}", default)

    def error(self, key: str, problem: str) -> ConfigError:
        """A :class:`ConfigError` naming ``plugins.<name>.<key>`` and its layer."""
        return self._config.error(f"{self.key}.{key}", problem)

    def structure(self, cls: type[T]) -> T:
        """This section as ``cls`` (snake_case keys, unknown keys rejected)."""
        return self._config.structure(self.key, cls, ignore=("enabled",))
