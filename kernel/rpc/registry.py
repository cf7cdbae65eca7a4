"""What a composition serves: methods, notifications and server requests.

Plugins declare entries through a :class:`Registrar` bound to their name, so
every entry knows its owner: duplicate names fail with both owners named,
``kernel plugins`` can list what each plugin serves, and schema generation
reads the declared types. Converter hooks for each entry are generated here,
once, so the request path only calls them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any, Literal

import attrs

from .converter import WireConverter
from .declare import INFER, MethodMark, Notification, ServerRequest, declared, handler_signature
from .typenames import named_types

__all__ = [
    "KERNEL_OWNER",
    "Entry",
    "Kind",
    "Registrar",
    "RegistrationConflict",
    "Registry",
]

Kind = Literal["method", "notification", "server_request", "client_notification"]

KERNEL_OWNER = "kernel"
"""Owner name of the entries the kernel itself serves (``initialize``...)."""

_KIND_TEXT: dict[Kind, str] = {
    "method": "method",
    "notification": "notification",
    "server_request": "server request",
    "client_notification": "client notification",
}


class RegistrationConflict(Exception):
    """Two owners declared the same name for the same kind of entry."""


def _identity(value: Any) -> Any:
    return value


def _no_params(value: Any) -> None:
    return None


@attrs.define(eq=False)
class Entry:
    """One declared method, notification or server request.

    ``params``/``result`` are the declared wire types (None: no params, or a
    result of ``{}``/any JSON). The ``structure_*``/``unstructure_*`` members
    are the precomputed converter hooks for each capability level; the
    ``result_*`` hooks encode a method's result, or structure the client's
    answer to a server request.
    """

    kind: Kind
    name: str
    owner: str
    params: Any
    result: Any
    handler: Callable[..., Any] | None
    experimental: bool
    doc: str
    is_async: bool = False
    structure_full: Callable[[Any], Any] = _identity
    structure_stable: Callable[[Any], Any] = _identity
    unstructure_full: Callable[[Any], Any] = _identity
    unstructure_stable: Callable[[Any], Any] = _identity
    result_full: Callable[[Any], Any] = _identity
    result_stable: Callable[[Any], Any] = _identity


class Registry:
    """All entries of one kernel, keyed by kind and name."""

    def __init__(self, converter: WireConverter) -> None:
        self.converter = converter
        self._entries: dict[Kind, dict[str, Entry]] = {
            "method": {},
            "notification": {},
            "server_request": {},
            "client_notification": {},
        }
        # Schema definition name -> (type, owners using it); see kernel.rpc.typenames.
        self._type_names: dict[str, tuple[Any, set[str]]] = {}

    def registrar(self, owner: str) -> Registrar:
        """A registrar that records ``owner`` on everything it declares."""
        return Registrar(self, owner)

    def get(self, kind: Kind, name: str) -> Entry | None:
        """The entry of ``kind`` named ``name``, if declared."""
        return self._entries[kind].get(name)

    def methods(self) -> dict[str, Entry]:
        """Client→server request methods by name (read-only use)."""
        return self._entries["method"]

    def entries(self, kind: Kind | None = None) -> Iterator[Entry]:
        """Every entry, or every entry of one kind, in declaration order."""
        kinds = [kind] if kind else list(self._entries)
        for k in kinds:
            yield from self._entries[k].values()

    def owned_by(self, owner: str) -> list[Entry]:
        """Every entry declared by ``owner``."""
        return [e for e in self.entries() if e.owner == owner]

    def remove_owner(self, owner: str) -> None:
        """Forget everything ``owner`` declared (its plugin failed to start)."""
        for table in self._entries.values():
            for name in [n for n, e in table.items() if e.owner == owner]:
                del table[name]
        for name, (_, owners) in list(self._type_names.items()):
            owners.discard(owner)
            if not owners:
                del self._type_names[name]

    def add(self, entry: Entry) -> Entry:
        """Add ``entry`` after generating its converter hooks."""
        table = self._entries[entry.kind]
        existing = table.get(entry.name)
        if existing is not None:
            raise RegistrationConflict(
                f"{_KIND_TEXT[entry.kind]} {entry.name!r} is declared by both "
                f"{existing.owner!r} and {entry.owner!r}"
            )
        self._claim_type_names(entry)
        self._prepare(entry)
        table[entry.name] = entry
        return entry

    def _claim_type_names(self, entry: Entry) -> None:
        """Refuse a type whose schema name another type already has."""
        found: dict[str, Any] = {}
        for tp in (entry.params, entry.result):
            if tp is not None:
                found.update(named_types(tp))
        for name, tp in found.items():
            taken = self._type_names.get(name)
            if taken is not None and taken[0] is not tp:
                owners = ", ".join(sorted(taken[1]))
                raise RegistrationConflict(
                    f"type name {name!r} of {_qualname(tp)} ({_KIND_TEXT[entry.kind]} "
                    f"{entry.name!r} of {entry.owner!r}) is already taken by "
                    f"{_qualname(taken[0])} (of {owners}); schema definitions need distinct "
                    "names: rename one, e.g. after its method (AcmeGetParams)"
                )
        for name, tp in found.items():
            self._type_names.setdefault(name, (tp, set()))[1].add(entry.owner)

    def _prepare(self, entry: Entry) -> None:
        conv = self.converter
        if entry.params is None:
            entry.structure_full = entry.structure_stable = _no_params
        else:
            entry.structure_full = conv.structure_hook(entry.params, True)
            entry.structure_stable = conv.structure_hook(entry.params, False)
            entry.unstructure_full = conv.unstructure_hook(entry.params, True)
            entry.unstructure_stable = conv.unstructure_hook(entry.params, False)
        if entry.result is None:
            return
        if entry.kind == "server_request":
            # The result travels client→server: it is structured, not encoded.
            entry.result_full = conv.structure_hook(entry.result, True)
            entry.result_stable = conv.structure_hook(entry.result, False)
        else:
            entry.result_full = conv.unstructure_hook(entry.result, True)
            entry.result_stable = conv.unstructure_hook(entry.result, False)


class Registrar:
    """The face of the registry one plugin sees during registration."""

    def __init__(self, registry: Registry, owner: str) -> None:
        self._registry = registry
        self.owner = owner

    def method(
        self,
        name: str,
        handler: Callable[..., Any],
        *,
        params: Any = INFER,
        result: Any = INFER,
        experimental: bool = False,
        doc: str | None = None,
    ) -> Entry:
        """Serve the client→server request ``name`` with ``handler``.

        ``params`` and ``result`` default to the handler's signature (see
        :mod:`kernel.rpc.declare`): ``handler(params: P, ctx) -> R``, or
        ``handler(ctx, *, field: T, ...) -> R`` whose keyword-only
        parameters make the params type; None means no params, or a result
        of ``{}``/any JSON.

        ``handler(params, ctx)`` receives the structured params (None when
        ``params`` is None) and a :class:`kernel.RequestContext`; it returns a
        value of type ``result`` (None answers ``{}``; a dict is taken as
        already wire-shaped and sent as is) or raises :class:`kernel.RpcError`.
        An ``async def`` handler may wait without holding up other requests:
        it starts at once and, when it first waits, the connection goes on
        reading while it finishes in its own worker task (see
        :mod:`kernel.workers`). A plain function runs inline on the reader
        and must return quickly (use it for cheap lookups only).
        """
        signature = handler_signature(name, handler, params, result)
        return self._registry.add(
            Entry(
                kind="method",
                name=name,
                owner=self.owner,
                params=signature.params,
                result=signature.result,
                handler=signature.call,
                experimental=experimental,
                doc=_doc(doc, handler),
                is_async=signature.is_async,
            )
        )

    def notification(
        self, name: str, *, params: Any = None, experimental: bool = False, doc: str | None = None
    ) -> Entry:
        """Declare the server→client notification ``name`` carrying ``params``."""
        return self._registry.add(
            Entry("notification", name, self.owner, params, None, None, experimental, doc or "")
        )

    def server_request(
        self,
        name: str,
        *,
        params: Any = None,
        result: Any = None,
        experimental: bool = False,
        doc: str | None = None,
    ) -> Entry:
        """Declare the server→client request ``name``; clients answer ``result``."""
        return self._registry.add(
            Entry("server_request", name, self.owner, params, result, None, experimental, doc or "")
        )

    def client_notification(
        self,
        name: str,
        handler: Callable[..., Any],
        *,
        params: Any = INFER,
        experimental: bool = False,
        doc: str | None = None,
    ) -> Entry:
        """Handle the client→server notification ``name`` with ``handler(params, ctx)``."""
        signature = handler_signature(name, handler, params, None)
        return self._registry.add(
            Entry(
                "client_notification",
                name,
                self.owner,
                signature.params,
                None,
                signature.call,
                experimental,
                _doc(doc, handler),
                is_async=signature.is_async,
            )
        )

    def collect(self, plugin: Any) -> list[Entry]:
        """Register everything ``plugin`` declares with :mod:`kernel.rpc.declare`."""
        entries = []
        for declaration, handler in declared(plugin):
            if isinstance(declaration, Notification):
                entries.append(
                    self.notification(
                        declaration.name,
                        params=declaration.params,
                        experimental=declaration.experimental,
                        doc=declaration.doc,
                    )
                )
            elif isinstance(declaration, ServerRequest):
                entries.append(
                    self.server_request(
                        declaration.name,
                        params=declaration.params,
                        result=declaration.result,
                        experimental=declaration.experimental,
                        doc=declaration.doc,
                    )
                )
            elif isinstance(declaration, MethodMark) and declaration.kind == "method":
                entries.append(
                    self.method(
                        declaration.name,
                        handler,
                        params=declaration.params,
                        result=declaration.result,
                        experimental=declaration.experimental,
                        doc=declaration.doc,
                    )
                )
            elif isinstance(declaration, MethodMark):
                entries.append(
                    self.client_notification(
                        declaration.name,
                        handler,
                        params=declaration.params,
                        experimental=declaration.experimental,
                        doc=declaration.doc,
                    )
                )
        return entries


def _qualname(tp: Any) -> str:
    return f"{getattr(tp, '__module__', '?')}.{getattr(tp, '__qualname__', tp)}"


def _doc(doc: str | None, handler: Callable[..., Any]) -> str:
    if doc:
        return doc
    text = inspect.getdoc(handler) or ""
    return text.split("\n\n", 1)[0].strip()
