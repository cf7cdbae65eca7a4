"""Claiming a unix socket path safely: owner-only, never stealing a live one.

A server holds an exclusive ``flock`` on ``<socket>.lock`` for as long as it
serves the socket. At startup:

* the lock is taken, or startup fails: another server owns the path;
* an existing path that is not a socket is never touched;
* an existing socket that still accepts connections is never replaced (a
  server that does not use the lock file, or one whose lock file was deleted);
* otherwise the socket file is stale (its server died) and is replaced.

The socket is bound under a ``0o177`` umask, so it is created owner-only
(``0600``) with no window where others could connect. The default path's
directory is created ``0700``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import stat
from pathlib import Path

from ..plugins import StartupError

__all__ = ["SOCKET_DIR", "SOCKET_NAME", "UnixSocketClaim", "default_socket_path"]

log = logging.getLogger("kernel.transports.unix")

SOCKET_DIR = "app-server-control"
SOCKET_NAME = "app-server-control.sock"
# sun_path holds 108 bytes on Linux, 104 on macOS, including the final NUL.
_MAX_PATH_BYTES = 103


def default_socket_path(home: Path) -> Path:
    """Where ``unix://`` (no path) listens and ``kernel proxy`` connects."""
    return home / SOCKET_DIR / SOCKET_NAME


class UnixSocketClaim:
    """A bound, owner-only unix socket and the lock that says it is ours."""

    def __init__(self, path: Path, *, create_parent: bool = False) -> None:
        if not path.is_absolute():
            raise StartupError(f"unix://{path}: the socket path must be absolute")
        if len(os.fsencode(path)) > _MAX_PATH_BYTES:
            raise StartupError(
                f"unix://{path}: the socket path is longer than {_MAX_PATH_BYTES} bytes, "
                "the limit of unix sockets; choose a shorter path"
            )
        self.path = path
        self._create_parent = create_parent
        self._lock_fd: int | None = None
        self._inode: int | None = None
        self.sock: socket.socket | None = None

    def claim(self) -> socket.socket:
        """Take the lock, clear a stale socket, and bind; returns the bound socket."""
        parent = self.path.parent
        if self._create_parent:
            parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        elif not parent.is_dir():
            raise StartupError(f"unix://{self.path}: directory {parent} does not exist")
        self._lock()
        try:
            self._clear_stale()
            self.sock = self._bind()
        except BaseException:
            self.release()
            raise
        return self.sock

    def _lock(self) -> None:
        lock_path = f"{self.path}.lock"
        import fcntl  # unix sockets imply a POSIX system

        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise StartupError(
                    f"unix://{self.path}: another server is already listening on this socket"
                ) from None
            raise
        self._lock_fd = fd

    def _clear_stale(self) -> None:
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(info.st_mode):
            raise StartupError(
                f"unix://{self.path}: the path exists and is not a socket; refusing to replace it"
            )
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(str(self.path))
        except OSError:
            log.info("replacing stale socket %s (no server answers on it)", self.path)
            self.path.unlink(missing_ok=True)
            return
        finally:
            probe.close()
        raise StartupError(
            f"unix://{self.path}: a running server is accepting connections on this socket"
        )

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_mask = os.umask(0o177)
        try:
            sock.bind(str(self.path))
        except OSError as exc:
            sock.close()
            raise StartupError(f"unix://{self.path}: cannot bind: {exc.strerror}") from None
        finally:
            os.umask(old_mask)
        os.chmod(self.path, 0o600)
        self._inode = os.lstat(self.path).st_ino
        sock.setblocking(False)
        return sock

    def release(self) -> None:
        """Remove our socket file (not one that replaced it) and drop the lock."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self._inode is not None:
            with contextlib.suppress(OSError):
                if os.lstat(self.path).st_ino == self._inode:
                    self.path.unlink()
            self._inode = None
        if self._lock_fd is not None:
            # The lock file stays: unlinking it would let two servers lock
            # different files for the same socket path.
            os.close(self._lock_fd)
            self._lock_fd = None
