"""Enrollment with a relay: ``POST .../server/enroll`` and ``.../server/refresh``.

``enroll`` creates this server's identity on the relay (``server_id``,
``environment_id``) and returns a short-lived server token for the
websocket; ``refresh`` returns a fresh token for an existing ``server_id``
(a restarted server, an expired token). Both present the enrollment secret
as ``Authorization: Bearer`` and ``x-codex-installation-id``, plus whatever
``kernel_outbound_request_headers`` implementations add (purpose
``relay_enrollment``); a plugin's refusal stops the request.

Errors keep the reference's texts (``remote control server enrollment
failed at `<url>`: HTTP 404 Not Found, request-id: <none>, cf-ray: <none>,
body: ...``). Tokens in a response body are redacted before the body is
quoted in an error or the log.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
import attrs
import orjson

from kernel.outbound import (
    PURPOSE_RELAY_ENROLLMENT,
    OutboundRefused,
    OutboundRequest,
    outbound_headers,
)
from kernel.rpc.errors import INTERNAL_ERROR, INVALID_REQUEST

from .identity import Identity

if TYPE_CHECKING:
    from kernel import Connection
    from kernel.plugins import PluginHost

__all__ = ["EnrollmentError", "ServerToken", "describe_headers", "preview_body", "request_token"]

log = logging.getLogger("plugins.remote_control.enroll")

SERVER_SCOPE = "remote_control_server_websocket"
_BODY_PREVIEW_CHARS = 4096
_REDACTED = "<redacted>"


@attrs.frozen
class ServerToken:
    """What the relay answered: this server's ids and a token for the websocket."""

    server_id: str
    environment_id: str
    token: str = attrs.field(repr=False)
    expires_at: float  # seconds since the epoch

    def expires_within(self, seconds: float, now: float) -> bool:
        """Whether the token is expired, or will be ``seconds`` from ``now``."""
        return self.expires_at <= now + seconds


class EnrollmentError(Exception):
    """Enrolling or refreshing failed; ``code`` is the JSON-RPC code for the client.

    ``status`` is the relay's HTTP status when it answered one (401/403:
    the secret was refused; 404: it does not know this server).
    """

    def __init__(self, message: str, code: int, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


def describe_headers(headers: Mapping[str, str]) -> str:
    """``request-id: <id>, cf-ray: <ray>`` as the reference quotes a response."""
    request_id = headers.get("x-request-id") or headers.get("x-oai-request-id") or "<none>"
    return f"request-id: {request_id}, cf-ray: {headers.get('cf-ray') or '<none>'}"


def preview_body(body: bytes) -> str:
    """The body as quoted in errors: trimmed, at most 4096 characters, tokens redacted."""
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        decoded = None
    if isinstance(decoded, dict) and "remote_control_token" in decoded:
        decoded["remote_control_token"] = _REDACTED
        body = orjson.dumps(decoded)
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return "<empty>"
    if len(text) > _BODY_PREVIEW_CHARS:
        return text[:_BODY_PREVIEW_CHARS] + "..."
    return text


def _parse(body: bytes) -> ServerToken:
    """The token answer; ValueError with a decode-error text when it is not one."""
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"expected a JSON object: {exc}") from None
    if not isinstance(decoded, dict):
        raise ValueError("expected a JSON object")
    values: dict[str, str] = {}
    for name in ("server_id", "environment_id", "remote_control_token", "expires_at"):
        value = decoded.get(name)
        if value is None:
            raise ValueError(f"missing field `{name}`")
        if not isinstance(value, str) or not value:
            raise ValueError(f"invalid type for `{name}`: expected a non-empty string")
        values[name] = value
    try:
        expires = datetime.datetime.fromisoformat(values["expires_at"])
    except ValueError as exc:
        raise ValueError(f"invalid remote control token expires_at: {exc}") from None
    if expires.tzinfo is None:
        raise ValueError("invalid remote control token expires_at: no time zone")
    scopes = decoded.get("scopes")
    if scopes is not None and (not isinstance(scopes, list) or SERVER_SCOPE not in scopes):
        raise ValueError("the token is missing the server websocket scope")
    return ServerToken(
        values["server_id"],
        values["environment_id"],
        values["remote_control_token"],
        expires.timestamp(),
    )


async def request_token(
    session: aiohttp.ClientSession,
    plugins: PluginHost,
    *,
    url: str,
    refresh: bool,
    secret: str,
    identity: Identity,
    server_id: str | None,
    connection: Connection | None,
    timeout: float,
) -> ServerToken:
    """Enroll (``refresh=False``) or refresh ``server_id``; raises :class:`EnrollmentError`."""
    what = "refresh" if refresh else "enrollment"
    body: dict[str, Any]
    if refresh:
        body = {"server_id": server_id, "installation_id": identity.installation_id}
    else:
        body = {
            "name": identity.server_name,
            "os": identity.os,
            "arch": identity.arch,
            "app_server_version": identity.version,
            "installation_id": identity.installation_id,
        }
    headers = {
        "Authorization": f"Bearer {secret}",
        "x-codex-installation-id": identity.installation_id,
        "Content-Type": "application/json",
    }
    request = OutboundRequest(
        purpose=PURPOSE_RELAY_ENROLLMENT, url=url, method="POST", connection=connection
    )
    try:
        headers.update(await outbound_headers(plugins, request, present=headers.keys()))
    except OutboundRefused as refused:
        raise EnrollmentError(refused.reason, INVALID_REQUEST) from None
    try:
        async with session.post(
            url,
            data=orjson.dumps(body),
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,
        ) as response:
            status, reason = response.status, response.reason or ""
            answer_headers = response.headers.copy()
            payload = await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        verb = "refresh" if refresh else "enroll"
        detail = str(exc) or type(exc).__name__
        raise EnrollmentError(
            f"failed to {verb} remote control server at `{url}`: {detail}", INTERNAL_ERROR
        ) from None
    described = f"HTTP {status} {reason}".rstrip() + f", {describe_headers(answer_headers)}"
    if not 200 <= status < 300:
        raise EnrollmentError(
            f"remote control server {what} failed at `{url}`: {described}, "
            f"body: {preview_body(payload)}",
            INVALID_REQUEST,
            status,
        )
    try:
        return _parse(payload)
    except ValueError as exc:
        raise EnrollmentError(
            f"failed to parse remote control server {what} response from `{url}`: {described}, "
            f"body: {preview_body(payload)}, decode error: {exc}",
            INTERNAL_ERROR,
            status,
        ) from None
