"""Driving the realtime family as a voice client does, against the Realtime API stand-in.

``voice_server(serve, backend, ...)`` starts ``kernel run --plugins
threads,models,realtime`` over stdio with provider ``mock`` (its key in
``REALTIME_TEST_KEY``); the provider's base URL is the backend stand-in, or
the model stand-in when one is given (then ``experimental_realtime_ws_base_url``
points at the backend). It yields a :class:`Voice`: the client plus the
calls tests repeat.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from kernel.client import Client, Notification
from tests.support.agent import Agent, provider_args
from tests.support.realtime_backend import BackendConnection, RealtimeBackend

__all__ = [
    "KEY",
    "KEY_VARIABLE",
    "PLUGINS",
    "Voice",
    "methods_of",
    "realtime",
    "realtime_args",
    "voice_server",
]

KEY = "sk-realtime-test-key"
KEY_VARIABLE = "REALTIME_TEST_KEY"
PLUGINS = ("threads", "models", "realtime")
PCM = "AAABAAIAAwA="  # four 16-bit samples, base64


def realtime_args(
    backend: RealtimeBackend, model_url: str | None = None, **provider: Any
) -> list[str]:
    """``-c`` options: provider ``mock`` and, with ``model_url``, the realtime base URL.

    ``provider`` adds fields to the provider's table (a None value removes one).
    """
    fields = {k: v for k, v in {"env_key": KEY_VARIABLE, **provider}.items() if v is not None}
    base_url = fields.pop("base_url", None) or model_url or backend.base_url
    args = provider_args(base_url, **fields)
    if model_url is not None:
        args += ["-c", f'experimental_realtime_ws_base_url="{backend.root}"']
    return args


class Voice(Agent):
    """A client of the realtime family; see the module docstring."""

    def __init__(self, client: Client, served: Any, backend: RealtimeBackend) -> None:
        super().__init__(client, served)
        self.backend = backend

    async def thread(self) -> str:
        """A new thread (its ``thread/started`` consumed); returns its id."""
        thread_id = str((await self.start())["thread"]["id"])
        await self.until("thread/started")
        return thread_id

    async def realtime(self, thread_id: str, **params: Any) -> dict[str, Any]:
        """``thread/realtime/start`` (audio output unless given); returns the answer."""
        params.setdefault("outputModality", "audio")
        return await self.client.request("thread/realtime/start", {"threadId": thread_id, **params})

    async def session(
        self, thread_id: str, index: int = 0, **params: Any
    ) -> tuple[list[Notification], BackendConnection]:
        """Start a session and wait for ``started``; its notes and its backend connection."""
        assert await self.realtime(thread_id, **params) == {}
        notes = await self.until("thread/realtime/started")
        conn = await self.backend.wait_connection(index)
        await conn.wait_for("session.update")
        return notes, conn

    async def call(self, method: str, **params: Any) -> Any:
        """Any ``thread/realtime/<method>`` request."""
        return await self.client.request(f"thread/realtime/{method}", params)

    async def audio(self, thread_id: str, data: str = PCM, **chunk: Any) -> Any:
        """``appendAudio`` of 24 kHz mono ``data``."""
        audio = {"data": data, "sampleRate": 24_000, "numChannels": 1, **chunk}
        return await self.call("appendAudio", threadId=thread_id, audio=audio)


def methods_of(notes: Sequence[Notification]) -> list[str]:
    """The methods of ``notes``, in order."""
    return [n.method for n in notes]


def realtime(notes: Sequence[Notification]) -> list[Notification]:
    """Only the ``thread/realtime/*`` notifications of ``notes``."""
    return [n for n in notes if n.method.startswith("thread/realtime/")]


@contextlib.asynccontextmanager
async def voice_server(
    serve: Any,
    backend: RealtimeBackend,
    *,
    model_url: str | None = None,
    args: Sequence[str] = (),
    plugins: Sequence[str] = PLUGINS,
    env: dict[str, str] | None = None,
    key: bool = True,
    experimental: bool = True,
    capabilities: dict[str, Any] | None = None,
    provider: dict[str, Any] | None = None,
) -> AsyncIterator[Voice]:
    """A kernel serving realtime against ``backend``; yields an initialized :class:`Voice`."""
    environment = {KEY_VARIABLE: KEY} if key else {}
    environment.update(env or {})
    argv = [*realtime_args(backend, model_url, **(provider or {})), *args]
    async with serve(plugins=list(plugins), args=argv, env=environment) as served:
        await served.client.initialize(experimental=experimental, capabilities=capabilities)
        yield Voice(served.client, served, backend)
