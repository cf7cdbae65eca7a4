"""Parsing of the ``apply_patch`` envelope into hunks (no filesystem access).

The accepted text is the Codex patch language: ``*** Begin Patch``, then
``*** Add File:`` / ``*** Delete File:`` / ``*** Update File:`` sections, then
``*** End Patch``. The parser is deliberately more forgiving than the grammar
the model is given (padding around markers, a heredoc wrapper, CRLF line
ends), and its error texts are the ones the model sees, so they follow the
reference word for word.
"""

from __future__ import annotations

import attrs

__all__ = [
    "AddFile",
    "DeleteFile",
    "Hunk",
    "PatchError",
    "UpdateChunk",
    "UpdateFile",
    "parse_patch",
    "rust_trim",
    "rust_trim_end",
    "verification_error",
]

BEGIN = "*** Begin Patch"
END = "*** End Patch"
ADD = "*** Add File: "
DELETE = "*** Delete File: "
UPDATE = "*** Update File: "
MOVE = "*** Move to: "
END_OF_FILE = "*** End of File"
BARE_CONTEXT = "@@"
CONTEXT = "@@ "
HEREDOC_OPENERS = ("<<EOF", "<<'EOF'", '<<"EOF"')
VERIFICATION_PREFIX = "apply_patch verification failed: "

# Unicode White_Space, the set Rust's str::trim strips; Python's str.strip()
# would also strip U+001C..U+001F, which the reference keeps.
_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def rust_trim(text: str) -> str:
    """Strip Unicode whitespace from both ends, as the reference does."""
    return text.strip(_WHITESPACE)


def rust_trim_end(text: str) -> str:
    """Strip Unicode whitespace from the end, as the reference does."""
    return text.rstrip(_WHITESPACE)


class PatchError(ValueError):
    """A patch was refused; ``message`` is the exact text returned to the model.

    ``detail`` is the same text without the tool-level prefix, for logs and
    tests.
    """

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = message if detail is None else detail


def verification_error(detail: str) -> PatchError:
    """Build the error for a patch that failed parsing or verification."""
    return PatchError(VERIFICATION_PREFIX + detail, detail)


def _invalid_patch(text: str) -> PatchError:
    return verification_error(f"invalid patch: {text}")


def _invalid_hunk(line_number: int, text: str) -> PatchError:
    return verification_error(f"invalid hunk at line {line_number}, {text}")


@attrs.frozen
class AddFile:
    """Create (or overwrite) ``path`` with ``contents``."""

    path: str
    contents: str


@attrs.frozen
class DeleteFile:
    """Remove the file at ``path``."""

    path: str


@attrs.frozen
class UpdateChunk:
    """One edit inside an update: find ``old_lines`` and put ``new_lines`` there.

    ``change_context`` holds the ``@@ <text>`` anchors, searched in order to
    narrow where ``old_lines`` may start. ``is_end_of_file`` asks for the
    match to be at the end of the file.
    """

    change_context: tuple[str, ...]
    old_lines: tuple[str, ...]
    new_lines: tuple[str, ...]
    is_end_of_file: bool = False


@attrs.frozen
class UpdateFile:
    """Edit ``path`` chunk by chunk, optionally renaming it to ``move_to``."""

    path: str
    move_to: str | None
    chunks: tuple[UpdateChunk, ...]


Hunk = AddFile | DeleteFile | UpdateFile


def _split_lines(text: str) -> list[str]:
    """Split like Rust's ``str::lines``: on ``\\n``, dropping one ``\\r`` before it."""
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _check_boundaries(lines: list[str]) -> None:
    first = rust_trim(lines[0]) if lines else None
    last = rust_trim(lines[-1]) if lines else None
    if first is not None and first != BEGIN:
        raise _invalid_patch("The first line of the patch must be '*** Begin Patch'")
    if last != END:
        raise _invalid_patch("The last line of the patch must be '*** End Patch'")


def _body_lines(lines: list[str]) -> list[str]:
    """Return the lines between the begin and end markers.

    Some models send the patch as a shell heredoc (``<<'EOF'`` ... ``EOF``);
    when the plain check fails and that wrapper is present, it is dropped.
    """
    try:
        _check_boundaries(lines)
        return lines[1:-1]
    except PatchError as plain_error:
        wrapped = len(lines) >= 4 and lines[0] in HEREDOC_OPENERS and lines[-1].endswith("EOF")
        if not wrapped:
            raise plain_error from None
    inner = lines[1:-1]
    _check_boundaries(inner)
    return inner[1:-1]


