"""The system ``git``, run through the process family (``kernel.services["process"]``).

Git sources (``marketplace/add`` of a URL, a bundle whose marketplace entry
names a repository) are cloned with the machine's ``git`` in a child
process: no shell, a fixed argument list (``--`` before the URL), no
terminal prompt (``GIT_TERMINAL_PROMPT=0``), ``protocol.ext.allow=never``,
a timeout, and the process family's teardown (its whole process group dies
on timeout or at shutdown). A clone goes into a fresh staging directory
that is deleted on every failure path, in the kernel's blocking threads
(:func:`discard`, which the family uses for every directory it deletes: a
big tree must not stall the event loop).

Sources accepted by :func:`parse_source`: ``https://``, ``http://``,
``ssh://``, ``git://`` and ``file://`` URLs, scp-style ``user@host:path``,
and GitHub's ``owner/repo`` shorthand (``https://github.com/owner/repo.git``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from typing import Any

from kernel import Kernel, RpcError
from kernel.rpc.errors import INTERNAL_ERROR, INVALID_REQUEST

__all__ = ["GitError", "clone", "discard", "parse_source", "remote_head", "run_git"]

log = logging.getLogger("plugins.marketplace")

_URL = re.compile(r"^(https?|ssh|git|file)://\S+$")
_SCP = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\S+$")
_SHORTHAND = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": "", "LC_ALL": "C"}


class GitError(Exception):
    """A git command failed; the message carries git's own words (no secrets in URLs)."""


def parse_source(source: str) -> tuple[str, str]:
    """``("local", abs_path)`` or ``("git", url)`` for a ``marketplace/add`` source."""
    text = source.strip()
    if os.path.isabs(text):
        return "local", os.path.normpath(text)
    if _URL.match(text) or _SCP.match(text):
        return "git", text
    if _SHORTHAND.match(text) and not text.startswith("."):
        return "git", f"https://github.com/{text}.git"
    raise RpcError(
        INVALID_REQUEST,
        "invalid marketplace source format; expected owner/repo, a git URL, or a local "
        "marketplace path",
    )


def _redact(text: str) -> str:
    """Credentials in URLs (``https://user:token@host``) never reach clients or logs."""
    return re.sub(r"(://)[^/@\s]+@", r"\1***@", text)


async def run_git(kernel: Kernel, args: list[str], cwd: str, timeout: float) -> str:
    """Run ``git <args>`` in ``cwd``; its stdout, or :class:`GitError` with its stderr."""
    runner = kernel.services.get("process")
    if runner is None:
        raise RpcError(
            INTERNAL_ERROR,
            "git sources need the process plugin (it runs git); enable it with --plugins",
        )
    argv = ["git", "-c", "protocol.ext.allow=never", "-c", "core.hooksPath=/dev/null", *args]
    try:
        handle = await runner.start(argv, cwd=cwd, env=_ENV, timeout=timeout, output_cap=1 << 20)
    except OSError as exc:
        raise GitError(f"cannot run git: {exc.strerror or exc}") from None
    try:
        outcome = await handle.wait()
    finally:
        handle.kill()
    stdout = (outcome.get("stdout") or b"").decode("utf-8", errors="replace")
    if outcome.get("timedOut"):
        raise GitError(f"git {args[0]} timed out after {timeout:g} s")
    if outcome.get("exitCode") != 0:
        stderr = (outcome.get("stderr") or b"").decode("utf-8", errors="replace").strip()
        raise GitError(_redact(stderr or f"git {args[0]} failed (exit {outcome.get('exitCode')})"))
    return stdout


async def clone(
    kernel: Kernel,
    url: str,
    staging_root: str,
    *,
    ref: str | None = None,
    sha: str | None = None,
    sparse: list[str] | None = None,
    timeout: float,
) -> tuple[str, str]:
    """Clone ``url`` into a new directory under ``staging_root``; ``(dir, HEAD sha)``.

    The directory is removed again when anything fails. ``sha`` checks out
    that commit (a full clone then); ``sparse`` limits the checkout to those
    directories.
    """
    os.makedirs(staging_root, mode=0o700, exist_ok=True)
    target = os.path.join(staging_root, f"clone-{uuid.uuid4().hex}")
    args = ["clone", "--quiet"]
    if sha is None:
        args += ["--depth", "1"]
    if ref is not None:
        args += ["--branch", ref]
    if sparse:
        args += ["--sparse"]
    try:
        await run_git(kernel, [*args, "--", url, target], staging_root, timeout)
        if sparse:
            await run_git(kernel, ["sparse-checkout", "set", "--", *sparse], target, timeout)
        if sha is not None:
            await run_git(kernel, ["checkout", "--quiet", "--detach", sha], target, timeout)
        head = (await run_git(kernel, ["rev-parse", "HEAD"], target, timeout)).strip()
    except BaseException:
        await discard(kernel, kernel, target)
        raise
    return target, head


async def discard(kernel: Kernel, owner: object, directory: str) -> None:
    """Delete ``directory`` and everything under it in a blocking thread; never raises.

    Used on failure paths too, so a deletion that cannot run (the pool is
    closed, the deadline passed) is logged instead of hiding the original error.
    """
    try:
        await kernel.blocking.run(owner, shutil.rmtree, directory, True, timeout=120)
    except (TimeoutError, RuntimeError) as exc:
        log.warning("could not delete %s: %s", directory, exc)


async def remote_head(
    kernel: Kernel, url: str, ref: str | None, cwd: str, timeout: float
) -> str | None:
    """The commit ``ref`` (default: HEAD) points to on the remote, or None when unknown."""
    out = await run_git(kernel, ["ls-remote", "--", url, ref or "HEAD"], cwd, timeout)
    for line in out.splitlines():
        sha, _, name = line.partition("\t")
        if sha and (ref is None or name.endswith(ref)):
            return sha.strip()
    return None


def describe(error: Any) -> str:
    """A client-safe message for a git failure."""
    return _redact(str(error))
