"""bubblewrap command lines: containment, the sandbox of a :class:`~.paths.Plan`, the probe.

Every command line starts the command in a new PID namespace whose init
is bubblewrap's own reaper (``--unshare-pid``), with the parent-death
signal set (``--die-with-parent``): when the command's main process ends,
or bubblewrap is killed, or the server dies, the kernel kills everything
left in the namespace, however it detached itself (``setsid``,
double-fork). bubblewrap always sets ``no_new_privs``.

A sandbox adds, in this order: the root (``--ro-bind / /`` to read,
``--dev-bind / /`` to write, ``--tmpfs /`` when it is hidden), a minimal
``/dev`` and a fresh ``/proc``, one mount per plan entry, shallow first
(``--ro-bind`` to read, ``--bind`` to write; to deny, an empty read-only
``--tmpfs`` over a directory or ``/dev/null`` over a file), then the
read-only remounts, ``--unshare-net`` when the network is off,
``--cap-drop ALL`` when the server runs as root, and ``--new-session``
unless the command has its own terminal.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence

import attrs

from .paths import Plan

__all__ = ["Bwrap", "contain_args", "find_bwrap", "probe", "sandbox_args"]

_PROBE_TIMEOUT = 10.0
# Run on a terminal inside the PID namespace, before the command: give the
# command a process group of its own and make it the terminal's foreground
# group. The group bubblewrap started in is not visible in the namespace, so
# a job-control shell could not hand the terminal back to it when it exits
# (dash then fails with "Cannot set tty process group" and exit status 2).
_TTY_SHIM = """import os, signal, sys
try:
    os.setpgid(0, 0)
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    os.tcsetpgrp(0, os.getpgrp())
    signal.signal(signal.SIGTTOU, signal.SIG_DFL)
except OSError:
    pass
try:
    os.execvp(sys.argv[1], sys.argv[1:])
except OSError as exc:
    sys.stderr.write(f"{sys.argv[1]}: {exc.strerror}\\n")
    sys.exit(127)
"""


@attrs.frozen
class Bwrap:
    """A bubblewrap that works here, and whether it may mount ``/proc``."""

    path: str
    mount_proc: bool = True


def find_bwrap(configured: str) -> str | None:
    """The bubblewrap executable: ``configured`` if set, else ``bwrap`` on PATH."""
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("bwrap")


def _proc(bwrap: Bwrap) -> list[str]:
    return ["--proc", "/proc"] if bwrap.mount_proc else []


def _command(argv: Sequence[str], tty: bool, plan: Plan | None = None) -> list[str]:
    """``argv``, behind the terminal shim for a ``tty`` command (when Python is visible)."""
    if not tty or not sys.executable:
        return list(argv)
    if plan is not None and "deny" in (
        plan.access(os.path.realpath(sys.executable)),
        plan.access(os.path.realpath(sys.base_prefix)),
    ):
        return list(argv)
    return [sys.executable, "-I", "-S", "-c", _TTY_SHIM, *argv]


def contain_args(bwrap: Bwrap, argv: Sequence[str], cwd: str, *, tty: bool = False) -> list[str]:
    """Full access, contained: own PID namespace, dies with its parent."""
    return [
        bwrap.path,
        "--dev-bind",
        "/",
        "/",
        *_proc(bwrap),
        "--unshare-pid",
        "--die-with-parent",
        "--chdir",
        cwd,
        "--",
        *_command(argv, tty),
    ]


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


def sandbox_args(
    bwrap: Bwrap, plan: Plan, argv: Sequence[str], cwd: str, *, tty: bool = False
) -> list[str]:
    """The command line running ``argv`` in the sandbox ``plan`` describes."""
    args = [bwrap.path]
    if plan.root == "read":
        args += ["--ro-bind", "/", "/", "--dev", "/dev"]
    elif plan.root == "write":
        args += ["--dev-bind", "/", "/"]
    else:
        args += ["--tmpfs", "/", "--dev", "/dev"]
        for target, link in plan.symlinks:
            args += ["--symlink", target, link]
    args += _proc(bwrap)
    remount: list[str] = []
    for mount in plan.mounts:
        path = mount.path
        if _under(path, "/proc") or (plan.root != "write" and path == "/dev"):
            continue
        if mount.access == "read":
            args += ["--ro-bind", path, path]
        elif mount.access == "write":
            args += ["--dev-bind" if _under(path, "/dev") else "--bind", path, path]
        elif os.path.isdir(path):
            args += ["--tmpfs", path]
            remount.append(path)
        else:
            args += ["--ro-bind", "/dev/null", path]
    if plan.root == "deny":
        remount.insert(0, "/")
    for path in reversed(remount):
        args += ["--remount-ro", path]
    args += ["--unshare-pid", "--die-with-parent"]
    if not plan.network:
        args.append("--unshare-net")
    if os.geteuid() == 0:
        args += ["--cap-drop", "ALL"]
    if not tty:
        # A command on pipes has no terminal to lose. One on a terminal keeps
        # it as its controlling terminal (job control; Ctrl-C interrupts the
        # foreground job instead of killing the session): each command has a
        # terminal of its own, so it can only inject input into itself.
        args.append("--new-session")
    args += ["--chdir", cwd, "--", *_command(argv, tty, plan)]
    return args


def _works(argv: list[str]) -> str | None:
    """None if ``argv`` ran and exited 0, else why not."""
    try:
        run = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if run.returncode == 0:
        return None
    text = run.stderr.decode(errors="replace").strip().splitlines()
    return text[-1] if text else f"exit status {run.returncode}"


def probe(path: str) -> tuple[Bwrap | None, str]:
    """Try ``path`` once with the options commands use: (usable bwrap, or None and why)."""
    sandbox = [
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--unshare-pid",
        "--unshare-net",
        "--die-with-parent",
        "--new-session",
    ]
    if os.geteuid() == 0:
        sandbox += ["--cap-drop", "ALL"]
    problem = ""
    for mount_proc in (True, False):
        proc = ["--proc", "/proc"] if mount_proc else []
        problem = _works([path, *sandbox, *proc, "--", "true"]) or ""
        if not problem:
            contain = contain_args(Bwrap(path, mount_proc), ["true"], "/")
            problem = _works(contain) or ""
        if not problem:
            return Bwrap(path, mount_proc), ""
    return None, f"{path} does not work here: {problem}"
