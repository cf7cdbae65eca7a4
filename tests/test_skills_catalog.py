"""The skills catalog's cache against its watches, in process.

:class:`SkillsCatalog` runs on the test's event loop with the fs family's
real tree watches (:class:`FsService`, watchdog on inotify) and a kernel
stand-in whose blocking pool runs the scan inline, so a test can change the
disk at a chosen moment of a scan.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from plugins_builtin.fs.observer import SharedObserver
from plugins_builtin.fs.tree import FsService
from plugins_builtin.skills.catalog import SkillsCatalog
from tests.support.marketplace_fixtures import write_skill


class _Plugins:
    def call(self, name: str) -> list[Any]:
        return []


class _Config:
    def get(self, key: str) -> Any:
        return None


class _Blocking:
    """Runs the job inline, then ``after_scan`` (once): a change the scan just missed."""

    def __init__(self) -> None:
        self.after_scan: Callable[[], None] | None = None

    async def run(self, owner: object, fn: Callable[..., Any], *args: Any, timeout: float) -> Any:
        result = fn(*args)
        hook, self.after_scan = self.after_scan, None
        if hook is not None:
            hook()
        return result


class _Kernel:
    def __init__(self, home: Path, fs: FsService) -> None:
        self.home = home
        self.plugins = _Plugins()
        self.config = _Config()
        self.blocking = _Blocking()
        self.services: dict[str, Any] = {"fs": fs}


@pytest.fixture
async def kernel(tmp_path: Path) -> AsyncIterator[_Kernel]:
    loop = asyncio.get_running_loop()
    observer = SharedObserver(loop)
    fs = FsService(loop, 0.05, observer)
    yield _Kernel(tmp_path / "home", fs)
    fs.close_all()
    await observer.aclose()


async def test_a_skill_written_during_the_scan_is_not_cached_away(kernel, tmp_path):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    skills = repo / ".agents" / "skills"
    skills.mkdir(parents=True)
    changed: list[int] = []
    catalog = SkillsCatalog(kernel, lambda: changed.append(1))  # type: ignore[arg-type]
    catalog.user_home = str(tmp_path / "user")
    kernel.blocking.after_scan = lambda: write_skill(skills, "late", "written mid-scan")
    try:
        (first,) = await catalog.scans([str(repo)], False, None)
        assert first.skills == ()  # the scan had passed the directory already
        for _ in range(100):  # the watch reports the write, the cache is dropped
            if changed:
                break
            await asyncio.sleep(0.05)
        (second,) = await catalog.scans([str(repo)], False, None)
        assert [s.name for s in second.skills] == ["late"]
        assert changed
    finally:
        catalog.close()
