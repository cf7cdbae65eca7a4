"""The kernel's converter between wire JSON and typed attrs values.

One :class:`WireConverter` per kernel. It holds two cattrs views over the same
rules: the *full* view used for connections that enabled ``experimentalApi``
and the *stable* view for the rest, which rejects incoming experimental
fields and leaves outgoing ones out. Hooks are generated once per type (the
registry asks for them at registration) and then called directly.

Structuring is strict: a string is not an integer, a string is not a list,
``true`` is not ``1``. Failures surface as :class:`StructureError` carrying one
:class:`Problem` per bad field, each with a dotted path in wire names.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable
from typing import Any, Literal, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import is_mapping, is_sequence, list_structure_factory, mapping_structure_factory
from cattrs.errors import (
    AttributeValidationNote,
    BaseValidationError,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .codec import json_type_name
from .fields import AbsolutePath, is_experimental, omits_none, wire_name

__all__ = ["ExperimentalFieldUsed", "Problem", "StructureError", "WireConverter"]


class ExperimentalFieldUsed(Exception):
    """A gated field carried a value on a connection without experimentalApi."""


@attrs.frozen
class Problem:
    """One reason a value failed to structure."""

    path: str
    message: str
    experimental: bool = False

    def describe(self, root: str = "") -> str:
        where = ".".join(p for p in (root, self.path) if p) or "(value)"
        return f"{where}: {self.message}"


class StructureError(Exception):
    """Structuring failed; ``problems`` lists every bad field found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.describe() for p in problems))
        self.problems = problems


def _fail(expected: str, value: Any) -> TypeError:
    return TypeError(f"expected {expected}, got {json_type_name(value)}")


def _structure_str(value: Any, _: Any) -> str:
    if type(value) is str:
        return value
    raise _fail("a string", value)


def _structure_int(value: Any, _: Any) -> int:
    if type(value) is int:
        return value
    raise _fail("an integer", value)


def _structure_float(value: Any, _: Any) -> float:
    if type(value) is float or type(value) is int:
        return float(value)
    raise _fail("a number", value)


def _structure_bool(value: Any, _: Any) -> bool:
    if type(value) is bool:
        return value
    raise _fail("a boolean", value)


def _structure_absolute_path(value: Any, _: Any) -> str:
    if type(value) is not str:
        raise _fail("an absolute path string", value)
    if "\0" in value:
        raise ValueError("path contains a NUL byte")
    if not os.path.isabs(value):
        raise ValueError(f"expected an absolute path, got relative path {value!r}")
    return value


def _structure_any(value: Any, _: Any) -> Any:
    return value


def _literal_choices(values: tuple[Any, ...]) -> str:
    return ", ".join(repr(v) for v in values)


