"""Driving the mcp family end to end: a kernel with threads, models and mcp, real MCP servers.

``mcp_agent(serve, model_server, servers=...)`` starts ``kernel run`` over
stdio with the model stand-in as provider ``mock`` and one
``[mcp_servers.<name>]`` per entry of ``servers`` (given as ``-c``
overrides); ``stdio_server(name)`` configures ``tests/support/mcp_server.py``
as a stdio server, ``http_mcp_server()`` runs it over streamable HTTP in a
subprocess of the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.support.agent import Agent, provider_args
from tests.support.model_server import Scripted, function_call

__all__ = [
    "MCP_PLUGINS",
    "SERVER_SCRIPT",
    "config_toml",
    "http_mcp_server",
    "mcp_agent",
    "mcp_call",
    "server_args",
    "stdio_server",
    "toml",
]

SERVER_SCRIPT = Path(__file__).with_name("mcp_server.py")
MCP_PLUGINS = ("threads", "models", "mcp")


def toml(value: Any) -> str:
    """``value`` as an inline TOML value (for ``-c`` overrides)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Sequence):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {toml(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML for {value!r}")


def stdio_server(name: str = "demo", marker: str | None = None, **fields: Any) -> dict[str, Any]:
    """The table of a stdio ``mcp_server.py`` (``fields`` added or overriding)."""
    args = [str(SERVER_SCRIPT), "--name", name]
    if marker is not None:
        args += ["--marker", marker]
    return {"command": sys.executable, "args": args, **fields}


def server_args(servers: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """``-c mcp_servers.<name>={...}`` for each server."""
    out: list[str] = []
    for name, table in servers.items():
        out += ["-c", f"mcp_servers.{name}={toml(table)}"]
    return out


def config_toml(servers: Mapping[str, Mapping[str, Any]]) -> str:
    """A config.toml holding ``servers`` as ``[mcp_servers]`` entries."""
    lines = ["[mcp_servers]"] + [f"{name} = {toml(table)}" for name, table in servers.items()]
    return "\n".join(lines) + "\n"


def mcp_call(
    tool: str, arguments: Any = None, call_id: str = "c1", server: str = "demo"
) -> Scripted:
    """The model calls ``tool`` of ``server`` (in its namespace)."""
    raw = "" if arguments is None else json.dumps(arguments)
    return function_call(tool, raw, call_id=call_id, namespace=f"mcp__{server}")


@contextlib.asynccontextmanager
async def mcp_agent(
    serve: Any,
    model_server: Any,
    servers: Mapping[str, Mapping[str, Any]],
    *,
    args: Sequence[str] = (),
    plugins: Sequence[str] = MCP_PLUGINS,
    home: Path | None = None,
    env: dict[str, str] | None = None,
    close: bool = True,
) -> AsyncIterator[Agent]:
    """A kernel with the mcp family and ``servers`` configured; an initialized :class:`Agent`.

    ``close=False`` leaves the kernel process to the test (to signal it).
    """
    argv = [*provider_args(model_server.base_url), *server_args(servers), *args]
    async with serve(plugins=list(plugins), args=argv, home=home, env=env, close=close) as served:
        await served.client.initialize(experimental=True)
        yield Agent(served.client, served)


@contextlib.asynccontextmanager
async def http_mcp_server(
    token: str | None = None, log: Path | None = None, marker: str | None = None
) -> AsyncIterator[str]:
    """``mcp_server.py --http`` in a subprocess; yields its ``/mcp`` URL."""
    argv = [sys.executable, str(SERVER_SCRIPT), "--http"]
    env = dict(os.environ)
    if token is not None:
        env["MCP_HTTP_TEST_TOKEN"] = token
        argv += ["--token-env", "MCP_HTTP_TEST_TOKEN"]
    if marker is not None:
        argv += ["--marker", marker]
    if log is not None:
        env["MCP_TEST_LOG"] = str(log)
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, env=env, start_new_session=True
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        port = int(line.split()[1])
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
