"""When a command or a patch needs approval, and what an approval grants.

Policies (the thread's ``approvalPolicy``):

* ``untrusted``: every command asks (as the reference 0.169 does, even for
  ``ls``); an approved command runs outside the sandbox.
* ``on-request``: commands run in the sandbox without asking; a command the
  model marks ``require_escalated`` asks, and runs unsandboxed if approved.
* ``on-failure``: commands run in the sandbox; one the sandbox denied asks
  to run again unsandboxed.
* ``never``: nothing asks; escalation is refused.
* ``{"granular": {...}}``: like ``on-request``; ``sandbox_approval: false``
  refuses escalation as ``never`` does, ``request_permissions: false``
  declines permission requests without asking.

Whatever the policy, a command approved for the session (same command, cwd,
terminal and escalation) or matching a prefix rule the user accepted runs
without asking.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

__all__ = [
    "ApprovalMemory",
    "ExecPlan",
    "needs_patch_approval",
    "permissions_requests_allowed",
    "plan_exec",
    "proposed_amendment",
    "sandbox_denied",
]

_POLICY_DEBUG = {"never": "Never", "untrusted": "UnlessTrusted", "on-failure": "OnFailure"}
# Output a sandbox denial leaves behind (EROFS, EACCES/EPERM, no network).
_DENIAL_MARKERS = (
    "Read-only file system",
    "Permission denied",
    "Operation not permitted",
    "Network is unreachable",
    "Temporary failure in name resolution",
)


def _granular(policy: Any) -> Mapping[str, Any] | None:
    if isinstance(policy, Mapping) and isinstance(policy.get("granular"), Mapping):
        return policy["granular"]
    return None


@attrs.frozen
class ExecPlan:
    """What to do with one command before it runs."""

    action: str  # "run" | "ask" | "reject"
    sandboxed: bool = True  # run inside the turn's sandbox (after approval too)
    message: str = ""  # for "reject": the text the model gets


def plan_exec(policy: Any, *, full_access: bool, escalated: bool, remembered: bool) -> ExecPlan:
    """Decide for one ``exec_command`` (see the module docstring)."""
    granular = _granular(policy)
    if remembered:
        return ExecPlan("run", sandboxed=not escalated)
    refuse_escalation = policy in ("never", "untrusted", "on-failure") or (
        granular is not None and not granular.get("sandbox_approval", True)
    )
    if escalated and refuse_escalation:
        name = _POLICY_DEBUG.get(policy, "Granular") if isinstance(policy, str) else "Granular"
        return ExecPlan(
            "reject",
            message=f"approval policy is {name}; reject command — you cannot ask for escalated "
            f"permissions if the approval policy is {name}",
        )
    if policy == "untrusted":
        return ExecPlan("ask", sandboxed=False)
    if escalated and not full_access:
        return ExecPlan("ask", sandboxed=False)
    return ExecPlan("run", sandboxed=not full_access)


def sandbox_denied(policy: Any, sandboxed: bool, exit_code: int, output: str) -> bool:
    """Under ``on-failure``: did the sandbox (not the command itself) make it fail?"""
    if policy != "on-failure" or not sandboxed or exit_code == 0:
        return False
    return any(marker in output for marker in _DENIAL_MARKERS)


def needs_patch_approval(
    policy: Any, *, paths: Sequence[str], writable: Sequence[str], remembered: bool
) -> bool | None:
    """For ``apply_patch``: True to ask, False to apply, None to refuse (``never``, outside).

    A patch inside the writable roots applies without asking (the sandbox
    would allow the same writes); under ``untrusted`` every patch asks.
    """
    if remembered:
        return False
    inside = all(any(_within(p, root) for root in writable) for p in paths)
    if policy == "untrusted":
        return True
    if inside:
        return False
    granular = _granular(policy)
    if policy == "never" or (granular is not None and not granular.get("sandbox_approval", True)):
        return None
    return True


def permissions_requests_allowed(policy: Any) -> bool:
    """``request_permissions`` asks the client under every policy but granular-without-it."""
    granular = _granular(policy)
    return granular is None or bool(granular.get("request_permissions", True))


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


class ApprovalMemory:
    """What the user approved for the rest of the session (one per loaded thread)."""

    def __init__(self) -> None:
        self.commands: set[tuple[str, str, bool, bool]] = set()
        self.prefixes: list[tuple[str, ...]] = []
        self.patch_paths: set[str] = set()
        self.write_roots: list[str] = []
        self.read_roots: list[str] = []
        self.network = False

    def remembers_command(self, cmd: str, cwd: str, tty: bool, escalated: bool) -> bool:
        """Approved for the session, or covered by an accepted prefix rule."""
        if (cmd, cwd, tty, escalated) in self.commands:
            return True
        words = _words(cmd)
        return words is not None and any(
            tuple(words[: len(prefix)]) == prefix for prefix in self.prefixes
        )

    def remember_command(self, cmd: str, cwd: str, tty: bool, escalated: bool) -> None:
        self.commands.add((cmd, cwd, tty, escalated))

    def remember_prefix(self, prefix: Sequence[str]) -> None:
        rule = tuple(prefix)
        if rule and rule not in self.prefixes:
            self.prefixes.append(rule)

    def remembers_patch(self, paths: Sequence[str]) -> bool:
        return bool(paths) and all(p in self.patch_paths for p in paths)

    def remember_patch(self, paths: Sequence[str]) -> None:
        self.patch_paths.update(paths)


def _words(cmd: str) -> list[str] | None:
    """The words of a simple command (None for scripts with operators)."""
    try:
        words = shlex.split(cmd)
    except ValueError:
        return None
    if any(w in ("&&", "||", ";", "|", "&") or w.startswith((">", "<")) for w in words):
        return None
    return words


def proposed_amendment(cmd: str, prefix_rule: Sequence[str] | None) -> list[str] | None:
    """The prefix rule offered with an approval: the model's, else the command's words."""
    words = _words(cmd)
    if prefix_rule:
        rule = [str(p) for p in prefix_rule]
        if words is not None and words[: len(rule)] == rule:
            return rule
    return words or None
