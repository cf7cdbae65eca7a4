"""Generated JSON Schema: valid, self-contained, and faithful to the reference."""

from __future__ import annotations

import json
import subprocess
import sys

import attrs
import jsonschema
import pytest

from kernel import RegistrationConflict, StartupError
from kernel import method as declare_method
from kernel.bootstrap import build_kernel
from kernel.rpc.converter import WireConverter
from kernel.rpc.registry import Registry
from kernel.schema import BUNDLE_NAME, build_schema
from tests.conftest import REPO, subprocess_env
from tests.protocol.checker import SCHEMA_PATH

REFERENCE = json.loads(SCHEMA_PATH.read_text())


def reference_validator(ref: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator({"$ref": ref, "definitions": REFERENCE["definitions"]})


@pytest.fixture
def files(tmp_path):
    kernel = build_kernel(home=tmp_path, plugins=["diagnostics", "echo", "probe"])
    return {flag: build_schema(kernel.registry, flag) for flag in (False, True)}


def test_every_file_is_valid_draft7_and_self_contained(files):
    for documents in files.values():
        for name, document in documents.items():
            jsonschema.Draft7Validator.check_schema(document)
            # Every $ref resolves inside the document itself.
            text = json.dumps(document)
            for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
                target = ref.rsplit("/", 1)[1]
                assert target in document.get("definitions", {}), (name, ref)


def test_layout_follows_the_reference(files):
    names = set(files[True])
    assert {
        "ClientRequest.json",
        "ClientNotification.json",
        "ServerRequest.json",
        "ServerNotification.json",
        "RequestId.json",
        "JSONRPCMessage.json",
        BUNDLE_NAME,
    } <= names
    assert {
        "v2/InitializeParams.json",
        "v2/InitializeResponse.json",
        "v2/ServerDiagnosticsResponse.json",
        "v2/EchoParams.json",
    } <= names


def test_experimental_methods_and_fields_only_with_the_flag(files):
    def methods(documents, union):
        return {v["properties"]["method"]["enum"][0] for v in documents[union]["oneOf"]}

    assert "server/diagnostics" not in methods(files[False], "ClientRequest.json")
    assert "server/diagnostics" in methods(files[True], "ClientRequest.json")
    assert "probe/previewTick" not in methods(files[False], "ServerNotification.json")
    stable = files[False][BUNDLE_NAME]["definitions"]["GatedParams"]["properties"]
    full = files[True][BUNDLE_NAME]["definitions"]["GatedParams"]["properties"]
    assert "preview" not in stable and "preview" in full


@pytest.mark.parametrize(
    ("ours", "reference", "samples"),
    [
        (
            "InitializeParams",
            "#/definitions/InitializeParams",
            [
                {"clientInfo": {"name": "n", "version": "1"}},
                {
                    "clientInfo": {"name": "n", "version": "1", "title": None},
                    "capabilities": {"experimentalApi": True, "optOutNotificationMethods": ["a"]},
                },
                {"clientInfo": {"name": "n", "version": "1"}, "capabilities": None},
                {"clientInfo": {"name": "n"}},
                {"clientInfo": {"name": 1, "version": "1"}},
                {"capabilities": {}},
                {
                    "clientInfo": {"name": "n", "version": "1"},
                    "capabilities": {"experimentalApi": "yes"},
                },
                {
                    "clientInfo": {"name": "n", "version": "1"},
                    "capabilities": {"optOutNotificationMethods": [1]},
                },
            ],
        ),
        (
            "InitializeResponse",
            "#/definitions/InitializeResponse",
            [
                {
                    "userAgent": "u",
                    "codexHome": "/h",
                    "platformFamily": "unix",
                    "platformOs": "linux",
                },
                {"userAgent": "u", "codexHome": "/h", "platformFamily": "unix"},
                {
                    "userAgent": 1,
                    "codexHome": "/h",
                    "platformFamily": "unix",
                    "platformOs": "linux",
                },
            ],
        ),
        (
            "ServerDiagnosticsResponse",
            "#/definitions/v2/ServerDiagnosticsResponse",
            [
                {"process": {"id": 1}, "gauges": []},
                {
                    "process": {"id": 1, "residentMemoryBytes": 5, "physicalFootprintBytes": None},
                    "gauges": [{"name": "g", "value": 3}],
                },
                {"process": {}, "gauges": []},
                {"process": {"id": 1}, "gauges": [{"name": "g"}]},
                {"process": {"id": "1"}, "gauges": []},
            ],
        ),
    ],
)
def test_our_schema_agrees_with_the_reference_on_samples(files, ours, reference, samples):
    mine = jsonschema.Draft7Validator(files[True][f"v2/{ours}.json"])
    theirs = reference_validator(reference)
    for sample in samples:
        assert mine.is_valid(sample) == theirs.is_valid(sample), sample


def test_two_types_with_one_name_are_refused_at_registration():
    first = attrs.make_class("Params", {"a": attrs.field(type=str)})
    second = attrs.make_class("Params", {"b": attrs.field(type=int)})
    nested = attrs.make_class("Outer", {"inner": attrs.field(type=second)})
    registry = Registry(WireConverter())
    registry.registrar("one").method("one/m", lambda p, c: None, params=first, result=None)
    # The same type again is fine.
    registry.registrar("one").method("one/again", lambda p, c: None, params=first, result=None)
    with pytest.raises(RegistrationConflict) as err:
        registry.registrar("two").method("two/m", lambda p, c: None, params=nested, result=None)
    assert "type name 'Params'" in str(err.value) and "(of one)" in str(err.value)
    assert "'two/m' of 'two'" in str(err.value)
    build_schema(registry)  # what was accepted still builds


def test_kernel_run_fails_early_on_a_type_name_clash(tmp_path):
    first = attrs.make_class("Options", {"a": attrs.field(type=str)})
    second = attrs.make_class("Options", {"b": attrs.field(type=int)})

    class One:
        @declare_method("one/get", params=first, result=None)
        def get(self, params, ctx):
            return None

    class Two:
        @declare_method("two/get", params=second, result=None)
        def get(self, params, ctx):
            return None

    with pytest.raises(StartupError, match="type name 'Options'"):
        build_kernel(
            home=tmp_path, plugins=["one", "two"], extra_plugins={"one": One(), "two": Two()}
        )


def test_schema_of_every_built_in_plugin_and_the_example(tmp_path):
    out = tmp_path / "schema"
    run = subprocess.run(
        [sys.executable, "-m", "kernel", "schema", "--out", str(out), "--experimental"],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(tmp_path / "home", {"PYTHONPATH": str(REPO)}),  # no test plugins
    )
    assert run.returncode == 0, run.stderr
    bundle = json.loads((out / "kernel_protocol.schemas.json").read_text())
    reference = REFERENCE["definitions"]["v2"]
    ours = set(bundle["definitions"])
    for name in (
        "FsWriteFileResponse",
        "FsReadFileParams",
        "CommandExecTerminalSize",
        "EchoParams",
    ):
        assert name in ours, name
    # Every fs/command/process type we publish has the reference's name.
    for name in ours:
        if name.startswith(("Fs", "CommandExec", "Process")):
            assert name in reference, f"{name} is not a reference type name"


def test_schema_command_writes_the_files(tmp_path):
    out = tmp_path / "schema"
    run = subprocess.run(
        [sys.executable, "-m", "kernel", "schema", "--out", str(out), "--plugins", "echo"],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(tmp_path / "home"),
    )
    assert run.returncode == 0, run.stderr
    request = json.loads((out / "ClientRequest.json").read_text())
    assert [v["properties"]["method"]["enum"][0] for v in request["oneOf"]] == [
        "initialize",
        "echo/echo",
    ]
    message = {"id": 1, "method": "echo/echo", "params": {"message": "hi", "delayMs": 5}}
    jsonschema.validate(message, request)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"id": 1, "method": "echo/echo", "params": {}}, request)
