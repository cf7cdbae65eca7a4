"""The ``diagnostics`` plugin: ``server/diagnostics`` (experimental)."""

from __future__ import annotations

from .plugin import DiagnosticsPlugin

__all__ = ["DiagnosticsPlugin"]
