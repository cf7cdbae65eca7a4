"""The ``apply_patch`` library: parse, verify and plan a patch, then write it.

:func:`plan_patch` does every check and computes every new file content
without touching the disk, so a refused patch leaves nothing behind and the
caller can show the changes (``fileChange`` item, approval) before
:func:`apply_plan` writes them. Hunks are planned in order against a virtual
view of the files, so a later hunk sees what an earlier one did.
"""

from __future__ import annotations

import errno
import math
import os
from collections.abc import Callable, Sequence
from typing import Any, Literal

import attrs

from .files import LOCAL_FILES, Files
from .patch_parse import (
    AddFile,
    DeleteFile,
    Hunk,
    PatchError,
    UpdateChunk,
    UpdateFile,
    parse_patch,
    rust_trim,
    rust_trim_end,
    verification_error,
)
from .textdiff import unified_hunks

__all__ = [
    "AddFile",
    "DeleteFile",
    "FileOp",
    "Hunk",
    "PatchApplyError",
    "PatchError",
    "PatchPlan",
    "UpdateChunk",
    "UpdateFile",
    "apply_plan",
    "failure_output",
    "format_wall_time",
    "parse_patch",
    "plan_patch",
    "seek_sequence",
    "success_output",
]

OpKind = Literal["add", "delete", "update"]

# Typographic characters models tend to write as ASCII (or the other way round).
_PUNCTUATION = str.maketrans(
    {
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),
        **dict.fromkeys("\u2018\u2019\u201a\u201b", "'"),
        **dict.fromkeys("\u201c\u201d\u201e\u201f", '"'),
        **dict.fromkeys(
            "\u00a0\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000",
            " ",
        ),
    }
)


class PatchApplyError(PatchError):
    """Writing a verified plan failed; files before ``path`` may be written."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


def _normalise(line: str) -> str:
    return rust_trim(line).translate(_PUNCTUATION)


_Same = Callable[[str, str], bool]


def _scan(lines: Sequence[str], pattern: Sequence[str], first: int, same: _Same) -> int | None:
    for i in range(first, len(lines) - len(pattern) + 1):
        if all(same(lines[i + k], p) for k, p in enumerate(pattern)):
            return i
    return None


_PASSES: tuple[_Same, ...] = (
    lambda a, b: a == b,
    lambda a, b: rust_trim_end(a) == rust_trim_end(b),
    lambda a, b: rust_trim(a) == rust_trim(b),
    lambda a, b: _normalise(a) == _normalise(b),
)


def seek_sequence(
    lines: Sequence[str], pattern: Sequence[str], start: int, eof: bool = False
) -> int | None:
    """Index where ``pattern`` occurs in ``lines`` at or after ``start``, or None.

    Each pass is laxer than the one before (exact, trailing whitespace,
    surrounding whitespace, typographic punctuation), and a stricter match
    anywhere in the searched range wins over a laxer one. With ``eof`` the
    pattern is first tried (all passes) flush with the end of the file, where
    an end-of-file chunk belongs, and only then from ``start``.
    """
    if not pattern:
        return start
    if len(pattern) > len(lines):
        return None
    starts = [len(lines) - len(pattern), start] if eof else [start]
    for first in starts:
        for same in _PASSES:
            found = _scan(lines, pattern, first, same)
            if found is not None:
                return found
    return None


@attrs.frozen
class FileOp:
    """One planned file operation, with absolute normalised paths.

    ``shown_path``/``shown_move_to`` are the paths as the patch wrote them,
    used in the summary the model reads.
    """

    kind: OpKind
    path: str
    move_to: str | None
    old_content: str | None
    new_content: str | None
    shown_path: str
    shown_move_to: str | None = None

    def change(self) -> dict[str, Any]:
        """This operation as a protocol ``FileUpdateChange``."""
        if self.kind == "add":
            return {"path": self.path, "kind": {"type": "add"}, "diff": self.new_content}
        if self.kind == "delete":
            return {"path": self.path, "kind": {"type": "delete"}, "diff": self.old_content}
        diff = unified_hunks(self.old_content or "", self.new_content or "", 1)
        if self.move_to is not None:
            diff += f"\n\nMoved to: {self.move_to}"
        return {
            "path": self.path,
            "kind": {"type": "update", "move_path": self.move_to},
            "diff": diff,
        }


@attrs.frozen
class PatchPlan:
    """A verified patch: what will be written, in hunk order."""

    cwd: str
    ops: tuple[FileOp, ...]

    def changes(self) -> list[dict[str, Any]]:
        """``FileUpdateChange`` objects for the ``fileChange`` item, sorted by path."""
        return [op.change() for op in sorted(self.ops, key=lambda op: op.path)]

    def paths(self) -> list[str]:
        """Every absolute path the plan writes or removes, move targets included."""
        seen: dict[str, None] = {}
        for op in self.ops:
            seen[op.path] = None
            if op.move_to is not None:
                seen[op.move_to] = None
        return list(seen)


def _resolve(cwd: str, path: str) -> str:
    return os.path.normpath(os.path.join(cwd, path))


def _os_error_text(exc: OSError) -> str:
    """Describe an OS error the way Rust's ``io::Error`` prints it."""
    if exc.errno is None:
        return str(exc.strerror or exc)
    return f"{os.strerror(exc.errno)} (os error {exc.errno})"


