"""Stdio MCP servers die with the kernel: the ``setpriv --pdeathsig KILL`` wrapper.

The SDK starts each server in a session of its own and kills that process
group when its client closes; a ``kill -9`` of the kernel runs no cleanup,
so the server is started through util-linux ``setpriv`` with a parent-death
signal instead (one extra exec, no ``preexec_fn``). Found once, at startup.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess

__all__ = ["pdeathsig_prefix"]

log = logging.getLogger("plugins.mcp")

_prefix: list[str] | None = None


def pdeathsig_prefix() -> list[str]:
    """``["setpriv", "--pdeathsig", "KILL", "--"]`` when it works here (checked once)."""
    global _prefix
    if _prefix is None:
        _prefix = []
        setpriv = shutil.which("setpriv")
        if setpriv is not None:
            wrapper = [setpriv, "--pdeathsig", "KILL", "--"]
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                run = subprocess.run([*wrapper, "true"], capture_output=True, timeout=5)
                if run.returncode == 0:
                    _prefix = wrapper
        if not _prefix:
            log.warning("setpriv is missing: stdio MCP servers survive a kill -9 of the server")
    return _prefix
