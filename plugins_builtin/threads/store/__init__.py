"""The thread store: threads' metadata and records, behind a small interface.

:mod:`.api` is the interface (:class:`ThreadStore` and its values and
errors), free of storage details so another backend (PostgreSQL, in a contrib
package) can implement it. :class:`LocalThreadStore` is the local one: JSONL
rollouts under the home plus a SQLite index in ``state.sqlite``.
"""

from __future__ import annotations

from .api import (
    DEFAULT_LIMIT,
    INTERACTIVE_SOURCE_KINDS,
    MAX_LIMIT,
    SORT_KEYS,
    SOURCE_KINDS,
    UPDATABLE_FIELDS,
    AlreadyArchived,
    InvalidCursor,
    InvalidQuery,
    ListPage,
    ListQuery,
    NotArchived,
    StoreClosed,
    StoredThread,
    ThreadExists,
    ThreadMeta,
    ThreadNotFound,
    ThreadStore,
    ThreadStoreError,
)
from .local import LocalThreadStore, ReconcileReport

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
    "LocalThreadStore",
    "NotArchived",
    "ReconcileReport",
    "StoreClosed",
    "StoredThread",
    "ThreadExists",
    "ThreadMeta",
    "ThreadNotFound",
    "ThreadStore",
    "ThreadStoreError",
]
