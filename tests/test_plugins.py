"""Plugin discovery, selection, failure isolation and the hook contract.

The test plugins in tests/support/site are real entry points (a .dist-info on
sys.path), so discovery here is the same code path as for installed packages.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pluggy
import pytest

from kernel import hookimpl, hookspec
from kernel.bootstrap import build_kernel
from kernel.plugins import StartupError


def build(tmp_path: Path, **kwargs):
    return build_kernel(home=tmp_path / "home", **kwargs)


def test_requested_plugins_are_exactly_those_served(tmp_path):
    kernel = build(tmp_path, plugins=["echo", "probe"])
    assert kernel.plugins.active() == ["echo", "probe"]
    assert "echo/echo" in kernel.registry.methods()
    assert "server/diagnostics" not in kernel.registry.methods()


def test_default_is_every_installed_plugin_and_failures_are_reported(tmp_path, caplog):
    caplog.set_level(logging.ERROR)
    kernel = build(tmp_path, disable=["clash"])
    records = kernel.plugins.records
    assert {"diagnostics", "echo", "probe", "configurable"} <= set(kernel.plugins.active())
    broken = records["broken_import"]
    assert broken.distribution == "kernel-probe" and broken.version == "0.0.0"
    assert broken.stage == "load" and "ModuleNotFoundError" in broken.error
    assert records["broken_register"].stage == "register"
    assert "registration exploded" in records["broken_register"].error
    # What the failed plugin had declared before raising is withdrawn.
    assert "broken/one" not in kernel.registry.methods()
    assert "plugin broken_import (kernel-probe 0.0.0) failed to load" in caplog.text
    assert records["clash"].disabled_reason == "disabled by --disable"


async def test_startup_failure_withdraws_methods_unless_requested(tmp_path):
    kernel = build(tmp_path, plugins=None, disable=["clash", "broken_register"])
    assert "brokenStartup/ping" in kernel.registry.methods()
    await kernel.start()
    assert kernel.plugins.records["broken_startup"].stage == "start"
    assert "brokenStartup/ping" not in kernel.registry.methods()
    await kernel.stop()

    requested = build(tmp_path, plugins=["broken_startup"])
    with pytest.raises(
        StartupError,
        match=r"plugin broken_startup .* failed to start: "
        r"RuntimeError: startup exploded",
    ):
        await requested.start()


@pytest.mark.parametrize("name", ["broken_import", "broken_register"])
def test_requested_plugin_that_fails_aborts_startup(tmp_path, name):
    with pytest.raises(StartupError) as err:
        build(tmp_path, plugins=[name])
    assert f"plugin {name} (kernel-probe 0.0.0) failed" in str(err.value)


def test_same_method_from_two_plugins_names_both(tmp_path):
    with pytest.raises(StartupError) as err:
        build(tmp_path, plugins=["probe", "clash"])
    assert "method 'probe/sleep' is declared by both 'probe' and 'clash'" in str(err.value)
    with pytest.raises(StartupError, match="declared by both 'clash' and 'probe'"):
        build(tmp_path)  # not requested by name (loaded alphabetically): still fatal


def test_unknown_and_contradictory_names(tmp_path):
    with pytest.raises(StartupError) as err:
        build(tmp_path, plugins=["echo", "nope"])
    assert "unknown plugin(s) nope; installed:" in str(err.value) and "echo" in str(err.value)
    with pytest.raises(StartupError, match="both requested by --plugins and disabled"):
        build(tmp_path, plugins=["echo"], disable=["echo"])


def test_config_can_disable_but_a_request_by_name_wins(tmp_path):
    kernel = build(tmp_path, overrides=["kernel_plugins.echo.enabled=false"], disable=["clash"])
    assert "echo" not in kernel.plugins.active()
    assert kernel.plugins.records["echo"].disabled_reason.startswith("disabled in config")
    kernel = build(tmp_path, plugins=["echo"], overrides=["kernel_plugins.echo.enabled=false"])
    assert kernel.plugins.active() == ["echo"]


def test_managed_requirements_forbid_a_plugin_even_by_name(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "requirements.toml").write_text("[kernel_plugins.echo]\nenabled = false\n")
    kernel = build(tmp_path, disable=["clash"])
    assert kernel.plugins.records["echo"].disabled_reason == "disabled by requirements.toml"
    with pytest.raises(StartupError, match=r"echo is disabled by requirements\.toml"):
        build(tmp_path, plugins=["echo"])


def test_plugin_config_and_cli_options(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        '[kernel_plugins.configurable]\ngreeting = "hi"\nrepeat = 2\n'
    )
    kernel = build(tmp_path, plugins=["configurable"], argv=["--configurable-shout"])
    plugin = kernel.plugins.records["configurable"].plugin
    assert (plugin.settings.greeting, plugin.settings.repeat, plugin.shout) == ("hi", 2, True)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "kernel_plugins.configurable.repeat=0",
            "kernel_plugins.configurable.repeat: must be at least 1 (from -c override)",
        ),
        (
            "kernel_plugins.configurable.repeat='two'",
            "kernel_plugins.configurable.repeat: expected an integer, got string "
            "(from -c override)",
        ),
        (
            "kernel_plugins.configurable.bogus=1",
            "kernel_plugins.configurable: unknown key(s): bogus",
        ),
    ],
)
def test_bad_plugin_config_always_aborts_startup(tmp_path, override, message):
    with pytest.raises(StartupError) as err:
        build(tmp_path, overrides=[override], disable=["clash"])  # not requested by name
    assert message in str(err.value)


def test_each_kernel_gets_its_own_plugin_instances(tmp_path):
    first = build(tmp_path, plugins=["probe"])
    second = build(tmp_path, plugins=["probe"])
    assert first.plugins.records["probe"].plugin is not second.plugins.records["probe"].plugin
    assert first.plugins.pm is not second.plugins.pm


def test_misspelled_kernel_hook_fails_the_plugin(tmp_path):
    class Typo:
        @hookimpl
        def kernel_regster(self, registrar):  # sic
            pass

    kernel = build(tmp_path, disable=["clash"], extra_plugins={"typo": Typo()})
    assert kernel.plugins.records["typo"].error == (
        "StartupError: implements unknown hook kernel_regster"
    )
    with pytest.raises(StartupError, match="implements unknown hook kernel_regster"):
        build(tmp_path, plugins=["typo"], extra_plugins={"typo": Typo()})


class FamilySpec:
    @hookspec(firstresult=True)
    def family_reviewer(self, item: str) -> str | None:
        """Who reviews ``item``; first answer wins."""


class Family:
    @hookimpl
    def kernel_add_hookspecs(self, pluginmanager: pluggy.PluginManager) -> None:
        pluginmanager.add_hookspecs(FamilySpec)

    @hookimpl
    def kernel_configure(self, kernel) -> None:
        self.kernel = kernel

    @hookimpl
    def kernel_register(self, registrar) -> None:
        registrar.method("family/review", self.review)

    async def review(self, params, ctx):
        _, reviewer = await self.kernel.plugins.first("family_reviewer", item="x")
        return {"reviewer": reviewer}


class Reviewer:
    @hookimpl
    def family_reviewer(self, item: str) -> str:
        return f"guardian reviews {item}"


async def test_a_family_publishes_hooks_that_another_plugin_answers(inproc):
    plugins = {"family": Family(), "reviewer": Reviewer()}
    async with inproc(plugins=["family", "reviewer"], extra_plugins=plugins) as client:
        await client.initialize()
        assert await client.request("family/review") == {"reviewer": "guardian reviews x"}


class Faulty:
    @hookimpl
    def kernel_connection_opened(self, connection):
        raise RuntimeError("opened hook broke")

    @hookimpl
    def kernel_initialize_response(self, connection, params):
        raise RuntimeError("initialize hook broke")

    @hookimpl
    def kernel_connection_closed(self, connection):
        raise RuntimeError("closed hook broke")


class Extender:
    @hookimpl
    def kernel_initialize_response(self, connection, params):
        return {"extender": {"client": params.client_info.name}}


async def test_one_plugins_hook_error_does_not_hide_anothers(inproc, caplog):
    plugins = {"faulty": Faulty(), "extender": Extender()}
    async with inproc(plugins=["faulty", "extender", "echo"], extra_plugins=plugins) as client:
        result = await client.initialize(name="iso")
        assert result["extender"] == {"client": "iso"}
        assert await client.request("echo/echo", {"message": "ok"}) == {"message": "ok"}
    assert "opened hook broke" in caplog.text
    assert "initialize hook broke" in caplog.text
    assert "closed hook broke" in caplog.text


async def test_failed_requested_startup_still_shuts_down_started_plugins(serve):
    async with serve(plugins=["probe", "broken_startup"], close=False) as s:
        assert await s.process.wait() == 1
        assert s.events() == ["startup", "shutdown"]
        assert "cannot start: plugin broken_startup" in s.log()


class Recorder:
    def __init__(self, events: list[str], name: str) -> None:
        self.events, self.name = events, name

    @hookimpl
    async def kernel_startup(self, kernel):
        self.events.append(f"start {self.name}")

    @hookimpl
    async def kernel_shutdown(self, kernel):
        self.events.append(f"stop {self.name}")


class FailingStart:
    @hookimpl
    def kernel_startup(self, kernel):
        raise RuntimeError("no")


async def test_only_started_plugins_are_shut_down_in_reverse_order(tmp_path):
    events: list[str] = []
    plugins = {"a": Recorder(events, "a"), "bad": FailingStart(), "c": Recorder(events, "c")}
    kernel = build(tmp_path, plugins=["a", "bad", "c"], extra_plugins=plugins)
    with pytest.raises(StartupError):
        await kernel.start()
    await kernel.stop(0.0)
    assert events == ["start a", "stop a"]

    events.clear()
    kernel = build(
        tmp_path,
        plugins=["a", "c"],
        extra_plugins={"a": Recorder(events, "a"), "c": Recorder(events, "c")},
    )
    await kernel.start()
    await kernel.stop(0.0)
    assert events == ["start a", "start c", "stop c", "stop a"]


class RoutesFail(Recorder):
    @hookimpl
    def kernel_http_routes(self, kernel, router):
        raise RuntimeError("no routes today")


async def test_a_plugin_that_fails_after_starting_still_shuts_down(tmp_path):
    from kernel.transports.network import NetworkListener, parse_listen_url

    events: list[str] = []
    plugins = {"late": RoutesFail(events, "late"), "other": Recorder(events, "other")}
    kernel = build(tmp_path, discover=False, extra_plugins=plugins)
    await kernel.start()
    listener = NetworkListener(kernel, parse_listen_url("ws://127.0.0.1:0", tmp_path), [])
    await listener.start()
    try:
        assert kernel.plugins.records["late"].stage == "add HTTP routes"
        assert kernel.plugins.active() == ["other"]
    finally:
        await listener.stop()
        await kernel.stop(0.0)
        await listener.close()
    assert events == ["start late", "start other", "stop other", "stop late"]


class Ordered:
    def __init__(self, events: list[str], name: str) -> None:
        self.events, self.name = events, name

    @hookimpl
    def kernel_initialize_response(self, connection, params):
        self.events.append(self.name)


class First(Ordered):
    @hookimpl(tryfirst=True)
    def kernel_initialize_response(self, connection, params):
        self.events.append(self.name)


class Last(Ordered):
    @hookimpl(trylast=True)
    def kernel_initialize_response(self, connection, params):
        self.events.append(self.name)


class Wrapping:
    def __init__(self, events: list[str]) -> None:
        self.events = events

    @hookimpl(wrapper=True)
    def kernel_register(self, registrar):
        self.events.append(f"before {registrar.owner}")
        result = yield
        self.events.append(f"after {registrar.owner}")
        return result

    @hookimpl(hookwrapper=True)
    def kernel_initialize_response(self, connection, params):
        self.events.append("old-style wrapper in")
        yield
        self.events.append("old-style wrapper out")


class Registers:
    @hookimpl
    def kernel_register(self, registrar):
        registrar.method("registers/ping", lambda p, c: {"pong": True}, params=None, result=None)


class FailsToRegister:
    @hookimpl
    def kernel_register(self, registrar):
        raise RuntimeError("nope")


async def test_pluggy_order_markers_and_wrappers_are_honoured(tmp_path):
    from kernel.client import Client

    events: list[str] = []
    plugins = {
        "a": Ordered(events, "a"),
        "last": Last(events, "last"),
        "b": Ordered(events, "b"),
        "first": First(events, "first"),
        "wrap": Wrapping(events),
        "registers": Registers(),
        "fails": FailsToRegister(),
    }
    kernel = build(tmp_path, discover=False, extra_plugins=plugins)
    await kernel.start()
    async with await Client.in_process(kernel) as client:
        registered = [e for e in events if e.startswith(("before", "after"))]
        # The wrapper runs around each plugin's own call; as pluggy defines,
        # a failing call raises at its yield (so no "after fails").
        assert registered == ["before fails", "before registers", "after registers"]
        assert kernel.plugins.records["fails"].error == "RuntimeError: nope"
        events.clear()
        await client.initialize()
        plain = [e for e in events if not e.startswith("old-style")]
        assert plain == ["first", "a", "b", "last"]
        assert events.count("old-style wrapper in") == 4
    await kernel.stop(0.0)


class WrapsAsync:
    @hookimpl(wrapper=True)
    def kernel_startup(self, kernel):
        return (yield)


def test_a_wrapper_around_a_may_be_async_hook_is_refused_at_load(tmp_path):
    kernel = build(tmp_path, discover=False, extra_plugins={"wraps": WrapsAsync()})
    assert "wraps kernel_startup, whose implementations may be async" in (
        kernel.plugins.records["wraps"].error or ""
    )
