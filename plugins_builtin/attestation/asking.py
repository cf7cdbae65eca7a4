"""Asking a client for a fresh token: who is asked, and how an answer is judged.

The turn's own connection is asked first, when it advertised
``capabilities.requestAttestation`` in ``initialize`` and is still open;
otherwise (or when it leaves before answering) the thread's other
subscribers that advertised it, in the order they subscribed. One client
answers per request: a timeout, an error or a malformed answer is the
outcome, and nobody else is asked (each would cost another full timeout on
every model request). The whole exchange, sending included, has
``timeout_ms``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

import attrs
from cattrs.errors import CattrsError

from kernel import ConnectionClosed, RpcError

if TYPE_CHECKING:
    from kernel import Connection

__all__ = [
    "GENERATE",
    "Answer",
    "AttestationGenerateParams",
    "AttestationGenerateResponse",
    "Status",
    "ask",
    "candidates",
]

log = logging.getLogger("plugins.attestation")

GENERATE = "attestation/generate"
# A token longer than this cannot travel in an HTTP header that servers accept.
MAX_TOKEN_CHARS = 6 * 1024
# The most of a client's error message quoted back in a turn's error.
MAX_DETAIL_CHARS = 200


@attrs.frozen
class AttestationGenerateParams:
    """Asks the client for a fresh attestation token (no members)."""


@attrs.frozen
class AttestationGenerateResponse:
    """The client's answer: an opaque attestation token."""

    token: str


class Status(enum.IntEnum):
    """How asking ended; the value is the ``s`` of the header (the reference's codes)."""

    OK = 0
    TIMEOUT = 1
    REQUEST_FAILED = 2
    CANCELED = 3
    MALFORMED = 4


@attrs.frozen
class Answer:
    """The outcome of asking: a status, the token when OK, and what went wrong otherwise."""

    status: Status
    token: str | None = None
    detail: str = ""
    connection_id: int | None = None


def _capable(conn: Connection | None) -> bool:
    return (
        conn is not None
        and conn.initialized
        and not conn.closing
        and bool(conn.capabilities.request_attestation)
    )


def candidates(origin: Connection | None, subscribers: Iterable[Connection]) -> list[Connection]:
    """Who may be asked, in order: the turn's connection, then other capable subscribers."""
    found = [origin] if origin is not None and _capable(origin) else []
    seen = {conn.id for conn in found}
    for conn in subscribers:
        if conn.id not in seen and _capable(conn):
            found.append(conn)
            seen.add(conn.id)
    return found


async def ask(conns: list[Connection], timeout_ms: int) -> Answer:
    """Ask the first of ``conns`` that stays connected, within ``timeout_ms`` in all."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_ms / 1000
    for conn in conns:
        if conn.closing:
            continue
        try:
            async with asyncio.timeout_at(deadline):
                result = await conn.request(GENERATE, AttestationGenerateParams(), timeout=None)
        except ConnectionClosed:
            continue  # the client left: the next one may answer
        except TimeoutError:
            detail = (
                f"the client did not answer {GENERATE} within {timeout_ms} ms "
                "(kernel_plugins.attestation.timeout_ms)"
            )
            return Answer(Status.TIMEOUT, detail=detail, connection_id=conn.id)
        except RpcError as exc:
            said = " ".join(str(exc.message).split())[:MAX_DETAIL_CHARS]
            detail = f"the client answered {GENERATE} with error {exc.code}: {said}"
            return Answer(Status.REQUEST_FAILED, detail=detail, connection_id=conn.id)
        except (CattrsError, TypeError, ValueError) as exc:  # not {"token": string}
            # Only the type: the message could quote what the client sent.
            log.info(
                "connection %s: malformed %s answer (%s)", conn.id, GENERATE, type(exc).__name__
            )
            detail = (
                f'the client answered {GENERATE} without a token (expected {{"token": string}})'
            )
            return Answer(Status.MALFORMED, detail=detail, connection_id=conn.id)
        token = result.token
        if len(token) > MAX_TOKEN_CHARS:
            detail = f"the client's {GENERATE} token is over {MAX_TOKEN_CHARS} characters"
            return Answer(Status.MALFORMED, detail=detail, connection_id=conn.id)
        return Answer(Status.OK, token=token, connection_id=conn.id)
    detail = f"every client that offers it disconnected before answering {GENERATE}"
    return Answer(Status.REQUEST_FAILED, detail=detail)
