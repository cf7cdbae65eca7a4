"""The reference's own terminal UI (codex 0.169.0, ``--remote``) runs a full session against us.

Runs when the codex CLI and tmux are installed (``.ci/run`` installs both);
otherwise skipped with the reason. The TUI talks to the kernel through a
recording proxy, so the test also reports every request the TUI made and
fails if any of them was answered with an error.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.support.model_server import function_call, text
from tests.support.tui import Recorder, Tmux, codex_cli

CODEX = codex_cli()
pytestmark = [
    pytest.mark.skipif(
        CODEX is None,
        reason="the codex CLI (npm @openai/codex@0.169.0) is not installed; .ci/run installs it",
    ),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap"),
]

COMPOSER = "Ask Codex to do anything"


def built_in_plugins() -> list[str]:
    """Every plugin this project ships (the test site's probes left out)."""
    pyproject = (Path(__file__).parent.parent / "pyproject.toml").read_text()
    section = pyproject.split('[project.entry-points."kernel.plugins"]', 1)[1].split("\n[", 1)[0]
    return re.findall(r"^(\w+) = ", section, re.M)


def route(made: str):
    """The stand-in's answers: a title, a greeting, or a command to approve."""

    def answer(request):
        body = request.body or {}
        fmt = (body.get("text") or {}).get("format") or {}
        if fmt.get("type") == "json_schema":  # the TUI's task-title thread
            return text(json.dumps({"title": "Say hello"}))
        last = (body.get("input") or [{}])[-1]
        if last.get("type") == "function_call_output":
            return text("The command ran")
        if "please run" in json.dumps(last):
            arguments = {
                "cmd": f"touch {made} && echo done",
                "login": False,
                "sandbox_permissions": "require_escalated",
                "justification": "create the marker file",
            }
            return function_call("exec_command", json.dumps(arguments))
        return text("Hello from the stand-in")

    return answer


async def test_the_codex_tui_runs_a_session(listen, model_server, tmp_path, checker):
    made = tmp_path / "approved.txt"
    model_server.router = route(str(made))
    home, codex_home, work = tmp_path / "home", tmp_path / "codex-home", tmp_path / "work"
    for folder in (home, codex_home, work):
        folder.mkdir()
    (home / "config.toml").write_text(
        'model = "gpt-5.5"\nmodel_provider = "mock"\n\n[model_providers.mock]\n'
        f'name = "mock"\nbase_url = "{model_server.base_url}"\nwire_api = "responses"\n'
        "requires_openai_auth = false\nrequest_max_retries = 0\nstream_max_retries = 0\n"
    )
    async with (
        listen(plugins=built_in_plugins(), home=home) as server,
        Recorder(server.url()) as recorder,
    ):
        tui = Tmux([str(CODEX), "--remote", recorder.url], work, {"CODEX_HOME": str(codex_home)})
        try:
            screen = await tui.wait_for(COMPOSER, 60)
            assert "■" not in screen and "Error" not in screen, screen
            await tui.enter("say hello")
            await tui.wait_for("Hello from the stand-in")
            await tui.enter("please run the command")
            await tui.wait_for("Would you like to run the following command?")
            tui.type("y")
            await tui.wait_for("The command ran")
            assert made.exists()
            await tui.enter("/quit")
            screen = await tui.wait_for("EXITED", 30)
            assert "EXITED 0" in screen, screen
        finally:
            tui.kill()
            # What the TUI asked for, kept next to the test's files even when it failed.
            requests = recorder.requests()
            (tmp_path / "tui-requests.json").write_text(json.dumps(requests, indent=1))
            print("requests the TUI made:", ", ".join(requests))
    for needed in ("initialize", "account/read", "model/list", "thread/start", "turn/start"):
        assert needed in requests
    assert recorder.errors() == {}
    assert recorder.frames and recorder.violations(checker) == []
