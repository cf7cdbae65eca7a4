"""Plugins used by the kernel's own tests, found via PYTHONPATH as entry points.

``probe`` serves ``probe/*`` methods that exercise the kernel: slow handlers,
failures, notifications, server→client requests, experimental fields, stray
prints. It appends lifecycle events to ``<home>/probe-events.log`` so tests
in another process can see hooks run.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import time
from pathlib import Path
from typing import Any

import attrs

from kernel import ConfigError, RpcError, field, hookimpl


@attrs.frozen
class SleepParams:
    ms: int
    label: str = ""


@attrs.frozen
class LabelResult:
    label: str


@attrs.frozen
class BlockParams:
    seconds: float
    timeout_s: float | None = None


@attrs.frozen
class TickParams:
    count: int
    method: str = "probe/tick"


@attrs.frozen
class Tick:
    index: int
    secret_note: str | None = field(default=None, experimental=True)


@attrs.frozen
class AskParams:
    question: str
    timeout_s: float | None = None


@attrs.frozen
class Question:
    question: str


@attrs.frozen
class Answer:
    answer: str


@attrs.frozen
class Inner:
    flag: bool
    hidden: str | None = field(default=None, experimental=True)


@attrs.frozen
class GatedParams:
    name: str
    inner: Inner | None = None
    preview: str | None = field(default=None, experimental=True)


@attrs.frozen
class GatedResult:
    name: str
    preview: str | None = field(default=None, experimental=True)
    inner: Inner | None = None


REQUEST_TAG: contextvars.ContextVar[str | None] = contextvars.ContextVar("probe_tag", default=None)


class ProbePlugin:
    """Stateful plugin: one instance per kernel."""

    def __init__(self) -> None:
        self.home: Path | None = None
        self.kernel: Any = None
        self.opened = 0

    def _event(self, text: str) -> None:
        if self.home is not None:
            with (self.home / "probe-events.log").open("a") as handle:
                handle.write(text + "\n")

    @hookimpl
    def kernel_configure(self, kernel: Any) -> None:
        self.kernel = kernel
        self.home = kernel.home
        kernel.home.mkdir(parents=True, exist_ok=True)

    @hookimpl
    def kernel_register(self, registrar: Any) -> None:
        registrar.method("probe/sleep", self.sleep, params=SleepParams, result=LabelResult)
        registrar.method("probe/fail", self.fail)
        registrar.method("probe/rpcError", self.rpc_error)
        registrar.method("probe/syncFail", self.sync_fail)
        registrar.method("probe/ticks", self.ticks, params=TickParams)
        registrar.method("probe/ask", self.ask, params=AskParams, result=Answer)
        registrar.method("probe/gated", self.gated, params=GatedParams, result=GatedResult)
        registrar.method("probe/print", self.print_to_stdout)
        registrar.method("probe/state", self.state)
        registrar.method("probe/block", self.block, params=BlockParams)
        registrar.method("probe/taskSemantics", self.task_semantics)
        registrar.notification("probe/tick", params=Tick)
        registrar.notification("probe/other", params=Tick)
        registrar.notification("probe/previewTick", params=Tick, experimental=True)
        registrar.server_request("probe/question", params=Question, result=Answer)

    @hookimpl
    async def kernel_startup(self, kernel: Any) -> None:
        self._event("startup")

    @hookimpl
    async def kernel_shutdown(self, kernel: Any) -> None:
        await asyncio.sleep(0)
        self._event("shutdown")

    @hookimpl
    def kernel_connection_opened(self, connection: Any) -> None:
        self.opened += 1
        connection.state["probe"] = {"opened": True}
        self._event(f"opened {connection.id}")

    @hookimpl
    async def kernel_connection_closed(self, connection: Any) -> None:
        self._event(f"closed {connection.id}")

    @hookimpl
    def kernel_initialize_response(self, connection: Any, params: Any) -> dict[str, Any]:
        return {"probe": {"experimental": connection.experimental}, "userAgent": "overridden?"}

    async def sleep(self, params: SleepParams, ctx: Any) -> LabelResult:
        try:
            await asyncio.sleep(params.ms / 1000)
        except asyncio.CancelledError:
            self._event(f"cancelled {params.label}")
            raise
        self._event(f"slept {params.label}")
        return LabelResult(params.label)

    async def fail(self, params: None, ctx: Any) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("probe failure with secret detail hunter2")

    async def rpc_error(self, params: None, ctx: Any) -> None:
        raise RpcError(-32010, "probe says no", {"reason": "testing"})

    def sync_fail(self, params: None, ctx: Any) -> None:
        raise ValueError("sync probe failure")

    async def ticks(self, params: TickParams, ctx: Any) -> dict[str, int]:
        delivered = 0
        for i in range(params.count):
            note = Tick(index=i, secret_note="preview-only")
            if await ctx.connection.notify(params.method, note):
                delivered += 1
        return {"delivered": delivered}

    async def ask(self, params: AskParams, ctx: Any) -> Answer:
        kwargs = {} if params.timeout_s is None else {"timeout": params.timeout_s}
        return await ctx.connection.request("probe/question", Question(params.question), **kwargs)

    def gated(self, params: GatedParams, ctx: Any) -> GatedResult:
        return GatedResult(
            name=params.name, preview="preview-value", inner=Inner(flag=True, hidden="hidden-value")
        )

    def print_to_stdout(self, params: None, ctx: Any) -> dict[str, bool]:
        print("this stray print must not reach the protocol stream")
        return {"printed": True}

    async def task_semantics(self, params: None, ctx: Any) -> dict[str, Any]:
        """What a handler can rely on about its task and context."""
        seen_tag = REQUEST_TAG.get()
        REQUEST_TAG.set(f"request {ctx.request_id}")
        task = asyncio.current_task()
        timed_out = False
        try:
            async with asyncio.timeout(0.05):
                await asyncio.sleep(1)
        except TimeoutError:
            timed_out = True
        async with asyncio.TaskGroup() as group:
            child = group.create_task(asyncio.sleep(0.01, result="child done"))
        same_task = asyncio.current_task() is task
        await asyncio.sleep(0.1)  # outlive any stray cancellation aimed at us
        return {
            "tagSeenAtStart": seen_tag,
            "timedOut": timed_out,
            "child": child.result(),
            "sameTask": same_task and asyncio.current_task() is task,
            "tagAtEnd": REQUEST_TAG.get(),
        }

    async def block(self, params: BlockParams, ctx: Any) -> dict[str, Any]:
        """Hold one of the kernel's blocking threads (a stand-in for a hung read)."""
        from kernel.blocking import BlockingTimeout

        try:
            await self.kernel.blocking.run(
                ctx.connection, time.sleep, params.seconds, timeout=params.timeout_s
            )
        except BlockingTimeout as exc:
            return {"timedOut": True, "started": exc.started}
        return {"timedOut": False}

    def state(self, params: None, ctx: Any) -> dict[str, Any]:
        return {"state": ctx.connection.state.get("probe"), "pid": os.getpid()}


