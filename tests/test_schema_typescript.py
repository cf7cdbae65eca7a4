"""``kernel schema --ts``: TypeScript declarations that match the JSON Schema.

Two kinds of checks. Structural ones always run: every JSON Schema definition
has a TypeScript declaration of the same name, every property keeps its
name and whether it is required, and the request/notification unions list
every method. The compile checks run the TypeScript compiler
(``tsc --noEmit --strict``) over the generated files plus a small client that
narrows the unions on ``method``; ``tsc`` is taken from PATH or
``/tmp/kernel-tsc``, installed there with npm once if missing, and the compile
checks are skipped (with the reason) only if that fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kernel.bootstrap import build_kernel
from kernel.schema import BUNDLE_NAME, build_schema
from kernel.typescript import build_typescript
from tests.conftest import subprocess_env

TSC_PREFIX = Path("/tmp/kernel-tsc")
NPM_FLAGS = ("--no-audit", "--no-fund", "--no-save")
TSC_FLAGS = ("--noEmit", "--strict", "--target", "es2022", "--module", "esnext")
TSC_FLAGS += ("--moduleResolution", "bundler")
UNIONS = ("ClientRequest", "ClientNotification", "ServerRequest", "ServerNotification")
_FIELD = re.compile(r'^  (?:"([^"]+)"|([A-Za-z_$][\w$]*))(\??): ', re.MULTILINE)
_DOC = re.compile(r"/\*\*.*?\*/", re.DOTALL)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _find_tsc() -> tuple[str | None, str]:
    """A ``tsc`` executable, or None and why not."""
    on_path = shutil.which("tsc")
    if on_path:
        return on_path, ""
    cached = TSC_PREFIX / "node_modules" / ".bin" / "tsc"
    npm = shutil.which("npm")
    with _locked(TSC_PREFIX.with_name("kernel-tsc.lock")):
        if cached.exists():
            return str(cached), ""
        if npm is None:
            return None, "no tsc on PATH or in /tmp/kernel-tsc, and no npm to install it"
        try:
            install = subprocess.run(
                [npm, "install", "--prefix", str(TSC_PREFIX), *NPM_FLAGS, "typescript@5"],
                capture_output=True,
                text=True,
                timeout=300,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"npm install typescript@5 failed: {exc}"
        if not cached.exists():
            tail = (install.stderr or install.stdout).strip().splitlines()[-1:]
            return None, f"npm install typescript@5 failed: {' '.join(tail)}"
    return str(cached), ""


@pytest.fixture(scope="session")
def tsc() -> tuple[str | None, str]:
    """The compiler, or None and why; looked for (and installed) once per session."""
    return _find_tsc()


def compile_ts(
    tsc: tuple[str | None, str], root: Path, extra: dict[str, str] | None = None
) -> None:
    """``tsc --noEmit --strict`` over every ``.ts`` under ``root`` plus ``extra`` files.

    Call it last: without a compiler the rest of the test is skipped.
    """
    compiler, reason = tsc
    if compiler is None:
        pytest.skip(f"compile step skipped, TypeScript compiler unavailable: {reason}")
    for name, source in (extra or {}).items():
        (root / name).write_text(source)
    files = sorted(str(p) for p in root.rglob("*.ts"))
    run = subprocess.run(
        [compiler, *TSC_FLAGS, *files],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=root,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def write_tree(root: Path, sources: dict[str, str]) -> None:
    for relative, source in sources.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)


def declared_fields(source: str) -> dict[str, bool]:
    """Top-level fields of an object alias: name -> whether marked optional."""
    body = _DOC.sub("", source)
    return {m[1] or m[2]: m[3] == "?" for m in _FIELD.finditer(body)}


def assert_matches_schema(sources: dict[str, str], schema_files: dict[str, Any]) -> None:
    """The structural checks: names, fields, optionality, union methods."""
    definitions = schema_files[BUNDLE_NAME]["definitions"]
    by_name: dict[str, str] = {}
    for relative in sources:
        by_name.setdefault(Path(relative).stem, relative)
    for name, schema in definitions.items():
        assert name in by_name, f"no TypeScript file for {name}"
        relative = by_name[name]
        source = sources[relative]
        assert re.search(rf"^export type {name} =", source, re.MULTILINE), relative
        index = str(Path(relative).with_name("index.ts"))
        assert f'export type {{ {name} }} from "./{name}";' in sources[index], (index, name)
        if schema.get("type") == "object" and schema.get("properties"):
            required = set(schema.get("required", []))
            expected = {prop: prop not in required for prop in schema["properties"]}
            assert declared_fields(source) == expected, name
    for union in UNIONS:
        methods = [v["properties"]["method"]["enum"][0] for v in definitions[union]["oneOf"]]
        found = re.findall(r'^    "method": ("[^"\n]*"),$', sources[f"{union}.ts"], re.MULTILINE)
        assert [json.loads(m) for m in found] == methods, union


def _builtin_and_example_plugins(env: dict[str, str]) -> list[str]:
    run = subprocess.run(
        [sys.executable, "-m", "kernel", "plugins", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)
    names = [r["name"] for r in rows if r["distribution"] == "kernel-app-server"]
    assert "echo" in {r["name"] for r in rows}, "the example echo plugin is not installed"
    return [*names, "echo"]


CLIENT = """\
import type { ClientRequest, ServerNotification, RequestId, v2 } from "./out";

