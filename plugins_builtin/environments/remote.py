"""A remote environment: another kernel serving ``fs`` and ``process``, reached over websocket.

The agent's commands and file edits run there through the Python client
(:class:`kernel.client.Client`): ``command/exec`` with streamed output for
processes, ``fs/*`` for files. The connection is opened on first use (with
the environment's timeout and bearer token), shared by every command, and
opened again after it drops.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from kernel import RpcError
from kernel.client import Client

__all__ = ["RemoteEnvironment", "RemoteProcess"]

log = logging.getLogger("plugins.environments")

OutputCallback = Callable[[str, bytes, bool], Awaitable[None]]
# fs error codes (docs/fs.md) -> errno, so file errors read like local ones.
_FS_ERRNO = {
    -32010: errno.ENOENT,
    -32011: errno.ENOTDIR,
    -32012: errno.EISDIR,
    -32013: errno.EACCES,
    -32014: errno.EEXIST,
}


def _os_error(exc: RpcError, path: str) -> OSError:
    code = _FS_ERRNO.get(exc.code, errno.EIO)
    return OSError(code, exc.message if code == errno.EIO else os.strerror(code), path)


class RemoteProcess:
    """One command running in a remote environment (the local ``ProcessHandle``'s methods)."""

    def __init__(
        self,
        environment: RemoteEnvironment,
        process_id: str,
        client: Client,
        on_output: OutputCallback | None,
    ) -> None:
        self._environment = environment
        self._process_id = process_id
        self._client = client
        self._answer: asyncio.Future[Any] | None = None
        self.pid: int | None = None  # not known across the connection
        # Deltas are delivered in order by one pump; the answer comes after the last.
        self._queue: asyncio.Queue[tuple[str, bytes, bool] | None] = asyncio.Queue()
        self._pump = asyncio.get_running_loop().create_task(self._deliver(on_output))

    def feed(self, stream: str, chunk: bytes, cap_reached: bool) -> None:
        self._queue.put_nowait((stream, chunk, cap_reached))

    async def _deliver(self, on_output: OutputCallback | None) -> None:
        while (entry := await self._queue.get()) is not None:
            if on_output is not None:
                try:
                    await on_output(*entry)
                except Exception:
                    log.exception("output callback of remote command %s failed", self._process_id)

    @property
    def finished(self) -> bool:
        return self._answer is not None and self._answer.done()

    async def wait(self) -> dict[str, Any]:
        """How it ended (``exitCode``...); -1 when the connection was lost."""
        assert self._answer is not None
        try:
            result = await asyncio.shield(self._answer)
            code = int(result.get("exitCode", -1))
        except (ConnectionError, RpcError) as exc:
            where = self._environment.id
            log.warning("remote command %s in %s ended: %s", self._process_id, where, exc)
            code = -1
        finally:
            self._environment.forget(self._process_id)
            self._queue.put_nowait(None)
            await asyncio.shield(self._pump)
        return {"exitCode": code, "stdout": b"", "stderr": b"", "timedOut": code == 124}

    async def write(self, data: bytes, close: bool = False) -> None:
        params: dict[str, Any] = {
            "processId": self._process_id,
            "deltaBase64": base64.b64encode(data).decode(),
        }
        if close:
            params["closeStdin"] = True
        await self._client.request("command/exec/write", params)

    def resize(self, rows: int, cols: int) -> None:
        params = {"processId": self._process_id, "size": {"rows": rows, "cols": cols}}
        self._client.request_nowait("command/exec/resize", params)

    def kill(self) -> None:
        if not self.finished:
            self._client.request_nowait("command/exec/terminate", {"processId": self._process_id})


class RemoteEnvironment:
    """An environment added with ``environment/add``; see the module docstring."""

    def __init__(
        self, environment_id: str, url: str, token: str | None, connect_timeout: float
    ) -> None:
        self.id = environment_id
        self.url = url
        self.token = token
        self.connect_timeout = connect_timeout
        self.error: str | None = None
        self._client: Client | None = None
        self._lock = asyncio.Lock()
        self._running: dict[str, RemoteProcess] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def status(self) -> str:
        """``ready`` (connected), ``pending`` (not tried yet) or ``disconnected``."""
        if self._client is not None:
            return "ready"
        return "disconnected" if self.error else "pending"

    async def client(self) -> Client:
        """The connection, opened (again) if needed; raises ``ConnectionError`` with the reason."""
        async with self._lock:
            if self._client is not None:
                return self._client
            try:
                async with asyncio.timeout(self.connect_timeout):
                    client = await Client.connect(self.url, token=self.token)
                    await client.initialize(name="kernel-environment", experimental=True)
            except Exception as exc:
                self.error = f"cannot reach {self.url}: {type(exc).__name__}: {exc}"
                raise ConnectionError(self.error) from None
            self.error = None
            client.on_notification("command/exec/outputDelta", self._delta)
            watcher = asyncio.get_running_loop().create_task(self._watch(client))
            self._tasks.add(watcher)
            watcher.add_done_callback(self._tasks.discard)
            self._client = client
            return client

    async def _watch(self, client: Client) -> None:
        await client.wait_closed()
        if self._client is client:
            self._client = None
            self.error = "the connection was lost"

    def _delta(self, params: Any) -> None:
        if not isinstance(params, Mapping):
            return
        process = self._running.get(str(params.get("processId")))
        if process is not None:
            chunk = base64.b64decode(params.get("deltaBase64") or "")
            process.feed(str(params.get("stream", "stdout")), chunk, bool(params.get("capReached")))

    def forget(self, process_id: str) -> None:
        self._running.pop(process_id, None)

    async def start(
        self,
        argv: list[str],
        *,
        cwd: str,
        env: Mapping[str, str | None] | None = None,
        tty: bool = False,
        on_output: OutputCallback | None = None,
        output_cap: int | None = -1,
        timeout: float | None = None,
        sandbox_policy: Mapping[str, Any] | None = None,
        permission_profile: Any = None,
        additional_permissions: Mapping[str, Any] | None = None,
    ) -> RemoteProcess:
        """Start ``argv`` there (``kernel.services["process"].start``'s arguments)."""
        client = await self.client()
        process_id = f"env-{uuid.uuid4().hex}"
        params: dict[str, Any] = {
            "command": list(argv),
            "cwd": cwd,
            "processId": process_id,
            "streamStdoutStderr": True,
            "tty": tty,
            "streamStdin": tty,
        }
        if env:
            params["env"] = dict(env)
        if output_cap is None:
            params["disableOutputCap"] = True
        if timeout is None:
            params["disableTimeout"] = True
        else:
            params["timeoutMs"] = max(1, int(timeout * 1000))
        # Granted extra permissions do not travel: the remote sandbox is the policy alone.
        if sandbox_policy is not None:
            params["sandboxPolicy"] = dict(sandbox_policy)
        elif permission_profile is not None:
            params["permissionProfile"] = permission_profile
        else:
            params["sandboxPolicy"] = {"type": "dangerFullAccess"}
        process = RemoteProcess(self, process_id, client, on_output)
        self._running[process_id] = process
        process._answer = client.request_nowait("command/exec", params)
        return process

    # -- files (for patches) -----------------------------------------------------------

    async def read_bytes(self, path: str) -> bytes:
        client = await self.client()
        try:
            answer = await client.request("fs/readFile", {"path": path})
        except RpcError as exc:
            raise _os_error(exc, path) from None
        return base64.b64decode(answer.get("dataBase64") or "")

    async def write_bytes(self, path: str, data: bytes) -> None:
        client = await self.client()
        params = {"path": path, "dataBase64": base64.b64encode(data).decode()}
        try:
            await client.request("fs/writeFile", params)
        except RpcError as exc:
            raise _os_error(exc, path) from None

    async def remove(self, path: str) -> None:
        client = await self.client()
        try:
            await client.request("fs/remove", {"path": path, "recursive": False})
        except RpcError as exc:
            raise _os_error(exc, path) from None

    async def make_dirs(self, path: str) -> None:
        client = await self.client()
        try:
            await client.request("fs/createDirectory", {"path": path, "recursive": True})
        except RpcError as exc:
            raise _os_error(exc, path) from None

    async def info(self) -> dict[str, Any]:
        """The remote shell and working directory (asked with a command there)."""
        client = await self.client()
        script = 'printf "%s\\n%s" "${SHELL:-/bin/sh}" "$PWD"'
        answer = await client.request(
            "command/exec",
            {"command": ["sh", "-c", script], "sandboxPolicy": {"type": "dangerFullAccess"}},
        )
        shell, _, cwd = str(answer.get("stdout", "")).partition("\n")
        return {"shell": shell or "/bin/sh", "cwd": cwd or "/"}

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()
        for task in list(self._tasks):
            task.cancel()
