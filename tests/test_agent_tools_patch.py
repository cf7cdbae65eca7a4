"""The apply_patch library: parsing, matching, planning, writing, model texts."""

from __future__ import annotations

import importlib.util
import json
import os
import stat
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from plugins_builtin.agent_tools.patch import (
    AddFile,
    DeleteFile,
    PatchApplyError,
    PatchError,
    UpdateChunk,
    UpdateFile,
    apply_plan,
    failure_output,
    format_wall_time,
    parse_patch,
    plan_patch,
    seek_sequence,
    success_output,
)

SHARED_VALIDATE = Path("/work/shared/protocol/validate.py")
VENDORED_SCHEMA = Path(__file__).parent / "protocol" / "codex-app-server-0.169.0.schema.json"

VALID_HEADERS = (
    "Valid hunk headers: '*** Add File: {path}', '*** Delete File: {path}', "
    "'*** Update File: {path}'"
)
UNEXPECTED = (
    "Every line should start with ' ' (context line), '+' (added line), or '-' (removed line)"
)


def file_update_change_errors(change: dict[str, Any]) -> list[str]:
    """Violations of ``v2/FileUpdateChange`` (validated as a sub-definition)."""
    defs = json.loads(VENDORED_SCHEMA.read_text())["definitions"]
    schema = {"$ref": "#/definitions/v2/FileUpdateChange", "definitions": defs}
    return [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(change)]


