"""remoteControl/*: status after initialize, gating, configuration, requirements, enrollment.

The server runs as a subprocess over stdio; the relay is the scripted
stand-in of tests/support/remote_backend.py, which records what the server
sends and answers what each test asks for.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import uuid

import pytest

from kernel import RpcError, hookimpl
from kernel.outbound import OutboundRequest, Refuse
from tests.support.remote_backend import Answer, Backend
from tests.support.remote_relay import (
    ENROLLMENT_SECRET,
    overrides,
    server_args,
    server_env,
    wait_status,
)

PLUGINS = ("remote_control",)
STATUS = "remoteControl/status/changed"
NOT_CONFIGURED = (
    "remote control needs a relay: set kernel_plugins.remote_control.base_url and an "
    "enrollment secret (see docs/remote_control.md)"
)


@pytest.fixture
async def backend():
    async with Backend() as stand_in:
        yield stand_in


async def test_status_follows_initialize_and_the_installation_id_persists(serve, tmp_path):
    home = tmp_path / "home"
    async with serve(plugins=PLUGINS, home=home) as served:
        await served.client.initialize()  # no experimentalApi: the status still comes
        note = await served.client.next_notification(STATUS)
        installation_id = (home / "installation_id").read_text().strip()
        assert note.params == {
            "status": "disabled",
            "serverName": socket.gethostname(),
            "installationId": installation_id,
            "environmentId": None,
        }
        assert str(uuid.UUID(installation_id)) == installation_id
        with pytest.raises(RpcError) as refused:
            await served.client.request("remoteControl/status/read")
        assert refused.value.code == -32600
        assert (
            refused.value.message == "remoteControl/status/read requires experimentalApi capability"
        )
    async with serve(plugins=PLUGINS, home=home) as served:
        await served.client.initialize(experimental=True)
        assert (await served.client.next_notification(STATUS)).params == note.params
        assert await served.client.request("remoteControl/status/read") == note.params


async def test_status_respects_opt_out(serve):
    async with serve(plugins=PLUGINS) as served:
        await served.client.initialize(experimental=True, opt_out=[STATUS])
        assert (await served.client.request("remoteControl/status/read"))["status"] == "disabled"
        with pytest.raises(TimeoutError):
            await served.client.next_notification(STATUS, timeout=0.5)


async def test_enable_without_a_relay_is_refused_and_disable_is_harmless(serve):
    async with serve(plugins=PLUGINS) as served:
        await served.client.initialize(experimental=True)
        for params in (None, {}, {"ephemeral": True}):
            with pytest.raises(RpcError) as refused:
                await served.client.request("remoteControl/enable", params)
            assert (refused.value.code, refused.value.message) == (-32600, NOT_CONFIGURED)
        answer = await served.client.request("remoteControl/disable", {"ephemeral": False})
        assert (answer["status"], answer["environmentId"]) == ("disabled", None)
        with pytest.raises(RpcError) as bad:
            await served.client.request("remoteControl/enable", {"ephemeral": "yes"})
        assert bad.value.code == -32602 and "ephemeral" in bad.value.message


async def test_startup_flag_without_a_relay_reports_errored(serve):
    async with serve(plugins=PLUGINS, args=["--remote-control"]) as served:
        await served.client.initialize(experimental=True)
        note = await served.client.next_notification(STATUS)
        assert (note.params["status"], note.params["environmentId"]) == ("errored", None)
        assert "remote control was asked for at startup" in served.log()


async def test_managed_requirements_forbid_remote_control(serve, backend, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "requirements.toml").write_text("allow_remote_control = false\n")
    args = [*server_args(backend.url), "--remote-control"]
    async with serve(plugins=PLUGINS, home=home, args=args, env=server_env()) as served:
        await served.client.initialize(experimental=True)
        assert (await served.client.next_notification(STATUS)).params["status"] == "disabled"
        for params in ({}, {"ephemeral": True}):
            with pytest.raises(RpcError) as refused:
                await served.client.request("remoteControl/enable", params)
            assert refused.value.code == -32600
            assert refused.value.message == "remote control is disabled by managed requirements"
        assert (await served.client.request("remoteControl/status/read"))["status"] == "disabled"
    assert backend.requests == []
    assert "remote control is disabled by managed requirements" in served.log()


async def test_bad_settings_stop_startup(serve):
    args = ["-c", 'kernel_plugins.remote_control.base_url="http://relay.example.com/"']
    async with serve(plugins=PLUGINS, args=args, close=False) as served:
        assert await served.process.wait() != 0
    assert "kernel_plugins.remote_control.base_url" in served.log()
    assert "expected an HTTPS URL, or an HTTP URL for localhost" in served.log()


# -- enrollment failures -------------------------------------------------------------------


async def enable_error(served, params=None) -> RpcError:
    with pytest.raises(RpcError) as failed:
        await served.client.request("remoteControl/enable", params or {})
    return failed.value


async def test_enrollment_http_errors_keep_the_reference_text(serve, backend):
    enroll_url = f"{backend.url}/wham/remote/control/server/enroll"
    backend.enroll_answers.extend(
        [
            Answer(404, "no such route"),
            Answer(503, {"detail": "busy"}, {"x-request-id": "req-7", "cf-ray": "ray-1"}),
            Answer(401, ""),
        ]
    )
    async with serve(plugins=PLUGINS, args=server_args(backend.url), env=server_env()) as served:
        await served.client.initialize(experimental=True)
        await served.client.next_notification(STATUS)
        error = await enable_error(served)
        assert error.code == -32600
        assert error.message == (
            f"remote control server enrollment failed at `{enroll_url}`: HTTP 404 Not Found, "
            "request-id: <none>, cf-ray: <none>, body: no such route"
        )
        error = await enable_error(served)
        assert error.message == (
            f"remote control server enrollment failed at `{enroll_url}`: HTTP 503 Service "
            'Unavailable, request-id: req-7, cf-ray: ray-1, body: {"detail":"busy"}'
        )
        error = await enable_error(served)
        assert error.message.endswith(
            "HTTP 401 Unauthorized, request-id: <none>, cf-ray: <none>, body: <empty>"
        )
        # Nothing changed: still disabled, and no status was broadcast.
        assert (await served.client.request("remoteControl/status/read"))["status"] == "disabled"
        with pytest.raises(TimeoutError):
            await served.client.next_notification(STATUS, timeout=0.3)
    assert backend.paths() == ["/wham/remote/control/server/enroll"] * 3


async def test_unparseable_enrollment_answers_and_redaction(serve, backend):
    enroll_url = f"{backend.url}/wham/remote/control/server/enroll"
    leaked = "rcs-this-token-must-not-leak"
    backend.enroll_answers.extend(
        [
            Answer(200, {"server_id": "srv_1", "environment_id": "env_1", "expires_at": "x"}),
            Answer(
                200,
                {"server_id": "srv_1", "environment_id": "env_1", "remote_control_token": leaked},
            ),
            Answer(200, "not json"),
        ]
    )
    async with serve(plugins=PLUGINS, args=server_args(backend.url), env=server_env()) as served:
        await served.client.initialize(experimental=True)
        error = await enable_error(served)
        assert error.code == -32603
        assert error.message.startswith(
            f"failed to parse remote control server enrollment response from `{enroll_url}`: "
            "HTTP 200 OK, request-id: <none>, cf-ray: <none>, body: "
        )
        assert error.message.endswith("decode error: missing field `remote_control_token`")
        error = await enable_error(served)
        assert error.message.endswith("decode error: missing field `expires_at`")
        assert (
            leaked not in error.message and '"remote_control_token":"<redacted>"' in error.message
        )
        error = await enable_error(served)
        assert (
            error.code == -32603
            and "body: not json, decode error: expected a JSON object" in error.message
        )
        assert (await served.client.request("remoteControl/status/read"))["status"] == "disabled"
    assert leaked not in served.log()


async def test_missing_secret_and_unreachable_relay(serve, backend, tmp_path):
    async with serve(plugins=PLUGINS, args=server_args(backend.url)) as served:
        await served.client.initialize(experimental=True)
        error = await enable_error(served)
        assert error.code == -32600
        assert "$KERNEL_REMOTE_CONTROL_SECRET is empty or unset" in error.message
    assert backend.requests == []
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    closed = f"http://127.0.0.1:{closed_port}"
    secret_file = tmp_path / "secret"
    secret_file.write_text(ENROLLMENT_SECRET + "\n")
    args = [
        *server_args(closed),
        "-c",
        f'kernel_plugins.remote_control.enrollment_secret_file="{secret_file}"',
    ]
    async with serve(plugins=PLUGINS, args=args) as served:
        await served.client.initialize(experimental=True)
        error = await enable_error(served)
        assert error.code == -32603
        enroll_url = f"{closed}/wham/remote/control/server/enroll"
        assert error.message.startswith(
            f"failed to enroll remote control server at `{enroll_url}`: "
        )


async def test_ephemeral_enable_reports_failures_in_the_status(serve, backend):
    backend.enroll_answers.extend([Answer(500, "down")] * 50)
    async with serve(plugins=PLUGINS, args=server_args(backend.url), env=server_env()) as served:
        await served.client.initialize(experimental=True)
        await served.client.next_notification(STATUS)
        answer = await served.client.request("remoteControl/enable", {"ephemeral": True})
        assert (answer["status"], answer["environmentId"]) == ("connecting", None)
        assert (await served.client.next_notification(STATUS)).params["status"] == "connecting"
        errored = await wait_status(served.client, "errored")
        assert errored["environmentId"] is None
        assert (await served.client.request("remoteControl/status/read"))["status"] in (
            "errored",
            "connecting",
        )
        answer = await served.client.request("remoteControl/disable", {"ephemeral": True})
        assert (answer["status"], answer["environmentId"]) == ("disabled", None)
        await wait_status(served.client, "disabled")
    assert "remote control server enrollment failed" in served.log()


# -- a successful enrollment ---------------------------------------------------------------


class RelayHeaders:
    """A plugin decorating outbound requests, as attestation would."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.seen: list[OutboundRequest] = []

    @hookimpl
    async def kernel_outbound_request_headers(self, request: OutboundRequest) -> object:
        self.seen.append(request)
        if self.refuse:
            return Refuse("relay enrollment refused by the test plugin")
        # Authorization is the request's own: the kernel drops this one.
        return {"x-test-hook": f"{request.purpose}/{request.attempt}", "Authorization": "x"}


