"""The relay package's aiohttp app in the test's loop, and a scripted app-server for it.

:func:`relay_app` serves ``kernel_remote_relay.app.build_app`` on a
loopback port with chosen limits. :class:`FakeAppServer` enrolls and opens
the app-server websocket itself, so a test sees exactly which envelopes the
relay sends and can answer, acknowledge or drop them as it likes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from kernel_remote_relay.app import RelayConfig, build_app
from kernel_remote_relay.hub import HubLimits
from kernel_remote_relay.store import RelayStore

from tests.support.remote_relay import CLIENT_SECRET, ENROLLMENT_SECRET

__all__ = ["FakeAppServer", "relay_app"]


@contextlib.asynccontextmanager
async def relay_app(
    state_dir: Path | None, token_ttl_seconds: float = 3600.0, **limits: Any
) -> AsyncIterator[str]:
    """Serve the relay in this loop; yields its base URL."""
    store = RelayStore(state_dir)
    store.load()
    config = RelayConfig(
        enrollment_secret=ENROLLMENT_SECRET.encode(),
        client_secret=CLIENT_SECRET.encode(),
        token_ttl_seconds=token_ttl_seconds,
        limits=HubLimits(**limits),
    )
    runner = web.AppRunner(build_app(config, store), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


class FakeAppServer:
    """An app-server played by the test: enrollment, then raw envelopes."""

    def __init__(
        self, base_url: str, installation_id: str = "11111111-1111-4111-8111-111111111111"
    ) -> None:
        self.base_url = base_url
        self.installation_id = installation_id
        self.http = aiohttp.ClientSession()
        self.ids: dict[str, Any] = {}
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        await self.http.close()

    async def enroll(self) -> dict[str, Any]:
        async with self.http.post(
            f"{self.base_url}/wham/remote/control/server/enroll",
            json={
                "name": "fake",
                "os": "linux",
                "arch": "x86_64",
                "installation_id": self.installation_id,
            },
            headers={"Authorization": f"Bearer {ENROLLMENT_SECRET}"},
        ) as answer:
            assert answer.status == 200, await answer.text()
            self.ids = await answer.json()
        return self.ids

    def headers(self, cursor: str | None = None, **overrides: str) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.ids['remote_control_token']}",
            "x-codex-protocol-version": "3",
            "x-codex-name": "ZmFrZQ==",
            "x-codex-server-id": self.ids["server_id"],
            "x-codex-installation-id": self.installation_id,
        }
        if cursor is not None:
            headers["x-codex-subscribe-cursor"] = cursor
        headers.update(overrides)
        return headers

    async def connect(self, cursor: str | None = None) -> aiohttp.ClientWebSocketResponse:
        self.ws = await self.http.ws_connect(
            f"{self.base_url.replace('http', 'ws', 1)}/wham/remote/control/server",
            headers=self.headers(cursor),
        )
        return self.ws

    async def recv(
        self, timeout: float = 10.0, skip: tuple[str, ...] = ("ping",)
    ) -> dict[str, Any]:
        """The next envelope from the relay, skipping the kinds in ``skip``."""
        assert self.ws is not None
        async with asyncio.timeout(timeout):
            while True:
                message = await self.ws.receive()
                if message.type is not aiohttp.WSMsgType.TEXT:
                    raise ConnectionError(f"relay websocket ended: {message.type}")
                envelope = orjson.loads(message.data)
                if envelope["type"] not in skip:
                    return envelope

    async def send(self, **envelope: Any) -> None:
        assert self.ws is not None
        await self.ws.send_str(orjson.dumps(envelope).decode())

    def client_url(self) -> str:
        base = self.base_url.replace("http", "ws", 1)
        return f"{base}/wham/remote/control/environments/{self.ids['environment_id']}/connect"
