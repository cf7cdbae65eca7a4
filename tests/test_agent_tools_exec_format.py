"""exec_command / write_stdin texts: tool JSON, argument parsing, output layout, truncation.

Expected strings come from app-server 0.169 runs (spec section 1); the layout checks are
byte-for-byte because the model sees exactly these texts.
"""

from __future__ import annotations

import json
import re

import pytest

from plugins_builtin.agent_tools import exec_format as ef
from plugins_builtin.agent_tools.exec_format import (
    EXEC_COMMAND_SPEC,
    WRITE_STDIN_SPEC,
    ExecArgs,
    ToolArgumentError,
    WriteStdinArgs,
    approx_tokens,
    exec_command_spec,
    forced_env,
    format_exec_output,
    formatted_truncate,
    new_chunk_id,
    parse_exec_args,
    parse_write_stdin_args,
    resolve_login,
    shell_argv,
    truncate_output,
)

PREFIX = "failed to parse function arguments: "
T = "invalid type: "


# -- tool JSON --------------------------------------------------------------------------------


def test_exec_command_spec_shape() -> None:
    spec = EXEC_COMMAND_SPEC
    assert (spec["type"], spec["name"], spec["strict"]) == ("function", "exec_command", False)
    assert isinstance(spec["description"], str) and spec["description"]
    params = spec["parameters"]
    assert params["type"] == "object"
    assert params["required"] == ["cmd"]
    assert params["additionalProperties"] is False
    props = params["properties"]
    assert list(props) == sorted(props)  # the reference sends a sorted map
    types = {name: prop["type"] for name, prop in props.items()}
    assert types == {
        "cmd": "string",
        "justification": "string",
        "login": "boolean",
        "max_output_tokens": "number",
        "prefix_rule": "array",
        "sandbox_permissions": "string",
        "shell": "string",
        "tty": "boolean",
        "workdir": "string",
        "yield_time_ms": "number",
    }
    assert props["prefix_rule"]["items"] == {"type": "string"}
    assert props["sandbox_permissions"]["enum"] == ["use_default", "require_escalated"]
    assert all(prop["description"] for prop in props.values())
    json.dumps(spec)  # plain JSON, ready for the request body


def test_exec_command_spec_without_login_shells() -> None:
    props = exec_command_spec(allow_login_shell=False)["parameters"]["properties"]
    assert "login" not in props
    assert set(props) == set(EXEC_COMMAND_SPEC["parameters"]["properties"]) - {"login"}


def test_write_stdin_spec_shape() -> None:
    spec = WRITE_STDIN_SPEC
    assert (spec["type"], spec["name"], spec["strict"]) == ("function", "write_stdin", False)
    params = spec["parameters"]
    assert params["required"] == ["session_id"]
    assert params["additionalProperties"] is False
    assert {name: prop["type"] for name, prop in params["properties"].items()} == {
        "chars": "string",
        "max_output_tokens": "number",
        "session_id": "number",
        "yield_time_ms": "number",
    }
    assert list(params["properties"]) == sorted(params["properties"])


# -- exec_command arguments -------------------------------------------------------------------


def test_exec_defaults() -> None:
    assert parse_exec_args('{"cmd": "ls"}') == ExecArgs(
        cmd="ls",
        workdir=None,
        shell=None,
        login=None,
        tty=False,
        yield_time_ms=10_000,
        max_output_tokens=None,
        sandbox_permissions="use_default",
        justification=None,
        prefix_rule=None,
        additional_permissions=None,
        environment_id=None,
    )


def test_exec_all_fields() -> None:
    raw = json.dumps(
        {
            "cmd": "git pull",
            "workdir": "sub",
            "shell": "/bin/zsh",
            "login": False,
            "tty": True,
            "yield_time_ms": 1234,
            "max_output_tokens": 77,
            "sandbox_permissions": "require_escalated",
            "justification": "May I?",
            "prefix_rule": ["git", "pull"],
            "additional_permissions": {"network": {"enabled": True}},
            "environment_id": "local",
            "not_a_field": [1, 2, 3],  # ignored, as serde does
        }
    )
    args = parse_exec_args(raw)
    assert (args.cmd, args.workdir, args.shell, args.login, args.tty) == (
        "git pull",
        "sub",
        "/bin/zsh",
        False,
        True,
    )
    assert (args.yield_time_ms, args.max_output_tokens) == (1234, 77)
    assert args.sandbox_permissions == "require_escalated"
    assert (args.justification, args.prefix_rule) == ("May I?", ("git", "pull"))
    assert args.additional_permissions == {"network": {"enabled": True}}
    assert args.environment_id == "local"


