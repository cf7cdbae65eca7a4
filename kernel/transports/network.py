"""Network listeners: websocket over TCP (``ws://IP:PORT``) and over a unix socket.

Both serve the same aiohttp application:

* ``GET /`` upgrades to a websocket carrying one JSON-RPC connection;
* ``GET /healthz`` answers 200 while the process runs, ``GET /readyz`` 200
  while the listener accepts connections and 503 once it stops;
* plugins add routes with the ``kernel_http_routes`` hook;
* any request carrying an ``Origin`` header is refused with 403 before
  anything else happens: browser pages must not reach a local server by
  accident (DNS rebinding, drive-by pages), and native clients send none;
* only ``GET /`` upgrades: ``HEAD /`` and other methods get 405.

Each accepted connection is served by
:class:`~kernel.transports.http_protocol.GuardedRequestHandler`: a cap on
open connections, a deadline for the request head, malformed requests
refused without quoting them, and a lingering close.

On a TCP listener every request except the two probes is authenticated by
plugins (``kernel_authenticate_websocket``) before any JSON-RPC message is
read; a unix socket relies on its owner-only file mode instead.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import attrs
from aiohttp import web
from aiohttp.typedefs import Handler

from ..auth import AuthResult, authenticate
from ..plugins import StartupError
from .http_protocol import ConnectionGate, protocol_factory
from .unix_socket import UnixSocketClaim, default_socket_path
from .websocket import serve_websocket

if TYPE_CHECKING:
    from ..runtime import Kernel

__all__ = ["ListenSpec", "NetworkListener", "parse_listen_url"]

log = logging.getLogger("kernel.transports.network")

_PROBES = frozenset({"/healthz", "/readyz"})
_AUTH_KEY = web.RequestKey("kernel_auth", AuthResult)
# What TCPSite used: pending connections the kernel queues before accept.
_BACKLOG = 128


@attrs.frozen
class ListenSpec:
    """A parsed ``--listen`` URL."""

    scheme: str  # "stdio", "ws", "unix" or "off"
    host: str = ""
    port: int = 0
    path: Path | None = None
    default_path: bool = False

    @property
    def loopback(self) -> bool:
        """Only processes on this machine can connect."""
        if self.scheme != "ws":
            return True
        return ipaddress.ip_address(self.host).is_loopback


def parse_listen_url(url: str, home: Path) -> ListenSpec:
    """Parse ``stdio://``, ``ws://IP:PORT``, ``unix://``, ``unix://PATH`` or ``off``."""
    if url in ("stdio://", "stdio"):
        return ListenSpec("stdio")
    if url == "off":
        return ListenSpec("off")
    if url.startswith("unix://"):
        rest = url[len("unix://") :]
        if not rest:
            return ListenSpec("unix", path=default_socket_path(home), default_path=True)
        path = Path(rest)
        if not path.is_absolute():
            raise StartupError(f"--listen {url}: the socket path must be absolute")
        return ListenSpec("unix", path=path)
    if url.startswith("ws://"):
        parts = urlsplit(url)
        try:
            port = parts.port
            host = parts.hostname or ""
            if host == "localhost":
                host = "127.0.0.1"
            ipaddress.ip_address(host)
        except ValueError:
            port, host = None, ""
        if not host or port is None or parts.path not in ("", "/") or parts.query:
            raise StartupError(
                f"--listen {url}: expected ws://IP:PORT, for example ws://127.0.0.1:4500 "
                "(port 0 picks a free port)"
            )
        return ListenSpec("ws", host=host, port=port)
    raise StartupError(
        f"--listen {url}: unsupported transport; use stdio://, ws://IP:PORT, unix://, "
        "unix://PATH or off"
    )


