"""The real relay (``contrib/remote_relay``) in a subprocess, and remote clients through it.

:class:`RelayProcess` runs ``python -m kernel_remote_relay serve`` on a
loopback port (chosen on first start, kept across :meth:`restart`), with
the test secrets below. :meth:`RelayProcess.connect` opens a remote client
on an environment: a :class:`kernel.client.Client` whose frames are
validated against the reference schema like every other test client.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from kernel.client import Client
from kernel.wsclient import connect_websocket
from tests.protocol.checker import ProtocolChecker

__all__ = [
    "CLIENT_SECRET",
    "ENROLLMENT_SECRET",
    "RelayProcess",
    "overrides",
    "running_relay",
    "server_args",
    "server_env",
    "wait_status",
]

ENROLLMENT_SECRET = "test-enrollment-secret-0123456789"
CLIENT_SECRET = "test-client-secret-abcdefghijklmn"
_BANNER = re.compile(r"kernel-relay listening on http://127\.0\.0\.1:(\d+)")


class RelayProcess:
    """One relay subprocess; its log is kept across restarts."""

    def __init__(self, log_path: Path, state_dir: Path | None, checker: ProtocolChecker) -> None:
        self.log_path = log_path
        self.state_dir = state_dir
        self.checker = checker
        self.port = 0
        self.process: asyncio.subprocess.Process | None = None
        self.streams: list[Any] = []
        self.clients: list[Client] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client_url(self, environment_id: str) -> str:
        return (
            f"ws://127.0.0.1:{self.port}/wham/remote/control/environments/{environment_id}/connect"
        )

    def token(self, environment_id: str) -> str:
        from kernel_remote_relay.credentials import client_token  # the contrib package

        return client_token(CLIENT_SECRET.encode(), environment_id)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def start(self, *extra: str) -> None:
        argv = [sys.executable, "-m", "kernel_remote_relay", "serve"]
        argv += ["--listen", f"127.0.0.1:{self.port}", "--log-level", "debug", *extra]
        if self.state_dir is not None:
            argv += ["--state-dir", str(self.state_dir)]
        env = {
            **os.environ,
            "KERNEL_RELAY_ENROLLMENT_SECRET": ENROLLMENT_SECRET,
            "KERNEL_RELAY_CLIENT_SECRET": CLIENT_SECRET,
        }
        seen = len(_BANNER.findall(self.log()))
        with self.log_path.open("ab") as stderr:
            self.process = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stderr=stderr, env=env
            )
        async with asyncio.timeout(20):
            while len(found := _BANNER.findall(self.log())) <= seen:
                if self.process.returncode is not None:
                    raise RuntimeError(f"relay exited early:\n{self.log()}")
                await asyncio.sleep(0.05)
        self.port = int(found[-1])

    async def stop(self) -> None:
        process = self.process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()

    async def restart(self, *extra: str) -> None:
        """Stop, then start again on the same port (and state directory)."""
        await self.stop()
        await self.start(*extra)

    async def connect(self, environment_id: str, token: str | None = None) -> Client:
        """A remote client of ``environment_id``, frames checked against the schema."""
        from tests.conftest import CheckedStream

        stream = CheckedStream(
            await connect_websocket(
                self.client_url(environment_id),
                token=self.token(environment_id) if token is None else token,
            ),
            self.checker,
        )
        self.streams.append(stream)
        client = Client(stream)
        self.clients.append(client)
        return client

    def violations(self) -> list[str]:
        return [str(v) for stream in self.streams for v in stream.violations]


@contextlib.asynccontextmanager
async def running_relay(
    tmp_path: Path, checker: ProtocolChecker, *, persistent: bool = True, name: str = "relay"
) -> AsyncIterator[RelayProcess]:
    """A started relay, stopped at the end; fails the test on schema violations."""
    relay = RelayProcess(
        tmp_path / f"{name}.log", tmp_path / f"{name}-state" if persistent else None, checker
    )
    await relay.start()
    try:
        yield relay
    finally:
        for client in relay.clients:
            await client.close(timeout=2.0)
        await relay.stop()
    problems = relay.violations()
    assert not problems, "frames violating the reference schema:\n" + "\n".join(problems)


def overrides(base_url: str, *extra: str) -> list[str]:
    """Config overrides pointing remote control at ``base_url``, reconnecting fast."""
    return [
        f'kernel_plugins.remote_control.base_url="{base_url}/"',
        "kernel_plugins.remote_control.reconnect_max_seconds=1",
        *extra,
    ]


def server_args(base_url: str, *extra: str) -> list[str]:
    """``kernel run`` arguments for :func:`overrides`."""
    return [arg for override in overrides(base_url, *extra) for arg in ("-c", override)]


def server_env(secret: str = ENROLLMENT_SECRET) -> dict[str, str]:
    """The environment a server needs to enroll."""
    return {"KERNEL_REMOTE_CONTROL_SECRET": secret}


async def wait_status(client: Client, status: str, timeout: float = 30.0) -> dict[str, Any]:
    """Skip ``remoteControl/status/changed`` notifications until one says ``status``."""
    async with asyncio.timeout(timeout):
        while True:
            note = await client.next_notification("remoteControl/status/changed", timeout=timeout)
            if note.params["status"] == status:
                return note.params