def test_exec_explicit_nulls_mean_defaults() -> None:
    raw = '{"cmd":"ls","workdir":null,"shell":null,"login":null,"max_output_tokens":null,'
    raw += '"justification":null,"prefix_rule":null,"additional_permissions":null}'
    assert parse_exec_args(raw) == ExecArgs(cmd="ls")


@pytest.mark.parametrize(
    ("requested", "effective"),
    [
        (0, 250),
        (1, 250),
        (100, 250),
        (249, 250),
        (250, 250),
        (9_999, 9_999),
        (30_000, 30_000),
        (30_001, 30_000),
        (10**12, 30_000),
    ],
)
def test_exec_yield_clamp(requested: int, effective: int) -> None:
    args = parse_exec_args(json.dumps({"cmd": "x", "yield_time_ms": requested}))
    assert args.yield_time_ms == effective


EXEC_ERRORS = [
    ("{}", "missing field `cmd`", 2),
    ('{"workdir": "x"}', "missing field `cmd`", 16),
    ('{\n  "tty": true\n}', "missing field `cmd`", "3 column 1"),
    ('{"cmd": 5}', T + "integer `5`, expected a string", 9),
    ('{"cmd": null}', T + "null, expected a string", 12),
    ('{"cmd": ["ls"]}', T + "sequence, expected a string", 8),
    ('{"cmd": {}}', T + "map, expected a string", 8),
    ('{"cmd":"a","tty":"yes"}', T + 'string "yes", expected a boolean', 22),
    ('{"cmd":"a","tty":null}', T + "null, expected a boolean", 21),
    ('{"cmd":"a","login":1}', T + "integer `1`, expected a boolean", 20),
    ('{"cmd":"a","yield_time_ms":-5}', "invalid value: integer `-5`, expected u64", 29),
    ('{"cmd":"a","yield_time_ms":2.5}', T + "floating point `2.5`, expected u64", 30),
    ('{"cmd":"a","yield_time_ms":1e3}', T + "floating point `1000.0`, expected u64", 30),
    ('{"cmd":"a","yield_time_ms":true}', T + "boolean `true`, expected u64", 31),
    (
        '{"cmd":"a","yield_time_ms":1e20}',
        T + "floating point `100000000000000000000.0`, expected u64",
        31,
    ),
    (
        '{"cmd":"a","yield_time_ms":99999999999999999999}',
        T + "floating point `100000000000000000000.0`, expected u64",
        47,
    ),
    ('{"cmd":"a","max_output_tokens":"9"}', T + 'string "9", expected usize', 34),
    (
        '{"cmd":"a","sandbox_permissions":"root"}',
        "unknown variant `root`, expected one of `use_default`, `require_escalated`, "
        "`with_additional_permissions`",
        39,
    ),
    ('{"cmd":"a","sandbox_permissions":1}', "expected value", 34),
    ('{"cmd":"a","prefix_rule":"git"}', T + 'string "git", expected a sequence', 30),
    ('{"cmd":"a","prefix_rule":["git", 2]}', T + "integer `2`, expected a string", 34),
    ('{"cmd":"a","cmd":"b"}', "duplicate field `cmd`", 16),
    ('{"cmd":1,"cmd":"b"}', T + "integer `1`, expected a string", 8),
    ('{"cmd":"t\\tx","tty":"q\\"\\u0001"}', T + 'string "q\\"\\u{1}", expected a boolean', 31),
    ('{"cmd": "é", "tty": 0}', T + "integer `0`, expected a boolean", 22),
    ("", "EOF while parsing a value", 0),
    ("{", "EOF while parsing an object", 1),
    ('{"cmd": "ls"', "EOF while parsing an object", 12),
    ('{"cmd": "ls', "EOF while parsing a string", 11),
    ('{"cmd": }', "expected value", 9),
    ('{"cmd": "ls",}', "trailing comma", 14),
    ('{cmd: "ls"}', "key must be a string", 2),
    ('{"cmd" "ls"}', "expected `:`", 8),
    ('{"cmd": "a" "tty": true}', "expected `,` or `}`", 13),
    ('{"cmd": "ls"} extra', "trailing characters", 15),
    ('{"cmd": NaN}', "expected value", 9),
    ("[]", T + "sequence, expected struct ExecCommandArgs", 0),
    ('"ls"', T + 'string "ls", expected struct ExecCommandArgs', 4),
]