class BrokenRegisterPlugin:
    @hookimpl
    def kernel_register(self, registrar: Any) -> None:
        registrar.method("broken/one", lambda p, c: None)
        raise RuntimeError("registration exploded")


class BrokenStartupPlugin:
    @hookimpl
    def kernel_register(self, registrar: Any) -> None:
        registrar.method("brokenStartup/ping", lambda p, c: {"pong": True})

    @hookimpl
    async def kernel_startup(self, kernel: Any) -> None:
        raise RuntimeError("startup exploded")


class ClashPlugin:
    """Declares a method the probe plugin also declares."""

    @hookimpl
    def kernel_register(self, registrar: Any) -> None:
        registrar.method("probe/sleep", lambda p, c: None)


@attrs.frozen
class ConfigurableSettings:
    greeting: str = "hello"
    repeat: int = 1
    labels: dict[str, str] = attrs.field(factory=dict)

    def check(self, config: Any) -> None:
        from kernel import SettingError

        if self.repeat < 1:
            raise SettingError("repeat", "must be at least 1")


class ConfigurablePlugin:
    def __init__(self) -> None:
        self.settings = ConfigurableSettings()
        self.shout = False

    @hookimpl
    def kernel_add_cli_options(self, group: Any) -> None:
        group.add_argument("--configurable-shout", action="store_true", help="answer in capitals")

    @hookimpl
    def kernel_settings(self) -> type[ConfigurableSettings]:
        return ConfigurableSettings

    @hookimpl
    def kernel_configure(self, config: Any, options: Any, settings: ConfigurableSettings) -> None:
        self.settings = settings
        self.shout = options.configurable_shout
        if config.get("forbidden") is not None:
            raise ConfigError("unreachable: unknown keys are rejected by structure()")

    @hookimpl
    def kernel_register(self, registrar: Any) -> None:
        registrar.method("configurable/greet", self.greet)

    def greet(self, params: None, ctx: Any) -> dict[str, str]:
        text = " ".join([self.settings.greeting] * self.settings.repeat)
        return {"greeting": text.upper() if self.shout else text}


