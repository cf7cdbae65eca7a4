"""A self-hostable relay for the kernel's remote control.

It speaks the server side of the reference's remote-control protocol
(enrollment over HTTPS, version 3 of the multiplexed websocket) to
app-servers, and lets clients reach an enrolled server's environment with
a token, over a plain JSON-RPC websocket. See README.md.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
