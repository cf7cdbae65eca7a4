"""The connection to the relay: enrollment, the websocket, reconnection and the status.

While enabled, one task keeps this server connected:

1. *enrollment*: the stored enrollment of this relay (``state.sqlite``) is
   reused and a fresh server token fetched (``/refresh``); without one, or
   when the relay no longer knows this server (HTTP 404), the server enrolls
   again (``/enroll``) and records the new ids;
2. *websocket*: ``GET <base>/wham/remote/control/server`` with the
   reference's headers (``Authorization: Bearer <server token>``,
   ``x-codex-protocol-version: 3``, ``x-codex-name`` (base64 host name),
   ``x-codex-server-id``, ``x-codex-installation-id``, and
   ``x-codex-subscribe-cursor`` after the first connection);
3. *serving*: envelopes go to :class:`~.clients.RemoteClients`; the writer
   sends :class:`~.outbound.Outbound`'s envelopes, first every one not yet
   acknowledged (a replay after a reconnect);
4. on any failure the status becomes ``errored`` and the task retries with
   exponential backoff (0.5 s doubling to ``reconnect_max_seconds``, with
   jitter). A dropped websocket is not an identity change: remote
   connections stay open, the environment id stays, and what they were
   sent is replayed once the relay is back. Only the relay saying it does
   not know this server (404 ``Remote app server not found``) starts a new
   enrollment; a 401/403 on the websocket fetches a new token first.

Statuses: ``connecting`` before each attempt, ``connected`` once the
websocket is up, ``errored`` after a failed attempt, ``disabled``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import time
from typing import TYPE_CHECKING

import aiohttp
import orjson

from kernel import RpcError
from kernel.rpc.errors import INTERNAL_ERROR, INVALID_REQUEST

from .clients import RemoteClients
from .enroll import EnrollmentError, ServerToken, request_token
from .identity import Identity
from .outbound import Outbound
from .protocol import PROTOCOL_VERSION, parse_client_envelope
from .settings import RelayTarget, RemoteControlSettings, SecretError, read_secret
from .status import StatusBoard
from .store import EnrollmentStore, StoredEnrollment

if TYPE_CHECKING:
    from kernel import Connection, Kernel

__all__ = ["FORBIDDEN", "RemoteControl"]

log = logging.getLogger("plugins.remote_control")

FORBIDDEN = "remote control is disabled by managed requirements"
NOT_CONFIGURED = (
    "remote control needs a relay: set kernel_plugins.remote_control.base_url and an "
    "enrollment secret (see docs/remote_control.md)"
)
_MISSING_SERVER = "Remote app server not found"
_TOKEN_REFRESH_MARGIN = 60.0
_LONG_LIVED = 30.0  # a connection that lasted this long resets the backoff


class _ConnectFailed(Exception):
    """The websocket could not be opened; the message says why."""


class RemoteControl:
    """Enable/disable, the relay connection task, and the remote clients it serves."""

    def __init__(
        self,
        kernel: Kernel,
        settings: RemoteControlSettings,
        target: RelayTarget | None,
        status: StatusBoard,
        forbidden: bool,
    ) -> None:
        self.kernel = kernel
        self.settings = settings
        self.target = target
        self.status = status
        self.forbidden = forbidden
        self.identity: Identity | None = None
        self.store = EnrollmentStore(kernel.home)
        self.outbound = Outbound(settings.unacked_messages_per_client)
        self.clients = RemoteClients(
            kernel,
            self.outbound,
            max_clients=settings.max_clients,
            inbound_backlog=settings.inbound_backlog,
            idle_timeout=settings.idle_timeout_seconds,
        )
        self.connected = asyncio.Event()
        self._enabled = False
        self._control = asyncio.Lock()  # one enable/disable at a time
        self._enroll_lock = asyncio.Lock()
        self._enrollment: StoredEnrollment | None = None
        self._token: ServerToken | None = None
        self._loaded = False
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- control ---------------------------------------------------------------------------

    def refusal(self) -> str | None:
        """Why remote control cannot be enabled here, or None."""
        if self.forbidden:
            return FORBIDDEN
        if self.target is None:
            return NOT_CONFIGURED
        return None

    async def enable(self, connection: Connection | None, ephemeral: bool) -> None:
        """Turn remote control on (see ``remoteControl/enable`` in docs/remote_control.md).

        Not ephemeral: enroll first (errors go to the caller and nothing
        changes) and remember the choice. Ephemeral: start connecting now,
        for this process only; failures show in the status.
        """
        refusal = self.refusal()
        if refusal is not None:
            raise RpcError(INVALID_REQUEST, refusal)
        async with self._control:
            if not ephemeral:
                if not self._enabled:
                    async with self._enroll_lock:
                        try:
                            await self._ensure_token(connection)
                        except EnrollmentError as exc:
                            raise RpcError(exc.code, exc.message) from None
                        except SecretError as exc:
                            raise RpcError(INVALID_REQUEST, str(exc)) from None
                await asyncio.to_thread(self.store.set_enabled, True)
            self._start()

    async def disable(self, ephemeral: bool) -> None:
        """Turn remote control off: remote connections close, the relay socket too."""
        async with self._control:
            if not ephemeral:
                await asyncio.to_thread(self.store.set_enabled, False)
            await self._stop_running("remote control disabled")
            self.status.set("disabled", None)

    async def start(self, wanted: bool) -> None:
        """At startup: load the identity and connect if ``wanted`` (flag or remembered choice)."""
        if not wanted:
            return
        if self.forbidden:
            log.warning("%s (allow_remote_control = false); not connecting", FORBIDDEN)
            return
        if self.target is None:
            log.warning("remote control was asked for at startup, but %s", NOT_CONFIGURED)
            self.status.set("connecting")
            self.status.set("errored")
            return
        self._start()

    async def shutdown(self) -> None:
        """Stop everything (the kernel already closed the connections)."""
        async with self._control:
            await self._stop_running("server shutting down")
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _start(self) -> None:
        if self._enabled:
            return
        self._enabled = True
        self.clients.accepting = True
        environment = self._enrollment.environment_id if self._enrollment else None
        self.status.set("connecting", environment)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._run(), name="remote-control-relay"),
            loop.create_task(self._sweep(), name="remote-control-sweep"),
        ]

    async def _stop_running(self, reason: str) -> None:
        self._enabled = False
        self.clients.accepting = False
        await self.clients.close_all(reason)
        if self.connected.is_set():
            # Let the relay hear that those streams ended before the socket goes.
            await self.outbound.wait_written(1.0)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- enrollment ------------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _ensure_token(self, connection: Connection | None) -> None:
        """Have an enrollment and a token valid for another minute (refresh or enroll)."""
        target, identity = self.target, self.identity
        assert target is not None and identity is not None
        if not self._loaded:
            self._enrollment = await asyncio.to_thread(self.store.load, target.websocket_url)
            self._loaded = True
        token = self._token
        if token is not None and not token.expires_within(_TOKEN_REFRESH_MARGIN, time.time()):
            return
        secret = await asyncio.to_thread(read_secret, self.settings)
        timeout = self.settings.request_timeout_seconds
        if self._enrollment is not None:
            try:
                token = await request_token(
                    self._http(),
                    self.kernel.plugins,
                    url=target.refresh_url,
                    refresh=True,
                    secret=secret,
                    identity=identity,
                    server_id=self._enrollment.server_id,
                    connection=connection,
                    timeout=timeout,
                )
            except EnrollmentError as exc:
                if exc.status != 404:
                    raise
                log.info("the relay does not know server %s; enrolling again", self._enrollment)
                await self._forget_enrollment()
            else:
                if token.environment_id != self._enrollment.environment_id:
                    await self._record(token)  # the relay moved this server
                self._token = token
                return
        token = await request_token(
            self._http(),
            self.kernel.plugins,
            url=target.enroll_url,
            refresh=False,
            secret=secret,
            identity=identity,
            server_id=None,
            connection=connection,
            timeout=timeout,
        )
        await self._record(token)
        self._token = token

    async def _record(self, token: ServerToken) -> None:
        """Keep the ids the relay gave (``state.sqlite``, then memory and the status)."""
        assert self.target is not None and self.identity is not None
        enrollment = StoredEnrollment(
            token.server_id, token.environment_id, self.identity.server_name
        )
        try:
            await asyncio.to_thread(self.store.save, self.target.websocket_url, enrollment)
        except Exception as exc:
            log.exception("recording the remote control enrollment failed")
            raise EnrollmentError(
                f"failed to persist remote control enrollment in state.sqlite: {exc}",
                INTERNAL_ERROR,
            ) from None
        log.info(
            "enrolled with the relay at %s: server %s, environment %s",
            self.target.base_url,
            token.server_id,
            token.environment_id,
        )
        self._enrollment = enrollment
        if self._enabled:
            self.status.set(environment_id=token.environment_id)

    async def _forget_enrollment(self) -> None:
        assert self.target is not None
        await asyncio.to_thread(self.store.clear, self.target.websocket_url)
        self._enrollment, self._token = None, None
        if self._enabled:
            self.status.set(environment_id=None)

    # -- the connection --------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        delay = min(self.settings.reconnect_max_seconds, 0.5 * 2 ** min(attempt, 16))
        return delay * random.uniform(0.9, 1.1)

    async def _run(self) -> None:
        """Connect, serve, reconnect: until disabled or shut down."""
        loop = asyncio.get_running_loop()
        attempt = 0
        while self._enabled:
            self.status.set("connecting")
            try:
                async with self._enroll_lock:
                    await self._ensure_token(None)
                ws = await self._connect()
            except (EnrollmentError, SecretError, _ConnectFailed) as exc:
                log.warning("remote control: %s", exc)
                self.status.set("errored")
                await asyncio.sleep(self._backoff(attempt))
                attempt += 1
                continue
            except Exception:
                log.exception("remote control: connecting to the relay failed")
                self.status.set("errored")
                await asyncio.sleep(self._backoff(attempt))
                attempt += 1
                continue
            assert self._enrollment is not None
            self.status.set("connected", self._enrollment.environment_id)
            began = loop.time()
            await self._serve(ws)
            attempt = 0 if loop.time() - began >= _LONG_LIVED else attempt + 1
            if self._enabled:
                self.status.set("connecting")
                await asyncio.sleep(self._backoff(attempt))

    async def _connect(self) -> aiohttp.ClientWebSocketResponse:
        assert self.target is not None and self.identity is not None
        enrollment, token = self._enrollment, self._token
        assert enrollment is not None and token is not None
        url = self.target.websocket_url
        headers = {
            "Authorization": f"Bearer {token.token}",
            "x-codex-protocol-version": PROTOCOL_VERSION,
            "x-codex-name": base64.b64encode(self.identity.server_name.encode()).decode(),
            "x-codex-server-id": enrollment.server_id,
            "x-codex-installation-id": self.identity.installation_id,
        }
        if self.clients.cursor is not None:
            headers["x-codex-subscribe-cursor"] = self.clients.cursor
        try:
            async with asyncio.timeout(self.settings.request_timeout_seconds):
                return await self._http().ws_connect(
                    url,
                    headers=headers,
                    heartbeat=self.settings.heartbeat_seconds,
                    max_msg_size=self.kernel.settings.max_message_bytes + (1 << 20),
                    autoclose=True,
                    autoping=True,
                )
        except aiohttp.WSServerHandshakeError as exc:
            status = exc.status
            if status == 404 and await self._server_unknown(url, headers):
                await self._forget_enrollment()
                raise _ConnectFailed(
                    "the relay does not know this server (HTTP 404); enrolling again"
                ) from None
            if status in (401, 403):
                self._token = None
                raise _ConnectFailed(
                    f"remote control websocket auth failed with HTTP {status}; refreshing "
                    "server token before reconnect"
                ) from None
            raise _ConnectFailed(
                f"failed to connect app-server remote control websocket `{url}`: HTTP {status}"
            ) from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            detail = str(exc) or type(exc).__name__
            raise _ConnectFailed(
                f"failed to connect app-server remote control websocket `{url}`: {detail}"
            ) from None

    async def _server_unknown(self, url: str, headers: dict[str, str]) -> bool:
        """Whether a 404 on the upgrade says ``Remote app server not found``.

        The upgrade failure carries no body, so the same request is made once
        more without the upgrade to read it. Any other 404 (a wrong URL)
        keeps the enrollment: only the relay's explicit word starts over.
        """
        http_url = "http" + url[2:]
        try:
            async with self._http().get(
                http_url,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.settings.request_timeout_seconds),
                allow_redirects=False,
            ) as response:
                if response.status != 404:
                    return False
                body = orjson.loads(await response.read())
        except (aiohttp.ClientError, OSError, TimeoutError, orjson.JSONDecodeError):
            return False
        return isinstance(body, dict) and body.get("detail") == _MISSING_SERVER

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Read and write on ``ws`` until either side fails or it closes."""
        replayed = self.outbound.rewind()
        log.info(
            "connected to the relay%s", f"; replaying {replayed} envelopes" if replayed else ""
        )
        self.connected.set()
        loop = asyncio.get_running_loop()
        reader = loop.create_task(self._read(ws), name="remote-control-read")
        writer = loop.create_task(self._write(ws), name="remote-control-write")
        try:
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.connected.clear()
            reader.cancel()
            writer.cancel()
            results = await asyncio.gather(reader, writer, return_exceptions=True)
            with contextlib.suppress(Exception):
                await ws.close()
        for result in results:
            if isinstance(result, Exception):
                log.warning("relay connection failed: %s: %s", type(result).__name__, result)
        log.info("disconnected from the relay (close code %s)", ws.close_code)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        clients = self.clients
        async for message in ws:
            if message.type is aiohttp.WSMsgType.TEXT:
                envelope = parse_client_envelope(message.data)
                if isinstance(envelope, str):
                    log.warning("dropping an unusable envelope from the relay: %s", envelope)
                    continue
                try:
                    await clients.handle(envelope)
                except Exception:
                    log.exception("handling a %s envelope failed", envelope.type)
            elif message.type is aiohttp.WSMsgType.BINARY:
                log.warning("dropping a binary frame from the relay (%d bytes)", len(message.data))

    async def _write(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        outbound = self.outbound
        text = aiohttp.WSMsgType.TEXT
        while True:
            for frame in await outbound.take():
                await ws.send_frame(frame, text)

    async def _sweep(self) -> None:
        """Close idle remote streams, now and then."""
        interval = min(30.0, self.settings.idle_timeout_seconds / 2)
        while True:
            await asyncio.sleep(interval)
            self.clients.sweep()