class WireConverter:
    """Structure wire JSON into typed values and back, per capability level."""

    def __init__(self, *, wire_names: bool = True, forbid_extra_keys: bool = False) -> None:
        # Configuration files use this class too, with Python (snake_case)
        # names and unknown keys rejected so that typos are caught.
        self._wire_names = wire_names
        self._forbid_extra_keys = forbid_extra_keys
        self._full = self._build(experimental=True, detailed=True)
        self._stable = self._build(experimental=False, detailed=True)
        # Without detailed validation cattrs is faster but reports only the
        # first problem; request paths try these first (see structure_hook).
        self._fast = {
            flag: self._build(experimental=flag, detailed=False) for flag in (True, False)
        }

    # -- public API -----------------------------------------------------

    def view(self, experimental: bool) -> cattrs.Converter:
        """The cattrs converter for one capability level."""
        return self._full if experimental else self._stable

    def structure_hook(self, tp: Any, experimental: bool) -> Callable[[Any], Any]:
        """A one-argument function structuring JSON into ``tp``.

        It raises whatever the underlying hook raises; pass the exception to
        :meth:`problems` to learn which fields were wrong.
        """
        fast = self._fast[experimental].get_structure_hook(tp)
        detailed = self.view(experimental).get_structure_hook(tp)

        def structure(value: Any) -> Any:
            try:
                return fast(value, tp)
            except Exception:
                # Same rules, so this fails too, with every problem collected.
                return detailed(value, tp)

        return structure

    def unstructure_hook(self, tp: Any, experimental: bool) -> Callable[[Any], Any]:
        """A one-argument function turning a ``tp`` value into wire JSON."""
        return self.view(experimental).get_unstructure_hook(tp)

    def structure(self, value: Any, tp: Any, *, experimental: bool = True) -> Any:
        """Structure ``value`` as ``tp``, raising :class:`StructureError`."""
        try:
            return self.view(experimental).structure(value, tp)
        except Exception as exc:
            raise StructureError(self.problems(exc)) from exc

    def unstructure(self, value: Any, tp: Any = None, *, experimental: bool = True) -> Any:
        """Unstructure ``value`` (as ``tp`` when given) into wire JSON."""
        return self.view(experimental).unstructure(value, tp or type(value))

    def problems(self, exc: BaseException) -> list[Problem]:
        """Flatten a structuring exception into problems with wire paths."""
        found: list[Problem] = []
        _collect(exc, [], found, self._wire_names)
        return found

    # -- construction ----------------------------------------------------

    def _build(self, *, experimental: bool, detailed: bool) -> cattrs.Converter:
        conv = cattrs.Converter(
            detailed_validation=detailed, forbid_extra_keys=self._forbid_extra_keys
        )
        conv.register_structure_hook(str, _structure_str)
        conv.register_structure_hook(int, _structure_int)
        conv.register_structure_hook(float, _structure_float)
        conv.register_structure_hook(bool, _structure_bool)
        conv.register_structure_hook(Any, _structure_any)
        conv.register_structure_hook(AbsolutePath, _structure_absolute_path)
        conv.register_unstructure_hook(AbsolutePath, str)
        conv.register_structure_hook_factory(
            lambda t: get_origin(t) is Literal, self._literal_factory
        )
        conv.register_structure_hook_factory(
            lambda t: isinstance(t, type) and issubclass(t, enum.Enum), self._enum_factory
        )
        conv.register_structure_hook_factory(
            lambda t: t is list or (is_sequence(t) and get_origin(t) is list),
            lambda t: _checked(list_structure_factory(t, conv), list, "an array"),
        )
        conv.register_structure_hook_factory(
            lambda t: t is dict or (is_mapping(t) and get_origin(t) is dict),
            lambda t: _checked(mapping_structure_factory(t, conv), dict, "an object"),
        )
        names = self._wire_names
        conv.register_structure_hook_factory(
            attrs.has, lambda cls: _attrs_structure(cls, conv, experimental, names)
        )
        conv.register_unstructure_hook_factory(
            attrs.has, lambda cls: _attrs_unstructure(cls, conv, experimental, names)
        )
        return conv

    @staticmethod
    def _literal_factory(tp: Any) -> Callable[[Any, Any], Any]:
        choices = get_args(tp)
        allowed = set(choices)

        def structure(value: Any, _: Any) -> Any:
            if type(value) in (str, int, bool) and value in allowed:
                return value
            raise ValueError(f"expected one of {_literal_choices(choices)}, got {value!r}")

        return structure

    @staticmethod
    def _enum_factory(tp: type[enum.Enum]) -> Callable[[Any, Any], Any]:
        by_value = {member.value: member for member in tp}

        def structure(value: Any, _: Any) -> Any:
            if type(value) in (str, int) and value in by_value:
                return by_value[value]
            choices = _literal_choices(tuple(by_value))
            raise ValueError(f"expected one of {choices}, got {value!r}")

        return structure


def _checked(hook: Callable[[Any, Any], Any], kind: type, expected: str) -> Callable:
    def structure(value: Any, tp: Any) -> Any:
        if type(value) is not kind:
            raise _fail(expected, value)
        return hook(value, tp)

    return structure


