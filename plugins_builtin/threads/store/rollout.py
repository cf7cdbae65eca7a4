"""Rollout files: append-only JSONL, one per thread; blocking I/O for the writer thread.

Layout under the home: ``sessions/YYYY/MM/DD/rollout-YYYY-MM-DDThh-mm-ss-<id>.jsonl``
(the UTC date and time of creation), moved to ``archived_sessions/`` under
the same name when archived. Directories are created 0700, files 0600.

Format: one JSON object per line (orjson, so a record never contains a raw
newline). The first line is the store's ``{"type": "session_meta", "meta":
{...}}``; ``update()`` appends ``{"type": "meta_update", "changes": {...}}``
(``changes`` always carries the resulting ``updated_at``); every other line
is a caller record, written as given.

Crash safety: a line counts only once its newline is on disk. Each append is
one ``os.write`` of complete lines on an ``O_APPEND`` descriptor, so a
process killed at any moment leaves at most one torn (newline-less) last
line. Readers ignore it; :class:`AppendHandle` truncates it before writing,
so the next record never glues onto garbage. A failed write (disk full) is
rolled back to the previous end of file.

``updated_at`` is derivable from the file alone: if caller records follow the
last meta record, it is ``max(meta updated_at, file mtime)`` (the rule
appends use), else the ``updated_at`` in that last meta record.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "ARCHIVED_DIR",
    "META_TYPE",
    "RESERVED_TYPES",
    "SESSIONS_DIR",
    "UPDATE_TYPE",
    "AppendHandle",
    "create_rollout",
    "dated_dir",
    "encode_records",
    "ensure_dir",
    "fsync_dir",
    "meta_line",
    "name_date_dir",
    "read_records",
    "rollout_name",
    "scan_rollout",
    "update_line",
]

log = logging.getLogger("plugins.threads.store")

SESSIONS_DIR = "sessions"
ARCHIVED_DIR = "archived_sessions"
META_TYPE = "session_meta"
UPDATE_TYPE = "meta_update"
RESERVED_TYPES = frozenset((META_TYPE, UPDATE_TYPE))

_DIR_MODE = 0o700
_FILE_MODE = 0o600
_UPDATE_PREFIX = b'\n{"type":"' + UPDATE_TYPE.encode() + b'"'
_NAME = re.compile(
    r"rollout-(\d{4})-(\d{2})-(\d{2})T\d{2}-\d{2}-\d{2}-"
    r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.jsonl"
)


# -- names and directories ---------------------------------------------------------------


def rollout_name(thread_id: str, created_at: int) -> str:
    """``rollout-YYYY-MM-DDThh-mm-ss-<id>.jsonl`` (UTC)."""
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.gmtime(created_at))
    return f"rollout-{stamp}-{thread_id}.jsonl"


def dated_dir(created_at: int) -> str:
    """``sessions/YYYY/MM/DD`` of a creation time (UTC), relative to the home."""
    return f"{SESSIONS_DIR}/{time.strftime('%Y/%m/%d', time.gmtime(created_at))}"


def name_date_dir(name: str) -> str | None:
    """``sessions/YYYY/MM/DD`` taken from a rollout file name, ``None`` if not one."""
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    return f"{SESSIONS_DIR}/{match[1]}/{match[2]}/{match[3]}"


def ensure_dir(home: Path, rel: str) -> list[Path]:
    """Create ``home/rel`` and missing parents (under the home) with mode 0700.

    Returns the directories it created, parents first.
    """
    created = []
    path = home
    for part in rel.split("/"):
        path = path / part
        try:
            os.mkdir(path, _DIR_MODE)
        except FileExistsError:
            continue
        created.append(path)
    return created


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a created or renamed file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- writing -----------------------------------------------------------------------------


def meta_line(record: dict[str, Any]) -> bytes:
    """The first line of a rollout."""
    return orjson.dumps({"type": META_TYPE, "meta": record}, option=orjson.OPT_APPEND_NEWLINE)


def update_line(changes: dict[str, Any]) -> bytes:
    """A ``meta_update`` line (``type`` first: :func:`scan_rollout` finds it by prefix)."""
    return orjson.dumps({"type": UPDATE_TYPE, "changes": changes}, option=orjson.OPT_APPEND_NEWLINE)


def encode_records(records: Any) -> bytes:
    """Caller records as complete lines; ``ValueError`` for a reserved ``type``."""
    parts = []
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    for record in records:
        if type(record) is not dict:
            record = dict(record)
        if record.get("type") in RESERVED_TYPES:
            raise ValueError(f"record type {record.get('type')!r} is reserved by the thread store")
        parts.append(dumps(record, option=newline))
    return b"".join(parts)


def create_rollout(path: Path, first_line: bytes) -> None:
    """Create the rollout (it must not exist) holding its ``session_meta`` line."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
    fd = os.open(path, flags, _FILE_MODE)
    try:
        _write_all(fd, first_line)
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class AppendHandle:
    """An ``O_APPEND`` descriptor on one rollout, its end offset, and its ``updated_at``.

    Opening repairs a torn tail (truncates after the last newline). Only the
    store's writer thread uses a handle.
    """

    __slots__ = ("fd", "size", "updated_at")

    def __init__(self, path: Path, updated_at: int) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
        self.updated_at = updated_at
        try:
            self.size = _repair_tail(self.fd, path)
        except BaseException:
            os.close(self.fd)
            raise

    def write(self, data: bytes) -> None:
        """Append complete lines with one ``os.write``; roll back a failed write."""
        try:
            written = os.write(self.fd, data)
            if written < len(data):  # only on errors (disk full): finish or fail
                _write_all(self.fd, data[written:])
        except BaseException:
            os.ftruncate(self.fd, self.size)
            raise
        self.size += len(data)

    def mtime(self) -> int:
        """Whole seconds of the file's modification time."""
        return int(os.fstat(self.fd).st_mtime)

    def sync(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)


