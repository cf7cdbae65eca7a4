"""What a handler gets besides its params."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .rpc.codec import RequestId
from .rpc.declare import Notification

if TYPE_CHECKING:
    from .connection import Connection
    from .runtime import Kernel

__all__ = ["RequestContext"]


class RequestContext:
    """The call being served: its connection, id, method and kernel.

    ``ctx.connection.notify(...)`` and ``ctx.connection.request(...)`` reach
    the client that made the call; ``ctx.kernel`` reaches configuration,
    services and every other connection.
    """

    __slots__ = ("connection", "kernel", "method", "request_id")

    def __init__(self, connection: Connection, request_id: RequestId | None, method: str) -> None:
        self.connection = connection
        self.kernel: Kernel = connection.kernel
        self.request_id = request_id
        self.method = method

    @property
    def log(self) -> logging.Logger:
        """A logger named after the method, for handler diagnostics."""
        return logging.getLogger(f"kernel.method.{self.method}")

    async def notify(
        self, method: str | Notification, params: Any = None, /, **fields: Any
    ) -> bool:
        """Send a notification to the calling client; False if not delivered.

        As :meth:`kernel.Connection.notify`: the params object, or its fields.
        """
        return await self.connection.notify(method, params, **fields)
