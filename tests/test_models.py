"""The ``models`` plugin in a kernel subprocess: providers, the Responses wire API, credentials."""

from __future__ import annotations

import json
import sys
from typing import Any

from tests.support.model_server import (
    ModelServer,
    Scripted,
    custom_tool_call,
    function_call,
    http_error,
    message_steps,
    reasoning,
    scripted_types,
    stream,
    text,
    usage,
)
from tests.support.models_calls import (
    BODY,
    SECRET,
    events_of,
    failure,
    kernel,
    provider,
    toml,
    types,
)

# -- providers ---------------------------------------------------------------------------


async def test_providers_builtin_configured_and_unknown(serve, model_server: ModelServer):
    args = provider("mock", model_server.base_url + "/", name="Mock", wire_api="chat")
    async with kernel(serve, args) as served:

        async def describe(pid: str) -> Any:
            return await served.client.request("modelsProbe/provider", {"provider": pid})

        assert await describe("mock") == {
            "plugin": "models",
            "provider": {
                "id": "mock",
                "name": "Mock",
                "wireApi": "chat",
                "requiresOpenaiAuth": False,
                "baseUrl": model_server.base_url,  # the trailing slash is dropped
            },
        }
        openai = (await describe("openai"))["provider"]
        assert openai == {
            "id": "openai",
            "name": "OpenAI",
            "wireApi": "responses",
            "requiresOpenaiAuth": True,
            "baseUrl": "https://api.openai.com/v1",
        }
        ollama = (await describe("ollama"))["provider"]
        assert ollama["baseUrl"] == "http://localhost:11434/v1"
        assert ollama["wireApi"] == "responses"
        lmstudio = (await describe("lmstudio"))["provider"]
        assert lmstudio["baseUrl"] == "http://localhost:1234/v1"
        assert await describe("nope") == {"plugin": None, "provider": None}
        result = await served.client.request(
            "modelsProbe/stream", {"provider": "nope", "body": BODY}
        )
        assert result == {"plugin": None, "events": []}
    assert model_server.requests == []


# -- Responses wire API ------------------------------------------------------------------


async def test_responses_stream_events_headers_and_body(serve, model_server: ModelServer):
    scripted = text("Hel", "lo", usage=usage(12, 3, cached=4))
    model_server.responses.append(scripted)
    args = provider(
        "mock",
        model_server.base_url,
        query_params={"api-version": "2025-04-01"},
        http_headers={"X-Static": "static-value"},
        env_http_headers={"X-From-Env": "MOCK_HEADER_VALUE", "X-Unset": "MOCK_UNSET_VARIABLE"},
    )
    env = {"MOCK_HEADER_VALUE": "env-value"}
    async with kernel(serve, args, env=env) as served:
        events = await events_of(served, headers={"session-id": "thread-1", "originator": "t"})
        log = served.log()
    assert types(events) == list(scripted_types(scripted))
    assert [e["delta"] for e in events if e["type"] == "response.output_text.delta"] == [
        "Hel",
        "lo",
    ]
    assert events[-1]["response"]["usage"]["input_tokens"] == 12
    assert events == scripted.steps  # passed through unchanged

    (request,) = model_server.requests
    assert request.method == "POST" and request.path == "/v1/responses"
    assert request.query == {"api-version": "2025-04-01"}
    assert request.body == {**BODY, "stream": True}
    headers = request.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["Accept"] == "text/event-stream"
    assert headers["session-id"] == "thread-1" and headers["originator"] == "t"
    assert headers["X-Static"] == "static-value"
    assert headers["X-From-Env"] == "env-value"
    assert "X-Unset" not in headers
    assert "Authorization" not in headers  # no key configured
    assert "Traceback" not in log


async def test_reasoning_tool_calls_and_custom_tools_pass_through(serve, model_server: ModelServer):
    scripts = [
        reasoning(summary=["Let me ", "think"], content=["raw ", "thoughts"], answer=["done"]),
        function_call("exec_command", '{"cmd": "ls"}', call_id="call_1", namespace="shell"),
        custom_tool_call("apply_patch", "*** Begin Patch\n*** End Patch\n", call_id="call_2"),
    ]
    model_server.responses.extend(scripts)
    async with kernel(serve, provider("mock", model_server.base_url)) as served:
        for scripted in scripts:
            assert await events_of(served) == scripted.steps
    fc = scripts[1].steps[-2]["item"]
    assert fc["namespace"] == "shell" and fc["call_id"] == "call_1"