def check_item_completed(item: dict[str, Any]) -> None:
    """Validate ``item`` inside an ``item/completed`` notification."""
    params = {"threadId": "t", "turnId": "u", "completedAtMs": 1, "item": item}
    if SHARED_VALIDATE.exists():
        spec = importlib.util.spec_from_file_location("reference_validate", SHARED_VALIDATE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.Protocol().check_notification("item/completed", params)
        return
    defs = json.loads(VENDORED_SCHEMA.read_text())["definitions"]
    schema = {"$ref": "#/definitions/v2/ItemCompletedNotification", "definitions": defs}
    jsonschema.Draft7Validator(schema).validate(params)


def wrap(body: str) -> str:
    return f"*** Begin Patch\n{body}\n*** End Patch\n"


def tree(root: Path) -> dict[str, bytes | None]:
    """Everything under ``root``: files with their bytes, directories as None."""
    out: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        out[str(path.relative_to(root))] = None if path.is_dir() else path.read_bytes()
    return out


def run(patch: str, cwd: Path) -> str:
    plan = plan_patch(patch, str(cwd))
    apply_plan(plan)
    return success_output(plan)


# --- parsing -------------------------------------------------------------------------------


def test_parse_every_hunk_kind() -> None:
    hunks = parse_patch(
        wrap(
            "*** Add File: path/add.py\n+abc\n+\n*** Delete File: path/delete.py\n"
            "*** Update File: path/update.py\n*** Move to: path/update2.py\n"
            "@@ class A\n@@ def f():\n-    pass\n+    return 123\n \n*** End of File"
        )
    )
    assert hunks == [
        AddFile("path/add.py", "abc\n\n"),
        DeleteFile("path/delete.py"),
        UpdateFile(
            "path/update.py",
            "path/update2.py",
            (UpdateChunk(("class A", "def f():"), ("    pass", ""), ("    return 123", ""), True),),
        ),
    ]


@pytest.mark.parametrize("opener", ["<<EOF", "<<'EOF'", '<<"EOF"'])
def test_heredoc_wrapper_is_stripped(opener: str) -> None:
    text = f"{opener}\n*** Begin Patch\n*** Add File: foo\n+hi\n*** End Patch\nEOF\n"
    assert parse_patch(text) == [AddFile("foo", "hi\n")]


def test_padding_crlf_and_chunk_shapes() -> None:
    text = (
        "  *** Begin Patch \r\n   *** Update File: a.py  \r\n import foo\r\n+bar\r\n\r\n"
        "*** End of File\r\n\r\n  \r\n@@\r\n-x\r\n\r\n+y\r\n"
        "*** Add File: b\r\n+1\r\n *** End Patch  \n"
    )
    # A blank line inside a chunk is an empty context line; between chunks it is skipped.
    assert parse_patch(text) == [
        UpdateFile(
            "a.py",
            None,
            (
                UpdateChunk((), ("import foo", ""), ("import foo", "bar", ""), True),
                UpdateChunk((), ("x", ""), ("", "y")),
            ),
        ),
        AddFile("b", "1\n"),
    ]


def test_empty_patch_parses_but_does_not_plan(tmp_path: Path) -> None:
    assert parse_patch("*** Begin Patch\n*** End Patch") == []
    with pytest.raises(PatchError) as info:
        plan_patch("*** Begin Patch\n*** End Patch", str(tmp_path))
    assert info.value.message == "apply_patch verification failed: No files were modified."


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("", "invalid patch: The last line of the patch must be '*** End Patch'"),
        ("bad", "invalid patch: The first line of the patch must be '*** Begin Patch'"),
        (
            "*** Begin Patch\nbad",
            "invalid patch: The last line of the patch must be '*** End Patch'",
        ),
        (
            "<<EOF\n*** Begin Patch\n*** End Patch",
            "invalid patch: The first line of the patch must",
        ),
        (
            "<<'EOF'\nfoo\n*** Add File: x\n+y\n*** End Patch\nEOF",
            "invalid patch: The first line of the patch must be '*** Begin Patch'",
        ),
        (
            wrap("*** Add File: a\n+x\n*** Frob File: x"),
            "invalid hunk at line 4, '*** Frob File: x' is not a valid hunk header. "
            + VALID_HEADERS,
        ),
        (
            wrap("*** Add File: a\n+x\n\n*** Delete File: b"),
            f"invalid hunk at line 4, '' is not a valid hunk header. {VALID_HEADERS}",
        ),
        (
            wrap("*** Update File: test.py"),
            "invalid hunk at line 2, Update file hunk for path 'test.py' is empty",
        ),
        (
            wrap("*** Update File: a\n*** Move to: b\n\n*** Delete File: c"),
            "invalid hunk at line 2, Update file hunk for path 'a' is empty",
        ),
        (
            wrap("*** Update File: a\n@@\n-a\nx"),
            "invalid hunk at line 5, Expected update hunk to start with a @@ context marker,"
            " got: 'x'",
        ),
        (
            wrap("*** Update File: a\n@@\n-a\n*** End of File\n-b"),
            "invalid hunk at line 6, Expected update hunk to start with a @@ context marker,"
            " got: '-b'",
        ),
        (
            wrap("*** Update File: a\n@@"),
            "invalid hunk at line 4, Update hunk does not contain any lines",
        ),
        (
            wrap("*** Update File: a\n@@\n*** End of File"),
            "invalid hunk at line 4, Update hunk does not contain any lines",
        ),
        (
            wrap("*** Update File: a\n@@ f\n@@ g\nzz"),
            f"invalid hunk at line 5, Unexpected line found in update hunk: 'zz'. {UNEXPECTED}",
        ),
        (
            # Without an @@ line the reference still counts one line past the chunk start.
            wrap("*** Update File: a\nzz"),
            f"invalid hunk at line 4, Unexpected line found in update hunk: 'zz'. {UNEXPECTED}",
        ),
    ],
)
def test_parse_errors(text: str, detail: str) -> None:
    with pytest.raises(PatchError) as info:
        parse_patch(text)
    assert info.value.detail.startswith(detail)
    assert info.value.message == "apply_patch verification failed: " + info.value.detail


# --- seek_sequence -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "pattern", "start", "eof", "expected"),
    [
        (["foo", "bar", "baz"], ["bar", "baz"], 0, False, 1),
        (["foo   ", "bar\t"], ["foo", "bar"], 0, False, 0),
        (["    foo   ", "   bar\t"], ["foo", "bar"], 0, False, 0),
        (["x = \u201chi\u201d \u2014 \u2018a\u2019\u00a0b"], ["x = \"hi\" - 'a' b"], 0, False, 0),
        (["a"], [], 5, False, 5),
        (["one"], ["too", "many"], 0, False, None),
        (["x", "y", "x"], ["x"], 1, False, 2),
        (["x", "y", "x"], ["x"], 0, True, 2),
        (["end", "mid", "other"], ["end"], 0, True, 0),  # not at the end: searched from start
        (["foo ", "foo"], ["foo"], 0, False, 1),  # an exact match beats an earlier lax one
        (["a", "b"], ["c"], 0, False, None),
    ],
)
def test_seek_sequence(
    lines: list[str], pattern: list[str], start: int, eof: bool, expected: int | None
) -> None:
    assert seek_sequence(lines, pattern, start, eof) == expected


