"""Wire types of ``remoteControl/*``, named and shaped as the reference's schema."""

from __future__ import annotations

from typing import Literal

import attrs

__all__ = [
    "ConnectionStatus",
    "RemoteControlDisableParams",
    "RemoteControlDisableResponse",
    "RemoteControlEnableParams",
    "RemoteControlEnableResponse",
    "RemoteControlStatusChangedNotification",
    "RemoteControlStatusReadResponse",
]

ConnectionStatus = Literal["disabled", "connecting", "connected", "errored"]


@attrs.frozen
class RemoteControlEnableParams:
    """``ephemeral``: for this process only (not remembered, not waited for)."""

    ephemeral: bool | None = None


@attrs.frozen
class RemoteControlDisableParams:
    """``ephemeral``: for this process only (the remembered choice stays)."""

    ephemeral: bool | None = None


@attrs.frozen
class RemoteControlStatusChangedNotification:
    """The relay connection's state and this server's identity."""

    status: ConnectionStatus
    server_name: str
    installation_id: str
    environment_id: str | None


@attrs.frozen
class RemoteControlStatusReadResponse(RemoteControlStatusChangedNotification):
    """Answer of ``remoteControl/status/read``."""


@attrs.frozen
class RemoteControlEnableResponse(RemoteControlStatusChangedNotification):
    """Answer of ``remoteControl/enable``."""


@attrs.frozen
class RemoteControlDisableResponse(RemoteControlStatusChangedNotification):
    """Answer of ``remoteControl/disable``."""
