"""kernel.testing, used the way a plugin author would: in a separate pytest run."""

from __future__ import annotations

pytest_plugins = ["pytester"]

PLUGIN_AUTHOR_TESTS = """
import attrs
import pytest
from kernel import hookimpl, RpcError


@attrs.frozen
class GreetParams:
    name: str


class Greeter:
    @hookimpl
    def kernel_register(self, registrar):
        registrar.method("acme/greet", self.greet, params=GreetParams)

    async def greet(self, params, ctx):
        return {"greeting": f"hello {params.name}"}


@pytest.mark.asyncio
async def test_in_process(kernel_client):
    async with kernel_client(["acme"], extra_plugins={"acme": Greeter()}) as client:
        await client.initialize()
        assert await client.request("acme/greet", {"name": "ada"}) == {"greeting": "hello ada"}
        with pytest.raises(RpcError) as err:
            await client.request("acme/greet", {})
        assert err.value.code == -32602
        assert client.kernel.plugins.active() == ["acme"]


class LoudEcho:
    @hookimpl
    def kernel_register(self, registrar):
        registrar.method("echo/echo", self.echo, params=None, result=None)

    def echo(self, params, ctx):
        return {"message": "replaced"}


@pytest.mark.asyncio
async def test_an_object_replaces_the_installed_plugin_of_its_name(kernel_client):
    # echo is installed; the object under test wins (the docs' own pattern).
    async with kernel_client(["echo"], extra_plugins={"echo": LoudEcho()}) as client:
        await client.initialize()
        assert await client.request("echo/echo", {"message": "m"}) == {"message": "replaced"}


def test_startup_error_is_exported():
    from kernel import StartupError
    assert issubclass(StartupError, Exception)


@pytest.mark.asyncio
async def test_subprocess(kernel_process):
    async with kernel_process(["echo"]) as client:
        await client.initialize()
        assert await client.request("echo/echo", {"message": "m"}) == {"message": "m"}
    assert "kernel serving stdio://" in client.stderr_path.read_text()
"""


def test_fixtures_work_for_plugin_authors(pytester):
    pytester.makepyfile(test_plugin_author=PLUGIN_AUTHOR_TESTS)
    # pytester's directory has no pytest configuration: pytest-asyncio runs
    # in its default strict mode, as in a plugin author's fresh project.
    result = pytester.runpytest_subprocess("-p", "asyncio", "-q")
    result.assert_outcomes(passed=4)
