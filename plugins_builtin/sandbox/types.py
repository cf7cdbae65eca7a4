"""Wire types of ``permissionProfile/list`` and ``configWarning`` (shapes from the reference)."""

from __future__ import annotations

import attrs

__all__ = [
    "ConfigWarningNotification",
    "PermissionProfileListParams",
    "PermissionProfileListResponse",
    "PermissionProfileSummary",
    "TextPosition",
    "TextRange",
    "WindowsSandboxSetupCompletedNotification",
    "WindowsSandboxSetupStartParams",
]


@attrs.frozen
class PermissionProfileListParams:
    """Page through the permission profiles a command or thread may select."""

    cursor: str | None = None
    limit: int | None = None
    cwd: str | None = None


@attrs.frozen
class PermissionProfileSummary:
    """One selectable profile: a built-in (``:read-only``...) or ``[permissions.<id>]``."""

    id: str
    allowed: bool
    description: str | None = None


@attrs.frozen
class PermissionProfileListResponse:
    """One page; ``nextCursor`` is null on the last."""

    data: list[PermissionProfileSummary]
    next_cursor: str | None = None


@attrs.frozen
class TextPosition:
    """A position in a config file."""

    line: int
    column: int


@attrs.frozen
class TextRange:
    """A range in a config file."""

    start: TextPosition
    end: TextPosition


@attrs.frozen
class ConfigWarningNotification:
    """A configuration problem the client should show (sent right after initialize)."""

    summary: str
    details: str | None = None
    path: str | None = None
    range: TextRange | None = None


@attrs.frozen
class WindowsSandboxSetupStartParams:
    """Set up the Windows sandbox (``elevated`` or ``unelevated``); Linux has nothing to set up."""

    mode: str
    cwd: str | None = None


@attrs.frozen
class WindowsSandboxSetupCompletedNotification:
    """How a Windows sandbox setup ended."""

    mode: str
    success: bool
    error: str | None = None
