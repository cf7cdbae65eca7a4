"""One declaration per method: decorators and declaration objects on a plugin.

A plugin may declare what it serves right where it serves it::

    class AcmePlugin:
        changed = kernel.notification("acme/changed", AcmeChanged)

        @kernel.method("acme/get")
        async def get(self, params: AcmeGetParams, ctx: RequestContext) -> AcmeGetResult:
            ...

The kernel collects these from every plugin object after ``kernel_register``
(which stays available for anything dynamic). A handler's params and result
types come from its signature, in one of two shapes:

* ``handler(params: AcmeGetParams, ctx)``: the first parameter's annotation
  is the params class (``None``: the method takes no params);
* ``handler(ctx, *, key: str, limit: int = 10)``: the keyword-only
  parameters *are* the params. The kernel makes the params class from them,
  named after the method as the reference names its types
  (``acme/get`` → ``AcmeGetParams``), and calls the handler with the fields
  as keywords. No params class to write for a simple method.

The return annotation is the result type (``None``, ``dict`` or ``Any``: an
empty or already wire-shaped result). Explicit ``params=``/``result=`` win.
A notification may be declared the same short way:
``notification("acme/changed", key=str)`` makes ``AcmeChangedNotification``.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import attrs

__all__ = [
    "INFER",
    "MethodMark",
    "Notification",
    "ServerRequest",
    "Signature",
    "annotation_of",
    "client_notification",
    "declared",
    "handler_signature",
    "handler_types",
    "method",
    "notification",
    "server_request",
    "type_name",
]

F = TypeVar("F", bound=Callable[..., Any])


class _Infer:
    def __repr__(self) -> str:
        return "INFER"


INFER: Any = _Infer()
"""Default of ``params=``/``result=``: take the type from the handler's annotations."""

_MARK = "__kernel_declaration__"


@attrs.frozen
class MethodMark:
    """What :func:`method` or :func:`client_notification` recorded on a function."""

    kind: str  # "method" or "client_notification"
    name: str
    params: Any = INFER
    result: Any = INFER
    experimental: bool = False
    doc: str | None = None


@attrs.frozen
class Notification:
    """A server→client notification a plugin sends (``connection.notify(decl, params)``)."""

    name: str
    params: Any = None
    experimental: bool = False
    doc: str = ""


@attrs.frozen
class ServerRequest:
    """A server→client request a plugin sends (``connection.request(decl, params)``)."""

    name: str
    params: Any = None
    result: Any = None
    experimental: bool = False
    doc: str = ""


def method(
    name: str,
    *,
    params: Any = INFER,
    result: Any = INFER,
    experimental: bool = False,
    doc: str | None = None,
) -> Callable[[F], F]:
    """Serve the client→server request ``name`` with the decorated handler."""

    def mark(handler: F) -> F:
        setattr(handler, _MARK, MethodMark("method", name, params, result, experimental, doc))
        return handler

    return mark


def client_notification(
    name: str, *, params: Any = INFER, experimental: bool = False, doc: str | None = None
) -> Callable[[F], F]:
    """Handle the client→server notification ``name`` with the decorated function."""

    def mark(handler: F) -> F:
        mark_ = MethodMark("client_notification", name, params, None, experimental, doc)
        setattr(handler, _MARK, mark_)
        return handler

    return mark


def notification(
    name: str, params: Any = None, *, experimental: bool = False, doc: str = "", **fields: Any
) -> Notification:
    """Declare the notification ``name`` carrying ``params`` (assign it to a class attribute).

    Instead of a params class, give its fields as keywords (``key=str``):
    the class is made and named after the notification
    (``acme/changed`` → ``AcmeChangedNotification``).
    """
    if fields:
        if params is not None:
            raise TypeError(f"notification {name!r}: give params or fields, not both")
        params = _make_class(
            type_name(name, "Notification"),
            {k: (t, _REQUIRED) for k, t in fields.items()},
            __name__,
        )
    return Notification(name, params, experimental, doc)


def server_request(
    name: str,
    params: Any = None,
    result: Any = None,
    *,
    experimental: bool = False,
    doc: str = "",
) -> ServerRequest:
    """Declare the server request ``name``; clients answer ``result``."""
    return ServerRequest(name, params, result, experimental, doc)


def declared(plugin: Any) -> Iterator[tuple[Any, Any]]:
    """``(declaration, handler or None)`` for everything ``plugin`` declares, in source order.

    Looks at the plugin's class (bases first) or, for a module, its globals;
    class attributes are read statically, so properties never run.
    """
    namespaces: list[Mapping[str, Any]]
    if inspect.ismodule(plugin):
        namespaces = [vars(plugin)]
    else:
        namespaces = [vars(cls) for cls in reversed(type(plugin).__mro__)]
        namespaces.append(getattr(plugin, "__dict__", {}))
    seen: set[str] = set()
    for namespace in namespaces:
        for attr, value in list(namespace.items()):
            if attr in seen:
                continue
            if isinstance(value, (Notification, ServerRequest)):
                seen.add(attr)
                yield value, None
                continue
            function = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
            mark = getattr(function, _MARK, None) if callable(function) else None
            if isinstance(mark, MethodMark):
                seen.add(attr)
                yield mark, getattr(plugin, attr)


