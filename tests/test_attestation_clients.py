"""Which client is asked when several are connected (websocket, real subprocess)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from kernel.client import Client
from tests.support.agent import Agent
from tests.support.attestation_setup import ENV, PLUGINS, TokenClient, argv, header_of
from tests.support.model_server import ModelServer


@contextlib.asynccontextmanager
async def two_clients(
    listen: Any, model_server: ModelServer, a_capable: bool, b_capable: bool, **settings: Any
) -> AsyncIterator[tuple[Client, Client]]:
    async with listen(plugins=PLUGINS, args=argv(model_server, settings), env=ENV) as server:
        a, b = await server.connect(), await server.connect()
        try:
            for client, capable in ((a, a_capable), (b, b_capable)):
                caps = {"requestAttestation": True} if capable else {}
                await client.initialize(experimental=True, capabilities=caps)
            yield a, b
        finally:
            await asyncio.gather(a.close(), b.close())


async def _shared_turn(a: Client, b: Client) -> dict[str, Any]:
    """A starts a thread, B subscribes to it (thread/resume), A runs a turn."""
    thread = await a.request("thread/start", {"cwd": "/tmp"})
    thread_id = thread["thread"]["id"]
    await b.request("thread/resume", {"threadId": thread_id})
    _, notes = await Agent(a, None).turn(thread_id)
    return notes[-1].params["turn"]


async def test_the_turns_own_client_is_asked_first(listen, model_server: ModelServer):
    async with two_clients(listen, model_server, True, True) as (a, b):
        tokens_a = TokenClient(a, prefix="a")
        tokens_b = TokenClient(b, prefix="b")
        turn = await _shared_turn(a, b)
    assert turn["status"] == "completed"
    assert (tokens_a.asked, tokens_b.asked) == (1, 0)
    assert header_of(model_server.requests[0]) == '{"v":1,"s":0,"t":"a-1"}'


async def test_another_subscriber_that_offers_it_is_asked(listen, model_server: ModelServer):
    async with two_clients(listen, model_server, False, True) as (a, b):
        tokens_a = TokenClient(a, prefix="a")
        tokens_b = TokenClient(b, prefix="b")
        turn = await _shared_turn(a, b)
    assert turn["status"] == "completed"
    assert (tokens_a.asked, tokens_b.asked) == (0, 1)
    assert header_of(model_server.requests[0]) == '{"v":1,"s":0,"t":"b-1"}'


async def test_a_capable_client_of_another_thread_is_not_asked(listen, model_server: ModelServer):
    async with two_clients(listen, model_server, False, True, required=True) as (a, b):
        tokens_b = TokenClient(b, prefix="b")
        await b.request("thread/start", {"cwd": "/tmp"})  # B is busy elsewhere
        thread = await a.request("thread/start", {"cwd": "/tmp"})
        _, notes = await Agent(a, None).turn(thread["thread"]["id"])
    turn = notes[-1].params["turn"]
    assert turn["status"] == "failed"
    assert "no client of this thread offers it" in turn["error"]["message"]
    assert tokens_b.asked == 0
    assert model_server.requests == []
