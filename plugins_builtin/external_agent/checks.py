"""Checks of ``externalAgentConfig/*`` params the types cannot express.

Errors are ``-32602`` naming the member (``cwds[1]``,
``migrationItems[0].details.sessions[2].path``), before anything is read
or written, except where the reference answers ``-32600`` with a message
of its own (memory import switched off or empty).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from kernel import RpcError, invalid_field
from kernel.rpc.errors import INVALID_REQUEST

from .model import MEMORY, SESSIONS
from .params import ExternalAgentConfigMigrationItem

__all__ = ["check_counts", "check_cwds", "check_items", "check_source"]

SOURCES = ("claude",)
_UINT32 = 2**32 - 1


def check_source(migration_source: str | None) -> None:
    """Only the other agent this server reads: ``claude`` (or none named)."""
    if migration_source is None or migration_source.lower() in SOURCES:
        return
    raise invalid_field(
        "migrationSource",
        f"{migration_source!r} is not supported by this server (supported: claude)",
    )


def check_cwds(cwds: Sequence[str] | None) -> None:
    """Every detection cwd is an absolute path."""
    for index, cwd in enumerate(cwds or ()):
        if not os.path.isabs(cwd):
            raise invalid_field(f"cwds[{index}]", f"expected an absolute path, got {cwd!r}")


def check_counts(max_sessions: int | None, max_age_days: int | None) -> None:
    """The session limits are unsigned 32-bit integers, as the schema says."""
    for name, value in (("maxSessions", max_sessions), ("maxSessionAgeDays", max_age_days)):
        if value is not None and not 0 <= value <= _UINT32:
            raise invalid_field(name, f"expected an integer from 0 to {_UINT32}, got {value}")


def check_items(items: Sequence[ExternalAgentConfigMigrationItem], memory_enabled: bool) -> None:
    """Paths absolute (an item's ``cwd`` may be empty: the home), memory allowed and named."""
    for index, item in enumerate(items):
        where = f"migrationItems[{index}]"
        if item.cwd and not os.path.isabs(item.cwd):
            raise invalid_field(f"{where}.cwd", f"expected an absolute path, got {item.cwd!r}")
        details = item.details
        if item.item_type == SESSIONS and details is not None:
            for number, session in enumerate(details.sessions):
                for member in ("path", "cwd"):
                    value = getattr(session, member)
                    if not os.path.isabs(value):
                        raise invalid_field(
                            f"{where}.details.sessions[{number}].{member}",
                            f"expected an absolute path, got {value!r}",
                        )
    if any(item.item_type == MEMORY for item in items):
        if not memory_enabled:
            raise RpcError(INVALID_REQUEST, "external agent memory import is disabled")
        if any(
            item.item_type == MEMORY and not (item.details and item.details.memory)
            for item in items
        ):
            raise RpcError(INVALID_REQUEST, "memory import requires at least one selected memory")
