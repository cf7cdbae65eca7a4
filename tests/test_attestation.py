"""The attestation plugin over stdio: who is asked, what the model stand-in receives."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from tests.conftest import subprocess_env
from tests.support.attestation_setup import (
    API_KEY,
    TokenClient,
    attested,
    header_of,
)
from tests.support.model_server import (
    ModelServer,
    drop,
    function_call,
    http_error,
    stream,
    text,
)


def _ok(token: str) -> str:
    return json.dumps({"v": 1, "s": 0, "t": token}, separators=(",", ":"))


def _turn(notes: list) -> dict:
    return notes[-1].params["turn"]


async def test_a_capable_client_is_asked_and_its_token_forwarded(serve, model_server: ModelServer):
    model_server.responses.append(text("hello"))
    async with attested(serve, model_server) as agent:
        tokens = TokenClient(agent.client)
        thread = await agent.start()
        _, notes = await agent.turn(thread["thread"]["id"])
        log = agent.served.log()
    assert _turn(notes)["status"] == "completed"
    assert tokens.params == [{}]
    (request,) = model_server.requests
    assert header_of(request) == '{"v":1,"s":0,"t":"tok-1"}'
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"  # untouched by the hook
    assert "tok-1" not in log  # the token is never logged (the log is at debug level)


async def test_a_client_without_the_capability_is_never_asked(serve, model_server: ModelServer):
    async with attested(serve, model_server, capable=False) as agent:
        tokens = TokenClient(agent.client)
        thread = await agent.start()
        _, notes = await agent.turn(thread["thread"]["id"])
    assert _turn(notes)["status"] == "completed"
    assert tokens.asked == 0
    assert header_of(model_server.requests[0]) is None


async def test_every_retry_gets_a_fresh_token(serve, model_server: ModelServer):
    # A 503 (request retry), a stream cut before any output (stream retry), then an answer.
    model_server.responses.extend([http_error(503), drop(*stream(complete=False).steps), text()])
    provider = {"request_max_retries": 1, "stream_max_retries": 1}
    async with attested(serve, model_server, provider=provider) as agent:
        tokens = TokenClient(agent.client)
        thread = await agent.start()
        _, notes = await agent.turn(thread["thread"]["id"])
    assert _turn(notes)["status"] == "completed"
    assert tokens.asked == 3
    assert [header_of(r) for r in model_server.requests] == [
        _ok("tok-1"),
        _ok("tok-2"),
        _ok("tok-3"),
    ]


async def test_each_model_request_of_a_turn_is_attested(serve, model_server: ModelServer):
    # A dynamic tool the model calls, then its answer: two model requests in one turn.
    tool = {"name": "lookup", "description": "look", "inputSchema": {"type": "object"}}
    model_server.responses.extend([function_call("lookup", "{}"), text("done")])
    async with attested(serve, model_server) as agent:
        tokens = TokenClient(agent.client)
        agent.client.on_request(
            "item/tool/call",
            lambda params: {"contentItems": [{"type": "inputText", "text": "x"}], "success": True},
        )
        thread = await agent.start(dynamicTools=[tool])
        _, notes = await agent.turn(thread["thread"]["id"])
    assert _turn(notes)["status"] == "completed"
    assert [header_of(r) for r in model_server.requests] == [_ok("tok-1"), _ok("tok-2")]
    assert tokens.asked == 2


async def test_a_slow_client_times_out_and_the_request_reports_it(serve, model_server: ModelServer):
    async with attested(serve, model_server, settings={"timeout_ms": 200}) as agent:
        tokens = TokenClient(agent.client, mode="slow")
        thread = await agent.start()
        _, notes = await agent.turn(thread["thread"]["id"])
        tokens.release()
    assert _turn(notes)["status"] == "completed"
    assert tokens.asked == 1
    # As the reference: the header says "timed out" (status 1) and carries no token.
    assert header_of(model_server.requests[0]) == '{"v":1,"s":1}'


async def test_interrupting_a_turn_waiting_for_the_client_sends_nothing(
    serve, model_server: ModelServer
):
    async with attested(serve, model_server, settings={"timeout_ms": 60_000}) as agent:
        tokens = TokenClient(agent.client, mode="slow")
        thread_id = (await agent.start())["thread"]["id"]
        turn_id = await agent.begin(thread_id)
        await asyncio.wait_for(tokens.was_asked.wait(), 20)
        await agent.client.request("turn/interrupt", {"threadId": thread_id, "turnId": turn_id})
        notes = await agent.until("turn/completed")
        tokens.release()  # the late answer is ignored
        await agent.drain()
    assert _turn(notes)["status"] == "interrupted"
    assert model_server.requests == []


async def test_an_error_or_a_malformed_answer_is_reported_in_the_header(
    serve, model_server: ModelServer
):
    cases = (("error", '{"v":1,"s":2}'), ("garbage", '{"v":1,"s":4}'), ("huge", '{"v":1,"s":4}'))
    for mode, expected in cases:
        model_server.requests.clear()
        async with attested(serve, model_server) as agent:
            TokenClient(agent.client, mode=mode)
            thread = await agent.start()
            _, notes = await agent.turn(thread["thread"]["id"])
        assert _turn(notes)["status"] == "completed", mode
        assert header_of(model_server.requests[0]) == expected, mode


async def test_required_without_a_capable_client_fails_the_turn_before_sending(
    serve, model_server: ModelServer
):
    settings = {"required": True}
    async with attested(serve, model_server, capable=False, settings=settings) as agent:
        thread = await agent.start()
        _, notes = await agent.turn(thread["thread"]["id"])
    turn = _turn(notes)
    assert turn["status"] == "failed"
    message = turn["error"]["message"]
    assert "attestation is required" in message
    assert "kernel_plugins.attestation.required" in message
    assert "capabilities.requestAttestation" in message
    assert "'mock'" in message
    errors = [n for n in notes if n.method == "error"]
    assert errors and errors[0].params["error"]["message"] == message
    assert model_server.requests == []  # nothing went out


async def test_required_with_a_slow_client_fails_the_turn_naming_the_timeout(
    serve, model_server: ModelServer
):
    settings = {"required": True, "timeout_ms": 200}
    async with attested(serve, model_server, settings=settings) as agent:
        tokens = TokenClient(agent.client, mode="slow")
        thread = await agent.start()
        _, notes = await agent.turn(thread["thread"]["id"])
        tokens.release()
    turn = _turn(notes)
    assert turn["status"] == "failed"
    assert "within 200 ms" in turn["error"]["message"]
    assert "kernel_plugins.attestation.timeout_ms" in turn["error"]["message"]
    assert model_server.requests == []


async def test_required_with_a_client_answering_an_error_quotes_it(
    serve, model_server: ModelServer
):
    async with attested(serve, model_server, settings={"required": True}) as agent:
        TokenClient(agent.client, mode="error")
        thread = await agent.start()
        _, notes = await agent.turn(thread["thread"]["id"])
    turn = _turn(notes)
    assert turn["status"] == "failed"
    assert turn["error"]["additionalDetails"] == "attestation_unavailable"
    assert turn["error"]["message"].endswith(
        "but the client answered attestation/generate with error -32000: device check unavailable"
    )
    assert model_server.requests == []


async def test_required_with_a_working_client_sends_the_token(serve, model_server: ModelServer):
    async with attested(serve, model_server, settings={"required": True}) as agent:
        TokenClient(agent.client)
        thread = await agent.start()
        _, notes = await agent.turn(thread["thread"]["id"])
    assert _turn(notes)["status"] == "completed"
    assert header_of(model_server.requests[0]) == _ok("tok-1")


async def test_a_provider_outside_the_scope_never_gets_the_header(serve, model_server: ModelServer):
    # By default only providers with requires_openai_auth are in scope.
    provider = {"requires_openai_auth": False}
    async with attested(serve, model_server, provider=provider) as agent:
        tokens = TokenClient(agent.client)
        thread = await agent.start()
        _, notes = await agent.turn(thread["thread"]["id"])
    assert _turn(notes)["status"] == "completed"
    assert tokens.asked == 0
    assert header_of(model_server.requests[0]) is None
    # An explicit list replaces the default, even in required mode.
    model_server.requests.clear()
    settings = {"providers": ["elsewhere"], "required": True}
    async with attested(serve, model_server, settings=settings) as agent:
        tokens = TokenClient(agent.client)
        thread = await agent.start()
        _, notes = await agent.turn(thread["thread"]["id"])
    assert _turn(notes)["status"] == "completed"
    assert tokens.asked == 0
    assert header_of(model_server.requests[0]) is None


async def test_an_explicit_provider_list_brings_any_provider_into_scope(
    serve, model_server: ModelServer
):
    provider = {"requires_openai_auth": False}
    settings = {"providers": ["mock"]}
    async with attested(serve, model_server, provider=provider, settings=settings) as agent:
        TokenClient(agent.client, prefix="local")
        thread = await agent.start()
        await agent.turn(thread["thread"]["id"])
    assert header_of(model_server.requests[0]) == _ok("local-1")
    assert "Authorization" not in model_server.requests[0].headers


def test_bad_settings_stop_startup_naming_the_key(tmp_path):
    for override, key in (
        ("kernel_plugins.attestation.timeout_ms=0", "timeout_ms"),
        ('kernel_plugins.attestation.providers=[" "]', "providers"),
        ("kernel_plugins.attestation.required=1", "required"),
    ):
        run = subprocess.run(
            [sys.executable, "-m", "kernel", "run", "--plugins", "attestation", "-c", override],
            capture_output=True,
            text=True,
            env=subprocess_env(tmp_path / "home"),
            stdin=subprocess.DEVNULL,
            timeout=60,
        )
        assert run.returncode != 0, override
        assert f"kernel_plugins.attestation.{key}" in run.stderr, run.stderr
