"""Decoding and encoding of JSON-RPC messages (orjson).

The wire leaves out ``"jsonrpc": "2.0"``; it is accepted on input and never
emitted. Every frame decodes to exactly one of :class:`Request`,
:class:`Notification`, :class:`Response` or :class:`Invalid`, so a caller can
answer every malformed frame instead of dropping it.
"""

from __future__ import annotations

from typing import Any

import orjson

from .errors import INVALID_REQUEST, PARSE_ERROR, RpcError

__all__ = [
    "Invalid",
    "Notification",
    "Request",
    "RequestId",
    "Response",
    "classify",
    "decode",
    "encode",
    "encode_error",
    "encode_notification",
    "encode_request",
    "encode_result",
    "json_type_name",
]

RequestId = str | int


class Request:
    """A call the sender expects exactly one answer to."""

    __slots__ = ("id", "method", "params")

    def __init__(self, id: RequestId, method: str, params: Any) -> None:
        self.id = id
        self.method = method
        self.params = params


class Notification:
    """A one-way message; nothing is sent back."""

    __slots__ = ("method", "params")

    def __init__(self, method: str, params: Any) -> None:
        self.method = method
        self.params = params


class Response:
    """An answer to a request this side sent: ``error`` is None on success."""

    __slots__ = ("error", "id", "result")

    def __init__(self, id: RequestId, result: Any, error: dict[str, Any] | None) -> None:
        self.id = id
        self.result = result
        self.error = error


class Invalid:
    """A frame that cannot be processed; answer ``error`` to ``id`` (may be None)."""

    __slots__ = ("error", "id")

    def __init__(self, id: RequestId | None, error: RpcError) -> None:
        self.id = id
        self.error = error


Message = Request | Notification | Response | Invalid

_JSON_TYPE_NAMES = {
    dict: "object",
    list: "array",
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def json_type_name(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _valid_id(value: Any) -> bool:
    # bool is an int subclass; JSON true/false is not a valid id.
    return type(value) is str or type(value) is int


def decode(frame: bytes | str) -> Message:
    """Decode one frame into a message, never raising."""
    try:
        obj = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        return Invalid(None, RpcError(PARSE_ERROR, f"Parse error: {exc}"))
    return classify(obj)


def classify(obj: Any) -> Message:
    """Classify an already-decoded JSON value as a message, never raising."""
    if type(obj) is not dict:
        if type(obj) is list:
            reason = "Invalid request: batch (JSON array) messages are not supported"
        else:
            reason = f"Invalid request: expected a JSON object, got {json_type_name(obj)}"
        return Invalid(None, RpcError(INVALID_REQUEST, reason))

    method = obj.get("method")
    has_id = "id" in obj
    msg_id = obj.get("id")
    id_ok = _valid_id(msg_id)
    if method is not None:
        if type(method) is not str:
            return Invalid(
                msg_id if id_ok else None,
                RpcError(
                    INVALID_REQUEST,
                    f"Invalid request: method: expected a string, got {json_type_name(method)}",
                ),
            )
        if not has_id:
            return Notification(method, obj.get("params"))
        if not id_ok:
            return Invalid(
                None,
                RpcError(
                    INVALID_REQUEST,
                    f"Invalid request: id: expected a string or an integer, "
                    f"got {json_type_name(msg_id)}",
                ),
            )
        return Request(msg_id, method, obj.get("params"))  # type: ignore[arg-type]

    if "result" in obj or "error" in obj:
        if not id_ok:
            return Invalid(
                None,
                RpcError(
                    INVALID_REQUEST,
                    "Invalid request: response id: expected a string or an integer, "
                    f"got {json_type_name(msg_id)}",
                ),
            )
        error = obj.get("error")
        if "error" in obj and type(error) is not dict:
            return Invalid(
                None,
                RpcError(INVALID_REQUEST, "Invalid request: response error: expected an object"),
            )
        return Response(msg_id, obj.get("result"), error)  # type: ignore[arg-type]

    return Invalid(
        msg_id if id_ok else None,
        RpcError(
            INVALID_REQUEST,
            "Invalid request: a message needs 'method' (request or notification) "
            "or 'result'/'error' (response)",
        ),
    )


encode = orjson.dumps


def encode_result(msg_id: RequestId, result: Any) -> bytes:
    """Encode a success response."""
    return orjson.dumps({"id": msg_id, "result": result})


def encode_error(msg_id: RequestId | None, error: RpcError) -> bytes:
    """Encode an error response; ``msg_id`` None means the id was unreadable."""
    return orjson.dumps({"id": msg_id, "error": error.to_wire()})


def encode_notification(method: str, params: Any) -> bytes:
    """Encode a notification; ``params`` None leaves the member out."""
    if params is None:
        return orjson.dumps({"method": method})
    return orjson.dumps({"method": method, "params": params})


def encode_request(msg_id: RequestId, method: str, params: Any) -> bytes:
    """Encode a request (server→client or client→server)."""
    if params is None:
        return orjson.dumps({"id": msg_id, "method": method})
    return orjson.dumps({"id": msg_id, "method": method, "params": params})
