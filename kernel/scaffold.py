"""``kernel new-plugin NAME``: a new, installable plugin package that passes its own tests.

The package holds one method (``NAME/hello``, params and result types
from its annotations), one notification, a ``[kernel_plugins.NAME]``
settings section, and tests that use the kernel's test kit in pytest-asyncio's
default (strict) mode. Its README says how to install, test and run it.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["NAME_PATTERN", "new_plugin"]

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}")

_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "kernel-{name}"
version = "0.1.0"
description = "The {name}/* methods for the kernel app-server"
requires-python = ">=3.11"
dependencies = ["kernel-app-server"]

[project.optional-dependencies]
test = ["pytest>=8", "pytest-asyncio>=0.23"]

# The entry-point name is the plugin's name: --plugins {name},
# [kernel_plugins.{name}] in config.toml.
[project.entry-points."kernel.plugins"]
{name} = "kernel_{name}:{cls}Plugin"

[tool.setuptools]
py-modules = ["kernel_{name}"]
"""

_MODULE = '''\
"""{name}: a kernel plugin serving ``{name}/*`` (made by ``kernel new-plugin``)."""

from __future__ import annotations

import attrs

from kernel import RequestContext, hookimpl, method, notification


@attrs.frozen
class {cls}Settings:
    """``[kernel_plugins.{name}]`` in config.toml."""

    greeting: str = "hello"


@attrs.frozen
class {cls}HelloParams:
    name: str


@attrs.frozen
class {cls}HelloResponse:
    message: str


@attrs.frozen
class {cls}GreetedNotification:
    name: str


class {cls}Plugin:
    """Serves ``{name}/hello`` and sends ``{name}/greeted``."""

    greeted = notification("{name}/greeted", {cls}GreetedNotification)

    def __init__(self) -> None:
        self.settings = {cls}Settings()

    @hookimpl
    def kernel_settings(self) -> type[{cls}Settings]:
        return {cls}Settings

    @hookimpl
    def kernel_configure(self, settings: {cls}Settings) -> None:
        self.settings = settings

    @method("{name}/hello")
    async def hello(self, params: {cls}HelloParams, ctx: RequestContext) -> {cls}HelloResponse:
        await ctx.notify(self.greeted, {cls}GreetedNotification(params.name))
        return {cls}HelloResponse(f"{{self.settings.greeting}}, {{params.name}}")
'''

_TESTS = '''\
"""Tests of the {name} plugin with the kernel's test kit (kernel_client, kernel_process)."""

import pytest

from kernel import RpcError
from kernel_{name} import {cls}Plugin


@pytest.mark.asyncio
async def test_hello_answers_and_notifies(kernel_client):
    # In-process; the plugin object is used whether or not the package is installed.
    async with kernel_client(["{name}"], extra_plugins={{"{name}": {cls}Plugin()}}) as client:
        await client.initialize()
        answer = await client.request("{name}/hello", {{"name": "ada"}})
        assert answer == {{"message": "hello, ada"}}
        note = await client.next_notification("{name}/greeted")
        assert note.params == {{"name": "ada"}}


@pytest.mark.asyncio
async def test_greeting_comes_from_config(kernel_client):
    plugin = {{"{name}": {cls}Plugin()}}
    overrides = ["kernel_plugins.{name}.greeting=hi"]
    async with kernel_client(["{name}"], extra_plugins=plugin, overrides=overrides) as client:
        await client.initialize()
        assert await client.request("{name}/hello", {{"name": "bo"}}) == {{"message": "hi, bo"}}


@pytest.mark.asyncio
async def test_bad_params_name_the_field(kernel_client):
    async with kernel_client(["{name}"], extra_plugins={{"{name}": {cls}Plugin()}}) as client:
        await client.initialize()
        with pytest.raises(RpcError) as error:
            await client.request("{name}/hello", {{"name": 5}})
        assert error.value.code == -32602 and "name" in error.value.message


@pytest.mark.asyncio
async def test_installed_over_stdio(kernel_process):
    # `kernel run --plugins {name}` in a subprocess: needs the package installed.
    async with kernel_process(["{name}"]) as client:
        await client.initialize()
        assert await client.request("{name}/hello", {{"name": "cy"}}) == {{"message": "hello, cy"}}
'''

_README = """\
# kernel-{name}

A plugin for the kernel app-server that serves `{name}/hello` and sends
`{name}/greeted`, with a `[kernel_plugins.{name}]` section in config.toml
(`greeting`, default `"hello"`).

```sh
pip install -e '.[test]'        # installs the entry point `{name}`
pytest                          # runs tests/ with the kernel's test kit
kernel run --plugins {name}     # serves it over stdio
kernel call {name}/hello '{{"name": "ada"}}' --plugins {name}
```
"""


def new_plugin(name: str, directory: Path) -> list[Path]:
    """Write the package for plugin ``name`` into ``directory`` (which must not exist)."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a plugin name: use lowercase letters, digits and _, "
            "starting with a letter (at most 40)"
        )
    if directory.exists():
        raise FileExistsError(f"{directory} already exists; choose another --dir")
    cls = "".join(part.capitalize() for part in name.split("_"))
    files = {
        "pyproject.toml": _PYPROJECT,
        f"kernel_{name}.py": _MODULE,
        f"tests/test_{name}.py": _TESTS,
        "README.md": _README,
    }
    written = []
    for relative, template in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(name=name, cls=cls))
        written.append(path)
    return written
