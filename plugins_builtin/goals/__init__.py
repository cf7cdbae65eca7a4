"""The ``goals`` family: a thread's goal, the model's goal tools, bounded continuation."""

from .plugin import GoalsPlugin

__all__ = ["GoalsPlugin"]