class _View:
    """The files as the patch sees them: the disk, overlaid with earlier hunks."""

    def __init__(self, files: Files) -> None:
        self._files = files
        self._overlay: dict[str, str | None] = {}

    def read(self, path: str, what: str) -> str:
        if path in self._overlay:
            content = self._overlay[path]
            if content is None:
                err = FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
                raise verification_error(f"{what} {path}: {_os_error_text(err)}")
            return content
        try:
            return self._files.read_text(path)
        except OSError as exc:
            raise verification_error(f"{what} {path}: {_os_error_text(exc)}") from None
        except UnicodeDecodeError:
            raise verification_error(f"{what} {path}: stream did not contain valid UTF-8") from None

    def current(self, path: str) -> str | None:
        """Content if readable as text now, else None (missing or unreadable)."""
        try:
            return self.read(path, "")
        except PatchError:
            return None

    def set(self, path: str, content: str | None) -> None:
        self._overlay[path] = content


def _file_lines(content: str) -> list[str]:
    lines = content.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline does not start another line
    return lines


def _apply_chunks(content: str, chunks: Sequence[UpdateChunk], path: str) -> str:
    """Return ``content`` with every chunk applied, or raise a verification error."""
    lines = _file_lines(content)
    edits: list[tuple[int, int, list[str]]] = []
    pos = 0
    for chunk in chunks:
        for anchor in chunk.change_context:
            found = seek_sequence(lines, [anchor], pos)
            if found is None:
                raise verification_error(f"Failed to find context '{anchor}' in {path}")
            pos = found + 1
        if not chunk.old_lines:
            # Pure insertions go to the end of the file, whatever the anchors.
            at = len(lines) - 1 if lines and lines[-1] == "" else len(lines)
            edits.append((at, 0, list(chunk.new_lines)))
            continue
        old = list(chunk.old_lines)
        new = list(chunk.new_lines)
        found = seek_sequence(lines, old, pos, chunk.is_end_of_file)
        if found is None and old[-1] == "":
            # A trailing empty line usually stands for the file's final newline.
            old.pop()
            if new and new[-1] == "":
                new.pop()
            found = seek_sequence(lines, old, pos, chunk.is_end_of_file)
        if found is None:
            expected = "\n".join(chunk.old_lines)
            raise verification_error(f"Failed to find expected lines in {path}:\n{expected}")
        edits.append((found, len(old), new))
        pos = found + len(old)
    edits.sort(key=lambda edit: edit[0])
    for at, count, replacement in reversed(edits):
        lines[at : at + count] = replacement
    if not lines or lines[-1] != "":
        lines.append("")
    return "\n".join(lines)


def _plan_hunk(hunk: Hunk, cwd: str, view: _View) -> FileOp:
    path = _resolve(cwd, hunk.path)
    if isinstance(hunk, AddFile):
        old = view.current(path)
        view.set(path, hunk.contents)
        return FileOp("add", path, None, old, hunk.contents, hunk.path)
    if isinstance(hunk, DeleteFile):
        old = view.read(path, "Failed to read")
        view.set(path, None)
        return FileOp("delete", path, None, old, None, hunk.path)
    old = view.read(path, "Failed to read file to update")
    new = _apply_chunks(old, hunk.chunks, path)
    move_to = _resolve(cwd, hunk.move_to) if hunk.move_to is not None else None
    if move_to == path:
        move_to = None  # renaming onto itself must not end by deleting the file
    if move_to is not None:
        view.set(path, None)
        view.set(move_to, new)
    else:
        view.set(path, new)
    shown_move = hunk.move_to if move_to is not None else None
    return FileOp("update", path, move_to, old, new, hunk.path, shown_move)


