"""Opening the Realtime API: the websocket, the WebRTC call, and the outbound-request hook.

Every HTTP attempt (the websocket upgrade, the call's ``POST``, the call's
sideband websocket) first asks ``kernel_outbound_request_headers`` (purpose
``"realtime"``) for the headers plugins add, so ``attestation`` can vouch
for the client; a plugin's refusal stops the attempt. Failures become
:class:`BackendFailure`, whose message is what the client is told: status,
reason and URL, never a header value (the URLs carry no credential: the key
travels in ``Authorization``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import attrs
import orjson

from kernel.outbound import PURPOSE_REALTIME, OutboundRefused, OutboundRequest, outbound_headers

if TYPE_CHECKING:
    from kernel import Connection, Kernel

    from .config import Endpoints

__all__ = ["Backend", "BackendFailure", "BackendTarget"]

log = logging.getLogger("plugins.realtime")

# Output audio deltas are large; the Realtime API's events stay well below this.
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
_BODY_SHOWN = 2000
# A backend that stops answering pings for this long is taken as gone.
HEARTBEAT = 30.0


class BackendFailure(Exception):
    """The backend could not be reached or refused; ``message`` is safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@attrs.frozen(repr=False)
class BackendTarget:
    """Where one session connects and with which headers (their values are never logged)."""

    endpoints: Endpoints
    provider_id: str
    requires_openai_auth: bool
    headers: Mapping[str, str]
    timeout: float
    connection: Connection | None
    thread_id: str

    def __repr__(self) -> str:
        return f"<BackendTarget {self.endpoints.websocket} provider={self.provider_id}>"


def _status_text(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


class Backend:
    """One aiohttp client session for every realtime session of the kernel."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self._http: aiohttp.ClientSession | None = None

    def http(self) -> aiohttp.ClientSession:
        """The shared client session (opened on first use)."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(trust_env=True)
        return self._http

    async def close(self) -> None:
        """Close the client session (at shutdown, after every realtime session ended)."""
        http, self._http = self._http, None
        if http is not None:
            await http.close()

    async def _headers(self, target: BackendTarget, url: str, method: str) -> dict[str, str]:
        """The session's headers plus what ``kernel_outbound_request_headers`` adds."""
        headers = dict(target.headers)
        request = OutboundRequest(
            purpose=PURPOSE_REALTIME,
            url=url,
            method=method,
            provider_id=target.provider_id,
            requires_openai_auth=target.requires_openai_auth,
            connection=target.connection,
            thread_id=target.thread_id,
        )
        try:
            headers.update(await outbound_headers(self.kernel.plugins, request, headers.keys()))
        except OutboundRefused as exc:
            raise BackendFailure(exc.reason) from None
        return headers

    async def open_websocket(
        self, target: BackendTarget, url: str
    ) -> aiohttp.ClientWebSocketResponse:
        """Upgrade to the backend's websocket at ``url`` (within the connect timeout)."""
        headers = await self._headers(target, url, "GET")
        try:
            async with asyncio.timeout(target.timeout):
                return await self.http().ws_connect(
                    url, headers=headers, max_msg_size=MAX_MESSAGE_BYTES, heartbeat=HEARTBEAT
                )
        except aiohttp.WSServerHandshakeError as exc:
            raise BackendFailure(
                f"unexpected status {_status_text(exc.status)}, url: {url}"
            ) from None
        except TimeoutError:
            raise BackendFailure(
                f"the realtime backend did not answer within {target.timeout:g} s, url: {url}"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise BackendFailure(
                f"the realtime backend is unreachable ({exc}), url: {url}"
            ) from None

    async def create_call(
        self, target: BackendTarget, sdp: str, session: Mapping[str, Any]
    ) -> tuple[str, str]:
        """``POST`` the browser's SDP offer and the session; ``(answer SDP, call id)``."""
        url = target.endpoints.calls
        form = aiohttp.FormData()
        form.add_field("sdp", sdp, content_type="application/sdp")
        form.add_field("session", orjson.dumps(session).decode(), content_type="application/json")
        headers = await self._headers(target, url, "POST")
        try:
            async with (
                asyncio.timeout(target.timeout),
                self.http().post(url, data=form, headers=headers) as response,
            ):
                body = await response.text(errors="replace")
                location = response.headers.get("Location", "")
                status = response.status
        except TimeoutError:
            raise BackendFailure(
                f"the realtime backend did not answer within {target.timeout:g} s, url: {url}"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise BackendFailure(
                f"the realtime backend is unreachable ({exc}), url: {url}"
            ) from None
        if not 200 <= status < 300:
            shown = body if len(body) <= _BODY_SHOWN else body[:_BODY_SHOWN] + "…"
            raise BackendFailure(f"unexpected status {_status_text(status)}: {shown}, url: {url}")
        segments = [s for s in urlsplit(location).path.split("/") if s]
        if not segments:
            raise BackendFailure(f"the realtime call answer has no Location, url: {url}")
        if not body.strip():
            raise BackendFailure(f"the realtime call answer has no SDP, url: {url}")
        return body, segments[-1]
