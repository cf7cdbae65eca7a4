"""The ``kernel`` command, run as a user would: in subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kernel import RpcError
from kernel.client import Client
from tests.conftest import subprocess_env

KERNEL_BIN = Path(sys.executable).parent / "kernel"


def kernel(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, site: bool = True
) -> subprocess.CompletedProcess[str]:
    environment = subprocess_env(tmp_path / "home", env)
    if not site:
        environment.pop("PYTHONPATH")
    return subprocess.run(
        [sys.executable, "-m", "kernel", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_console_script_is_installed_and_reports_version():
    out = subprocess.run([str(KERNEL_BIN), "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.strip() == "kernel 0.1.0"


async def test_example_plugin_served_through_kernel_run_plugins_echo(tmp_path, checker):
    env = subprocess_env(tmp_path / "home")
    env.pop("PYTHONPATH")  # only what pip installed
    client = await Client.spawn_command(
        [str(KERNEL_BIN), "run", "--plugins", "echo"], env=env, stderr=subprocess.DEVNULL
    )
    async with client:
        init = await client.initialize()
        checker.check_server_frame({"id": 1, "result": init}, {1: "initialize"})
        assert await client.request("echo/echo", {"message": "via console script"}) == {
            "message": "via console script"
        }
        with pytest.raises(Exception, match="Method not found: server/diagnostics"):
            await client.request("server/diagnostics", {})
    assert client.process.returncode == 0


def test_plugins_lists_every_plugin_with_status_methods_and_errors(tmp_path):
    out = kernel(tmp_path, "plugins", "--disable", "clash")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "diagnostics  [enabled]  from kernel-app-server 0.1.0" in text
    assert "methods: server/diagnostics (experimental)" in text
    assert "echo  [enabled]  from kernel-echo-example 0.1.0" in text
    assert "clash  [disabled (disabled by --disable)]" in text
    assert "broken_import  [disabled (failed)]  from kernel-probe 0.0.0" in text
    assert "error: load: ModuleNotFoundError" in text
    assert "notifications: probe/tick, probe/other, probe/previewTick (experimental)" in text
    assert "server requests: probe/question" in text


def test_plugins_json_shows_methods_of_disabled_plugins_too(tmp_path):
    out = kernel(tmp_path, "plugins", "--json", "-c", "plugins.echo.enabled=false", site=False)
    assert out.returncode == 0, out.stderr
    rows = {row["name"]: row for row in json.loads(out.stdout)}
    assert set(rows) == {"diagnostics", "echo", "fs", "process", "ws_auth"}
    echo = rows["echo"]
    assert echo["enabled"] is False
    assert echo["disabledReason"] == "disabled in config (plugins.echo.enabled)"
    assert echo["methods"] == ["echo/echo"] and echo["distribution"] == "kernel-echo-example"
    assert rows["diagnostics"]["enabled"] is True and rows["diagnostics"]["error"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--plugins", "nope"], "cannot start: unknown plugin(s) nope; installed:"),
        (["run", "--plugins", "probe,clash"], "method 'probe/sleep' is declared by both"),
        (
            ["run", "--plugins", "broken_import"],
            "plugin broken_import (kernel-probe 0.0.0) failed to load: ModuleNotFoundError",
        ),
        (
            ["run", "--plugins", "echo", "--listen", "tcp://127.0.0.1:0"],
            "--listen tcp://127.0.0.1:0: unsupported transport",
        ),
        (
            ["run", "--plugins", "echo", "--listen", "ws://example.com:80"],
            "--listen ws://example.com:80: expected ws://IP:PORT",
        ),
        (
            ["run", "--plugins", "echo", "--listen", "unix://relative/sock"],
            "--listen unix://relative/sock: the socket path must be absolute",
        ),
        (
            ["run", "--plugins", "echo", "--listen", "stdio://", "--listen", "stdio://"],
            "--listen stdio://: this endpoint is listed twice",
        ),
        (
            ["run", "--plugins", "echo", "-c", "kernel.max_in_flight=0"],
            "kernel.max_in_flight: must be at least 1 (from -c override)",
        ),
        (["run", "--plugins", "echo", "-c", "broken"], "-c 'broken': expected key.path=value"),
    ],
)
def test_startup_errors_exit_1_with_a_clear_message(tmp_path, args, message):
    out = kernel(tmp_path, *args)
    assert out.returncode == 1
    assert message in out.stderr
    assert "Traceback" not in out.stderr.split("cannot start")[-1]
    assert out.stdout == ""


def test_plugin_options_appear_only_when_the_plugin_is_loaded(tmp_path):
    with_plugin = kernel(tmp_path, "run", "--plugins", "configurable", "--help")
    assert with_plugin.returncode == 0
    assert "plugin configurable:" in with_plugin.stdout
    assert "--configurable-shout" in with_plugin.stdout
    without = kernel(tmp_path, "run", "--plugins", "echo", "--help")
    assert "--configurable-shout" not in without.stdout


def test_config_command_writes_the_user_layer(tmp_path):
    assert kernel(tmp_path, "config", "set", "plugins.echo.enabled", "false").returncode == 0
    assert kernel(tmp_path, "config", "set", "kernel.max_in_flight", "64").returncode == 0
    got = kernel(tmp_path, "config", "get", "kernel.max_in_flight")
    assert got.stdout.strip() == "64" and "config.toml" in got.stderr
    listing = kernel(tmp_path, "plugins", "--json", site=False)
    assert {r["name"]: r["enabled"] for r in json.loads(listing.stdout)}["echo"] is False
    assert kernel(tmp_path, "config", "unset", "plugins.echo.enabled").returncode == 0
    assert kernel(tmp_path, "config", "unset", "plugins.echo.enabled").returncode == 1
    whole = json.loads(kernel(tmp_path, "config", "get").stdout)
    assert whole == {"kernel": {"max_in_flight": 64}, "plugins": {"echo": {}}}
    missing = kernel(tmp_path, "config", "get", "no.such")
    assert missing.returncode == 1 and "no.such is not set" in missing.stderr


async def test_json_logs_are_one_object_per_line_on_stderr(tmp_path, checker):
    env = subprocess_env(tmp_path / "home", {"LOG_FORMAT": "json", "KERNEL_LOG": "info"})
    proc = await Client.spawn_command(
        [sys.executable, "-m", "kernel", "run", "--plugins", "probe,echo"],
        env=env,
        stderr=subprocess.PIPE,
    )
    async with proc:
        init = await proc.initialize()
        checker.check_server_frame({"id": 1, "result": init}, {1: "initialize"})
        with pytest.raises(RpcError, match="Internal error") as err:
            await proc.request("probe/fail")
        checker.check_server_frame({"id": 2, "error": err.value.to_wire()}, {})
    stderr = (await proc.process.stderr.read()).decode()
    entries = [json.loads(line) for line in stderr.splitlines()]
    assert entries and all({"ts", "level", "logger", "message"} <= set(e) for e in entries)
    failure = next(e for e in entries if e["message"].startswith("handler for probe/fail"))
    assert failure["level"] == "error" and "hunter2" in failure["exc"]
    assert any(e["message"].startswith("kernel serving stdio://") for e in entries)


def test_log_level_from_environment(tmp_path):
    quiet = kernel(tmp_path, "run", "--plugins", "echo", env={"KERNEL_LOG": "warning"})
    assert quiet.returncode == 0 and "kernel serving" not in quiet.stderr
    chatty = kernel(tmp_path, "run", "--plugins", "echo", env={"KERNEL_LOG": "info"})
    assert chatty.returncode == 0 and "kernel serving stdio://" in chatty.stderr
