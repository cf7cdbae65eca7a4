"""Wire types of ``server/diagnostics`` (shapes from the reference protocol)."""

from __future__ import annotations

import attrs

__all__ = [
    "ServerDiagnosticsGauge",
    "ServerDiagnosticsParams",
    "ServerDiagnosticsProcess",
    "ServerDiagnosticsResponse",
]


@attrs.frozen
class ServerDiagnosticsParams:
    """No parameters."""


@attrs.frozen
class ServerDiagnosticsGauge:
    """One named, non-negative reading taken at the time of the call."""

    name: str
    value: int


@attrs.frozen
class ServerDiagnosticsProcess:
    """The server process: pid and memory where the platform reports it."""

    id: int
    resident_memory_bytes: int | None = None
    physical_footprint_bytes: int | None = None


@attrs.frozen
class ServerDiagnosticsResponse:
    """Process facts and the kernel's gauges."""

    process: ServerDiagnosticsProcess
    gauges: list[ServerDiagnosticsGauge]
