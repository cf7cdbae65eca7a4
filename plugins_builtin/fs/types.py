"""Wire types of the ``fs/*`` methods (shapes from the reference protocol).

Paths are :data:`kernel.AbsolutePath`: a relative path is refused with
``-32602`` naming the field before any handler runs.
"""

from __future__ import annotations

import attrs

from kernel import AbsolutePath

__all__ = [
    "FsChangedNotification",
    "FsCopyParams",
    "FsCopyResponse",
    "FsCreateDirectoryParams",
    "FsCreateDirectoryResponse",
    "FsGetMetadataParams",
    "FsGetMetadataResponse",
    "FsReadDirectoryEntry",
    "FsReadDirectoryParams",
    "FsReadDirectoryResponse",
    "FsReadFileParams",
    "FsReadFileResponse",
    "FsRemoveParams",
    "FsRemoveResponse",
    "FsUnwatchParams",
    "FsUnwatchResponse",
    "FsWatchParams",
    "FsWatchResponse",
    "FsWriteFileParams",
    "FsWriteFileResponse",
]


# Every method has its own params and response type, named after it as in
# the reference, so the generated schema names match the reference's.


@attrs.frozen
class FsReadFileParams:
    """The file to read."""

    path: AbsolutePath


@attrs.frozen
class FsGetMetadataParams:
    """The path to describe."""

    path: AbsolutePath


@attrs.frozen
class FsReadDirectoryParams:
    """The directory to list."""

    path: AbsolutePath


@attrs.frozen
class FsWriteFileResponse:
    """``{}``: the file was written."""


@attrs.frozen
class FsCreateDirectoryResponse:
    """``{}``: the directory exists."""


@attrs.frozen
class FsRemoveResponse:
    """``{}``: the path is gone."""


@attrs.frozen
class FsCopyResponse:
    """``{}``: the copy is complete."""


@attrs.frozen
class FsUnwatchResponse:
    """``{}``: the watch is stopped (or never existed)."""


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
