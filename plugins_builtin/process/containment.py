"""Containment without bubblewrap: the best a plain process can do.

With bubblewrap (through the ``sandbox`` service) every command runs in
its own PID namespace and nothing here is used. Without it:

* the command is started through ``setpriv --pdeathsig KILL`` (util-linux)
  when that exists: its main process dies with the server, even after a
  ``kill -9`` (one extra exec, no ``preexec_fn``, so ``Popen`` keeps its
  fast vfork path);
* its environment carries ``KERNEL_CONTAINMENT_TOKEN=<unique>``, which
  every descendant inherits, and each exit path (the command ended, was
  killed, timed out, its connection closed, shutdown) sweeps ``/proc`` for
  that token and SIGKILLs what it finds: a child that left the process
  group (``setsid``, a double fork) is found all the same.

What this cannot do: after a server ``kill -9`` only the main process has
the parent-death signal; its descendants survive. A descendant that
clears its environment escapes the sweep.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import shutil
import signal
import subprocess

__all__ = ["TOKEN_VARIABLE", "Fallback", "sweep"]

log = logging.getLogger("plugins.process")

TOKEN_VARIABLE = "KERNEL_CONTAINMENT_TOKEN"
_SWEEP_ROUNDS = 5


class Fallback:
    """Tokens and the parent-death wrapper for commands started without bubblewrap."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._prefix: list[str] | None = None
        self._warned = False

    def detect(self) -> list[str]:
        """Find out once whether ``setpriv --pdeathsig`` works here (blocks a few ms)."""
        if self._prefix is None:
            self._prefix = []
            setpriv = shutil.which("setpriv")
            if setpriv is not None:
                wrapper = [setpriv, "--pdeathsig", "KILL", "--"]
                try:
                    run = subprocess.run(
                        [*wrapper, "true"], capture_output=True, timeout=5, check=False
                    )
                except (OSError, subprocess.TimeoutExpired):
                    run = None
                if run is not None and run.returncode == 0:
                    self._prefix = wrapper
        return self._prefix

    def prefix(self) -> list[str]:
        """``["setpriv", "--pdeathsig", "KILL", "--"]`` if that works here, else ``[]``."""
        prefix = self.detect()
        if not prefix and not self._warned:
            self._warned = True
            log.warning(
                "without bubblewrap or setpriv, a command's processes do not die with "
                "the server if it is killed with -9"
            )
        return prefix

    def token(self) -> str:
        """A value no other command of this server carries."""
        return f"{os.getpid()}-{next(self._ids)}"


def _carriers(needle: bytes) -> list[int]:
    found: list[int] = []
    me = os.getpid()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for name in entries:
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as handle:
                environ = handle.read()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(name))
    return found


def sweep(token: str) -> int:
    """SIGKILL every process whose environment carries ``token``; how many were found."""
    needle = f"{TOKEN_VARIABLE}={token}".encode()
    killed = 0
    for _ in range(_SWEEP_ROUNDS):  # again, for anything forked meanwhile
        pids = _carriers(needle)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        killed += len(pids)
    return killed
