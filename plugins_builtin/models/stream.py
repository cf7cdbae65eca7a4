"""One model request over HTTP: connect, retry, read server-sent events, translate.

Retry rules (the reference's, with 429 added; docs/models.md has the table):

* **Before a response arrives** (connection refused or reset, no answer
  within the idle timeout, HTTP 429 or 5xx): up to ``request_max_retries``
  more attempts, waiting ``base * 2**(n-1)`` (±10% jitter, capped) or what
  ``Retry-After``/``retry-after-ms`` asks (capped at ``max_retry_after``).
  A 401 from a provider whose token comes from an ``auth`` command reruns
  the command once. Other statuses fail at once.
* **While streaming**: a body that breaks, ends early or sends nothing for
  ``stream_idle_timeout_ms`` before any output event was yielded, or a
  ``response.failed`` of a transient kind (``server_error``,
  ``rate_limit_exceeded``...) at that point, is retried from the start up to
  ``stream_max_retries`` times; events of the broken attempt that carried
  no output (``response.created``) are dropped, so the consumer sees one
  attempt. Once output was yielded a retry would repeat it: the stream ends
  with ``response.failed`` saying it disconnected.

Every failure ends the iterator with one ``response.failed`` (see
:mod:`.errors`); closing the iterator (``aclose()``, or cancelling the task
iterating it) closes the HTTP connection at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import aiohttp
import attrs
import orjson
from multidict import CIMultiDict

from kernel.outbound import OutboundRefused

from .auth import CredentialError, TokenSource
from .config import ModelProviderConfig
from .errors import (
    Redactor,
    failed_event,
    http_failure,
    retry_after_seconds,
    retry_hint_seconds,
)
from .responses import TERMINAL_TYPES, Translator, is_output
from .sse import SseDecoder, SseEvent, SseLineTooLong

__all__ = ["Decorator", "ModelRequest", "RetryPolicy", "model_stream"]

log = logging.getLogger("plugins.models")

# An error body is read up to this size (enough for any provider's message).
MAX_ERROR_BODY = 64 * 1024
# A whole JSON answer (a server ignoring ``stream: true``) up to this size.
MAX_JSON_BODY = 32 * 1024 * 1024
# Codes of a ``response.failed`` worth another attempt while nothing was output.
TRANSIENT_FAILURES = frozenset(
    {"server_error", "rate_limit_exceeded", "server_is_overloaded", "slow_down"}
)


@attrs.frozen
class RetryPolicy:
    """Delays and the connect timeout; defaults are the reference's (200 ms base)."""

    base_delay: float = 0.2
    max_delay: float = 30.0
    max_retry_after: float = 60.0
    connect_timeout: float = 30.0

    def backoff(self, attempt: int) -> float:
        """The wait before retry number ``attempt`` (1-based)."""
        raw = self.base_delay * 2 ** max(0, attempt - 1)
        return min(self.max_delay, raw * random.uniform(0.9, 1.1))


Decorator = Callable[[str, CIMultiDict[str]], Awaitable[None]]
"""Adds plugins' headers to one attempt (``kernel_outbound_request_headers``);
raises :class:`kernel.outbound.OutboundRefused` when the attempt must not be sent."""


@attrs.frozen
class ModelRequest:
    """Everything about one model request except its credentials."""

    provider_id: str
    config: ModelProviderConfig
    url: str
    body: bytes
    headers: CIMultiDict[str]
    make_translator: Callable[[], Translator]
    json_answer: Callable[[Translator, Any], list[dict[str, Any]]]
    decorate: Decorator | None = None


@attrs.define
class _Outcome:
    """How one attempt ended when it did not end with a terminal event."""

    output: bool = False
    retry: bool = False
    event: dict[str, Any] | None = None  # the failure to report if not retried
    reason: str = ""  # for stream failures: what went wrong
    code: str = "stream_disconnected"
    delay: float | None = None


def _retries(n: int) -> str:
    return f"{n} retr{'y' if n == 1 else 'ies'}"


