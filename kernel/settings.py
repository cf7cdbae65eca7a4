"""What config.toml may hold, and who reads it: the settings catalog.

Every part of config.toml the server reads is declared with a type:

* ``[kernel]``: :class:`KernelSettings`, declared by the kernel itself;
* ``[kernel_plugins.<name>]``: the type a plugin returns from
  ``kernel_settings`` (``enabled`` is the kernel's, in every plugin section);
* top-level keys of the reference's own config.toml (``model``,
  ``model_providers``...): the types a plugin returns from
  ``kernel_config_keys``.

With the catalog, ``kernel run`` validates every declared part before any
plugin is configured (errors name the key and its layer), warns about keys
nobody reads (``[kernal]``), and ``kernel config get`` shows defaults with
their origin while ``kernel config set`` refuses exactly what ``run`` would.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .rpc.converter import WireConverter

if TYPE_CHECKING:
    from .config import Config

__all__ = [
    "PLUGIN_SECTION",
    "ConfigKeyConflict",
    "KernelSettings",
    "SettingError",
    "SettingsCatalog",
    "settings_annotation",
]

log = logging.getLogger("kernel.settings")

PLUGIN_SECTION = "kernel_plugins"
"""``[kernel_plugins.<name>]`` holds each kernel plugin's settings.

(The reference's ``[plugins."<id>"]`` belongs to its installable plugin
bundles, whose ids always contain ``@``; the two never share a table.)
"""


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


class SettingError(ValueError):
    """Raised by a settings type's ``check(config)``: ``key`` (inside its section) is unusable.

    A settings class may define ``check(self, config)`` for rules types
    cannot say (ranges, combinations, limits that depend on ``[kernel]``);
    the kernel runs it wherever the section is validated (startup,
    ``kernel config set``) and reports ``<section>.<key>: <problem>`` with
    the layer the value came from. Never put the value in ``problem``.
    """

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


class ConfigKeyConflict(ValueError):
    """Two plugins declared the same top-level config key."""


@attrs.define
class _Part:
    """One declared part of config.toml."""

    key: str
    type: Any
    owner: str


class SettingsCatalog:
    """The declared parts of config.toml (see the module docstring)."""

    def __init__(self, plugins: Iterable[str] = ()) -> None:
        self.plugins = set(plugins)
        """Every installed kernel plugin, declared type or not."""
        self._parts: dict[str, _Part] = {"kernel": _Part("kernel", KernelSettings, "kernel")}
        self._converter = WireConverter(wire_names=False, forbid_extra_keys=True)

    # -- declaring ------------------------------------------------------------------

    def declare_plugin(self, name: str, settings_type: Any) -> None:
        """``name``'s ``[kernel_plugins.<name>]`` is ``settings_type`` (an attrs class)."""
        self.plugins.add(name)
        if settings_type is not None:
            if not attrs.has(settings_type):
                raise TypeError(f"kernel_settings returned {settings_type!r}, not an attrs class")
            self._parts[f"{PLUGIN_SECTION}.{name}"] = _Part(
                f"{PLUGIN_SECTION}.{name}", settings_type, name
            )

    def declare_keys(self, owner: str, keys: Mapping[str, Any]) -> None:
        """Top-level keys ``owner`` reads, each with its type; two owners of one key clash."""
        for key, tp in keys.items():
            if "." in key or key in ("kernel", PLUGIN_SECTION):
                raise ValueError(f"kernel_config_keys: {key!r} is not a top-level key of its own")
            taken = self._parts.get(key)
            if taken is not None and taken.owner != owner:
                raise ConfigKeyConflict(
                    f"config key {key!r} is declared by both {taken.owner} and {owner}"
                )
            self._parts[key] = _Part(key, tp, owner)

    # -- reading --------------------------------------------------------------------

    def part(self, key: str) -> _Part | None:
        """The declared part holding dotted ``key``, if any."""
        parts = key.split(".")
        for size in range(len(parts), 0, -1):
            found = self._parts.get(".".join(parts[:size]))
            if found is not None:
                return found
        return None

    def plugin_type(self, name: str) -> Any:
        """The declared settings type of plugin ``name``, or None."""
        part = self._parts.get(f"{PLUGIN_SECTION}.{name}")
        return part.type if part is not None else None

    def settings_of(self, config: Config, name: str) -> Any:
        """Plugin ``name``'s section structured as its declared type (None: undeclared)."""
        part = self._parts.get(f"{PLUGIN_SECTION}.{name}")
        return None if part is None else self._load(config, part)

    @staticmethod
    def _load(config: Config, part: _Part) -> Any:
        """Structure ``part`` and run its type's ``check(config)``."""
        if part.key == "kernel":
            return config.kernel_settings()
        if part.key.startswith(f"{PLUGIN_SECTION}."):
            value = config.structure(part.key, part.type, ignore=("enabled",))
        elif config.get(part.key) is None:
            return None
        else:
            value = config.structure_value(part.key, part.type)
        check = getattr(value, "check", None)
        if callable(check):
            try:
                check(config)
            except SettingError as exc:
                raise config.error(f"{part.key}.{exc.key}", exc.problem) from None
        return value

    def default(self, key: str) -> tuple[bool, Any]:
        """``(True, value)`` when ``key`` has a declared default, else ``(False, None)``."""
        part = self.part(key)
        if part is None:
            return False, None
        try:
            value: Any = self._converter.unstructure(self._converter.structure({}, part.type))
        except Exception:
            return False, None  # required fields: no default for the whole part
        for piece in key.split(".")[len(part.key.split(".")) :]:
            if not isinstance(value, dict) or piece not in value:
                return False, None
            value = value[piece]
        return True, value

    # -- validating -----------------------------------------------------------------

    def validate(self, config: Config) -> list[str]:
        """Structure every declared part present; return warnings for unread keys.

        Raises :class:`kernel.ConfigError` naming the key and its layer.
        """
        for part in self._parts.values():
            self._load(config, part)
        return self._unread(config)

    def check_key(self, config: Config, key: str, validate: bool = True) -> None:
        """Refuse ``key`` unless something reads it; with ``validate``, any part that fails."""
        parts = key.split(".")
        if parts[0] == PLUGIN_SECTION:
            if len(parts) < 2 or parts[1] not in self.plugins:
                name = parts[1] if len(parts) > 1 else ""
                raise config.error(key, f"no installed kernel plugin is named {name!r}")
            if len(parts) >= 3 and parts[2] == "enabled":
                config.plugin_enabled(parts[1])
                return
        elif self.part(key) is None:
            raise config.error(key, "no installed plugin reads this key")
        if validate:
            self.validate(config)

    def _unread(self, config: Config) -> list[str]:
        warnings = []
        for top, value in config.merged().items():
            if top == PLUGIN_SECTION and isinstance(value, dict):
                for name in value:
                    if name not in self.plugins:
                        warnings.append(
                            f"{PLUGIN_SECTION}.{name} (from {config.origin(f'{top}.{name}')}): "
                            "no installed kernel plugin has this name"
                        )
            elif self.part(top) is None:
                warnings.append(
                    f"{top} (from {config.origin(top)}): no loaded plugin reads this key"
                )
        return warnings


def settings_annotation(plugin: Any) -> Any:
    """The attrs class annotating ``settings`` in ``plugin.kernel_configure``, or None."""
    from .rpc.declare import annotation_of

    configure = getattr(plugin, "kernel_configure", None)
    if configure is None:
        return None
    hint = annotation_of(configure, "settings")
    return hint if attrs.has(hint) else None
