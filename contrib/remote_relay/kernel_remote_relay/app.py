"""The relay's HTTP surface (aiohttp).

Routes, under ``path_prefix`` (default none):

| route | who | credential |
| --- | --- | --- |
| ``POST /wham/remote/control/server/enroll`` | app-server | enrollment secret |
| ``POST /wham/remote/control/server/refresh`` | app-server | enrollment secret |
| ``GET /wham/remote/control/server`` (websocket) | app-server | server token |
| ``GET /wham/remote/control/environments/{id}/connect`` (websocket) | client | client token |
| ``GET /healthz`` | anyone | none |

Refusals say why without echoing credentials: 401 (missing or wrong
credential), 404 ``{"detail": "Remote app server not found"}`` (an
app-server this relay does not know: it enrolls again), 403 for a request
with an ``Origin`` header (browsers cannot send the bearer header on a
websocket anyway; refusing them blocks cross-site use), 503 for an
environment whose app-server is not connected.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import datetime
import logging
import secrets
import time
from typing import Any

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from .credentials import (
    bearer,
    client_token_matches,
    new_server_token,
    secret_matches,
    token_digest,
    token_matches,
)
from .hub import ClientStream, Environment, HubLimits
from .protocol import MISSING_SERVER, PROTOCOL_VERSION, parse_cursor
from .store import RelayStore, ServerRecord

__all__ = ["HUB", "Hub", "RelayConfig", "build_app"]

log = logging.getLogger("kernel_remote_relay")

SERVER_SCOPE = "remote_control_server_websocket"
_ID_MAX = 200


@dataclasses.dataclass(frozen=True)
class RelayConfig:
    """Everything the relay is started with."""

    enrollment_secret: bytes = dataclasses.field(repr=False)
    client_secret: bytes = dataclasses.field(repr=False)
    path_prefix: str = ""
    token_ttl_seconds: float = 3600.0
    limits: HubLimits = HubLimits()


def _json(status: int, body: dict[str, Any], **headers: str) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


def _unauthorized(detail: str) -> web.Response:
    return _json(401, {"detail": detail}, **{"WWW-Authenticate": "Bearer"})


class Hub:
    """The environments of enrolled app-servers, created as they connect."""

    def __init__(self, config: RelayConfig, store: RelayStore) -> None:
        self.config = config
        self.store = store
        self.environments: dict[str, Environment] = {}
        self._pinger: asyncio.Task[None] | None = None

    def environment(self, record: ServerRecord) -> Environment:
        """The live environment of ``record`` (created on first use)."""
        environment = self.environments.get(record.environment_id)
        if environment is None:
            environment = Environment(record, self.config.limits)
            self.environments[record.environment_id] = environment
        return environment

    async def retire(self, record: ServerRecord) -> None:
        """``record`` was replaced by a new enrollment: close what used it."""
        environment = self.environments.pop(record.environment_id, None)
        if environment is not None:
            await environment.close(WSCloseCode.GOING_AWAY, "the app-server enrolled again")

    async def start(self, app: web.Application) -> None:
        """Begin pinging streams now and then (aiohttp startup hook)."""

        async def ping() -> None:
            while True:
                await asyncio.sleep(self.config.limits.ping_interval_seconds)
                for environment in list(self.environments.values()):
                    environment.ping_streams()

        self._pinger = asyncio.get_running_loop().create_task(ping())

    async def stop(self, app: web.Application) -> None:
        """Close every websocket (aiohttp shutdown hook)."""
        if self._pinger is not None:
            self._pinger.cancel()
        for environment in list(self.environments.values()):
            await environment.close(WSCloseCode.GOING_AWAY, "relay shutting down")

    # -- enrollment ------------------------------------------------------------------------

    def _issue(self, record: ServerRecord) -> dict[str, Any]:
        token = new_server_token()
        record.token_sha256 = token_digest(token)
        record.token_expires_at = time.time() + self.config.token_ttl_seconds
        expires = datetime.datetime.fromtimestamp(record.token_expires_at, datetime.UTC)
        return {
            "server_id": record.server_id,
            "environment_id": record.environment_id,
            "remote_control_token": token,
            "expires_at": expires.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "scopes": [SERVER_SCOPE],
        }

    async def _body(self, request: web.Request) -> dict[str, Any] | web.Response:
        if not secret_matches(bearer(request.headers), self.config.enrollment_secret):
            return _unauthorized("missing or invalid enrollment secret")
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _json(400, {"detail": "expected a JSON object"})
        if not isinstance(body, dict):
            return _json(400, {"detail": "expected a JSON object"})
        installation = body.get("installation_id")
        if not isinstance(installation, str) or not 0 < len(installation) <= _ID_MAX:
            return _json(400, {"detail": "installation_id: expected a non-empty string"})
        return body

    async def enroll(self, request: web.Request) -> web.Response:
        """``POST .../server/enroll``: a new environment for this app-server."""
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        name = body.get("name")
        record = ServerRecord(
            server_id="srv_" + secrets.token_hex(12),
            environment_id="env_" + secrets.token_hex(12),
            installation_id=body["installation_id"],
            name=name[:_ID_MAX] if isinstance(name, str) else "",
            token_sha256="",
            token_expires_at=0.0,
            created_at=time.time(),
        )
        answer = self._issue(record)
        for stale in self.store.add(record):
            log.info("environment %s retired: its app-server enrolled again", stale.environment_id)
            await self.retire(stale)
        await self.store.save()
        log.info(
            "enrolled %r (installation %s) as environment %s",
            record.name,
            record.installation_id,
            record.environment_id,
        )
        return _json(200, answer)

    async def refresh(self, request: web.Request) -> web.Response:
        """``POST .../server/refresh``: a fresh server token for a known app-server."""
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        record = self.store.by_server(str(body.get("server_id")))
        if record is None or record.installation_id != body["installation_id"]:
            return _json(404, {"detail": MISSING_SERVER})
        answer = self._issue(record)
        await self.store.save()
        log.info("refreshed the token of environment %s", record.environment_id)
        return _json(200, answer)

    # -- websockets ------------------------------------------------------------------------

    def _server_record(self, request: web.Request) -> ServerRecord | web.Response:
        headers = request.headers
        if "Origin" in headers:
            return _json(403, {"detail": "requests with an Origin header are refused"})
        version = headers.get("x-codex-protocol-version")
        if version != PROTOCOL_VERSION:
            return _json(
                400,
                {"detail": f"unsupported x-codex-protocol-version; this relay speaks "
                f"{PROTOCOL_VERSION}"},
            )  # fmt: skip
        record = self.store.by_server(headers.get("x-codex-server-id", ""))
        if record is None:
            return _json(404, {"detail": MISSING_SERVER})
        if (
            not token_matches(bearer(headers), record.token_sha256)
            or record.token_expires_at <= time.time()
            or headers.get("x-codex-installation-id") != record.installation_id
        ):
            return _unauthorized("invalid or expired remote control server token")
        return record

    async def server_socket(self, request: web.Request) -> web.StreamResponse:
        """``GET .../server``: an app-server's multiplexed websocket."""
        record = self._server_record(request)
        if isinstance(record, web.Response):
            return record
        ws = self._websocket()
        if not ws.can_prepare(request).ok:
            return _json(400, {"detail": "expected a websocket upgrade"})
        await ws.prepare(request)
        name = _decode_name(request.headers.get("x-codex-name"))
        cursor = parse_cursor(request.headers.get("x-codex-subscribe-cursor"))
        environment = self.environment(record)
        log.info("environment %s: app-server %r connected", record.environment_id, name)
        await environment.serve_server(ws, cursor)
        return ws

    async def client_socket(self, request: web.Request) -> web.StreamResponse:
        """``GET .../environments/{id}/connect``: a client's JSON-RPC websocket."""
        if "Origin" in request.headers:
            return _json(403, {"detail": "requests with an Origin header are refused"})
        environment_id = request.match_info["environment_id"]
        token = bearer(request.headers)
        if not client_token_matches(token, self.config.client_secret, environment_id):
            return _unauthorized("missing or invalid client token")
        record = self.store.by_environment(environment_id)
        if record is None:
            return _json(404, {"detail": "unknown environment"})
        environment = self.environments.get(environment_id)
        if environment is None or not environment.online:
            return _json(
                503,
                {"detail": "the app-server of this environment is not connected"},
                **{"Retry-After": "5"},
            )
        ws = self._websocket()
        if not ws.can_prepare(request).ok:
            return _json(400, {"detail": "expected a websocket upgrade"})
        await ws.prepare(request)
        stream = environment.open_stream(ws)
        log.info("environment %s: client %s/%s connected", environment_id, *stream.key)
        try:
            await _read_client(environment, stream)
        finally:
            await environment.close_stream(stream)
            log.info("environment %s: client %s/%s left", environment_id, *stream.key)
        return ws

    def _websocket(self) -> web.WebSocketResponse:
        limits = self.config.limits
        return web.WebSocketResponse(
            max_msg_size=limits.max_message_bytes + 1,
            heartbeat=limits.heartbeat_seconds,
            compress=False,
        )


