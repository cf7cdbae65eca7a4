"""Model-facing side of ``exec_command`` / ``write_stdin``: tool JSON, arguments, output text.

Everything here is pure except the two shell lookups, so the runner can be tested
apart from the texts the model sees. Argument errors mimic the reference's serde
wording (message and ``at line L column C``) because the model is trained on it.
"""

from __future__ import annotations

import json
import math
import os
import pwd
import secrets
import shutil
from decimal import Decimal
from typing import Any

import attrs

# fmt: off
__all__ = [
    "DEFAULT_EXEC_YIELD_TIME_MS", "DEFAULT_MAX_BACKGROUND_TERMINAL_TIMEOUT_MS",
    "DEFAULT_MAX_OUTPUT_TOKENS", "DEFAULT_WRITE_STDIN_YIELD_TIME_MS", "EXEC_COMMAND_SPEC",
    "LOGIN_DISABLED_MESSAGE", "MAX_YIELD_TIME_MS", "MIN_EMPTY_YIELD_TIME_MS", "MIN_YIELD_TIME_MS",
    "WRITE_STDIN_SPEC", "ExecArgs", "ToolArgumentError", "WriteStdinArgs", "approx_tokens",
    "default_user_shell", "exec_command_spec", "forced_env", "format_exec_output",
    "formatted_truncate", "new_chunk_id", "parse_exec_args", "parse_write_stdin_args",
    "resolve_login", "shell_argv", "truncate_output",
]
# fmt: on

DEFAULT_EXEC_YIELD_TIME_MS = 10_000
DEFAULT_WRITE_STDIN_YIELD_TIME_MS = 250
MIN_YIELD_TIME_MS = 250
MAX_YIELD_TIME_MS = 30_000
MIN_EMPTY_YIELD_TIME_MS = 5_000
DEFAULT_MAX_BACKGROUND_TERMINAL_TIMEOUT_MS = 300_000
DEFAULT_MAX_OUTPUT_TOKENS = 10_000
LOGIN_DISABLED_MESSAGE = "login shell is disabled by config; omit `login` or set it to false."

_SANDBOX_VARIANTS = ("use_default", "require_escalated", "with_additional_permissions")
_BYTES_PER_TOKEN = 4
_Json = dict[str, Any]


# -- tool JSON -------------------------------------------------------------------------------


def _prop(kind: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, **extra, "description": description}


def _function_tool(name: str, text: str, props: _Json, required: list[str]) -> _Json:
    # The reference serialises properties from a sorted map; keep that order on the wire.
    properties = {key: props[key] for key in sorted(props)}
    parameters = {"type": "object", "properties": properties, "required": required}
    tool = {"type": "function", "name": name, "description": text, "strict": False}
    return {**tool, "parameters": {**parameters, "additionalProperties": False}}


_BUDGET_TEXT = "Maximum output tokens to return (default 10000); policy may lower larger values."


def exec_command_spec(*, allow_login_shell: bool = True) -> dict[str, Any]:
    """The ``exec_command`` tool; ``login`` is only offered when login shells are allowed."""
    props = {
        "cmd": _prop("string", "The shell command line to run."),
        "workdir": _prop("string", "Directory to run in, relative to the turn cwd (the default)."),
        "shell": _prop("string", "Shell program to run the command with; the user's by default."),
        "tty": _prop("boolean", "Run on a pseudo-terminal when true; plain pipes by default."),
        "yield_time_ms": _prop(
            "number", "Milliseconds to wait for output before returning (default 10000, 250-30000)."
        ),
        "max_output_tokens": _prop("number", _BUDGET_TEXT),
        "sandbox_permissions": _prop(
            "string",
            "Sandbox mode for this command: `use_default` (default), or `require_escalated` "
            "to ask to run it outside the sandbox.",
            enum=["use_default", "require_escalated"],
        ),
        "justification": _prop(
            "string", "Question shown to the user when `require_escalated` needs approval."
        ),
        "prefix_rule": _prop(
            "array",
            'Only with `sandbox_permissions: "require_escalated"`: a command prefix the user '
            'may approve for reuse, e.g. ["git", "pull"].',
            items={"type": "string"},
        ),
    }
    if allow_login_shell:
        props["login"] = _prop("boolean", "Start the shell as a login shell (-l/-i); default true.")
    description = (
        "Run a shell command, optionally on a PTY. Returns its output, or a session ID "
        "for further interaction while it keeps running."
    )
    return _function_tool("exec_command", description, props, ["cmd"])


