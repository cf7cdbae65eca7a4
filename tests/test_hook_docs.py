"""Every hook is documented: in its docstring and in docs/hooks.md."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from kernel.hookspecs import KernelSpec

HOOKS = sorted(
    name
    for name, _ in inspect.getmembers(KernelSpec, inspect.isfunction)
    if name.startswith("kernel_")
)
DOCS = (Path(__file__).parent.parent / "docs" / "hooks.md").read_text()


def test_there_are_hooks():
    assert len(HOOKS) >= 9


@pytest.mark.parametrize("name", HOOKS)
def test_hookspec_docstring_has_every_section(name):
    doc = inspect.getdoc(getattr(KernelSpec, name)) or ""
    for section in ("When:", "Parameters:", "Returns:", "Errors:"):
        assert section in doc, f"{name} docstring lacks {section!r}"


@pytest.mark.parametrize("name", HOOKS)
def test_hook_has_a_section_in_docs(name):
    section = re.search(rf"^## `{name}\((.*?)\)`\n(.*?)(?=^## |\Z)", DOCS, re.M | re.S)
    assert section, f"docs/hooks.md has no '## `{name}(...)`' section"
    params = [p for p in inspect.signature(getattr(KernelSpec, name)).parameters if p != "self"]
    assert section.group(1).replace(" ", "").split(",") == params or params == [], name
    body = section.group(2)
    for word in ("When", "Return", "Errors"):
        assert word in body, f"docs/hooks.md section for {name} does not say {word}"


def test_docs_mention_no_hook_that_does_not_exist():
    documented = set(re.findall(r"^## `(kernel_\w+)\(", DOCS, re.M))
    assert documented == set(HOOKS)


THREADS_DOCS = (Path(__file__).parent.parent / "docs" / "threads.md").read_text()


def _family_hooks() -> list[str]:
    from plugins_builtin.threads.hookspecs import ThreadsSpec

    return sorted(
        name
        for name, _ in inspect.getmembers(ThreadsSpec, inspect.isfunction)
        if name.startswith("threads_")
    )


@pytest.mark.parametrize("name", _family_hooks())
def test_every_threads_hook_is_documented(name):
    from plugins_builtin.threads.hookspecs import ThreadsSpec

    doc = inspect.getdoc(getattr(ThreadsSpec, name)) or ""
    for section in ("When:", "Parameters:", "Returns:", "Errors:"):
        assert section in doc, f"{name} docstring lacks {section!r}"
    section = re.search(rf"^### `{name}\((.*?)\)`\n(.*?)(?=^##|\Z)", THREADS_DOCS, re.M | re.S)
    assert section, f"docs/threads.md has no '### `{name}(...)`' section"
    params = [p for p in inspect.signature(getattr(ThreadsSpec, name)).parameters if p != "self"]
    assert section.group(1).replace(" ", "").split(",") == params, name
    for word in ("When", "Return", "Errors"):
        assert word in section.group(2), f"docs/threads.md section for {name} lacks {word}"


HOOKS_FAMILY_DOCS = (Path(__file__).parent.parent / "docs" / "hooks_family.md").read_text()


def _hooks_family_hooks() -> list[str]:
    from plugins_builtin.hooks.hookspecs import HooksSpec

    return sorted(
        name
        for name, _ in inspect.getmembers(HooksSpec, inspect.isfunction)
        if name.startswith("hooks_")
    )


@pytest.mark.parametrize("name", _hooks_family_hooks())
def test_every_hooks_family_hook_is_documented(name):
    from plugins_builtin.hooks.hookspecs import HooksSpec

    doc = inspect.getdoc(getattr(HooksSpec, name)) or ""
    for section in ("When:", "Parameters:", "Returns:", "Errors:"):
        assert section in doc, f"{name} docstring lacks {section!r}"
    section = re.search(rf"^### `{name}\((.*?)\)`\n(.*?)(?=^##|\Z)", HOOKS_FAMILY_DOCS, re.M | re.S)
    assert section, f"docs/hooks_family.md has no '### `{name}(...)`' section"
    for word in ("When", "Return", "Errors"):
        assert word in section.group(2), f"docs/hooks_family.md section for {name} lacks {word}"


CONFIG_DOCS = (Path(__file__).parent.parent / "docs" / "config.md").read_text()


def test_the_config_family_hook_is_documented():
    from plugins_builtin.config.hookspecs import ConfigSpec

    names = [n for n, _ in inspect.getmembers(ConfigSpec, inspect.isfunction)]
    assert names == ["config_features"]
    doc = inspect.getdoc(ConfigSpec.config_features) or ""
    for section in ("When:", "Parameters:", "Returns:", "Errors:"):
        assert section in doc
    section = re.search(r"^### `config_features\(\)`\n(.*?)(?=^##|\Z)", CONFIG_DOCS, re.M | re.S)
    assert section and all(w in section.group(1) for w in ("When", "Return", "Errors"))
