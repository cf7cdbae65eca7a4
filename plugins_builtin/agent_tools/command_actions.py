"""``commandActions`` of a ``commandExecution`` item: what a command reads, lists or searches.

Clients show "Read foo.py" / "Search TODO in src" rather than the raw command, so this only
has to be right for common simple commands and says ``unknown`` otherwise, as app-server
0.169 does. Recognised: ``[bash|zsh|sh, -c|-lc, script]`` (or a bare argv) whose script
is plain words and quotes joined by ``&&``, ``||``, ``;``, ``|`` or newlines; variables,
globs, ``~``, redirections, subshells, heredocs, comments, backslash escapes, assignments
and keywords make it ``unknown``. Reads: cat bat batcat less more head tail nl awk
``sed -n``; listings: ls eza exa tree du, ``rg --files``, ``git ls-files``, find/fd
without a pattern, ``python -c`` walking the tree; searches: rg rga ripgrep-all ag ack pt
grep egrep fgrep, ``git grep``, ``find -name``, ``fd PATTERN``. ``cd`` prefixes later
reads, pipeline formatters (wc sort head...) are ignored, and any unknown part makes the
whole result one ``unknown``. A regex lexer stands in for the reference's bash grammar;
``command`` strings are quoted like the Rust ``shlex`` crate, not Python's ``shlex.join``.
"""

from __future__ import annotations

import itertools
import os
import posixpath
import re
from collections.abc import Sequence
from typing import Any

__all__ = ["parse_command", "shlex_join", "shlex_split"]

Action = dict[str, Any]
_Parsed = tuple[Action, list[str]]  # an action and the words it came from

_CONNECTORS = frozenset({"&&", "||", "|", ";"})


