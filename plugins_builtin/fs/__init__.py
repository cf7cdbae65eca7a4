"""The ``fs`` plugin: the ``fs/*`` method family and ``fs/changed`` watches.

Methods: ``fs/readFile``, ``fs/writeFile``, ``fs/createDirectory``,
``fs/getMetadata``, ``fs/readDirectory``, ``fs/remove``, ``fs/copy``,
``fs/watch``, ``fs/unwatch``. Behaviour, error codes and differences from
the reference are in docs/fs.md.
"""

from __future__ import annotations

from .plugin import FsPlugin, FsSettings

__all__ = ["FsPlugin", "FsSettings"]
