"""Plugin discovery, selection and calling, one :class:`PluginHost` per kernel.

Built-in and third-party plugins come through the same entry-point group,
``kernel.plugins``. Selection rules:

* ``--plugins a,b`` serves exactly those, in that order; they are *requested*.
  An unknown name, or one that fails to load, configure, register or start,
  aborts startup.
* otherwise every installed plugin is selected (sorted by name), minus those
  named by ``--disable`` or set ``plugins.<name>.enabled = false`` in config.
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

from .hookspecs import PROJECT, KernelSpec

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
        """Offer a plugin object directly (tests, embedding), as if installed."""
        if name in self.records:
            raise StartupError(
                f"plugin name {name!r} is already taken by {self.records[name].dist_text}"
            )
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
        merged and the managed ``plugins.<name>.enabled`` value, or None.
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
                record.disabled_reason = f"disabled in config (plugins.{name}.enabled)"
            else:
                record.selected = True
                self.order.append(name)

    def prioritize(self, names: Iterable[str]) -> None:
        """Load ``names`` first (so a conflict is blamed on the others)."""
        first = [n for n in names if n in self.order]
        self.order[:] = first + [n for n in self.order if n not in first]

    def load(self) -> None:
        """Import, instantiate and register every selected plugin."""
        for name in list(self.order):
            record = self.records[name]
            try:
                obj = record.plugin
                if obj is None and record.entry_point is not None:
                    obj = record.entry_point.load()
                if inspect.isclass(obj):
                    obj = obj()
                self.pm.register(obj, name=name)
                record.plugin = obj
            except Exception as exc:
                self.fail(name, "load", exc)
        self.call_each_or_fail("kernel_add_hookspecs", "add hookspecs", pluginmanager=self.pm)
        self._check_hook_names()

    def _check_hook_names(self) -> None:
        # A kernel_* hookimpl without a spec is a typo that would silently
        # never be called; other unknown hooks may belong to an absent family.
        for name in list(self.order):
            record = self.records[name]
            if not record.active:
                continue
            for caller in self.pm.get_hookcallers(record.plugin) or []:
                if caller.has_spec():
                    continue
                message = f"implements unknown hook {caller.name}"
                if caller.name.startswith("kernel_"):
                    self.fail(name, "load", StartupError(message))
                    break
                log.info("plugin %s %s (no loaded plugin declares it)", name, message)

    # -- failure handling --------------------------------------------------

    def fail(self, name: str, stage: str, exc: BaseException) -> None:
        """Record that ``name`` failed at ``stage``; abort if it was requested."""
        record = self.records[name]
        record.error = f"{type(exc).__name__}: {exc}"
        record.stage = stage
        if record.plugin is not None and self.pm.is_registered(record.plugin):
            self.pm.unregister(record.plugin)
        if name in self.order:
            self.order.remove(name)
        for listener in self.on_fail:
            listener(name)
        text = f"plugin {name} ({record.dist_text}) failed to {stage}: {record.error}"
        if record.requested:
            log.error("%s", text, exc_info=exc)
            raise StartupError(text) from exc
        log.error("%s; continuing without it", text, exc_info=exc)

    # -- calling hooks -----------------------------------------------------

    def active(self) -> list[str]:
        """Names of the plugins currently serving, in load order."""
        return [n for n in self.order if self.records[n].active]

    def _impls(self, hook: str) -> list[tuple[str, pluggy.HookImpl]]:
        caller = getattr(self.pm.hook, hook)
        by_name = {impl.plugin_name: impl for impl in caller.get_hookimpls()}
        return [(n, by_name[n]) for n in self.active() if n in by_name]

    @staticmethod
    def _invoke(impl: pluggy.HookImpl, kwargs: dict[str, Any]) -> Any:
        return impl.function(*[kwargs[arg] for arg in impl.argnames])

    def call_each(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call ``hook`` on each plugin; log and skip the ones that raise."""
        results = []
        for name, impl in self._impls(hook):
            try:
                results.append((name, self._invoke(impl, kwargs)))
            except Exception:
                log.exception("plugin %s: %s failed", name, hook)
        return results

    def call_each_or_fail(
        self,
        hook: str,
        stage: str,
        *,
        per_plugin: Callable[[str], dict[str, Any]] | None = None,
        fatal: tuple[type[BaseException], ...] = (),
        **kwargs: Any,
    ) -> None:
        """Call ``hook`` on each plugin; one that raises is failed (see :meth:`fail`).

        ``per_plugin(name)`` adds arguments specific to each plugin (its
        config section, its registrar). Exceptions of a ``fatal`` type abort
        startup whether or not the plugin was requested.
        """
        for name, impl in self._impls(hook):
            try:
                extra = per_plugin(name) if per_plugin else {}
                self._invoke(impl, {**kwargs, **extra})
            except StartupError:
                raise
            except fatal as exc:
                raise StartupError(f"plugin {name}: {exc}") from exc
            except Exception as exc:
                self.fail(name, stage, exc)

    async def first_result(self, hook: str, **kwargs: Any) -> tuple[str, Any] | None:
        """Call a may-be-async ``hook`` in load order until one returns non-None.

        Returns ``(plugin name, result)`` or None. A raising plugin stops
        the search with :class:`PluginCallError` (the original exception is
        its cause); the caller decides what a failure means (authentication
        fails closed).
        """
        for name, impl in self._impls(hook):
            try:
                result = self._invoke(impl, kwargs)
                if inspect.isawaitable(result):
                    result = await result
            except Exception as exc:
                raise PluginCallError(name, hook) from exc
            if result is not None:
                return name, result
        return None

    async def acall_each(
        self,
        hook: str,
        *,
        reverse: bool = False,
        fail_stage: str | None = None,
        names: Iterable[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Call a may-be-async ``hook`` on each plugin (or those in ``names``).

        With ``fail_stage`` a raising plugin is failed; otherwise it is
        logged and the next plugin still runs.
        """
        impls = self._impls(hook)
        if names is not None:
            wanted = set(names)
            impls = [(n, impl) for n, impl in impls if n in wanted]
        for name, impl in reversed(impls) if reverse else impls:
            try:
                result = self._invoke(impl, kwargs)
                if inspect.isawaitable(result):
                    await result
            except StartupError:
                raise
            except Exception as exc:
                if fail_stage is None:
                    log.exception("plugin %s: %s failed", name, hook)
                else:
                    self.fail(name, fail_stage, exc)