_REQUIRED: Any = attrs.NOTHING


@attrs.frozen
class Signature:
    """How the kernel calls a handler: its wire types and an adapter, if one is needed."""

    params: Any
    result: Any
    call: Callable[..., Any]
    is_async: bool


def type_name(name: str, suffix: str) -> str:
    """``acme/get`` + ``Params`` → ``AcmeGetParams``, as the reference names its types."""
    words = re.split(r"[/_.\-]+", name)
    return "".join(w[:1].upper() + w[1:] for w in words if w) + suffix


def handler_signature(
    name: str, handler: Callable[..., Any], params: Any, result: Any
) -> Signature:
    """The :class:`Signature` of ``handler`` serving method ``name`` (see the module doc)."""
    is_async = inspect.iscoroutinefunction(handler)
    keywords = [
        p
        for p in inspect.signature(handler).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    if params is not INFER or not keywords:
        params, result = handler_types(handler, params, result)
        return Signature(params, result, handler, is_async)
    fields = {p.name: (_annotation(handler, p.name), p.default) for p in keywords}
    missing = [n for n, (tp, _) in fields.items() if tp is None]
    if missing:
        raise TypeError(f"{_name(handler)}: keyword parameters {missing} need annotations")
    module = getattr(handler, "__module__", __name__)
    made = _make_class(type_name(name, "Params"), fields, module)
    names = list(fields)
    _, result = handler_types(handler, None, result)

    if is_async:

        async def call_async(values: Any, ctx: Any) -> Any:
            return await handler(ctx, **{n: getattr(values, n) for n in names})

        return Signature(made, result, call_async, True)

    def call(values: Any, ctx: Any) -> Any:
        return handler(ctx, **{n: getattr(values, n) for n in names})

    return Signature(made, result, call, False)


def _make_class(class_name: str, fields: dict[str, tuple[Any, Any]], module: str) -> type:
    def required(default: Any) -> bool:
        return default is _REQUIRED or default is inspect.Parameter.empty

    # Required fields first, as attrs requires; the wire does not care.
    ordered = sorted(fields, key=lambda field: not required(fields[field][1]))
    attributes = {
        field: attrs.field(type=fields[field][0])
        if required(fields[field][1])
        else attrs.field(type=fields[field][0], default=fields[field][1])
        for field in ordered
    }
    cls = attrs.make_class(class_name, attributes, frozen=True)
    cls.__module__ = module
    cls.__annotations__ = {field: fields[field][0] for field in ordered}
    return cls


def handler_types(handler: Callable[..., Any], params: Any, result: Any) -> tuple[Any, Any]:
    """``(params, result)`` types of ``handler``: explicit ones, else from its annotations.

    Only the two annotations needed are evaluated, so ``ctx: RequestContext``
    imported under ``TYPE_CHECKING`` is fine.
    """
    if params is INFER:
        positional = [
            p
            for p in inspect.signature(handler).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        hint = _annotation(handler, positional[0].name) if positional else None
        params = _params_type(handler, hint)
    if result is INFER:
        result = _result_type(handler, _annotation(handler, "return"))
    return params, result


def annotation_of(function: Callable[..., Any], name: str) -> Any:
    """The evaluated annotation of parameter ``name`` (or ``"return"``) of ``function``."""
    return _annotation(function, name)


def _annotation(handler: Callable[..., Any], name: str) -> Any:
    function = inspect.unwrap(getattr(handler, "__func__", handler))
    raw = inspect.get_annotations(function).get(name)
    if not isinstance(raw, str):
        return raw
    try:
        # The annotation's own text, from the plugin's source, in its module.
        return eval(raw, getattr(function, "__globals__", {}))
    except Exception as exc:
        raise TypeError(
            f"cannot resolve the annotation {raw!r} of {_name(handler)} ({exc}); "
            "pass params= and result= explicitly"
        ) from None


def _params_type(handler: Callable[..., Any], hint: Any) -> Any:
    if hint is None or hint is type(None):
        return None
    if not attrs.has(hint):
        raise TypeError(
            f"{_name(handler)}: params annotation {hint!r} is not an attrs class "
            "(annotate with your params class, or None for no params)"
        )
    return hint


def _result_type(handler: Callable[..., Any], hint: Any) -> Any:
    if hint is None or hint is type(None) or hint is Any:
        return None
    origin = typing.get_origin(hint) or hint
    if origin is dict:
        return None  # already wire-shaped
    if not attrs.has(hint):
        raise TypeError(
            f"{_name(handler)}: return annotation {hint!r} is not an attrs class, dict or None"
        )
    return hint


def _name(handler: Callable[..., Any]) -> str:
    return getattr(handler, "__qualname__", repr(handler))
