"""The ``skills`` plugin: ``skills/*`` methods, ``skills/changed``, and skills for the model.

Skills are found by :mod:`.discovery`, parsed by :mod:`.parse`, enabled by
the ``[[skills.config]]`` rules of :mod:`.rules`, cached and watched by
:mod:`.catalog`, and told to the model by :mod:`.render` through the
threads family's ``threads_context`` hook. Other plugins add skill roots
through this family's ``skills_roots`` hook (:mod:`.hookspecs`) and reach it
through ``kernel.services["skills"]`` (:mod:`.service`). See docs/skills.md.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from typing import Any

import attrs
import pluggy

from kernel import AbsolutePath, Kernel, RequestContext, RpcError, hookimpl, method
from kernel.rpc.errors import INVALID_PARAMS

from .catalog import SkillsCatalog
from .hookspecs import SkillsSpec
from .parse import Skill
from .render import MAX_INJECTED_BYTES, instructions_text, mentioned_skills, skill_message
from .rules import disabled_paths, effective, read_rules, write_rule
from .service import SkillsAccess

__all__ = ["SkillsPlugin"]

log = logging.getLogger("plugins.skills")

# Top-level config.toml keys whose changes change the skills (see kernel_config_changed).
CONFIG_ROOTS = frozenset({"skills", "plugins", "features"})


@attrs.frozen
class SkillsListParams:
    """Skills for some working directories (default: the server's)."""

    cwds: list[str] | None = None
    force_reload: bool | None = None


@attrs.frozen
class SkillsConfigWriteParams:
    """Enable or disable skills by ``path`` (a ``SKILL.md``) or by ``name``."""

    enabled: bool
    path: AbsolutePath | None = None
    name: str | None = None


@attrs.frozen
class SkillsExtraRootsSetParams:
    """More user-scope skill directories for this server (replaces the previous set)."""

    extra_roots: list[AbsolutePath]


class SkillsPlugin:
    """Skills: listing, enablement, change notifications, and the model's view."""

    def __init__(self) -> None:
        self.kernel: Kernel | None = None
        self.catalog: SkillsCatalog | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- hooks ------------------------------------------------------------------------

    @hookimpl
    def kernel_add_hookspecs(self, pluginmanager: pluggy.PluginManager) -> None:
        pluginmanager.add_hookspecs(SkillsSpec)

    @hookimpl
    def kernel_config_keys(self) -> dict[str, Any]:
        return {"skills": dict[str, Any] | None}

    @hookimpl
    def kernel_configure(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.catalog = SkillsCatalog(kernel, self._send_changed)
        kernel.services["skills"] = SkillsAccess(self.catalog)

    @hookimpl
    def kernel_config_changed(self, kernel: Kernel, changed: Sequence[str]) -> None:
        """``[skills]``, ``[plugins]`` or ``[features]`` changed: drop the cache, tell clients.

        Those decide which skills are enabled (``[[skills.config]]``) and which
        plugin bundles contribute skills; they change through
        ``skills/config/write``, ``config/value/write``, ``config/batchWrite``
        or another family's write (the marketplace enabling a bundle).
        """
        touched = sorted({p.split(".", 1)[0] for p in changed} & CONFIG_ROOTS)
        if touched and self.catalog is not None:
            log.info("skills: configuration changed (%s)", ", ".join(touched))
            self.catalog.invalidate()

    @hookimpl
    def kernel_register(self, registrar: Any) -> None:
        registrar.notification("skills/changed")

    @hookimpl
    def kernel_shutdown(self, kernel: Kernel) -> None:
        if self.catalog is not None:
            self.catalog.close()

    def _send_changed(self) -> None:
        """``skills/changed`` to every client (from a timer on the loop)."""
        if self.kernel is None:
            return
        task = asyncio.get_running_loop().create_task(self.kernel.broadcast("skills/changed", {}))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- methods ----------------------------------------------------------------------

    def _catalog(self) -> SkillsCatalog:
        assert self.catalog is not None
        return self.catalog

    @method("skills/list")
    async def list_skills(self, params: SkillsListParams, ctx: RequestContext) -> dict[str, Any]:
        """One entry per cwd: its skills (enabled or not) and the files that failed to parse."""
        catalog = self._catalog()
        cwds = list(params.cwds or []) or [os.getcwd()]
        usable = [os.path.normpath(c) if os.path.isabs(c) else None for c in cwds]
        scans = await catalog.scans(usable, bool(params.force_reload), ctx.connection)
        rules = read_rules(ctx.kernel.config.get("skills"))
        data = []
        for cwd, usable_cwd, result in zip(cwds, usable, scans, strict=True):
            disabled = disabled_paths(result.skills, rules)
            errors = list(result.errors)
            if usable_cwd is None:
                message = "cwd is not an absolute path: project skills were not loaded"
                errors.insert(0, {"path": cwd, "message": message})
            skills = [s.wire(s.path not in disabled) for s in result.skills]
            data.append({"cwd": cwd, "skills": skills, "errors": errors})
        return {"data": data}

    @method("skills/config/write")
    async def config_write(
        self, params: SkillsConfigWriteParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """Record a skill's enablement in config.toml; answers the resulting state."""
        if (params.path is None) == (params.name is None or not params.name.strip()):
            raise RpcError(
                INVALID_PARAMS,
                "skills/config/write requires exactly one of path or name",
                {"problems": [{"path": "path", "message": "give exactly one of path or name"}]},
            )
        kind, value = ("path", params.path) if params.path is not None else ("name", params.name)
        assert value is not None
        value = value if kind == "path" else value.strip()
        known = await self._known(ctx.connection)
        # kernel_config_changed (below) drops the cache and sends skills/changed.
        await write_rule(ctx.kernel, kind, value, params.enabled, known)
        rules = read_rules(ctx.kernel.config.get("skills"))
        return {"effectiveEnabled": effective(rules, kind, value, known)}

    async def _known(self, owner: object) -> list[Skill]:
        """Skills found for the server's cwd and every cwd listed lately."""
        catalog = self._catalog()
        (here,) = await catalog.scans([os.getcwd()], False, owner)
        known = {s.path: s for skills in list(catalog.seen.values()) for s in skills}
        known.update((s.path, s) for s in here.skills)
        return list(known.values())

    @method("skills/extraRoots/set")
    def extra_roots_set(
        self, params: SkillsExtraRootsSetParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """Replace the extra user-scope roots (kept in memory until the server stops)."""
        catalog = self._catalog()
        catalog.extra_roots = [os.path.normpath(p) for p in params.extra_roots]
        catalog.invalidate()
        return {}

    # -- the model's view (the threads family's hook) -----------------------------------

    @hookimpl
    async def threads_context(
        self, turn: Any, user_input: list[dict[str, Any]]
    ) -> list[dict[str, Any]] | None:
        """The ``<skills_instructions>`` message; named skills' files join the conversation."""
        catalog = self.catalog
        if catalog is None:
            return None
        owner = turn.connection if turn.connection is not None else self
        cwd = turn.cwd if isinstance(turn.cwd, str) and os.path.isabs(turn.cwd) else None
        (result,) = await catalog.scans([cwd], False, owner)
        disabled = catalog.disabled(result.skills)
        enabled = [s for s in result.skills if s.path not in disabled]
        named = mentioned_skills(user_input, enabled) if user_input else []
        if named:
            assert self.kernel is not None
            bodies = await self.kernel.blocking.run(owner, _read_bodies, named, timeout=30)
            messages = [
                skill_message(s, body) for s, body in zip(named, bodies, strict=True) if body
            ]
            if messages:
                await turn.add_to_history(messages)
        text = instructions_text([s for s in enabled if s.allow_implicit])
        if text is None:
            return None
        return [
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": text}],
            }
        ]


def _read_bodies(skills: list[Skill]) -> list[str | None]:
    """Each skill's ``SKILL.md`` (size-limited); None for one that cannot be read (logged)."""
    bodies: list[str | None] = []
    for skill in skills:
        try:
            with open(skill.path, "rb") as handle:
                raw = handle.read(MAX_INJECTED_BYTES + 1)
        except OSError as exc:
            log.warning("skill %s at %s not read: %s", skill.name, skill.path, exc.strerror or exc)
            bodies.append(None)
            continue
        text = raw[:MAX_INJECTED_BYTES].decode("utf-8", errors="replace")
        if len(raw) > MAX_INJECTED_BYTES:
            text += f"\n[... cut: the file is longer than {MAX_INJECTED_BYTES} bytes]"
        bodies.append(text)
    return bodies
