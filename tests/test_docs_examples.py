"""The documentation's examples run, so they cannot rot.

* docs/plugin-authors.md: every code block whose first line names a file
  (``# acme_kernel.py``) is written out; the plugin's tests then run in a
  separate pytest, in pytest-asyncio's default strict mode, as a plugin
  author would run them, and the pyproject's entry point must name the
  plugin class of the module shown.
* docs/client.md and the README's client snippet run against the installed
  echo plugin.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

from tests.conftest import REPO, subprocess_env
from tests.support.calls import strict_pytest

DOCS = REPO / "docs"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)


def named_blocks(markdown: str) -> dict[str, str]:
    """``{file name: code}`` for fenced blocks starting with ``# name.ext``."""
    found = {}
    for _, body in FENCE.findall(markdown):
        first, _, rest = body.partition("\n")
        match = re.fullmatch(r"# ([\w.-]+\.(?:py|toml))", first.strip())
        if match:
            found[match.group(1)] = body if first.endswith(".py") else rest
    return found


def blocks(markdown: str, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(markdown) if lang == language]


def test_plugin_author_guide_examples_run(tmp_path):
    files = named_blocks((DOCS / "plugin-authors.md").read_text())
    assert {"pyproject.toml", "acme_kernel.py", "test_acme.py"} <= set(files)
    for name, code in files.items():
        (tmp_path / name).write_text(code)
    project = tomllib.loads(files["pyproject.toml"])
    target = project["project"]["entry-points"]["kernel.plugins"]["acme"]
    module, _, cls = target.partition(":")
    assert f"{module}.py" in files and f"class {cls}:" in files[f"{module}.py"]
    env = subprocess_env(tmp_path / "home", {"PYTHONPATH": f"{tmp_path}:{REPO}"})
    run = strict_pytest(tmp_path, env, "test_acme.py")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout


def _run_script(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "example.py"
    script.write_text(code)
    env = subprocess_env(tmp_path / "home", {"PYTHONPATH": str(REPO)})
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
    )


def test_client_guide_example_runs(tmp_path):
    (code,) = blocks((DOCS / "client.md").read_text(), "python")
    out = _run_script(tmp_path, code)
    assert out.returncode == 0, out.stderr
    assert "{'message': 'hi'}" in out.stdout and "-32602" in out.stdout


def test_readme_client_snippet_runs(tmp_path):
    readme = (REPO / "README.md").read_text()
    snippet = next(b for b in blocks(readme, "python") if "Client.spawn" in b)
    imports = "\n".join(line for line in snippet.splitlines() if line.startswith("from "))
    body = "\n".join(line for line in snippet.splitlines() if not line.startswith("from "))
    code = f"import asyncio\n{imports}\n\nasync def main():\n{textwrap.indent(body, '    ')}\n"
    out = _run_script(tmp_path, code + "\nasyncio.run(main())\n")
    assert out.returncode == 0, out.stderr
    assert "{'message': 'hi'}" in out.stdout


async def test_readme_turn_snippet_runs_against_a_model(tmp_path, model_server):
    from tests.support.model_server import text

    model_server.responses.append(text("It serves ", "the protocol."))
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        'model_provider = "mock"\n[model_providers.mock]\n'
        f'base_url = "{model_server.base_url}"\nrequest_max_retries = 0\n'
    )
    readme = (REPO / "README.md").read_text()
    snippet = next(b for b in blocks(readme, "python") if "turn/start" in b)
    imports = "\n".join(line for line in snippet.splitlines() if line.startswith("from "))
    body = "\n".join(line for line in snippet.splitlines() if not line.startswith("from "))
    code = f"import asyncio\n{imports}\n\nasync def main():\n{textwrap.indent(body, '    ')}\n"
    script = tmp_path / "turn.py"
    script.write_text(code + "\nasyncio.run(main())\n")
    env = subprocess_env(home, {"PYTHONPATH": str(REPO)})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert out.decode() == "It serves the protocol."