class NetworkListener:
    """Serves websocket connections on one TCP address or unix socket."""

    def __init__(self, kernel: Kernel, spec: ListenSpec, auth_modes: list[str]) -> None:
        self.kernel = kernel
        self.spec = spec
        self.auth_modes = auth_modes
        self.authenticates = spec.scheme == "ws"
        self.ready = False
        self.url = "ws://?" if spec.scheme == "ws" else f"unix://{spec.path}"
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._gate = ConnectionGate(kernel.settings.max_connections, self.url)
        # Checked now so a bad listener fails before any plugin starts.
        if spec.scheme == "ws" and not spec.loopback and not auth_modes:
            hints = [h for _, h in kernel.plugins.call("kernel_websocket_auth_hint") if h]
            how = (
                f"configure {' or '.join(hints)}"
                if hints
                else "no loaded plugin provides websocket authentication; enable or install "
                "one (`kernel plugins` lists them)"
            )
            raise StartupError(
                f"refusing to listen on non-loopback address {spec.host}:{spec.port} without "
                f"authentication; {how}, or listen on 127.0.0.1"
            )
        self._claim: UnixSocketClaim | None = None
        if spec.scheme == "unix":
            assert spec.path is not None
            self._claim = UnixSocketClaim(spec.path, create_parent=spec.default_path)

    async def start(self) -> None:
        """Bind and start accepting; the banner line names the URL and auth mode.

        The listening server is created here rather than by an aiohttp site
        so that each connection gets a
        :class:`~kernel.transports.http_protocol.GuardedRequestHandler`.
        """
        spec = self.spec
        app = self._make_app()
        # Connections are closed by the kernel before close(); what remains
        # at cleanup is idle keep-alive HTTP, which need not be waited for.
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        assert self._runner.server is not None
        factory = protocol_factory(
            self._runner.server, self._gate, self.kernel.settings.http_header_timeout_seconds
        )
        loop = asyncio.get_running_loop()
        try:
            if spec.scheme == "ws":
                self._server = await loop.create_server(
                    factory, spec.host, spec.port, backlog=_BACKLOG
                )
                port = self._server.sockets[0].getsockname()[1]
                self.url = f"ws://{_host_text(spec.host)}:{port}"
            else:
                assert self._claim is not None
                self._server = await loop.create_server(
                    factory, sock=self._claim.claim(), backlog=_BACKLOG
                )
        except BaseException as exc:
            await self._runner.cleanup()
            if self._claim is not None:
                self._claim.release()
            if isinstance(exc, OSError):
                where = self.url if spec.scheme == "unix" else f"{spec.host}:{spec.port}"
                raise StartupError(f"cannot listen on {where}: {exc.strerror or exc}") from None
            raise
        self._gate.where = self.url
        self.ready = True
        if spec.scheme == "ws":
            auth = ", ".join(self.auth_modes) or "none (loopback only)"
            http = "http" + self.url[2:]
            log.info(
                "listening on %s (auth: %s); probes: %s/healthz %s/readyz",
                self.url,
                auth,
                http,
                http,
            )
        else:
            log.info("listening on %s (auth: socket file mode 0600)", self.url)

    async def stop(self) -> None:
        """Refuse new connections and stop reading; the kernel then closes connections.

        The socket stays open until :meth:`close`, so during the shutdown
        grace period ``/readyz`` answers 503 (a load balancer drains the
        server) and upgrades are refused with 503 instead of a reset.
        """
        self.ready = False
        for conn in list(self.kernel.connections):
            if conn.transport == self.spec.scheme:
                conn.stop_reading()

    async def close(self) -> None:
        """Release the server and the socket file once connections are closed."""
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._claim is not None:
            self._claim.release()

    # -- the application --------------------------------------------------------

    def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=1024 * 1024)
        app.router.add_get("/healthz", _healthz)
        app.router.add_get("/readyz", self._readyz)
        # Not HEAD (aiohttp's default for add_get): only GET upgrades.
        app.router.add_get("/", self._upgrade, allow_head=False)
        self.kernel.plugins.call(
            "kernel_http_routes", stage="add HTTP routes", kernel=self.kernel, router=app.router
        )
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if "Origin" in request.headers:
            log.warning(
                "refused %s %s from %s: Origin header %r (browser requests are not served)",
                request.method,
                request.path,
                request.remote,
                request.headers["Origin"],
            )
            return web.Response(status=403, text="requests with an Origin header are refused")
        if self.authenticates and request.path not in _PROBES:
            result = await authenticate(self.kernel.plugins, request, bool(self.auth_modes))
            if not result.ok:
                log.warning(
                    "refused %s %s from %s: %s",
                    request.method,
                    request.path,
                    request.remote,
                    result.reason,
                )
                headers = {"WWW-Authenticate": "Bearer"} if result.status == 401 else None
                return web.Response(status=result.status, text=result.reason, headers=headers)
            request[_AUTH_KEY] = result
        return await handler(request)

    async def _readyz(self, request: web.Request) -> web.Response:
        if self.ready and self.kernel.stop_reason is None:
            return web.Response(text="ready")
        return web.Response(status=503, text="not accepting connections")

    async def _upgrade(self, request: web.Request) -> web.StreamResponse:
        if not self.ready:
            return web.Response(status=503, text="not accepting connections")
        auth = request.get(_AUTH_KEY)
        subject = auth.subject if auth is not None else "unix socket owner"
        return await serve_websocket(self.kernel, request, self.spec.scheme, subject)


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host else host
