"""The ``hooks`` family: hook discovery, trust and ``hooks/list``, and hook commands in turns."""

from .plugin import HooksPlugin

__all__ = ["HooksPlugin"]