def _name(attribute: attrs.Attribute, wire_names: bool) -> str:
    return wire_name(attribute) if wire_names else attribute.name


def _attrs_structure(
    cls: type, conv: cattrs.Converter, experimental: bool, wire_names: bool
) -> Callable:
    fields = attrs.fields(cls)
    overrides = {a.name: override(rename=_name(a, wire_names)) for a in fields}
    generated: Callable[[Any, Any], Any] = make_dict_structure_fn(
        cls,
        conv,
        **overrides,  # type: ignore[arg-type]
    )
    gated = [] if experimental else [a for a in fields if is_experimental(a)]

    if not gated:

        def structure(value: Any, _: Any) -> Any:
            if type(value) is not dict:
                raise _fail("an object", value)
            return generated(value, cls)

        return structure

    def gate_errors(used: list[attrs.Attribute]) -> list[Exception]:
        errors: list[Exception] = []
        for attribute in used:
            error = ExperimentalFieldUsed(attribute.name)
            error.add_note(
                AttributeValidationNote("experimental field", attribute.name, attribute.type)
            )
            errors.append(error)
        return errors

    def structure_gated(value: Any, _: Any) -> Any:
        if type(value) is not dict:
            raise _fail("an object", value)
        try:
            result = generated(value, cls)
        except ClassValidationError as exc:
            # Report this level's gated fields too, not only the nested failure.
            used = [a for a in gated if value.get(_name(a, wire_names)) is not None]
            if not used:
                raise
            raise ClassValidationError(
                exc.message, [*exc.exceptions, *gate_errors(used)], cls
            ) from None
        used = [a for a in gated if getattr(result, a.name) is not None]
        if used:
            raise ClassValidationError(
                f"While structuring {cls.__qualname__}", gate_errors(used), cls
            )
        return result

    return structure_gated


def _attrs_unstructure(
    cls: type, conv: cattrs.Converter, experimental: bool, wire_names: bool
) -> Callable:
    overrides = {}
    for a in attrs.fields(cls):
        if not experimental and is_experimental(a):
            overrides[a.name] = override(omit=True)
        else:
            overrides[a.name] = override(
                rename=_name(a, wire_names),
                omit_if_default=omits_none(a) and a.default is None,
            )
    return make_dict_unstructure_fn(cls, conv, **overrides)  # type: ignore[arg-type]


def _segment(note: Any, owner: Any, wire_names: bool) -> str | None:
    if isinstance(note, AttributeValidationNote):
        if wire_names and owner is not None and attrs.has(owner):
            for a in attrs.fields(owner):
                if a.name == note.name:
                    return wire_name(a)
        return note.name
    if isinstance(note, IterableValidationNote):
        return f"[{note.index}]" if isinstance(note.index, int) else str(note.index)
    return None


def _join(path: list[str]) -> str:
    out = ""
    for part in path:
        out += part if part.startswith("[") or not out else "." + part
    return out


def _collect(exc: BaseException, path: list[str], found: list[Problem], wire_names: bool) -> None:
    if isinstance(exc, BaseValidationError):
        owner = getattr(exc, "cl", None)
        for sub in exc.exceptions:
            segments = [_segment(n, owner, wire_names) for n in getattr(sub, "__notes__", ())]
            segment = next((s for s in segments if s), None)
            _collect(sub, [*path, segment] if segment else path, found, wire_names)
        return
    where = _join(path)
    if isinstance(exc, ForbiddenExtraKeysError):
        names = ", ".join(sorted(exc.extra_fields))
        found.append(Problem(where, f"unknown key(s): {names}"))
    elif isinstance(exc, ExperimentalFieldUsed):
        found.append(Problem(where, "requires experimentalApi capability", experimental=True))
    elif isinstance(exc, KeyError):
        found.append(Problem(where, "missing required field"))
    elif isinstance(exc, (TypeError, ValueError)) and str(exc):
        found.append(Problem(where, str(exc)))
    else:
        found.append(Problem(where, f"invalid value ({type(exc).__name__})"))
