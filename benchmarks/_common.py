"""Helpers shared by the benchmarks: CPU placement, event loop, summaries."""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence

__all__ = ["median_rows", "percentiles", "pin_cpus", "uvloop_available"]


def pin_cpus() -> tuple[str, int | None]:
    """Pin this driver and the servers to different CPUs, if there are two.

    Returns a description and the CPU for servers (None when not pinned).
    Otherwise the scheduler sometimes puts driver and server on one core and
    sometimes not, and that alone moves results by 30% between runs.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        return "not pinned (fewer than 2 CPUs)", None
    os.sched_setaffinity(0, {cpus[0]})
    return f"driver on CPU {cpus[0]}, server on CPU {cpus[1]}", cpus[1]


def uvloop_available() -> bool:
    """Whether uvloop can be imported (the kernel uses it when it can)."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def percentiles(latencies: list[float]) -> tuple[float, float]:
    """(p50, p99) of ``latencies`` in seconds, returned in microseconds."""
    ordered = sorted(latencies)
    return ordered[len(ordered) // 2] * 1e6, ordered[int(len(ordered) * 0.99)] * 1e6


def median_rows(rows: Sequence[Sequence[float]]) -> tuple[float, ...]:
    """Column-wise median of equally long rows (one row per round)."""
    return tuple(statistics.median(row[i] for row in rows) for i in range(len(rows[0])))