def plan_patch(text: str, cwd: str, files: Files = LOCAL_FILES) -> PatchPlan:
    """Parse and verify ``text`` against the files under ``cwd``; write nothing.

    Relative paths are resolved against ``cwd``; absolute paths are kept.
    ``files`` is where they live (this machine by default, or a remote
    environment). Raises :class:`PatchError` whose ``message`` is the
    model-facing text.
    """
    view = _View(files)
    cwd = os.path.normpath(os.path.abspath(cwd))
    ops = tuple(_plan_hunk(hunk, cwd, view) for hunk in parse_patch(text))
    if not ops:
        raise verification_error("No files were modified.")
    return PatchPlan(cwd, ops)


def _make_parents(path: str, files: Files) -> None:
    try:
        files.make_parents(path)
    except OSError as exc:
        raise PatchApplyError(
            f"Failed to create parent directories for {path}: {_os_error_text(exc)}", path
        ) from exc


def _check_unchanged(op: FileOp, files: Files) -> None:
    """Refuse to overwrite a file edited since the plan was made (e.g. during approval)."""
    try:
        now: str | None = files.read_text(op.path)
    except (OSError, UnicodeDecodeError):
        now = None
    if now != op.old_content:
        raise PatchApplyError(f"{op.path} changed on disk since the patch was verified", op.path)


def _apply_op(op: FileOp, files: Files) -> None:
    if op.kind == "delete":
        try:
            files.remove(op.path)
        except OSError as exc:
            raise PatchApplyError(
                f"Failed to delete file {op.path}: {_os_error_text(exc)}", op.path
            ) from exc
        return
    target = op.move_to or op.path
    assert op.new_content is not None
    _make_parents(target, files)
    try:
        files.write_text(target, op.new_content, op.path if op.kind == "update" else None)
    except (OSError, UnicodeEncodeError) as exc:
        reason = _os_error_text(exc) if isinstance(exc, OSError) else "invalid UTF-8 text"
        raise PatchApplyError(f"Failed to write file {target}: {reason}", target) from exc
    if op.move_to is not None:
        try:
            files.remove(op.path)
        except OSError as exc:
            raise PatchApplyError(
                f"Failed to remove original {op.path}: {_os_error_text(exc)}", op.path
            ) from exc


def apply_plan(plan: PatchPlan, files: Files = LOCAL_FILES) -> None:
    """Write a plan to ``files``, operation by operation (blocking; run it in a thread).

    Each file is replaced atomically. If an operation fails, the earlier ones
    stay applied and :class:`PatchApplyError` names the failing path.
    """
    for op in plan.ops:
        # Operations run in plan order, so each one finds the disk as planned
        # unless someone else wrote the file meanwhile.
        if op.kind != "add":
            _check_unchanged(op, files)
        _apply_op(op, files)


def format_wall_time(seconds: float) -> str:
    """Seconds rounded to one decimal, shortest form: ``0``, ``0.1``, ``1.5``."""
    tenths = math.floor(max(seconds, 0.0) * 10 + 0.5)
    whole, tenth = divmod(tenths, 10)
    return f"{whole}.{tenth}" if tenth else str(whole)


def success_output(plan: PatchPlan, wall_time_s: float = 0.0) -> str:
    """The model-facing text for a patch that was applied."""
    added = [op.shown_path for op in plan.ops if op.kind == "add"]
    modified = [op.shown_move_to or op.shown_path for op in plan.ops if op.kind == "update"]
    deleted = [op.shown_path for op in plan.ops if op.kind == "delete"]
    lines = [
        "Exit code: 0",
        f"Wall time: {format_wall_time(wall_time_s)} seconds",
        "Output:",
        "Success. Updated the following files:",
        *(f"A {path}" for path in added),
        *(f"M {path}" for path in modified),
        *(f"D {path}" for path in deleted),
    ]
    return "".join(line + "\n" for line in lines)


def failure_output(error: PatchError, wall_time_s: float = 0.0) -> str:
    """The model-facing text for a verified patch whose writing failed."""
    return (
        f"Exit code: 1\nWall time: {format_wall_time(wall_time_s)} seconds\n"
        f"Output:\n{error.message}\n"
    )
