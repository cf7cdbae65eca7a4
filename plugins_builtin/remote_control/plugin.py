"""The ``remote_control`` plugin: ``remoteControl/*`` and remote clients through a relay.

Reads ``[kernel_plugins.remote_control]`` (:mod:`.settings`) and the
managed requirement ``allow_remote_control``, adds ``--remote-control``,
serves the experimental ``remoteControl/status/read``, ``enable`` and
``disable``, and sends ``remoteControl/status/changed`` to every client
right after its ``initialize`` answer and on every change. The relay
connection itself is :class:`~.session.RemoteControl`. See
docs/remote_control.md.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from kernel import Connection, Kernel, RequestContext, __version__, hookimpl, method, notification
from kernel.hookspecs import OptionGroup

from .identity import Identity, load_installation_id, platform_names, server_name
from .session import RemoteControl
from .settings import RemoteControlSettings, relay_target
from .status import StatusBoard
from .types import (
    RemoteControlDisableParams,
    RemoteControlDisableResponse,
    RemoteControlEnableParams,
    RemoteControlEnableResponse,
    RemoteControlStatusChangedNotification,
    RemoteControlStatusReadResponse,
)

__all__ = ["RemoteControlPlugin"]

log = logging.getLogger("plugins.remote_control")


class RemoteControlPlugin:
    """``remoteControl/*``; see the module docstring and docs/remote_control.md."""

    status_changed = notification(
        "remoteControl/status/changed", RemoteControlStatusChangedNotification
    )

    def __init__(self) -> None:
        self.board = StatusBoard(server_name())
        self.control: RemoteControl | None = None
        self._at_startup = False
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- configuration and lifecycle -------------------------------------------------------

    @hookimpl
    def kernel_add_cli_options(self, group: OptionGroup) -> None:
        group.add_argument(
            "--remote-control",
            action="store_true",
            help="connect to the relay of [kernel_plugins.remote_control] at startup",
        )

    @hookimpl
    def kernel_settings(self) -> type[RemoteControlSettings]:
        return RemoteControlSettings

    @hookimpl
    def kernel_config_keys(self) -> dict[str, Any]:
        # A managed requirement (requirements.toml), as in the reference.
        return {"allow_remote_control": bool | None}

    @hookimpl
    def kernel_configure(
        self, kernel: Kernel, settings: RemoteControlSettings, options: argparse.Namespace
    ) -> None:
        self._at_startup = bool(getattr(options, "remote_control", False))
        forbidden = kernel.config.managed("allow_remote_control") is False
        target = relay_target(settings.base_url) if settings.base_url else None
        self.control = RemoteControl(kernel, settings, target, self.board, forbidden)

    @hookimpl
    async def kernel_startup(self, kernel: Kernel) -> None:
        control = self.control
        assert control is not None
        installation_id = await asyncio.to_thread(load_installation_id, kernel.home)
        self.board.installation_id = installation_id
        os_name, arch = platform_names()
        control.identity = Identity(
            installation_id, self.board.server_name, os_name, arch, __version__
        )
        self.board.start(kernel, self.status_changed)
        wanted = self._at_startup
        if not wanted and control.refusal() is None:
            wanted = await asyncio.to_thread(control.store.enabled) is True
        await control.start(wanted)

    @hookimpl
    async def kernel_shutdown(self, kernel: Kernel) -> None:
        if self.control is not None:
            await self.control.shutdown()
        for task in list(self._tasks):
            task.cancel()
        await self.board.stop()

    @hookimpl
    def kernel_initialize_response(self, connection: Connection, params: Any) -> None:
        # The initialize answer is queued when this hook returns; the status follows it.
        task = asyncio.get_running_loop().create_task(
            connection.notify(self.status_changed, self.board.snapshot())
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- methods ---------------------------------------------------------------------------

    @method("remoteControl/status/read", experimental=True)
    def status_read(self, params: None, ctx: RequestContext) -> RemoteControlStatusReadResponse:
        """The current status."""
        return RemoteControlStatusReadResponse(*self._fields())

    @method("remoteControl/enable", experimental=True)
    async def enable(
        self, params: RemoteControlEnableParams, ctx: RequestContext
    ) -> RemoteControlEnableResponse:
        """Connect to the relay (enrolling first unless ``ephemeral``)."""
        assert self.control is not None
        await self.control.enable(ctx.connection, bool(params.ephemeral))
        return RemoteControlEnableResponse(*self._fields())

    @method("remoteControl/disable", experimental=True)
    async def disable(
        self, params: RemoteControlDisableParams, ctx: RequestContext
    ) -> RemoteControlDisableResponse:
        """Disconnect from the relay; remote connections are closed."""
        assert self.control is not None
        await self.control.disable(bool(params.ephemeral))
        return RemoteControlDisableResponse(*self._fields())

    def _fields(self) -> tuple[Any, ...]:
        snapshot = self.board.snapshot()
        return (
            snapshot.status,
            snapshot.server_name,
            snapshot.installation_id,
            snapshot.environment_id,
        )
