"""The ``fs`` plugin: hooks, settings and the ``fs/*`` handlers.

Handlers run the blocking work of :mod:`.operations` in worker threads
(``asyncio.to_thread``), so a slow disk or a 64 MiB file never stalls other
requests or connections.
"""

from __future__ import annotations

import asyncio
import errno
import os

import attrs

from kernel import Connection, Kernel, PluginConfig, Registrar, RequestContext, hookimpl

from . import operations
from .errors import IO_ERROR, TOO_MANY_WATCHES, bad_param, from_os_error, fs_error
from .types import (
    Empty,
    FsChangedNotification,
    FsCopyParams,
    FsCreateDirectoryParams,
    FsGetMetadataResponse,
    FsPathParams,
    FsReadDirectoryResponse,
    FsReadFileResponse,
    FsRemoveParams,
    FsUnwatchParams,
    FsWatchParams,
    FsWatchResponse,
    FsWriteFileParams,
)
from .watch import WatchService

__all__ = ["FsPlugin", "FsSettings"]

MIB = 1 << 20


@attrs.frozen
class FsSettings:
    """``[plugins.fs]`` in config.toml."""

    # The largest size whose base64 form fits the default 128 MiB message.
    max_file_bytes: int = 90 * MIB
    watch_coalesce_ms: int = 100
    durable_writes: bool = True
    max_watches_per_connection: int = 256


def _current_umask() -> int:
    # Reading the umask means setting it; done once, before any thread exists.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _canonical(path: str) -> str:
    return os.path.realpath(path)


class FsPlugin:
    """Serves the filesystem method family and ``fs/changed``."""

    def __init__(self) -> None:
        self.settings = FsSettings()
        self.umask = 0o022
        self.watches: WatchService | None = None

    @hookimpl
    def kernel_configure(self, kernel: Kernel, config: PluginConfig) -> None:
        settings = config.structure(FsSettings)
        if settings.max_file_bytes < 1:
            raise config.error("max_file_bytes", "must be at least 1")
        # A file travels base64-encoded (4/3) inside one message.
        encoded = (settings.max_file_bytes + 2) // 3 * 4 + 4096
        if encoded > kernel.settings.max_message_bytes:
            raise config.error(
                "max_file_bytes",
                f"a file of {settings.max_file_bytes} bytes needs a message of about "
                f"{encoded} bytes once base64-encoded, more than kernel.max_message_bytes "
                f"({kernel.settings.max_message_bytes}); raise that too",
            )
        if settings.watch_coalesce_ms < 0:
            raise config.error("watch_coalesce_ms", "must not be negative")
        if settings.max_watches_per_connection < 1:
            raise config.error("max_watches_per_connection", "must be at least 1")
        self.settings = settings
        self.umask = _current_umask()

    @hookimpl
    def kernel_register(self, registrar: Registrar) -> None:
        method = registrar.method
        method("fs/readFile", self.read_file, params=FsPathParams, result=FsReadFileResponse)
        method("fs/writeFile", self.write_file, params=FsWriteFileParams, result=Empty)
        method(
            "fs/createDirectory",
            self.create_directory,
            params=FsCreateDirectoryParams,
            result=Empty,
        )
        method(
            "fs/getMetadata", self.get_metadata, params=FsPathParams, result=FsGetMetadataResponse
        )
        method(
            "fs/readDirectory",
            self.read_directory,
            params=FsPathParams,
            result=FsReadDirectoryResponse,
        )
        method("fs/remove", self.remove, params=FsRemoveParams, result=Empty)
        method("fs/copy", self.copy, params=FsCopyParams, result=Empty)
        method("fs/watch", self.watch, params=FsWatchParams, result=FsWatchResponse)
        method("fs/unwatch", self.unwatch, params=FsUnwatchParams, result=Empty)
        registrar.notification("fs/changed", params=FsChangedNotification)

    @hookimpl
    def kernel_startup(self, kernel: Kernel) -> None:
        loop = asyncio.get_running_loop()
        self.watches = WatchService(loop, self.settings.watch_coalesce_ms / 1000)

    @hookimpl
    def kernel_connection_closed(self, connection: Connection) -> None:
        if self.watches is not None:
            self.watches.remove_connection(connection)

    @hookimpl
    async def kernel_shutdown(self, kernel: Kernel) -> None:
        if self.watches is not None:
            await self.watches.aclose()

    # -- handlers ---------------------------------------------------------------

    async def read_file(self, params: FsPathParams, ctx: RequestContext) -> FsReadFileResponse:
        data = await asyncio.to_thread(
            operations.read_file, params.path, self.settings.max_file_bytes
        )
        return FsReadFileResponse(data)

    async def write_file(self, params: FsWriteFileParams, ctx: RequestContext) -> Empty:
        settings = self.settings
        await asyncio.to_thread(
            operations.write_file,
            params.path,
            params.data_base64,
            settings.max_file_bytes,
            self.umask,
            settings.durable_writes,
        )
        return Empty()

    async def create_directory(self, params: FsCreateDirectoryParams, ctx: RequestContext) -> Empty:
        recursive = True if params.recursive is None else params.recursive
        await asyncio.to_thread(operations.create_directory, params.path, recursive)
        return Empty()

    async def get_metadata(
        self, params: FsPathParams, ctx: RequestContext
    ) -> FsGetMetadataResponse:
        return await asyncio.to_thread(operations.get_metadata, params.path)

    async def read_directory(
        self, params: FsPathParams, ctx: RequestContext
    ) -> FsReadDirectoryResponse:
        entries = await asyncio.to_thread(operations.read_directory, params.path)
        return FsReadDirectoryResponse(entries)

    async def remove(self, params: FsRemoveParams, ctx: RequestContext) -> Empty:
        recursive = True if params.recursive is None else params.recursive
        force = True if params.force is None else params.force
        await asyncio.to_thread(operations.remove, params.path, recursive, force)
        return Empty()

    async def copy(self, params: FsCopyParams, ctx: RequestContext) -> Empty:
        await asyncio.to_thread(
            operations.copy, params.source_path, params.destination_path, params.recursive
        )
        return Empty()

    async def watch(self, params: FsWatchParams, ctx: RequestContext) -> FsWatchResponse:
        assert self.watches is not None
        if (ctx.connection.id, params.watch_id) in self.watches.watches:
            raise bad_param("watchId", f"already in use on this connection: {params.watch_id!r}")
        limit = self.settings.max_watches_per_connection
        if self.watches.count(ctx.connection) >= limit:
            raise fs_error(
                TOO_MANY_WATCHES,
                params.path,
                f"this connection already has {limit} watches "
                "(plugins.fs.max_watches_per_connection)",
                limit=limit,
            )
        target: str = await asyncio.to_thread(_canonical, params.path)
        # Re-check: another request of this connection may have taken the id meanwhile.
        if (ctx.connection.id, params.watch_id) in self.watches.watches:
            raise bad_param("watchId", f"already in use on this connection: {params.watch_id!r}")
        try:
            self.watches.add(ctx.connection, params.watch_id, target)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EMFILE):
                raise fs_error(
                    IO_ERROR,
                    target,
                    "inotify limit reached; raise fs.inotify.max_user_watches or "
                    "max_user_instances",
                ) from None
            raise from_os_error(exc, target) from None
        return FsWatchResponse(target)  # type: ignore[arg-type]

    def unwatch(self, params: FsUnwatchParams, ctx: RequestContext) -> Empty:
        # Like the reference, an unknown id is not an error.
        assert self.watches is not None
        self.watches.remove(ctx.connection, params.watch_id)
        return Empty()
