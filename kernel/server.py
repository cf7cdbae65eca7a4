"""Running a kernel: listeners, signals, graceful shutdown.

Shutdown order, on SIGINT, SIGTERM or stdin EOF (stdio): stop reading from
every listener; give in-flight handlers ``kernel.shutdown_grace_seconds`` to
finish, cancel the rest (each still gets an answer); flush queued output;
run ``kernel_connection_closed`` then ``kernel_shutdown`` hooks; exit 0. A
second signal skips the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from typing import Any, Protocol

from .plugins import StartupError
from .runtime import Kernel
from .transports.stdio import StdioListener

__all__ = ["Listener", "make_listener", "run", "serve"]

log = logging.getLogger("kernel.server")


class Listener(Protocol):
    """A source of connections (stdio today; sockets with their own issue)."""

    url: str

    async def start(self) -> None:
        """Begin accepting/serving; return once ready."""

    async def stop(self) -> None:
        """Stop accepting and reading; connections are closed by the kernel."""


def make_listener(kernel: Kernel, url: str) -> Listener | None:
    """The listener for a ``--listen`` URL; None for ``off``."""
    if url in ("stdio://", "stdio"):
        return StdioListener(kernel)
    if url == "off":
        return None
    raise StartupError(
        f"--listen {url}: unsupported transport; this build serves stdio:// "
        "(or off for no listener)"
    )


async def serve(kernel: Kernel, listen: Sequence[str] = ("stdio://",)) -> int:
    """Start ``kernel``, serve until asked to stop, shut down; return the exit code."""
    loop = asyncio.get_running_loop()
    listeners = [x for x in (make_listener(kernel, url) for url in listen) if x is not None]
    try:
        await kernel.start()
    except StartupError:
        # A plugin requested by name failed: release the ones already started.
        await kernel.stop(0.0)
        raise
    signals = _install_signal_handlers(loop, kernel)
    started: list[Listener] = []
    try:
        for listener in listeners:
            await listener.start()
            started.append(listener)
        log.info(
            "kernel serving %s with plugins: %s",
            ", ".join(x.url for x in started) or "no listener",
            ", ".join(kernel.plugins.active()) or "none",
        )
        await kernel.wait_stop_requested()
    finally:
        for listener in started:
            with contextlib.suppress(Exception):
                await listener.stop()
        grace = 0.0 if signals.get("forced") else None
        await kernel.stop(grace)
        for listener in started:
            restore = getattr(listener, "restore", None)
            if restore is not None:
                restore()
        for sig in signals.get("installed", []):
            loop.remove_signal_handler(sig)
    return 0


def _install_signal_handlers(loop: asyncio.AbstractEventLoop, kernel: Kernel) -> dict[str, Any]:
    state: dict[str, Any] = {"installed": [], "forced": False}

    def on_signal(sig: signal.Signals) -> None:
        if kernel.stop_reason is not None:
            state["forced"] = True
            log.warning("second %s: cancelling in-flight work now", sig.name)
            for conn in list(kernel.connections):
                conn.cancel_running()
            return
        kernel.request_stop(f"received {sig.name}")

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
            state["installed"].append(sig)
        except (NotImplementedError, RuntimeError):  # non-main thread / Windows
            pass
    return state


def run(kernel: Kernel, listen: Sequence[str] = ("stdio://",)) -> int:
    """Blocking entry point: uvloop when installed, then :func:`serve`."""
    try:
        import uvloop  # type: ignore[import-not-found]
    except ImportError:
        return asyncio.run(serve(kernel, listen))
    return uvloop.run(serve(kernel, listen))
