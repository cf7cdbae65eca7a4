"""Transports: how frames reach a :class:`kernel.connection.Connection`.

Each transport implements :class:`kernel.connection.Link` for the way out and
feeds frames to ``Connection.receive`` from one reader task.
"""

from __future__ import annotations

__all__: list[str] = []
