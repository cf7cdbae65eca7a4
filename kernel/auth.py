"""Authentication of network connections, decided by plugins.

The kernel enforces no credential scheme itself. Plugins answer two hooks:
``kernel_websocket_auth_mode`` names the scheme a plugin enforces (used for
the startup banner and the rule that a non-loopback listener needs one), and
``kernel_authenticate_websocket`` judges one upgrade request; the first
plugin, in load order, that returns a result decides.

Failing closed: when some plugin enforces a mode and no plugin accepted the
request, it is refused; when a plugin's hook raises, the request is refused
with 500 and the traceback is logged (the client learns nothing about why).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import attrs

from .plugins import PluginCallError

if TYPE_CHECKING:
    from aiohttp import web

    from .plugins import PluginHost

__all__ = ["AuthResult", "auth_modes", "authenticate"]

log = logging.getLogger("kernel.auth")


@attrs.frozen
class AuthResult:
    """A plugin's verdict on one upgrade request.

    ``reason`` is sent to a refused client as the response body, so it must
    never contain a secret. ``subject`` names who was accepted, for logs.
    """

    ok: bool
    reason: str = ""
    subject: str = ""
    status: int = 401
    decided_by: str = ""

    @classmethod
    def accept(cls, subject: str = "") -> AuthResult:
        """The request may open a connection."""
        return cls(True, subject=subject, status=200)

    @classmethod
    def reject(cls, reason: str, status: int = 401) -> AuthResult:
        """Refuse the request with ``status`` and a client-visible ``reason``."""
        return cls(False, reason=reason, status=status)


def auth_modes(host: PluginHost) -> list[tuple[str, str]]:
    """``(plugin, mode)`` for every active plugin that enforces an auth mode."""
    return [
        (name, str(mode))
        for name, mode in host.call("kernel_websocket_auth_mode")
        if mode is not None
    ]


async def authenticate(host: PluginHost, request: web.Request, enforced: bool) -> AuthResult:
    """Ask plugins to judge ``request``; the first result wins.

    ``enforced`` says whether any auth mode is configured: with one and no
    verdict, the request is refused; without one, it is accepted.
    """
    try:
        found = await host.first("kernel_authenticate_websocket", request=request)
    except PluginCallError as exc:
        log.error("%s", exc, exc_info=exc.__cause__)
        return AuthResult.reject("authentication is unavailable (server error)", 500)
    if found is None:
        if enforced:
            return AuthResult.reject("no authentication plugin accepted this request")
        return AuthResult.accept("unauthenticated loopback client")
    name, result = found
    if not isinstance(result, AuthResult):
        log.error(
            "plugin %s: kernel_authenticate_websocket returned %r, not an AuthResult",
            name,
            type(result).__name__,
        )
        return AuthResult.reject("authentication is unavailable (server error)", 500)
    return attrs.evolve(result, decided_by=name)
