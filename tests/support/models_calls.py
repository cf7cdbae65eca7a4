"""Helpers shared by the models plugin tests (tests/test_models*.py).

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
from pathlib import Path
from typing import Any

from tests.conftest import subprocess_env

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
