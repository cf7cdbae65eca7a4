"""What the models family offers other families: ``kernel.services["models"]``.

A family that calls a provider's API itself (the ``realtime`` family opens
the Realtime API's websocket) needs the same connection details the model
requests use, without importing this package::

    models = kernel.services.get("models")
    base = models.base_url("openai")                   # https://api.openai.com/v1
    headers = await models.auth_headers("openai")      # {"Authorization": "Bearer ..."}

Credentials are resolved at call time through the family's
:class:`~.auth.TokenSource` (``env_key``, ``experimental_bearer_token``, the
``auth`` command, ``OPENAI_API_KEY``, ``<home>/auth.json``), exactly as for
model requests. They are never logged, and the errors raised here say what
to configure without carrying a secret. The error classes are attributes of
the service object (``models.UnknownProvider``, ``models.MissingCredentials``)
so a caller catches them without importing this module.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .auth import CredentialError

if TYPE_CHECKING:
    from .config import ModelProviderConfig
    from .plugin import ModelsPlugin

__all__ = ["MissingCredentials", "ModelsAccess", "UnknownProvider"]


class UnknownProvider(LookupError):
    """No ``[model_providers.<id>]`` table (nor built-in) has this id."""


class MissingCredentials(LookupError):
    """The provider's credentials cannot be resolved; the message says what to set.

    ``code`` is the models family's short name for the cause
    (``missing_api_key``, ``auth_command_failed``, ``unsupported_auth``, or
    ``no_credentials`` for a provider configured without any).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ModelsAccess:
    """Provider connection details for other families; see the module docstring."""

    UnknownProvider = UnknownProvider
    MissingCredentials = MissingCredentials

    def __init__(self, plugin: ModelsPlugin) -> None:
        self._plugin = plugin

    def _config(self, provider_id: str) -> ModelProviderConfig:
        config = self._plugin.providers.get(provider_id)
        if config is None:
            raise UnknownProvider(f"model provider {provider_id!r} is not configured")
        return config

    def provider_ids(self) -> list[str]:
        """Every provider id this server knows, sorted."""
        return sorted(self._plugin.providers)

    def base_url(self, provider_id: str) -> str:
        """The provider's effective base URL, without a trailing slash.

        ``base_url`` of its table, else the built-in default (the top-level
        ``openai_base_url`` for the built-in ``openai``). Raises
        :class:`UnknownProvider`.
        """
        return self._config(provider_id).effective_base_url()

    def requires_openai_auth(self, provider_id: str) -> bool:
        """Whether the provider is authenticated with OpenAI credentials."""
        return self._config(provider_id).requires_openai_auth

    def extra_headers(self, provider_id: str) -> dict[str, str]:
        """The provider's ``http_headers`` plus its ``env_http_headers`` whose variable is set.

        What model requests also carry (``OpenAI-Organization``,
        ``OpenAI-Project`` for the built-in ``openai``). Values may be
        sensitive: send them, never log them.
        """
        config = self._config(provider_id)
        headers = dict(config.http_headers or {})
        for header, variable in (config.env_http_headers or {}).items():
            value = os.environ.get(variable)
            if value is not None and value.strip():
                headers[header] = value
        return headers

    async def auth_headers(self, provider_id: str, *, required: bool = False) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}`` from the provider's credentials.

        An empty mapping when the provider is configured without credentials
        (a local server), unless ``required``: then, as when a configured
        credential cannot be resolved, :class:`MissingCredentials` is raised
        with a message naming the key or variable to set. Raises
        :class:`UnknownProvider` for an unknown id.
        """
        config = self._config(provider_id)
        try:
            credentials = await self._plugin.tokens.credentials(provider_id, config)
        except CredentialError as exc:
            raise MissingCredentials(exc.code, exc.message) from None
        if credentials.token is None:
            if required:
                raise MissingCredentials(
                    "no_credentials",
                    f"model provider {provider_id!r} has no credentials: set "
                    f"model_providers.{provider_id}.env_key (or experimental_bearer_token, "
                    "or auth.command)",
                )
            return {}
        return {"Authorization": f"Bearer {credentials.token}"}

    def describe(self, provider_id: str) -> Mapping[str, object]:
        """``{id, name, baseUrl, requiresOpenaiAuth, wireApi}``: no secrets."""
        config = self._config(provider_id)
        return {
            "id": provider_id,
            "name": config.display_name(provider_id),
            "baseUrl": config.effective_base_url(),
            "requiresOpenaiAuth": config.requires_openai_auth,
            "wireApi": config.wire_api,
        }
