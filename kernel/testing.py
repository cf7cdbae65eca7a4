"""A pytest plugin for plugin authors (registered under the ``pytest11`` entry point).

Two fixtures, each a factory returning an async context manager that yields a
connected :class:`kernel.client.Client` (not yet initialized), with the
kernel's home in the test's ``tmp_path``:

``kernel_client(plugins=None, *, extra_plugins=None, overrides=(), argv=())``
    an in-process kernel on the test's event loop. ``extra_plugins`` maps
    names to plugin objects, e.g. the plugin under test:
    ``kernel_client(["mine"], extra_plugins={"mine": MyPlugin()})``; one
    replaces an installed plugin of the same name.
    ``client.kernel`` is the running :class:`kernel.Kernel`.

``kernel_process(plugins=None, *, args=(), env=None)``
    ``python -m kernel run`` in a subprocess over real stdio; only installed
    plugins. ``client.stderr_path`` is the file holding the server's log.

Both work with any async test runner. Under pytest-asyncio's default
(strict) mode mark the tests ``@pytest.mark.asyncio`` (or set
``asyncio_mode = "auto"``)::

    @pytest.mark.asyncio
    async def test_echo(kernel_client):
        async with kernel_client(["echo"]) as client:
            await client.initialize()
            assert (await client.request("echo/echo", {"message": "hi"})) == {"message": "hi"}
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

__all__ = ["kernel_client", "kernel_process", "running_kernel", "spawned_kernel"]


@contextlib.asynccontextmanager
async def running_kernel(
    home: Path,
    plugins: Sequence[str] | None = None,
    *,
    extra_plugins: Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    argv: Sequence[str] = (),
    discover: bool = True,
) -> AsyncIterator[Any]:
    """Start an in-process kernel and yield a client connected to it."""
    from .bootstrap import build_kernel
    from .client import Client

    kernel = build_kernel(
        home=home,
        plugins=plugins,
        extra_plugins=extra_plugins,
        overrides=overrides,
        argv=argv,
        discover=discover,
    )
    await kernel.start()
    client = await Client.in_process(kernel)
    client.kernel = kernel
    try:
        yield client
    finally:
        await client.close()
        await kernel.stop()


@contextlib.asynccontextmanager
async def spawned_kernel(
    home: Path,
    plugins: Sequence[str] | None = None,
    *,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[Any]:
    """Start ``python -m kernel run`` over stdio and yield a connected client."""
    from .client import Client

    stderr_path = home.parent / f"{home.name}-stderr.log"
    home.mkdir(parents=True, exist_ok=True)
    merged = {**os.environ, **(env or {})}
    with stderr_path.open("wb") as stderr:
        client = await Client.spawn(*args, plugins=plugins, home=home, env=merged, stderr=stderr)
    client.stderr_path = stderr_path
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def kernel_client(tmp_path: Path) -> Callable[..., Any]:
    """Factory: an in-process kernel with chosen plugins and a connected client."""
    counter = iter(range(1_000_000))

    def factory(plugins: Sequence[str] | None = None, **kwargs: Any) -> Any:
        return running_kernel(tmp_path / f"kernel-home-{next(counter)}", plugins, **kwargs)

    return factory


@pytest.fixture
def kernel_process(tmp_path: Path) -> Callable[..., Any]:
    """Factory: a ``kernel run`` subprocess over stdio and a connected client."""
    counter = iter(range(1_000_000))

    def factory(plugins: Sequence[str] | None = None, **kwargs: Any) -> Any:
        return spawned_kernel(tmp_path / f"kernel-home-{next(counter)}", plugins, **kwargs)

    return factory
