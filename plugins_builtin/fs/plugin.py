"""The ``fs`` plugin: hooks, settings and the ``fs/*`` handlers.

Handlers run the blocking work of :mod:`.operations` in the kernel's
blocking pool (:mod:`kernel.blocking`): a slow disk or a 64 MiB file never
stalls other requests, one connection holds at most its share of the
threads, and a call that hangs (a device-like file, a dead network mount)
is answered with an error after ``operation_timeout_seconds``.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from kernel import (
    Connection,
    Kernel,
    RequestContext,
    hookimpl,
    invalid_field,
    method,
    notification,
)
from kernel.blocking import BlockingTimeout
from kernel.config import Config
from kernel.settings import SettingError

from . import operations
from .errors import IO_ERROR, TOO_MANY_WATCHES, from_os_error, fs_error
from .observer import SharedObserver
from .tree import FsService
from .types import (
    FsChangedNotification,
    FsCopyParams,
    FsCopyResponse,
    FsCreateDirectoryParams,
    FsCreateDirectoryResponse,
    FsGetMetadataParams,
    FsGetMetadataResponse,
    FsReadDirectoryParams,
    FsReadDirectoryResponse,
    FsReadFileParams,
    FsReadFileResponse,
    FsRemoveParams,
    FsRemoveResponse,
    FsUnwatchParams,
    FsUnwatchResponse,
    FsWatchParams,
    FsWatchResponse,
    FsWriteFileParams,
    FsWriteFileResponse,
)
from .watch import WatchService

__all__ = ["FsPlugin", "FsSettings"]

MIB = 1 << 20
T = TypeVar("T")


@attrs.frozen
class FsSettings:
    """``[kernel_plugins.fs]`` in config.toml."""

    # The largest size whose base64 form fits the default 128 MiB message.
    max_file_bytes: int = 90 * MIB
    watch_coalesce_ms: int = 100
    durable_writes: bool = True
    max_watches_per_connection: int = 256
    # A disk call still running after this long is answered with -32018.
    operation_timeout_seconds: float = 120.0
    # fs/remove refuses the server's home and the user's home (and their
    # ancestors) unless this is true; the filesystem root is always refused.
    allow_remove_home: bool = False

    def check(self, config: Config) -> None:
        """Ranges, and that a whole file fits in one message."""
        if self.max_file_bytes < 1:
            raise SettingError("max_file_bytes", "must be at least 1")
        # A file travels base64-encoded (4/3) inside one message.
        encoded = (self.max_file_bytes + 2) // 3 * 4 + 4096
        limit = config.kernel_settings().max_message_bytes
        if encoded > limit:
            raise SettingError(
                "max_file_bytes",
                f"a file of {self.max_file_bytes} bytes needs a message of about {encoded} "
                f"bytes once base64-encoded, more than kernel.max_message_bytes ({limit}); "
                "raise that too",
            )
        if self.watch_coalesce_ms < 0:
            raise SettingError("watch_coalesce_ms", "must not be negative")
        if self.max_watches_per_connection < 1:
            raise SettingError("max_watches_per_connection", "must be at least 1")
        if self.operation_timeout_seconds <= 0:
            raise SettingError("operation_timeout_seconds", "must be positive")


def _current_umask() -> int:
    # Reading the umask means setting it; done once, before any thread exists.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _canonical(path: str) -> str:
    return os.path.realpath(path)


def _protected_homes(kernel: Kernel) -> tuple[str, ...]:
    """The server's home and the user's home, resolved (absent ones too)."""
    homes = {os.path.realpath(kernel.home)}
    user_home = os.path.expanduser("~")
    if os.path.isabs(user_home):
        homes.add(os.path.realpath(user_home))
    return tuple(sorted(homes))


class FsPlugin:
    """Serves the filesystem method family and ``fs/changed``."""

    changed = notification("fs/changed", FsChangedNotification)

    def __init__(self) -> None:
        self.settings = FsSettings()
        self.umask = 0o022
        self.watches: WatchService | None = None
        self.service: FsService | None = None
        self.observer: SharedObserver | None = None
        self.protected: tuple[str, ...] = ()
        self.kernel: Kernel | None = None
        # Watches being set up, per connection id: counted against the limit.
        self._reserved: dict[int, int] = {}

    @hookimpl
    def kernel_settings(self) -> type[FsSettings]:
        return FsSettings

    @hookimpl
    def kernel_configure(self, kernel: Kernel, settings: FsSettings) -> None:
        self.settings = settings
        self.umask = _current_umask()
        self.kernel = kernel
        self.protected = () if settings.allow_remove_home else _protected_homes(kernel)

    @hookimpl
    def kernel_startup(self, kernel: Kernel) -> None:
        loop = asyncio.get_running_loop()
        window = self.settings.watch_coalesce_ms / 1000
        # One watchdog observer for fs/watch and tree watches: a directory both
        # observe is one reference-counted entry (see observer.py).
        self.observer = SharedObserver(loop)
        self.watches = WatchService(loop, window, self.observer)
        # Other families (skills) watch whole trees through this; see tree.py.
        self.service = FsService(loop, window, self.observer)
        kernel.services["fs"] = self.service

    @hookimpl
    def kernel_connection_closed(self, connection: Connection) -> None:
        if self.watches is not None:
            self.watches.remove_connection(connection)

    @hookimpl
    async def kernel_shutdown(self, kernel: Kernel) -> None:
        if self.watches is not None:
            self.watches.close_all()
        if self.service is not None:
            self.service.close_all()
        if self.observer is not None:
            await self.observer.aclose()

    # -- handlers ---------------------------------------------------------------

    async def _disk(self, ctx: RequestContext, path: str, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the blocking pool on the caller's share, with the deadline."""
        assert self.kernel is not None
        timeout = self.settings.operation_timeout_seconds
        try:
            return await self.kernel.blocking.run(ctx.connection, fn, *args, timeout=timeout)
        except BlockingTimeout as exc:
            outcome = (
                "it may still complete" if exc.started else "it was not started (no free thread)"
            )
            raise fs_error(
                IO_ERROR,
                path,
                f"timed out after {timeout:g} s "
                f"(kernel_plugins.fs.operation_timeout_seconds); {outcome}",
            ) from None
        except RecursionError:
            raise fs_error(IO_ERROR, path, "the directory tree is too deep") from None

    @method("fs/readFile")
    async def read_file(self, params: FsReadFileParams, ctx: RequestContext) -> FsReadFileResponse:
        data = await self._disk(
            ctx, params.path, operations.read_file, params.path, self.settings.max_file_bytes
        )
        return FsReadFileResponse(data)

    @method("fs/writeFile")
    async def write_file(
        self, params: FsWriteFileParams, ctx: RequestContext
    ) -> FsWriteFileResponse:
        settings = self.settings
        await self._disk(
            ctx,
            params.path,
            operations.write_file,
            params.path,
            params.data_base64,
            settings.max_file_bytes,
            self.umask,
            settings.durable_writes,
        )
        return FsWriteFileResponse()

    @method("fs/createDirectory")
    async def create_directory(
        self, params: FsCreateDirectoryParams, ctx: RequestContext
    ) -> FsCreateDirectoryResponse:
        recursive = True if params.recursive is None else params.recursive
        await self._disk(ctx, params.path, operations.create_directory, params.path, recursive)
        return FsCreateDirectoryResponse()

    @method("fs/getMetadata")
    async def get_metadata(
        self, params: FsGetMetadataParams, ctx: RequestContext
    ) -> FsGetMetadataResponse:
        return await self._disk(ctx, params.path, operations.get_metadata, params.path)

    @method("fs/readDirectory")
    async def read_directory(
        self, params: FsReadDirectoryParams, ctx: RequestContext
    ) -> FsReadDirectoryResponse:
        entries = await self._disk(ctx, params.path, operations.read_directory, params.path)
        return FsReadDirectoryResponse(entries)

    @method("fs/remove")
    async def remove(self, params: FsRemoveParams, ctx: RequestContext) -> FsRemoveResponse:
        recursive = True if params.recursive is None else params.recursive
        force = True if params.force is None else params.force
        await self._disk(
            ctx, params.path, operations.remove, params.path, recursive, force, self.protected
        )
        return FsRemoveResponse()

    @method("fs/copy")
    async def copy(self, params: FsCopyParams, ctx: RequestContext) -> FsCopyResponse:
        await self._disk(
            ctx,
            params.source_path,
            operations.copy,
            params.source_path,
            params.destination_path,
            params.recursive,
        )
        return FsCopyResponse()

    @method("fs/watch")
    async def watch(self, params: FsWatchParams, ctx: RequestContext) -> FsWatchResponse:
        assert self.watches is not None
        conn = ctx.connection
        if (conn.id, params.watch_id) in self.watches.watches:
            raise invalid_field(
                "watchId", f"already in use on this connection: {params.watch_id!r}"
            )
        limit = self.settings.max_watches_per_connection
        # Count watches being set up too: pipelined calls cannot overshoot.
        if self.watches.count(conn) + self._reserved.get(conn.id, 0) >= limit:
            raise fs_error(
                TOO_MANY_WATCHES,
                params.path,
                f"this connection already has {limit} watches "
                "(kernel_plugins.fs.max_watches_per_connection)",
                limit=limit,
            )
        self._reserved[conn.id] = self._reserved.get(conn.id, 0) + 1
        try:
            target: str = await self._disk(ctx, params.path, _canonical, params.path)
            # Re-check: another request of this connection may have taken the id meanwhile.
            if (conn.id, params.watch_id) in self.watches.watches:
                raise invalid_field(
                    "watchId", f"already in use on this connection: {params.watch_id!r}"
                )
            try:
                self.watches.add(conn, params.watch_id, target)
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EMFILE):
                    raise fs_error(
                        IO_ERROR,
                        target,
                        "inotify limit reached; raise fs.inotify.max_user_watches or "
                        "max_user_instances",
                    ) from None
                raise from_os_error(exc, target) from None
        finally:
            left = self._reserved[conn.id] - 1
            if left:
                self._reserved[conn.id] = left
            else:
                del self._reserved[conn.id]
        return FsWatchResponse(target)  # type: ignore[arg-type]

    @method("fs/unwatch")
    def unwatch(self, params: FsUnwatchParams, ctx: RequestContext) -> FsUnwatchResponse:
        # Like the reference, an unknown id is not an error.
        assert self.watches is not None
        self.watches.remove(ctx.connection, params.watch_id)
        return FsUnwatchResponse()
