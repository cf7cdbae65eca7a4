"""The ``ws_auth`` plugin: bearer-token authentication of ``ws://`` listeners.

Adds the ``--ws-*`` flags (they disappear with ``--disable ws_auth``),
validates them at startup and judges each websocket upgrade. Modes:
``capability-token`` (a shared opaque token, stored only as its SHA-256)
and ``signed-bearer-token`` (HS256 JWTs signed with a shared secret).
"""

from __future__ import annotations

import argparse
import logging

from aiohttp import web

from kernel import AuthResult, PluginConfig, hookimpl
from kernel.hookspecs import OptionGroup

from .settings import DEFAULT_CLOCK_SKEW_SECONDS, MODES, AuthSettings, ConfigFile, load_settings
from .verify import verify_bearer

__all__ = ["WsAuthPlugin"]

log = logging.getLogger("plugins.ws_auth")


class WsAuthPlugin:
    """Implements the kernel's websocket authentication hooks."""

    def __init__(self) -> None:
        self.settings = AuthSettings(mode=None)

    @hookimpl
    def kernel_add_cli_options(self, group: OptionGroup) -> None:
        group.add_argument(
            "--ws-auth", choices=MODES, metavar="MODE", help=f"one of: {', '.join(MODES)}"
        )
        group.add_argument(
            "--ws-token-file", metavar="ABSPATH", help="file holding the capability token"
        )
        group.add_argument(
            "--ws-token-sha256", metavar="HEX", help="SHA-256 (hex) of the capability token"
        )
        group.add_argument(
            "--ws-shared-secret-file",
            metavar="ABSPATH",
            help="file holding the HS256 secret (at least 32 bytes)",
        )
        group.add_argument("--ws-issuer", metavar="ISS", help="required JWT issuer (iss)")
        group.add_argument("--ws-audience", metavar="AUD", help="required JWT audience (aud)")
        group.add_argument(
            "--ws-max-clock-skew-seconds",
            type=float,
            metavar="SECONDS",
            help=f"allowed clock skew for exp/nbf (default {DEFAULT_CLOCK_SKEW_SECONDS:g})",
        )

    @hookimpl
    def kernel_settings(self) -> type[ConfigFile]:
        return ConfigFile

    @hookimpl
    def kernel_configure(self, config: PluginConfig, options: argparse.Namespace) -> None:
        self.settings = load_settings(config, options)
        if self.settings.mode is not None:
            log.info("websocket authentication: %s", self.settings.mode)

    @hookimpl
    def kernel_websocket_auth_mode(self) -> str | None:
        return self.settings.mode

    @hookimpl
    def kernel_websocket_auth_hint(self) -> str:
        return (
            "--ws-auth capability-token (with --ws-token-file or --ws-token-sha256) or "
            "--ws-auth signed-bearer-token (with --ws-shared-secret-file)"
        )

    @hookimpl
    def kernel_authenticate_websocket(self, request: web.Request) -> AuthResult | None:
        if self.settings.mode is None:
            return None
        return verify_bearer(self.settings, request.headers.get("Authorization"))