@pytest.mark.parametrize(("raw", "message", "where"), EXEC_ERRORS)
def test_exec_bad_arguments(raw: str, message: str, where: int | str) -> None:
    with pytest.raises(ValueError) as caught:  # ToolArgumentError is a ValueError
        parse_exec_args(raw)
    position = f"1 column {where}" if isinstance(where, int) else where
    assert str(caught.value) == f"{PREFIX}{message} at line {position}"


# -- write_stdin arguments --------------------------------------------------------------------


def test_write_stdin_defaults_poll() -> None:
    # An empty write is a poll: the 250 ms default is raised to the 5 s poll floor.
    assert parse_write_stdin_args('{"session_id": 7}') == WriteStdinArgs(
        session_id=7, chars="", yield_time_ms=5_000, max_output_tokens=None
    )


def test_write_stdin_defaults_write() -> None:
    assert parse_write_stdin_args('{"session_id": 7, "chars": "q\\n"}') == WriteStdinArgs(
        session_id=7, chars="q\n", yield_time_ms=250, max_output_tokens=None
    )


@pytest.mark.parametrize(
    ("chars", "requested", "effective"),
    [
        ("x", 1, 250),
        ("x", 250, 250),
        ("x", 5_000, 5_000),
        ("x", 99_999, 30_000),
        ("", 1, 5_000),
        ("", 100, 5_000),
        ("", 60_000, 60_000),
        ("", 400_000, 300_000),
    ],
)
def test_write_stdin_yield_clamp(chars: str, requested: int, effective: int) -> None:
    raw = json.dumps({"session_id": 1, "chars": chars, "yield_time_ms": requested})
    assert parse_write_stdin_args(raw).yield_time_ms == effective


def test_write_stdin_poll_cap_follows_config() -> None:
    raw = '{"session_id": 1, "yield_time_ms": 900000}'
    assert parse_write_stdin_args(raw, max_poll_ms=600_000).yield_time_ms == 600_000


def test_write_stdin_fields() -> None:
    raw = '{"session_id": -3, "max_output_tokens": 12, "chars": "", "other": 1}'
    assert parse_write_stdin_args(raw) == WriteStdinArgs(-3, "", 5_000, 12)


STDIN_ERRORS = [
    ("{}", "missing field `session_id`", 2),
    ('{"chars": "x"}', "missing field `session_id`", 14),
    ('{"session_id": "5"}', T + 'string "5", expected i32', 18),
    (
        '{"session_id": 2147483648}',
        "invalid value: integer `2147483648`, expected i32",
        25,
    ),
    ('{"session_id": 1.0}', T + "floating point `1.0`, expected i32", 18),
    ('{"session_id": 1, "chars": null}', T + "null, expected a string", 31),
    (
        '{"session_id": 1, "chars": 5}',
        T + "integer `5`, expected a string",
        28,
    ),
]


@pytest.mark.parametrize(("raw", "message", "where"), STDIN_ERRORS)
def test_write_stdin_bad_arguments(raw: str, message: str, where: int) -> None:
    with pytest.raises(ToolArgumentError) as caught:
        parse_write_stdin_args(raw)
    assert str(caught.value) == f"{PREFIX}{message} at line 1 column {where}"


def test_resolve_login() -> None:
    assert resolve_login(None) is True
    assert resolve_login(None, allow_login_shell=False) is False
    assert resolve_login(False, allow_login_shell=False) is False
    assert resolve_login(True) is True
    with pytest.raises(ToolArgumentError) as caught:
        resolve_login(True, allow_login_shell=False)
    assert str(caught.value) == (
        "login shell is disabled by config; omit `login` or set it to false."
    )


