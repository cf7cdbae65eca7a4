"""The ``models`` plugin: the Chat Completions wire API, and provider configuration."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import subprocess_env
from tests.support.model_chat import (
    chat_chunk,
    chat_reasoning,
    chat_stream,
    chat_text,
    chat_tool_calls,
    chat_usage,
)
from tests.support.model_server import ModelServer, Scripted, drop, http_error
from tests.support.models_calls import (
    events_of,
    failure,
    kernel,
    provider,
    run_kernel,
    types,
)

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