export function describe(request: ClientRequest): string {
  if (request.method === "echo/echo") {
    const message: string = request.params.message;
    const delay: number | undefined = request.params.delayMs;
    return `${message} ${delay ?? 0}`;
  }
  return request.method;
}

export function kinds(notification: ServerNotification): string {
  return notification.method;
}

export const minimal: v2.EchoParams = { message: "hi" };
export const id: RequestId = 7;
// @ts-expect-error: echo/echo needs params.message
export const missing: ClientRequest = { id: 1, method: "echo/echo", params: {} };
// @ts-expect-error: no such method
export const unknown: ClientRequest = { id: 1, method: "no/such", params: {} };
"""


@pytest.mark.parametrize("experimental", [False, True], ids=["stable", "experimental"])
def test_schema_ts_over_builtins_and_the_example(tmp_path, tsc, experimental):
    env = subprocess_env(tmp_path / "home")
    plugins = _builtin_and_example_plugins(env)
    out = tmp_path / "out"
    json_out = tmp_path / "json"
    base = [sys.executable, "-m", "kernel", "schema", "--plugins", ",".join(plugins)]
    base += ["--experimental"] if experimental else []
    run = subprocess.run(
        [*base, "--out", str(out), "--ts"], capture_output=True, text=True, timeout=120, env=env
    )
    assert run.returncode == 0, run.stderr
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.ts"))
    assert f"wrote {len(written)} TypeScript files to {out}" in run.stderr
    assert not list(out.rglob("*.json"))
    run = subprocess.run(
        [*base, "--out", str(json_out)], capture_output=True, text=True, timeout=120, env=env
    )
    assert run.returncode == 0, run.stderr
    schema_files = {
        p.relative_to(json_out).as_posix(): json.loads(p.read_text())
        for p in json_out.rglob("*.json")
    }
    sources = {relative: (out / relative).read_text() for relative in written}
    assert_matches_schema(sources, schema_files)
    assert {"index.ts", "v2/index.ts", "ClientRequest.ts", "v2/EchoParams.ts"} <= set(sources)
    assert 'export * as v2 from "./v2";' in sources["index.ts"]
    compile_ts(tsc, tmp_path, {"client.ts": CLIENT})


def test_the_cli_reports_the_file_count(tmp_path):
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, "-m", "kernel", "schema", "--out", str(out), "--ts", "--plugins", "echo"],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(tmp_path / "home"),
    )
    assert run.returncode == 0, run.stderr
    count = len(list(out.rglob("*.ts")))
    assert f"wrote {count} TypeScript files to {out}" in run.stderr
    request = (out / "ClientRequest.ts").read_text()
    assert '"method": "echo/echo",' in request and "params: EchoParams," in request


def test_methods_without_params_and_experimental_fields(tmp_path, tsc):
    kernel = build_kernel(home=tmp_path / "home", plugins=["diagnostics", "echo", "probe"])
    for experimental in (False, True):
        schema_files = build_schema(kernel.registry, experimental)
        sources = build_typescript(schema_files)
        assert_matches_schema(sources, schema_files)
        gated = declared_fields(sources["v2/GatedParams.ts"])
        assert ("preview" in gated) is experimental
        root = tmp_path / ("experimental" if experimental else "stable")
        write_tree(root, sources)
    # A request without params reads as `params?: undefined`, so `.params`
    # can be read on the union before narrowing, like the reference.
    assert "    params?: undefined,\n" in sources["ClientRequest.ts"]
    compile_ts(tsc, tmp_path / "stable")
    compile_ts(
        tsc,
        root,
        {
            "client.ts": 'import type { ClientRequest } from "./index";\n'
            "export const p = (r: ClientRequest): unknown => r.params;\n"
        },
    )


HANDMADE: dict[str, Any] = {
    BUNDLE_NAME: {
        "definitions": {
            "Color": {"enum": ["red", "green"], "type": "string", "description": "A color."},
            "Level": {"enum": [1, 2, 3], "type": "integer"},
            "Node": {
                "type": "object",
                "title": "Node",
                "description": "A tree node; comments may contain */ safely.",
                "properties": {
                    "color": {"allOf": [{"$ref": "#/definitions/Color"}], "description": "Hue."},
                    "level": {"anyOf": [{"$ref": "#/definitions/Level"}, {"type": "null"}]},
                    "children": {"type": "array", "items": {"$ref": "#/definitions/Node"}},
                    "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "pair": {"type": "array", "items": [{"type": "string"}, {"type": "number"}]},
                    "anything": True,
                    "kebab-key": {"type": ["string", "null"], "default": None},
                    "shape": {"$ref": "#/definitions/Shape"},
                    "both": {"allOf": [{"$ref": "#/definitions/Color"}, {"type": "string"}]},
                },
                "required": ["color", "children", "anything"],
            },
            "Shape": {
                "oneOf": [
                    {
                        "type": "object",
                        "properties": {"kind": {"const": "circle"}, "r": {"type": "number"}},
                        "required": ["kind", "r"],
                    },
                    {
                        "type": "object",
                        "properties": {"kind": {"const": "dot"}},
                        "required": ["kind"],
                    },
                ]
            },
            "Nothing": {"type": "object", "properties": {}},
        }
    },
    "v2/Node.json": {"$ref": "#/definitions/Node"},
}


def test_json_schema_constructs(tmp_path, tsc):
    sources = build_typescript(HANDMADE)
    node = sources["v2/Node.ts"]
    assert 'import type { Color } from "./Color";' in node
    assert 'import type { JsonValue } from "../serde_json/JsonValue";' in node
    assert "*\\/ safely" in node
    assert "   * Hue.\n   */\n  color: Color,\n" in node
    assert "  level?: Level | null,\n" in node
    assert "  children: Array<Node>,\n" in node
    assert "  counts?: { [key in string]?: number },\n" in node
    assert "  pair?: [string, number],\n" in node
    assert "  anything: JsonValue,\n" in node
    assert '  "kebab-key"?: string | null,\n' in node
    assert "  both?: Color & string,\n" in node
    assert sources["v2/Color.ts"].endswith('export type Color = "red" | "green";\n')
    assert sources["v2/Level.ts"].endswith("export type Level = 1 | 2 | 3;\n")
    assert sources["v2/Nothing.ts"].endswith("export type Nothing = Record<string, never>;\n")
    shape = sources["v2/Shape.ts"]
    assert '"kind": "circle",' in shape and "r?: undefined," in shape
    write_tree(tmp_path, sources)
    compile_ts(
        tsc,
        tmp_path,
        {
            "client.ts": 'import type { v2 } from "./index";\n'
            "export const area = (s: v2.Shape): number => (s.kind === 'circle' ? s.r : 0);\n"
            "export const n: v2.Node = { color: 'red', children: [], anything: null };\n"
        },
    )


def test_unsupported_input_is_refused():
    with pytest.raises(ValueError, match="cannot be used"):
        build_typescript({BUNDLE_NAME: {"definitions": {"Array": {"type": "string"}}}})
    with pytest.raises(ValueError, match="not defined"):
        build_typescript({BUNDLE_NAME: {"definitions": {"A": {"$ref": "#/definitions/Missing"}}}})
