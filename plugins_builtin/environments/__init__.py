"""The ``environments`` plugin: remote environments where the agent's tools run.

See docs/environments.md.
"""

from __future__ import annotations

from .plugin import EnvironmentsPlugin, EnvironmentsService

__all__ = ["EnvironmentsPlugin", "EnvironmentsService"]