class HeaderAuthPlugin:
    """``header_auth``: accepts ``X-Probe: ok``, crashes on ``X-Probe: crash``,
    has no opinion otherwise; adds ``GET /header_auth/hello``."""

    @hookimpl
    def kernel_websocket_auth_mode(self) -> str:
        return "probe-header"

    @hookimpl
    async def kernel_authenticate_websocket(self, request: Any) -> Any:
        from kernel import AuthResult

        value = request.headers.get("X-Probe")
        if value == "ok":
            return AuthResult.accept("probe header")
        if value == "crash":
            raise RuntimeError("authenticator exploded")
        if value == "no":
            return AuthResult.reject("probe says no", status=403)
        return None

    @hookimpl
    def kernel_http_routes(self, kernel: Any, router: Any) -> None:
        from aiohttp import web

        async def hello(request: Any) -> Any:
            return web.json_response({"hello": "from header_auth", "pid": os.getpid()})

        router.add_get("/header_auth/hello", hello)


@attrs.frozen
class ModelsProbeStreamParams:
    provider: str
    body: dict[str, Any]
    headers: dict[str, str] | None = None
    close_after: int | None = None


@attrs.frozen
class ModelsProbeProviderParams:
    provider: str


class ModelsProbePlugin:
    """``models_probe``: calls the model hooks of the threads family like threads will.

    Adds the threads hookspecs (unless the threads plugin already did) and
    serves ``modelsProbe/provider {provider}`` → ``{"plugin", "provider"}``
    and ``modelsProbe/stream {provider, body, headers?, closeAfter?}`` →
    ``{"plugin", "events"}`` (every event, or the first ``closeAfter`` ones
    after which the iterator is closed with ``aclose()``). A provider no
    plugin serves answers ``{"plugin": null, ...}``.
    """

    def __init__(self) -> None:
        self.kernel: Any = None

    @hookimpl
    def kernel_add_hookspecs(self, pluginmanager: Any) -> None:
        from plugins_builtin.threads.hookspecs import ThreadsSpec

        # The threads plugin adds the same specs and pluggy refuses a spec
        # twice: leave them to it when it is loaded (in any order), and never
        # add them a second time.
        if pluginmanager.get_plugin("threads") is not None:
            return
        caller = getattr(pluginmanager.hook, "threads_model_stream", None)
        if caller is None or not caller.has_spec():
            pluginmanager.add_hookspecs(ThreadsSpec)

    @hookimpl
    def kernel_configure(self, kernel: Any) -> None:
        self.kernel = kernel

    @hookimpl
    def kernel_register(self, registrar: Any) -> None:
        registrar.method("modelsProbe/provider", self.provider, params=ModelsProbeProviderParams)
        registrar.method("modelsProbe/stream", self.stream, params=ModelsProbeStreamParams)

    async def provider(self, params: ModelsProbeProviderParams, ctx: Any) -> dict[str, Any]:
        found = await self.kernel.plugins.first(
            "threads_model_provider", provider_id=params.provider
        )
        if found is None:
            return {"plugin": None, "provider": None}
        return {"plugin": found[0], "provider": dict(found[1])}

    async def stream(self, params: ModelsProbeStreamParams, ctx: Any) -> dict[str, Any]:
        class Context:
            connection = ctx.connection
            thread_id = "thread-probe"
            turn_id = "turn-probe"

        found = await self.kernel.plugins.first(
            "threads_model_stream",
            provider_id=params.provider,
            body=params.body,
            headers=params.headers or {},
            context=Context(),
        )
        if found is None:
            return {"plugin": None, "events": []}
        plugin, iterator = found
        events: list[Any] = []
        try:
            async for event in iterator:
                events.append(event)
                if params.close_after is not None and len(events) >= params.close_after:
                    break
        finally:
            await iterator.aclose()
        return {"plugin": plugin, "events": events}
