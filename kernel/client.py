"""An async Python client for the kernel (and any Codex app-server v2 server).

::

    async with await Client.spawn(plugins=["echo"]) as client:
        await client.initialize()
        result = await client.request("echo/echo", {"message": "hi"})
        async for note in client.notifications():
            ...

Transports: a stdio subprocess (:meth:`Client.spawn`, or :meth:`Client.spawn_command`
for any server command), a running server's websocket or unix socket
(:meth:`Client.connect`) and an in-process kernel (:meth:`Client.in_process`).
Errors the server answers raise :class:`kernel.RpcError`; server→client
requests go to the handler registered with :meth:`Client.on_request`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import orjson

from ._version import __version__
from .rpc.errors import RpcError

if TYPE_CHECKING:
    from .runtime import Kernel

__all__ = ["Client", "ClientStream", "Notification", "ProcessStream"]

log = logging.getLogger("kernel.client")
_LINE_LIMIT = 256 * 1024 * 1024


@attrs.frozen
class Notification:
    """A notification the server sent."""

    method: str
    params: Any


class ClientStream(Protocol):
    """How the client exchanges whole frames with a server."""

    async def send(self, frame: bytes) -> None:
        """Send one frame."""

    def send_nowait(self, frame: bytes) -> None:
        """Queue one frame without waiting for buffer space."""

    async def drain(self) -> None:
        """Wait until queued frames were handed to the transport."""

    async def recv(self) -> bytes | None:
        """The next frame, or None when the server closed."""

    async def close(self) -> None:
        """Close the sending side and release resources."""


class ProcessStream:
    """A :class:`ClientStream` over a subprocess's stdin/stdout (JSON lines)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        assert process.stdin is not None and process.stdout is not None
        self._stdin = process.stdin
        self._stdout = process.stdout

    def send_nowait(self, frame: bytes) -> None:
        self._stdin.write(frame + b"\n")

    async def send(self, frame: bytes) -> None:
        self.send_nowait(frame)
        await self._stdin.drain()

    async def drain(self) -> None:
        await self._stdin.drain()

    async def recv(self) -> bytes | None:
        while True:
            line = await self._stdout.readline()
            if not line:
                return None
            if line.strip():
                return line

    async def close(self) -> None:
        if not self._stdin.is_closing():
            self._stdin.close()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                await self._stdin.wait_closed()


RequestHandler = Callable[[Any], Any | Awaitable[Any]]


