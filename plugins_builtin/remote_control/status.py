"""The remote-control status every client sees, and its broadcast on every change.

``remoteControl/status/changed`` goes to every initialized client (remote
ones too) each time the status or the environment id changes, in the order
the changes happened: one publisher task sends them, so a slow client
never delays the relay connection itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from .types import ConnectionStatus, RemoteControlStatusChangedNotification

if TYPE_CHECKING:
    from kernel import Kernel, Notification

__all__ = ["StatusBoard"]

log = logging.getLogger("plugins.remote_control.status")

_UNSET: Any = object()


class StatusBoard:
    """The current status; :meth:`set` publishes changes."""

    def __init__(self, server_name: str) -> None:
        self.server_name = server_name
        self.installation_id = ""
        self.status: ConnectionStatus = "disabled"
        self.environment_id: str | None = None
        self._queue: asyncio.Queue[RemoteControlStatusChangedNotification] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def snapshot(self) -> RemoteControlStatusChangedNotification:
        """The status as the notification carries it."""
        return RemoteControlStatusChangedNotification(
            self.status, self.server_name, self.installation_id, self.environment_id
        )

    def set(self, status: ConnectionStatus | None = None, environment_id: Any = _UNSET) -> None:
        """Change the status and/or the environment id; a change is broadcast."""
        new_status = self.status if status is None else status
        new_env = self.environment_id if environment_id is _UNSET else environment_id
        if (new_status, new_env) == (self.status, self.environment_id):
            return
        log.info(
            "remote control %s -> %s (environment %s)", self.status, new_status, new_env or "-"
        )
        self.status, self.environment_id = new_status, new_env
        if self._task is not None:
            self._queue.put_nowait(self.snapshot())

    def start(self, kernel: Kernel, notification: Notification) -> None:
        """Begin broadcasting changes as ``notification``."""

        async def publish() -> None:
            while True:
                note = await self._queue.get()
                try:
                    await kernel.broadcast(notification, note)
                except Exception:
                    log.exception("broadcasting the remote control status failed")

        self._task = asyncio.get_running_loop().create_task(publish(), name="remote-control-status")

    async def stop(self) -> None:
        """Stop broadcasting (shutdown)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