# --- planning and applying -----------------------------------------------------------------


def test_add_update_delete_move_round_trip(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("line1\nline2\nline3\n")
    (tmp_path / "del.txt").write_text("bye\n")
    (tmp_path / "mv.txt").write_text("old\n")
    patch = wrap(
        "*** Add File: hello.txt\n+hello\n+world\n*** Update File: a.txt\n@@\n line1\n-line2\n"
        "+LINE2\n line3\n*** Delete File: del.txt\n*** Update File: mv.txt\n"
        "*** Move to: moved/new.txt\n@@\n-old\n+new"
    )
    plan = plan_patch(patch, str(tmp_path))
    assert tree(tmp_path) == {
        "a.txt": b"line1\nline2\nline3\n",
        "del.txt": b"bye\n",
        "mv.txt": b"old\n",
    }
    root = str(tmp_path)
    changes = plan.changes()
    assert changes == [
        {
            "path": f"{root}/a.txt",
            "kind": {"type": "update", "move_path": None},
            "diff": "@@ -1,3 +1,3 @@\n line1\n-line2\n+LINE2\n line3\n",
        },
        {"path": f"{root}/del.txt", "kind": {"type": "delete"}, "diff": "bye\n"},
        {"path": f"{root}/hello.txt", "kind": {"type": "add"}, "diff": "hello\nworld\n"},
        {
            "path": f"{root}/mv.txt",
            "kind": {"type": "update", "move_path": f"{root}/moved/new.txt"},
            "diff": f"@@ -1 +1 @@\n-old\n+new\n\n\nMoved to: {root}/moved/new.txt",
        },
    ]
    for change in changes:
        assert file_update_change_errors(change) == []
    check_item_completed(
        {"type": "fileChange", "id": "call_1", "changes": changes, "status": "completed"}
    )
    assert plan.paths() == [
        f"{root}/hello.txt",
        f"{root}/a.txt",
        f"{root}/del.txt",
        f"{root}/mv.txt",
        f"{root}/moved/new.txt",
    ]
    apply_plan(plan)
    assert tree(tmp_path) == {
        "a.txt": b"line1\nLINE2\nline3\n",
        "hello.txt": b"hello\nworld\n",
        "moved": None,
        "moved/new.txt": b"new\n",
    }
    assert success_output(plan, 0.04) == (
        "Exit code: 0\nWall time: 0 seconds\nOutput:\nSuccess. Updated the following files:\n"
        "A hello.txt\nM a.txt\nM moved/new.txt\nD del.txt\n"
    )


def test_summary_groups_keep_hunk_order(tmp_path: Path) -> None:
    for name in ("m1", "m2", "d1", "d2"):
        (tmp_path / name).write_text("x\n")
    patch = wrap(
        "*** Delete File: d2\n*** Update File: m2\n@@\n-x\n+y\n*** Add File: z\n+z\n"
        "*** Delete File: d1\n*** Add File: a\n+a\n*** Update File: m1\n@@\n-x\n+y"
    )
    body = run(patch, tmp_path).split("Output:\n", 1)[1]
    assert body == "Success. Updated the following files:\nA z\nA a\nM m2\nM m1\nD d2\nD d1\n"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0"),
        (0.04, "0"),
        (0.05, "0.1"),
        (0.1, "0.1"),
        (1.46, "1.5"),
        (2.0, "2"),
        (12.34, "12.3"),
    ],
)
def test_wall_time_format(seconds: float, shown: str) -> None:
    assert format_wall_time(seconds) == shown


