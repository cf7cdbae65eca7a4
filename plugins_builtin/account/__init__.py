"""The ``account`` plugin: ``account/read``, API-key sign-in and sign-out, rate limits.

See docs/account.md.
"""

from __future__ import annotations

from .plugin import AccountPlugin

__all__ = ["AccountPlugin"]
