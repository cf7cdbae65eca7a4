"""What clients call at startup: account/*, model/list, modelProvider/*, modes, windowsSandbox/*."""

from __future__ import annotations

import json
import stat

from tests.support.agent import provider_args
from tests.support.calls import fails

STARTUP = ["threads", "models", "account", "sandbox"]


async def test_account_read_login_and_logout(serve, tmp_path, model_server):
    home = tmp_path / "home"
    env = {"OPENAI_API_KEY": ""}
    async with serve(plugins=STARTUP, home=home, env=env) as served:
        client = served.client
        await client.initialize(experimental=True)
        assert await client.request("account/read", {}) == {
            "account": None,
            "userId": None,
            "requiresOpenaiAuth": True,  # the default provider is openai
        }
        answer = await client.request(
            "account/login/start", {"type": "apiKey", "apiKey": "sk-test-123"}
        )
        assert answer == {"type": "apiKey"}
        update = await client.next_notification("account/updated")
        assert update.params == {"authMode": "apikey", "planType": None}
        stored = home / "auth.json"
        assert json.loads(stored.read_text()) == {
            "auth_mode": "apikey",
            "OPENAI_API_KEY": "sk-test-123",
        }
        assert stat.S_IMODE(stored.stat().st_mode) == 0o600
        assert (await client.request("account/read", {}))["account"] == {"type": "apiKey"}
        error = await fails(client, "account/login/start", {"type": "chatgpt"})
        assert error.code == -32600 and "API key" in error.message
        error = await fails(client, "account/login/start", {"type": "apiKey", "apiKey": " "})
        assert error.code == -32602
        assert await client.request("account/logout") == {}
        assert not stored.exists()
        assert (await client.request("account/read", {}))["account"] is None
        limits = await client.request("account/rateLimits/read")
        assert limits["rateLimits"]["limitId"] == "codex" and limits["accountId"] is None
        gov = await client.request("account/bedrock/checkGovCloudRequirements", {})
        assert gov == {"isGovCloud": False, "shouldWarn": False}
    assert "sk-test-123" not in served.log_path.read_text()  # never logged


async def test_a_stored_key_reaches_the_provider(serve, tmp_path, model_server):
    from tests.support.model_server import text

    model_server.responses.append(text("hi"))
    args = [
        *provider_args(model_server.base_url, requires_openai_auth=True),
    ]
    async with serve(
        plugins=STARTUP, home=tmp_path / "home", args=args, env={"OPENAI_API_KEY": ""}
    ) as served:
        client = served.client
        await client.initialize(experimental=True)
        read = await client.request("account/read", {})
        assert read["requiresOpenaiAuth"] is True
        await client.request("account/login/start", {"type": "apiKey", "apiKey": "sk-stored"})
        thread = await client.request("thread/start", {"cwd": str(tmp_path)})
        await client.request(
            "turn/start",
            {"threadId": thread["thread"]["id"], "input": [{"type": "text", "text": "hi"}]},
        )
        await client.next_notification("turn/completed", timeout=20)
    assert model_server.requests[-1].headers["Authorization"] == "Bearer sk-stored"


async def test_model_and_provider_lists(serve, tmp_path, model_server):
    model_server.models = ["m-one", "m-two"]
    args = [*provider_args(model_server.base_url), "-c", 'model="m-two"']
    async with serve(plugins=STARTUP, home=tmp_path / "home", args=args) as served:
        client = served.client
        await client.initialize(experimental=True)
        listed = await client.request("model/list", {"includeHidden": True})
        assert [m["id"] for m in listed["data"]] == ["m-two", "m-one"]
        assert listed["data"][0]["isDefault"] is True and listed["nextCursor"] is None
        page = await client.request("model/list", {"limit": 1})
        assert [m["id"] for m in page["data"]] == ["m-two"] and page["nextCursor"] == "1"
        error = await fails(client, "model/list", {"cursor": "zzz"})
        assert error.code == -32600 and error.message == "invalid cursor: zzz"
        error = await fails(client, "model/list", {"modelProvider": "nonexistent"})
        assert error.code == -32600 and error.data == {
            "type": "modelProviderNotConfigured",
            "modelProvider": "nonexistent",
        }
        providers = await client.request("modelProvider/list", {})
        assert providers["defaultProviderId"] == "mock"
        assert "mock" in [p["id"] for p in providers["data"]]
        caps = await client.request("modelProvider/capabilities/read", {})
        assert caps == {"imageGeneration": False, "webSearch": False}
        modes = await client.request("collaborationMode/list", {})
        assert [m["mode"] for m in modes["data"]] == ["plan", "default"]
        assert await client.request("windowsSandbox/readiness") == {"status": "notConfigured"}
        started = await client.request("windowsSandbox/setupStart", {"mode": "elevated"})
        assert started == {"started": True}
        done = await client.next_notification("windowsSandbox/setupCompleted")
        assert done.params == {
            "mode": "elevated",
            "success": False,
            "error": "elevated Windows sandbox setup is only supported on Windows",
        }
        error = await fails(client, "windowsSandbox/setupStart", {"mode": "sideways"})
        assert error.code == -32602
        error = await fails(
            client, "windowsSandbox/setupStart", {"mode": "elevated", "cwd": "relative/dir"}
        )
        assert error.code in (-32600, -32602) and "cwd" in error.message


async def test_without_a_models_endpoint_the_configured_model_is_listed(
    serve, tmp_path, model_server
):
    async with serve(
        plugins=STARTUP, home=tmp_path / "home", args=provider_args(model_server.base_url)
    ) as served:
        await served.client.initialize()
        listed = await served.client.request("model/list", {})
        assert [m["id"] for m in listed["data"]] == ["gpt-5.5"]
