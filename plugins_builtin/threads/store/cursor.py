"""Opaque keyset cursors for ``thread/list``.

A cursor names a *gap* in the listing: just after or just before the thread
at ``(value, id)`` (the sort value and id of the thread it was made from),
plus which way to page from there. Because it names a position and not an
offset, threads created while a client pages do not shift the pages.

The token is base64url (unpadded) of a small JSON object; clients treat it as
opaque, and the store checks that it was made for the same sort key and
direction. Nothing here is specific to SQLite: a PostgreSQL store builds the
same ``(key, id) <op> (value, id)`` comparison from :meth:`Cursor.operator`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Literal

import attrs
import orjson

from .api import InvalidCursor

__all__ = ["Cursor", "Side"]

_VERSION = 1
_MAX_TOKEN = 1024  # a cursor we made is < 200 characters

Side = Literal["after", "before"]


@attrs.frozen
class Cursor:
    """A position in one ordering (``sort_key``, ``direction``) and a paging sense.

    ``value`` ``None`` is the start of the listing (only paged forward).
    ``side`` says whether the gap lies after or before the anchor thread,
    ``backward`` whether the page lies before the gap (a ``backwards_cursor``)
    or after it (a ``next_cursor``).
    """

    sort_key: str
    direction: str
    value: int | None
    id: str
    side: Side = "after"
    backward: bool = False

    def operator(self) -> str | None:
        """The SQL comparison ``(key, id) <op> (value, id)`` that selects the page.

        "After" means later in the listing: smaller for ``desc``, larger for
        ``asc``. Paging forward from the gap after a thread excludes it, from
        the gap before includes it; paging backward is the mirror image.
        ``None`` for the start (no constraint).
        """
        if self.value is None:
            return None
        later, earlier = ("<", ">") if self.direction == "desc" else (">", "<")
        if not self.backward:
            return later if self.side == "after" else later + "="
        return earlier + "=" if self.side == "after" else earlier

    def encode(self) -> str:
        """The opaque token."""
        body = {
            "v": _VERSION,
            "key": self.sort_key,
            "dir": self.direction,
            "at": None if self.value is None else [self.value, self.id],
            "side": self.side,
            "page": "back" if self.backward else "next",
        }
        return base64.urlsafe_b64encode(orjson.dumps(body)).rstrip(b"=").decode("ascii")

    @classmethod
    def decode(cls, token: str, sort_key: str, direction: str) -> Cursor:
        """Parse ``token`` for a listing by ``sort_key``/``direction``.

        Raises :class:`InvalidCursor` (a ``ValueError``) saying what is wrong.
        """
        if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN:
            raise InvalidCursor("malformed cursor (not a token this server issued)")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            body = orjson.loads(raw)
        except (binascii.Error, ValueError):
            raise InvalidCursor("malformed cursor (not a token this server issued)") from None
        if not isinstance(body, dict) or body.get("v") != _VERSION:
            raise InvalidCursor("malformed cursor (not a token this server issued)")
        at, side, page = body.get("at"), body.get("side"), body.get("page")
        valid_at = at is None or (
            isinstance(at, list)
            and len(at) == 2
            and isinstance(at[0], int)
            and not isinstance(at[0], bool)
            and isinstance(at[1], str)
        )
        if not valid_at or side not in ("after", "before") or page not in ("next", "back"):
            raise InvalidCursor("malformed cursor (not a token this server issued)")
        if at is None and page == "back":
            raise InvalidCursor("malformed cursor (not a token this server issued)")
        if body.get("key") != sort_key or body.get("dir") != direction:
            raise InvalidCursor(
                f"the cursor was made for sort key {body.get('key')!r} and direction "
                f"{body.get('dir')!r}, not {sort_key!r} and {direction!r}"
            )
        value, anchor = (None, "") if at is None else (at[0], at[1])
        return cls(sort_key, direction, value, anchor, side, page == "back")
