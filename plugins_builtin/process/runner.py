"""One child process: spawn (pipes or PTY), output with caps, stdin, teardown.

Every child starts in a new session, so it leads its own process group and
``killpg`` reaches its descendants too. The command line it runs
(``SpawnRequest.launch``) normally starts the command in its own PID
namespace under bubblewrap (see :mod:`.sandboxing`), so a descendant that
leaves the group still dies with the namespace. When the child exits,
whatever is left of its group is killed at once (as the reference's sandbox
does), a command contained without bubblewrap has its token swept (see
:mod:`.containment`), then the output pipes are drained for up to
:data:`DRAIN_SECONDS`; a descendant that escaped all of that and still
holds a pipe is reported as ``outputDrainTimedOut``.

Exit codes: the child's own code; ``128 + N`` when it died of signal N
(``terminate``/``kill`` send SIGKILL: 137); ``124`` when the timeout ended
it, like ``timeout(1)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Mapping

import attrs
import ptyprocess

from kernel.pipes import child_pipe, loop_pipe

from .containment import sweep

__all__ = [
    "DRAIN_SECONDS",
    "Outcome",
    "OutputSink",
    "RunningProcess",
    "SpawnRequest",
    "merged_env",
]

log = logging.getLogger("plugins.process")

DRAIN_SECONDS = 2.0
TIMEOUT_EXIT_CODE = 124
# Output is read in chunks of up to this size; when the client is slower than
# the child, data accumulates and each delta carries more (fewer messages).
_CHUNK = 1 << 20

OutputSink = Callable[[str, bytes, bool], Awaitable[None]]
"""``sink(stream, chunk, cap_reached)``: called for streamed output, in order."""


@attrs.frozen
class SpawnRequest:
    """Everything needed to start a child, already validated."""

    argv: list[str]
    cwd: str | None
    env: Mapping[str, str]
    tty: bool
    rows: int
    cols: int
    stream_stdin: bool
    stream_output: bool
    cap: int | None  # bytes per stream; None: no cap
    timeout: float | None  # seconds; None: no timeout
    # The command line actually run (argv wrapped in bubblewrap or setpriv);
    # None: argv itself.
    launch: list[str] | None = None
    # Set when contained without bubblewrap: swept from /proc at the end.
    token: str | None = None


@attrs.define
class Outcome:
    """How a child ended and the output kept for the final answer."""

    exit_code: int
    stdout: bytes
    stderr: bytes
    stdout_cap_reached: bool
    stderr_cap_reached: bool
    drain_timed_out: bool


class _Stream:
    """Cap accounting and buffering for one output stream."""

    def __init__(self, name: str, cap: int | None, sink: OutputSink | None) -> None:
        self.name = name
        self.cap = cap
        self.sink = sink
        self.kept = bytearray()
        self.seen = 0
        self.cap_reached = False

    async def feed(self, chunk: bytes) -> None:
        if self.cap_reached:
            return  # keep draining so the child never blocks, but drop it
        if self.cap is not None and self.seen + len(chunk) >= self.cap:
            if self.seen + len(chunk) > self.cap:
                self.cap_reached = True
            chunk = chunk[: self.cap - self.seen]
        self.seen += len(chunk)
        if self.sink is not None:
            if chunk or self.cap_reached:
                await self.sink(self.name, chunk, self.cap_reached)
        else:
            self.kept += chunk


class RunningProcess:
    """A started child; :meth:`wait` returns its :class:`Outcome`."""

    def __init__(self, request: SpawnRequest, sink: OutputSink | None) -> None:
        self.request = request
        self.tty = request.tty
        self._sink = sink if request.stream_output else None
        self._streams = {
            "stdout": _Stream("stdout", request.cap, self._sink),
            "stderr": _Stream("stderr", request.cap, self._sink),
        }
        self._proc: subprocess.Popen[bytes] | None = None
        self._pipes: dict[str, asyncio.StreamReader] = {}
        self._transports: list[asyncio.BaseTransport] = []
        self._stdin: asyncio.StreamWriter | None = None
        self._pty: ptyprocess.PtyProcess | None = None
        # A terminal is interactive by nature: its input is always open.
        self._stdin_closed = not (request.stream_stdin or request.tty)
        self._timed_out = False
        self.pid = 0
        self._done: asyncio.Task[Outcome] | None = None

    # -- starting -----------------------------------------------------------------

    async def start(self) -> None:
        """Start the child; raises OSError when it cannot be started."""
        req = self.request
        if req.launch is not None and req.launch != req.argv:
            # The wrapper would start and then fail to exec: say why up front,
            # exactly as starting the program directly would.
            _check_program(req.argv[0], req.env, req.cwd)
        if req.tty:
            self._pty = ptyprocess.PtyProcess.spawn(
                self._command_line, cwd=req.cwd, env=dict(req.env), dimensions=(req.rows, req.cols)
            )
            self._pty.delayafterclose = 0
            self._pty.delayafterterminate = 0
            os.set_blocking(self._pty.fd, False)  # writes wait on the loop, not a thread
            self.pid = self._pty.pid
        else:
            await self._start_piped()
        self._done = asyncio.get_running_loop().create_task(self._run())

    async def _start_piped(self) -> None:
        # subprocess.Popen, not the event loop's subprocess support: it uses
        # vfork, which stays fast in a large server process (uvloop forks).
        # The pipes are our own, not Popen's file objects: each parent end
        # then has exactly one owner, its loop transport (see kernel.pipes).
        req = self.request
        ends: dict[str, tuple[int, int]] = {"stdout": child_pipe(), "stderr": child_pipe()}
        if req.stream_stdin:
            ends["stdin"] = child_pipe()
        child_ends = [ends["stdout"][1], ends["stderr"][1]]
        ours = [ends["stdout"][0], ends["stderr"][0]]
        if "stdin" in ends:
            child_ends.append(ends["stdin"][0])
            ours.append(ends["stdin"][1])
        try:
            proc = subprocess.Popen(
                self._command_line,
                cwd=req.cwd,
                env=dict(req.env),
                stdin=ends["stdin"][0] if "stdin" in ends else subprocess.DEVNULL,
                stdout=ends["stdout"][1],
                stderr=ends["stderr"][1],
                start_new_session=True,
                bufsize=0,
            )
        except BaseException:
            for fd in child_ends + ours:
                os.close(fd)
            raise
        finally:
            # The child holds its own copies now (or never started).
            for fd in child_ends:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._proc, self.pid = proc, proc.pid
        loop = asyncio.get_running_loop()
        unowned = list(ours)  # ends not yet handed to a transport
        try:
            for name in ("stdout", "stderr"):
                fd = ends[name][0]
                unowned.remove(fd)
                self._pipes[name] = await self._read_end(fd)
            if "stdin" in ends:
                fd = ends["stdin"][1]
                unowned.remove(fd)
                pipe = loop_pipe(fd, "wb", loop)
                try:
                    writer, protocol = await loop.connect_write_pipe(
                        lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()), pipe
                    )
                except BaseException:
                    pipe.close()
                    raise
                self._stdin = asyncio.StreamWriter(writer, protocol, None, loop)
                self._transports.append(writer)
        except BaseException:
            # Never leave a started child behind when wiring it up fails.
            _killpg(proc.pid)
            for fd in unowned:
                os.close(fd)
            for transport in self._transports:
                transport.close()
            await asyncio.to_thread(proc.wait)
            raise

    @property
    def _command_line(self) -> list[str]:
        req = self.request
        return req.argv if req.launch is None else req.launch

    async def _read_end(self, fd: int) -> asyncio.StreamReader:
        """A stream over the read end ``fd``, whose ownership passes to the loop."""
        _widen(fd)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_CHUNK)
        pipe = loop_pipe(fd, "rb", loop)
        try:
            transport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), pipe
            )
        except BaseException:
            pipe.close()
            raise
        self._transports.append(transport)
        return reader

    async def wait(self) -> Outcome:
        """The outcome, once the child ended and its output was delivered."""
        assert self._done is not None
        return await asyncio.shield(self._done)

    @property
    def finished(self) -> bool:
        return self._done is not None and self._done.done()

    # -- control --------------------------------------------------------------------

    async def write(self, data: bytes, close: bool) -> None:
        """Write to stdin (raises ValueError when stdin is not streamed or closed)."""
        if self._stdin_closed:
            open_at_start = self.request.stream_stdin or self.request.tty
            raise ValueError("stdin is closed" if open_at_start else "stdin is not streamed")
        if self._pty is not None:
            if data:
                await _write_all(self._pty.fd, data)
            if close:
                # A terminal has no half-close: send EOF (Ctrl-D) as a shell expects.
                await _write_all(self._pty.fd, bytes([4]))
                self._stdin_closed = True
            return
        assert self._stdin is not None
        stdin = self._stdin
        try:
            if data:
                stdin.write(data)
                await stdin.drain()
            if close:
                stdin.close()
                self._stdin_closed = True
        except (BrokenPipeError, ConnectionResetError):
            self._stdin_closed = True
            raise ValueError("the process closed its stdin") from None

    def resize(self, rows: int, cols: int) -> None:
        """Resize the PTY (raises ValueError without one)."""
        if self._pty is None:
            raise ValueError("not attached to a PTY (started without tty)")
        self._pty.setwinsize(rows, cols)

    def kill(self) -> None:
        """SIGKILL the whole process group (idempotent)."""
        _killpg(self.pid)

    # -- running ----------------------------------------------------------------------

    async def _run(self) -> Outcome:
        req = self.request
        readers = self._start_readers()
        try:
            async with asyncio.timeout(req.timeout):
                status = await self._wait_exit()
        except TimeoutError:
            self._timed_out = True
            _killpg(self.pid)
            status = await self._wait_exit()
        # The leader is gone: end what is left of its group, as a sandbox would.
        _killpg(self.pid)
        if req.token is not None:
            await asyncio.to_thread(sweep, req.token)
        drained = True
        if readers:
            _, pending = await asyncio.wait(readers, timeout=DRAIN_SECONDS)
            drained = not pending
            for task in pending:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
        for transport in self._transports:
            transport.close()
        if self._pty is not None:
            with contextlib.suppress(Exception):
                self._pty.close(force=False)
        out, err = self._streams["stdout"], self._streams["stderr"]
        code = TIMEOUT_EXIT_CODE if self._timed_out else _exit_code(status)
        return Outcome(
            code, bytes(out.kept), bytes(err.kept), out.cap_reached, err.cap_reached, not drained
        )

    def _start_readers(self) -> list[asyncio.Task[None]]:
        loop = asyncio.get_running_loop()
        if self._pty is not None:
            return [loop.create_task(self._read_pty())]
        return [
            loop.create_task(self._read_pipe(self._pipes[name], self._streams[name]))
            for name in ("stdout", "stderr")
        ]

    async def _read_pipe(self, pipe: asyncio.StreamReader, stream: _Stream) -> None:
        while chunk := await pipe.read(_CHUNK):
            await stream.feed(chunk)

    async def _read_pty(self) -> None:
        assert self._pty is not None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_CHUNK)
        pipe = loop_pipe(os.dup(self._pty.fd), "rb", loop)
        try:
            transport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), pipe
            )
        except BaseException:
            pipe.close()
            raise
        stream = self._streams["stdout"]  # a terminal merges stdout and stderr
        try:
            while chunk := await reader.read(_CHUNK):
                await stream.feed(chunk)
        except OSError as exc:
            if exc.errno != errno.EIO:  # EIO: the terminal's other side closed
                raise
        finally:
            transport.close()

    async def _wait_exit(self) -> int:
        """The raw wait status (or ``-signal`` from asyncio for pipes)."""
        await _exited(self.pid)
        if self._proc is not None:
            return self._proc.wait()  # reaps at once: the child has exited
        pty = self._pty
        assert pty is not None
        await asyncio.to_thread(pty.wait)  # reaps: the child has already exited
        if pty.signalstatus is not None:
            return -int(pty.signalstatus)
        return int(pty.exitstatus or 0)


def _check_program(program: str, env: Mapping[str, str], cwd: str | None) -> None:
    """Raise the OSError ``execvp(program)`` would raise in ``cwd``, if any."""
    if cwd is not None and not os.path.isdir(cwd):
        code = errno.ENOTDIR if os.path.exists(cwd) else errno.ENOENT
        raise OSError(code, os.strerror(code), cwd)
    if "/" in program:
        path = os.path.join(cwd or os.getcwd(), program)
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), program)
    elif shutil.which(program, path=env.get("PATH", os.defpath)) is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)


def _widen(fd: int) -> None:
    """Grow a pipe to 1 MiB where Linux allows: fewer, larger reads and deltas."""
    size_flag = getattr(fcntl, "F_SETPIPE_SZ", None)
    if size_flag is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, size_flag, _CHUNK)


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _killpg(pgid: int) -> None:
    if pgid > 0:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


async def _write_all(fd: int, data: bytes) -> None:
    """Write ``data`` to the non-blocking terminal ``fd``, waiting on the loop when full.

    No thread is held: a child that never reads its terminal blocks only
    this request, which stays cancellable.
    """
    loop = asyncio.get_running_loop()
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
            continue
        except BlockingIOError:
            pass
        room: asyncio.Future[None] = loop.create_future()
        loop.add_writer(fd, _wake, room)
        try:
            await room
        finally:
            loop.remove_writer(fd)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _exited(pid: int) -> None:
    """Return once ``pid`` has exited (not reaped): pidfd where available."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not done.done():
            done.set_result(None)

    if sys.platform == "linux" and hasattr(os, "pidfd_open"):
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            fd = -1
        if fd >= 0:
            loop.add_reader(fd, wake)
            try:
                await done
            finally:
                loop.remove_reader(fd)
                os.close(fd)
            return

    def watch() -> None:  # elsewhere: a thread that waits without reaping
        with contextlib.suppress(ChildProcessError):
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        loop.call_soon_threadsafe(wake)

    threading.Thread(target=watch, name=f"wait-{pid}", daemon=True).start()
    await done


def merged_env(overrides: Mapping[str, str | None] | None) -> dict[str, str]:
    """The server's environment with ``overrides`` applied (None unsets)."""
    env = dict(os.environ)
    for key, value in (overrides or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env
