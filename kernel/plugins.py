"""Plugin discovery, selection and calling, one :class:`PluginHost` per kernel.

Built-in and third-party plugins come through the same entry-point group,
``kernel.plugins``. Selection rules:

* ``--plugins a,b`` serves exactly those, in that order; they are *requested*.
  An unknown name, or one that fails to load, configure, register or start,
  aborts startup.
* otherwise every installed plugin is selected (sorted by name), minus those
  named by ``--disable`` or set ``kernel_plugins.<name>.enabled = false`` in config.
  One that fails is reported (name, distribution, error) and left out; the
  server runs without it.
* ``requirements.toml`` (managed) setting ``enabled = false`` forbids a plugin,
  even one requested by name (that aborts startup with the reason).

There is no process-wide plugin manager: each host builds its own, so two
kernels in one process (tests) never share plugin state.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import attrs
import pluggy

from .hookspecs import MAY_BE_ASYNC, PROJECT, KernelSpec

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginCallError",
    "PluginHost",
    "PluginRecord",
    "StartupError",
]

log = logging.getLogger("kernel.plugins")

ENTRY_POINT_GROUP = "kernel.plugins"


class StartupError(Exception):
    """The server cannot start; the message says why and what to change."""


class PluginCallError(Exception):
    """Plugin ``plugin`` raised in ``hook``; the cause holds its exception."""

    def __init__(self, plugin: str, hook: str) -> None:
        super().__init__(f"plugin {plugin}: {hook} failed")
        self.plugin = plugin
        self.hook = hook


@attrs.define
class PluginRecord:
    """What is known about one installed or added plugin."""

    name: str
    source: str
    distribution: str | None = None
    version: str | None = None
    selected: bool = False
    requested: bool = False
    disabled_reason: str | None = None
    error: str | None = None
    stage: str | None = None
    plugin: Any = None
    entry_point: EntryPoint | None = None

    @property
    def active(self) -> bool:
        """Selected, loaded and not failed."""
        return self.selected and self.plugin is not None and self.error is None

    @property
    def dist_text(self) -> str:
        if self.distribution:
            return f"{self.distribution} {self.version or ''}".strip()
        return self.source


class PluginHost:
    """The plugins of one kernel and the calls into them."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(KernelSpec)
        self.records: dict[str, PluginRecord] = {}
        self.order: list[str] = []
        self.on_fail: list[Callable[[str], None]] = []
        """Called with a plugin's name when it fails after loading."""

    # -- discovery and selection ------------------------------------------

    def discover(self, eps: Iterable[EntryPoint] | None = None) -> None:
        """Record every entry point of the ``kernel.plugins`` group."""
        found = entry_points(group=ENTRY_POINT_GROUP) if eps is None else eps
        for ep in found:
            dist = getattr(ep, "dist", None)
            record = PluginRecord(
                name=ep.name,
                source=ep.value,
                distribution=dist.name if dist else None,
                version=dist.version if dist else None,
                entry_point=ep,
            )
            existing = self.records.get(ep.name)
            if existing is not None:
                if (
                    existing.source == record.source
                    and existing.distribution == record.distribution
                ):
                    continue  # the same distribution seen twice on sys.path
                raise StartupError(
                    f"plugin name {ep.name!r} is provided by both {existing.dist_text} "
                    f"({existing.source}) and {record.dist_text} ({record.source}); "
                    "uninstall one of them"
                )
            self.records[ep.name] = record

    def add(self, name: str, plugin: Any, source: str = "added in-process") -> None:
        """Offer a plugin object directly (tests, embedding), as if installed.

        It takes the place of an installed plugin of the same name: a test
        of a plugin under development runs the object it was given, even
        once the package is installed. Adding one name twice is an error.
        """
        existing = self.records.get(name)
        if existing is not None:
            if existing.entry_point is None:
                raise StartupError(f"plugin name {name!r} was already added in-process")
            log.debug("plugin %s: the in-process object replaces %s", name, existing.dist_text)
        self.records[name] = PluginRecord(name=name, source=source, plugin=plugin)

    def select(
        self,
        only: Sequence[str] | None,
        disabled: Iterable[str],
        enabled_in_config: Callable[[str], bool | None],
        managed_enabled: Callable[[str], Any],
    ) -> None:
        """Decide which plugins run (rules in the module docstring).

        ``enabled_in_config(name)`` and ``managed_enabled(name)`` return the
        merged and the managed ``kernel_plugins.<name>.enabled`` value, or None.
        """
        disabled = set(disabled)
        unknown = [n for n in disabled if n not in self.records]
        for name in unknown:
            log.warning("--disable %s: no such plugin is installed", name)
        if only is not None:
            missing = [n for n in only if n not in self.records]
            if missing:
                raise StartupError(
                    f"unknown plugin(s) {', '.join(missing)}; installed: "
                    f"{', '.join(sorted(self.records)) or 'none'}"
                )
            both = [n for n in only if n in disabled]
            if both:
                raise StartupError(
                    f"plugin(s) {', '.join(both)} both requested by --plugins "
                    "and disabled by --disable"
                )
        names = list(dict.fromkeys(only)) if only is not None else sorted(self.records)
        for name, record in self.records.items():
            if name not in names:
                record.disabled_reason = "not listed in --plugins"
        for name in names:
            record = self.records[name]
            record.requested = only is not None
            if managed_enabled(name) is False:
                if record.requested:
                    raise StartupError(
                        f"plugin {name} is disabled by requirements.toml (managed configuration)"
                    )
                record.disabled_reason = "disabled by requirements.toml"
            elif name in disabled:
                record.disabled_reason = "disabled by --disable"
            elif not record.requested and enabled_in_config(name) is False:
                record.disabled_reason = f"disabled in config (kernel_plugins.{name}.enabled)"
            else:
                record.selected = True
                self.order.append(name)

    def prioritize(self, names: Iterable[str]) -> None:
        """Load ``names`` first (so a conflict is blamed on the others)."""
        first = [n for n in names if n in self.order]
        self.order[:] = first + [n for n in self.order if n not in first]

    def load(self) -> None:
        """Import, instantiate and register every selected plugin.

        Plugins are registered in reverse load order: pluggy calls the most
        recently registered implementation first, so its call order is then
        load order, with ``tryfirst``/``trylast`` moving a plugin ahead of or
        behind the rest as pluggy documents.
        """
        loaded: list[tuple[str, Any]] = []
        for name in list(self.order):
            record = self.records[name]
            try:
                obj = record.plugin
                if obj is None and record.entry_point is not None:
                    obj = record.entry_point.load()
                if inspect.isclass(obj):
                    obj = obj()
                record.plugin = obj
                loaded.append((name, obj))
            except Exception as exc:
                self.fail(name, "load", exc)
        for name, obj in reversed(loaded):
            try:
                self.pm.register(obj, name=name)
            except Exception as exc:
                self.fail(name, "load", exc)
        self.call("kernel_add_hookspecs", stage="add hookspecs", pluginmanager=self.pm)
        self._check_hooks()

    def _check_hooks(self) -> None:
        # A kernel_* hookimpl without a spec is a typo that would silently
        # never be called; other unknown hooks may belong to an absent family.
        # A wrapper around a hook that may be async could not await it.
        for name in list(self.order):
            record = self.records[name]
            if not record.active:
                continue
            for caller in self.pm.get_hookcallers(record.plugin) or []:
                problem = None
                if not caller.has_spec():
                    problem = f"implements unknown hook {caller.name}"
                    if not caller.name.startswith("kernel_"):
                        log.info("plugin %s %s (no loaded plugin declares it)", name, problem)
                        continue
                elif _may_be_async(caller) and any(
                    impl.plugin_name == name and (impl.wrapper or impl.hookwrapper)
                    for impl in caller.get_hookimpls()
                ):
                    problem = (
                        f"wraps {caller.name}, whose implementations may be async; "
                        "a wrapper cannot await them (implement the hook instead)"
                    )
                if problem is not None:
                    self.fail(name, "load", StartupError(problem))
                    break

    # -- failure handling --------------------------------------------------

    def fail(self, name: str, stage: str, exc: BaseException) -> None:
        """Record that ``name`` failed at ``stage``; abort if it was requested.

        The plugin stays registered with pluggy (so a plugin that failed
        after starting still gets ``kernel_shutdown``) but is no longer
        active: no other hook reaches it.
        """
        record = self.records[name]
        record.error = f"{type(exc).__name__}: {exc}"
        record.stage = stage
        if name in self.order:
            self.order.remove(name)
        for listener in self.on_fail:
            listener(name)
        text = f"plugin {name} ({record.dist_text}) failed to {stage}: {record.error}"
        if record.requested:
            log.debug("%s", text, exc_info=exc)
            raise StartupError(text) from exc
        log.error("%s; continuing without it", text)
        log.debug("plugin %s: traceback of the failure", name, exc_info=exc)

    # -- calling hooks -----------------------------------------------------

    def active(self) -> list[str]:
        """Names of the plugins currently serving, in load order."""
        return [n for n in self.order if self.records[n].active]

    def _calls(
        self, hook: str, names: Iterable[str] | None, reverse: bool
    ) -> list[tuple[str, Callable[[dict[str, Any]], Any]]]:
        """Each chosen plugin's implementation of ``hook``, in pluggy's call order.

        ``names`` picks plugins regardless of their state (shutdown reaches
        plugins that failed after starting); by default only active ones.
        Each entry calls one plugin's implementation, through pluggy with
        the hook's wrappers around it when the hook has any.
        """
        caller = getattr(self.pm.hook, hook, None)
        if caller is None:
            return []
        chosen = set(self.active() if names is None else names)
        active = set(self.active())
        impls = list(reversed(caller.get_hookimpls()))  # pluggy's call order
        wrappers = [i for i in impls if (i.wrapper or i.hookwrapper) and i.plugin_name in active]
        plain = [i for i in impls if not (i.wrapper or i.hookwrapper) and i.plugin_name in chosen]
        if reverse:
            plain.reverse()
        if not wrappers:
            return [(i.plugin_name, _direct(i)) for i in plain]
        others = [i.plugin for i in impls if i not in wrappers]
        return [
            (i.plugin_name, _wrapped(self.pm, hook, [p for p in others if p is not i.plugin]))
            for i in plain
        ]

    def _failed(
        self,
        name: str,
        hook: str,
        exc: Exception,
        stage: str | None,
        fatal: tuple[type[BaseException], ...],
    ) -> None:
        if isinstance(exc, StartupError):
            raise exc
        if fatal and isinstance(exc, fatal):
            raise StartupError(f"plugin {name}: {exc}") from exc
        if stage is None:
            log.exception("plugin %s: %s failed", name, hook)
        else:
            self.fail(name, stage, exc)

    def call(
        self,
        hook: str,
        *,
        stage: str | None = None,
        per_plugin: Callable[[str], dict[str, Any]] | None = None,
        names: Iterable[str] | None = None,
        reverse: bool = False,
        fatal: tuple[type[BaseException], ...] = (),
        **kwargs: Any,
    ) -> list[tuple[str, Any]]:
        """Call ``hook`` on each plugin on its own; returns ``(plugin, result)`` pairs.

        One plugin's exception never hides another's result. A plugin that
        raises is logged and skipped, or, with ``stage``, failed (see
        :meth:`fail`). ``per_plugin(name)`` adds arguments specific to each
        plugin (its config section, its registrar). Exceptions of a
        ``fatal`` type abort startup whether or not the plugin was requested.
        """
        results = []
        for name, invoke in self._calls(hook, names, reverse):
            try:
                extra = per_plugin(name) if per_plugin else {}
                results.append((name, invoke({**kwargs, **extra})))
            except Exception as exc:
                self._failed(name, hook, exc, stage, fatal)
        return results

    def each(
        self,
        action: Callable[[str, Any], Any],
        *,
        stage: str,
        fatal: tuple[type[BaseException], ...] = (),
    ) -> None:
        """Run ``action(name, plugin_object)`` for each active plugin, failing those that raise."""
        for name in self.active():
            try:
                action(name, self.records[name].plugin)
            except Exception as exc:
                self._failed(name, stage, exc, stage, fatal)

    async def acall(
        self,
        hook: str,
        *,
        stage: str | None = None,
        names: Iterable[str] | None = None,
        reverse: bool = False,
        **kwargs: Any,
    ) -> list[tuple[str, Any]]:
        """:meth:`call` for hooks that may be async: awaitable results are awaited."""
        results = []
        for name, invoke in self._calls(hook, names, reverse):
            try:
                result = invoke(kwargs)
                if inspect.isawaitable(result):
                    result = await result
                results.append((name, result))
            except Exception as exc:
                self._failed(name, hook, exc, stage, ())
        return results

    async def first(self, hook: str, **kwargs: Any) -> tuple[str, Any] | None:
        """Call ``hook`` in order until a plugin returns non-None: ``(plugin, result)``.

        A raising plugin stops the search with :class:`PluginCallError` (the
        original exception is its cause); the caller decides what a failure
        means (authentication fails closed).
        """
        for name, invoke in self._calls(hook, None, False):
            try:
                result = invoke(kwargs)
                if inspect.isawaitable(result):
                    result = await result
            except Exception as exc:
                raise PluginCallError(name, hook) from exc
            if result is not None:
                return name, result
        return None


def _may_be_async(caller: pluggy.HookCaller) -> bool:
    spec = caller.spec
    return spec is not None and bool(getattr(spec.function, MAY_BE_ASYNC, False))


def _direct(impl: pluggy.HookImpl) -> Callable[[dict[str, Any]], Any]:
    def invoke(kwargs: dict[str, Any]) -> Any:
        return impl.function(*[kwargs[arg] for arg in impl.argnames])

    return invoke


def _wrapped(
    pm: pluggy.PluginManager, hook: str, exclude: list[Any]
) -> Callable[[dict[str, Any]], Any]:
    # Through pluggy, with every other plain implementation left out: the
    # wrappers run around this one plugin's call exactly as pluggy defines.
    caller = pm.subset_hook_caller(hook, exclude)

    def invoke(kwargs: dict[str, Any]) -> Any:
        result = caller(**kwargs)
        spec = caller.spec
        if spec is not None and spec.opts.get("firstresult"):
            return result
        return result[0] if result else None

    return invoke