_PLAIN, _SINGLE, _DOUBLE = 1, 2, 4
_PLAIN_CHARS = frozenset("+-./:@]_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _styles(ch: str) -> int:
    """Quoting styles that can hold ``ch`` ("^" and "!" are history expansion in bash)."""
    plain = _PLAIN if ch in _PLAIN_CHARS else 0
    return plain | (0 if ch in "'^\\" else _SINGLE) | (0 if ch in "`$!^" else _DOUBLE)


def _quote(word: str) -> str:
    """Quote one word: runs of characters go bare, in single or in double quotes."""
    out, index = [], 0
    while index < len(word):
        # "^" is only safe right after an opening single quote.
        allowed, end = (_SINGLE, index + 1) if word[index] == "^" else (7, index)
        while end < len(word) and allowed & _styles(word[end]):
            allowed, end = allowed & _styles(word[end]), end + 1
        chunk = word[index:end]
        if allowed & _PLAIN:
            out.append(chunk)
        elif allowed & _SINGLE:
            out.append(f"'{chunk}'")
        else:
            out.append('"' + re.sub(r'([$`"\\])', r"\\\1", chunk) + '"')
        index = end
    return "".join(out) or "''"


def shlex_join(words: Sequence[str]) -> str:
    """Join argv for display exactly as the reference does (item ``command``, actions)."""
    if any("\0" in word for word in words):
        return "<command included NUL byte>"
    return " ".join(_quote(word) for word in words)


_SH_TOKEN = re.compile(
    r"""[ \t\n]+|#[^\n]*|(?:'[^']*'|"(?:[^"\\]|\\[\s\S])*"|\\[\s\S]|[^ \t\n'"\\])+"""
)
_SH_PART = re.compile(r"""'([^']*)'|"((?:[^"\\]|\\[\s\S])*)"|\\([\s\S])|([^'"\\]+)""")
_DQ_ESCAPE = re.compile(r"\\([\s\S])")


def _unquote_part(part: re.Match[str]) -> str:
    single, double, escaped, plain = part.groups()
    if double is not None:  # only \$ \` \" \\ and a line break are escapes in there
        return _DQ_ESCAPE.sub(
            lambda e: "" if e[1] == "\n" else e[1] if e[1] in '$`"\\' else e[0], double
        )
    if escaped is not None:
        return "" if escaped == "\n" else escaped
    return single if single is not None else plain


def shlex_split(text: str) -> list[str] | None:
    """Split like the Rust shlex crate (POSIX words, ``#`` comments); None if unbalanced."""
    words: list[str] = []
    index = 0
    while index < len(text):
        token = _SH_TOKEN.match(text, index)
        if token is None:
            return None
        index = token.end()
        if token[0][0] not in " \t\n#":
            words.append("".join(_unquote_part(part) for part in _SH_PART.finditer(token[0])))
    return words


# A plain-script token: blanks (a backslash-newline is one), a line break, a connector, or
# a word of bare characters and quotes without expansions. Bare characters exclude those
# starting expansions, globs, redirections, groups or comments; what matches nothing here
# (``&``, ``$``, ``*``, ``>``, ``\x``...) is unsupported.
_BARE = r"[^ \t\n\r\f\v;&|'\"\\$`()<>{}\[\]*?~^#]"
_DQ = r'"[^"$`\\]*(?:\\[^"$`\\\n][^"$`\\]*)*"'
_PLAIN_TOKEN = re.compile(
    rf"(?P<blank>(?:[ \t]|\\\n)+)|(?P<op>\n|&&|\|\||[|;])|(?P<word>(?:'[^']*'|{_DQ}|{_BARE})+)"
)
_WORD_PART = re.compile(rf"'([^']*)'|\"([^\"]*)\"|({_BARE}+)")
_RESERVED = frozenset(
    "if then else elif fi case esac for select while until do done function time coproc "
    "! [[ ]] declare typeset export readonly local unset unsetenv".split()
)
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")


def _simple(words: list[str], name_quoted: bool) -> bool:
    """A command name must be a bare word, not a keyword or an assignment."""
    return not (name_quoted or words[0] in _RESERVED or _ASSIGNMENT.match(words[0]))


def _plain_commands(script: str) -> list[list[str]] | None:
    """The simple commands of ``script`` in order, or None when it is not plain enough."""
    commands: list[list[str]] = []
    current: list[str] = []
    index, name_quoted, needs_command = 0, False, False
    while index < len(script):
        token = _PLAIN_TOKEN.match(script, index)
        if token is None or script.startswith((";;", ";&", "|&"), index):
            return None  # case terminators and |& look like connectors but are not
        index = token.end()
        if token["word"] is not None:
            parts = [
                next(p for p in m.groups() if p is not None) for m in _WORD_PART.finditer(token[0])
            ]
            if len(parts) > 1 and not "".join(parts):
                return None  # e.g. `""""`, which the reference refuses
            name_quoted = bool(set("'\"") & set(token[0])) if not current else name_quoted
            current.append("".join(parts))
        elif token["op"] is not None:
            if not current:
                if token["op"] == "\n":
                    continue  # blank line, or a line break after && / || / |
                return None
            if not _simple(current, name_quoted):
                return None
            commands.append(current)
            current, needs_command = [], token["op"] in ("&&", "||", "|")
    if current:
        return [*commands, current] if _simple(current, name_quoted) else None
    return None if needs_command else commands


def _shortpath(path: str) -> str:
    """Last meaningful component (skipping build/dist/node_modules/src) for display."""
    trimmed = path.replace("\\", "/").rstrip("/")
    for part in reversed(trimmed.split("/")):
        if part and part not in ("build", "dist", "node_modules", "src"):
            return part
    return trimmed


def _action(kind: str, words: list[str], path: str | None = None, **extra: Any) -> Action:
    """A read/listFiles/search action, keys in the order the reference emits them."""
    shown = None if path is None else _shortpath(path)
    if kind == "read":
        return {"type": kind, "command": shlex_join(words), "name": shown, "path": path}
    return {"type": kind, "command": shlex_join(words), **extra, "path": shown}


def _search(words: list[str], found: list[str]) -> Action:
    """A search for the first operand in the second."""
    query = found[0] if found else None
    return _action("search", words, found[1] if len(found) > 1 else None, query=query)


def _unknown(command: str) -> Action:
    return {"type": "unknown", "command": command}


def _digits(text: str) -> bool:
    return all(ch in "0123456789" for ch in text)  # like Rust's all(): true when empty


def _operands(args: list[str], valued: tuple[str, ...], dashed: bool = True) -> list[str]:
    """Operands: flags and the values of ``valued`` flags skipped. After ``--`` everything
    counts, except flag-like words when ``dashed`` is false (as the reference does there)."""
    out: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest = args[index + 1 :]
            return out + (rest if dashed else [word for word in rest if word[:1] != "-"])
        if arg in valued and index + 1 < len(args):
            index += 1
        elif not arg.startswith("-"):
            out.append(arg)
        index += 1
    return out


def _first_read(args: list[str], tail: bool) -> str | None:
    """The file of ``head``/``tail``: after ``-n N``/``-nN`` (tail: ``+N``), or a lone operand."""

    def count_ok(text: str) -> bool:
        value = text[1:] if tail and text.startswith("+") else text
        return _digits(value) and (bool(value) or not tail)

    if args and args[0] == "-n":
        valid = len(args) > 1 and count_ok(args[1])
        rest = args[2:]
    elif args and args[0].startswith("-n"):
        valid, rest = count_ok(args[0][2:]), args
    else:
        valid, rest = False, args
    found = next((arg for arg in rest if not arg.startswith("-")), None) if valid else None
    if found is not None:
        return found
    return args[0] if len(args) == 1 and not args[0].startswith("-") else None


def _sed_range(text: str) -> bool:
    """A sed script that only prints a line or a range: ``Np`` or ``M,Np``."""
    bounds = text[:-1].split(",") if text.endswith("p") else []
    return 1 <= len(bounds) <= 2 and all(bound and _digits(bound) for bound in bounds)


def _sed_in_place(args: list[str]) -> bool:
    return any(arg.startswith("-i") or arg.startswith("--in-place") for arg in args)


def _sed_file(args: list[str]) -> str | None:
    """The file of ``sed -n <N|M,N>p [file]``, when the script is only such a range."""
    if "-n" not in args or _sed_in_place(args):
        return None
    ranged = any(
        arg in ("-e", "--expression") and index + 1 < len(args) and _sed_range(args[index + 1])
        for index, arg in enumerate(args)
    ) or any(not arg.startswith("-") and _sed_range(arg) for arg in args)
    rest = _operands(args, ("-e", "-f", "--expression", "--file"), dashed=False)
    if not ranged or not rest:
        return None
    if _sed_range(rest[0]):
        return rest[1] if len(rest) > 1 else None
    return rest[0]


def _awk_file(args: list[str]) -> str | None:
    """The data file of an awk call (not the program text)."""
    rest = _operands(args, _AWK_VALUED, dashed=False)
    if any(arg in ("-f", "--file") for arg in args):
        return rest[0] if rest else None
    return rest[1] if len(rest) > 1 else None


def _grep(words: list[str], args: list[str]) -> Action:
    """grep-like: the pattern comes from -e/-f or the first operand, the path follows."""
    operands: list[str] = []
    pattern: str | None = None
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            operands += args[index:]
            break
        if arg in ("-e", "--regexp", "-f", "--file"):
            if index < len(args):
                pattern = args[index] if pattern is None else pattern
                index += 1
        elif arg in _GREP_VALUED:
            index += 1
        elif not arg.startswith("-"):
            operands.append(arg)
    return _search(words, operands if pattern is None else [pattern, *operands])


# Flags whose value is a separate argument, per program (so the value is not an operand).
_LS_VALUED = {
    "ls": tuple("-I -w --block-size --format --time-style --color --quoting-style".split()),
    "eza": tuple("-I --ignore-glob --color --sort --time-style --time".split()),
    "exa": tuple("-I --ignore-glob --color --sort --time-style --time".split()),
    "tree": tuple("-L -P -I --charset --filelimit --sort".split()),
    "du": tuple("-d --max-depth -B --block-size --exclude --time-style".split()),
}
_BAT = "--theme --language --style --terminal-width --tabs --line-range --map-syntax"
_LESS = "-p -P -x -y -z -j --pattern --prompt --tabs --shift --jump-target"
_PAGER_VALUED = {"cat": (), "more": (), "bat": tuple(_BAT.split()), "less": tuple(_LESS.split())}
_PAGER_VALUED["batcat"] = _PAGER_VALUED["bat"]
_RG_VALUED = tuple("-g --glob --iglob -t --type --type-add --type-not -m --max-count".split())
_RG_VALUED += ("-A", "-B", "-C", "--context", "--max-depth")
_AG_VALUED = tuple("-G -g --file-search-regex --ignore-dir --ignore-file --path-to-ignore".split())
_FD_VALUED = tuple("-t --type -e --extension -E --exclude --search-path".split())
_AWK_VALUED = ("-F", "-v", "-f", "--field-separator", "--assign", "--file")
_WALK_MARKERS = ("os.walk", "os.listdir", "os.scandir", "glob.glob", "glob.iglob", "pathlib.Path")
_GREP_VALUED = tuple("-m --max-count -C --context -A --after-context -B --before-context".split())


def _summarize(words: list[str]) -> Action:
    """The action of one simple command (no connectors, no ``cd``)."""
    head, args = words[0], words[1:]
    if head in _LS_VALUED:
        return _action("listFiles", words, next(iter(_operands(args, _LS_VALUED[head])), None))
    if head in ("rg", "rga", "ripgrep-all"):
        rest = _operands(args, _RG_VALUED, dashed=False)
        if "--files" in args:
            return _action("listFiles", words, next(iter(rest), None))
        return _search(words, rest)
    if head == "git" and args[:1] == ["grep"]:
        return _grep(words, args[1:])
    if head == "git" and args[:1] == ["ls-files"]:
        valued = ("--exclude", "--exclude-from", "--pathspec-from-file")
        return _action("listFiles", words, next(iter(_operands(args[1:], valued)), None))
    if head in ("grep", "egrep", "fgrep"):
        return _grep(words, args)
    if head in ("ag", "ack", "pt"):
        return _search(words, _operands(args, _AG_VALUED, dashed=False))
    if head == "fd":
        rest = _operands(args, _FD_VALUED, dashed=False)
        if len(rest) == 1 and (rest[0] in (".", "..") or "/" in rest[0] or "\\" in rest[0]):
            return _action("listFiles", words, rest[0])
        return _search(words, rest) if rest else _action("listFiles", words)
    if head == "find":
        root = next((a for a in args if a[:1] != "-" and a not in ("!", "(", ")")), None)
        names = [i for i, arg in enumerate(args) if arg in ("-name", "-iname", "-path", "-regex")]
        if names and names[0] + 1 < len(args):
            return _action("search", words, root, query=args[names[0] + 1])
        return _action("listFiles", words, root)
    path: str | None = None
    if head in _PAGER_VALUED:
        operands = _operands(args, _PAGER_VALUED[head])
        path = operands[0] if len(operands) == 1 else None
    elif head in ("head", "tail"):
        path = _first_read(args, tail=head == "tail")
    elif head == "awk":
        path = _awk_file(args)
    elif head == "nl":
        path = next(iter(_operands(args, ("-s", "-w", "-v", "-i", "-b"), dashed=False)), None)
    elif head == "sed":
        path = _sed_file(args)
    elif re.fullmatch(r"python[23]?|python[23]\..*", head) and "-c" in args[:-1]:
        script = args[args.index("-c") + 1]
        if any(marker in script for marker in _WALK_MARKERS) or ".rglob(" in script:
            return _action("listFiles", words)
    return _unknown(shlex_join(words)) if path is None else _action("read", words, path)


def _is_formatting(words: list[str]) -> bool:
    """Pipeline helpers that only reshape output (they carry no file of their own)."""
    head, args = words[0], words[1:]
    if head in ("wc", "tr", "cut", "sort", "uniq", "tee", "column", "yes", "printf"):
        return True
    if head == "xargs":
        return not _xargs_mutates(args)
    if head == "awk":
        return _awk_file(args) is None
    if head in ("head", "tail"):
        if len(args) < 2:
            return not args or args[0].startswith("-")
        count = args[1][1:] if head == "tail" and args[1].startswith("+") else args[1]
        return len(args) == 2 and args[0] in ("-n", "-c") and _digits(count)
    if head == "sed":
        return not _sed_in_place(args) and _sed_file(args) is None
    return False


def _xargs_mutates(args: list[str]) -> bool:
    """Whether xargs runs an in-place editor (``sed -i``, ``perl -pi``, ``rg --replace``)."""
    index = 0
    while index < len(args) and args[index].startswith("-") and args[index] != "--":
        valued = args[index] in ("-E", "-e", "-I", "-L", "-n", "-P", "-s")
        index += 2 if valued else 1
    sub = args[index + 1 :] if args[index : index + 1] == ["--"] else args[index:]
    if not sub:
        return False
    head, rest = sub[0], sub[1:]
    in_place = any(arg.startswith(("-i", "-pi")) for arg in rest)
    if head in ("perl", "ruby"):
        return in_place
    if head == "sed":
        return in_place or "--in-place" in rest
    return head == "rg" and "--replace" in rest


def _cd_target(args: list[str]) -> str | None:
    """Where a ``cd`` goes: its last operand (or the one after ``--``)."""
    if "--" in args:
        rest = args[args.index("--") + 1 :]
        return rest[0] if rest else None
    return next((arg for arg in reversed(args) if not arg.startswith("-")), None)


def _join(base: str | None, path: str) -> str:
    return path if not base or path.startswith("/") else posixpath.join(base, path)


def _summarize_all(commands: list[list[str]]) -> list[_Parsed]:
    """Summaries in order; ``cd`` is dropped but prefixes the paths of later reads."""
    parsed: list[_Parsed] = []
    cwd: str | None = None
    for words in commands:
        if words[0] == "cd":
            target = _cd_target(words[1:])
            cwd = cwd if target is None else _join(cwd, target)
            continue
        action = _summarize(words)
        if action["type"] == "read" and cwd:
            action["path"] = _join(cwd, action["path"])
        parsed.append((action, words))
    return parsed


def _simplify(parsed: list[_Parsed]) -> list[_Parsed]:
    """Drop noise around the real work: a leading echo, ``true``, a bare ``nl -flags``."""
    parsed = list(parsed)
    while len(parsed) > 1:
        unknown = [i for i, (action, _) in enumerate(parsed) if action["type"] == "unknown"]
        noise = [i for i in unknown if parsed[i][1] == ["true"] or _bare_nl(parsed[i][1])]
        if unknown[:1] == [0] and parsed[0][1][0] == "echo":
            noise = [0]
        if not noise:
            break
        del parsed[noise[0]]
    return parsed


def _bare_nl(words: list[str]) -> bool:
    return words[0] == "nl" and all(word.startswith("-") for word in words[1:])


def _from_script(script: str) -> list[Action]:
    """Actions of a shell script (the ``-c``/``-lc`` argument)."""
    commands = _plain_commands(script)
    if not commands:
        return [_unknown(script)]
    kept = [words for words in commands if not _is_formatting(words)]
    if not kept:
        return [_unknown(script)]
    parsed = _summarize_all(kept)
    if len(parsed) > 1:
        parsed = _simplify([item for item in parsed if item[1] != ["true"]])
    tokens = shlex_split(script) or [script]
    if len(parsed) == 1 and parsed[0][0]["type"] != "unknown":
        action = parsed[0][0]
        if len(commands) == 1 and not _CONNECTORS.intersection(tokens):
            action["command"] = shlex_join(tokens)
        elif action["type"] == "read" and "|" in tokens:
            # A numbered/ranged read through a pipe is shown whole (`nl -ba f | sed -n 1,9p`).
            if any(tokens[i : i + 2] == ["sed", "-n"] for i in range(len(tokens))):
                action["command"] = script
    return [action for action, _ in parsed]


def _from_argv(argv: list[str]) -> list[Action]:
    """Actions of an argv run without a shell wrapper."""
    words = argv[2:] if argv[:1] in (["yes"], ["y"], ["no"], ["n"]) and argv[1:2] == ["|"] else argv
    runs = itertools.groupby(words, key=lambda word: word in _CONNECTORS)
    parsed = _summarize_all([list(run) for connector, run in runs if not connector])
    return [action for action, _ in _simplify(parsed)]


def _script_of(argv: Sequence[str]) -> tuple[str, bool] | None:
    """The script of a shell wrapper and whether it is a POSIX shell (else PowerShell)."""
    name = re.sub(r"\.exe$", "", os.path.basename(argv[0].replace("\\", "/"))).lower()
    if len(argv) == 3 and argv[1] in ("-c", "-lc") and name in ("bash", "zsh", "sh"):
        return argv[2], True
    if name in ("pwsh", "powershell") and len(argv) >= 3 and argv[-2].lower() in ("-c", "-command"):
        return argv[-1], False
    return None


def parse_command(argv: Sequence[str], cwd: str | os.PathLike[str] | None = None) -> list[Action]:
    """``CommandAction`` dicts for a command's argv (``[]`` when it only changes directory).

    ``read`` paths are joined to ``cwd`` and normalised when it is given (as on items);
    other paths stay as written, shortened for display.
    """
    if not argv:
        return [_unknown("")]
    wrapped = _script_of(argv)
    if wrapped is not None and not wrapped[1]:
        return [_unknown(wrapped[0])]
    script = None if wrapped is None else wrapped[0]
    actions = _from_script(script) if script is not None else _from_argv(list(argv))
    deduped: list[Action] = []
    for action in actions:
        if not deduped or deduped[-1] != action:
            deduped.append(action)
    if any(action["type"] == "unknown" for action in deduped):
        return [_unknown(script if script is not None else shlex_join(argv))]
    if cwd is not None:
        base = os.fspath(cwd)
        for action in deduped:
            if action["type"] == "read":
                action["path"] = posixpath.normpath(posixpath.join(base, action["path"]))
    return deduped
