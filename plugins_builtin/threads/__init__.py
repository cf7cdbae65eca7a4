"""The ``threads`` plugin: threads that persist, and turns that run against a model."""

from .plugin import ThreadsPlugin

__all__ = ["ThreadsPlugin"]
