"""The ``models`` plugin, driven in a real kernel subprocess against the model stand-in.

The ``models_probe`` test plugin calls ``threads_model_provider`` and
``threads_model_stream`` the way the threads family does and returns the
events; ``tests/support/model_server.py`` plays the model API.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import subprocess_env
from tests.support.model_server import (
    ModelServer,
    Scripted,
    chat_chunk,
    chat_reasoning,
    chat_stream,
    chat_text,
    chat_tool_calls,
    chat_usage,
    custom_tool_call,
    drop,
    function_call,
    http_error,
    message_steps,
    reasoning,
    scripted_types,
    stall,
    stream,
    text,
    usage,
)

PLUGINS = ["models", "models_probe"]
BODY: dict[str, Any] = {
    "model": "gpt-5.5",
    "input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
    "tools": [],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "store": False,
}
SECRET = "sk-test-SECRET-0123456789"


def toml(value: Any) -> str:
    """A TOML literal for a ``-c`` override."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    raise TypeError(value)


def provider(pid: str, base_url: str, **fields: Any) -> list[str]:
    """``-c`` overrides defining ``[model_providers.<pid>]``."""
    args = ["-c", f"model_providers.{pid}.base_url={toml(base_url)}"]
    for key, value in fields.items():
        args += ["-c", f"model_providers.{pid}.{key}={toml(value)}"]
    return args


FAST = ["-c", "kernel_plugins.models.retry_base_delay_ms=10"]


@contextlib.asynccontextmanager
async def kernel(serve: Any, args: list[str], env: dict[str, str] | None = None) -> Any:
    async with serve(plugins=PLUGINS, args=[*FAST, *args], env=env) as served:
        await served.client.initialize()
        yield served


async def events_of(
    served: Any,
    pid: str = "mock",
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    close_after: int | None = None,
) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"provider": pid, "body": body or BODY}
    if headers is not None:
        params["headers"] = headers
    if close_after is not None:
        params["closeAfter"] = close_after
    result = await served.client.request("modelsProbe/stream", params, timeout=60)
    assert result["plugin"] == "models"
    return result["events"]


