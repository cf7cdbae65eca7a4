"""A kernel subprocess serving network listeners, for transport tests.

The server is started with ``--listen`` URLs (port 0 picks a free port);
the actual URLs are read from its startup banner on stderr. Clients
connected through :meth:`Listening.connect` validate every frame the server
sends against the reference schema.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from kernel.client import Client
from kernel.wsclient import connect_websocket
from tests.protocol.checker import ProtocolChecker

BANNER = re.compile(r"listening on (\S+)")


class Listening:
    """A running server, the URLs it listens on, and its log."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        home: Path,
        log_path: Path,
        checker: ProtocolChecker,
    ) -> None:
        self.process = process
        self.home = home
        self.log_path = log_path
        self.urls: list[str] = []
        self.streams: list[object] = []
        self._checker = checker

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def url(self, scheme: str = "ws") -> str:
        return next(u for u in self.urls if u.startswith(f"{scheme}://"))

    @property
    def http(self) -> str:
        return "http" + self.url("ws")[2:]

    def events(self) -> list[str]:
        path = self.home / "probe-events.log"
        return path.read_text().splitlines() if path.exists() else []

    async def wait_listening(self, count: int, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while True:
                found = BANNER.findall(self.log())
                if len(found) >= count:
                    self.urls = found
                    return
                if self.process.returncode is not None:
                    raise RuntimeError(f"server exited early:\n{self.log()}")
                await asyncio.sleep(0.05)

    async def connect(
        self, url: str | None = None, token: str | None = None, headers: dict | None = None
    ) -> Client:
        from tests.conftest import CheckedStream

        stream = CheckedStream(
            await connect_websocket(url or self.url(), token=token, headers=headers),
            self._checker,
        )
        self.streams.append(stream)
        return Client(stream)

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        async with asyncio.timeout(timeout):
            return await self.process.wait()


async def start_listening(
    argv_tail: Sequence[str],
    env: dict[str, str],
    home: Path,
    log_path: Path,
    checker: ProtocolChecker,
    stdin: int | None = None,
) -> Listening:
    argv = [sys.executable, "-m", "kernel", "run", *argv_tail]
    with log_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=stdin if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stderr=stderr,
            env=env,
        )
    return Listening(process, home, log_path, checker)
