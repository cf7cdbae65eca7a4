"""The ``models`` plugin: model providers for the threads family.

Implements ``threads_model_provider`` and ``threads_model_stream`` (see
plugins_builtin/threads/hookspecs.py) for every ``[model_providers.<id>]``
of config.toml and the built-in ``openai``, ``ollama`` and ``lmstudio``:
the Responses API over server-sent events, and Chat Completions for local
servers (``wire_api = "chat"``). Configuration, retries, errors and what is
sent are in docs/models.md.
"""

from __future__ import annotations

from .config import ModelProviderConfig, ProviderAuthConfig, ProviderAwsConfig
from .plugin import ModelsPlugin, ModelsSettings

__all__ = [
    "ModelProviderConfig",
    "ModelsPlugin",
    "ModelsSettings",
    "ProviderAuthConfig",
    "ProviderAwsConfig",
]
