"""Driving the reference's codex TUI against a kernel: find it, run it under tmux, record its calls.

* :func:`codex_cli`: the ``codex`` executable (``KERNEL_CODEX_CLI``, then
  ``codex`` on PATH, then the copy ``.ci/run`` installs), or None;
* :class:`Recorder`: a websocket proxy between the TUI and the kernel that
  records every frame both ways, so a test can say which requests the TUI
  made and how each was answered;
* :class:`Tmux`: one detached tmux session: type keys, read the screen,
  wait until the screen shows something.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.protocol.checker import ProtocolViolation

__all__ = ["Recorder", "Tmux", "codex_cli"]

REPO = Path(__file__).resolve().parent.parent.parent
CI_COPY = REPO / ".ci" / "codex" / "node_modules" / ".bin" / "codex"


def codex_cli() -> str | None:
    """The codex CLI to drive, or None when it is not installed here."""
    configured = os.environ.get("KERNEL_CODEX_CLI")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    found = shutil.which("codex")
    if found:
        return found
    return str(CI_COPY) if os.access(CI_COPY, os.X_OK) else None


class Recorder:
    """A websocket proxy that records ``(direction, message)`` for every frame."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.frames: list[tuple[str, dict[str, Any]]] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Recorder:
        app = web.Application()
        app.router.add_get("/", self._proxy)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _note(self, direction: str, data: str) -> None:
        with contextlib.suppress(ValueError):
            self.frames.append((direction, json.loads(data)))

    async def _proxy(self, request: web.Request) -> web.WebSocketResponse:
        client = web.WebSocketResponse(max_msg_size=0)
        await client.prepare(request)
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(self.upstream, max_msg_size=0) as server,
        ):

            async def downstream() -> None:
                async for message in server:
                    if message.type == aiohttp.WSMsgType.TEXT:
                        self._note("server", message.data)
                        await client.send_str(message.data)
                await client.close()

            relay = asyncio.get_running_loop().create_task(downstream())
            async for message in client:
                if message.type == aiohttp.WSMsgType.TEXT:
                    self._note("client", message.data)
                    await server.send_str(message.data)
            relay.cancel()
        return client

    def requests(self) -> list[str]:
        """The methods of the client's requests, in order."""
        return [
            m["method"] for d, m in self.frames if d == "client" and "id" in m and "method" in m
        ]

    def violations(self, checker: Any) -> list[str]:
        """Every frame the server sent the TUI, checked against the reference schema.

        ``checker`` is the tests' :class:`tests.protocol.checker.ProtocolChecker`;
        results are checked against the method the TUI asked for.
        """
        pending: dict[Any, str] = {}
        found = []
        for direction, message in self.frames:
            if direction == "client":
                if isinstance(message, dict) and "method" in message and "id" in message:
                    pending[message["id"]] = message["method"]
                continue
            try:
                checker.check_server_frame(message, pending)
            except ProtocolViolation as violation:
                found.append(str(violation))
        return found

    def errors(self) -> dict[str, dict[str, Any]]:
        """Method -> error, for every client request the server answered with an error."""
        asked = {
            m["id"]: m["method"]
            for d, m in self.frames
            if d == "client" and "method" in m and "id" in m
        }
        return {
            asked[m["id"]]: m["error"]
            for d, m in self.frames
            if d == "server" and "error" in m and m.get("id") in asked
        }


class Tmux:
    """One detached tmux session running a command; see the module docstring."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.name = f"kernel-tui-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        line = f"cd {shlex.quote(str(cwd))} && env {exports} {shlex.join(command)}"
        # The session stays after the command so its exit status can be read.
        script = f"{line}; echo EXITED $?; sleep 120"
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", self.name, "-x", "120", "-y", "45", script],
            check=True,
        )

    def screen(self) -> str:
        out = subprocess.run(
            ["tmux", "capture-pane", "-t", self.name, "-p"],
            capture_output=True,
            text=True,
            check=False,
        )
        return out.stdout

    def type(self, text: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, "-l", text], check=True)

    def press(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    async def wait_for(self, needle: str, timeout: float = 30.0) -> str:
        """The screen, once it shows ``needle``; fails with the last screen otherwise."""
        screen = ""
        try:
            async with asyncio.timeout(timeout):
                while needle not in (screen := self.screen()):
                    await asyncio.sleep(0.2)
        except TimeoutError:
            raise AssertionError(f"the TUI never showed {needle!r}; screen:\n{screen}") from None
        return screen

    async def enter(self, text: str, prompt: str = "\u203a ") -> None:
        """Type ``text`` into the composer and submit it.

        While the TUI is still loading its session it drops keystrokes, so
        the text is typed again until the composer shows it.
        """
        for _ in range(20):
            self.type(text)
            try:
                await self.wait_for(prompt + text, 2)
            except AssertionError:
                self.press("C-u")  # clear whatever part arrived, then try again
                continue
            self.press("Enter")
            return
        raise AssertionError(f"the composer never took {text!r}; screen:\n{self.screen()}")

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], check=False)
