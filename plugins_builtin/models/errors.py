"""Failures as stream events, with messages that say what happened and what to configure.

Every failure the plugin detects ends the stream with one
``{"type": "response.failed", "response": {"error": {"code", "message"}}}``
(plus ``status`` when an HTTP status is known), the shape the Responses API
itself uses. Messages name the provider, the HTTP status, the provider's own
error text when its body has one, and the config key to change. Secrets (the
API key, a configured bearer token) are removed from anything that came from
the network before it is put in a message or a log line.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

import orjson

__all__ = [
    "Redactor",
    "failed_event",
    "http_failure",
    "provider_detail",
    "retry_after_seconds",
    "retry_hint_seconds",
]

# The most of a provider's error body quoted in a message.
MAX_DETAIL_CHARS = 600


class Redactor:
    """Replaces known secrets in text with ``[redacted]``."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text


def failed_event(code: str, message: str, status: int | None = None) -> dict[str, Any]:
    """The ``response.failed`` event ending a stream the plugin could not complete."""
    error: dict[str, Any] = {"code": code, "message": message}
    if status is not None:
        error["status"] = status
    return {"type": "response.failed", "response": {"status": "failed", "error": error}}


def _status_text(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def provider_detail(body: bytes, redact: Redactor) -> tuple[str | None, str | None]:
    """``(code, message)`` from an error body: OpenAI's ``{"error": {...}}``,
    Ollama's ``{"error": "..."}``, FastAPI's ``{"detail": ...}``, or plain text."""
    text = body.decode("utf-8", errors="replace").strip()
    code: str | None = None
    message: str | None = None
    try:
        parsed = orjson.loads(body) if text else None
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, Mapping):
        error = parsed.get("error", parsed)
        if isinstance(error, Mapping):
            raw_code = error.get("code") or error.get("type")
            code = raw_code if isinstance(raw_code, str) and raw_code else None
            raw = error.get("message") or error.get("detail")
            message = raw if isinstance(raw, str) else (None if raw is None else str(raw))
        elif isinstance(error, str):
            message = error
    if message is None and text and parsed is None and not text.startswith("<"):
        message = text  # plain text; an HTML error page says nothing useful
    if message is not None:
        message = redact(" ".join(message.split()))
        if len(message) > MAX_DETAIL_CHARS:
            message = message[:MAX_DETAIL_CHARS] + "…"
    return code, message


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds from ``Retry-After`` (delta or HTTP date) or ``retry-after-ms``, if any."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("Retry-After")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


_TRY_AGAIN = re.compile(r"try again in\s*(\d+(?:\.\d+)?)\s*(s|ms|seconds?)\b", re.IGNORECASE)


def retry_hint_seconds(message: str | None) -> float | None:
    """The delay in a "Please try again in 1.5s" rate-limit message, if any."""
    match = _TRY_AGAIN.search(message or "")
    if match is None:
        return None
    value = float(match.group(1))
    return value / 1000 if match.group(2).lower() == "ms" else value


def http_failure(
    *,
    provider: str,
    status: int,
    body: bytes,
    url: str,
    key_hint: str | None,
    retries: int,
    redact: Redactor,
) -> dict[str, Any]:
    """The failure event for an HTTP error answer (after any retries)."""
    code, detail = provider_detail(body, redact)
    said = f"{_status_text(status)}: {detail}" if detail else _status_text(status)
    who = f"model provider {provider!r}"
    retried = (
        f"; gave up after {retries} "
        f"retr{'y' if retries == 1 else 'ies'} (model_providers.{provider}.request_max_retries)"
        if retries
        else ""
    )
    if status == 401:
        where = f"check {key_hint}" if key_hint else "configure an API key"
        message = f"{who} rejected the API key ({said}); {where}"
        code = code or "unauthorized"
    elif status == 403:
        message = (
            f"{who} refused the request ({said}); check that the API key may use this model "
            f"and model_providers.{provider}.http_headers"
        )
        code = code or "forbidden"
    elif status == 404:
        message = (
            f"{who} has no such endpoint or model ({said}); requests go to {url}: check "
            f"model_providers.{provider}.base_url and the model name"
        )
        code = code or "not_found"
    elif status == 429:
        message = f"{who} is rate limiting requests ({said}){retried}"
        code = code or "rate_limit_exceeded"
    elif status >= 500:
        message = f"{who} failed ({said}){retried}"
        code = code or "server_error"
    else:
        message = f"{who} rejected the request ({said})"
        code = code or ("invalid_request_error" if status == 400 else f"http_{status}")
    return failed_event(code, message, status)
