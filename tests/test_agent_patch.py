"""``apply_patch`` end to end: items, the turn diff, approvals, failures, both tool forms."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.support.agent import methods
from tests.support.model_server import function_call, text
from tests.support.tools import exec_call, item_notes, output_of, patch_call, tools_server

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

EDIT = """*** Begin Patch
*** Add File: hello.txt
+hello
+world
*** Update File: notes.txt
@@
 one
-two
+TWO
 three
*** Delete File: old.txt
*** End Patch"""


def workspace(tmp_path):
    (tmp_path / "notes.txt").write_text("one\ntwo\nthree\n")
    (tmp_path / "old.txt").write_text("bye\n")
    return tmp_path


async def test_a_patch_in_the_workspace_applies_without_asking(serve, model_server, tmp_path):
    root = workspace(tmp_path)
    model_server.responses.extend([patch_call(EDIT, "p1"), text("done")])
    asked = []

    async def answer(params):
        asked.append(params)
        return {"decision": "decline"}

    async with tools_server(serve, model_server) as agent:
        agent.client.on_request("item/fileChange/requestApproval", answer)
        thread = await agent.start(cwd=str(root), sandbox="workspace-write")
        _, notes = await agent.turn(thread["thread"]["id"])
    assert asked == []
    assert (root / "hello.txt").read_text() == "hello\nworld\n"
    assert (root / "notes.txt").read_text() == "one\nTWO\nthree\n"
    assert not (root / "old.txt").exists()
    output = output_of(model_server, "p1")
    assert output.startswith("Exit code: 0\nWall time: ")
    assert output.endswith(
        "Output:\nSuccess. Updated the following files:\nA hello.txt\nM notes.txt\nD old.txt\n"
    )
    about = item_notes(notes, "p1")
    assert [m for m, _ in about] == ["item/started", "item/completed"]
    changes = about[-1][1]["item"]["changes"]
    assert [c["path"] for c in changes] == sorted(
        str(root / n) for n in ("hello.txt", "notes.txt", "old.txt")
    )
    by_path = {c["path"]: c for c in changes}
    assert by_path[str(root / "hello.txt")] == {
        "path": str(root / "hello.txt"),
        "kind": {"type": "add"},
        "diff": "hello\nworld\n",
    }
    assert by_path[str(root / "notes.txt")]["diff"] == "@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n"
    assert about[-1][1]["item"]["status"] == "completed"
    names = methods(notes)
    assert names.index("turn/diff/updated") == names.index("item/completed[fileChange]") + 1
    diff = next(n.params["diff"] for n in notes if n.method == "turn/diff/updated")
    assert "diff --git a/hello.txt b/hello.txt\nnew file mode 100644\n" in diff
    assert "--- a/old.txt\n+++ /dev/null\n" in diff and "-two\n+TWO\n" in diff


async def test_outside_the_writable_roots_a_patch_asks(serve, model_server, tmp_path):
    root = workspace(tmp_path)
    model_server.responses.extend(
        [
            patch_call(EDIT, "p1"),
            patch_call(EDIT.replace("hello.txt", "again.txt"), "p2"),
            text("x"),
        ]
    )
    decisions = ["decline", "accept"]
    asked = []

    async def answer(params):
        asked.append(params)
        return {"decision": decisions.pop(0)}

    async with tools_server(serve, model_server) as agent:
        agent.client.on_request("item/fileChange/requestApproval", answer)
        thread = await agent.start(cwd=str(root), sandbox="read-only")
        _, notes = await agent.turn(thread["thread"]["id"])
    assert [a["itemId"] for a in asked] == ["p1", "p2"]
    assert asked[0]["reason"] is None and asked[0]["grantRoot"] is None
    assert output_of(model_server, "p1") == "patch rejected by user"
    declined = next(p for m, p in item_notes(notes, "p1") if m == "item/completed")["item"]
    assert declined["status"] == "declined"
    assert not (root / "hello.txt").exists() and (root / "again.txt").exists()


async def test_a_patch_that_does_not_verify_writes_nothing_and_makes_no_item(
    serve, model_server, tmp_path
):
    root = workspace(tmp_path)
    broken = EDIT.replace(" two", " zwei").replace("-two", "-zwei")
    model_server.responses.extend(
        [patch_call(broken, "p1"), patch_call("not a patch", "p2"), text("done")]
    )
    async with tools_server(serve, model_server) as agent:
        thread = await agent.start(cwd=str(root), sandbox="workspace-write")
        _, notes = await agent.turn(thread["thread"]["id"])
    assert output_of(model_server, "p1").startswith(
        f"apply_patch verification failed: Failed to find expected lines in {root}/notes.txt"
    )
    assert output_of(model_server, "p2") == (
        "apply_patch verification failed: invalid patch: The first line of the patch must be "
        "'*** Begin Patch'"
    )
    assert item_notes(notes, "p1") == [] and item_notes(notes, "p2") == []
    assert not (root / "hello.txt").exists() and (root / "old.txt").exists()


async def test_the_function_form_and_a_heredoc_through_exec_command(serve, model_server, tmp_path):
    root = workspace(tmp_path)
    add = "*** Begin Patch\n*** Add File: {name}\n+x\n*** End Patch"
    model_server.responses.extend(
        [
            function_call("apply_patch", json.dumps({"input": add.format(name="f.txt")}), "p1"),
            exec_call(f"apply_patch <<'EOF'\n{add.format(name='h.txt')}\nEOF", "p2"),
            text("done"),
        ]
    )
    async with tools_server(serve, model_server) as agent:
        thread = await agent.start(cwd=str(root), sandbox="workspace-write")
        _, notes = await agent.turn(thread["thread"]["id"])
    assert (root / "f.txt").read_text() == "x\n" and (root / "h.txt").read_text() == "x\n"
    assert "Success. Updated the following files:\nA f.txt\n" in output_of(model_server, "p1")
    heredoc = output_of(model_server, "p2")
    assert heredoc.startswith("Wall time: 0.0000 seconds\nOutput:\nExit code: 0\n")
    kinds = {m: p for m, p in item_notes(notes, "p2")}
    assert kinds["item/completed"]["item"]["type"] == "fileChange"  # not a command item


async def test_accept_for_session_covers_the_same_paths_later(serve, model_server, tmp_path):
    root = workspace(tmp_path)
    first = "*** Begin Patch\n*** Update File: notes.txt\n@@\n-one\n+ONE\n*** End Patch"
    second = "*** Begin Patch\n*** Update File: notes.txt\n@@\n-ONE\n+1\n*** End Patch"
    model_server.responses.extend([patch_call(first, "p1"), patch_call(second, "p2"), text("x")])
    asked = []

    async def answer(params):
        asked.append(params["itemId"])
        return {"decision": "acceptForSession"}

    async with tools_server(serve, model_server) as agent:
        agent.client.on_request("item/fileChange/requestApproval", answer)
        thread = await agent.start(cwd=str(root), sandbox="read-only")
        await agent.turn(thread["thread"]["id"])
    assert asked == ["p1"]
    assert (root / "notes.txt").read_text() == "1\ntwo\nthree\n"
