"""Test guard: a server under test may destroy files only inside a jail directory.

Loaded at start-up by every test subprocess (this directory is on their
``PYTHONPATH``). When ``KERNEL_TEST_FS_JAIL`` names a directory, an audit
hook refuses every removal, rename and ``rmtree`` of an absolute path
outside it, before the call reaches the OS, and records the attempt in
``<jail>/guard-refusals.log`` so a test can tell that the server *tried*.
A defect in a destructive code path (``fs/remove`` of ``/``) then fails its
test instead of wiping the machine that runs it. Without the variable this
module does nothing.
"""

from __future__ import annotations

import os
import sys

_JAIL = os.environ.get("KERNEL_TEST_FS_JAIL")
_GUARDED = {"os.remove", "os.rmdir", "os.rename", "shutil.rmtree", "os.truncate"}


def _inside(path: object, jail: str) -> bool:
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str) or not os.path.isabs(path):
        return True  # relative to a dir_fd: part of a call already judged by its top path
    real = os.path.realpath(os.path.dirname(path.rstrip("/")) or "/")
    return real == jail or real.startswith(jail + os.sep)


def _install(jail: str) -> None:
    jail = os.path.realpath(jail)
    log = os.path.join(jail, "guard-refusals.log")

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event not in _GUARDED or not args:
            return
        paths = args[:2] if event == "os.rename" else args[:1]
        for path in paths:
            if not _inside(path, jail):
                with open(log, "a") as handle:
                    handle.write(f"{event} {path!r}\n")
                raise PermissionError(f"test guard: {event} outside {jail} refused: {path!r}")

    sys.addaudithook(hook)


if _JAIL:
    _install(_JAIL)
