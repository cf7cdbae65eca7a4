"""The filesystem operations, blocking; handlers run them in worker threads.

Every function takes absolute paths (checked at the wire) and raises
:class:`kernel.RpcError` with a code from :mod:`.errors`; an unexpected
exception is a server fault and ends as ``-32603``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator

from kernel import atomic_write, invalid_field

from .errors import (
    ALREADY_EXISTS,
    IS_A_DIRECTORY,
    NOT_A_DIRECTORY,
    NOT_FOUND,
    TOO_LARGE,
    UNSUPPORTED_TYPE,
    from_os_error,
    fs_error,
)
from .types import FsGetMetadataResponse, FsReadDirectoryEntry

__all__ = [
    "check_removable",
    "copy",
    "create_directory",
    "get_metadata",
    "read_directory",
    "read_file",
    "removal_target",
    "remove",
    "write_file",
]

log = logging.getLogger("plugins.fs")


@contextlib.contextmanager
def _os_errors(path: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise from_os_error(exc, path) from None


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


def read_file(path: str, limit: int) -> str:
    """The file's bytes, base64-encoded; regular files up to ``limit`` bytes only.

    Opened and read non-blocking: a FIFO or a device is refused after
    ``fstat``, and a "regular" file whose read would wait (``/proc/kmsg``
    once drained) is refused instead of holding a thread for good.
    """
    with _os_errors(path):
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                raise fs_error(IS_A_DIRECTORY, path)
            if not stat.S_ISREG(info.st_mode):
                raise fs_error(UNSUPPORTED_TYPE, path, "not a regular file")
            if info.st_size > limit:
                raise _too_large(path, info.st_size, limit)
            data = _read_all(fd, path, info.st_size, limit)
        finally:
            os.close(fd)
    # One encoded copy; the raw bytes are released when we return.
    return base64.b64encode(data).decode("ascii")


def _read_all(fd: int, path: str, expected: int, limit: int) -> memoryview:
    """Read to EOF into one buffer sized from ``fstat`` (grown if the file is longer)."""
    buffer = bytearray(min(expected, limit) + 1)  # +1 sees growth past the size
    view = memoryview(buffer)
    filled = 0
    while True:
        if filled == len(buffer):
            if filled > limit:  # it grew while we read
                raise _too_large(path, filled, limit)
            view.release()
            buffer.extend(bytes(min(max(filled, 1 << 16), limit + 1 - filled)))
            view = memoryview(buffer)
        try:
            count = os.readv(fd, [view[filled:]])
        except BlockingIOError:
            view.release()
            raise fs_error(
                UNSUPPORTED_TYPE, path, "reading it would block: not an ordinary file"
            ) from None
        if count == 0:
            return view[:filled]
        filled += count


def _too_large(path: str, size: int, limit: int) -> Exception:
    return fs_error(
        TOO_LARGE,
        path,
        f"{_mib(size)} exceeds the limit of {_mib(limit)} (kernel_plugins.fs.max_file_bytes)",
        size=size,
        limit=limit,
    )


def write_file(path: str, data_base64: str, limit: int, umask: int, durable: bool) -> None:
    """Replace ``path`` atomically: temp file in the same directory, then rename.

    A reader sees the old content or the new, never a mix; a crash leaves
    the old file (and, at worst, a hidden ``.name.*.tmp`` beside it). A
    symlink is followed: its target is replaced, the link stays. The mode
    of an existing file is kept; a new file gets ``0666 & ~umask``. Only
    regular files are replaced: a directory, FIFO, socket or device in the
    way is refused, never renamed over.
    """
    if len(data_base64) // 4 * 3 > limit + 2:
        raise _too_large(path, len(data_base64) // 4 * 3, limit)
    try:
        data = base64.b64decode(data_base64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid_field("dataBase64", f"not valid base64 ({exc})") from None
    if len(data) > limit:
        raise _too_large(path, len(data), limit)
    target = os.path.realpath(path) if os.path.islink(path) else path
    with _os_errors(path):
        try:
            info = os.stat(target)
        except (FileNotFoundError, NotADirectoryError):  # _parent names the culprit
            mode = 0o666 & ~umask
        else:
            if stat.S_ISDIR(info.st_mode):
                raise fs_error(IS_A_DIRECTORY, path)
            if not stat.S_ISREG(info.st_mode):
                raise fs_error(
                    UNSUPPORTED_TYPE,
                    path,
                    f"a {_kind(info.st_mode)} is never replaced; only regular files are written",
                )
            mode = stat.S_IMODE(info.st_mode)
        _parent(target)  # names a missing or non-directory parent
        atomic_write(target, data, mode, durable)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def _parent(path: str) -> tuple[str, str]:
    """``(directory, name)`` of ``path``, once the directory is known to exist."""
    directory, name = os.path.split(path)
    if not os.path.isdir(directory):
        code = NOT_A_DIRECTORY if os.path.lexists(directory) else NOT_FOUND
        raise fs_error(code, directory, f"parent of {path}")
    return directory, name


def create_directory(path: str, recursive: bool) -> None:
    """``mkdir -p`` when recursive (an existing directory is fine), else ``mkdir``.

    Missing parents are created in a loop, not by recursion, so any depth
    the OS accepts works; a path the OS refuses is an OS error. If creating
    fails half way, the directories this call created are removed again.
    """
    with _os_errors(path):
        if not recursive:
            os.mkdir(path)
            return
        missing: list[str] = []
        current = path
        while not os.path.isdir(current):
            missing.append(current)
            parent = os.path.dirname(current)
            if parent == current:
                break
            current = parent
        created: list[str] = []
        try:
            for directory in reversed(missing):
                try:
                    os.mkdir(directory)
                    created.append(directory)
                except FileExistsError:
                    if not os.path.isdir(directory):
                        raise
        except OSError:
            for directory in reversed(created):
                with contextlib.suppress(OSError):
                    os.rmdir(directory)
            raise


def get_metadata(path: str) -> FsGetMetadataResponse:
    """Type flags through symlinks; a dangling symlink is a symlink to nothing.

    ``created_at_ms`` is the birth time where the platform reports one
    (macOS, BSD), else 0, as in the reference.
    """
    with _os_errors(path):
        own = os.lstat(path)
    is_link = stat.S_ISLNK(own.st_mode)
    target: os.stat_result | None = own
    if is_link:
        try:
            target = os.stat(path)
        except OSError:
            target = None  # dangling, or a loop
    info = target or own
    birth = getattr(info, "st_birthtime", 0.0) or 0.0
    return FsGetMetadataResponse(
        is_directory=target is not None and stat.S_ISDIR(target.st_mode),
        is_file=target is not None and stat.S_ISREG(target.st_mode),
        is_symlink=is_link,
        created_at_ms=int(birth * 1000),
        modified_at_ms=info.st_mtime_ns // 1_000_000,
    )


def read_directory(path: str) -> list[FsReadDirectoryEntry]:
    """Direct children by bare name, sorted; flags follow symlinks."""
    entries = []
    with _os_errors(path), os.scandir(path) as children:
        for child in children:
            try:
                is_dir, is_file = child.is_dir(), child.is_file()
            except OSError:  # a child we may not stat: still listed
                is_dir = is_file = False
            entries.append(FsReadDirectoryEntry(child.name, is_dir, is_file))
    entries.sort(key=lambda e: e.file_name)
    return entries


def removal_target(path: str) -> str:
    """The path ``fs/remove`` acts on: every component resolved but the last.

    Trailing slashes are dropped first, so ``link/`` names the link itself;
    a final ``.`` or ``..`` is resolved too (``/tmp/..`` is ``/``). Every
    guard is applied to this path, and the removal uses it, so no spelling
    can slip past a guard.
    """
    stripped = path.rstrip("/") or "/"
    head, tail = os.path.split(stripped)
    if tail in ("", ".", ".."):
        return os.path.realpath(stripped)
    return os.path.join(os.path.realpath(head), tail)


def check_removable(target: str, protected: Iterable[str]) -> None:
    """Refuse the filesystem root, and any ``protected`` path or its ancestors."""
    if os.path.dirname(target) == target:
        raise invalid_field("path", "refusing to remove the filesystem root")
    inside = target.rstrip(os.sep) + os.sep
    for keep in protected:
        if keep == target or keep.startswith(inside):
            what = "is" if keep == target else "contains"
            raise invalid_field(
                "path",
                f"refusing to remove {target}: it {what} the home directory {keep} "
                "(set kernel_plugins.fs.allow_remove_home = true to allow it)",
            )


def remove(path: str, recursive: bool, force: bool, protected: Iterable[str] = ()) -> None:
    """Remove a file, a symlink (never its target) or a directory.

    ``force`` makes a missing path a success; ``recursive`` allows a
    non-empty directory. The filesystem root is never removed, nor a
    ``protected`` directory or anything containing one (see
    :func:`removal_target` for how the path is resolved first).
    """
    target = removal_target(path)
    check_removable(target, protected)
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        if force:
            return
        raise from_os_error(FileNotFoundError(2, "No such file or directory", path), path) from None
    except OSError as exc:
        raise from_os_error(exc, path) from None
    with _os_errors(path):
        if stat.S_ISDIR(info.st_mode):
            if recursive:
                shutil.rmtree(target)
            else:
                os.rmdir(target)
        else:
            os.unlink(target)


def copy(source: str, destination: str, recursive: bool) -> None:
    """Copy a file (atomically), a symlink (as a link) or a directory tree.

    Trees carry regular files, directories and symlinks (as links); other
    entry types (FIFOs, sockets, devices) are skipped. A directory needs
    ``recursive``, must not be copied into itself, and its destination must
    not exist.
    """
    with _os_errors(source):
        info = os.lstat(source)
    mode = info.st_mode
    if stat.S_ISLNK(mode):
        _copy_link(source, destination)
    elif stat.S_ISDIR(mode):
        if not recursive:
            raise invalid_field("recursive", "must be true to copy a directory")
        real_source, real_destination = os.path.realpath(source), os.path.realpath(destination)
        if real_destination == real_source or real_destination.startswith(
            real_source.rstrip(os.sep) + os.sep
        ):
            raise invalid_field(
                "destinationPath", "is inside sourcePath; a tree cannot hold itself"
            )
        if os.path.lexists(destination):
            raise fs_error(ALREADY_EXISTS, destination)
        with _os_errors(destination):
            _copy_tree(source, destination)
    elif stat.S_ISREG(mode):
        _copy_file(source, destination)
    else:
        raise fs_error(UNSUPPORTED_TYPE, source, "only files, directories and symlinks are copied")


def _copy_file(source: str, destination: str) -> None:
    with _os_errors(destination):
        if os.path.isdir(destination):
            raise fs_error(IS_A_DIRECTORY, destination)
        if os.path.exists(destination) and os.path.samefile(source, destination):
            return
        directory, name = _parent(destination)
        fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
        os.close(fd)
        try:
            shutil.copyfile(source, temp)
            shutil.copymode(source, temp)
            os.replace(temp, destination)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise


def _copy_link(source: str, destination: str) -> None:
    with _os_errors(destination):
        if os.path.isdir(destination) and not os.path.islink(destination):
            raise fs_error(IS_A_DIRECTORY, destination)
        link = os.readlink(source)
        directory, name = _parent(destination)
        temp = tempfile.mktemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
        os.symlink(link, temp)  # fails (EEXIST) rather than follow a racing file
        try:
            os.replace(temp, destination)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise


def _copy_tree(source: str, destination: str) -> None:
    # A work list, not recursion: any depth the OS allows is copied.
    pending = [(source, destination)]
    while pending:
        source, destination = pending.pop()
        os.mkdir(destination)
        shutil.copymode(source, destination)
        with os.scandir(source) as children:
            for child in children:
                target = os.path.join(destination, child.name)
                if child.is_symlink():
                    os.symlink(os.readlink(child.path), target)
                elif child.is_dir(follow_symlinks=False):
                    pending.append((child.path, target))
                elif child.is_file(follow_symlinks=False):
                    shutil.copyfile(child.path, target)
                    shutil.copymode(child.path, target)
                else:
                    log.debug("fs/copy: skipped %s (not a file, directory or symlink)", child.path)
