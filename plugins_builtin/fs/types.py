"""Wire types of the ``fs/*`` methods (shapes from the reference protocol).

Paths are :data:`kernel.AbsolutePath`: a relative path is refused with
``-32602`` naming the field before any handler runs.
"""

from __future__ import annotations

import attrs

from kernel import AbsolutePath

__all__ = [
    "Empty",
    "FsChangedNotification",
    "FsCopyParams",
    "FsCreateDirectoryParams",
    "FsGetMetadataResponse",
    "FsPathParams",
    "FsReadDirectoryEntry",
    "FsReadDirectoryResponse",
    "FsReadFileResponse",
    "FsRemoveParams",
    "FsUnwatchParams",
    "FsWatchParams",
    "FsWatchResponse",
    "FsWriteFileParams",
]


@attrs.frozen
class Empty:
    """The ``{}`` result of methods that only succeed or fail."""


@attrs.frozen
class FsPathParams:
    """``fs/readFile``, ``fs/getMetadata`` and ``fs/readDirectory`` take one path."""

    path: AbsolutePath


@attrs.frozen
class FsReadFileResponse:
    """The whole file, base64-encoded."""

    data_base64: str


@attrs.frozen
class FsWriteFileParams:
    """Replace (or create) ``path`` with the decoded bytes."""

    path: AbsolutePath
    data_base64: str


@attrs.frozen
class FsCreateDirectoryParams:
    """``recursive`` (default true) creates missing parents and accepts an existing directory."""

    path: AbsolutePath
    recursive: bool | None = None


@attrs.frozen
class FsGetMetadataResponse:
    """Type flags follow symlinks; ``is_symlink`` describes the path itself."""

    is_directory: bool
    is_file: bool
    is_symlink: bool
    created_at_ms: int
    modified_at_ms: int


@attrs.frozen
class FsReadDirectoryEntry:
    """One direct child, by bare name."""

    file_name: str
    is_directory: bool
    is_file: bool


@attrs.frozen
class FsReadDirectoryResponse:
    """Direct children, sorted by name."""

    entries: list[FsReadDirectoryEntry]


@attrs.frozen
class FsRemoveParams:
    """``recursive`` and ``force`` default to true."""

    path: AbsolutePath
    recursive: bool | None = None
    force: bool | None = None


@attrs.frozen
class FsCopyParams:
    """Copy a file, a symlink (as a link), or with ``recursive`` a directory tree."""

    source_path: AbsolutePath
    destination_path: AbsolutePath
    recursive: bool = False


@attrs.frozen
class FsWatchParams:
    """Start reporting changes of ``path`` as ``fs/changed`` with ``watch_id``."""

    watch_id: str
    path: AbsolutePath


@attrs.frozen
class FsWatchResponse:
    """The canonical path being watched (symlinks resolved)."""

    path: AbsolutePath


@attrs.frozen
class FsUnwatchParams:
    """Stop the watch ``watch_id`` of this connection."""

    watch_id: str


@attrs.frozen
class FsChangedNotification:
    """Paths that changed during one coalescing window of one watch."""

    watch_id: str
    changed_paths: list[AbsolutePath]
