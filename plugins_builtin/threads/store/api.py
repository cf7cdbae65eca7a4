"""The thread store interface: what the ``threads`` family needs to persist threads.

Nothing here knows about SQLite or files, so a contrib package can implement
:class:`ThreadStore` on another database (PostgreSQL) and the family works
unchanged. The local implementation is :class:`.local.LocalThreadStore`.

A stored thread is its metadata (:class:`ThreadMeta`, what ``thread/list``
shows) plus its records: the JSON objects the family appended, in order
(turns, items, settings... the store does not interpret them).

Listing semantics (every implementation follows them):

* ``archived`` selects the archived or the active threads, never both.
* ``cwds``: any-of exact match; ``[]`` matches nothing. ``model_providers``:
  any-of; ``None`` or ``[]`` matches all. ``excluded_ids``: never listed.
* ``source_kinds``: any-of :data:`SOURCE_KINDS`; ``None`` or ``[]`` means the
  interactive sources only (:data:`INTERACTIVE_SOURCE_KINDS`: ``cli`` and
  ``vscode``), as the reference does, so sub-agent and ``exec`` threads stay
  out of a plain listing. ``subAgent`` matches every sub-agent source;
  ``subAgentReview``/``Compact``/``ThreadSpawn``/``Other`` one variant; a
  ``{"custom": ...}`` source matches no kind.
* ``search_term``: case-sensitive substring of the thread's title: its name
  when it has one, else its preview.
* Order: by ``sort_key`` then id, both in ``sort_direction``. ``recency_at``
  sorts threads without a recency by ``updated_at``; the TUI's
  ``section_position`` is accepted and means the same order as
  ``recency_at``.
* Pages are keyset-paginated: a cursor names a position between two threads,
  so paging by ``created_at`` never skips or repeats a thread when others are
  created meanwhile. (Sorting by ``updated_at``/``recency_at`` orders by a
  value that changes; a thread updated while a client pages may move across
  the cursor.) ``next_cursor`` is ``None`` when nothing follows the page,
  ``backwards_cursor`` when nothing precedes it; following a
  ``backwards_cursor`` returns the page just before, in the same order.
  A cursor is only valid with the sort key and direction it was made for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import attrs

__all__ = [
    "DEFAULT_LIMIT",
    "INTERACTIVE_SOURCE_KINDS",
    "MAX_LIMIT",
    "SORT_KEYS",
    "SOURCE_KINDS",
    "UPDATABLE_FIELDS",
    "AlreadyArchived",
    "InvalidCursor",
    "InvalidQuery",
    "ListPage",
    "ListQuery",
    "NotArchived",
    "StoreClosed",
    "StoredThread",
    "ThreadExists",
    "ThreadMeta",
    "ThreadNotFound",
    "ThreadStore",
    "ThreadStoreError",
    "check_changes",
    "kind_filter",
    "source_kind_of",
]

DEFAULT_LIMIT = 25
#: A larger ``limit`` is served as this many (one page stays a bounded amount of work).
MAX_LIMIT = 1000

#: Accepted sort keys; ``section_position`` is served as ``recency_at``.
SORT_KEYS = ("created_at", "updated_at", "recency_at", "section_position")

SOURCE_KINDS = (
    "cli",
    "vscode",
    "exec",
    "appServer",
    "subAgent",
    "subAgentReview",
    "subAgentCompact",
    "subAgentThreadSpawn",
    "subAgentOther",
    "unknown",
)
INTERACTIVE_SOURCE_KINDS = ("cli", "vscode")

SortKey = Literal["created_at", "updated_at", "recency_at", "section_position"]
SortDirection = Literal["asc", "desc"]


# -- errors ------------------------------------------------------------------------------


class ThreadStoreError(Exception):
    """Base of the store's own errors; the message is fit for a client."""


class ThreadNotFound(ThreadStoreError, LookupError):
    """No stored thread (active or archived) has this id."""

    def __init__(self, thread_id: str) -> None:
        super().__init__(f"no rollout found for thread id {thread_id}")
        self.thread_id = thread_id


class ThreadExists(ThreadStoreError):
    """``create`` was given an id that is already stored."""

    def __init__(self, thread_id: str) -> None:
        super().__init__(f"a thread with id {thread_id} is already stored")
        self.thread_id = thread_id


class AlreadyArchived(ThreadStoreError):
    """``archive`` of a thread that is archived."""

    def __init__(self, thread_id: str) -> None:
        super().__init__(f"thread {thread_id} is already archived")
        self.thread_id = thread_id


class NotArchived(ThreadStoreError):
    """``unarchive`` of a thread that is not archived."""

    def __init__(self, thread_id: str) -> None:
        super().__init__(f"no archived rollout found for thread id {thread_id}")
        self.thread_id = thread_id


class InvalidQuery(ThreadStoreError, ValueError):
    """A :class:`ListQuery` member is unusable; callers answer ``-32602``."""


class InvalidCursor(InvalidQuery):
    """The cursor is not one this store made, or was made for another order."""