def _repair_tail(fd: int, path: Path) -> int:
    """Truncate a torn last line; returns the (new) size."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    end = size
    block = 1 << 16
    while end > 0:
        start = max(0, end - block)
        chunk = os.pread(fd, end - start, start)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            keep = start + cut + 1
            break
        end = start
    else:
        keep = 0
    log.warning("%s: truncating a torn last line (%d bytes) left by a crash", path, size - keep)
    os.ftruncate(fd, keep)
    return keep


# -- reading -----------------------------------------------------------------------------


def _complete_part(path: Path) -> tuple[bytes, float]:
    """The file up to and including its last newline, and its mtime."""
    with open(path, "rb", buffering=0) as file:
        info = os.fstat(file.fileno())
        data = file.read() if info.st_size else b""
    end = data.rfind(b"\n") + 1
    return (data if end == len(data) else data[:end]), info.st_mtime


def _parse_lines(body: bytes, path: Path) -> list[Any]:
    """Every complete line parsed; one parse call in the common case."""
    if not body:
        return []
    try:
        parsed: list[Any] = orjson.loads(b"[" + body[:-1].replace(b"\n", b",") + b"]")
        return parsed
    except orjson.JSONDecodeError:
        pass
    out = []
    for number, line in enumerate(body.split(b"\n")[:-1], 1):
        try:
            out.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            log.warning("%s: line %d is not JSON; skipped", path, number)
    return out


def read_records(path: Path) -> list[dict[str, Any]]:
    """The caller records of a rollout in order (torn last line and meta records excluded)."""
    body, _ = _complete_part(path)
    parsed = _parse_lines(body, path)
    return [r for r in parsed if type(r) is dict and r.get("type") not in RESERVED_TYPES]


def scan_rollout(path: Path) -> dict[str, Any] | None:
    """The metadata record of a rollout, parsing only its meta lines; ``None`` if none.

    ``updated_at`` follows the module rule. Used to index files the index does
    not know (rebuild, reconcile).
    """
    try:
        body, mtime = _complete_part(path)
    except OSError as exc:
        log.warning("%s: unreadable rollout skipped (%s)", path, exc)
        return None
    first_end = body.find(b"\n")
    try:
        first = orjson.loads(body[:first_end]) if first_end > 0 else None
    except orjson.JSONDecodeError:
        first = None
    if not isinstance(first, dict) or first.get("type") != META_TYPE:
        log.warning("%s: no session_meta first line; not a thread rollout, skipped", path)
        return None
    record = first.get("meta")
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        log.warning("%s: session_meta without a thread id; skipped", path)
        return None
    record = dict(record)
    last_meta_end = first_end + 1
    pos = body.find(_UPDATE_PREFIX, first_end)
    while pos >= 0:
        end = body.find(b"\n", pos + 1)
        try:
            update = orjson.loads(body[pos + 1 : end])
            changes = update.get("changes")
            if isinstance(changes, dict):
                record.update(changes)
                last_meta_end = end + 1
        except (orjson.JSONDecodeError, AttributeError):
            log.warning("%s: unreadable meta_update at byte %d; skipped", path, pos + 1)
        pos = body.find(_UPDATE_PREFIX, end)
    updated_at = record.get("updated_at")
    if not isinstance(updated_at, int):
        updated_at = record.get("created_at", 0)
    if last_meta_end < len(body):  # caller records follow: appends bumped it
        updated_at = max(updated_at, int(mtime))
    record["updated_at"] = updated_at
    return record