# -- process setup ----------------------------------------------------------------------------


def test_forced_env() -> None:
    assert forced_env() == {
        "NO_COLOR": "1",
        "TERM": "dumb",
        "LANG": "C.UTF-8",
        "LC_CTYPE": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "COLORTERM": "",
        "PAGER": "cat",
        "GIT_PAGER": "cat",
        "GH_PAGER": "cat",
        "CODEX_CI": "1",
    }
    forced_env()["TERM"] = "xterm"  # callers get their own copy
    assert forced_env()["TERM"] == "dumb"


def test_chunk_ids() -> None:
    ids = {new_chunk_id() for _ in range(50)}
    assert all(re.fullmatch(r"[0-9a-f]{6}", chunk) for chunk in ids)
    assert len(ids) > 1


def test_shell_argv_login_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ef, "default_user_shell", lambda: "/bin/bash")
    assert shell_argv("echo hi", None, True) == ["/bin/bash", "-lc", "echo hi"]
    assert shell_argv("echo hi", None, False) == ["/bin/bash", "-c", "echo hi"]
    assert shell_argv("echo hi", "", True)[0] == "/bin/bash"  # empty means the default


def test_shell_argv_model_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    found = {"sh": "/usr/bin/sh", "zsh": "/usr/bin/zsh"}
    monkeypatch.setattr(ef.shutil, "which", found.get)
    # A known shell is found by name (0.169 ran "/bin/sh" as /usr/bin/sh).
    assert shell_argv("echo hi", "/bin/sh", True) == ["/usr/bin/sh", "-lc", "echo hi"]
    assert shell_argv("ls", "zsh", False) == ["/usr/bin/zsh", "-c", "ls"]
    # Unknown or missing programs are used as given.
    assert shell_argv("ls", "/opt/fish/bin/fish", True) == ["/opt/fish/bin/fish", "-lc", "ls"]
    assert shell_argv("ls", "/bin/bash", True) == ["/bin/bash", "-lc", "ls"]


def test_default_user_shell_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_entry(uid: int) -> None:
        raise KeyError(uid)

    monkeypatch.setattr(ef.pwd, "getpwuid", no_entry)
    monkeypatch.setenv("SHELL", "/bin/dash")
    assert ef.default_user_shell() == "/bin/dash"
    monkeypatch.delenv("SHELL")
    assert ef.default_user_shell() == "/bin/sh"


# -- tokens and truncation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("", 0), ("a", 1), ("abcd", 1), ("abcde", 2), ("hello\n", 2), ("é", 1), ("€€", 2)],
)
def test_approx_tokens(text: str, tokens: int) -> None:
    assert approx_tokens(text) == tokens


SEQ = "".join(f"{n}\n" for n in range(1, 3001))  # `seq 1 3000`: 13893 bytes


def test_truncate_keeps_head_and_tail() -> None:
    text, original = truncate_output(SEQ, 40)
    head = "".join(f"{n}\n" for n in range(1, 30)) + "30"
    tail = "".join(f"{n}\n" for n in range(2985, 3001))
    assert text == head + "…3434 tokens truncated…" + tail
    assert original == 3474
    assert len(head.encode()) == 80 and len(tail.encode()) == 80


def test_truncate_within_budget_is_unchanged() -> None:
    assert truncate_output("x" * 40, 10) == ("x" * 40, 10)
    assert truncate_output("", 0) == ("", 0)
    assert formatted_truncate("x" * 40, 10) == "x" * 40


def test_truncate_zero_budget_is_marker_only() -> None:
    assert truncate_output("abcdefghi", 0) == ("…3 tokens truncated…", 3)


def test_truncate_never_splits_characters() -> None:
    text = "é" * 20  # 40 bytes, 2 per character
    cut, original = truncate_output(text, 3)  # 12-byte budget, 6 bytes each side
    assert cut == "ééé…7 tokens truncated…ééé"
    assert original == 10
    odd = "a" + "€" * 10  # 31 bytes; the 6-byte head cannot take a second 3-byte "€"
    assert truncate_output(odd, 3)[0] == "a€…5 tokens truncated…€€"


