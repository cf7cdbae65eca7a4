"""Running a kernel: listeners, signals, graceful shutdown.

Shutdown order, on SIGINT, SIGTERM or stdin EOF (stdio): stop reading from
every listener; give in-flight handlers ``kernel.shutdown_grace_seconds`` to
finish, cancel the rest (each still gets an answer); flush queued output;
run ``kernel_connection_closed`` then ``kernel_shutdown`` hooks; exit 0. A
second signal skips the grace period.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from typing import Any, Protocol

from .auth import auth_modes
from .plugins import StartupError
from .runtime import Kernel
from .transports.network import NetworkListener, parse_listen_url
from .transports.stdio import StdioListener

__all__ = ["Listener", "make_listeners", "run", "serve"]

log = logging.getLogger("kernel.server")


class Listener(Protocol):
    """A source of connections: stdio, a websocket address or a unix socket."""

    url: str

    async def start(self) -> None:
        """Begin accepting/serving; return once ready."""

    async def stop(self) -> None:
        """Stop accepting and reading; connections are closed by the kernel."""

    async def close(self) -> None:
        """Release what the listener holds, after its connections closed."""


def make_listeners(kernel: Kernel, urls: Sequence[str]) -> list[Listener]:
    """The listeners for ``--listen`` URLs (``off`` contributes none).

    Several may run at once (``--listen stdio:// --listen ws://127.0.0.1:4500``);
    the same address twice, or stdio twice, is refused.
    """
    specs = [parse_listen_url(url, kernel.home) for url in urls]
    seen: set[tuple[object, ...]] = set()
    for url, spec in zip(urls, specs, strict=True):
        if spec.scheme == "off" or (spec.scheme == "ws" and spec.port == 0):
            continue
        key = (spec.scheme, spec.host, spec.port, spec.path)
        if key in seen:
            raise StartupError(f"--listen {url}: this endpoint is listed twice")
        seen.add(key)
    network = [s for s in specs if s.scheme in ("ws", "unix")]
    modes = [mode for _, mode in auth_modes(kernel.plugins)] if network else []
    listeners: list[Listener] = []
    for spec in specs:
        if spec.scheme == "stdio":
            listeners.append(StdioListener(kernel))
        elif spec.scheme != "off":
            listeners.append(NetworkListener(kernel, spec, modes))
    return listeners


async def serve(kernel: Kernel, listen: Sequence[str] = ("stdio://",)) -> int:
    """Start ``kernel``, serve until asked to stop, shut down; return the exit code."""
    loop = asyncio.get_running_loop()
    listeners = make_listeners(kernel, listen)
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
            "kernel serving %s with plugins: %s (event loop: %s)",
            ", ".join(x.url for x in started) or "no listener",
            ", ".join(kernel.plugins.active()) or "none",
            type(loop).__module__.split(".", 1)[0],
        )
        await kernel.wait_stop_requested()
    finally:
        for listener in started:
            try:
                await listener.stop()
            except Exception:
                log.exception("stopping %s failed", listener.url)
        grace = 0.0 if signals.get("forced") else None
        await kernel.stop(grace)
        for listener in started:
            try:
                await listener.close()
            except Exception:
                log.exception("closing %s failed", listener.url)
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
    """Blocking entry point: the configured event loop, then :func:`serve`.

    ``kernel.event_loop = "auto"`` takes uvloop when it is installed.
    """
    choice = kernel.settings.event_loop
    if choice != "asyncio":
        try:
            import uvloop  # type: ignore[import-not-found]
        except ImportError:
            if choice == "uvloop":
                raise StartupError(
                    'kernel.event_loop = "uvloop" but uvloop is not installed '
                    "(pip install 'kernel-app-server[fast]')"
                ) from None
        else:
            return int(uvloop.run(serve(kernel, listen)))
    return asyncio.run(serve(kernel, listen))