class StoreClosed(ThreadStoreError, RuntimeError):
    """The store was used before ``open()`` or after ``close()``."""


# -- values ------------------------------------------------------------------------------


@attrs.frozen
class ThreadMeta:
    """A thread's metadata: what ``thread/list`` shows, kept current by the store.

    Construct it with keywords (the field order is an implementation detail).
    Times are whole seconds since the epoch. ``path`` (the rollout, absolute)
    and ``archived`` are set by the store, not by the caller.
    """

    id: str
    created_at: int
    updated_at: int
    cwd: str
    model_provider: str
    model: str | None = None
    reasoning_effort: str | None = None
    name: str | None = None
    preview: str = ""
    source: Any = "vscode"
    thread_source: str | None = None
    forked_from_id: str | None = None
    parent_thread_id: str | None = None
    git_info: dict[str, Any] | None = None
    cli_version: str = ""
    originator: str | None = None
    agent_nickname: str | None = None
    agent_role: str | None = None
    project_id: str | None = None
    archived: bool = False
    path: str | None = None
    recency_at: int | None = None

    #: Members recorded in a rollout; ``archived`` and ``path`` follow from where it lies.
    RECORDED: ClassVar[tuple[str, ...]]

    def evolve(self, **changes: Any) -> ThreadMeta:
        """A copy with ``changes`` applied (unknown names raise ``TypeError``)."""
        return attrs.evolve(self, **changes)

    def to_record(self) -> dict[str, Any]:
        """The recorded members as a JSON object."""
        return {name: getattr(self, name) for name in ThreadMeta.RECORDED}

    @classmethod
    def from_record(
        cls, record: Mapping[str, Any], *, archived: bool = False, path: str | None = None
    ) -> ThreadMeta:
        """Metadata from :meth:`to_record` output; unknown keys are ignored."""
        known = {k: v for k, v in record.items() if k in _RECORDED_SET}
        return cls(**known, archived=archived, path=path)


ThreadMeta.RECORDED = tuple(
    f.name for f in attrs.fields(ThreadMeta) if f.name not in ("archived", "path")
)
_RECORDED_SET = frozenset(ThreadMeta.RECORDED)

#: What ``update()`` may change: everything recorded except identity and creation time.
UPDATABLE_FIELDS = frozenset(ThreadMeta.RECORDED) - {"id", "created_at"}

_INT = (int,)
_OPT_INT = (int, type(None))
_STR = (str,)
_OPT_STR = (str, type(None))
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "updated_at": _INT,
    "recency_at": _OPT_INT,
    "cwd": _STR,
    "model_provider": _STR,
    "preview": _STR,
    "cli_version": _STR,
    "git_info": (dict, type(None)),
    "source": (str, dict),
}


def check_changes(changes: Mapping[str, Any]) -> None:
    """Raise ``TypeError`` naming the member when ``changes`` cannot be applied."""
    for name, value in changes.items():
        if name not in UPDATABLE_FIELDS:
            raise TypeError(f"thread metadata member {name!r} cannot be updated")
        allowed = _FIELD_TYPES.get(name, _OPT_STR)
        if not isinstance(value, allowed) or (allowed[0] is int and isinstance(value, bool)):
            names = " or ".join("None" if t is type(None) else t.__name__ for t in allowed)
            raise TypeError(f"thread metadata member {name!r} must be {names}, got {value!r}")


@attrs.frozen
class StoredThread:
    """A thread as stored: its metadata and its records in append order."""

    meta: ThreadMeta
    records: list[dict[str, Any]]


@attrs.frozen(kw_only=True)
class ListQuery:
    """One ``thread/list`` request, in store terms (see the module docstring).

    Not validated when built; :meth:`ThreadStore.list` raises
    :class:`InvalidQuery`/:class:`InvalidCursor` for bad members.
    """

    archived: bool = False
    cwds: list[str] | None = None
    model_providers: list[str] | None = None
    source_kinds: list[str] | None = None
    search_term: str | None = None
    sort_key: str = "created_at"
    sort_direction: str = "desc"
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    use_state_db_only: bool = False
    excluded_ids: list[str] | None = None

    @property
    def order_key(self) -> str:
        """The sort key actually used: ``section_position`` is ``recency_at``."""
        return "recency_at" if self.sort_key == "section_position" else self.sort_key

    @property
    def page_size(self) -> int:
        """``limit`` clamped to ``1..MAX_LIMIT``."""
        return max(1, min(self.limit, MAX_LIMIT))

    def check(self) -> None:
        """Raise :class:`InvalidQuery` for a member no store can serve."""
        if self.sort_key not in SORT_KEYS:
            raise InvalidQuery(f"sort key must be one of {', '.join(SORT_KEYS)}: {self.sort_key!r}")
        if self.sort_direction not in ("asc", "desc"):
            raise InvalidQuery(f"sort direction must be asc or desc: {self.sort_direction!r}")
        if not isinstance(self.limit, int) or isinstance(self.limit, bool):
            raise InvalidQuery(f"limit must be an integer: {self.limit!r}")
        for member in ("cwds", "model_providers", "source_kinds", "excluded_ids"):
            value = getattr(self, member)
            if value is not None and (
                isinstance(value, str) or not all(isinstance(item, str) for item in value)
            ):
                raise InvalidQuery(f"{member} must be a list of strings: {value!r}")
        if self.search_term is not None and not isinstance(self.search_term, str):
            raise InvalidQuery(f"search term must be a string: {self.search_term!r}")
        for kind in self.source_kinds or ():
            if kind not in SOURCE_KINDS:
                raise InvalidQuery(f"unknown source kind {kind!r}")