async def test_enrollment_request_headers_and_the_outbound_hook(inproc, backend, monkeypatch):
    monkeypatch.setenv("KERNEL_REMOTE_CONTROL_SECRET", ENROLLMENT_SECRET)
    hook = RelayHeaders()
    async with inproc(
        plugins=("remote_control", "relay_headers"),
        overrides=overrides(backend.url),
        extra_plugins={"relay_headers": hook},
    ) as client:
        await client.initialize(experimental=True)
        await client.next_notification(STATUS)
        answer = await client.request("remoteControl/enable", {})
        server_id, environment_id, token = backend.enrolled[-1]
        assert (answer["status"], answer["environmentId"]) == ("connecting", environment_id)
        sock = await backend.socket()
        connected = await wait_status(client, "connected")
        assert connected["environmentId"] == environment_id
        installation_id = answer["installationId"]
        enroll = backend.requests[0]
        assert enroll.path == "/wham/remote/control/server/enroll"
        assert enroll.headers["Authorization"] == f"Bearer {ENROLLMENT_SECRET}"
        assert enroll.headers["x-codex-installation-id"] == installation_id
        assert enroll.headers["x-test-hook"] == "relay_enrollment/1"
        (request,) = hook.seen
        assert (request.url, request.method) == (
            f"{backend.url}/wham/remote/control/server/enroll",
            "POST",
        )
        assert request.connection is not None and request.connection.initialized
        assert enroll.body == {
            "name": socket.gethostname(),
            "os": "linux",
            "arch": enroll.body["arch"],
            "app_server_version": enroll.body["app_server_version"],
            "installation_id": installation_id,
        }
        assert enroll.body["arch"] and enroll.body["app_server_version"]
        headers = sock.headers
        assert headers["Authorization"] == f"Bearer {token}"
        assert headers["x-codex-protocol-version"] == "3"
        assert base64.b64decode(headers["x-codex-name"]).decode() == socket.gethostname()
        assert headers["x-codex-server-id"] == server_id
        assert headers["x-codex-installation-id"] == installation_id
        assert "x-codex-subscribe-cursor" not in headers
        # Enabling again is a no-op; disabling closes the socket.
        assert (await client.request("remoteControl/enable", {}))["status"] == "connected"
        answer = await client.request("remoteControl/disable", {})
        assert (answer["status"], answer["environmentId"]) == ("disabled", None)
        async with asyncio.timeout(10):
            await sock.closed.wait()


