"""Automatic approval review: ``approvals_reviewer = "auto_review"`` (see docs/guardian.md)."""

from __future__ import annotations

from .plugin import GuardianPlugin, GuardianSettings

__all__ = ["GuardianPlugin", "GuardianSettings"]
