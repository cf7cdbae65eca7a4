"""``[model_providers.<id>]``: the reference's provider table, its built-ins and rules.

The fields, their defaults and the built-in providers follow the reference's
``ModelProviderInfo`` (codex-rs/model-provider-info), so a user's existing
config.toml snippet is accepted unchanged. Every field the reference accepts
is declared, including those this server does not act on (listed in
docs/models.md); an unknown key is an error, as it is for the rest of our
configuration.

Values are checked while the table is structured (attrs validators raising
:class:`kernel.SettingError`), so startup and ``kernel config set`` refuse
the same things. Rules that need the provider's id (built-in ids cannot be
redefined) are applied by :func:`merge_providers` at configure time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from kernel import SettingError, __version__

__all__ = [
    "BUILT_IN_IDS",
    "DEFAULT_OPENAI_BASE_URL",
    "ModelProviderConfig",
    "ProviderAuthConfig",
    "ProviderAwsConfig",
    "ReservedProviderId",
    "built_in_providers",
    "merge_providers",
]

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_REQUEST_MAX_RETRIES = 4
DEFAULT_STREAM_MAX_RETRIES = 5
DEFAULT_STREAM_IDLE_TIMEOUT_MS = 300_000
# The reference silently caps both retry counts at 100.
MAX_RETRIES = 100

OPENAI_ID = "openai"
OLLAMA_ID = "ollama"
LMSTUDIO_ID = "lmstudio"
BUILT_IN_IDS = (OPENAI_ID, OLLAMA_ID, LMSTUDIO_ID)
"""Ids a ``[model_providers.<id>]`` table may not use (the reference refuses them too)."""

_OLLAMA_PORT = 11434
_LMSTUDIO_PORT = 1234


def _not_negative(instance: Any, attribute: attrs.Attribute, value: int | None) -> None:
    if value is not None and value < 0:
        raise SettingError(attribute.name, "must not be negative")


def _positive(instance: Any, attribute: attrs.Attribute, value: int | None) -> None:
    if value is not None and value < 1:
        raise SettingError(attribute.name, "must be at least 1")


def _not_blank(instance: Any, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and not value.strip():
        raise SettingError(attribute.name, "must not be empty")


@attrs.frozen
class ProviderAuthConfig:
    """``[model_providers.<id>.auth]``: a command that prints a bearer token."""

    command: str = attrs.field(validator=_not_blank)
    args: list[str] = attrs.field(factory=list)
    timeout_ms: int = attrs.field(default=5_000, validator=_positive)
    # How long a token is reused before the command runs again; 0: only after a 401.
    refresh_interval_ms: int = attrs.field(default=300_000, validator=_not_negative)
    # Working directory of the command (default: the server's home).
    cwd: str | None = None


@attrs.frozen
class ProviderAwsConfig:
    """``[model_providers.<id>.aws]``: AWS SigV4 signing (accepted, not implemented)."""

    profile: str | None = None
    region: str | None = None


@attrs.frozen
class ModelProviderConfig:
    """One ``[model_providers.<id>]`` table, with the reference's fields and defaults."""

    # Display name; the id is shown when empty.
    name: str = ""
    # Base URL of the OpenAI-compatible API (``/responses`` or
    # ``/chat/completions`` is appended); default https://api.openai.com/v1.
    base_url: str | None = attrs.field(default=None, validator=_not_blank)
    # Environment variable holding the API key, sent as ``Authorization: Bearer``.
    env_key: str | None = attrs.field(default=None, validator=_not_blank)
    # Shown with the "missing API key" error: how to get one.
    env_key_instructions: str | None = None
    # A bearer token written in config.toml (discouraged: prefer env_key).
    experimental_bearer_token: str | None = None
    auth: ProviderAuthConfig | None = None
    aws: ProviderAwsConfig | None = None
    # "responses" (the reference's only wire API today) or "chat" (Chat
    # Completions, which the reference has dropped and this server keeps for
    # Ollama, vLLM, llama.cpp and LM Studio).
    wire_api: Literal["responses", "chat"] = "responses"
    query_params: dict[str, str] | None = None
    http_headers: dict[str, str] | None = None
    # Header name -> environment variable; sent only when the variable is set.
    env_http_headers: dict[str, str] | None = None
    request_max_retries: int | None = attrs.field(default=None, validator=_not_negative)
    stream_max_retries: int | None = attrs.field(default=None, validator=_not_negative)
    stream_idle_timeout_ms: int | None = attrs.field(default=None, validator=_positive)
    websocket_connect_timeout_ms: int | None = attrs.field(default=None, validator=_positive)
    requires_openai_auth: bool = False
    supports_websockets: bool = False

    def __attrs_post_init__(self) -> None:
        """The reference's combination rules (``ModelProviderInfo::validate``)."""
        if self.aws is not None:
            if self.supports_websockets:
                raise SettingError("aws", "cannot be combined with supports_websockets")
            conflicts = self._credential_keys(include_auth=True)
            if conflicts:
                raise SettingError("aws", f"cannot be combined with {', '.join(conflicts)}")
        if self.auth is not None:
            conflicts = self._credential_keys(include_auth=False)
            if conflicts:
                raise SettingError("auth", f"cannot be combined with {', '.join(conflicts)}")

    def _credential_keys(self, include_auth: bool) -> list[str]:
        keys = []
        if self.env_key is not None:
            keys.append("env_key")
        if self.experimental_bearer_token is not None:
            keys.append("experimental_bearer_token")
        if include_auth and self.auth is not None:
            keys.append("auth")
        if self.requires_openai_auth:
            keys.append("requires_openai_auth")
        return keys

    # -- effective values (the reference's defaults and caps) ------------------------

    def effective_base_url(self) -> str:
        """The base URL without a trailing slash (requests append ``/responses``...)."""
        return (self.base_url or DEFAULT_OPENAI_BASE_URL).rstrip("/")

    def request_retries(self) -> int:
        value = self.request_max_retries
        return min(DEFAULT_REQUEST_MAX_RETRIES if value is None else value, MAX_RETRIES)

    def stream_retries(self) -> int:
        value = self.stream_max_retries
        return min(DEFAULT_STREAM_MAX_RETRIES if value is None else value, MAX_RETRIES)

    def idle_timeout_seconds(self) -> float:
        value = self.stream_idle_timeout_ms
        return (DEFAULT_STREAM_IDLE_TIMEOUT_MS if value is None else value) / 1000

    def display_name(self, provider_id: str) -> str:
        return self.name.strip() or provider_id


