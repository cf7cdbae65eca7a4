"""A real MCP server for the mcp family's tests, written with the official SDK.

Run as a program::

    python mcp_server.py [--name NAME] [--marker M]          # stdio
    python mcp_server.py --http [--token-env VAR] [--marker M]  # streamable HTTP

Over HTTP it binds 127.0.0.1 on a free port, prints ``port <n>`` on stdout
and serves ``/mcp``; with ``--token-env VAR`` every request must carry
``Authorization: Bearer <$VAR>`` (401 otherwise). ``--marker`` is ignored:
it makes the process findable in /proc by tests that count processes.

With ``MCP_TEST_LOG`` set, the server appends one JSON line per event
(``{"event": "elicited", "action": ..., "content": ...}``, ``{"event":
"interrupted", "tool": ...}``) so tests can check what the MCP side saw.

Tools: ``echo`` (no annotations: needs approval), ``read_echo`` (read-only),
``plain`` (unstructured text), ``picture`` (text and an image), ``fail``
(an error result), ``slow`` (progress, then sleeps), ``ask`` (form
elicitation), ``ask_url`` (URL elicitation), ``ask_nested`` (a form a
client cannot show), ``env`` (an environment variable), ``pid``. Resources:
``res://hello``; template ``res://greet/{name}``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hmac
import json
import os
import socket
import sys
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.utilities.types import Image
from mcp_types import ToolAnnotations
from pydantic import BaseModel

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def record(**event: Any) -> None:
    path = os.environ.get("MCP_TEST_LOG")
    if path:
        with open(path, "a") as handle:
            handle.write(json.dumps(event) + "\n")


class Person(BaseModel):
    name: str
    age: int = 0


class Nested(BaseModel):
    person: Person


def build(name: str) -> MCPServer:
    app = MCPServer(name)

    @app.tool()
    def echo(text: str) -> str:
        """Echo the text back."""
        return text

    @app.tool(annotations=ToolAnnotations(read_only_hint=True))
    def read_echo(text: str) -> str:
        """Echo the text back (read-only)."""
        return f"read:{text}"

    @app.tool(structured_output=False, annotations=ToolAnnotations(read_only_hint=True))
    def plain(text: str) -> str:
        """Plain text back."""
        return f"plain:{text}"

    @app.tool(structured_output=False, annotations=ToolAnnotations(read_only_hint=True))
    def picture() -> list[Any]:
        """A caption and a one-pixel image."""
        return ["a pixel:", Image(data=PNG, format="png")]

    @app.tool(annotations=ToolAnnotations(read_only_hint=True))
    def fail() -> str:
        """Always fails."""
        raise RuntimeError("it broke")

    @app.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def slow(seconds: float, ctx: Context) -> str:
        """Report progress, then sleep."""
        await ctx.report_progress(1, 2, "halfway")
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            record(event="interrupted", tool="slow")
            raise
        return "slept"

    async def elicit(tool: str, call: Any) -> Any:
        try:
            result = await call
        except asyncio.CancelledError:
            record(event="interrupted", tool=tool)
            raise
        data = getattr(result, "data", None)
        content = data.model_dump() if isinstance(data, BaseModel) else None
        record(event="elicited", tool=tool, action=result.action, content=content)
        return result

    @app.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def ask(ctx: Context) -> str:
        """Ask the user who they are."""
        result = await elicit("ask", ctx.elicit("Who are you?", Person))
        data = getattr(result, "data", None)
        return f"{result.action}:{data.name if data else ''}"

    @app.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def ask_url(ctx: Context) -> str:
        """Send the user to a page."""
        call = ctx.elicit_url("Sign in, please", "https://example.com/login", "login-1")
        result = await elicit("ask_url", call)
        return str(result.action)

    @app.tool(annotations=ToolAnnotations(read_only_hint=True))
    async def ask_nested(ctx: Context) -> str:
        """Ask with a form that has a nested object."""
        result = await ctx.request_context.session.elicit_form(
            message="Nested?",
            requested_schema=Nested.model_json_schema(),
            related_request_id=ctx.request_id,
        )
        record(event="elicited", tool="ask_nested", action=result.action, content=result.content)
        return str(result.action)

    @app.tool(annotations=ToolAnnotations(read_only_hint=True))
    def env(variable: str) -> str:
        """An environment variable of the server process."""
        return os.environ.get(variable, "<unset>")

    @app.tool(annotations=ToolAnnotations(read_only_hint=True))
    def pid() -> int:
        """The server's process id."""
        return os.getpid()

    @app.resource("res://hello")
    def hello() -> str:
        return "hello world"

    @app.resource("res://greet/{name}")
    def greet(name: str) -> str:
        return f"hello {name}"

    return app


def _bearer_guard(app: Any, token: str) -> Any:
    expected = f"Bearer {token}".encode()

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, expected):
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await app(scope, receive, send)

    return guarded


async def serve_http(app: MCPServer, token_env: str | None) -> None:
    import uvicorn

    asgi: Any = app.streamable_http_app()
    if token_env:
        asgi = _bearer_guard(asgi, os.environ[token_env])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    print(f"port {sock.getsockname()[1]}", flush=True)
    server = uvicorn.Server(uvicorn.Config(asgi, log_level="warning", lifespan="on"))
    await server.serve(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="kernel-test")
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--token-env")
    parser.add_argument("--marker")
    args = parser.parse_args()
    app = build(args.name)
    if args.http:
        asyncio.run(serve_http(app, args.token_env))
    else:
        app.run("stdio")


if __name__ == "__main__":
    sys.exit(main())