def test_formatted_truncate_header() -> None:
    assert formatted_truncate(SEQ, 40) == (
        "Warning: truncated output (original token count: 3474)\n"
        "Total output lines: 3000\n\n" + truncate_output(SEQ, 40)[0]
    )
    # Line count as Rust's str::lines: no extra line for a trailing newline.
    assert formatted_truncate("a\nb\nc", 1).startswith(
        "Warning: truncated output (original token count: 2)\nTotal output lines: 3\n\n"
    )
    assert "Total output lines: 2\n" in formatted_truncate("a\nb\n", 0)
    assert "Total output lines: 2\n" in formatted_truncate("a\r\nb", 0)


# -- output layout ----------------------------------------------------------------------------


def _out(**overrides: object) -> str:
    fields: dict = {"chunk_id": "852608", "wall_time_s": 0.1623, "exit_code": 0}
    fields |= {"session_id": None, "output": "hello\n", "max_output_tokens": None}
    return format_exec_output(**(fields | overrides))


def test_layout_exited() -> None:
    assert _out() == (
        "Chunk ID: 852608\nWall time: 0.1623 seconds\nProcess exited with code 0\n"
        "Original token count: 2\nOutput:\nhello\n"
    )


def test_layout_running() -> None:
    text = _out(chunk_id="26ee7b", wall_time_s=0.3012, exit_code=None, session_id=39173)
    assert text == (
        "Chunk ID: 26ee7b\nWall time: 0.3012 seconds\nProcess running with session ID 39173\n"
        "Original token count: 2\nOutput:\nhello\n"
    )


def test_layout_running_without_output() -> None:
    text = _out(exit_code=None, session_id=1803, output="", wall_time_s=5.0)
    assert text == (
        "Chunk ID: 852608\nWall time: 5.0000 seconds\nProcess running with session ID 1803\n"
        "Original token count: 0\nOutput:\n"
    )


def test_layout_failure_is_not_special() -> None:
    text = _out(exit_code=1, output="boom")
    expected = ["Process exited with code 1", "Original token count: 1", "Output:", "boom"]
    assert text.splitlines()[2:] == expected


def test_layout_truncated() -> None:
    text = _out(chunk_id="a1b2c3", wall_time_s=0.01, output=SEQ, max_output_tokens=40)
    head = "".join(f"{n}\n" for n in range(1, 30))
    tail = "".join(f"{n}\n" for n in range(2985, 3001))
    assert text == (
        "Chunk ID: a1b2c3\nWall time: 0.0100 seconds\nProcess exited with code 0\n"
        "Original token count: 3474\nOutput:\n"
        "Warning: truncated output (original token count: 3474)\nTotal output lines: 3000\n\n"
        + head
        + "30…3434 tokens truncated…"
        + tail
    )


def test_layout_budget_defaults_and_policy_cap() -> None:
    big = "x" * 40_004  # 10001 tokens: just over the default budget
    assert "tokens truncated" in _out(output=big)
    assert "tokens truncated" in _out(output=big, max_output_tokens=50_000)  # policy cap
    assert "tokens truncated" not in _out(
        output=big, max_output_tokens=50_000, policy_max_tokens=20_000
    )
    assert "…1 tokens truncated…" in _out(output=big, max_output_tokens=10_000)  # fmt: skip


def test_layout_for_intercepted_patch() -> None:
    assert _out(chunk_id="").startswith("Wall time: 0.1623 seconds\n")
    bare = _out(
        chunk_id="", wall_time_s=0, exit_code=None, output="Done!\n", show_token_count=False
    )
    assert bare == "Wall time: 0.0000 seconds\nOutput:\nDone!\n"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0.0000"), (0.00004, "0.0000"), (0.00006, "0.0001"), (1.23456, "1.2346"), (12, "12.0000")],
)
def test_wall_time_has_four_decimals(seconds: float, shown: str) -> None:
    assert _out(wall_time_s=seconds).splitlines()[1] == f"Wall time: {shown} seconds"