def _parse_chunk(lines: list[str], line_number: int, first_chunk: bool) -> tuple[UpdateChunk, int]:
    """Parse one chunk at the start of ``lines``; return it and the lines used."""
    contexts: list[str] = []
    start = 0
    while start < len(lines):
        line = lines[start]
        if line == BARE_CONTEXT:
            start += 1
        elif line.startswith(CONTEXT):
            contexts.append(line[len(CONTEXT) :])
            start += 1
        else:
            break
    if start == 0 and not first_chunk:
        raise _invalid_hunk(
            line_number,
            f"Expected update hunk to start with a @@ context marker, got: '{lines[0]}'",
        )
    # The reference reports body errors one line past the chunk start even
    # when there is no @@ line; keep that numbering.
    body_line = line_number + max(start, 1)
    if start >= len(lines):
        raise _invalid_hunk(body_line, "Update hunk does not contain any lines")
    old: list[str] = []
    new: list[str] = []
    end_of_file = False
    used = 0
    for line in lines[start:]:
        if line == END_OF_FILE:
            if used == 0:
                raise _invalid_hunk(body_line, "Update hunk does not contain any lines")
            end_of_file = True
            used += 1
            break
        marker, text = line[:1], line[1:]
        if marker == "":
            # A blank line stands for an empty context line.
            old.append("")
            new.append("")
        elif marker == " ":
            old.append(text)
            new.append(text)
        elif marker == "+":
            new.append(text)
        elif marker == "-":
            old.append(text)
        elif used == 0:
            raise _invalid_hunk(
                body_line,
                f"Unexpected line found in update hunk: '{line}'. Every line should start"
                " with ' ' (context line), '+' (added line), or '-' (removed line)",
            )
        else:
            break
        used += 1
    chunk = UpdateChunk(tuple(contexts), tuple(old), tuple(new), end_of_file)
    return chunk, start + used


def _parse_update(lines: list[str], line_number: int, path: str) -> tuple[UpdateFile, int]:
    used = 1
    move_to: str | None = None
    if len(lines) > 1:
        header = rust_trim(lines[1])
        if header.startswith(MOVE):
            move_to = header[len(MOVE) :]
            used += 1
    chunks: list[UpdateChunk] = []
    while used < len(lines):
        line = lines[used]
        if not rust_trim(line):
            used += 1  # blank lines may separate chunks
            continue
        if line.startswith("***"):
            break
        chunk, chunk_lines = _parse_chunk(lines[used:], line_number + used, not chunks)
        chunks.append(chunk)
        used += chunk_lines
    if not chunks:
        raise _invalid_hunk(line_number, f"Update file hunk for path '{path}' is empty")
    return UpdateFile(path, move_to, tuple(chunks)), used


def _parse_hunk(lines: list[str], line_number: int) -> tuple[Hunk, int]:
    """Parse the hunk starting at ``lines[0]``; return it and the lines used."""
    header = rust_trim(lines[0])
    if header.startswith(ADD):
        body: list[str] = []
        for line in lines[1:]:
            if not line.startswith("+"):
                break
            body.append(line[1:] + "\n")
        return AddFile(header[len(ADD) :], "".join(body)), 1 + len(body)
    if header.startswith(DELETE):
        return DeleteFile(header[len(DELETE) :]), 1
    if header.startswith(UPDATE):
        return _parse_update(lines, line_number, header[len(UPDATE) :])
    raise _invalid_hunk(
        line_number,
        f"'{header}' is not a valid hunk header. Valid hunk headers: "
        "'*** Add File: {path}', '*** Delete File: {path}', '*** Update File: {path}'",
    )


def parse_patch(text: str) -> list[Hunk]:
    """Parse a whole patch into its hunks, in order.

    Raises :class:`PatchError` carrying the reference's wording; line numbers
    count the ``*** Begin Patch`` line as line 1.
    """
    remaining = _body_lines(_split_lines(rust_trim(text)))
    hunks: list[Hunk] = []
    line_number = 2
    while remaining:
        hunk, used = _parse_hunk(remaining, line_number)
        hunks.append(hunk)
        line_number += used
        remaining = remaining[used:]
    return hunks
