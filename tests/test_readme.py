"""The README's commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    test_block = readme.split("**Install and test:**", 1)[1]
    command = re.search(r"```sh\n(.+?)\n```", test_block, re.S).group(1).strip()
    assert command in (ROOT / ".ci" / "run").read_text()


def test_readme_lists_every_built_in_plugin():
    pyproject = (ROOT / "pyproject.toml").read_text()
    section = pyproject.split('[project.entry-points."kernel.plugins"]', 1)[1].split("\n[", 1)[0]
    names = re.findall(r"^(\w+) = ", section, re.M)
    readme = (ROOT / "README.md").read_text()
    assert names and all(f"`{name}` (built in)" in readme for name in names)
