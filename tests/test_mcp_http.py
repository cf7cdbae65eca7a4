"""Streamable HTTP MCP servers: the bearer token from the environment, tools, elicitation."""

from __future__ import annotations

import json

from tests.support.mcp_agent import http_mcp_server, mcp_agent, mcp_call
from tests.support.model_server import text
from tests.support.tools import output_of
from tests.test_mcp_tools import items


async def test_http_server_with_a_bearer_token(serve, model_server, tmp_path):
    log = tmp_path / "mcp.log"
    model_server.responses.extend(
        [
            mcp_call("read_echo", {"text": "over http"}, "c1", "web"),
            mcp_call("ask", None, "c2", "web"),
            text("done"),
        ]
    )
    asked = []

    async def handler(params):
        asked.append(params)
        return {"action": "accept", "content": {"name": "Grace"}}

    async with http_mcp_server(token="s3cret-token", log=log) as url:
        servers = {
            "web": {
                "url": url,
                "bearer_token_env_var": "MCP_WEB_TOKEN",
                "http_headers": {"X-Test": "1"},
            }
        }
        env = {"MCP_WEB_TOKEN": "s3cret-token"}
        async with mcp_agent(serve, model_server, servers, env=env) as agent:
            agent.client.on_request("mcpServer/elicitation/request", handler)
            thread_id = (await agent.start())["thread"]["id"]
            _, notes = await agent.turn(thread_id)
            status = await agent.client.request("mcpServerStatus/list", {})
            log_text = agent.served.log()
    assert output_of(model_server, "c1").endswith('{"result":"read:over http"}')
    (params,) = asked
    assert params["serverName"] == "web" and params["message"] == "Who are you?"
    assert [i["status"] for i in items(notes)] == ["completed", "completed"]
    assert json.loads(log.read_text().splitlines()[0])["content"] == {"name": "Grace", "age": 0}
    (web,) = status["data"]
    port = url.split(":")[2].split("/")[0]
    assert web["httpOrigin"] == f"http://127.0.0.1:{port}" and web["authStatus"] == "bearerToken"
    assert web["runtimeStatus"] == "connected"
    assert "s3cret-token" not in log_text  # the secret never reaches the log


async def test_a_wrong_token_fails_startup(serve, model_server):
    model_server.responses.append(text("done"))
    async with http_mcp_server(token="right") as url:
        servers = {
            "web": {"url": url, "bearer_token_env_var": "MCP_WEB_TOKEN", "startup_timeout_sec": 20}
        }
        async with mcp_agent(serve, model_server, servers, env={"MCP_WEB_TOKEN": "wrong"}) as agent:
            thread_id = (await agent.start())["thread"]["id"]
            _, notes = await agent.turn(thread_id)
    (failed,) = [
        n.params
        for n in notes
        if n.method == "mcpServer/startupStatus/updated" and n.params["status"] == "failed"
    ]
    assert failed["error"] == (
        "MCP client for `web` failed to start: MCP startup failed: "
        "Server returned an error response (HTTP 401 Unauthorized)"
    )
    assert "wrong" not in failed["error"]
    names = {t.get("name") for t in model_server.requests[0].body["tools"]}
    assert "mcp__web" not in names
