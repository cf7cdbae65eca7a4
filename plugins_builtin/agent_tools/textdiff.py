"""Unified-diff text for the patch tool's file changes and the turn diff.

Both consumers need GNU-style hunks (``@@ -a,b +c,d @@``) over lines split on
``\\n`` only, with the ``\\ No newline at end of file`` marker that ``patch``
and ``git apply`` understand. :mod:`difflib` finds the matching blocks; the
formatting is done here because ``difflib.unified_diff`` omits that marker.
"""

from __future__ import annotations

import difflib

__all__ = ["NO_NEWLINE_MARKER", "split_keep_newlines", "unified_hunks"]

NO_NEWLINE_MARKER = "\\ No newline at end of file"


def split_keep_newlines(text: str) -> list[str]:
    """Split ``text`` after each ``\\n``; the last piece may lack one.

    ``str.splitlines`` would also break on ``\\r``, form feeds and Unicode
    separators, which diff tools treat as ordinary characters.
    """
    if not text:
        return []
    pieces = text.split("\n")
    lines = [piece + "\n" for piece in pieces[:-1]]
    if pieces[-1]:
        lines.append(pieces[-1])
    return lines


def _range(start: int, count: int) -> str:
    """Format one side of a hunk header the way GNU diff does."""
    if count == 1:
        return str(start + 1)
    # An empty side names the line before the (empty) range.
    return f"{start if count == 0 else start + 1},{count}"


def _emit(out: list[str], tag: str, line: str) -> None:
    out.append(tag + line)
    if not line.endswith("\n"):
        out.append("\n" + NO_NEWLINE_MARKER + "\n")


def unified_hunks(old: str, new: str, context: int) -> str:
    """Return the hunks turning ``old`` into ``new``, without file headers.

    The empty string means the texts are equal. ``context`` is the number of
    unchanged lines kept around each change; hunks closer than twice that
    are merged, as GNU diff does.
    """
    if old == new:
        return ""
    a = split_keep_newlines(old)
    b = split_keep_newlines(new)
    # autojunk would treat frequent lines (blank lines, braces) as noise.
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    out: list[str] = []
    for group in matcher.get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        a_start, a_end = first[1], last[2]
        b_start, b_end = first[3], last[4]
        out.append(
            f"@@ -{_range(a_start, a_end - a_start)} +{_range(b_start, b_end - b_start)} @@\n"
        )
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                for line in a[i1:i2]:
                    _emit(out, " ", line)
                continue
            for line in a[i1:i2]:
                _emit(out, "-", line)
            for line in b[j1:j2]:
                _emit(out, "+", line)
    return "".join(out)
