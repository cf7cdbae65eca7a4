"""The two ways a sandbox request fails, raised by :class:`SandboxService`.

Callers (the ``process`` plugin, the agent's ``exec_command``) reach them
through the service object (``service.SandboxError``,
``service.SandboxUnavailable``), so they never import this package.
"""

from __future__ import annotations

__all__ = ["SandboxError", "SandboxUnavailable"]


class SandboxError(ValueError):
    """The policy or profile is malformed, or names something that cannot be honoured.

    ``field`` is the request field at fault, in wire spelling
    (``permissionProfile.fileSystem.entries[1].access``), or ``""`` when the
    problem is not tied to one field (an unreadable glob root, say). The
    message never contains the command or its environment.
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field = field
        self.problem = problem


class SandboxUnavailable(RuntimeError):
    """A restricted command was asked for but cannot be sandboxed here.

    Raised instead of running the command unsandboxed: bubblewrap is missing
    or unusable (``reason`` says which, with the fix). Never a silent
    downgrade.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"sandboxing is unavailable ({reason}); refusing to run a restricted command "
            "unsandboxed"
        )
        self.reason = reason
