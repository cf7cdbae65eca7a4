"""Built-in method families, each a plugin in its own folder.

They are declared as ``kernel.plugins`` entry points in pyproject.toml and
load exactly like third-party plugins; the kernel never imports them.
"""

from __future__ import annotations

__all__: list[str] = []
