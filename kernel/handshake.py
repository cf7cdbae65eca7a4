"""The ``initialize`` / ``initialized`` handshake, owned by the kernel.

``initialize`` runs inline on the connection's reader: a client may pipeline
``initialize`` and its first calls, and those calls must see an initialized
connection. Plugins extend the response through the
``kernel_initialize_response`` hook; one plugin failing there is logged and
skipped, the handshake still succeeds.
"""

from __future__ import annotations

import logging
import platform
import sys
from typing import TYPE_CHECKING, Any

import attrs

from ._version import __version__
from .rpc.fields import AbsolutePath, field
from .rpc.registry import KERNEL_OWNER, Registry

if TYPE_CHECKING:
    from .connection import Connection
    from .context import RequestContext
    from .runtime import Kernel

__all__ = [
    "ClientInfo",
    "InitializeCapabilities",
    "InitializeParams",
    "InitializeResponse",
    "register_handshake",
]

log = logging.getLogger("kernel.handshake")


@attrs.frozen
class ClientInfo:
    """Who the client is; shown in logs and in the user agent."""

    name: str
    version: str
    title: str | None = None


@attrs.frozen
class InitializeCapabilities:
    """What the client opts into for this connection."""

    experimental_api: bool = False
    opt_out_notification_methods: list[str] | None = None
    request_attestation: bool = False
    explicit_gateway_oauth: bool | None = field(default=None, omit_none=True)
    mcp_server_openai_form_elicitation: bool | None = field(default=None, omit_none=True)
    required_human_approval: bool | None = field(default=None, omit_none=True)
    extensions: dict[str, Any] | None = None


@attrs.frozen
class InitializeParams:
    """The first request of every connection."""

    client_info: ClientInfo
    capabilities: InitializeCapabilities | None = None


@attrs.frozen
class InitializeResponse:
    """What the server tells the client about itself."""

    user_agent: str
    codex_home: AbsolutePath  # the server's home directory (KERNEL_HOME)
    platform_family: str
    platform_os: str


def _platform_family() -> str:
    return "windows" if sys.platform.startswith("win") else "unix"


def _platform_os() -> str:
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform == "darwin":
        return "macos"
    if sys.platform.startswith("win"):
        return "windows"
    return sys.platform


def user_agent(client: ClientInfo) -> str:
    """``kernel/<version> (<os> <release>; <arch>) (<client>; <client version>)``."""
    system = f"{platform.system()} {platform.release()}".strip()
    return (
        f"kernel/{__version__} ({system}; {platform.machine()}) ({client.name}; {client.version})"
    )


def register_handshake(registry: Registry, kernel: Kernel) -> None:
    """Declare ``initialize`` and ``initialized`` as kernel-owned entries."""
    registrar = registry.registrar(KERNEL_OWNER)

    def initialize(params: InitializeParams, ctx: RequestContext) -> dict[str, Any]:
        """Negotiate capabilities; must be the first request of a connection."""
        return _initialize(kernel, ctx.connection, params)

    def initialized(params: None, ctx: RequestContext) -> None:
        """The client finished its side of the handshake (nothing waits for it)."""

    # The result is built as a dict (plugins may add members); the declared
    # type is what the schema publishes.
    registrar.method("initialize", initialize, params=InitializeParams, result=InitializeResponse)
    registrar.client_notification("initialized", initialized)


def _initialize(kernel: Kernel, conn: Connection, params: InitializeParams) -> dict[str, Any]:
    caps = params.capabilities or InitializeCapabilities()
    response: dict[str, Any] = kernel.converter.unstructure(
        InitializeResponse(
            user_agent=user_agent(params.client_info),
            codex_home=AbsolutePath(str(kernel.home)),
            platform_family=_platform_family(),
            platform_os=_platform_os(),
        )
    )
    conn.accept_initialize(params.client_info, caps)
    for owner, extra in kernel.plugins.call(
        "kernel_initialize_response", connection=conn, params=params
    ):
        if extra is None:
            continue
        if not isinstance(extra, dict):
            log.error(
                "plugin %r returned %s from kernel_initialize_response; expected a dict",
                owner,
                type(extra).__name__,
            )
            continue
        for key, value in extra.items():
            if key in response:
                log.error(
                    "plugin %r tried to replace initialize response member %r; ignored", owner, key
                )
                continue
            response[key] = value
    log.info(
        "connection %s initialized by %s %s (experimentalApi=%s)",
        conn.id,
        params.client_info.name,
        params.client_info.version,
        caps.experimental_api,
    )
    return response