class Client:
    """A JSON-RPC client over one :class:`ClientStream`."""

    def __init__(self, stream: ClientStream) -> None:
        self.stream = stream
        self.process: asyncio.subprocess.Process | None = getattr(stream, "process", None)
        self.kernel: Kernel | None = None
        """The kernel, when connected in-process (set by :mod:`kernel.testing`)."""
        self.stderr_path: os.PathLike[str] | None = None
        """Where a spawned server's stderr goes, when :mod:`kernel.testing` captured it."""
        self._ids = itertools.count(1)
        self._pending: dict[Any, asyncio.Future[Any]] = {}
        self._notifications: asyncio.Queue[Notification | None] = asyncio.Queue()
        self._orphans: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._handlers: dict[str, RequestHandler] = {}
        self._listeners: dict[str, Callable[[Any], None]] = {}
        self._handler_tasks: set[asyncio.Task[None]] = set()
        self._closed = asyncio.get_running_loop().create_future()
        self._reader = asyncio.get_running_loop().create_task(self._read_loop())

    # -- construction ---------------------------------------------------------

    @classmethod
    async def spawn(
        cls,
        *args: str,
        plugins: Sequence[str] | None = None,
        home: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        stderr: Any = None,
    ) -> Client:
        """Start ``python -m kernel run [args]`` and connect over its stdio."""
        argv = [sys.executable, "-m", "kernel", "run", *args]
        if plugins is not None:
            argv += ["--plugins", ",".join(plugins)]
        if home is not None:
            argv += ["--home", os.fspath(home)]
        return await cls.spawn_command(argv, env=env, stderr=stderr)

    @classmethod
    async def spawn_command(
        cls, argv: Sequence[str], *, env: Mapping[str, str] | None = None, stderr: Any = None
    ) -> Client:
        """Start any stdio server command (the reference server too) and connect."""
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=dict(env) if env is not None else None,
            limit=_LINE_LIMIT,
        )
        return cls(ProcessStream(process))

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Client:
        """Connect to ``ws://HOST:PORT`` or ``unix://PATH``.

        ``token`` goes in ``Authorization: Bearer`` on the upgrade. A refused
        upgrade raises :class:`aiohttp.WSServerHandshakeError` (``.status``
        is 401, 403...).
        """
        from .wsclient import connect_websocket

        return cls(await connect_websocket(url, token=token, headers=headers))

    @classmethod
    async def in_process(cls, kernel: Kernel) -> Client:
        """Connect to a kernel running in this event loop (no subprocess)."""
        from .transports.memory import open_memory_connection

        _, end = await open_memory_connection(kernel)
        return cls(end)

    # -- calls ----------------------------------------------------------------

    async def initialize(
        self,
        name: str = "kernel-client",
        version: str = __version__,
        *,
        experimental: bool = False,
        opt_out: Sequence[str] = (),
        capabilities: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Send ``initialize`` then ``initialized``; returns the initialize result."""
        caps: dict[str, Any] = {"experimentalApi": experimental}
        if opt_out:
            caps["optOutNotificationMethods"] = list(opt_out)
        caps.update(capabilities or {})
        result = await self.request(
            "initialize", {"clientInfo": {"name": name, "version": version}, "capabilities": caps}
        )
        await self.notify("initialized")
        return result

    def request_nowait(self, method: str, params: Any = None) -> asyncio.Future[Any]:
        """Queue a request and return the future of its result (for pipelining).

        Call :meth:`drain` now and then so the write buffer cannot grow
        without bound.
        """
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        message: dict[str, Any] = {"id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        self.stream.send_nowait(orjson.dumps(message))
        return future

    async def drain(self) -> None:
        """Wait for the write buffer to empty below its high-water mark."""
        await self.stream.drain()

    async def request(
        self, method: str, params: Any = None, *, timeout: float | None = None
    ) -> Any:
        """Call ``method`` and return its result; raise :class:`RpcError` on an error answer."""
        future = self.request_nowait(method, params)
        await self.stream.drain()
        async with asyncio.timeout(timeout):
            return await future

    async def notify(self, method: str, params: Any = None) -> None:
        """Send a notification."""
        message: dict[str, Any] = {"method": method}
        if params is not None:
            message["params"] = params
        await self.stream.send(orjson.dumps(message))

    async def send_raw(self, frame: bytes | str) -> None:
        """Send one frame exactly as given (for testing malformed input)."""
        await self.stream.send(frame.encode() if isinstance(frame, str) else frame)

    def on_request(self, method: str, handler: RequestHandler) -> None:
        """Answer server→client requests ``method`` with ``handler(params)``.

        The handler may be async; raising :class:`RpcError` answers that error.
        """
        self._handlers[method] = handler

    def on_notification(self, method: str, listener: Callable[[Any], None]) -> None:
        """Deliver notifications ``method`` to ``listener(params)`` instead of the queue.

        The listener runs on the reader, in arrival order, and must not block;
        one that raises is logged and the notification dropped.
        """
        self._listeners[method] = listener

    # -- receiving ------------------------------------------------------------

    async def next_notification(
        self, method: str | None = None, timeout: float = 10.0
    ) -> Notification:
        """The next notification (of ``method``, skipping others)."""
        async with asyncio.timeout(timeout):
            while True:
                note = await self._notifications.get()
                if note is None:
                    self._notifications.put_nowait(None)
                    raise ConnectionError("server closed the connection")
                if method is None or note.method == method:
                    return note

    async def notifications(self) -> AsyncIterator[Notification]:
        """Every notification until the connection closes."""
        while (note := await self._notifications.get()) is not None:
            yield note
        self._notifications.put_nowait(None)

    async def next_orphan(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next answer that matched no request (e.g. a parse error with id null)."""
        async with asyncio.timeout(timeout):
            return await self._orphans.get()

    async def wait_closed(self) -> None:
        """Return when the server closed its side."""
        await asyncio.shield(self._closed)

    async def _read_loop(self) -> None:
        try:
            while (frame := await self.stream.recv()) is not None:
                self._dispatch(orjson.loads(frame))
        except Exception as exc:  # a torn or non-JSON frame from the server
            log.error("client reader stopped: %s", exc)
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("server closed the connection"))
            self._pending.clear()
            self._notifications.put_nowait(None)
            if not self._closed.done():
                self._closed.set_result(None)

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "method" in message:
            if "id" in message:
                task = asyncio.get_running_loop().create_task(self._answer(message))
                self._handler_tasks.add(task)
                task.add_done_callback(self._handler_tasks.discard)
            elif (listener := self._listeners.get(message["method"])) is not None:
                try:
                    listener(message.get("params"))
                except Exception:
                    log.exception("notification listener for %s failed", message["method"])
            else:
                self._notifications.put_nowait(
                    Notification(message["method"], message.get("params"))
                )
            return
        future = self._pending.pop(message.get("id"), None)
        if future is None:
            self._orphans.put_nowait(message)
            return
        if future.done():
            return
        if "error" in message:
            err = message["error"]
            future.set_exception(RpcError(err.get("code"), err.get("message", ""), err.get("data")))
        else:
            future.set_result(message.get("result"))

    async def _answer(self, message: dict[str, Any]) -> None:
        handler = self._handlers.get(message["method"])
        reply: dict[str, Any] = {"id": message["id"]}
        if handler is None:
            reply["error"] = {"code": -32601, "message": f"Method not found: {message['method']}"}
        else:
            try:
                result = handler(message.get("params"))
                if inspect.isawaitable(result):
                    result = await result
                reply["result"] = result
            except RpcError as exc:
                reply["error"] = exc.to_wire()
            except Exception as exc:
                log.exception("client handler for %s failed", message["method"])
                reply["error"] = {"code": -32603, "message": f"client handler failed: {exc}"}
        with contextlib.suppress(Exception):
            await self.stream.send(orjson.dumps(reply))

    # -- closing --------------------------------------------------------------

    async def close(self, timeout: float = 10.0) -> int | None:
        """Close stdin, wait for the server to finish; returns its exit code if a subprocess."""
        with contextlib.suppress(Exception):
            await self.stream.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.wait_closed()
        self._reader.cancel()
        if self.process is None:
            return None
        try:
            async with asyncio.timeout(timeout):
                return await self.process.wait()
        except TimeoutError:
            self.process.kill()
            return await self.process.wait()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
