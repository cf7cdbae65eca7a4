"""The wire converter: strict types, wire names, field paths, experimental gates."""

from __future__ import annotations

import enum
from typing import Any, Literal

import attrs
import pytest

from kernel import AbsolutePath, field
from kernel.rpc.converter import StructureError, WireConverter


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.frozen
class Leaf:
    first_name: str
    secret: str | None = field(default=None, experimental=True)


@attrs.frozen
class Root:
    some_path: AbsolutePath
    leaf: Leaf
    numbers: list[int] = attrs.field(factory=list)
    env: dict[str, str | None] = attrs.field(factory=dict)
    mode: Literal["a", "b"] = "a"
    color: Color = Color.RED
    ratio: float = 1.0
    custom: str = field(default="", wire="custom_name")
    maybe: bool | None = field(default=None, omit_none=True)
    anything: Any = None
    preview: int | None = field(default=None, experimental=True)


GOOD = {"somePath": "/tmp/x", "leaf": {"firstName": "Ada"}}


def problems(value: Any, experimental: bool = True) -> list[tuple[str, str]]:
    with pytest.raises(StructureError) as err:
        WireConverter().structure(value, Root, experimental=experimental)
    return [(p.path, p.message) for p in err.value.problems]


def test_camel_case_and_explicit_wire_names_round_trip():
    conv = WireConverter()
    value = conv.structure({**GOOD, "custom_name": "c", "ratio": 2}, Root)
    assert value.some_path == "/tmp/x" and value.custom == "c" and value.ratio == 2.0
    out = conv.unstructure(value)
    assert out["somePath"] == "/tmp/x" and out["custom_name"] == "c"
    assert "maybe" not in out and out["anything"] is None and out["color"] == "red"


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        (
            {"somePath": "relative/x"},
            ("somePath", "expected an absolute path, got relative path 'relative/x'"),
        ),
        ({"somePath": "/a\0b"}, ("somePath", "path contains a NUL byte")),
        ({"somePath": 5}, ("somePath", "expected an absolute path string, got integer")),
        ({"leaf": {}}, ("leaf.firstName", "missing required field")),
        ({"leaf": "x"}, ("leaf", "expected an object, got string")),
        ({"numbers": [1, "2"]}, ("numbers[1]", "expected an integer, got string")),
        ({"numbers": "12"}, ("numbers", "expected an array, got string")),
        ({"numbers": [True]}, ("numbers[0]", "expected an integer, got boolean")),
        ({"env": {"A": 1}}, ("env.A", "expected a string, got integer")),
        ({"env": []}, ("env", "expected an object, got array")),
        ({"mode": "c"}, ("mode", "expected one of 'a', 'b', got 'c'")),
        ({"color": "green"}, ("color", "expected one of 'red', 'blue', got 'green'")),
        ({"ratio": "1.5"}, ("ratio", "expected a number, got string")),
        ({"maybe": 0}, ("maybe", "expected a boolean, got integer")),
    ],
)
def test_each_problem_names_its_path(patch, expected):
    assert problems({**GOOD, **patch}) == [expected]


def test_all_problems_are_reported_together():
    found = problems({"somePath": "x", "leaf": {}, "numbers": ["a", "b"]})
    assert [p for p, _ in found] == ["somePath", "leaf.firstName", "numbers[0]", "numbers[1]"]


def test_stable_view_gates_experimental_fields_at_any_depth():
    found = problems(
        {**GOOD, "preview": 1, "leaf": {"firstName": "a", "secret": "s"}}, experimental=False
    )
    assert sorted(found) == [
        ("leaf.secret", "requires experimentalApi capability"),
        ("preview", "requires experimentalApi capability"),
    ]
    # null means "not used" and passes; the full view accepts values.
    conv = WireConverter()
    conv.structure({**GOOD, "preview": None}, Root, experimental=False)
    assert conv.structure({**GOOD, "preview": 3}, Root).preview == 3


def test_stable_view_leaves_experimental_fields_out_of_output():
    conv = WireConverter()
    value = Root(some_path=AbsolutePath("/x"), leaf=Leaf("a", secret="s"), preview=4)
    assert "preview" in conv.unstructure(value) and conv.unstructure(value)["leaf"]["secret"] == "s"
    stable = conv.unstructure(value, experimental=False)
    assert "preview" not in stable and stable["leaf"] == {"firstName": "a"}


def test_config_mode_uses_python_names_and_rejects_unknown_keys():
    conv = WireConverter(wire_names=False, forbid_extra_keys=True)

    @attrs.frozen
    class Settings:
        max_items: int = 1

    assert conv.structure({"max_items": 3}, Settings).max_items == 3
    with pytest.raises(StructureError) as err:
        conv.structure({"max_items": 3, "maxItems": 4}, Settings)
    assert err.value.problems[0].message == "unknown key(s): maxItems"
    with pytest.raises(StructureError) as err:
        conv.structure({"max_items": "3"}, Settings)
    assert (err.value.problems[0].path, err.value.problems[0].message) == (
        "max_items",
        "expected an integer, got string",
    )
