"""The ``sandbox`` plugin: sandbox policies and permission profiles, enforced with bubblewrap.

It publishes ``kernel.services["sandbox"]`` (:class:`SandboxService`),
which turns a ``sandboxPolicy`` or ``permissionProfile`` into a
bubblewrap command line for the ``process`` plugin and the agent's tools,
and serves ``permissionProfile/list``. Rules, enforcement and what happens
without bubblewrap are in docs/sandbox.md.
"""

from __future__ import annotations

from .errors import SandboxError, SandboxUnavailable
from .plugin import SandboxPlugin, SandboxSettings
from .service import SandboxService

__all__ = [
    "SandboxError",
    "SandboxPlugin",
    "SandboxService",
    "SandboxSettings",
    "SandboxUnavailable",
]
