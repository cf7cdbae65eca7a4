"""``kernel proxy``: a stdio client's bridge to a running server's unix socket.

Each JSON line read on stdin becomes one websocket text frame; each frame
from the server becomes one line on stdout. So an editor that only speaks
stdio can share one long-running server with other clients.

At stdin EOF the proxy keeps the socket open until every line it forwarded
that calls for an answer has been answered (or ``drain_timeout`` passes),
then closes; the server ending the connection ends the proxy. A request
awaits the answer with its id; a line the server cannot take as a request
or notification (not JSON, an id of the wrong type) awaits one error answer
with id null. Exit status: 0 on a clean end,
1 when the socket cannot be reached or the connection fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from .stdio import StdoutLink, open_stdin

__all__ = ["run_proxy"]

log = logging.getLogger("kernel.proxy")
_LIMIT = 256 * 1024 * 1024


_ANONYMOUS = ("null", None)
"""The key of answers with id null (to lines that were no valid request)."""


def _request_id(line: bytes | str) -> Any:
    """The key of the answer ``line`` calls for, or None when it calls for none.

    Requests (``method`` and ``id``) await their id; notifications and
    responses to server requests await nothing; anything else awaits an
    error with id null (:data:`_ANONYMOUS`).
    """
    try:
        message = orjson.loads(line)
    except orjson.JSONDecodeError:
        return _ANONYMOUS
    if type(message) is not dict:
        return _ANONYMOUS
    if "method" in message:
        if "id" not in message:
            return None
        return _key(message["id"]) or _ANONYMOUS
    if "id" in message:
        return None  # the client's answer to a server request
    return _ANONYMOUS


def _answer_id(frame: str) -> Any:
    """The id of a response (``id`` without ``method``), else None."""
    try:
        message = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return None
    if type(message) is dict and "id" in message and "method" not in message:
        return _key(message["id"]) or (_ANONYMOUS if message["id"] is None else None)
    return None


def _key(value: Any) -> Any:
    # 1 and "1" are different ids; so are 1 and true.
    return (type(value).__name__, value) if isinstance(value, str | int) else None


async def run_proxy(socket_path: Path, drain_timeout: float = 5.0) -> int:
    """Bridge this process's stdin/stdout to the server on ``socket_path``."""
    connector = aiohttp.UnixConnector(path=str(socket_path))
    async with aiohttp.ClientSession(connector=connector) as session:
        try:
            ws = await session.ws_connect("http://localhost/", max_msg_size=_LIMIT)
        except (aiohttp.ClientError, OSError) as exc:
            print(
                f"kernel proxy: cannot connect to {socket_path}: {exc}\n"
                "start a server with: kernel run --listen unix://",
                file=sys.stderr,
            )
            return 1
        stdin = await open_stdin(0, _LIMIT)
        stdout = StdoutLink(1)
        await stdout.open()
        outstanding: dict[Any, int] = {}
        settled = asyncio.Event()
        settled.set()
        down = asyncio.create_task(_downstream(ws, stdout, outstanding, settled))
        up = asyncio.create_task(_upstream(stdin, ws, outstanding, settled))
        done, _ = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        failed = False
        if up in done and down not in done:
            # stdin ended: wait for the answers still owed, then hang up.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(drain_timeout):
                    await settled.wait()
            await ws.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(drain_timeout):
                    await down
        for task in (up, down):
            if not task.done():
                task.cancel()
            (outcome,) = await asyncio.gather(task, return_exceptions=True)
            if isinstance(outcome, Exception):
                log.error("proxy stopped: %s", outcome)
                failed = True
        await stdout.close()
        return 1 if failed else 0


async def _upstream(
    stdin: asyncio.StreamReader,
    ws: aiohttp.ClientWebSocketResponse,
    outstanding: dict[Any, int],
    settled: asyncio.Event,
) -> None:
    while line := await stdin.readline():
        if not line.strip():
            continue
        key = _request_id(line)
        if key is not None:
            outstanding[key] = outstanding.get(key, 0) + 1
            settled.clear()
        await ws.send_frame(line.rstrip(b"\r\n"), aiohttp.WSMsgType.TEXT)


async def _downstream(
    ws: aiohttp.ClientWebSocketResponse,
    stdout: StdoutLink,
    outstanding: dict[Any, int],
    settled: asyncio.Event,
) -> None:
    async for message in ws:
        if message.type is not aiohttp.WSMsgType.TEXT:
            continue
        await stdout.send([message.data.encode()])
        key = _answer_id(message.data)
        if key is not None and key in outstanding:
            outstanding[key] -= 1
            if not outstanding[key]:
                del outstanding[key]
            if not outstanding:
                settled.set()
