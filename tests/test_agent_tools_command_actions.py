"""commandActions (parse_command) and the argv quoting shown on commandExecution items.

OBSERVED lists what app-server 0.169 itself reported for ``/bin/bash -lc <script>`` run as
``thread/shellCommand`` in ``/ws`` (read paths are absolute, the other paths as written).
Every action produced here is also validated against the reference schema, inside an
``item/started`` notification carrying a ``commandExecution`` item.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from plugins_builtin.agent_tools.command_actions import parse_command, shlex_join, shlex_split
from tests.protocol.checker import ProtocolChecker, ProtocolViolation


def R(command: str, name: str, path: str) -> dict[str, Any]:
    return {"type": "read", "command": command, "name": name, "path": path}


def L(command: str, path: str | None) -> dict[str, Any]:
    return {"type": "listFiles", "command": command, "path": path}


def S(command: str, query: str | None, path: str | None) -> dict[str, Any]:
    return {"type": "search", "command": command, "query": query, "path": path}


def U(command: str) -> dict[str, Any]:
    return {"type": "unknown", "command": command}


def check_schema(checker: ProtocolChecker, actions: list[dict[str, Any]]) -> None:
    """Validate actions the only way the schema reaches them: on an item/started item."""
    item = {
        "type": "commandExecution",
        "id": "call_1",
        "command": "/bin/bash -lc ls",
        "cwd": "/ws",
        "processId": None,
        "source": "agent",
        "status": "inProgress",
        "commandActions": actions,
        "aggregatedOutput": None,
        "exitCode": None,
        "durationMs": None,
    }
    params = {"threadId": "thr", "turnId": "turn", "startedAtMs": 1, "item": item}
    checker.check_server_frame({"method": "item/started", "params": params}, {})


OBSERVED = [
    ("cat a.txt | head -5", [R("cat a.txt", "a.txt", "/ws/a.txt")]),
    ("echo hi && cat b.txt", [R("cat b.txt", "b.txt", "/ws/b.txt")]),
    ("nl -ba a.txt | sed -n '1,10p'", [R("nl -ba a.txt | sed -n '1,10p'", "a.txt", "/ws/a.txt")]),
    ("sed -n '1,20p' src/a.rs", [R("sed -n '1,20p' src/a.rs", "a.rs", "/ws/src/a.rs")]),
    ("sed -n 5p a.txt", [R("sed -n 5p a.txt", "a.txt", "/ws/a.txt")]),
    ("head -n40 a.txt", [R("head -n40 a.txt", "a.txt", "/ws/a.txt")]),
    ("head -c 100 a.txt", [U("head -c 100 a.txt")]),
    ("tail -n 30 a.txt", [R("tail -n 30 a.txt", "a.txt", "/ws/a.txt")]),
    ("tail -n +10 a.txt", [R("tail -n +10 a.txt", "a.txt", "/ws/a.txt")]),
    ("tail -20 a.txt", [U("tail -20 a.txt")]),
    ("tail a.txt", [R("tail a.txt", "a.txt", "/ws/a.txt")]),
    ("cat a.txt b.txt", [U("cat a.txt b.txt")]),
    ("cat", [U("cat")]),
    (
        "bat --theme TwoDark README.md",
        [R("bat --theme TwoDark README.md", "README.md", "/ws/README.md")],
    ),
    ("ls", [L("ls", None)]),
    ("ls -la src", [L("ls -la src", "src")]),
    ("eza --color=always src", [L("eza '--color=always' src", "src")]),
    ("rg -n foo src", [S("rg -n foo src", "foo", "src")]),
    ("rg foo", [S("rg foo", "foo", None)]),
    ("rg --version", [S("rg --version", None, None)]),
    ("rg --files", [L("rg --files", None)]),
    ("rg --files webview/src | head -n 50", [L("rg --files webview/src", "webview")]),
    ("rg -g '*.py' foo src", [S("rg -g '*.py' foo src", "foo", "src")]),
    ("rg -l TODO src", [S("rg -l TODO src", "TODO", "src")]),
    ("grep -rn bar .", [S("grep -rn bar .", "bar", ".")]),
    ("grep -e foo -r src", [S("grep -e foo -r src", "foo", "src")]),
    ("git grep TODO src", [S("git grep TODO src", "TODO", "src")]),
    ("git ls-files src", [L("git ls-files src", "src")]),
    ("git status", [U("git status")]),
    ("ag foo src", [S("ag foo src", "foo", "src")]),
    ("fd foo", [S("fd foo", "foo", None)]),
    ("fd src/", [L("fd src/", "src")]),
    ("fd", [L("fd", None)]),
    ("fd -e py", [L("fd -e py", None)]),
    ("find . -name '*.py'", [S("find . -name '*.py'", "*.py", ".")]),
    ("find src -type f", [L("find src -type f", "src")]),
    ("find", [L("find", None)]),
    ("ls > out.txt", [U("ls > out.txt")]),
    ("echo $HOME", [U("echo $HOME")]),
    ("echo $(pwd)", [U("echo $(pwd)")]),
    ("ls && echo done", [U("ls && echo done")]),
    ("python3 -c 'print(1)'", [U("python3 -c 'print(1)'")]),
    ("cd sub && cat x.txt", [R("cat x.txt", "x.txt", "/ws/sub/x.txt")]),
    ("cd sub; ls", [L("ls", None)]),
    ("cd sub && bar", [U("cd sub && bar")]),
    ("cat a.txt || true", [R("cat a.txt", "a.txt", "/ws/a.txt")]),
    ("true", [U("true")]),
    ("ls | wc -l", [L("ls", None)]),
    ("git status | wc -l", [U("git status | wc -l")]),
    (
        "cat a.txt && cat b.txt",
        [R("cat a.txt", "a.txt", "/ws/a.txt"), R("cat b.txt", "b.txt", "/ws/b.txt")],
    ),
    ("echo   hi", [U("echo   hi")]),
    ("cat 'my file.txt'", [R("cat 'my file.txt'", "my file.txt", "/ws/my file.txt")]),
    ('rg -n "navigate-to-route" -S', [S("rg -n navigate-to-route -S", "navigate-to-route", None)]),
    ("ls -la | sed -n '1,120p'", [L("ls -la", None)]),
    ("cat a.txt | xargs echo", [R("cat a.txt", "a.txt", "/ws/a.txt")]),
    ("awk '{print $1}' a.txt", [R("awk '{print $1}' a.txt", "a.txt", "/ws/a.txt")]),
    ('echo "$HOME"', [U('echo "$HOME"')]),
    ("ls sub/*.py", [U("ls sub/*.py")]),
    ("FOO=1 ls", [U("FOO=1 ls")]),
    ("ls 2>/dev/null", [U("ls 2>/dev/null")]),
    ("python3 x.py && cat a.txt", [U("python3 x.py && cat a.txt")]),
    ("cat a.txt && python3 x.py", [U("cat a.txt && python3 x.py")]),
    (
        "sed -n '1,20p' a.txt && rg foo",
        [R("sed -n '1,20p' a.txt", "a.txt", "/ws/a.txt"), S("rg foo", "foo", None)],
    ),
    ("bash -lc 'cat a.txt'", [U("bash -lc 'cat a.txt'")]),
    ("ls -la ~", [U("ls -la ~")]),
    ("grep -c foo a.txt | wc -l", [S("grep -c foo a.txt", "foo", "a.txt")]),
    ("printf 'x'", [U("printf 'x'")]),
    ("ls -I target src", [L("ls -I target src", "src")]),
    ("rg foo -- src", [S("rg foo -- src", "foo", "src")]),
    ("cd .. && cat a.txt", [R("cat a.txt", "a.txt", "/a.txt")]),
    ("cat ../a.txt", [R("cat ../a.txt", "a.txt", "/a.txt")]),
    ("cat /etc/hostname", [R("cat /etc/hostname", "hostname", "/etc/hostname")]),
    ("cd /tmp && cat a.txt", [R("cat a.txt", "a.txt", "/tmp/a.txt")]),
    ("head -n 40", [U("head -n 40")]),
    ("rg foo && rg bar", [S("rg foo", "foo", None), S("rg bar", "bar", None)]),
    ("ls src && rg foo src", [L("ls src", "src"), S("rg foo src", "foo", "src")]),
    ("git log --oneline | head", [U("git log --oneline | head")]),
    ("cat <<EOF\nhi\nEOF", [U("cat <<EOF\nhi\nEOF")]),
    ("(ls)", [U("(ls)")]),
    ("ls;", [L("'ls;'", None)]),
    ("echo hi # comment", [U("echo hi # comment")]),
    ("ls\nls sub", [L("ls", None), L("ls sub", "sub")]),
    ("cat a.txt && echo done", [U("cat a.txt && echo done")]),
    ('cat "a b.txt"', [R("cat 'a b.txt'", "a b.txt", "/ws/a b.txt")]),
    ("rg 'a|b' src/x", [S("rg 'a|b' src/x", "a|b", "x")]),
    ("sed -n '1,20p;30p' a.txt", [U("sed -n '1,20p;30p' a.txt")]),
    ("sed -n '/foo/p' a.txt", [U("sed -n '/foo/p' a.txt")]),
    ("sed 's/a/b/' a.txt", [U("sed 's/a/b/' a.txt")]),
    ("cat a.txt | sed -n '1,5p'", [R("cat a.txt | sed -n '1,5p'", "a.txt", "/ws/a.txt")]),
    ("cd sub", []),
    ("cd sub && cat ../a.txt", [R("cat ../a.txt", "a.txt", "/ws/a.txt")]),
    ("cd ./sub/ && cat x", [R("cat x", "x", "/ws/sub/x")]),
    ("grep foo", [S("grep foo", "foo", None)]),
    ("grep -n foo src/a.py src/b.py", [S("grep -n foo src/a.py src/b.py", "foo", "a.py")]),
    ("rg --files | nl -ba | foo", [U("rg --files | nl -ba | foo")]),
    ("cat a.txt | grep foo", [R("cat a.txt", "a.txt", "/ws/a.txt"), S("grep foo", "foo", None)]),
    ("ls src | grep py", [L("ls src", "src"), S("grep py", "py", None)]),
    ("true && cat a.txt", [R("cat a.txt", "a.txt", "/ws/a.txt")]),
    ("rg -A 3 foo src", [S("rg -A 3 foo src", "foo", "src")]),
    ("grep --include=*.py -rn foo src", [U("grep --include=*.py -rn foo src")]),
    ("find . -path '*/x/*'", [S("find . -path '*/x/*'", "*/x/*", ".")]),
    ("find . -type f -name x -o -name y", [S("find . -type f -name x -o -name y", "x", ".")]),
    ("du -sh *", [U("du -sh *")]),
    ("head -1 a.txt", [U("head -1 a.txt")]),
    ("head -n 5 a.txt b.txt", [R("head -n 5 a.txt b.txt", "a.txt", "/ws/a.txt")]),
    ("cat -- a.txt", [R("cat -- a.txt", "a.txt", "/ws/a.txt")]),
    ("ls -- -x", [L("ls -- -x", "-x")]),
    ("cat a.txt | head -n 5 | tail -n 2", [R("cat a.txt", "a.txt", "/ws/a.txt")]),
    ("git -C sub status", [U("git -C sub status")]),
    ("cd sub || exit 1", [U("cd sub || exit 1")]),
    ("cd sub && cat x && cd .. && cat y", [R("cat x", "x", "/ws/sub/x"), R("cat y", "y", "/ws/y")]),
    ("nl -ba", [U("nl -ba")]),
    ("ls a\\ b", [U("ls a\\ b")]),
    ('ls "a\\"b"', [U('ls "a\\"b"')]),
    ('ls "a\\\\b"', [U('ls "a\\\\b"')]),
    ('ls "a\\nb"', [L('ls "a\\\\nb"', "nb")]),
    ("ls a[1]", [U("ls a[1]")]),
    ("ls a~b", [U("ls a~b")]),
    ("ls a#b", [U("ls a#b")]),
    ("ls a=b", [L("ls 'a=b'", "a=b")]),
    ("ls !x", [L("ls '!x'", "!x")]),
    ("ls a!b", [L("ls 'a!b'", "a!b")]),
    ("! ls", [U("! ls")]),
    ("ls {a,b}", [U("ls {a,b}")]),
    ("ls {}", [U("ls {}")]),
    ("ls a,b", [L("ls 'a,b'", "a,b")]),
    ("ls ^x", [U("ls ^x")]),
    ("ls a\\\nb", [L("ls ab", "a")]),
    ('ls ""', [L("ls ''", "")]),
    ('ls """"', [U('ls """"')]),
    ("ls ''", [L("ls ''", "")]),
    ('ls -g"*.py"', [L("ls '-g*.py'", None)]),
    ("ls a?b", [U("ls a?b")]),
    ("ls é", [L("ls 'é'", "é")]),
    ("ls a&&ls b", [L("ls a", "a"), L("ls b", "b")]),
    ("ls a;ls b", [L("ls a", "a"), L("ls b", "b")]),
    ("ls a|wc", [L("ls a", "a")]),
    ("ls a & ls b", [U("ls a & ls b")]),
    ("ls a |& wc", [U("ls a |& wc")]),
    ("ls && ls", [L("ls", None)]),
    ("ls\n\nls b", [L("ls", None), L("ls b", "b")]),
    ("ls ;", [L("ls", None)]),
    ("ls 'a'\"b\"c", [L("ls abc", "abc")]),
    ('ls "a b"c', [L("ls 'a bc'", "a bc")]),
    ("ls -- -", [L("ls -- -", "-")]),
    ("ls /", [L("ls /", "")]),
    ("ls ~/x", [U("ls ~/x")]),
    ('ls "~"', [L("ls '~'", "~")]),
    ("ls a\\", [U("ls a\\")]),
    ("ls $x", [U("ls $x")]),
    ("cat a.txt | head -n 5 &", [U("cat a.txt | head -n 5 &")]),
    ("ls a\tb", [L("ls a b", "a")]),
    ("ls -la;", [L("ls '-la;'", None)]),
    ("ls ; ls b", [L("ls", None), L("ls b", "b")]),
    ("find . -name x -exec cat {} \\;", [U("find . -name x -exec cat {} \\;")]),
    ('ls "a*"', [L("ls 'a*'", "a*")]),
    ('ls "a\'b"', [L('ls "a\'b"', "a'b")]),
    ('ls --x="a b"', [L("ls '--x=a b'", None)]),
    ('ls "$(pwd)"', [U('ls "$(pwd)"')]),
    ("ls a b | head", [L("ls a b", "a")]),
    ("cat a.txt | sed -n 1,5p", [R("cat a.txt | sed -n 1,5p", "a.txt", "/ws/a.txt")]),
    ("python3 -c 'import os; os.walk(\".\")'", [L("python3 -c 'import os; os.walk(\".\")'", None)]),
    ("less -p TODO README.md", [R("less -p TODO README.md", "README.md", "/ws/README.md")]),
    ("git grep -l TODO src", [S("git grep -l TODO src", "TODO", "src")]),
    ("fd -t f foo src", [S("fd -t f foo src", "foo", "src")]),
    (
        "rg -l zzzqqq_nomatch | xargs perl -pi -e 's/a/b/'",
        [U("rg -l zzzqqq_nomatch | xargs perl -pi -e 's/a/b/'")],
    ),
    ("rg --files | nl -ba", [L("rg --files", None)]),
    ("cat a.txt | nl -ba", [R("cat a.txt", "a.txt", "/ws/a.txt")]),
    ("grep -f pats.txt src", [S("grep -f pats.txt src", "pats.txt", "src")]),
    ("grep -e foo -e bar src", [S("grep -e foo -e bar src", "foo", "src")]),
    ("git grep -n foo -- src", [S("git grep -n foo -- src", "foo", "src")]),
    ("rg -e foo src", [S("rg -e foo src", "foo", "src")]),
    ("sed -n '1,5p' a.txt b.txt", [R("sed -n '1,5p' a.txt b.txt", "a.txt", "/ws/a.txt")]),
    ("nl -s '  ' a.txt", [R("nl -s '  ' a.txt", "a.txt", "/ws/a.txt")]),
    ("awk -F: '{print $1}' a.txt", [R("awk -F: '{print $1}' a.txt", "a.txt", "/ws/a.txt")]),
    ("ls -l --color=auto src", [L("ls -l '--color=auto' src", "src")]),
    ("echo hi && echo bye && cat a.txt", [R("cat a.txt", "a.txt", "/ws/a.txt")]),
    ("cat a.txt && nl -ba", [R("cat a.txt", "a.txt", "/ws/a.txt")]),
    ("grep foo a.txt | cut -d: -f1 | sort | uniq -c", [S("grep foo a.txt", "foo", "a.txt")]),
    ("head -c 10 a.txt | od -c", [U("head -c 10 a.txt | od -c")]),
    ("fd . src", [S("fd . src", ".", "src")]),
    ("find src -name '*.rs' -type f", [S("find src -name '*.rs' -type f", "*.rs", "src")]),
    ("find -name x", [S("find -name x", "x", "x")]),
    ("find ( -name x )", [U("find ( -name x )")]),
    ("git diff && cat a.txt", [U("git diff && cat a.txt")]),
    ("rg foo src/ build/", [S("rg foo src/ build/", "foo", "src")]),
    ("ls packages/app/node_modules/", [L("ls packages/app/node_modules/", "app")]),
    ("cat src", [R("cat src", "src", "/ws/src")]),
    ("cat src/build/dist", [R("cat src/build/dist", "src/build/dist", "/ws/src/build/dist")]),
    ("cat webview\\\\src", [U("cat webview\\\\src")]),
    (
        "cat 'C:\\\\x\\\\y.txt'",
        [R('cat "C:\\\\\\\\x\\\\\\\\y.txt"', "y.txt", "/ws/C:\\\\x\\\\y.txt")],
    ),
    ("git ls-files --exclude target src", [L("git ls-files --exclude target src", "src")]),
    ("cd -- -weird && cat foo.txt", [R("cat foo.txt", "foo.txt", "/ws/-weird/foo.txt")]),
    ("cd dir1 dir2 && cat foo.txt", [R("cat foo.txt", "foo.txt", "/ws/dir2/foo.txt")]),
    ("cd sub && cd /abs && cat x", [R("cat x", "x", "/abs/x")]),
    ("true && true", []),
    ("true; ls", [L("ls", None)]),
    ("echo a | rg foo", [S("rg foo", "foo", None)]),
    ("yes | head -n 3", [U("yes | head -n 3")]),
    ("sed -n '3,1p' a.txt", [R("sed -n '3,1p' a.txt", "a.txt", "/ws/a.txt")]),
    ("sed -n 'p' a.txt", [U("sed -n 'p' a.txt")]),
    ("sed -n '10p' -- a.txt", [R("sed -n 10p -- a.txt", "a.txt", "/ws/a.txt")]),
    ("sed -n -f script.sed a.txt", [U("sed -n -f script.sed a.txt")]),
    ("sed -i -n '1p' a.txt", [U("sed -i -n '1p' a.txt")]),
    ("sed -n '1,5p'", [U("sed -n '1,5p'")]),
    ("grep -A 3 -B 2 foo src", [S("grep -A 3 -B 2 foo src", "foo", "src")]),
    ("grep -- -foo src", [S("grep -- -foo src", "-foo", "src")]),
    ("rg --max-depth 2 foo", [S("rg --max-depth 2 foo", "foo", None)]),
    ("rg --glob=*.rs foo src", [U("rg --glob=*.rs foo src")]),
    ("rg -t rust foo src", [S("rg -t rust foo src", "foo", "src")]),
    ("head -n 5 -- a.txt", [R("head -n 5 -- a.txt", "a.txt", "/ws/a.txt")]),
    (
        "python -c 'import glob; glob.glob(\"*\")'",
        [L("python -c 'import glob; glob.glob(\"*\")'", None)],
    ),
    ("python3 script.py", [U("python3 script.py")]),
    ("sed -E -n 1p a.txt", [R("sed -E -n 1p a.txt", "a.txt", "/ws/a.txt")]),
    ("sed -n 1p -i a.txt", [U("sed -n 1p -i a.txt")]),
    ("sed --quiet 1p a.txt", [U("sed --quiet 1p a.txt")]),
    ("sed -ne 1p a.txt", [U("sed -ne 1p a.txt")]),
    ("sed -n -e 1p -e 2p a.txt", [R("sed -n -e 1p -e 2p a.txt", "a.txt", "/ws/a.txt")]),
    ("sed -n --in-place 1p a.txt", [U("sed -n --in-place 1p a.txt")]),
    ("sed -n -f x 1p a.txt", [R("sed -n -f x 1p a.txt", "a.txt", "/ws/a.txt")]),
    ("cat a.txt | sed -i -n 1p", [U("cat a.txt | sed -i -n 1p")]),
]


@pytest.mark.parametrize(("script", "expected"), OBSERVED)
def test_matches_reference(script: str, expected: list, checker: ProtocolChecker) -> None:
    actions = parse_command(["/bin/bash", "-lc", script], "/ws")
    assert actions == expected
    check_schema(checker, actions)


def test_schema_check_rejects_a_bad_action(checker: ProtocolChecker) -> None:
    with pytest.raises(ProtocolViolation):
        check_schema(checker, [{"type": "read", "command": "cat a"}])


@pytest.mark.parametrize(
    "argv",
    [
        ["bash", "-c", "cat a.txt"],
        ["/usr/bin/zsh", "-lc", "cat a.txt"],
        ["/bin/sh", "-c", "cat a.txt"],
        ["zsh", "-c", "cat a.txt"],
    ],
)
def test_shell_wrappers(argv: list[str]) -> None:
    assert parse_command(argv, "/ws") == [R("cat a.txt", "a.txt", "/ws/a.txt")]


def test_other_programs_are_not_unwrapped(checker: ProtocolChecker) -> None:
    argv = ["fish", "-c", "cat a.txt"]
    assert parse_command(argv, "/ws") == [U("fish -c 'cat a.txt'")]
    argv = ["/bin/bash", "-lc", "cat a.txt", "extra"]
    assert parse_command(argv, "/ws") == [U("/bin/bash -lc 'cat a.txt' extra")]
    check_schema(checker, parse_command(argv))


def test_powershell_script_is_unknown() -> None:
    argv = ["pwsh", "-NoProfile", "-Command", "Get-ChildItem -Recurse"]
    assert parse_command(argv, "/ws") == [U("Get-ChildItem -Recurse")]
    assert parse_command(["powershell.exe", "-c", "dir"]) == [U("dir")]


def test_bare_argv(checker: ProtocolChecker) -> None:
    assert parse_command(["cat", "a.txt"], "/ws") == [R("cat a.txt", "a.txt", "/ws/a.txt")]
    assert parse_command(["ls", "-la", "src/"]) == [L("ls -la src/", "src")]
    assert parse_command(["rg", "-n", "foo", "src"]) == [S("rg -n foo src", "foo", "src")]
    assert parse_command(["git", "status"]) == [U("git status")]
    assert parse_command(["python3", "x.py", "a b"]) == [U("python3 x.py 'a b'")]
    # Connector words in a bare argv still split it, and cd/echo are handled as in scripts.
    argv = ["cd", "sub", "&&", "echo", "hi", "&&", "cat", "x"]
    assert parse_command(argv, "/ws") == [R("cat x", "x", "/ws/sub/x")]
    assert parse_command(["yes", "|", "cat", "x"], "/ws") == [R("cat x", "x", "/ws/x")]
    assert parse_command([]) == [U("")]
    for argv in (["cat", "a.txt"], ["git", "status"], ["cd", "x"]):
        check_schema(checker, parse_command(argv, "/ws"))


def test_read_paths_without_cwd_stay_relative() -> None:
    argv = ["bash", "-lc", "cd sub && cat ../x/./y.txt"]
    assert parse_command(argv) == [R("cat ../x/./y.txt", "y.txt", "sub/../x/./y.txt")]
    assert parse_command(argv, Path("/ws")) == [R("cat ../x/./y.txt", "y.txt", "/ws/x/y.txt")]


def test_results_are_fresh_dicts() -> None:
    first = parse_command(["bash", "-lc", "cat a.txt"], "/ws")
    first[0]["path"] = "changed"
    assert parse_command(["bash", "-lc", "cat a.txt"], "/ws")[0]["path"] == "/ws/a.txt"


# The item `command` of `/bin/bash -lc <cmd>` as 0.169 showed it, for tricky characters.
JOINED = [
    ("true", "/bin/bash -lc true"),
    ("true # !x", "/bin/bash -lc 'true # !x'"),
    ("true # ^x", "/bin/bash -lc 'true # ''^x'"),
    ("^true", "/bin/bash -lc '^true'"),
    ("true # a'b\"c", '/bin/bash -lc "true # a\'b\\"c"'),
    ("true # $x", "/bin/bash -lc 'true # $x'"),
    ("true # `x`", "/bin/bash -lc 'true # `x`'"),
    ("true # a\\b", '/bin/bash -lc "true # a\\\\b"'),
    ("true # é", "/bin/bash -lc 'true # é'"),
    ("true # {a,b}", "/bin/bash -lc 'true # {a,b}'"),
    ("true # \tx", "/bin/bash -lc 'true # \tx'"),
    ("true # a'b!c", "/bin/bash -lc \"true # a'b\"'!c'"),
    ("true # a'b$c", "/bin/bash -lc \"true # a'b\"'$c'"),
    ("true # a'^b", "/bin/bash -lc \"true # a'\"'^b'"),
    ("true # a\\b'c\"d$e", "/bin/bash -lc \"true # a\\\\b'c\\\"d\"'$e'"),
    ("find . -name '*.py'", "/bin/bash -lc \"find . -name '*.py'\""),
    ("ls", "/bin/bash -lc ls"),
]


@pytest.mark.parametrize(("cmd", "joined"), JOINED)
def test_shlex_join_matches_reference(cmd: str, joined: str) -> None:
    assert shlex_join(["/bin/bash", "-lc", cmd]) == joined


def test_shlex_join_edge_cases() -> None:
    assert shlex_join([]) == ""
    assert shlex_join(["a", ""]) == "a ''"
    assert (
        shlex_join(["--color=always", "5%", "a,b", "@x+:/.-_]"])
        == "'--color=always' '5%' 'a,b' @x+:/.-_]"
    )
    assert shlex_join(["^"]) == "'^'"
    assert shlex_join(["a\0b"]) == "<command included NUL byte>"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", []),
        ('a \'b c\' "d\\"e" f\\ g', ["a", "b c", 'd"e', "f g"]),
        ("x # comment\ny", ["x", "y"]),
        ("a#b", ["a#b"]),
        ("ls -la;", ["ls", "-la;"]),
        ("a\\\nb", ["ab"]),
        ('"\\$x \\q"', ["$x \\q"]),
        ("'open", None),
        ('"open', None),
        ("trailing\\", None),
    ],
)
def test_shlex_split(text: str, words: list[str] | None) -> None:
    assert shlex_split(text) == words
