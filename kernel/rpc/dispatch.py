"""Routing of inbound frames to handlers, and of outcomes back to answers.

The order of checks for a request follows the reference server: handshake
state, then the method, then the experimental gate on the method, then the
params (types first, experimental fields second). Where the reference answers
``-32600`` for an unknown method or bad params, we answer ``-32601`` and
``-32602`` with the field path; see docs/protocol.md.

Speed: :meth:`Dispatcher.dispatch` is synchronous for the common case and
returns an awaitable only when there is something to wait for: room in a full
outbox, or an async handler, which the worker holding the reader role runs at
once (see :mod:`kernel.workers`; no task per request).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import attrs
import orjson

from ..context import RequestContext
from ..workers import Drive
from .codec import (
    Invalid,
    Notification,
    RequestId,
    Response,
    classify,
    encode_error,
    encode_result,
    json_type_name,
)
from .converter import Problem
from .errors import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    RpcError,
    internal_error,
    overloaded,
)
from .registry import Entry, Registry

if TYPE_CHECKING:
    from ..connection import Connection
    from ..runtime import KernelStats

__all__ = ["REQUEST_CANCELLED", "Dispatcher", "params_error"]

log = logging.getLogger("kernel.dispatch")

REQUEST_CANCELLED = -32002
_NOT_INITIALIZED = RpcError(INVALID_REQUEST, "Not initialized")
_ALREADY_INITIALIZED = RpcError(INVALID_REQUEST, "Already initialized")
_CANCELLED = RpcError(REQUEST_CANCELLED, "Request cancelled: the connection is closing")
_EMPTY: dict[str, Any] = {}
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


def params_error(method: str, problems: list[Problem]) -> RpcError:
    """The answer for params that failed to structure.

    Type problems win over experimental-field problems (the reference checks
    types first); experimental fields are ``-32600`` like the reference.
    """
    typed = [p for p in problems if not p.experimental]
    if typed:
        text = "; ".join(p.describe() for p in typed)
        data = {"problems": [{"path": p.path, "message": p.message} for p in typed]}
        return RpcError(INVALID_PARAMS, f"Invalid params: {text}", data)
    first = problems[0]
    return RpcError(INVALID_REQUEST, f"{method}.{first.path} requires experimentalApi capability")


class Dispatcher:
    """Decodes frames and runs the matching handler for one kernel."""

    def __init__(self, registry: Registry, stats: KernelStats) -> None:
        self._registry = registry
        self._methods = registry.methods()
        self._stats = stats

    def dispatch(self, conn: Connection, frame: bytes) -> Awaitable[None] | None:
        """Handle one frame; await the result when it is not None."""
        try:
            obj = _loads(frame)
        except _JSONDecodeError as exc:
            return self._reject(conn, Invalid(None, RpcError(PARSE_ERROR, f"Parse error: {exc}")))
        if type(obj) is dict:
            method = obj.get("method")
            request_id = obj.get("id")
            if type(method) is str and (type(request_id) is int or type(request_id) is str):
                return self._request(conn, request_id, method, obj.get("params"))
        msg = classify(obj)
        kind = type(msg)
        if kind is Notification:
            return self._notification(conn, msg)  # type: ignore[arg-type]
        if kind is Response:
            conn.resolve(msg)  # type: ignore[arg-type]
            return None
        return self._reject(conn, msg)  # type: ignore[arg-type]

    def _reject(self, conn: Connection, msg: Invalid) -> Awaitable[None] | None:
        self._stats.invalid_frames += 1
        log.info("connection %s: rejected frame: %s", conn.id, msg.error.message)
        return conn.send(encode_error(msg.id, msg.error))

    def _request(
        self, conn: Connection, request_id: RequestId, method: str, raw: Any
    ) -> Awaitable[None] | None:
        self._stats.requests += 1
        if not conn.initialized:
            if method != "initialize":
                return conn.send(encode_error(request_id, _NOT_INITIALIZED))
        elif method == "initialize":
            return conn.send(encode_error(request_id, _ALREADY_INITIALIZED))
        entry = self._methods.get(method)
        if entry is None:
            error = RpcError(METHOD_NOT_FOUND, f"Method not found: {method}")
            return conn.send(encode_error(request_id, error))
        if entry.experimental and not conn.experimental:
            error = RpcError(INVALID_REQUEST, f"{method} requires experimentalApi capability")
            return conn.send(encode_error(request_id, error))
        try:
            params = self._structure(conn, entry, raw)
        except RpcError as error:
            return conn.send(encode_error(request_id, error))
        if not entry.is_async:
            return conn.send(self._call_sync(conn, entry, request_id, params))
        if conn.rejecting:
            self._stats.overloaded += 1
            return conn.send(encode_error(request_id, overloaded()))
        return self._run_async(conn, entry, request_id, params)

    def _structure(self, conn: Connection, entry: Entry, raw: Any) -> Any:
        if entry.params is None:
            return None
        if raw is None:
            raw = _EMPTY
        elif type(raw) is not dict:
            raise RpcError(
                INVALID_PARAMS,
                f"Invalid params: params: expected an object, got {json_type_name(raw)}",
            )
        hook = entry.structure_full if conn.experimental else entry.structure_stable
        try:
            return hook(raw)
        except Exception as exc:
            problems = self._registry.converter.problems(exc)
            raise params_error(entry.name, problems) from None

    def _encode(self, conn: Connection, entry: Entry, request_id: RequestId, value: Any) -> bytes:
        try:
            if value is None:
                return encode_result(request_id, _EMPTY)
            if type(value) is not dict:  # a dict is already wire-shaped
                if entry.result is not None:
                    value = (entry.result_full if conn.experimental else entry.result_stable)(value)
                elif attrs.has(type(value)):
                    value = self._registry.converter.unstructure(
                        value, experimental=conn.experimental
                    )
            return encode_result(request_id, value)
        except Exception:
            return self._internal(conn, entry, request_id)

    def _call_sync(
        self, conn: Connection, entry: Entry, request_id: RequestId, params: Any
    ) -> bytes:
        try:
            value = entry.handler(params, RequestContext(conn, request_id, entry.name))  # type: ignore[misc]
        except RpcError as error:
            return encode_error(request_id, error)
        except Exception:
            return self._internal(conn, entry, request_id)
        return self._encode(conn, entry, request_id, value)

    async def _run_async(
        self, conn: Connection, entry: Entry, request_id: RequestId, params: Any
    ) -> None:
        try:
            work = entry.handler(params, RequestContext(conn, request_id, entry.name))  # type: ignore[misc]
            value = await Drive(work, contextvars.copy_context(), conn.on_handler_wait)
            frame = self._encode(conn, entry, request_id, value)
        except RpcError as error:
            frame = encode_error(request_id, error)
        except asyncio.CancelledError:
            conn.answer_now(encode_error(request_id, _CANCELLED))
            raise
        except Exception:
            frame = self._internal(conn, entry, request_id)
        pending = conn.send(frame)
        if pending is not None:
            await pending

    def _internal(self, conn: Connection, entry: Entry, request_id: RequestId) -> bytes:
        self._stats.handler_errors += 1
        log.exception(
            "handler for %s (plugin %s) failed on connection %s, request %r",
            entry.name,
            entry.owner,
            conn.id,
            request_id,
        )
        return encode_error(request_id, internal_error())

    def _notification(self, conn: Connection, msg: Notification) -> Awaitable[None] | None:
        entry = self._registry.get("client_notification", msg.method)
        if entry is None:
            log.debug("connection %s: ignoring unknown notification %s", conn.id, msg.method)
            return None
        if not conn.initialized or (entry.experimental and not conn.experimental):
            log.info(
                "connection %s: notification %s ignored before initialize or without "
                "experimentalApi",
                conn.id,
                msg.method,
            )
            return None
        try:
            params = self._structure(conn, entry, msg.params)
        except RpcError as error:
            log.warning(
                "connection %s: notification %s ignored: %s", conn.id, msg.method, error.message
            )
            return None
        ctx = RequestContext(conn, None, entry.name)
        if entry.is_async:
            return self._run_notification(conn, entry, params, ctx)
        try:
            entry.handler(params, ctx)  # type: ignore[misc]
        except Exception:
            log.exception("notification handler for %s (plugin %s) failed", entry.name, entry.owner)
        return None

    @staticmethod
    async def _run_notification(
        conn: Connection, entry: Entry, params: Any, ctx: RequestContext
    ) -> None:
        try:
            work = entry.handler(params, ctx)  # type: ignore[misc]
            await Drive(work, contextvars.copy_context(), conn.on_handler_wait)
        except Exception:
            log.exception("notification handler for %s (plugin %s) failed", entry.name, entry.owner)
