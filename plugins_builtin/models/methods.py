"""The models family's methods: ``model/list`` and ``modelProvider/*``.

A mixin of :class:`~.plugin.ModelsPlugin`; shapes are the reference's
(docs/models.md, "Methods").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from kernel import RequestContext, RpcError, method
from kernel.rpc.errors import INVALID_REQUEST

from .catalog import ModelCatalog

if TYPE_CHECKING:
    import aiohttp

    from kernel import Kernel

    from .auth import TokenSource
    from .config import ModelProviderConfig

__all__ = ["ModelMethods"]

DEFAULT_MODEL = "gpt-5.5"
DEFAULT_PROVIDER = "openai"


@attrs.frozen
class ModelListParams:
    """A page of the models a provider offers."""

    model_provider: str | None = None
    cursor: str | None = None
    limit: int | None = None
    include_hidden: bool | None = None


def _not_configured(provider: str) -> RpcError:
    return RpcError(
        INVALID_REQUEST,
        f"This chat uses model provider “{provider}”, which is no longer configured. "
        "Restore this provider’s configuration to continue.",  # noqa: RUF001 (the reference's text)
        {"type": "modelProviderNotConfigured", "modelProvider": provider},
    )


class ModelMethods:
    """Mixin: the plugin provides ``providers``, ``tokens``, ``kernel`` and ``_session()``."""

    providers: dict[str, ModelProviderConfig]
    tokens: TokenSource
    kernel: Kernel | None
    catalog: ModelCatalog

    def _session(self) -> aiohttp.ClientSession:
        raise NotImplementedError

    def _defaults(self) -> tuple[str, str]:
        """(default provider id, default model) from config.toml."""
        config = self.kernel.config if self.kernel is not None else None
        provider = (config.get("model_provider") if config else None) or DEFAULT_PROVIDER
        model = (config.get("model") if config else None) or DEFAULT_MODEL
        return str(provider), str(model)

    @method("model/list")
    async def model_list(self, params: ModelListParams, ctx: RequestContext) -> dict[str, Any]:
        """The provider's models (its ``/models``), the configured model first; offset cursor."""
        default_provider, default_model = self._defaults()
        provider = params.model_provider or default_provider
        config = self.providers.get(provider)
        if config is None:
            raise _not_configured(provider)
        entries = await self.catalog.models(
            self._session(), self.tokens, provider, config, default_model
        )
        if not params.include_hidden:
            entries = [e for e in entries if not e["hidden"]]
        start = 0
        if params.cursor is not None:
            if not params.cursor.isdigit() or int(params.cursor) > len(entries):
                raise RpcError(INVALID_REQUEST, f"invalid cursor: {params.cursor}")
            start = int(params.cursor)
        if params.limit is not None and params.limit < 1:
            raise RpcError(-32602, "Invalid params: limit: must be at least 1")
        end = len(entries) if params.limit is None else min(len(entries), start + params.limit)
        return {
            "data": entries[start:end],
            "nextCursor": str(end) if end < len(entries) else None,
        }

    @method("modelProvider/list")
    def model_provider_list(self, params: None, ctx: RequestContext) -> dict[str, Any]:
        """Every provider: built-ins and ``[model_providers.<id>]``, sorted by id."""
        default_provider, _ = self._defaults()
        data = []
        for provider_id in sorted(self.providers):
            config = self.providers[provider_id]
            data.append(
                {
                    "id": provider_id,
                    "name": config.display_name(provider_id),
                    "canEdit": False,
                    "baseUrl": config.base_url,
                    "settings": {"type": "openai"},
                }
            )
        return {"data": data, "defaultProviderId": default_provider, "canChangeDefault": True}

    @method("modelProvider/capabilities/read")
    def model_provider_capabilities(self, params: None, ctx: RequestContext) -> dict[str, Any]:
        """Hosted tools are not offered by this server: no image generation, no web search."""
        default_provider, _ = self._defaults()
        if default_provider not in self.providers:
            raise _not_configured(default_provider)
        return {"imageGeneration": False, "webSearch": False}