async def test_sse_framing_is_parsed_robustly(serve, model_server: ModelServer):
    delta = {"type": "response.output_text.delta", "item_id": "m", "delta": "x\ny"}
    completed = {"type": "response.completed", "response": {"id": "r", "usage": usage()}}
    model_server.responses.append(
        Scripted(
            steps=[
                {"raw": ": keep-alive comment\r\n\r\n"},
                {"raw": "event: response.created\r\n"},
                {"raw": 'data: {"response":\r\ndata: {"id": "r"}}\r\n\r\n'},
                {"raw": "data: " + json.dumps(delta) + "\n\n"},
                {"raw": "event: response.in_progress\ndata: not json\n\n"},
                {"raw": "data: " + json.dumps(completed)},  # no final blank line
            ]
        )
    )
    async with kernel(serve, provider("mock", model_server.base_url)) as served:
        events = await events_of(served)
    assert events == [
        {"type": "response.created", "response": {"id": "r"}},  # type from the event: line
        delta,
        completed,
    ]


async def test_error_event_becomes_one_response_failed(serve, model_server: ModelServer):
    model_server.responses.append(
        stream(
            *message_steps(["partial"]),
            {"type": "error", "code": "context_length_exceeded", "message": "too long"},
            complete=False,
        )
    )
    async with kernel(serve, provider("mock", model_server.base_url)) as served:
        events = await events_of(served)
    assert failure(events) == {"code": "context_length_exceeded", "message": "too long"}


async def test_json_answer_to_a_stream_request_is_turned_into_events(
    serve, model_server: ModelServer
):
    item = {"id": "m1", "type": "message", "role": "assistant", "content": []}
    answer = {"id": "r1", "object": "response", "status": "completed", "output": [item]}
    model_server.responses.append(Scripted(body={**answer, "usage": usage()}))
    async with kernel(serve, provider("mock", model_server.base_url)) as served:
        events = await events_of(served)
    assert types(events) == [
        "response.created",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[1]["item"] == item


# -- credentials ---------------------------------------------------------------------------


async def test_api_key_is_sent_and_never_logged(serve, model_server: ModelServer):
    rejected = http_error(401, {"error": {"message": f"Incorrect API key {SECRET}", "code": None}})
    model_server.responses.extend([text("ok"), rejected])
    args = provider("mock", model_server.base_url, env_key="MOCK_API_KEY")
    async with kernel(serve, args, env={"MOCK_API_KEY": SECRET}) as served:
        assert types(await events_of(served))[-1] == "response.completed"
        events = await events_of(served)
        log = served.log()
    assert model_server.requests[0].headers["Authorization"] == f"Bearer {SECRET}"
    error = failure(events)
    assert error["status"] == 401 and error["code"] == "unauthorized"
    assert "rejected the API key" in error["message"] and "HTTP 401" in error["message"]
    assert "MOCK_API_KEY" in error["message"]
    assert SECRET not in json.dumps(events)
    assert "[redacted]" in error["message"]
    assert SECRET not in log
    assert len(model_server.requests) == 2  # a 401 is not retried


async def test_missing_key_names_the_variable(serve, model_server: ModelServer):
    args = [
        *provider(
            "mock",
            model_server.base_url,
            env_key="MOCK_MISSING_KEY",
            env_key_instructions="create one at https://example.test/keys",
        ),
        "-c",
        f"openai_base_url={toml(model_server.base_url)}",
    ]
    async with kernel(serve, args, env={"OPENAI_API_KEY": " "}) as served:
        custom = failure(await events_of(served))
        openai = failure(await events_of(served, "openai"))
    assert custom["code"] == "missing_api_key"
    assert "MOCK_MISSING_KEY" in custom["message"]
    assert "model_providers.mock.env_key" in custom["message"]
    assert "https://example.test/keys" in custom["message"]
    assert openai["code"] == "missing_api_key" and "OPENAI_API_KEY" in openai["message"]
    assert model_server.requests == []


async def test_openai_builtin_reads_openai_api_key_and_base_url(serve, model_server: ModelServer):
    args = ["-c", f"openai_base_url={toml(model_server.base_url)}"]
    env = {"OPENAI_API_KEY": SECRET, "OPENAI_ORGANIZATION": "org-1", "OPENAI_PROJECT": ""}
    async with kernel(serve, args, env=env) as served:
        assert types(await events_of(served, "openai"))[-1] == "response.completed"
        log = served.log()
    headers = model_server.requests[0].headers
    assert headers["Authorization"] == f"Bearer {SECRET}"
    assert headers["OpenAI-Organization"] == "org-1"
    assert "OpenAI-Project" not in headers  # a blank variable is not sent
    assert headers["version"] == "0.1.0"
    assert SECRET not in log


async def test_auth_command_provides_the_token(serve, model_server: ModelServer, tmp_path):
    args = [
        *provider("mock", model_server.base_url),
        "-c",
        f"model_providers.mock.auth.command={toml(sys.executable)}",
        "-c",
        "model_providers.mock.auth.args=" + toml(["-c", "print('tok-from-command')"]),
    ]
    async with kernel(serve, args) as served:
        assert types(await events_of(served))[-1] == "response.completed"
    assert model_server.requests[0].headers["Authorization"] == "Bearer tok-from-command"
