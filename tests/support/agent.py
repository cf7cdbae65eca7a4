"""Driving the threads family as a client does, against the model stand-in.

``agent_server(serve, model_server, ...)`` starts ``kernel run --plugins
threads,models`` over stdio with a provider ``mock`` pointed at the
stand-in; :class:`Agent` wraps its client with the calls tests repeat:
start a thread, run a turn to its end, collect notifications in order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from kernel.client import Client, Notification

__all__ = ["Agent", "agent_server", "provider_args"]


def provider_args(base_url: str, wire_api: str = "responses", **extra: Any) -> list[str]:
    """``-c`` options configuring provider ``mock`` at ``base_url`` (no retries)."""
    fields = {
        "name": "mock",
        "base_url": base_url,
        "wire_api": wire_api,
        "request_max_retries": 0,
        "stream_max_retries": 0,
        **extra,
    }
    table = ", ".join(f"{k} = {_toml(v)}" for k, v in fields.items())
    return ["-c", 'model_provider="mock"', "-c", f"model_providers.mock={{{table}}}"]


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


class Agent:
    """A client of the threads family with turn helpers."""

    def __init__(self, client: Client, served: Any) -> None:
        self.client = client
        self.served = served

    async def start(self, **params: Any) -> dict[str, Any]:
        """``thread/start`` (cwd defaults to /tmp); returns the result."""
        params.setdefault("cwd", "/tmp")
        return await self.client.request("thread/start", params)

    async def begin(self, thread_id: str, text: str = "hi") -> str:
        """Start a turn without waiting for it; returns its id."""
        result = await self.client.request(
            "turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": text}]}
        )
        return str(result["turn"]["id"])

    async def turn(
        self, thread_id: str, text: str = "hi", timeout: float = 20, **params: Any
    ) -> tuple[dict[str, Any], list[Notification]]:
        """Start a turn and collect its notifications through ``turn/completed``."""
        result = await self.client.request(
            "turn/start",
            {"threadId": thread_id, "input": [{"type": "text", "text": text}], **params},
        )
        notes = await self.until("turn/completed", timeout)
        return result, notes

    async def until(self, method: str, timeout: float = 20) -> list[Notification]:
        """Every notification up to and including the next ``method``."""
        seen: list[Notification] = []
        async with asyncio.timeout(timeout):
            while True:
                note = await self.client.next_notification(timeout=timeout)
                seen.append(note)
                if note.method == method:
                    return seen

    async def drain(self, quiet: float = 0.2) -> list[Notification]:
        """Notifications until none arrives for ``quiet`` seconds."""
        seen: list[Notification] = []
        while True:
            try:
                seen.append(await self.client.next_notification(timeout=quiet))
            except TimeoutError:
                return seen


def methods(notes: Sequence[Notification]) -> list[str]:
    """The methods of ``notes``, with item types for item notifications."""
    out = []
    for note in notes:
        if note.method in ("item/started", "item/completed"):
            out.append(f"{note.method}[{note.params['item']['type']}]")
        else:
            out.append(note.method)
    return out


@contextlib.asynccontextmanager
async def agent_server(
    serve: Any,
    model_server: Any,
    *,
    args: Sequence[str] = (),
    plugins: Sequence[str] = ("threads", "models"),
    home: Path | None = None,
    experimental: bool = True,
    wire_api: str = "responses",
    env: dict[str, str] | None = None,
) -> AsyncIterator[Agent]:
    """A kernel serving threads against ``model_server``; yields an initialized :class:`Agent`."""
    argv = [*provider_args(model_server.base_url, wire_api), *args]
    async with serve(plugins=list(plugins), args=argv, home=home, env=env) as served:
        await served.client.initialize(experimental=experimental)
        yield Agent(served.client, served)


__all__ += ["methods"]
