"""The apply_patch tool specs sent to the model and the JSON argument form."""

from __future__ import annotations

import json

import pytest

from plugins_builtin.agent_tools.patch import PatchError, parse_patch
from plugins_builtin.agent_tools.patch_tool import (
    FREEFORM_SPEC,
    FUNCTION_SPEC,
    GRAMMAR,
    patch_text_from_function_arguments,
)


def wrap(body: str) -> str:
    return f"*** Begin Patch\n{body}\n*** End Patch\n"


def test_tool_specs() -> None:
    assert FREEFORM_SPEC["type"] == "custom" and FREEFORM_SPEC["name"] == "apply_patch"
    assert FREEFORM_SPEC["format"] == {"type": "grammar", "syntax": "lark", "definition": GRAMMAR}
    assert GRAMMAR.endswith("%import common.LF\n")
    params = FUNCTION_SPEC["parameters"]
    assert FUNCTION_SPEC["type"] == "function" and FUNCTION_SPEC["name"] == "apply_patch"
    assert params["required"] == ["input"] and params["additionalProperties"] is False
    assert params["properties"]["input"]["type"] == "string"
    json.dumps(FREEFORM_SPEC)
    json.dumps(FUNCTION_SPEC)


def test_grammar_accepts_the_patch_language() -> None:
    lark = pytest.importorskip("lark")
    parser = lark.Lark(GRAMMAR, parser="earley", lexer="dynamic")
    sample = wrap(
        "*** Add File: a\n+\n+x\n*** Delete File: d\n*** Update File: b\n*** Move to: c\n"
        "@@ f\n x\n-y\n+z\n \n*** End of File"
    )
    parser.parse(sample)
    assert len(parse_patch(sample)) == 3
    with pytest.raises(lark.exceptions.LarkError):
        parser.parse(wrap("*** Add File: a"))  # an added file needs at least one line


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{}", "failed to parse function arguments: missing field `input` at line 1 column 2"),
        (
            '{"x": 1}',
            "failed to parse function arguments: missing field `input` at line 1 column 8",
        ),
        ("[1]", "failed to parse function arguments: invalid type: sequence, expected an object"),
        (
            '{"input": 5}',
            "failed to parse function arguments: invalid type: number `5`, expected a string",
        ),
        (
            "{",
            "failed to parse function arguments: Expecting property name enclosed in double quotes",
        ),
        (
            '{"input": ""} x',
            "failed to parse function arguments: trailing characters at line 1 column 15",
        ),
    ],
)
def test_function_arguments_errors(raw: str, message: str) -> None:
    with pytest.raises(PatchError) as info:
        patch_text_from_function_arguments(raw)
    assert info.value.message.startswith(message)


def test_function_arguments_ok() -> None:
    assert patch_text_from_function_arguments(' {"input": "*** Begin Patch"} ') == "*** Begin Patch"