async def model_stream(
    session: aiohttp.ClientSession,
    tokens: TokenSource,
    request: ModelRequest,
    policy: RetryPolicy,
) -> AsyncGenerator[dict[str, Any], None]:
    """Stream ``request``'s events, retrying as the module docstring says."""
    limit = request.config.stream_retries()
    pid = request.provider_id
    failures = 0
    while True:
        outcome = _Outcome()
        attempt = _attempt(session, tokens, request, policy, outcome)
        async with contextlib.aclosing(attempt) as events:
            async for event in events:
                yield event
        if not outcome.retry and outcome.event is None:
            return  # ended with a terminal event
        if outcome.retry and not outcome.output and failures < limit:
            failures += 1
            delay = outcome.delay if outcome.delay is not None else policy.backoff(failures)
            delay = min(delay, policy.max_retry_after)
            log.info(
                "model provider %s: the stream %s; retrying in %.2f s (stream retry %d of %d)",
                pid, outcome.reason, delay, failures, limit,
            )  # fmt: skip
            await asyncio.sleep(delay)
            continue
        if outcome.event is not None:
            final = outcome.event
        elif outcome.output:
            final = failed_event(
                outcome.code,
                f"the stream from model provider {pid!r} {outcome.reason} before the response "
                "completed; output had already been delivered, so it was not retried",
            )
        else:
            gave_up = (
                f"gave up after {_retries(failures)}" if failures else "stream retries are off"
            )
            final = failed_event(
                outcome.code,
                f"the stream from model provider {pid!r} {outcome.reason} before the response "
                f"completed; {gave_up} (model_providers.{pid}.stream_max_retries)",
            )
        log.warning("model provider %s: %s", pid, final["response"]["error"].get("message"))
        yield final
        return


async def _attempt(
    session: aiohttp.ClientSession,
    tokens: TokenSource,
    request: ModelRequest,
    policy: RetryPolicy,
    outcome: _Outcome,
) -> AsyncGenerator[dict[str, Any], None]:
    """One request and its stream; records how it ended in ``outcome``."""
    response, failure = await _connect(session, tokens, request, policy)
    if response is None:
        outcome.event = failure
        return
    idle = request.config.idle_timeout_seconds()
    pid = request.provider_id
    translator = request.make_translator()
    held: list[dict[str, Any]] = []  # prelude events, released with the first output
    ended = False  # a terminal event was yielded
    try:
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type == "application/json":
            events = await _json_events(response, request, translator, idle)
            if not any(e.get("type") in TERMINAL_TYPES for e in events):
                outcome.event = failed_event(
                    "invalid_response",
                    f"model provider {pid!r} answered with JSON that is not a complete "
                    "response instead of an event stream",
                )
                return
            for event in events:
                yield event
            ended = True
            return
        if content_type == "text/html":  # a web page: the base URL points elsewhere
            outcome.event = failed_event(
                "invalid_response",
                f"model provider {pid!r} answered with a web page instead of an event stream; "
                f"check model_providers.{pid}.base_url (requests go to {request.url})",
            )
            return
        decoder = SseDecoder()
        eof = False
        while not (translator.done or eof):
            try:
                async with asyncio.timeout(idle):
                    chunk = await response.content.readany()
            except TimeoutError:
                outcome.retry, outcome.code = True, "stream_idle_timeout"
                outcome.reason = (
                    f"sent nothing for {idle:g} s (model_providers.{pid}.stream_idle_timeout_ms)"
                )
                return
            except (aiohttp.ClientError, OSError) as exc:
                outcome.retry = True
                outcome.reason = f"disconnected ({type(exc).__name__}: {exc})"
                return
            eof = not chunk
            try:
                sses = decoder.close() if eof else decoder.feed(chunk)
            except SseLineTooLong as exc:
                outcome.event = failed_event("invalid_response", f"model provider {pid!r}: {exc}")
                return
            batch = [e for sse in sses for e in _translate(translator, sse)]
            if eof:
                batch += translator.at_eof() or []
            for event in batch:
                if event.get("type") == "response.failed" and not outcome.output:
                    error = event["response"]["error"]
                    if error.get("code") in TRANSIENT_FAILURES:
                        outcome.retry, outcome.event = True, event
                        outcome.reason = f"failed ({error.get('code')}: {error.get('message')})"
                        outcome.delay = retry_hint_seconds(error.get("message"))
                        return
                ended = ended or event.get("type") in TERMINAL_TYPES
                for released in _release(held, [event], outcome):
                    yield released
        if not ended:
            outcome.retry = True
            outcome.reason = (
                "was closed by the server" if eof else "ended without response.completed"
            )
    finally:
        if ended and translator.done:
            response.release()
        else:
            response.close()


