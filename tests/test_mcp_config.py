"""``[mcp_servers.<name>]``: the reference's keys, and errors that name the key."""

from __future__ import annotations

import logging

import pytest

from kernel import ConfigError, RpcError, StartupError
from kernel.config import Config
from plugins_builtin.mcp.config import ServerSpec, StartupProblem, read_servers
from plugins_builtin.mcp.naming import model_names, model_schema, namespace_name


def servers(tmp_path, text: str) -> dict[str, ServerSpec]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(text)
    return read_servers(Config(home))


def test_the_references_keys_load(tmp_path):
    specs = servers(
        tmp_path,
        """
[mcp_servers.local]
command = "npx"
args = ["-y", "mcp-server"]
env = { "API_KEY" = "value" }
env_vars = ["API_KEY2", { name = "API_KEY3", source = "local" }]
cwd = "/srv"
startup_timeout_sec = 20
tool_timeout_sec = 30.5
enabled_tools = ["search", "summarize"]
disabled_tools = ["search"]
default_tools_approval_mode = "prompt"
required = true
supports_parallel_tool_calls = true
name = "legacy display name"

[mcp_servers.local.tools.summarize]
approval_mode = "approve"

[mcp_servers.figma]
url = "https://mcp.figma.com/mcp"
bearer_token_env_var = "FIGMA_TOKEN"
http_headers = { "X-Header" = "value" }
env_http_headers = { "X-From-Env" = "SOME_VAR" }
startup_timeout_ms = 1500
enabled = false
scopes = ["read"]
oauth_resource = "https://mcp.figma.com"
""",
    )
    local, figma = specs["local"], specs["figma"]
    assert (local.transport, local.command, local.args) == ("stdio", "npx", ("-y", "mcp-server"))
    assert local.env_vars == ("API_KEY2", "API_KEY3") and local.cwd == "/srv"
    assert (local.startup_timeout, local.tool_timeout) == (20.0, 30.5)
    assert [local.exposes(t) for t in ("search", "summarize", "other")] == [False, True, False]
    assert (local.approval_mode("summarize"), local.approval_mode("other")) == ("approve", "prompt")
    assert figma.transport == "http" and not figma.enabled
    assert (figma.startup_timeout, figma.tool_timeout) == (1.5, 60.0)
    assert figma.auth_status == "bearerToken" and local.auth_status == "unsupported"


def test_headers_come_from_the_environment(tmp_path, monkeypatch):
    (spec,) = servers(
        tmp_path,
        '[mcp_servers.web]\nurl = "http://127.0.0.1:1/mcp"\nbearer_token_env_var = "TOKEN_VAR"\n'
        'http_headers = { "X-A" = "a" }\nenv_http_headers = { "X-B" = "B_VAR", "X-C" = "C_VAR" }\n',
    ).values()
    monkeypatch.setenv("B_VAR", "b")
    monkeypatch.delenv("C_VAR", raising=False)
    monkeypatch.delenv("TOKEN_VAR", raising=False)
    with pytest.raises(StartupProblem, match="Environment variable TOKEN_VAR for MCP server 'web'"):
        spec.headers()
    monkeypatch.setenv("TOKEN_VAR", "t0ken")
    assert spec.headers() == {"X-A": "a", "X-B": "b", "Authorization": "Bearer t0ken"}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('command = "x"\nurl = "http://a"', "mcp_servers.s.url: is not supported for stdio"),
        (
            'url = "http://a"\nargs = ["x"]',
            "mcp_servers.s.args: is not supported for streamable_http",
        ),
        (
            'command = "x"\nbearer_token_env_var = "T"',
            "mcp_servers.s.bearer_token_env_var: is not supported for stdio",
        ),
        (
            'url = "http://a"\nbearer_token = "secret-value"',
            "mcp_servers.s.bearer_token: inline tokens are not supported",
        ),
        ("enabled = true", "mcp_servers.s: set either command"),
        ('command = "x"\ncwd = "relative"', "mcp_servers.s.cwd: must be an absolute path"),
        (
            'command = "x"\nstartup_timeout_sec = 0',
            "mcp_servers.s.startup_timeout_sec: must be a positive",
        ),
        (
            'command = "x"\ntool_timeout_sec = "soon"',
            "mcp_servers.s.tool_timeout_sec: expected a number",
        ),
        ('command = "x"\ncomand = "typo"', "mcp_servers.s: unknown key(s): comand"),
        (
            'command = "x"\ndefault_tools_approval_mode = "always"',
            "mcp_servers.s.default_tools_approval_mode",
        ),
        (
            'command = "x"\nenv_vars = [{ name = "A", source = "remote" }]',
            "mcp_servers.s.env_vars[0].source",
        ),
        ('url = "ftp://a"', "mcp_servers.s.url: must be an http:// or https:// URL"),
    ],
)
def test_errors_name_the_key_and_never_the_value(tmp_path, table, message):
    with pytest.raises(ConfigError) as err:
        servers(tmp_path, f"[mcp_servers.s]\n{table}\n")
    assert message in str(err.value)
    assert "config.toml" in str(err.value)
    assert "secret-value" not in str(err.value)


