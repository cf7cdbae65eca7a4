"""How ``apply_patch`` is offered to the model: the freeform and JSON tool forms.

The freeform (custom) form constrains the model's output with a Lark grammar
of the patch language; the function form takes the same text in a JSON
``input`` string, for models without custom-tool support.
"""

from __future__ import annotations

import json
from typing import Any

from .patch_parse import PatchError

__all__ = [
    "FREEFORM_SPEC",
    "FUNCTION_SPEC",
    "GRAMMAR",
    "TOOL_NAME",
    "patch_text_from_function_arguments",
]

TOOL_NAME = "apply_patch"

# The patch language: an envelope around file operations. Each line is its
# own production so the text stays easy to compare with the parser.
GRAMMAR = "\n".join(
    [
        "start: opening file_op+ closing",
        'opening: "*** Begin Patch" LF',
        'closing: "*** End Patch" LF?',
        "",
        "file_op: create | remove | edit",
        'create: "*** Add File: " LINE LF plus_line+',
        'remove: "*** Delete File: " LINE LF',
        'edit: "*** Update File: " LINE LF rename? body?',
        'rename: "*** Move to: " LINE LF',
        "",
        'plus_line: "+" LINE? LF',
        "body: (anchor | diff_line)+ end_of_file?",
        'anchor: "@@" LF | "@@ " LINE LF',
        'diff_line: ("+" | "-" | " ") LINE? LF',
        'end_of_file: "*** End of File" LF',
        "",
        "LINE: /.+/",
        "%import common.LF",
        "",
    ]
)

FREEFORM_SPEC: dict[str, Any] = {
    "type": "custom",
    "name": TOOL_NAME,
    "description": (
        "Use `apply_patch` to create, change, rename or delete files. Its input is the raw"
        " patch text (a FREEFORM tool): send the patch itself, never wrapped in JSON."
    ),
    "format": {"type": "grammar", "syntax": "lark", "definition": GRAMMAR},
}

_FUNCTION_DESCRIPTION = """\
Create, change, rename or delete files with a patch.

The patch starts with the line `*** Begin Patch` and ends with `*** End Patch`.
Between them, one section per file, each opened by a header line:

*** Add File: <path>      the new file's lines follow, each prefixed with `+`
*** Delete File: <path>   nothing follows
*** Update File: <path>   optionally `*** Move to: <new path>`, then changes

Changes to a file are groups of lines. Start each group with `@@`, optionally
followed by a line that appears just before the change (such as a function or
class header) to tell apart repeated code; several `@@ <line>` lines narrow
the place step by step. Inside a group, prefix unchanged lines with a space,
removed lines with `-` and added lines with `+`. Keep about three unchanged
lines around each change so it can be located. End a group that must match
the end of the file with `*** End of File`.

Paths are relative to the working directory. Example:

*** Begin Patch
*** Add File: notes/todo.txt
+write the tests
*** Update File: src/app.py
*** Move to: src/main.py
@@ def greet():
-    print("Hi")
+    print("Hello")
*** Delete File: old.txt
*** End Patch
"""

FUNCTION_SPEC: dict[str, Any] = {
    "type": "function",
    "name": TOOL_NAME,
    "description": _FUNCTION_DESCRIPTION,
    "strict": False,
    "parameters": {
        "type": "object",
        "properties": {
            "input": {"type": "string", "description": "The whole patch text, markers included."}
        },
        "required": ["input"],
        "additionalProperties": False,
    },
}

_ARGUMENTS_PREFIX = "failed to parse function arguments: "


def _position(raw: str, offset: int) -> str:
    line = raw.count("\n", 0, offset) + 1
    column = offset - (raw.rfind("\n", 0, offset) + 1)
    return f"at line {line} column {column}"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int | float):
        return f"number `{value}`"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "sequence"
    return "map"


def _bad_arguments(detail: str) -> PatchError:
    return PatchError(_ARGUMENTS_PREFIX + detail, detail)


def patch_text_from_function_arguments(raw: str) -> str:
    """Extract the patch from a function call's JSON arguments ``{"input": ...}``.

    Raises :class:`PatchError` with the model-facing message when the
    arguments are not JSON, not an object, or lack a string ``input``.
    """
    decoder = json.JSONDecoder()
    start = len(raw) - len(raw.lstrip())
    try:
        value, end = decoder.raw_decode(raw, start)
    except json.JSONDecodeError as exc:
        raise _bad_arguments(f"{exc.msg} {_position(raw, exc.pos + 1)}") from None
    rest = raw[end:]
    if rest.strip():
        first_extra = end + len(rest) - len(rest.lstrip())
        raise _bad_arguments(f"trailing characters {_position(raw, first_extra + 1)}")
    if not isinstance(value, dict):
        raise _bad_arguments(f"invalid type: {_kind(value)}, expected an object with `input`")
    if "input" not in value:
        raise _bad_arguments(f"missing field `input` {_position(raw, end)}")
    text = value["input"]
    if not isinstance(text, str):
        raise _bad_arguments(f"invalid type: {_kind(text)}, expected a string")
    return text