EXEC_COMMAND_SPEC: dict[str, Any] = exec_command_spec()

WRITE_STDIN_SPEC: dict[str, Any] = _function_tool(
    "write_stdin",
    "Send characters to a running exec_command session and return the output produced since.",
    {
        "session_id": _prop("number", "Session ID reported by exec_command."),
        "chars": _prop("string", "Text to write; empty (the default) only polls for output."),
        "yield_time_ms": _prop(
            "number",
            "Milliseconds to wait for output: writes default to 250 (max 30000), empty polls "
            "wait 5000-300000.",
        ),
        "max_output_tokens": _prop("number", _BUDGET_TEXT),
    },
    ["session_id"],
)


# -- argument parsing ------------------------------------------------------------------------


class ToolArgumentError(ValueError):
    """Bad tool arguments; ``str()`` is the text handed back to the model."""


@attrs.frozen
class ExecArgs:
    """Parsed ``exec_command`` arguments; ``yield_time_ms`` is already clamped."""

    cmd: str
    workdir: str | None = None
    shell: str | None = None
    login: bool | None = None
    tty: bool = False
    yield_time_ms: int = DEFAULT_EXEC_YIELD_TIME_MS
    max_output_tokens: int | None = None
    sandbox_permissions: str = "use_default"
    justification: str | None = None
    prefix_rule: tuple[str, ...] | None = None
    additional_permissions: dict[str, Any] | None = attrs.field(default=None, hash=False)
    environment_id: str | None = None


@attrs.frozen
class WriteStdinArgs:
    """Parsed ``write_stdin`` arguments; ``yield_time_ms`` is clamped for a write or a poll."""

    session_id: int
    chars: str = ""
    yield_time_ms: int = MIN_EMPTY_YIELD_TIME_MS
    max_output_tokens: int | None = None


@attrs.frozen
class _Member:
    """One value of the arguments object with its source offsets (serde reports positions)."""

    key: str
    key_end: int
    value: Any
    start: int
    end: int


# Field kinds of the reference's serde structs: a trailing "?" means an Option (null is fine).
# fmt: off
_EXEC_FIELDS = {
    "cmd": "string", "workdir": "string?", "shell": "string?", "login": "bool?", "tty": "bool",
    "yield_time_ms": "u64", "max_output_tokens": "usize?", "sandbox_permissions": "sandbox",
    "justification": "string?", "prefix_rule": "strings?", "additional_permissions": "object?",
    "environment_id": "string?",
}
_WRITE_STDIN_FIELDS = {
    "session_id": "i32", "chars": "string", "yield_time_ms": "u64", "max_output_tokens": "usize?",
}
_EXPECTED = {
    "string": "a string", "bool": "a boolean", "strings": "a sequence",
    "object": "struct AdditionalPermissionProfile",
}
# fmt: on


def _position(raw: str, end: int) -> str:
    # serde_json counts lines from 1 and columns as bytes consumed on the current line.
    line_start = raw.rfind("\n", 0, end) + 1
    column = len(raw[line_start:end].encode("utf-8", "surrogatepass"))
    return f"at line {raw.count(chr(10), 0, end) + 1} column {column}"


def _fail(raw: str, message: str, end: int) -> ToolArgumentError:
    return ToolArgumentError(f"failed to parse function arguments: {message} {_position(raw, end)}")


def _unexpected(value: Any) -> str:
    """serde's description of an unexpected JSON value."""
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        text = format(Decimal(repr(value)), "f")
        return f"floating point `{text if '.' in text else text + '.0'}`"
    if isinstance(value, str):
        # Rust's Debug form of a str.
        escapes = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}
        body = "".join(
            escapes.get(ch) or (f"\\u{{{ord(ch):x}}}" if ord(ch) < 0x20 or ch == "\x7f" else ch)
            for ch in value
        )
        return f'string "{body}"'
    return "sequence" if isinstance(value, list) else "map"


