"""The ``remote_control`` plugin: remote clients reach this server through a relay.

``remoteControl/status/read``, ``enable`` and ``disable`` (experimental),
``remoteControl/status/changed``, enrollment with a relay and the
multiplexed websocket of the reference's relay protocol (version 3), each
remote client served as a kernel connection. ``contrib/remote_relay`` is a
relay you can host. See docs/remote_control.md.
"""

from __future__ import annotations

from .plugin import RemoteControlPlugin

__all__ = ["RemoteControlPlugin"]
