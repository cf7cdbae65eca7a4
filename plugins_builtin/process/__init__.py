"""The ``process`` plugin: ``command/exec`` and the experimental ``process/*`` family.

Commands run as argv vectors (no shell), in their own process group, with
output caps, timeouts, optional streaming and PTYs. Behaviour, exit-code
conventions and what is not enforced yet are in docs/process.md.
"""

from __future__ import annotations

from .plugin import ProcessPlugin, ProcessSettings

__all__ = ["ProcessPlugin", "ProcessSettings"]
