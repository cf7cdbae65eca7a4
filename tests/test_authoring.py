"""The plugin author's tools: ``kernel new-plugin`` and ``kernel call``, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, subprocess_env
from tests.support.calls import strict_pytest
from tests.test_cli import kernel


def run(argv: list[str], env: dict[str, str], cwd: Path | None = None, timeout: float = 300):
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_new_plugin_is_installable_and_passes_its_own_tests(tmp_path):
    package = tmp_path / "kernel-acme"
    made = kernel(tmp_path, "new-plugin", "acme", "--dir", str(package))
    assert made.returncode == 0, made.stderr
    assert {p.name for p in package.iterdir()} == {
        "pyproject.toml",
        "kernel_acme.py",
        "tests",
        "README.md",
    }
    site = tmp_path / "site"
    env = subprocess_env(tmp_path / "home", {"PYTHONPATH": f"{site}:{REPO}"})
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    installed = run([*pip, "--target", str(site), str(package)], env)
    assert installed.returncode == 0, installed.stderr
    # Its own tests, in pytest-asyncio's default strict mode, with the entry point installed.
    tested = strict_pytest(package, env, "tests")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "4 passed" in tested.stdout
    called = run(
        [
            sys.executable,
            "-m",
            "kernel",
            "call",
            "acme/hello",
            '{"name": "x"}',
            "--plugins",
            "acme",
        ],
        env,
    )
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout) == {"message": "hello, x"}


def test_new_plugin_refuses_bad_names_and_existing_directories(tmp_path):
    bad = kernel(tmp_path, "new-plugin", "Bad-Name", "--dir", str(tmp_path / "x"))
    assert bad.returncode == 2 and "is not a plugin name" in bad.stderr
    (tmp_path / "taken").mkdir()
    taken = kernel(tmp_path, "new-plugin", "ok", "--dir", str(tmp_path / "taken"))
    assert taken.returncode == 1 and "already exists" in taken.stderr
    assert list((tmp_path / "taken").iterdir()) == []


def test_call_in_process_prints_the_result_or_the_error(tmp_path):
    quiet = {"KERNEL_LOG": ""}  # the test harness's own default is debug
    ok = kernel(tmp_path, "call", "echo/echo", '{"message": "hi"}', "--plugins", "echo", env=quiet)
    assert ok.returncode == 0 and json.loads(ok.stdout) == {"message": "hi"}
    assert ok.stderr == ""  # one-shot commands log only problems
    failed = kernel(tmp_path, "call", "echo/echo", '{"message": 5}', "--plugins", "echo")
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["code"] == -32602
    assert "error -32602: Invalid params: message" in failed.stderr
    unknown = kernel(tmp_path, "call", "nope/nope", "--plugins", "echo")
    assert unknown.returncode == 1 and json.loads(unknown.stdout)["code"] == -32601
    garbage = kernel(tmp_path, "call", "echo/echo", "{not json", "--plugins", "echo")
    assert garbage.returncode == 1 and "PARAMS is not valid JSON" in garbage.stderr


def test_call_shows_notifications_when_asked(tmp_path):
    out = kernel(
        tmp_path, "call", "probe/ticks", '{"count": 2}', "--plugins", "probe", "--notifications"
    )
    assert out.returncode == 0, out.stderr
    notes = [json.loads(line) for line in out.stderr.splitlines() if line.startswith("{")]
    assert [n["params"]["index"] for n in notes] == [0, 1]


async def test_call_reaches_a_running_server(listen, short_tmp):
    home = short_tmp / "home"
    async with listen(listen=["ws://127.0.0.1:0", "unix://"], home=home) as server:
        env = subprocess_env(home)
        for target in (server.url("ws"), "unix://", server.url("unix")):
            out = run(
                [sys.executable, "-m", "kernel", "call", "probe/state", "--connect", target],
                env,
                timeout=60,
            )
            assert out.returncode == 0, (target, out.stderr)
            assert json.loads(out.stdout)["pid"] == server.process.pid
    out = run(
        [sys.executable, "-m", "kernel", "call", "probe/state", "--connect", "ws://127.0.0.1:9"],
        subprocess_env(home),
        timeout=60,
    )
    assert out.returncode == 1 and "cannot connect to ws://127.0.0.1:9" in out.stderr
