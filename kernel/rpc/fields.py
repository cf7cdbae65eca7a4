"""Field declarations for wire types.

Wire types are frozen attrs classes with snake_case attributes; on the wire
each attribute is camelCase unless :func:`field` names it otherwise. The same
metadata drives structuring, unstructuring, experimental gating and the
generated JSON Schema, so the three can never disagree.
"""

from __future__ import annotations

from typing import Any, NewType

import attrs

__all__ = [
    "AbsolutePath",
    "field",
    "field_doc",
    "is_experimental",
    "omits_none",
    "wire_meta",
    "wire_name",
]

_META_KEY = "kernel"

AbsolutePath = NewType("AbsolutePath", str)
"""A string that must be an absolute filesystem path; relative paths are
rejected at structuring time, before any handler sees them."""


def field(
    *,
    default: Any = attrs.NOTHING,
    factory: Any = None,
    wire: str | None = None,
    experimental: bool = False,
    omit_none: bool = False,
    doc: str | None = None,
) -> Any:
    """Declare an attribute of a wire type.

    ``wire`` overrides the camelCase name; ``experimental`` makes the field
    visible only to connections that set ``capabilities.experimentalApi``
    (incoming non-null values are rejected, outgoing values are left out);
    ``omit_none`` leaves the member out instead of sending ``null`` (use it for
    optional fields the protocol does not allow to be null); ``doc`` becomes
    the field's schema description.
    """
    meta = wire_meta(wire=wire, experimental=experimental, omit_none=omit_none, doc=doc)
    if factory is not None:
        return attrs.field(factory=factory, metadata=meta)
    return attrs.field(default=default, metadata=meta)


def wire_meta(
    *,
    wire: str | None = None,
    experimental: bool = False,
    omit_none: bool = False,
    doc: str | None = None,
) -> dict[str, Any]:
    """The metadata :func:`field` attaches, for use with ``attrs.field`` directly.

    Type checkers know ``attrs.field`` but not wrappers around it, so a
    required attribute declared with :func:`field` looks defaulted to mypy.
    ``attrs.field(metadata=wire_meta(wire="x"))`` says the same and checks clean.
    """
    return {
        _META_KEY: {"wire": wire, "experimental": experimental, "omit_none": omit_none, "doc": doc}
    }


def _meta(attribute: attrs.Attribute) -> dict[str, Any]:
    return attribute.metadata.get(_META_KEY, {})


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def wire_name(attribute: attrs.Attribute) -> str:
    """The member name of ``attribute`` on the wire."""
    return _meta(attribute).get("wire") or _camel(attribute.name)


def is_experimental(attribute: attrs.Attribute) -> bool:
    """Whether ``attribute`` is gated behind ``experimentalApi``."""
    return bool(_meta(attribute).get("experimental"))


def omits_none(attribute: attrs.Attribute) -> bool:
    """Whether a None value of ``attribute`` is left off the wire."""
    return bool(_meta(attribute).get("omit_none"))


def field_doc(attribute: attrs.Attribute) -> str | None:
    """The schema description declared for ``attribute``, if any."""
    return _meta(attribute).get("doc")
