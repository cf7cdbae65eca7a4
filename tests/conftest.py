"""Shared fixtures: kernels in subprocesses and in-process, every frame validated.

``serve(...)`` starts ``python -m kernel run`` over real stdio; ``inproc(...)``
builds a kernel on the test's loop. Both hand back a :class:`kernel.client.Client`
whose stream validates every server→client frame against the vendored
reference schema; a test fails at teardown if any frame violated it.

The test-only plugins in ``tests/support/site`` are found as real entry
points: that directory is on ``PYTHONPATH`` for subprocesses and on
``sys.path`` here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from kernel.client import Client, ClientStream, ProcessStream
from tests.protocol.checker import ProtocolChecker, ProtocolViolation

SITE = Path(__file__).parent / "support" / "site"
REPO = Path(__file__).parent.parent
if str(SITE) not in sys.path:
    sys.path.insert(0, str(SITE))


@pytest.fixture(autouse=True)
def _no_system_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every kernel a test starts reads its system layer from an empty temporary folder.

    (Never the machine's /etc/kernel-app-server; tests that need a system
    layer write into ``tmp_path / "system"``.)
    """
    system = tmp_path / "system"
    monkeypatch.setenv("KERNEL_SYSTEM_DIR", str(system))
    return system


@pytest.fixture(scope="session")
def checker() -> ProtocolChecker:
    return ProtocolChecker()


class CheckedStream:
    """A ClientStream that validates each frame the server sends."""

    def __init__(self, inner: ClientStream, checker: ProtocolChecker) -> None:
        self.inner = inner
        self.checker = checker
        self.pending: dict[Any, str] = {}
        self.violations: list[ProtocolViolation] = []
        self.received: list[dict[str, Any]] = []
        self.process = getattr(inner, "process", None)

    def _note(self, frame: bytes) -> None:
        with contextlib.suppress(Exception):
            msg = orjson.loads(frame)
            if isinstance(msg, dict) and "method" in msg and "id" in msg:
                self.pending[msg["id"]] = msg["method"]

    def send_nowait(self, frame: bytes) -> None:
        self._note(frame)
        self.inner.send_nowait(frame)

    async def send(self, frame: bytes) -> None:
        self._note(frame)
        await self.inner.send(frame)

    async def drain(self) -> None:
        await self.inner.drain()

    async def recv(self) -> bytes | None:
        frame = await self.inner.recv()
        if frame is not None:
            msg = orjson.loads(frame)
            self.received.append(msg)
            try:
                self.checker.check_server_frame(msg, self.pending)
            except ProtocolViolation as violation:
                self.violations.append(violation)
        return frame

    async def close(self) -> None:
        await self.inner.close()


def subprocess_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "KERNEL_HOME": str(home),
        "KERNEL_LOG": "debug",
        "PYTHONPATH": os.pathsep.join([str(SITE), str(REPO)]),
    }
    env.pop("LOG_FORMAT", None)
    env.update(extra or {})
    return env


class Served:
    """A kernel subprocess with its client, home and log."""

    def __init__(self, client: Client, stream: CheckedStream, home: Path, log: Path) -> None:
        self.client = client
        self.stream = stream
        self.home = home
        self.log_path = log

    @property
    def process(self) -> asyncio.subprocess.Process:
        assert self.client.process is not None
        return self.client.process

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def events(self) -> list[str]:
        path = self.home / "probe-events.log"
        return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def serve(tmp_path: Path, checker: ProtocolChecker):
    counter = iter(range(1000))
    streams: list[CheckedStream] = []

    @contextlib.asynccontextmanager
    async def factory(
        plugins: Sequence[str] | None = ("probe", "echo"),
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        home: Path | None = None,
        close: bool = True,
        prefix: Sequence[str] = (),
    ) -> AsyncIterator[Served]:
        n = next(counter)
        home = home or tmp_path / f"home{n}"
        log = tmp_path / f"kernel{n}.log"
        argv = [*prefix, sys.executable, "-m", "kernel", "run", *args]
        if plugins is not None:
            argv += ["--plugins", ",".join(plugins)]
        with log.open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                env=subprocess_env(home, env),
                limit=1 << 28,
            )
        stream = CheckedStream(ProcessStream(process), checker)
        streams.append(stream)
        served = Served(Client(stream), stream, home, log)
        try:
            yield served
        finally:
            if close:
                await served.client.close()
            if process.returncode is None:
                process.kill()
                await process.wait()

    yield factory
    problems = [str(v) for s in streams for v in s.violations]
    assert not problems, "frames violating the reference schema:\n" + "\n".join(problems)


@pytest.fixture
def inproc(tmp_path: Path, checker: ProtocolChecker):
    from kernel.bootstrap import build_kernel
    from kernel.transports.memory import open_memory_connection

    counter = iter(range(1000))
    streams: list[CheckedStream] = []

    @contextlib.asynccontextmanager
    async def factory(
        plugins: Sequence[str] | None = ("probe", "echo"),
        overrides: Sequence[str] = (),
        extra_plugins: dict[str, Any] | None = None,
        argv: Sequence[str] = (),
    ) -> AsyncIterator[Client]:
        home = tmp_path / f"inproc{next(counter)}"
        kernel = build_kernel(
            home=home, plugins=plugins, overrides=overrides, extra_plugins=extra_plugins, argv=argv
        )
        await kernel.start()
        _, end = await open_memory_connection(kernel)
        stream = CheckedStream(end, checker)
        streams.append(stream)
        client = Client(stream)
        client.kernel = kernel
        try:
            yield client
        finally:
            await client.close()
            await kernel.stop()

    yield factory
    problems = [str(v) for s in streams for v in s.violations]
    assert not problems, "frames violating the reference schema:\n" + "\n".join(problems)


@pytest.fixture
def listen(tmp_path: Path, checker: ProtocolChecker):
    """Start ``kernel run --listen ...`` in a subprocess; yields a Listening.

    ``listen=`` URLs default to one loopback websocket on a free port; the
    fixture waits for one banner line per network listener.
    """
    from tests.support.network import Listening, start_listening

    counter = iter(range(1000))
    servers: list[Listening] = []

    @contextlib.asynccontextmanager
    async def factory(
        listen: Sequence[str] = ("ws://127.0.0.1:0",),
        plugins: Sequence[str] | None = ("probe", "echo"),
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        home: Path | None = None,
    ) -> AsyncIterator[Listening]:
        n = next(counter)
        home = home or tmp_path / f"net{n}"
        argv = [arg for url in listen for arg in ("--listen", url)] + list(args)
        if plugins is not None:
            argv += ["--plugins", ",".join(plugins)]
        server = await start_listening(
            argv, subprocess_env(home, env), home, tmp_path / f"net{n}.log", checker
        )
        servers.append(server)
        try:
            await server.wait_listening(sum(1 for u in listen if u.startswith(("ws", "unix"))))
            yield server
        finally:
            if server.process.returncode is None:
                code = await server.stop()
                assert code == 0, server.log()

    yield factory
    problems = [str(v) for s in servers for st in s.streams for v in st.violations]  # type: ignore[attr-defined]
    assert not problems, "frames violating the reference schema:\n" + "\n".join(problems)


@pytest.fixture
def short_tmp():
    """A short temporary directory: unix socket paths are limited to ~104 bytes."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="k", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def model_server():
    """A running stand-in for the model API (tests/support/model_server.py)."""
    from tests.support.model_server import ModelServer

    async with ModelServer() as server:
        yield server
