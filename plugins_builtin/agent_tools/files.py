"""The files a patch reads and writes: this machine's, or a remote environment's.

Patches are planned and applied in a worker thread (blocking code), so both
kinds offer the same blocking methods. :class:`LocalFiles` works on the
disk directly (atomic replace, mode kept); :class:`RemoteFiles` forwards to
a remote environment's ``fs/*`` through the event loop and waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

__all__ = ["LOCAL_FILES", "Files", "LocalFiles", "RemoteFiles"]

T = TypeVar("T")
_REMOTE_TIMEOUT = 60.0


class Files(Protocol):
    """What patches need from a filesystem (blocking; raise ``OSError`` on failure)."""

    def read_text(self, path: str) -> str:
        """The file as UTF-8 text (``UnicodeDecodeError`` when it is not)."""

    def write_text(self, path: str, content: str, keep_mode_of: str | None) -> None:
        """Replace ``path`` with ``content`` atomically, with the mode of ``keep_mode_of``."""

    def remove(self, path: str) -> None:
        """Delete a file."""

    def make_parents(self, path: str) -> None:
        """Create the missing parent directories of ``path``."""

    def snapshot(self, path: str) -> tuple[bytes | None, str]:
        """(bytes or None when absent, git mode) of ``path`` now."""


class LocalFiles:
    """This machine's disk."""

    def read_text(self, path: str) -> str:
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.read()

    def write_text(self, path: str, content: str, keep_mode_of: str | None) -> None:
        if os.path.islink(path):
            path = os.path.realpath(path)  # edit the link's target, keep the link
        mode: int | None = None
        for source in (keep_mode_of, path):
            if source is not None and mode is None:
                with contextlib.suppress(OSError):
                    info = os.stat(source)
                    if stat.S_ISREG(info.st_mode):
                        mode = stat.S_IMODE(info.st_mode)
        directory, name = os.path.split(path)
        tmp = os.path.join(directory, f".{name}.{os.urandom(4).hex()}.tmp")
        # 0o666 lets the kernel apply the umask, as for any newly created file.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content.encode("utf-8"))
                if mode is not None:
                    os.fchmod(handle.fileno(), mode)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def remove(self, path: str) -> None:
        os.unlink(path)

    def make_parents(self, path: str) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)

    def snapshot(self, path: str) -> tuple[bytes | None, str]:
        try:
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                return os.readlink(path).encode("utf-8", "surrogateescape"), "120000"
            if not stat.S_ISREG(info.st_mode):
                return None, "100644"
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:
            return None, "100644"
        return data, "100755" if info.st_mode & 0o111 else "100644"


LOCAL_FILES = LocalFiles()


class RemoteFiles:
    """A remote environment's files, through its ``fs/*`` methods (see the module docstring)."""

    def __init__(self, environment: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.environment = environment
        self.loop = loop

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(_REMOTE_TIMEOUT)

    def read_text(self, path: str) -> str:
        return self._run(self.environment.read_bytes(path)).decode("utf-8")

    def write_text(self, path: str, content: str, keep_mode_of: str | None) -> None:
        # The remote fs/writeFile replaces the file atomically and keeps its mode.
        self._run(self.environment.write_bytes(path, content.encode("utf-8")))

    def remove(self, path: str) -> None:
        self._run(self.environment.remove(path))

    def make_parents(self, path: str) -> None:
        parent = os.path.dirname(path)
        if parent and parent != "/":
            self._run(self.environment.make_dirs(parent))

    def snapshot(self, path: str) -> tuple[bytes | None, str]:
        try:
            return self._run(self.environment.read_bytes(path)), "100644"
        except OSError:
            return None, "100644"
