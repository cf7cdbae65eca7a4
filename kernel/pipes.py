"""Pipe file descriptors handed to the event loop with exactly one owner.

``loop.connect_read_pipe`` / ``connect_write_pipe`` take a file object, and
the two loops we run on disagree about who closes its descriptor:

* asyncio's pipe transports call ``pipe.close()`` when they close, and
  nothing else touches the descriptor;
* uvloop's transports close the descriptor themselves (libuv) *and then*
  call ``pipe.close()`` too.

With an ordinary file object, uvloop therefore closes every pipe twice. The
second ``close()`` usually fails with EBADF, but when another thread opened
a file in between and got the same number, it silently closes *that* file:
an fs write then lands in the wrong file or vanishes. :func:`loop_pipe`
builds the file object so that the descriptor is closed exactly once,
whichever loop runs.

:func:`child_pipe` makes a pipe pair for a child process without any
``subprocess.Popen`` file objects, so the parent's end has one owner (the
transport) from the start.
"""

from __future__ import annotations

import asyncio
import io
import os

__all__ = ["child_pipe", "loop_closes_pipes", "loop_pipe"]


def loop_closes_pipes(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop``'s pipe transports close the descriptor themselves.

    True for uvloop (libuv closes it). Any other loop is taken to behave
    like asyncio's, which closes only through the file object.
    """
    return type(loop).__module__.split(".", 1)[0] == "uvloop"


def loop_pipe(fd: int, mode: str, loop: asyncio.AbstractEventLoop | None = None) -> io.FileIO:
    """A file object over ``fd`` for ``connect_read_pipe``/``connect_write_pipe``.

    Ownership of ``fd`` passes to the transport made from it: never close
    ``fd`` yourself afterwards. If connecting raised, call ``.close()`` on
    the returned object: on asyncio that closes ``fd``; on uvloop it does
    not, because uvloop may already have (at worst a descriptor leaks on
    that rare path, which is harmless; closing twice is not).
    """
    loop = loop or asyncio.get_running_loop()
    return io.FileIO(fd, mode, closefd=not loop_closes_pipes(loop))


def child_pipe() -> tuple[int, int]:
    """A close-on-exec pipe ``(read_fd, write_fd)``; both ends are the caller's."""
    return os.pipe2(os.O_CLOEXEC) if hasattr(os, "pipe2") else _pipe_cloexec()


def _pipe_cloexec() -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    os.set_inheritable(read_fd, False)
    os.set_inheritable(write_fd, False)
    return read_fd, write_fd
