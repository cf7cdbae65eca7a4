"""The ``config`` family: the config methods over the kernel's layered configuration."""

from .plugin import ConfigPlugin

__all__ = ["ConfigPlugin"]