async def test_a_refusing_outbound_hook_stops_enrollment(inproc, backend, monkeypatch):
    monkeypatch.setenv("KERNEL_REMOTE_CONTROL_SECRET", ENROLLMENT_SECRET)
    async with inproc(
        plugins=("remote_control", "relay_headers"),
        overrides=overrides(backend.url),
        extra_plugins={"relay_headers": RelayHeaders(refuse=True)},
    ) as client:
        await client.initialize(experimental=True)
        with pytest.raises(RpcError) as refused:
            await client.request("remoteControl/enable")
        assert refused.value.code == -32600
        assert refused.value.message == "relay enrollment refused by the test plugin"
        assert (await client.request("remoteControl/status/read"))["status"] == "disabled"
    assert backend.requests == []


async def test_secrets_stay_out_of_the_log(serve, backend):
    async with serve(plugins=PLUGINS, args=server_args(backend.url), env=server_env()) as served:
        await served.client.initialize(experimental=True)
        await served.client.request("remoteControl/enable", {})
        await backend.socket()
        await wait_status(served.client, "connected")
    token = backend.enrolled[-1][2]
    log = served.log()
    assert "enrolled with the relay" in log
    assert ENROLLMENT_SECRET not in log and token not in log


async def test_the_enabled_choice_and_the_enrollment_survive_a_restart(serve, backend, tmp_path):
    home = tmp_path / "home"
    async with serve(
        plugins=PLUGINS, home=home, args=server_args(backend.url), env=server_env()
    ) as served:
        await served.client.initialize(experimental=True)
        enabled = await served.client.request("remoteControl/enable")
        await backend.socket()
    environment_id = enabled["environmentId"]
    server_id = backend.enrolled[-1][0]
    # Restarted without --remote-control: the remembered choice reconnects, same environment.
    async with serve(
        plugins=PLUGINS, home=home, args=server_args(backend.url), env=server_env()
    ) as served:
        await served.client.initialize(experimental=True)
        sock = await backend.socket()
        connected = await wait_status(served.client, "connected")
        assert connected["environmentId"] == environment_id
        assert sock.headers["x-codex-server-id"] == server_id
        assert backend.paths().count("/wham/remote/control/server/enroll") == 1
        refresh = backend.requests[-2]
        assert refresh.path == "/wham/remote/control/server/refresh"
        assert refresh.body == {
            "server_id": server_id,
            "installation_id": enabled["installationId"],
        }
        await served.client.request("remoteControl/disable", {})
    async with serve(
        plugins=PLUGINS, home=home, args=server_args(backend.url), env=server_env()
    ) as served:
        await served.client.initialize(experimental=True)
        assert (await served.client.next_notification(STATUS)).params["status"] == "disabled"
        with pytest.raises(TimeoutError):
            await backend.socket(timeout=1.0)