def test_context_narrowing_multiple_chunks_and_insertion(tmp_path: Path) -> None:
    source = (
        "class A:\n    def run(self):\n        return 1\n\n"
        "class B:\n    def run(self):\n        return 1\n\n    def stop(self):\n        pass\n"
    )
    (tmp_path / "m.py").write_text(source)
    patch = wrap(
        "*** Update File: m.py\n@@ class B:\n@@     def run(self):\n"
        "-        return 1\n+        return 2\n"
        "@@ def stop(self):\n-        pass\n+        return 0\n@@\n+# end"
    )
    run(patch, tmp_path)
    assert (tmp_path / "m.py").read_text() == source.replace(
        "        return 1\n\n    def stop(self):\n        pass\n",
        "        return 2\n\n    def stop(self):\n        return 0\n# end\n",
    )


def test_end_of_file_chunk_matches_the_last_occurrence(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x\nmid\nx\n")
    run(wrap("*** Update File: f\n@@\n-x\n+LAST\n*** End of File"), tmp_path)
    assert (tmp_path / "f").read_text() == "x\nmid\nLAST\n"


def test_trailing_blank_pattern_line_and_missing_final_newline(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("a\nb")
    plan = plan_patch(wrap("*** Update File: f\n@@\n a\n-b\n+c\n"), str(tmp_path))
    # The blank line after "+c" is part of the chunk; it only matches once dropped.
    assert plan.ops[0].new_content == "a\nc\n"
    assert plan.changes()[0]["diff"] == (
        "@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n"
    )


def test_whitespace_and_punctuation_tolerant_matching(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("  if x:   \n\tsay(\u201cok\u201d)\u00a0\u2014 done\n")
    run(wrap('*** Update File: f\n@@\n if x:\n-say("ok") - done\n+say("fine")'), tmp_path)
    assert (tmp_path / "f").read_text() == 'if x:\nsay("fine")\n'


def test_distant_changes_make_separate_hunks(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("".join(f"{n}\n" for n in range(1, 11)))
    plan = plan_patch(wrap("*** Update File: f\n@@\n-2\n+two\n@@\n-9\n+nine"), str(tmp_path))
    assert plan.changes()[0]["diff"] == (
        "@@ -1,3 +1,3 @@\n 1\n-2\n+two\n 3\n@@ -8,3 +8,3 @@\n 8\n-9\n+nine\n 10\n"
    )


def test_paths_absolute_and_normalised(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    target = tmp_path / "abs.txt"
    patch = wrap(f"*** Add File: ../sub/./rel.txt\n+r\n*** Add File: {target}\n+a")
    plan = plan_patch(patch, str(tmp_path / "sub"))
    assert [op.path for op in plan.ops] == [str(tmp_path / "sub" / "rel.txt"), str(target)]
    apply_plan(plan)
    assert success_output(plan).endswith(f"A ../sub/./rel.txt\nA {target}\n")
    assert target.read_text() == "a\n"


def test_later_hunks_see_earlier_ones(tmp_path: Path) -> None:
    patch = wrap("*** Add File: n.txt\n+one\n*** Update File: n.txt\n@@\n-one\n+two")
    run(patch, tmp_path)
    assert (tmp_path / "n.txt").read_text() == "two\n"


def test_add_overwrites_and_move_overwrites(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("old a\n")
    (tmp_path / "src").write_text("s\n")
    (tmp_path / "dst").write_text("d\n")
    run(
        wrap("*** Add File: a\n+new a\n*** Update File: src\n*** Move to: dst\n@@\n-s\n+S"),
        tmp_path,
    )
    assert tree(tmp_path) == {"a": b"new a\n", "dst": b"S\n"}


def test_move_onto_itself_keeps_the_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("a\n")
    plan = plan_patch(wrap("*** Update File: f\n*** Move to: ./f\n@@\n-a\n+b"), str(tmp_path))
    assert plan.ops[0].move_to is None
    apply_plan(plan)
    assert tree(tmp_path) == {"f": b"b\n"}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            "*** Update File: missing.txt\n@@\n-a\n+b",
            "Failed to read file to update {root}/missing.txt: "
            "No such file or directory (os error 2)",
        ),
        (
            "*** Delete File: missing.txt",
            "Failed to read {root}/missing.txt: No such file or directory (os error 2)",
        ),
        ("*** Delete File: adir", "Failed to read {root}/adir: Is a directory (os error 21)"),
        (
            "*** Update File: f.txt\n@@ nope\n-a\n+b",
            "Failed to find context 'nope' in {root}/f.txt",
        ),
        (
            "*** Update File: f.txt\n@@\n-foo\n-bar\n+b",
            "Failed to find expected lines in {root}/f.txt:\nfoo\nbar",
        ),
        (
            "*** Update File: bin.dat\n@@\n-a\n+b",
            "Failed to read file to update {root}/bin.dat: stream did not contain valid UTF-8",
        ),
        (
            "*** Delete File: f.txt\n*** Update File: f.txt\n@@\n-a\n+b",
            "Failed to read file to update {root}/f.txt: No such file or directory (os error 2)",
        ),
    ],
)
def test_verification_failures_write_nothing(tmp_path: Path, body: str, detail: str) -> None:
    (tmp_path / "f.txt").write_text("a\n")
    (tmp_path / "adir").mkdir()
    (tmp_path / "bin.dat").write_bytes(b"\xff\xfe\n")
    before = tree(tmp_path)
    # A good hunk first proves a later failure also discards earlier work.
    patch = wrap("*** Add File: new/dir/file.txt\n+x\n" + body)
    with pytest.raises(PatchError) as info:
        plan_patch(patch, str(tmp_path))
    assert info.value.message == "apply_patch verification failed: " + detail.format(root=tmp_path)
    assert tree(tmp_path) == before


def test_atomic_write_preserves_mode_and_leaves_no_temp_files(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("echo hi\n")
    script.chmod(0o751)
    inode = script.stat().st_ino
    mask = os.umask(0o022)
    os.umask(mask)
    run(
        wrap(
            "*** Update File: run.sh\n@@\n-echo hi\n+echo bye\n*** Add File: fresh.txt\n+f\n"
            "*** Update File: run.sh\n*** Move to: bin/run2.sh\n@@\n-echo bye\n+echo moved"
        ),
        tmp_path,
    )
    moved = tmp_path / "bin" / "run2.sh"
    assert stat.S_IMODE(moved.stat().st_mode) == 0o751
    assert moved.stat().st_ino != inode  # replaced by rename, not rewritten in place
    assert stat.S_IMODE((tmp_path / "fresh.txt").stat().st_mode) == 0o666 & ~mask
    assert tree(tmp_path) == {"bin": None, "bin/run2.sh": b"echo moved\n", "fresh.txt": b"f\n"}


def test_symlink_is_followed_and_kept(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_text("a\n")
    (tmp_path / "link.txt").symlink_to("real.txt")
    run(wrap("*** Update File: link.txt\n@@\n-a\n+b"), tmp_path)
    assert (tmp_path / "link.txt").is_symlink()
    assert (tmp_path / "real.txt").read_text() == "b\n"


def test_write_failure_names_the_path_and_cleans_up(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    plan = plan_patch(wrap("*** Add File: ok.txt\n+ok\n*** Add File: taken\n+x"), str(tmp_path))
    with pytest.raises(PatchApplyError) as info:
        apply_plan(plan)
    message = f"Failed to write file {tmp_path}/taken: Is a directory (os error 21)"
    assert info.value.message == message
    assert info.value.path == str(tmp_path / "taken")
    assert tree(tmp_path) == {"ok.txt": b"ok\n", "taken": None}  # no temp file left behind
    assert failure_output(info.value, 1.23) == (
        f"Exit code: 1\nWall time: 1.2 seconds\nOutput:\n{message}\n"
    )


def test_file_changed_after_planning_is_not_clobbered(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("a\n")
    plan = plan_patch(wrap("*** Update File: f\n@@\n-a\n+b"), str(tmp_path))
    (tmp_path / "f").write_text("a\nuser edit\n")
    with pytest.raises(PatchApplyError, match="changed on disk since the patch was verified"):
        apply_plan(plan)
    assert (tmp_path / "f").read_text() == "a\nuser edit\n"
