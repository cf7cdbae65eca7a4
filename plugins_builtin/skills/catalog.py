"""The skills of a working directory: scanned off the loop, cached while watched.

A scan result is cached per working directory (and set of contributed
roots) only while every one of its roots is watched through the fs family's
tree watches (``kernel.services["fs"].watch_tree``): a change under any
root, a config write, a contributed-root change or ``invalidate()`` drops
every cached scan and, once per short window, tells every client
``skills/changed``. Without the fs family nothing is cached (each list
rescans) and no ``skills/changed`` is sent. ``forceReload`` always rescans.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from kernel import Kernel

from .discovery import Scan, SkillRoot, roots_for, scan
from .parse import Skill
from .rules import disabled_paths, read_rules

__all__ = ["SkillsCatalog"]

log = logging.getLogger("plugins.skills")

MAX_WATCHED_ROOTS = 256
MAX_CACHED_CWDS = 64
CHANGED_WINDOW = 0.05  # seconds: changes under several roots make one skills/changed


class SkillsCatalog:
    """Scans, caches and watches skills for one kernel; see the module docstring."""

    def __init__(self, kernel: Kernel, on_changed: Callable[[], Any]) -> None:
        self.kernel = kernel
        self.on_changed = on_changed
        self.extra_roots: list[str] = []
        self.generation = 0
        self._cache: OrderedDict[tuple[Any, ...], tuple[int, Scan]] = OrderedDict()
        # The last skills found per cwd, kept across invalidations (skills/config/write
        # needs to know which skills a name or path selects).
        self.seen: OrderedDict[str | None, tuple[Skill, ...]] = OrderedDict()
        self._watches: OrderedDict[str, Any] = OrderedDict()
        self._unwatchable: set[str] = set()
        self._notify: asyncio.TimerHandle | None = None
        self.user_home = os.environ.get("HOME") or os.path.expanduser("~")

    # -- roots -----------------------------------------------------------------------

    def contributed(self) -> list[SkillRoot]:
        """Roots other plugins add (``skills_roots``) and ``skills/extraRoots/set`` roots."""
        roots: list[SkillRoot] = []
        for name, found in self.kernel.plugins.call("skills_roots"):
            for entry in found or ():
                path = entry.get("path") if isinstance(entry, dict) else None
                if not isinstance(path, str) or not os.path.isabs(path):
                    log.error("plugin %s: skills_roots entry without an absolute path", name)
                    continue
                roots.append(
                    SkillRoot(
                        path,
                        "user",
                        plugin_id=entry.get("pluginId"),
                        namespace=entry.get("namespace"),
                        plugin_root=entry.get("pluginRoot"),
                    )
                )
        roots.extend(SkillRoot(path, "user") for path in self.extra_roots)
        return roots

    def roots(self, cwd: str | None) -> list[SkillRoot]:
        """Every root for ``cwd`` (None: no project roots)."""
        home = str(self.kernel.home)
        return roots_for(cwd, home, self.user_home, self.contributed())

    # -- scanning --------------------------------------------------------------------

    async def scans(self, cwds: Sequence[str | None], force: bool, owner: object) -> list[Scan]:
        """The scan of each cwd (cached unless ``force``), scanned off the event loop."""
        keys = []
        todo: dict[tuple[Any, ...], list[SkillRoot]] = {}
        for cwd in cwds:
            roots = self.roots(cwd)
            key = (cwd, *roots)
            keys.append(key)
            cached = None if force else self._cache.get(key)
            if cached is None or cached[0] != self.generation:
                todo[key] = roots
        generation = self.generation
        if todo:
            jobs = list(todo.items())
            # Watch before scanning: a change made while the scan runs is then
            # reported, bumps the generation, and the result is not cached.
            watched = {key: self._watch([r.path for r in roots]) for key, roots in jobs}
            done = await self.kernel.blocking.run(
                owner, lambda: [scan(roots) for _, roots in jobs], timeout=60
            )
            for (job_key, _), result in zip(jobs, done, strict=True):
                cwd_key: str | None = job_key[0]
                self.seen[cwd_key] = result.skills
                self.seen.move_to_end(cwd_key)
                while len(self.seen) > MAX_CACHED_CWDS:
                    self.seen.popitem(last=False)
                if watched[job_key] and generation == self.generation:
                    self._remember(job_key, result)
                else:
                    self._cache.pop(job_key, None)
            found = dict(zip([k for k, _ in jobs], done, strict=True))
        else:
            found = {}
        return [found[key] if key in found else self._cache[key][1] for key in keys]

    def _remember(self, key: tuple[Any, ...], result: Scan) -> None:
        self._cache[key] = (self.generation, result)
        self._cache.move_to_end(key)
        while len(self._cache) > MAX_CACHED_CWDS:
            self._cache.popitem(last=False)

    def disabled(self, skills: Sequence[Skill]) -> set[str]:
        """The paths of ``skills`` that ``[[skills.config]]`` disables now."""
        return disabled_paths(skills, read_rules(self.kernel.config.get("skills")))

    # -- watching --------------------------------------------------------------------

    def _watch(self, roots: Sequence[str]) -> bool:
        """Watch every root; True when all of them are watched (a scan may be cached)."""
        fs = self.kernel.services.get("fs")
        if fs is None or not hasattr(fs, "watch_tree"):
            return False
        complete = True
        for root in roots:
            if root in self._watches:
                self._watches.move_to_end(root)
                continue
            if root in self._unwatchable:
                complete = False
                continue
            try:
                self._watches[root] = fs.watch_tree(root, self._changed)
            except (OSError, ValueError) as exc:
                log.info("skills: not watching %s (%s); it is rescanned every time", root, exc)
                self._unwatchable.add(root)
                complete = False
                continue
            while len(self._watches) > MAX_WATCHED_ROOTS:
                _, oldest = self._watches.popitem(last=False)
                oldest.close()
                self.generation += 1  # scans under that root can no longer be trusted
                self._cache.clear()
        return complete

    def _changed(self, paths: list[str]) -> None:
        log.debug("skills: changed under %s", paths[:3])
        self.invalidate()

    def invalidate(self) -> None:
        """Drop cached scans; clients hear ``skills/changed`` after a short window."""
        self.generation += 1
        self._cache.clear()
        self._unwatchable.clear()
        if self._notify is None:
            loop = asyncio.get_running_loop()
            self._notify = loop.call_later(CHANGED_WINDOW, self._send_changed)

    def _send_changed(self) -> None:
        self._notify = None
        self.on_changed()

    def close(self) -> None:
        """Stop every watch (shutdown)."""
        if self._notify is not None:
            self._notify.cancel()
            self._notify = None
        for watch in self._watches.values():
            watch.close()
        self._watches.clear()
        self._cache.clear()
