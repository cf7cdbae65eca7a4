"""JSON-RPC error codes and the exception handlers raise to answer with one.

A handler that raises :class:`RpcError` gets exactly that code, message and
data on the wire. Anything else a handler raises becomes ``-32603`` with a
generic message; the traceback goes to the log, never to the client.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "SERVER_OVERLOADED",
    "RpcError",
    "internal_error",
    "invalid_field",
    "overloaded",
]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_OVERLOADED = -32001

OVERLOADED_MESSAGE = "Server overloaded; retry later."
INTERNAL_MESSAGE = "Internal error; the server log has the details."


class RpcError(Exception):
    """An error answer: ``{"code": code, "message": message, "data": data}``.

    ``data`` is omitted from the wire when it is ``None``.
    """

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_wire(self) -> dict[str, Any]:
        """The ``error`` member of a JSON-RPC error response."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error

    def __repr__(self) -> str:
        return f"RpcError({self.code}, {self.message!r})"


def invalid_field(field: str, problem: str) -> RpcError:
    """-32602 for one field, in the same shape the kernel uses for structuring errors.

    ``field`` is the wire path (``"size.rows"``, ``"command[0]"``); the
    message reads ``Invalid params: <field>: <problem>`` and ``data.problems``
    lists it, so clients handle handler-side checks like type errors.
    """
    return RpcError(
        INVALID_PARAMS,
        f"Invalid params: {field}: {problem}",
        {"problems": [{"path": field, "message": problem}]},
    )


def internal_error(message: str = INTERNAL_MESSAGE) -> RpcError:
    """-32603: the server failed; the message carries no internals."""
    return RpcError(INTERNAL_ERROR, message)


def overloaded() -> RpcError:
    """-32001: the connection is saturated and the request was not started."""
    return RpcError(SERVER_OVERLOADED, OVERLOADED_MESSAGE)