_FLOOD_CLOSE_SECONDS = 1.0
"""How long closing a flooding client may take (its close frame, its reply) before the drop."""


async def _read_client(environment: Environment, stream: ClientStream) -> None:
    ws = stream.ws
    async for message in ws:
        if message.type is WSMsgType.TEXT:
            data = message.data.encode()
            try:
                decoded = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                error = {"code": -32700, "message": f"Parse error: {exc}"}
                verdict: str | bytes = orjson.dumps({"id": None, "error": error})
            else:
                verdict = stream.gate(decoded)
            if isinstance(verdict, bytes):
                if not stream.answer(verdict):
                    await _drop_flooding(stream)
                    return
            elif verdict == "forward":
                await environment.forward(stream, data)
        elif message.type is WSMsgType.BINARY:
            await ws.close(
                code=WSCloseCode.UNSUPPORTED_DATA,
                message=b"binary frames are not supported; send JSON text frames",
            )
            return


async def _drop_flooding(stream: ClientStream) -> None:
    """Close a client that sends on while the relay's answers to it wait unwritten (1008).

    It reads nothing, so its close frame may never be written either: what
    is queued for it is dropped, and the socket goes after a short wait.
    """
    log.warning(
        "client %s/%s: more than %d of the relay's answers wait unread; closing it",
        *stream.key,
        stream.environment.limits.backlog,
    )
    await stream.stop()
    try:
        async with asyncio.timeout(_FLOOD_CLOSE_SECONDS):
            await stream.ws.close(
                code=WSCloseCode.POLICY_VIOLATION,
                message=b"too many unread answers; read what the relay sends",
                drain=False,
            )
    except TimeoutError:
        pass  # aiohttp closed the transport


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def _decode_name(value: str | None) -> str:
    if not value:
        return ""
    try:
        return base64.b64decode(value, validate=True).decode("utf-8", "replace")[:_ID_MAX]
    except (binascii.Error, ValueError):
        return ""


HUB = web.AppKey("hub", Hub)
"""The application's :class:`Hub`."""


def build_app(config: RelayConfig, store: RelayStore) -> web.Application:
    """The relay as an aiohttp application."""
    hub = Hub(config, store)
    app = web.Application(client_max_size=64 * 1024)
    app[HUB] = hub
    base = config.path_prefix.rstrip("/") + "/wham/remote/control"
    app.router.add_post(f"{base}/server/enroll", hub.enroll)
    app.router.add_post(f"{base}/server/refresh", hub.refresh)
    app.router.add_get(f"{base}/server", hub.server_socket)
    app.router.add_get(f"{base}/environments/{{environment_id}}/connect", hub.client_socket)
    app.router.add_get("/healthz", _healthz)
    app.on_startup.append(hub.start)
    app.on_shutdown.append(hub.stop)
    return app
