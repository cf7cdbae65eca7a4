"""The cumulative turn diff (``turn/diff/updated``) of apply_patch edits."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest

from plugins_builtin.agent_tools.patch import apply_plan, plan_patch
from plugins_builtin.agent_tools.turn_diff import TurnDiffTracker, find_git_root, git_blob_sha1

SHARED_VALIDATE = Path("/work/shared/protocol/validate.py")
VENDORED_SCHEMA = Path(__file__).parent / "protocol" / "codex-app-server-0.169.0.schema.json"
ZERO = "0" * 40
GIT = shutil.which("git")


def blob(data: bytes) -> str:
    """``git hash-object`` of ``data``, computed independently of the code under test."""
    return hashlib.sha1(b"blob " + str(len(data)).encode() + b"\x00" + data).hexdigest()


def wrap(body: str) -> str:
    return f"*** Begin Patch\n{body}\n*** End Patch\n"


def patch(tracker: TurnDiffTracker, cwd: Path, body: str) -> None:
    plan = plan_patch(wrap(body), str(cwd))
    tracker.before(plan)
    apply_plan(plan)


def check_turn_diff_notification(diff: str) -> None:
    params = {"threadId": "thr", "turnId": "turn", "diff": diff}
    if SHARED_VALIDATE.exists():
        spec = importlib.util.spec_from_file_location("reference_validate", SHARED_VALIDATE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.Protocol().check_notification("turn/diff/updated", params)
        return
    defs = json.loads(VENDORED_SCHEMA.read_text())["definitions"]
    schema = {"$ref": "#/definitions/v2/TurnDiffUpdatedNotification", "definitions": defs}
    jsonschema.Draft7Validator(schema).validate(params)


def test_blob_ids_match_git() -> None:
    for data in (b"", b"hello\n", b"no newline", bytes(range(256))):
        assert git_blob_sha1(data) == blob(data)
    assert git_blob_sha1(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"


def test_spec_example(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("line1\nline2\nline3\n")
    (tmp_path / "del.txt").write_text("bye\n")
    (tmp_path / "mv.txt").write_text("old\n")
    tracker = TurnDiffTracker(str(tmp_path))
    assert tracker.unified_diff() == ""
    patch(
        tracker,
        tmp_path,
        "*** Add File: hello.txt\n+hello\n+world\n*** Update File: a.txt\n@@\n line1\n-line2\n"
        "+LINE2\n line3\n*** Delete File: del.txt\n*** Update File: mv.txt\n"
        "*** Move to: moved/new.txt\n@@\n-old\n+new",
    )
    diff = tracker.unified_diff()
    a_old, a_new = blob(b"line1\nline2\nline3\n"), blob(b"line1\nLINE2\nline3\n")
    bye, hello = blob(b"bye\n"), blob(b"hello\nworld\n")
    old, new = blob(b"old\n"), blob(b"new\n")
    assert diff == (
        f"diff --git a/a.txt b/a.txt\nindex {a_old}..{a_new}\n"
        "--- a/a.txt\n+++ b/a.txt\n@@ -1,3 +1,3 @@\n line1\n-line2\n+LINE2\n line3\n"
        "diff --git a/del.txt b/del.txt\ndeleted file mode 100644\n"
        f"index {bye}..{ZERO}\n--- a/del.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n"
        "diff --git a/hello.txt b/hello.txt\nnew file mode 100644\n"
        f"index {ZERO}..{hello}\n--- /dev/null\n+++ b/hello.txt\n"
        "@@ -0,0 +1,2 @@\n+hello\n+world\n"
        f"diff --git a/mv.txt b/moved/new.txt\nindex {old}..{new}\n"
        "--- a/mv.txt\n+++ b/moved/new.txt\n@@ -1 +1 @@\n-old\n+new\n"
    )
    check_turn_diff_notification(diff)


def test_diff_is_cumulative_with_three_lines_of_context(tmp_path: Path) -> None:
    original = "".join(f"{n}\n" for n in range(1, 21))
    (tmp_path / "f").write_text(original)
    tracker = TurnDiffTracker(str(tmp_path))
    patch(tracker, tmp_path, "*** Update File: f\n@@\n-2\n+two")
    patch(tracker, tmp_path, "*** Update File: f\n@@\n-15\n+fifteen")
    patch(tracker, tmp_path, "*** Update File: f\n@@\n-two\n+TWO")
    now = (tmp_path / "f").read_bytes()
    assert tracker.unified_diff() == (
        f"diff --git a/f b/f\nindex {blob(original.encode())}..{blob(now)}\n--- a/f\n+++ b/f\n"
        "@@ -1,5 +1,5 @@\n 1\n-2\n+TWO\n 3\n 4\n 5\n"
        "@@ -12,7 +12,7 @@\n 12\n 13\n 14\n-15\n+fifteen\n 16\n 17\n 18\n"
    )


def test_net_empty_changes_drop_out(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("a\n")
    tracker = TurnDiffTracker(str(tmp_path))
    patch(tracker, tmp_path, "*** Update File: f\n@@\n-a\n+b\n*** Add File: tmp.txt\n+x")
    assert tracker.unified_diff() != ""
    patch(tracker, tmp_path, "*** Update File: f\n@@\n-b\n+a\n*** Delete File: tmp.txt")
    assert tracker.unified_diff() == ""
    assert tracker.touched() == [str(tmp_path / "f"), str(tmp_path / "tmp.txt")]


def test_paths_relative_to_the_git_root(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "sub").mkdir()
    outside = tmp_path / "outside.txt"
    assert find_git_root(str(repo / "sub")) == str(repo)
    tracker = TurnDiffTracker(str(repo / "sub"))
    patch(tracker, repo / "sub", f"*** Add File: x.txt\n+x\n*** Add File: {outside}\n+o")
    headers = [line for line in tracker.unified_diff().splitlines() if line.startswith("diff")]
    # A path outside the repository is shown absolute, as the reference does.
    assert headers == [f"diff --git a/{outside} b/{outside}", "diff --git a/sub/x.txt b/sub/x.txt"]


def test_modes_renames_and_binary(tmp_path: Path) -> None:
    (tmp_path / "tool.sh").write_text("echo\n")
    (tmp_path / "tool.sh").chmod(0o755)
    (tmp_path / "same.txt").write_text("keep\n")
    (tmp_path / "hop1").write_text("h\n")
    (tmp_path / "blob.bin").write_bytes(b"\x00\xff binary")
    tracker = TurnDiffTracker(str(tmp_path))
    patch(
        tracker,
        tmp_path,
        "*** Delete File: tool.sh\n*** Update File: same.txt\n*** Move to: renamed.txt\n@@\n keep\n"
        "*** Update File: hop1\n*** Move to: hop2\n@@\n-h\n+H\n*** Add File: blob.bin\n+text",
    )
    patch(tracker, tmp_path, "*** Update File: hop2\n*** Move to: d/hop3\n@@\n-H\n+HH")
    diff = tracker.unified_diff()
    bin_old, bin_new = blob(b"\x00\xff binary"), blob(b"text\n")
    hop_old, hop_new, echo = blob(b"h\n"), blob(b"HH\n"), blob(b"echo\n")
    assert diff == (
        f"diff --git a/blob.bin b/blob.bin\nindex {bin_old}..{bin_new}\n"
        "Binary files a/blob.bin and b/blob.bin differ\n"
        f"diff --git a/hop1 b/d/hop3\nindex {hop_old}..{hop_new}\n--- a/hop1\n+++ b/d/hop3\n"
        "@@ -1 +1 @@\n-h\n+HH\n"
        "diff --git a/same.txt b/renamed.txt\n"
        "similarity index 100%\nrename from same.txt\nrename to renamed.txt\n"
        "diff --git a/tool.sh b/tool.sh\ndeleted file mode 100755\n"
        f"index {echo}..{ZERO}\n--- a/tool.sh\n+++ /dev/null\n@@ -1 +0,0 @@\n-echo\n"
    )


def test_move_onto_an_existing_file_is_delete_plus_modify(tmp_path: Path) -> None:
    (tmp_path / "src").write_text("s\n")
    (tmp_path / "dst").write_text("d\n")
    tracker = TurnDiffTracker(str(tmp_path))
    patch(tracker, tmp_path, "*** Update File: src\n*** Move to: dst\n@@\n-s\n+S")
    headers = [line for line in tracker.unified_diff().splitlines() if line.startswith("diff")]
    assert headers == ["diff --git a/dst b/dst", "diff --git a/src b/src"]


def test_edit_through_a_symlink_shows_the_target(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_text("a\n")
    (tmp_path / "link.txt").symlink_to("real.txt")
    tracker = TurnDiffTracker(str(tmp_path))
    patch(tracker, tmp_path, "*** Update File: link.txt\n@@\n-a\n+b")
    headers = [line for line in tracker.unified_diff().splitlines() if line.startswith("diff")]
    assert headers == ["diff --git a/real.txt b/real.txt"]


def test_missing_final_newline_is_marked(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("a\nb")
    tracker = TurnDiffTracker(str(tmp_path))
    patch(tracker, tmp_path, "*** Update File: f\n@@\n a\n-b\n+c")
    assert tracker.unified_diff().endswith(
        "@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n"
    )


def _git(cwd: Path, *args: str) -> str:
    assert GIT is not None
    result = subprocess.run(
        [GIT, *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _files(root: Path) -> dict[str, tuple[bytes, bool]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), bool(p.stat().st_mode & 0o111))
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


@pytest.mark.skipif(GIT is None, reason="git is not installed")
def test_git_applies_the_turn_diff(tmp_path: Path) -> None:
    work, check = tmp_path / "work", tmp_path / "check"
    work.mkdir()
    (work / "main.py").write_text("".join(f"line {n}\n" for n in range(1, 40)))
    (work / "tail.txt").write_text("x\ny")
    (work / "run.sh").write_text("echo 1\n")
    (work / "run.sh").chmod(0o755)
    (work / "gone.txt").write_text("bye\n")
    (work / "old.txt").write_text("o\n")
    (work / "plain.txt").write_text("p\n")
    (work / "empty.txt").write_text("")
    shutil.copytree(work, check)
    _git(check, "init", "-q")
    tracker = TurnDiffTracker(str(work))
    patch(
        tracker,
        work,
        "*** Update File: main.py\n@@\n line 2\n-line 3\n+line three\n@@ line 30\n-line 31\n"
        "*** Update File: tail.txt\n@@\n-y\n+why\n*** Delete File: gone.txt\n"
        "*** Add File: pkg/new.py\n+print(1)\n+\n*** Update File: run.sh\n@@\n-echo 1\n+echo 2\n"
        "*** Update File: old.txt\n*** Move to: dir/new.txt\n@@\n-o\n+n",
    )
    patch(
        tracker,
        work,
        "*** Update File: main.py\n@@\n-line 38\n+LINE 38\n*** Update File: plain.txt\n"
        "*** Move to: moved/plain.txt\n@@\n p\n*** Delete File: empty.txt\n*** Add File: e2\n+",
    )
    diff = tracker.unified_diff()
    check_turn_diff_notification(diff)
    for name in ("main.py", "tail.txt", "run.sh", "gone.txt", "old.txt"):
        assert f"index {_git(check, 'hash-object', name).strip()}.." in diff
    (tmp_path / "turn.diff").write_text(diff)
    _git(check, "apply", "--check", str(tmp_path / "turn.diff"))
    _git(check, "apply", str(tmp_path / "turn.diff"))
    assert _files(check) == _files(work)