def test_server_names_must_be_safe(tmp_path):
    with pytest.raises(ConfigError, match=r"mcp_servers\.a\.b c"):
        servers(tmp_path, '[mcp_servers."a.b c"]\ncommand = "x"\n')


async def test_a_bad_table_stops_startup(kernel_client):
    with pytest.raises(StartupError) as err:
        async with kernel_client(
            ["mcp"], overrides=['mcp_servers.s={command = "x", url = "http://a"}']
        ):
            pass
    assert "mcp_servers.s.url: is not supported for stdio (this server has a command)" in str(
        err.value
    )


def test_model_facing_names():
    assert namespace_name("demo") == "mcp__demo"
    long = "s" * 70
    assert len(namespace_name(long)) == 64
    names = model_names("demo", ["ok", "a.b", "a_b", "x" * 80])
    assert names["ok"] == "ok"
    cleaned = [n for n, raw in names.items() if raw in ("a.b", "a_b")]
    assert len(cleaned) == 2 and all(n.startswith("a_b_") for n in cleaned)  # hashed apart
    (longest,) = [n for n, raw in names.items() if raw == "x" * 80]
    assert len("mcp__demo__" + longest) <= 64
    assert model_schema(
        {"title": "T", "properties": {"title": {"title": "x", "type": "string"}}}
    ) == {
        "type": "object",
        "properties": {"title": {"type": "string"}},
    }
    assert model_schema(None) == {"type": "object", "properties": {}}


def write(key: str, value: object) -> dict:
    """``config/value/write`` params replacing ``key``."""
    return {"keyPath": key, "value": value, "mergeStrategy": "replace"}


async def test_config_writes_mcp_would_refuse_are_refused(kernel_client, caplog):
    """The settings catalog runs mcp's own table rules: a bad table never reaches the file."""
    async with kernel_client(["config", "mcp"]) as client:
        await client.initialize()
        user = client.kernel.config.user_path
        bad = [
            ({"command": "x", "url": "http://a"}, "mcp_servers.s.url: is not supported for stdio"),
            ({"enabled": True}, "mcp_servers.s: set either command"),
            ({"url": "ftp://a"}, "mcp_servers.s.url: must be an http:// or https:// URL"),
            ({"command": "x", "tool_timeout_sec": 0}, "mcp_servers.s.tool_timeout_sec: must be"),
        ]
        for table, message in bad:
            with pytest.raises(RpcError) as err:
                await client.request("config/value/write", write("mcp_servers.s", table))
            assert (err.value.data or {})["config_write_error_code"] == "configValidationError"
            assert message in err.value.message
            assert not user.exists()
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        # A good table is written and applied once, by each write or reload.
        with caplog.at_level(logging.INFO, logger="plugins.mcp"):
            answer = await client.request("config/value/write", write("mcp_servers.s.command", "x"))
            assert answer["status"] == "ok"
            with pytest.raises(RpcError) as err:
                await client.request("config/value/write", write("mcp_servers.s.cwd", "relative"))
            assert "mcp_servers.s.cwd: must be an absolute path" in err.value.message
            assert user.read_text() == '[mcp_servers.s]\ncommand = "x"\n'
            user.write_text('[mcp_servers.t]\nurl = "http://127.0.0.1:1/mcp"\n')
            assert await client.request("config/mcpServer/reload") == {}
            # Unchanged file: the servers are still restarted from it.
            assert await client.request("config/mcpServer/reload") == {}
        applied = [r.getMessage() for r in caplog.records if "MCP servers reloaded" in r.message]
        assert applied == [f"MCP servers reloaded: {name}" for name in ("s", "t", "t")]
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        # A server name is mcp's own check (a key, not a table): refused without a traceback.
        user.write_text('[mcp_servers."a b"]\ncommand = "x"\n')
        with pytest.raises(RpcError) as err:
            await client.request("config/mcpServer/reload")
        assert "mcp_servers.a b: server names may only contain" in err.value.message
        assert not [r for r in caplog.records if r.exc_info]
