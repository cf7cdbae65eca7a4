"""The kernel object: one composition of plugins, its registry and connections.

Plugins receive it in their hooks. Everything a family needs from the kernel
is here: ``config`` and ``home``, ``converter`` and ``registry``,
``blocking`` (worker threads for blocking calls, see :mod:`kernel.blocking`),
``services`` (a dict where a family may publish a small service object for
others), ``connections`` and :meth:`Kernel.broadcast`, and ``plugins``
(:class:`kernel.plugins.PluginHost`) whose ``call``, ``acall`` and ``first``
call hooks, including those a family published, one plugin at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from .blocking import BlockingPool
from .config import Config, ConfigError, UserWrite
from .connection import Connection, Link
from .handshake import register_handshake
from .plugins import PluginHost, StartupError
from .rpc.converter import WireConverter
from .rpc.declare import Notification
from .rpc.dispatch import Dispatcher
from .rpc.registry import RegistrationConflict, Registry
from .settings import ConfigKeyConflict, SettingsCatalog, settings_annotation

__all__ = ["Kernel", "KernelStats"]

log = logging.getLogger("kernel")


@attrs.define
class KernelStats:
    """Counters since start; cheap to update on the request path."""

    requests: int = 0
    notifications: int = 0
    frames_out: int = 0
    invalid_frames: int = 0
    handler_errors: int = 0
    overloaded: int = 0
    backpressure_waits: int = 0
    connections_total: int = 0


class Kernel:
    """A configured composition of plugins, ready to serve connections."""

    def __init__(self, config: Config, plugins: PluginHost, options: argparse.Namespace) -> None:
        self.config = config
        self.home: Path = config.home
        self.plugins = plugins
        self.options = options
        self.settings = config.kernel_settings()
        self.converter = WireConverter()
        self.registry = Registry(self.converter)
        self.stats = KernelStats()
        self.dispatcher = Dispatcher(self.registry, self.stats)
        self.connections: set[Connection] = set()
        self.services: dict[str, Any] = {}
        self.catalog = SettingsCatalog(plugins.records)
        """What config.toml may hold; see :mod:`kernel.settings`."""
        self.blocking = BlockingPool(
            "kernel-blocking",
            self.settings.blocking_threads,
            self.settings.blocking_threads_per_connection,
        )
        """Threads for blocking calls; see :mod:`kernel.blocking`."""
        self._stop: asyncio.Event | None = None
        self._started: list[str] = []
        self.stop_reason: str | None = None
        register_handshake(self.registry, self)
        plugins.on_fail.append(self._withdraw)

    # -- building -----------------------------------------------------------

    def configure_and_register(self, strict: bool = True) -> None:
        """Run ``kernel_configure`` then ``kernel_register`` for every plugin.

        ``strict`` (serving) makes config errors and name conflicts abort
        startup; without it (``kernel plugins``) they are recorded on the
        failing plugin so every other plugin can still be listed.
        """
        fatal: tuple[type[BaseException], ...] = (RegistrationConflict,) if strict else ()
        self.catalog = build_catalog(self.plugins)
        if strict:
            try:
                warnings = self.catalog.validate(self.config)
            except ConfigError as exc:
                raise StartupError(str(exc)) from None
            for warning in warnings:
                log.warning("config: %s", warning)
        self.plugins.call(
            "kernel_configure",
            stage="configure",
            per_plugin=self._configure_args,
            fatal=(ConfigError,) if strict else (),
            kernel=self,
            options=self.options,
        )
        self.plugins.call(
            "kernel_register",
            stage="register",
            per_plugin=lambda name: {"registrar": self.registry.registrar(name)},
            fatal=fatal,
        )
        # Methods declared with @kernel.method and friends need no hook.
        self.plugins.each(
            lambda name, plugin: self.registry.registrar(name).collect(plugin),
            stage="register",
            fatal=fatal,
        )

    def _configure_args(self, name: str) -> dict[str, Any]:
        return {
            "config": self.config.plugin(name),
            "settings": self.catalog.settings_of(self.config, name),
        }

    def _withdraw(self, name: str) -> None:
        # A plugin that failed after registering must not keep serving.
        self.registry.remove_owner(name)

    # -- running ------------------------------------------------------------

    async def start(self) -> None:
        """Run every plugin's startup hook; a failed plugin loses its methods."""
        self._stop = asyncio.Event()
        for name in self.plugins.active():
            await self.plugins.acall("kernel_startup", stage="start", names=[name], kernel=self)
            if self.plugins.records[name].active:
                self._started.append(name)

    async def stop(self, grace: float | None = None) -> None:
        """Close every connection (with grace), then run shutdown hooks."""
        grace = self.settings.shutdown_grace_seconds if grace is None else grace
        if self.connections:
            await asyncio.gather(
                *(c.close(grace, "server shutting down") for c in list(self.connections))
            )
        # Every plugin that started, even one that failed later, releases its resources.
        await self.plugins.acall("kernel_shutdown", reverse=True, names=self._started, kernel=self)
        self.blocking.close()

    def request_stop(self, reason: str) -> None:
        """Ask :func:`kernel.server.serve` to shut down gracefully."""
        if self._stop is not None and not self._stop.is_set():
            self.stop_reason = reason
            log.info("shutting down: %s", reason)
            self._stop.set()

    async def wait_stop_requested(self) -> str:
        """Return the reason once :meth:`request_stop` was called."""
        assert self._stop is not None, "Kernel.start() was not called"
        await self._stop.wait()
        return self.stop_reason or ""

    # -- configuration ----------------------------------------------------------

    async def write_config(
        self,
        change: Callable[[dict[str, Any]], Any],
        validate: Callable[[Config], None] | None = None,
        expected_version: str | None = None,
    ) -> UserWrite:
        """Change config.toml (locked, atomic, off the loop) and tell the plugins.

        ``change``, ``validate`` and ``expected_version`` are those of
        :meth:`kernel.config.Config.write_user`; by default the write is
        checked against the settings catalog (every declared part still
        structures). Then ``kernel_config_changed`` runs for every plugin
        before this returns.
        """
        checks = validate or self.catalog.validate
        written = await self.blocking.run(
            self, self.config.write_user, change, checks, expected_version, timeout=30
        )
        if written.changed:
            await self.config_changed(written.changed)
        return written

    async def reload_config(self) -> tuple[str, ...]:
        """Re-read config.toml from disk and tell the plugins what changed.

        A file that does not validate raises :class:`ConfigError` and changes nothing.
        """
        changed = await self.blocking.run(
            self, self.config.reload_user, self.catalog.validate, timeout=30
        )
        if changed:
            await self.config_changed(changed)
        return changed

    async def config_changed(self, changed: Sequence[str]) -> None:
        """Run ``kernel_config_changed`` on every active plugin, one at a time."""
        log.info("configuration changed: %s", ", ".join(changed[:20]))
        await self.plugins.acall("kernel_config_changed", kernel=self, changed=tuple(changed))

    # -- connections ----------------------------------------------------------

    async def open_connection(self, transport: str, link: Link, peer: str = "") -> Connection:
        """Create a connection, start its writer and run the opened hooks."""
        conn = Connection(self, transport, link, peer)
        self.connections.add(conn)
        self.stats.connections_total += 1
        conn.start()
        log.debug("connection %s opened (%s %s)", conn.id, transport, peer)
        await self.plugins.acall("kernel_connection_opened", connection=conn)
        return conn

    async def connection_closed(self, conn: Connection) -> None:
        """Run the closed hooks; called once by :meth:`Connection.close`."""
        self.connections.discard(conn)
        await self.plugins.acall("kernel_connection_closed", connection=conn)
        log.debug("connection %s closed", conn.id)

    async def broadcast(
        self, method: str | Notification, params: Any = None, /, **fields: Any
    ) -> int:
        """Notify every initialized connection that wants ``method``; returns how many."""
        sent = 0
        for conn in list(self.connections):
            if await conn.notify(method, params, **fields):
                sent += 1
        return sent

    def in_flight(self) -> int:
        """Handlers running across all connections."""
        return sum(c.in_flight for c in self.connections)

    def queued_frames(self) -> int:
        """Frames waiting for writers across all connections."""
        return sum(len(c.outbox) for c in self.connections)


def build_catalog(host: PluginHost) -> SettingsCatalog:
    """The settings every active plugin declares (``kernel_settings``, ``kernel_config_keys``).

    A plugin without ``kernel_settings`` declares its section by annotating
    the ``settings`` parameter of its ``kernel_configure`` with an attrs class.

    A plugin whose declaration is unusable is failed like any plugin that
    raises in a hook.
    """
    catalog = SettingsCatalog(host.records)
    declared = dict(host.call("kernel_settings", stage="declare settings"))
    for name in host.active():
        if name not in declared:
            # One declaration: the annotation of kernel_configure's `settings`.
            declared[name] = settings_annotation(host.records[name].plugin)
    for name, settings_type in declared.items():
        try:
            catalog.declare_plugin(name, settings_type)
        except TypeError as exc:
            host.fail(name, "declare settings", exc)
    for name, keys in host.call("kernel_config_keys", stage="declare config keys"):
        try:
            catalog.declare_keys(name, keys or {})
        except ConfigKeyConflict as exc:
            raise StartupError(str(exc)) from None
        except (TypeError, ValueError) as exc:
            host.fail(name, "declare config keys", exc)
    return catalog
