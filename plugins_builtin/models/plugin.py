"""The ``models`` plugin: model providers for the threads family.

It implements two hooks the threads family publishes (by name; this module
imports nothing from that family): ``threads_model_provider`` describes a
provider id, ``threads_model_stream`` sends one Responses API request and
streams its events. Providers come from ``[model_providers.<id>]`` in
config.toml plus the reference's built-ins (``openai``, ``ollama``,
``lmstudio``). Requests run on the kernel's event loop through one aiohttp
session, opened at startup and closed at shutdown.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import orjson
from multidict import CIMultiDict

from kernel import Kernel, SettingError, hookimpl
from kernel.config import Config
from kernel.outbound import PURPOSE_MODEL, OutboundRequest, outbound_headers

from .auth import TokenSource
from .catalog import ModelCatalog
from .chat_request import chat_request_body
from .chat_stream import ChatTranslator
from .config import (
    ModelProviderConfig,
    ReservedProviderId,
    built_in_providers,
    merge_providers,
)
from .methods import ModelMethods
from .published import ModelsAccess
from .responses import ResponsesTranslator, Translator, events_from_response_object
from .sse import SseEvent
from .stream import Decorator, ModelRequest, RetryPolicy, model_stream

__all__ = ["ModelsPlugin", "ModelsSettings"]

log = logging.getLogger("plugins.models")


@attrs.frozen
class ModelsSettings:
    """``[kernel_plugins.models]``: HTTP timing shared by every provider."""

    # Establishing a TCP/TLS connection to a provider may take this long.
    connect_timeout_seconds: float = 30.0
    # First retry delay; each later retry doubles it (±10% jitter).
    retry_base_delay_ms: int = 200
    # No computed retry delay exceeds this.
    max_retry_delay_seconds: float = 30.0
    # A provider's Retry-After is honoured up to this many seconds.
    max_retry_after_seconds: float = 60.0

    def check(self, config: Config) -> None:
        """Positive timeouts, non-negative delays."""
        if not self.connect_timeout_seconds > 0:
            raise SettingError("connect_timeout_seconds", "must be greater than 0")
        if self.retry_base_delay_ms < 0:
            raise SettingError("retry_base_delay_ms", "must not be negative")
        for name in ("max_retry_delay_seconds", "max_retry_after_seconds"):
            if getattr(self, name) < 0:
                raise SettingError(name, "must not be negative")

    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            base_delay=self.retry_base_delay_ms / 1000,
            max_delay=self.max_retry_delay_seconds,
            max_retry_after=self.max_retry_after_seconds,
            connect_timeout=self.connect_timeout_seconds,
        )


def _header_ok(name: str, value: str) -> bool:
    return bool(name) and not any(c in name + value for c in "\r\n\0") and ":" not in name


def _responses_json(translator: Translator, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, Mapping):
        value = {"error": {"message": "the answer is not a JSON object"}}
    return events_from_response_object(value)


def _chat_json(translator: Translator, value: Any) -> list[dict[str, Any]]:
    events = translator.feed(SseEvent("message", orjson.dumps(value).decode()))
    return events + (translator.at_eof() or [])


GPT5_CONTEXT_WINDOW = 272_000
"""The GPT-5 family's context window (the reference's bundled model metadata)."""


class ModelsPlugin(ModelMethods):
    """Serves ``threads_model_provider`` and ``threads_model_stream``, and the model lists."""

    def __init__(self) -> None:
        self.providers: dict[str, ModelProviderConfig] = built_in_providers()
        self.policy = RetryPolicy()
        self.tokens = TokenSource(Path.home())
        self.session: aiohttp.ClientSession | None = None
        self.kernel: Kernel | None = None
        self.catalog = ModelCatalog()

    # -- kernel hooks ------------------------------------------------------------------

    @hookimpl
    def kernel_settings(self) -> type[ModelsSettings]:
        return ModelsSettings

    @hookimpl
    def kernel_config_keys(self) -> dict[str, Any]:
        return {
            "model_providers": dict[str, ModelProviderConfig],
            "openai_base_url": str | None,
        }

    @hookimpl
    def kernel_configure(self, kernel: Kernel, settings: ModelsSettings) -> None:
        self.providers = self._providers(kernel.config)
        self.policy = settings.policy()
        self.tokens = TokenSource(kernel.home)
        self.kernel = kernel
        kernel.services["models"] = ModelsAccess(self)

    @staticmethod
    def _providers(config: Config) -> dict[str, ModelProviderConfig]:
        configured: dict[str, ModelProviderConfig] = {}
        if config.get("model_providers") is not None:
            configured = config.structure_value("model_providers", dict[str, ModelProviderConfig])
        openai_base_url = config.structure_value("openai_base_url", str | None)
        try:
            return merge_providers(configured, built_in_providers(openai_base_url))
        except ReservedProviderId as exc:
            raise config.error(f"model_providers.{exc.ids[0]}", str(exc)) from None

    @hookimpl
    def kernel_config_changed(self, kernel: Kernel, changed: Sequence[str]) -> None:
        """Providers added or edited in config.toml serve the next request."""
        if any(p.split(".", 1)[0] in ("model_providers", "openai_base_url") for p in changed):
            self.providers = self._providers(kernel.config)
            self.catalog = ModelCatalog()  # its lists belong to the old base URLs

    @hookimpl
    async def kernel_startup(self, kernel: Kernel) -> None:
        self._session()
        log.debug("model providers: %s", ", ".join(sorted(self.providers)))

    @hookimpl
    async def kernel_shutdown(self, kernel: Kernel) -> None:
        session, self.session = self.session, None
        if session is not None:
            await session.close()

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.policy.connect_timeout),
                trust_env=True,
            )
        return self.session

    # -- threads hooks -----------------------------------------------------------------

    @hookimpl
    def threads_model_provider(self, provider_id: str) -> dict[str, Any] | None:
        config = self.providers.get(provider_id)
        if config is None:
            return None
        return {
            "id": provider_id,
            "name": config.display_name(provider_id),
            "wireApi": config.wire_api,
            "requiresOpenaiAuth": config.requires_openai_auth,
            "baseUrl": config.effective_base_url(),
        }

    @hookimpl
    async def threads_model_metadata(self, provider_id: str, model: str) -> dict[str, Any] | None:
        """The context window: the GPT-5 family's, else what the provider's ``/models`` says.

        ``/models`` is asked only for models not known here (once per five
        minutes per provider, shared with ``model/list``).
        """
        config = self.providers.get(provider_id)
        if config is None:
            return None
        if model.startswith("gpt-5"):
            return {"contextWindow": GPT5_CONTEXT_WINDOW}
        window = await self.catalog.context_window(
            self._session(), self.tokens, provider_id, config, model
        )
        return None if window is None else {"contextWindow": window}

    @hookimpl
    def threads_model_stream(
        self,
        provider_id: str,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        context: Any,
    ) -> AsyncIterator[dict[str, Any]] | None:
        config = self.providers.get(provider_id)
        if config is None:
            return None
        request = self._request(provider_id, config, body, headers)
        if self.kernel is not None:
            request = attrs.evolve(request, decorate=self._decorator(provider_id, config, context))
        return model_stream(self._session(), self.tokens, request, self.policy)

    def _decorator(self, provider_id: str, config: ModelProviderConfig, context: Any) -> Decorator:
        """Asks ``kernel_outbound_request_headers`` before each HTTP attempt of one request.

        Attempts are counted across request and stream retries; each one is
        asked again (a plugin may add a single-use token).
        """
        kernel = self.kernel
        assert kernel is not None
        attempts = 0

        async def decorate(url: str, headers: CIMultiDict[str]) -> None:
            nonlocal attempts
            attempts += 1
            request = OutboundRequest(
                purpose=getattr(context, "purpose", None) or PURPOSE_MODEL,
                url=url,
                provider_id=provider_id,
                requires_openai_auth=config.requires_openai_auth,
                connection=getattr(context, "connection", None),
                thread_id=getattr(context, "thread_id", None),
                turn_id=getattr(context, "turn_id", None),
                attempt=attempts,
            )
            headers.update(await outbound_headers(kernel.plugins, request, headers.keys()))

        return decorate

    # -- requests ----------------------------------------------------------------------

    def _request(
        self,
        provider_id: str,
        config: ModelProviderConfig,
        body: Mapping[str, Any],
        caller_headers: Mapping[str, str],
    ) -> ModelRequest:
        headers: CIMultiDict[str] = CIMultiDict()
        extra = dict(caller_headers or {})
        extra.update(config.http_headers or {})
        for header, variable in (config.env_http_headers or {}).items():
            value = os.environ.get(variable)
            if value is not None and value.strip():
                extra[header] = value
        for name, value in extra.items():
            if _header_ok(str(name), str(value)):
                headers[str(name)] = str(value)
            else:
                log.debug("model provider %s: leaving out an invalid header", provider_id)
        headers["Content-Type"] = "application/json"
        headers["Accept"] = "text/event-stream"
        base = config.effective_base_url()
        if config.wire_api == "chat":
            payload: dict[str, Any] = chat_request_body(body)
            model = body.get("model")
            url = f"{base}/chat/completions"
            return ModelRequest(
                provider_id=provider_id,
                config=config,
                url=url,
                body=orjson.dumps(payload),
                headers=headers,
                make_translator=lambda: ChatTranslator(model if isinstance(model, str) else None),
                json_answer=_chat_json,
            )
        payload = {**body, "stream": True}
        return ModelRequest(
            provider_id=provider_id,
            config=config,
            url=f"{base}/responses",
            body=orjson.dumps(payload),
            headers=headers,
            make_translator=ResponsesTranslator,
            json_answer=_responses_json,
        )