def _env(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    return value if value is not None and value.strip() else None


def _oss_provider(port: int, environ: Mapping[str, str]) -> ModelProviderConfig:
    # The reference's experimental CODEX_OSS_BASE_URL / CODEX_OSS_PORT overrides.
    raw_port = _env(environ, "CODEX_OSS_PORT")
    if raw_port is not None and raw_port.strip().isdigit() and 0 < int(raw_port) < 65536:
        port = int(raw_port)
    base_url = _env(environ, "CODEX_OSS_BASE_URL") or f"http://localhost:{port}/v1"
    return ModelProviderConfig(name="gpt-oss", base_url=base_url, wire_api="responses")


def built_in_providers(
    openai_base_url: str | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, ModelProviderConfig]:
    """The reference's built-in providers: ``openai``, ``ollama`` and ``lmstudio``.

    ``openai_base_url`` is the top-level config key of the same name (the
    reference's way to point the built-in provider at a proxy or stand-in).
    """
    env = os.environ if environ is None else environ
    openai = ModelProviderConfig(
        name="OpenAI",
        base_url=openai_base_url or None,
        wire_api="responses",
        http_headers={"version": __version__},
        env_http_headers={
            "OpenAI-Organization": "OPENAI_ORGANIZATION",
            "OpenAI-Project": "OPENAI_PROJECT",
        },
        requires_openai_auth=True,
        supports_websockets=True,
    )
    return {
        OPENAI_ID: openai,
        OLLAMA_ID: _oss_provider(_OLLAMA_PORT, env),
        LMSTUDIO_ID: _oss_provider(_LMSTUDIO_PORT, env),
    }


class ReservedProviderId(ValueError):
    """A ``[model_providers.<id>]`` table uses a built-in id; ``ids`` names them."""

    def __init__(self, ids: list[str]) -> None:
        names = ", ".join(f"`{i}`" for i in ids)
        super().__init__(
            f"{names} {'is a' if len(ids) == 1 else 'are'} built-in provider "
            f"id{'' if len(ids) == 1 else 's'}; built-in providers cannot be overridden. "
            "Rename your provider (for example `openai-custom`) and select it with "
            "model_provider"
        )
        self.ids = ids


def merge_providers(
    configured: Mapping[str, ModelProviderConfig],
    built_in: Mapping[str, ModelProviderConfig],
) -> dict[str, ModelProviderConfig]:
    """Built-ins plus the user's providers; a user table with a built-in id is refused."""
    reserved = sorted(key for key in configured if key in built_in)
    if reserved:
        raise ReservedProviderId(reserved)
    return {**built_in, **configured}