def failure(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The error of the single ``response.failed`` that ends ``events``."""
    assert events, "no events"
    assert [e["type"] for e in events].count("response.failed") == 1, events
    assert events[-1]["type"] == "response.failed", events
    return events[-1]["response"]["error"]


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_kernel(tmp_path: Path, *args: str, home: Path | None = None) -> subprocess.CompletedProcess:
    """``kernel run`` with stdin at EOF: it starts, then exits 0 (or fails to start)."""
    env = subprocess_env(home or tmp_path / "home")
    return subprocess.run(
        [sys.executable, "-m", "kernel", "run", "--plugins", ",".join(PLUGINS), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
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


# -- retries -------------------------------------------------------------------------------


async def test_429_then_success_is_retried(serve, model_server: ModelServer):
    model_server.responses.extend([http_error(429), text("after", " retry")])
    async with kernel(serve, provider("mock", model_server.base_url)) as served:
        events = await events_of(served)
    assert types(events) == list(scripted_types(text("a", "b")))
    assert len(model_server.requests) == 2


async def test_retry_after_is_honoured(serve, model_server: ModelServer):
    model_server.responses.extend([http_error(503, retry_after=1), text("ok")])
    async with kernel(serve, provider("mock", model_server.base_url)) as served:
        events = await events_of(served)
    assert types(events)[-1] == "response.completed"
    first, second = model_server.requests
    assert second.at - first.at >= 0.9  # the base delay alone is 10 ms here


async def test_exhausted_retries_report_status_and_provider_message(
    serve, model_server: ModelServer
):
    busy = {"error": {"message": "engine overloaded xyz", "code": "server_is_overloaded"}}
    model_server.responses.extend([http_error(503, busy) for _ in range(3)])
    args = provider("mock", model_server.base_url, request_max_retries=2)
    async with kernel(serve, args) as served:
        error = failure(await events_of(served))
    assert len(model_server.requests) == 3
    assert error["status"] == 503 and error["code"] == "server_is_overloaded"
    assert "HTTP 503 Service Unavailable: engine overloaded xyz" in error["message"]
    assert "gave up after 2 retries (model_providers.mock.request_max_retries)" in error["message"]


async def test_non_retryable_status_fails_at_once(serve, model_server: ModelServer):
    bad = {"error": {"message": "Unknown parameter: 'foo'.", "code": "unknown_parameter"}}
    model_server.responses.extend([http_error(400, bad), http_error(404, {"detail": "no model"})])
    async with kernel(serve, provider("mock", model_server.base_url)) as served:
        bad_request = failure(await events_of(served))
        not_found = failure(await events_of(served))
    assert len(model_server.requests) == 2
    assert bad_request["code"] == "unknown_parameter" and bad_request["status"] == 400
    assert "HTTP 400 Bad Request: Unknown parameter: 'foo'." in bad_request["message"]
    assert not_found["status"] == 404 and "no model" in not_found["message"]
    assert f"{model_server.base_url}/responses" in not_found["message"]
    assert "model_providers.mock.base_url" in not_found["message"]


async def test_stream_dropped_before_output_is_retried(serve, model_server: ModelServer):
    first = stream(complete=False).steps  # response.created only
    model_server.responses.extend([drop(*first), text("second", " try")])
    async with kernel(serve, provider("mock", model_server.base_url)) as served:
        events = await events_of(served)
    assert types(events) == list(scripted_types(text("a", "b")))
    assert types(events).count("response.created") == 1
    assert "".join(e.get("delta", "") for e in events) == "second try"
    assert len(model_server.requests) == 2


async def test_stream_dropped_after_output_is_reported(serve, model_server: ModelServer):
    steps = stream(*message_steps(["partial"])[:2], complete=False).steps
    model_server.responses.append(drop(*steps))
    args = provider("mock", model_server.base_url, stream_max_retries=3)
    async with kernel(serve, args) as served:
        events = await events_of(served)
    assert types(events)[:3] == [
        "response.created",
        "response.output_item.added",
        "response.output_text.delta",
    ]
    error = failure(events)
    assert error["code"] == "stream_disconnected"
    assert "not retried" in error["message"] and "'mock'" in error["message"]
    assert len(model_server.requests) == 1


async def test_idle_stream_is_retried_then_fails(serve, model_server: ModelServer):
    model_server.responses.extend([stall(), stall()])
    args = provider("mock", model_server.base_url, stream_idle_timeout_ms=300, stream_max_retries=1)
    async with kernel(serve, args) as served:
        error = failure(await events_of(served))
    assert error["code"] == "stream_idle_timeout"
    assert "stream_idle_timeout_ms" in error["message"]
    assert "gave up after 1 retry (model_providers.mock.stream_max_retries)" in error["message"]
    assert len(model_server.requests) == 2
    await model_server.wait_disconnect(2)


async def test_transient_response_failed_before_output_is_retried(serve, model_server: ModelServer):
    failed = {
        "type": "response.failed",
        "response": {"error": {"code": "server_error", "message": "try again in 10ms"}},
    }
    model_server.responses.extend([stream(failed, complete=False), text("fine")])
    async with kernel(serve, provider("mock", model_server.base_url)) as served:
        events = await events_of(served)
    assert types(events)[-1] == "response.completed"
    assert len(model_server.requests) == 2


async def test_unreachable_base_url_names_it(serve):
    url = f"http://127.0.0.1:{free_port()}/v1"
    async with kernel(serve, provider("mock", url, request_max_retries=1)) as served:
        error = failure(await events_of(served))
    assert error["code"] == "connection_failed"
    assert url in error["message"] and "model_providers.mock.base_url" in error["message"]
    assert "after 1 retry" in error["message"]


async def test_aclose_cancels_the_upstream_request(serve, model_server: ModelServer):
    steps = stream(*message_steps(["one", "two"])[:3], complete=False).steps
    model_server.responses.append(stall(*steps))
    async with kernel(serve, provider("mock", model_server.base_url)) as served:
        started = time.monotonic()
        events = await events_of(served, close_after=3)
        assert types(events) == [
            "response.created",
            "response.output_item.added",
            "response.output_text.delta",
        ]
        await model_server.wait_disconnect(1, timeout=30)
        assert time.monotonic() - started < 30
        # The kernel is still healthy and serves the next request.
        model_server.responses.append(text("next"))
        assert types(await events_of(served))[-1] == "response.completed"
    assert model_server.requests[0].disconnected


# -- Chat Completions wire API ---------------------------------------------------------------


CHAT_BODY: dict[str, Any] = {
    "model": "llama3",
    "instructions": "Be brief.",
    "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "D1"}]},
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "D2"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "x"},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Sure."}],
        },
        {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": '{"cmd":"ls"}'},
        {"type": "function_call", "call_id": "c2", "name": "shell", "arguments": '{"cmd":"pwd"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "a.txt"},
        {
            "type": "function_call_output",
            "call_id": "c2",
            "output": [{"type": "input_text", "text": "/tmp"}],
        },
        {"type": "custom_tool_call", "call_id": "c3", "name": "apply_patch", "input": "p"},
        {"role": "user", "content": "thanks"},
    ],
    "tools": [
        {
            "type": "function",
            "name": "shell",
            "description": "Run a command",
            "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}},
            "strict": False,
        },
        {"type": "custom", "name": "apply_patch", "format": {"type": "grammar"}},
        {"type": "web_search"},
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "reasoning": {"effort": "medium"},
    "store": False,
    "include": ["reasoning.encrypted_content"],
}


async def test_chat_request_translation(serve, model_server: ModelServer):
    args = provider("local", model_server.base_url, wire_api="chat")
    async with kernel(serve, args) as served:
        events = await events_of(served, "local", body=CHAT_BODY)
    assert types(events)[-1] == "response.completed"
    (request,) = model_server.requests
    assert request.path == "/v1/chat/completions"
    assert request.body == {
        "model": "llama3",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [
            {"role": "system", "content": "Be brief.\n\nD1\n\nD2"},
            {"role": "user", "content": "list"},
            {
                "role": "assistant",
                "content": "Sure.",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "shell", "arguments": '{"cmd":"ls"}'},
                    },
                    {
                        "id": "c2",
                        "type": "function",
                        "function": {"name": "shell", "arguments": '{"cmd":"pwd"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "a.txt"},
            {"role": "tool", "tool_call_id": "c2", "content": "/tmp"},
            {"role": "user", "content": "thanks"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "shell",
                    "description": "Run a command",
                    "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}},
                },
            }
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
    }
    assert request.headers["Accept"] == "text/event-stream"


async def test_chat_stream_text_usage_and_reasoning(serve, model_server: ModelServer):
    model_server.chat.extend(
        [
            chat_text("Hel", "lo", usage=chat_usage(7, 2, cached=3, reasoning_tokens=1)),
            chat_reasoning(["thinking ", "hard"], ["4", "2"]),
            chat_text("cut", finish_reason="length"),
        ]
    )
    args = provider("local", model_server.base_url, wire_api="chat")
    async with kernel(serve, args) as served:
        answer = await events_of(served, "local")
        thought = await events_of(served, "local")
        cut = await events_of(served, "local")

    assert types(answer) == [
        "response.created",
        "response.output_item.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_item.done",
        "response.completed",
    ]
    added, done = answer[1]["item"], answer[4]["item"]
    assert added["type"] == "message" and added["role"] == "assistant"
    assert {answer[2]["item_id"], answer[3]["item_id"], done["id"]} == {added["id"]}
    assert [answer[2]["delta"], answer[3]["delta"]] == ["Hel", "lo"]
    assert done["content"] == [{"type": "output_text", "text": "Hello", "annotations": []}]
    assert answer[-1]["response"]["usage"] == {
        "input_tokens": 7,
        "input_tokens_details": {"cached_tokens": 3},
        "output_tokens": 2,
        "output_tokens_details": {"reasoning_tokens": 1},
        "total_tokens": 9,
    }

    assert types(thought) == [
        "response.created",
        "response.output_item.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.delta",
        "response.output_item.done",
        "response.output_item.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_item.done",
        "response.completed",
    ]
    assert thought[4]["item"]["type"] == "reasoning"
    assert thought[4]["item"]["content"] == [{"type": "reasoning_text", "text": "thinking hard"}]
    assert thought[8]["item"]["content"][0]["text"] == "42"

    assert cut[-1]["type"] == "response.incomplete"
    assert cut[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


async def test_chat_stream_tool_calls(serve, model_server: ModelServer):
    model_server.chat.append(
        chat_tool_calls(
            ("shell", '{"cmd": "ls -la"}', "call_a"),
            ("read_file", '{"path": "README.md"}', "call_b"),
            usage=chat_usage(20, 8),
        )
    )
    # A server that numbers every call 0 and sends each whole, without arguments for one.
    model_server.chat.append(
        chat_stream(
            chat_chunk({"tool_calls": [{"index": 0, "id": "x1", "function": {"name": "a"}}]}),
            chat_chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "x2", "function": {"name": "b", "arguments": "{}"}}
                    ]
                }
            ),
            chat_chunk(finish_reason="tool_calls"),
        )
    )
    args = provider("local", model_server.base_url, wire_api="chat")
    async with kernel(serve, args) as served:
        events = await events_of(served, "local")
        reused = await events_of(served, "local")
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert [(d["type"], d["call_id"], d["name"], d["arguments"]) for d in done] == [
        ("function_call", "call_a", "shell", '{"cmd": "ls -la"}'),
        ("function_call", "call_b", "read_file", '{"path": "README.md"}'),
    ]
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["usage"]["total_tokens"] == 28
    done = [e["item"] for e in reused if e["type"] == "response.output_item.done"]
    assert [(d["call_id"], d["name"], d["arguments"]) for d in done] == [
        ("x1", "a", "{}"),
        ("x2", "b", "{}"),
    ]


async def test_chat_errors_and_retries(serve, model_server: ModelServer):
    model_server.chat.extend(
        [
            http_error(429, {"error": "slow down"}),
            chat_text("after 429"),
            drop(chat_chunk({"role": "assistant", "content": ""}), chat=True),
            chat_text("after drop"),
            http_error(404, {"error": "model 'llama9' not found"}),
            Scripted([chat_chunk({"content": "x"}), {"error": {"message": "oom"}}], chat=True),
        ]
    )
    args = provider("local", model_server.base_url, wire_api="chat")
    async with kernel(serve, args) as served:
        first = await events_of(served, "local")
        second = await events_of(served, "local")
        missing = failure(await events_of(served, "local"))
        broken = failure(await events_of(served, "local"))
    assert "".join(e.get("delta", "") for e in first) == "after 429"
    assert "".join(e.get("delta", "") for e in second) == "after drop"
    assert types(second).count("response.created") == 1
    assert missing["status"] == 404 and "model 'llama9' not found" in missing["message"]
    assert broken["message"] == "oom"
    assert len(model_server.requests) == 6


# -- configuration ---------------------------------------------------------------------------


REFERENCE_SNIPPET = """
model = "gpt-5.5"
model_provider = "azure"
openai_base_url = "http://127.0.0.1:9/v1"

[model_providers.azure]
name = "Azure"
base_url = "https://example.openai.azure.com/openai"
env_key = "AZURE_OPENAI_API_KEY"
env_key_instructions = "see the Azure portal"
wire_api = "responses"
query_params = { api-version = "2025-04-01-preview" }
http_headers = { "X-Example" = "1" }
env_http_headers = { "X-Env" = "EXAMPLE_ENV" }
request_max_retries = 4
stream_max_retries = 10
stream_idle_timeout_ms = 300000
websocket_connect_timeout_ms = 15000
requires_openai_auth = false
supports_websockets = false

[model_providers.tokened]
name = "Tokened"
base_url = "https://example.test/v1"
experimental_bearer_token = "not-a-real-token"

[model_providers.commanded]
base_url = "https://example.test/v1"
auth = { command = "print-token", args = ["--json"], timeout_ms = 5000, refresh_interval_ms = 0 }

[model_providers.bedrockish]
base_url = "https://example.test/v1"
aws = { profile = "default", region = "us-east-1" }
"""


def test_reference_config_snippet_is_accepted(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(REFERENCE_SNIPPET)
    out = run_kernel(tmp_path, home=home)
    assert out.returncode == 0, out.stderr
    assert "model_providers" not in "\n".join(
        line for line in out.stderr.splitlines() if "no loaded plugin reads" in line
    )


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ['model_providers.mock.wire_api="grpc"'],
            "model_providers.mock.wire_api: expected one of 'responses', 'chat', got 'grpc'",
        ),
        (["model_providers.mock.bogus_key=1"], "model_providers.mock: unknown key(s): bogus_key"),
        (
            ["model_providers.mock.request_max_retries=-1"],
            "request_max_retries: must not be negative",
        ),
        (
            ['model_providers.mock.env_key="K"', 'model_providers.mock.auth.command="x"'],
            "auth: cannot be combined with env_key",
        ),
        (
            ['model_providers.openai.base_url="http://127.0.0.1:9/v1"'],
            "model_providers.openai: `openai` is a built-in provider id",
        ),
        (["kernel_plugins.models.connect_timeout_seconds=0"], "must be greater than 0"),
    ],
)
def test_bad_configuration_stops_startup(tmp_path, overrides, expected):
    args = [arg for override in overrides for arg in ("-c", override)]
    out = run_kernel(tmp_path, *args)
    assert out.returncode != 0
    assert expected in out.stderr, out.stderr


def test_config_set_refuses_a_bad_provider_value(tmp_path):
    env = subprocess_env(tmp_path / "home")

    def config(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "kernel", "config", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )

    ok = config("set", "model_providers.local.base_url", "http://127.0.0.1:11434/v1")
    assert ok.returncode == 0, ok.stderr
    bad = config("set", "model_providers.local.wire_api", "grpc")
    assert bad.returncode != 0
    assert "model_providers.local.wire_api" in bad.stderr
    text_now = (tmp_path / "home" / "config.toml").read_text()
    assert "grpc" not in text_now and "11434" in text_now
