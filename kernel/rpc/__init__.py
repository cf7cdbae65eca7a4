"""JSON-RPC core: codec, error codes, converter, registry and dispatch."""

from __future__ import annotations

__all__: list[str] = []
