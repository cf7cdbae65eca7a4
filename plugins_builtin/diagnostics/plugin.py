"""Serve ``server/diagnostics`` from the kernel's live counters."""

from __future__ import annotations

import os

from kernel import Registrar, RequestContext, hookimpl

from .types import (
    ServerDiagnosticsGauge,
    ServerDiagnosticsParams,
    ServerDiagnosticsProcess,
    ServerDiagnosticsResponse,
)

__all__ = ["DiagnosticsPlugin", "resident_memory_bytes"]


def resident_memory_bytes() -> int | None:
    """Current resident set size from /proc (Linux); None elsewhere."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            pages = int(handle.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def diagnostics(params: ServerDiagnosticsParams, ctx: RequestContext) -> ServerDiagnosticsResponse:
    """Report the server process and the kernel's load gauges."""
    kernel = ctx.kernel
    stats = kernel.stats
    readings = {
        "kernel.connections.open": len(kernel.connections),
        "kernel.connections.total": stats.connections_total,
        "kernel.requests.in_flight": kernel.in_flight(),
        "kernel.requests.total": stats.requests,
        "kernel.requests.overloaded": stats.overloaded,
        "kernel.requests.handler_errors": stats.handler_errors,
        "kernel.frames.invalid": stats.invalid_frames,
        "kernel.frames.out": stats.frames_out,
        "kernel.outbound.queued": kernel.queued_frames(),
        "kernel.notifications.sent": stats.notifications,
    }
    return ServerDiagnosticsResponse(
        process=ServerDiagnosticsProcess(
            id=os.getpid(), resident_memory_bytes=resident_memory_bytes()
        ),
        gauges=[ServerDiagnosticsGauge(name, value) for name, value in readings.items()],
    )


class DiagnosticsPlugin:
    """Built-in plugin; experimental like the reference's method."""

    @hookimpl
    def kernel_register(self, registrar: Registrar) -> None:
        registrar.method(
            "server/diagnostics",
            diagnostics,
            params=ServerDiagnosticsParams,
            result=ServerDiagnosticsResponse,
            experimental=True,
        )