def _type_error(raw: str, member: _Member, expected: str) -> ToolArgumentError:
    value = member.value
    if value is None:
        return _fail(raw, f"invalid type: null, expected {expected}", member.end)
    # serde reports containers before consuming them, scalars after.
    end = member.start if isinstance(value, list | dict) else member.end
    return _fail(raw, f"invalid type: {_unexpected(value)}, expected {expected}", end)


def _skip_ws(raw: str, index: int) -> int:
    while index < len(raw) and raw[index] in " \t\n\r":
        index += 1
    return index


# fmt: off
_SYNTAX = (
    ("Expecting value", "expected value"), ("Expecting property name", "key must be a string"),
    ("Expecting ':'", "expected `:`"), ("Expecting ','", "expected `,` or `}`"),
    ("Invalid control", "control character (\\u0000-\\u001F) found while parsing a string"),
    ("Extra data", "trailing characters"),
)
# fmt: on


def _syntax_error(raw: str, exc: json.JSONDecodeError) -> ToolArgumentError:
    """Python's JSON error re-worded as serde_json words it."""
    pos, msg = exc.pos, exc.msg
    if msg.startswith("Unterminated string"):
        return _fail(raw, "EOF while parsing a string", len(raw))
    if _skip_ws(raw, pos) >= len(raw):
        what = "a value" if msg.startswith("Expecting value") else "an object"
        return _fail(raw, f"EOF while parsing {what}", len(raw))
    text = next((serde for py, serde in _SYNTAX if msg.startswith(py)), "invalid escape")
    if raw[pos] in "]}" and raw[:pos].rstrip(" \t\n\r").endswith(","):
        text = "trailing comma"
    elif text == "expected `,` or `}`" and raw.rfind("[", 0, pos) > raw.rfind("{", 0, pos):
        # A guess at the enclosing container (serde names the one it was parsing).
        text = "expected `,` or `]`"
    return _fail(raw, text, pos + 1)


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _members(raw: str, struct: str) -> tuple[list[_Member], int]:
    """The top-level members in source order, and the offset just past the object."""
    try:
        document = json.loads(raw, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise _syntax_error(raw, exc) from None
    except ValueError as exc:  # NaN / Infinity, which serde_json does not accept
        raise _fail(raw, "expected value", raw.find(str(exc)) + 1) from None
    start = _skip_ws(raw, 0)
    if not isinstance(document, dict):
        whole = _Member("", 0, document, start, len(raw.rstrip(" \t\n\r")))
        raise _type_error(raw, whole, f"struct {struct}")
    decoder = json.JSONDecoder()
    members: list[_Member] = []
    index = _skip_ws(raw, start + 1)
    while raw[index] != "}":
        key, key_end = json.decoder.scanstring(raw, index + 1)  # type: ignore[attr-defined]
        value_start = _skip_ws(raw, _skip_ws(raw, key_end) + 1)
        value, value_end = decoder.raw_decode(raw, value_start)
        members.append(_Member(key, key_end, value, value_start, value_end))
        index = _skip_ws(raw, value_end)
        if raw[index] == ",":
            index = _skip_ws(raw, index + 1)
    return members, index + 1


def _check(raw: str, member: _Member, kind: str) -> Any:
    """Validate one member against its serde field kind and return its value."""
    value = member.value
    if kind.endswith("?"):
        if value is None:
            return None
        kind = kind[:-1]
    if kind in ("u64", "usize", "i32"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(raw, member, kind)
        if not -(2**63) <= value < 2**64:  # serde_json reads such literals as floats
            raise _type_error(raw, attrs.evolve(member, value=float(value)), kind)
        low, high = (-(2**31), 2**31) if kind == "i32" else (0, 2**64)
        if not low <= value < high:
            raise _fail(raw, f"invalid value: integer `{value}`, expected {kind}", member.end)
        return value
    if kind == "sandbox":
        if not isinstance(value, str):
            raise _fail(raw, "expected value", member.start + 1)
        if value not in _SANDBOX_VARIANTS:
            choices = ", ".join(f"`{name}`" for name in _SANDBOX_VARIANTS)
            raise _fail(raw, f"unknown variant `{value}`, expected one of {choices}", member.end)
        return value
    wanted = {"string": str, "bool": bool, "strings": list, "object": dict}[kind]
    if not isinstance(value, wanted):
        raise _type_error(raw, member, _EXPECTED[kind])
    if kind == "strings":
        return _string_items(raw, member)
    return value


def _string_items(raw: str, member: _Member) -> tuple[str, ...]:
    decoder = json.JSONDecoder()
    index = _skip_ws(raw, member.start + 1)
    for item in member.value:
        _, item_end = decoder.raw_decode(raw, index)
        if not isinstance(item, str):
            raise _type_error(raw, _Member("", 0, item, index, item_end), "a string")
        index = _skip_ws(raw, _skip_ws(raw, item_end) + 1)
    return tuple(member.value)


def _parse_struct(raw: str, struct: str, fields: dict[str, str], required: str) -> dict[str, Any]:
    """serde-style decoding: members checked in source order, then the missing required field."""
    members, end = _members(raw, struct)
    out: dict[str, Any] = {}
    for member in members:
        if member.key not in fields:
            continue  # unknown fields are ignored, as serde does by default
        if member.key in out:
            raise _fail(raw, f"duplicate field `{member.key}`", member.key_end)
        out[member.key] = _check(raw, member, fields[member.key])
    if required not in out:
        raise _fail(raw, f"missing field `{required}`", end)
    return out


def _clamp(value: int, low: int, high: int) -> int:
    return min(max(value, low), high)


def parse_exec_args(raw: str) -> ExecArgs:
    """Decode ``exec_command`` arguments with the reference's defaults and yield clamp."""
    out = _parse_struct(raw, "ExecCommandArgs", _EXEC_FIELDS, "cmd")
    # Explicit nulls were only allowed for Option fields; drop them so defaults apply.
    out = {key: value for key, value in out.items() if value is not None}
    requested = out.pop("yield_time_ms", DEFAULT_EXEC_YIELD_TIME_MS)
    return ExecArgs(yield_time_ms=_clamp(requested, MIN_YIELD_TIME_MS, MAX_YIELD_TIME_MS), **out)


def parse_write_stdin_args(
    raw: str, *, max_poll_ms: int = DEFAULT_MAX_BACKGROUND_TERMINAL_TIMEOUT_MS
) -> WriteStdinArgs:
    """Decode ``write_stdin`` arguments; an empty ``chars`` is a poll with its own clamp."""
    out = _parse_struct(raw, "WriteStdinArgs", _WRITE_STDIN_FIELDS, "session_id")
    out = {key: value for key, value in out.items() if value is not None}
    requested = out.pop("yield_time_ms", DEFAULT_WRITE_STDIN_YIELD_TIME_MS)
    if out.get("chars"):
        clamped = _clamp(requested, MIN_YIELD_TIME_MS, MAX_YIELD_TIME_MS)
    else:
        clamped = _clamp(requested, MIN_EMPTY_YIELD_TIME_MS, max_poll_ms)
    return WriteStdinArgs(yield_time_ms=clamped, **out)


def resolve_login(login: bool | None, *, allow_login_shell: bool = True) -> bool:
    """Whether to start a login shell; asking for one the config forbids is a model error."""
    if login is None:
        return allow_login_shell
    if login and not allow_login_shell:
        raise ToolArgumentError(LOGIN_DISABLED_MESSAGE)
    return login


# -- process setup ---------------------------------------------------------------------------


def default_user_shell() -> str:
    """The user's login shell from the password database, else ``$SHELL``, else ``/bin/sh``."""
    try:
        shell = pwd.getpwuid(os.getuid()).pw_shell
    except KeyError:
        shell = ""
    if shell and os.access(shell, os.X_OK):
        return shell
    return os.environ.get("SHELL") or "/bin/sh"


def shell_argv(cmd: str, shell: str | None, login: bool) -> list[str]:
    """``[shell, "-lc"|"-c", cmd]``; a model-given bash/zsh/sh is looked up on PATH by name."""
    if not shell:
        program = default_user_shell()
    else:
        name = os.path.basename(shell)
        # The reference keeps only the kind of a model-given shell and finds that binary itself.
        lookup = name if name in ("bash", "zsh", "sh") or name == shell else None
        program = (shutil.which(lookup) if lookup else None) or shell
    return [program, "-lc" if login else "-c", cmd]


def forced_env() -> dict[str, str]:
    """Variables set on every command so output is plain text and never paged."""
    # fmt: off
    return {
        "NO_COLOR": "1", "TERM": "dumb", "LANG": "C.UTF-8", "LC_CTYPE": "C.UTF-8",
        "LC_ALL": "C.UTF-8", "COLORTERM": "", "PAGER": "cat", "GIT_PAGER": "cat",
        "GH_PAGER": "cat", "CODEX_CI": "1",
    }
    # fmt: on


def new_chunk_id() -> str:
    """Six random lowercase hex digits labelling one tool response."""
    return secrets.token_hex(3)


# -- output text -----------------------------------------------------------------------------


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def approx_tokens(text: str) -> int:
    """The reference's token estimate: one token per started 4 bytes of UTF-8."""
    return math.ceil(len(_utf8(text)) / _BYTES_PER_TOKEN)


def truncate_output(text: str, max_tokens: int) -> tuple[str, int]:
    """Keep the head and tail halves of a ``max_tokens * 4`` byte budget around a marker.

    Returns the (possibly) shortened text and the token count of the original.
    Cuts land on character boundaries; the marker carries no newlines.
    """
    data = _utf8(text)
    original = approx_tokens(text)
    budget = max(max_tokens, 0) * _BYTES_PER_TOKEN
    if not data or (budget and len(data) <= budget):
        return text, original
    marker = f"…{math.ceil((len(data) - budget) / _BYTES_PER_TOKEN)} tokens truncated…"
    if budget == 0:
        return marker, original
    head_end = budget // 2
    while head_end > 0 and data[head_end] & 0xC0 == 0x80:  # never split a character
        head_end -= 1
    tail_start = len(data) - (budget - budget // 2)
    while tail_start < len(data) and data[tail_start] & 0xC0 == 0x80:
        tail_start += 1
    tail_start = max(tail_start, head_end)
    head = data[:head_end].decode("utf-8", "surrogatepass")
    return head + marker + data[tail_start:].decode("utf-8", "surrogatepass"), original


def formatted_truncate(text: str, max_tokens: int) -> str:
    """``text`` cut to the budget; when cut, prefixed by the warning header the model expects."""
    if len(_utf8(text)) <= max(max_tokens, 0) * _BYTES_PER_TOKEN:
        return text
    shortened, original = truncate_output(text, max_tokens)
    # Rust's str::lines: split on "\n" only, a final newline ends the last line.
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    return (
        f"Warning: truncated output (original token count: {original})\n"
        f"Total output lines: {lines}\n\n{shortened}"
    )


def format_exec_output(
    *,
    chunk_id: str,
    wall_time_s: float,
    exit_code: int | None,
    session_id: int | None,
    output: str,
    max_output_tokens: int | None,
    policy_max_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS,
    show_token_count: bool = True,
) -> str:
    """The text returned to the model for one exec_command/write_stdin call.

    An empty ``chunk_id`` drops the Chunk ID line and ``show_token_count=False`` the token
    line (the apply_patch interception uses both). The budget is the requested
    ``max_output_tokens`` (None: 10000) capped by the model's ``policy_max_tokens``.
    """
    lines = [f"Chunk ID: {chunk_id}"] if chunk_id else []
    lines.append(f"Wall time: {wall_time_s:.4f} seconds")
    if exit_code is not None:
        lines.append(f"Process exited with code {exit_code}")
    if session_id is not None:
        lines.append(f"Process running with session ID {session_id}")
    if show_token_count:
        lines.append(f"Original token count: {approx_tokens(output)}")
    requested = DEFAULT_MAX_OUTPUT_TOKENS if max_output_tokens is None else max_output_tokens
    lines += ["Output:", formatted_truncate(output, min(requested, policy_max_tokens))]
    return "\n".join(lines)
