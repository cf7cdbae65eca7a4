"""What ``model/list`` shows: the provider's own ``/models``, else the configured model.

The provider is asked ``GET {base_url}/models`` (with its credentials and
query parameters) and the answer is kept for five minutes. Both shapes in
use are read: OpenAI-compatible ``{"data": [{"id": ...}]}`` (OpenAI,
Ollama, vLLM, LM Studio) and the Codex catalog ``{"models": [{"slug":
...}]}``. When the provider has no such endpoint, fails or needs a
credential that is not there, the list is the configured ``model`` alone,
so a client always has something to show. The configured model is always
listed, first and as the default.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from .auth import CredentialError, TokenSource
from .config import ModelProviderConfig

__all__ = ["ModelCatalog", "model_entry"]

log = logging.getLogger("plugins.models")

_TTL_SECONDS = 300.0
_FETCH_TIMEOUT = aiohttp.ClientTimeout(total=5.0)
_EFFORTS = (
    ("low", "Fast answers with light reasoning"),
    ("medium", "Balanced speed and reasoning depth"),
    ("high", "Deeper reasoning for complex problems"),
)


def model_entry(slug: str, *, default: bool, display_name: str | None = None) -> dict[str, Any]:
    """A ``Model`` of ``model/list`` for ``slug``."""
    return {
        "id": slug,
        "model": slug,
        "upgrade": None,
        "upgradeInfo": None,
        "availabilityNux": None,
        "displayName": display_name or slug,
        "description": "",
        "modelSpecialty": None,
        "hidden": False,
        "supportedReasoningEfforts": [
            {"reasoningEffort": effort, "description": text} for effort, text in _EFFORTS
        ],
        "defaultReasoningEffort": "medium",
        "inputModalities": ["text", "image"],
        "supportsPersonality": False,
        "multiAgentVersion": None,
        "additionalSpeedTiers": [],
        "serviceTiers": [],
        "defaultServiceTier": None,
        "availableAccessPrograms": None,
        "isDefault": default,
    }


_WINDOW_KEYS = ("context_window", "max_model_len", "context_length", "max_context_length")


def _window(entry: Mapping[str, Any]) -> int | None:
    """The context window an entry states (Codex catalog, vLLM, LM Studio, OpenRouter...)."""
    for key in _WINDOW_KEYS:
        value = entry.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _slugs(answer: Any) -> list[tuple[str, str | None, int | None]]:
    """(slug, display name, context window) of a ``/models`` answer, in its order."""
    if not isinstance(answer, Mapping):
        return []
    found: list[tuple[str, str | None, int | None]] = []
    for entry in answer.get("data") or []:
        if isinstance(entry, Mapping) and isinstance(entry.get("id"), str):
            found.append((entry["id"], None, _window(entry)))
    for entry in answer.get("models") or []:
        if isinstance(entry, Mapping) and isinstance(entry.get("slug"), str):
            if entry.get("visibility") in ("hide", "hidden"):
                continue
            name = entry.get("display_name")
            found.append((entry["slug"], name if isinstance(name, str) else None, _window(entry)))
    return found


class ModelCatalog:
    """Fetches and caches each provider's model list."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, list[tuple[str, str | None, int | None]]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def models(
        self,
        session: aiohttp.ClientSession,
        tokens: TokenSource,
        provider_id: str,
        config: ModelProviderConfig,
        default_model: str,
    ) -> list[dict[str, Any]]:
        """The provider's models as ``Model`` entries, ``default_model`` first."""
        fetched = await self._fetched(session, tokens, provider_id, config)
        entries = [model_entry(default_model, default=True)]
        seen = {default_model}
        for slug, name, _ in fetched:
            if slug not in seen:
                seen.add(slug)
                entries.append(model_entry(slug, default=False, display_name=name))
        return entries

    async def context_window(
        self,
        session: aiohttp.ClientSession,
        tokens: TokenSource,
        provider_id: str,
        config: ModelProviderConfig,
        model: str,
    ) -> int | None:
        """The context window the provider's ``/models`` states for ``model``, if any."""
        for slug, _, window in await self._fetched(session, tokens, provider_id, config):
            if slug == model and window is not None:
                return window
        return None

    async def _fetched(
        self,
        session: aiohttp.ClientSession,
        tokens: TokenSource,
        provider_id: str,
        config: ModelProviderConfig,
    ) -> list[tuple[str, str | None, int | None]]:
        lock = self._locks.setdefault(provider_id, asyncio.Lock())
        async with lock:
            cached = self._cache.get(provider_id)
            if cached is not None and time.monotonic() - cached[0] < _TTL_SECONDS:
                return cached[1]
            found = await self._fetch(session, tokens, provider_id, config)
            self._cache[provider_id] = (time.monotonic(), found)
            return found

    async def _fetch(
        self,
        session: aiohttp.ClientSession,
        tokens: TokenSource,
        provider_id: str,
        config: ModelProviderConfig,
    ) -> list[tuple[str, str | None, int | None]]:
        headers = dict(config.http_headers or {})
        try:
            credentials = await tokens.credentials(provider_id, config)
        except CredentialError as exc:
            log.debug("model/list: provider %s has no credential (%s)", provider_id, exc.code)
            return []
        if credentials.token:
            headers["Authorization"] = f"Bearer {credentials.token}"
        url = f"{config.effective_base_url()}/models"
        try:
            async with session.get(
                url, headers=headers, params=config.query_params or None, timeout=_FETCH_TIMEOUT
            ) as response:
                if response.status != 200:
                    log.debug("model/list: %s answered %d", url, response.status)
                    return []
                return _slugs(await response.json(content_type=None))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.debug("model/list: %s failed: %s", url, type(exc).__name__)
            return []
