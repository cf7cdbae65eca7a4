"""Tree watches (``kernel.services["fs"].watch_tree``) and the fs family's shared observer.

In process, on real directories: :class:`FsService` and
:class:`SharedObserver` run on the test's event loop, watchdog on real
inotify. Two watches anchored on one directory share one watchdog entry,
which must stay until the last of them lets go.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from plugins_builtin.fs.observer import SharedObserver
from plugins_builtin.fs.tree import FsService

WINDOW = 0.05


class Seen:
    """What one tree watch reported, awaitable."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self._event = asyncio.Event()

    def __call__(self, paths: list[str]) -> None:
        self.paths.extend(paths)
        self._event.set()

    async def wait_for(self, path: Path, timeout: float = 5.0) -> bool:
        """Whether ``path`` is reported within ``timeout`` seconds."""
        deadline = asyncio.get_running_loop().time() + timeout
        while str(path) not in self.paths:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return False
            self._event.clear()
            try:
                await asyncio.wait_for(self._event.wait(), left)
            except TimeoutError:
                return False
        return True


@pytest.fixture
async def service() -> AsyncIterator[FsService]:
    observer = SharedObserver(asyncio.get_running_loop())
    fs = FsService(asyncio.get_running_loop(), WINDOW, observer)
    yield fs
    fs.close_all()
    await observer.aclose()


async def test_siblings_missing_under_one_directory_both_keep_reporting(service, tmp_path):
    # <d>/.codex/skills and <d>/.agents/skills, as the skills family watches them.
    codex, agents = tmp_path / ".codex" / "skills", tmp_path / ".agents" / "skills"
    seen_codex, seen_agents = Seen(), Seen()
    service.watch_tree(str(codex), seen_codex)
    service.watch_tree(str(agents), seen_agents)
    assert service.observer.subscribers(str(tmp_path), False) == 2
    agents.mkdir(parents=True)  # the .agents watch moves down, away from <d>
    assert await seen_agents.wait_for(agents)
    await asyncio.sleep(0.2)
    assert service.observer.subscribers(str(tmp_path), False) == 1
    codex.mkdir(parents=True)  # the .codex watch must still see this
    assert await seen_codex.wait_for(codex)
    (codex / "SKILL.md").write_text("x")
    assert await seen_codex.wait_for(codex / "SKILL.md")


async def test_closing_one_of_two_watches_of_a_directory_keeps_the_other(service, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    first, second = Seen(), Seen()
    closing = service.watch_tree(str(shared), first)
    service.watch_tree(str(shared), second)
    assert service.observer.subscribers(str(shared), True) == 2
    closing.close()
    closing.close()  # twice is fine, and releases once
    assert service.observer.subscribers(str(shared), True) == 1
    (shared / "deep").mkdir()
    (shared / "deep" / "f").write_text("")
    assert await second.wait_for(shared / "deep" / "f")
    assert first.paths == []


async def test_the_observer_stops_with_the_last_watch_and_starts_again(service, tmp_path):
    seen = Seen()
    watch = service.watch_tree(str(tmp_path / "later"), seen)
    assert service.observer._observer is not None
    watch.close()
    assert service.observer._observer is None
    again = service.watch_tree(str(tmp_path), seen)
    (tmp_path / "x").write_text("")
    assert await seen.wait_for(tmp_path / "x")
    again.close()
    assert service.observer._observer is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any directory")
async def test_an_unwatchable_root_leaves_nothing_behind(service, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o000)
    try:
        with pytest.raises(OSError):
            service.watch_tree(str(locked), Seen())
    finally:
        locked.chmod(0o700)
    assert service.observer.subscribers(str(locked), True) == 0
    assert service.observer._observer is None