def _translate(translator: Translator, sse: SseEvent) -> list[dict[str, Any]]:
    return [] if translator.done else translator.feed(sse)


def _release(
    held: list[dict[str, Any]], batch: list[dict[str, Any]], outcome: _Outcome
) -> list[dict[str, Any]]:
    """What to yield of ``batch`` now: prelude events wait for the first output event."""
    out: list[dict[str, Any]] = []
    for event in batch:
        if outcome.output or is_output(event) or event.get("type") in TERMINAL_TYPES:
            outcome.output = outcome.output or is_output(event)
            out.extend(held)
            held.clear()
            out.append(event)
        else:
            held.append(event)
    return out


async def _json_events(
    response: aiohttp.ClientResponse, request: ModelRequest, translator: Translator, idle: float
) -> list[dict[str, Any]]:
    """Events for a whole JSON answer (a server that ignored ``stream: true``)."""
    async with asyncio.timeout(idle):
        raw = await response.content.read(MAX_JSON_BODY)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return [
            failed_event(
                "invalid_response",
                f"model provider {request.provider_id!r} answered with JSON that does not "
                "parse instead of an event stream",
            )
        ]
    return request.json_answer(translator, value)


async def _connect(
    session: aiohttp.ClientSession,
    tokens: TokenSource,
    request: ModelRequest,
    policy: RetryPolicy,
) -> tuple[aiohttp.ClientResponse | None, dict[str, Any] | None]:
    """A streaming response, or the failure event after the request retries."""
    config = request.config
    pid = request.provider_id
    retries = config.request_retries()
    idle = config.idle_timeout_seconds()
    attempt = 0
    refresh = False
    refreshed = False
    while True:
        try:
            credentials = await tokens.credentials(pid, config, refresh=refresh)
        except CredentialError as exc:
            return None, failed_event(exc.code, exc.message)
        refresh = False
        redact = Redactor([credentials.token, config.experimental_bearer_token])
        headers = request.headers.copy()
        if credentials.token is not None:
            headers["Authorization"] = f"Bearer {credentials.token}"
        if request.decorate is not None:
            try:
                await request.decorate(request.url, headers)
            except OutboundRefused as exc:
                return None, failed_event(exc.code, exc.reason)
        log.debug("model provider %s: POST %s (attempt %d)", pid, request.url, attempt + 1)
        try:
            async with asyncio.timeout(idle):
                response = await session.post(
                    request.url,
                    params=config.query_params or None,
                    data=request.body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=policy.connect_timeout),
                )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            what = (
                f"no answer within {idle:g} s" if isinstance(exc, TimeoutError) and not str(exc)
                else redact(f"{type(exc).__name__}: {exc}")
            )  # fmt: skip
            if attempt < retries:
                attempt += 1
                delay = policy.backoff(attempt)
                log.info(
                    "model provider %s: %s; retrying in %.2f s (retry %d of %d)",
                    pid, what, delay, attempt, retries,
                )  # fmt: skip
                await asyncio.sleep(delay)
                continue
            tail = f" (after {_retries(retries)})" if retries else ""
            return None, failed_event(
                "connection_failed",
                f"could not reach model provider {pid!r} at {config.effective_base_url()}: "
                f"{what}{tail}; check model_providers.{pid}.base_url and that the server is "
                "running",
            )
        status = response.status
        if 200 <= status < 300:
            return response, None
        try:
            async with asyncio.timeout(min(idle, 30.0)):
                body = await response.content.read(MAX_ERROR_BODY)
        except (aiohttp.ClientError, OSError, TimeoutError):
            body = b""
        finally:
            response.close()
        if status == 401 and credentials.from_command and not refreshed:
            refresh = refreshed = True
            continue
        if (status == 429 or status >= 500) and attempt < retries:
            attempt += 1
            asked = retry_after_seconds(response.headers)
            if asked is None:
                delay = policy.backoff(attempt)
            else:
                delay = min(asked, policy.max_retry_after)
            log.info(
                "model provider %s: HTTP %d; retrying in %.2f s (retry %d of %d)",
                pid, status, delay, attempt, retries,
            )  # fmt: skip
            await asyncio.sleep(delay)
            continue
        return None, http_failure(
            provider=pid,
            status=status,
            body=body,
            url=request.url,
            key_hint=credentials.hint,
            retries=attempt,
            redact=redact,
        )
