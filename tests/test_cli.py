"""The ``kernel`` command, run as a user would: in subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
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
    out = kernel(
        tmp_path, "plugins", "--json", "-c", "kernel_plugins.echo.enabled=false", site=False
    )
    assert out.returncode == 0, out.stderr
    rows = {row["name"]: row for row in json.loads(out.stdout)}
    assert set(rows) == {
        "account",
        "agent_tools",
        "attestation",
        "config",
        "diagnostics",
        "environments",
        "echo",
        "external_agent",
        "fs",
        "goals",
        "guardian",
        "hooks",
        "marketplace",
        "mcp",
        "models",
        "process",
        "realtime",
        "remote_control",
        "sandbox",
        "skills",
        "threads",
        "ws_auth",
    }
    echo = rows["echo"]
    assert echo["enabled"] is False
    assert echo["disabledReason"] == "disabled in config (kernel_plugins.echo.enabled)"
    assert echo["methods"] == [{"name": "echo/echo", "experimental": False}]
    assert echo["distribution"] == "kernel-echo-example"
    assert rows["diagnostics"]["enabled"] is True and rows["diagnostics"]["error"] is None
    # Experimental is data, not part of the name.
    assert rows["diagnostics"]["methods"] == [{"name": "server/diagnostics", "experimental": True}]


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


def test_plugin_failures_are_one_line_with_the_traceback_at_debug(tmp_path):
    out = kernel(tmp_path, "run", "--plugins", "echo", "--disable", "clash", env={"KERNEL_LOG": ""})
    assert out.returncode == 0
    assert "Traceback" not in out.stderr
    failures = [line for line in out.stderr.splitlines() if "failed to" in line]
    assert not failures  # only --plugins echo was selected
    out = kernel(tmp_path, "run", "--disable", "clash", env={"KERNEL_LOG": ""})
    failures = [line for line in out.stderr.splitlines() if "failed to load" in line]
    assert len(failures) == 1 and "broken_import" in failures[0]
    assert "Traceback" not in out.stderr
    requested = kernel(tmp_path, "run", "--plugins", "broken_import", env={"KERNEL_LOG": ""})
    assert requested.returncode == 1 and "Traceback" not in requested.stderr
    assert len(requested.stderr.strip().splitlines()) == 1
    debug = kernel(tmp_path, "run", "--plugins", "broken_import", env={"KERNEL_LOG": "debug"})
    assert "Traceback" in debug.stderr


def test_usage_mistakes_exit_2(tmp_path):
    for args in (["config", "set"], ["config", "set", "kernel.max_in_flight"], ["run", "--nope"]):
        out = kernel(tmp_path, *args)
        assert out.returncode == 2, (args, out.stderr)
        assert "usage:" in out.stderr


def test_plugin_options_appear_only_when_the_plugin_is_loaded(tmp_path):
    with_plugin = kernel(tmp_path, "run", "--plugins", "configurable", "--help")
    assert with_plugin.returncode == 0
    assert "plugin configurable:" in with_plugin.stdout
    assert "--configurable-shout" in with_plugin.stdout
    without = kernel(tmp_path, "run", "--plugins", "echo", "--help")
    assert "--configurable-shout" not in without.stdout


def test_config_command_writes_the_user_layer(tmp_path):
    assert kernel(tmp_path, "config", "set", "kernel_plugins.echo.enabled", "false").returncode == 0
    assert kernel(tmp_path, "config", "set", "kernel.max_in_flight", "64").returncode == 0
    got = kernel(tmp_path, "config", "get", "kernel.max_in_flight")
    assert got.stdout.strip() == "64" and "config.toml" in got.stderr
    listing = kernel(tmp_path, "plugins", "--json", site=False)
    assert {r["name"]: r["enabled"] for r in json.loads(listing.stdout)}["echo"] is False
    assert kernel(tmp_path, "config", "unset", "kernel_plugins.echo.enabled").returncode == 0
    assert kernel(tmp_path, "config", "unset", "kernel_plugins.echo.enabled").returncode == 1
    whole = json.loads(kernel(tmp_path, "config", "get").stdout)
    assert whole == {"kernel": {"max_in_flight": 64}, "kernel_plugins": {"echo": {}}}
    missing = kernel(tmp_path, "config", "get", "no.such")
    assert missing.returncode == 1
    assert "no.such is not set and no installed plugin reads it" in missing.stderr


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("nonsense", "1", "nonsense: no installed plugin reads this key"),
        ("kernel_plugins.fs.bogus", "3", "kernel_plugins.fs: unknown key(s): bogus"),
        ("kernel_plugins.nope.x", "1", "no installed kernel plugin is named 'nope'"),
        ("kernel.max_in_flight", "lots", "kernel.max_in_flight: expected an integer"),
        ("kernel.max_in_flight", "0", "kernel.max_in_flight: must be at least 1"),
        ("kernel_plugins.fs.max_file_bytes", "0", "max_file_bytes: must be at least 1"),
        ("kernel_plugins.configurable.repeat", "0", "repeat: must be at least 1"),
        ("kernel_plugins.echo.enabled", "maybe", "expected true or false"),
    ],
)
def test_config_set_refuses_what_run_would_refuse(tmp_path, key, value, message):
    out = kernel(tmp_path, "config", "set", key, value, env={"KERNEL_LOG": "info"})
    assert out.returncode == 1, out.stderr
    # One line per problem (the broken test plugin's load failure included);
    # tracebacks only at debug level.
    assert message in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "home" / "config.toml").exists()  # nothing written


def test_config_get_shows_defaults_with_their_origin(tmp_path):
    got = kernel(tmp_path, "config", "get", "kernel.max_in_flight")
    assert got.returncode == 0 and got.stdout.strip() == "256"
    assert "(from defaults)" in got.stderr
    assert (
        kernel(tmp_path, "config", "set", "kernel_plugins.fs.durable_writes", "false").returncode
        == 0
    )
    section = json.loads(kernel(tmp_path, "config", "get", "kernel_plugins.fs").stdout)
    assert section["durable_writes"] is False and section["max_watches_per_connection"] == 256


def test_unread_config_keys_are_warned_about_at_startup(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("[kernal]\nmax_in_flight = 3\n")
    out = kernel(tmp_path, "run", "--plugins", "echo")
    assert out.returncode == 0
    assert "kernal (from " in out.stderr and "no loaded plugin reads this key" in out.stderr


def test_old_plugin_sections_are_refused_with_the_new_place(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        '[plugins.echo]\nenabled = false\n[plugins."bundle@market"]\nenabled = true\n'
    )
    out = kernel(tmp_path, "run", "--plugins", "echo")
    assert out.returncode == 1
    assert "plugins.echo: kernel plugin settings moved to [kernel_plugins.echo]" in out.stderr


def test_concurrent_config_writers_lose_nothing(tmp_path):
    env = subprocess_env(tmp_path / "home")
    argv = [sys.executable, "-m", "kernel", "config", "set"]
    writers = [
        subprocess.Popen(
            [*argv, f"kernel_plugins.configurable.labels.k{i}", f"v{i}"],
            env=env,
            stderr=subprocess.PIPE,
        )
        for i in range(20)
    ]
    codes = [w.wait(timeout=120) for w in writers]
    assert codes == [0] * 20, [w.stderr.read() for w in writers if w.returncode]
    stored = tomllib.loads((tmp_path / "home" / "config.toml").read_text())
    labels = stored["kernel_plugins"]["configurable"]["labels"]
    assert labels == {f"k{i}": f"v{i}" for i in range(20)}


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