@attrs.frozen
class ListPage:
    """One page of ``thread/list``: the threads and the cursors around them."""

    items: list[ThreadMeta]
    next_cursor: str | None = None
    backwards_cursor: str | None = None


# -- sources -----------------------------------------------------------------------------

_PLAIN_SOURCES = {"cli": "cli", "vscode": "vscode", "exec": "exec", "appServer": "appServer"}
_SUBAGENT_KINDS = {
    "subAgentReview": "review",
    "subAgentCompact": "compact",
    "subAgentThreadSpawn": "thread_spawn",
    "subAgentOther": "other",
}


def source_kind_of(source: Any) -> tuple[str, str | None]:
    """``(kind, sub-agent variant)`` of a session source, for filtering.

    ``"vscode"`` → ``("vscode", None)``; ``{"subAgent": "review"}`` →
    ``("subAgent", "review")``; ``{"subAgent": {"thread_spawn": {...}}}`` →
    ``("subAgent", "thread_spawn")``; ``{"custom": ...}`` → ``("custom", None)``;
    anything unrecognised → ``("unknown", None)``.
    """
    if isinstance(source, str):
        return _PLAIN_SOURCES.get(source, "unknown"), None
    if isinstance(source, dict) and len(source) == 1:
        ((key, value),) = source.items()
        if key == "custom":
            return "custom", None
        if key == "subAgent":
            if isinstance(value, str):
                return "subAgent", value
            if isinstance(value, dict) and len(value) == 1:
                return "subAgent", next(iter(value))
            return "subAgent", None
    return "unknown", None


def kind_filter(kind: str) -> tuple[str, str | None]:
    """What a :data:`SOURCE_KINDS` member matches: ``(kind, variant or None for any)``."""
    if kind in _SUBAGENT_KINDS:
        return "subAgent", _SUBAGENT_KINDS[kind]
    return kind, None


# -- the interface -----------------------------------------------------------------------


@runtime_checkable
class ThreadStore(Protocol):
    """Where threads persist. Every method is a coroutine; see the module docstring."""

    async def open(self) -> None:
        """Get ready (create or repair storage); call once before anything else."""

    async def close(self) -> None:
        """Finish pending writes and release resources; the store is unusable after."""

    async def create(self, meta: ThreadMeta) -> ThreadMeta:
        """Store a new thread; returns ``meta`` with ``path`` set, ``archived`` false.

        Raises :class:`ThreadExists` for a stored id, ``ValueError`` for an id
        that is not a canonical UUID string.
        """
        ...

    async def append(self, thread_id: str, records: Sequence[Mapping[str, Any]]) -> None:
        """Append records (JSON objects) in order; bumps ``updated_at``.

        Records of concurrent calls on one thread keep the order of the calls.
        Raises :class:`ThreadNotFound`; ``ValueError`` for a record whose
        ``type`` is reserved by the store (``session_meta``, ``meta_update``).
        """

    async def sync(self, thread_id: str) -> None:
        """Make what was appended so far survive a power loss (when the store is durable)."""

    async def update(self, thread_id: str, **changes: Any) -> ThreadMeta:
        """Change metadata members (:data:`UPDATABLE_FIELDS`); returns the new metadata.

        ``updated_at`` changes only when given. Raises :class:`ThreadNotFound`,
        ``TypeError`` for a member that cannot be updated or a wrong type.
        """
        ...

    async def get(self, thread_id: str) -> ThreadMeta | None:
        """The metadata of a stored thread, archived or not; ``None`` if unknown."""
        ...

    async def read(self, thread_id: str) -> StoredThread:
        """Metadata and every record; raises :class:`ThreadNotFound`."""
        ...

    async def version(self, thread_id: str) -> str | None:
        """An opaque token that changes whenever the thread's records change.

        Lets callers cache what they built from :meth:`read`; ``None`` when
        the thread is unknown or the store cannot tell (then do not cache).
        """
        ...

    async def list(self, query: ListQuery) -> ListPage:
        """One page of threads; raises :class:`InvalidQuery`/:class:`InvalidCursor`."""
        ...

    async def archive(self, thread_id: str) -> ThreadMeta:
        """Archive; raises :class:`ThreadNotFound`, :class:`AlreadyArchived`."""
        ...

    async def unarchive(self, thread_id: str) -> ThreadMeta:
        """Unarchive; raises :class:`ThreadNotFound`, :class:`NotArchived`."""
        ...

    async def rebuild(self) -> int:
        """Rebuild any derived index from the primary records; returns the thread count."""
        ...
