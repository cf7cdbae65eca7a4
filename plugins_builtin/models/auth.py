"""Where a provider's bearer token comes from, and the error when it is missing.

In the reference's order: ``env_key`` (the variable must be set and
non-blank once named), ``experimental_bearer_token``, the ``auth`` command,
and, for providers with ``requires_openai_auth`` (the built-in ``openai``),
``OPENAI_API_KEY``, then the key stored by ``account/login/start`` in
``<home>/auth.json`` (the reference's file: ``{"auth_mode": "apikey",
"OPENAI_API_KEY": "..."}``). A provider with none of these sends no
``Authorization`` header. Tokens are read at request time and never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path

import attrs

from .config import ModelProviderConfig

__all__ = ["CredentialError", "Credentials", "TokenSource"]

log = logging.getLogger("plugins.models")

OPENAI_API_KEY = "OPENAI_API_KEY"


class CredentialError(Exception):
    """No usable credential; the message says what to set (it holds no secret)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@attrs.frozen
class Credentials:
    """A token (or None) and the config key to blame when the provider rejects it."""

    token: str | None
    hint: str | None
    from_command: bool = False


def _env(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    return value if value is not None and value.strip() else None


class TokenSource:
    """Resolves credentials for the providers of one kernel; caches ``auth`` command tokens."""

    def __init__(self, home: Path, environ: Mapping[str, str] | None = None) -> None:
        self.home = home
        self.environ = os.environ if environ is None else environ
        self._cached: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def credentials(
        self, provider_id: str, config: ModelProviderConfig, refresh: bool = False
    ) -> Credentials:
        """The credentials to send now; ``refresh`` reruns an ``auth`` command."""
        if config.aws is not None:
            raise CredentialError(
                "unsupported_auth",
                f"model provider {provider_id!r} uses AWS SigV4 signing "
                f"(model_providers.{provider_id}.aws), which this server does not implement",
            )
        if config.env_key is not None:
            token = _env(self.environ, config.env_key)
            if token is None:
                extra = f" ({config.env_key_instructions})" if config.env_key_instructions else ""
                raise CredentialError(
                    "missing_api_key",
                    f"model provider {provider_id!r} needs an API key: set {config.env_key} "
                    f"(model_providers.{provider_id}.env_key) in the server's environment"
                    f"{extra}",
                )
            return Credentials(token, f"the value of {config.env_key}")
        if config.experimental_bearer_token is not None:
            hint = f"model_providers.{provider_id}.experimental_bearer_token"
            return Credentials(config.experimental_bearer_token, hint)
        if config.auth is not None:
            token = await self._command_token(provider_id, config, refresh)
            return Credentials(token, f"model_providers.{provider_id}.auth.command", True)
        if config.requires_openai_auth:
            token = _env(self.environ, OPENAI_API_KEY)
            hint = f"the value of {OPENAI_API_KEY}"
            if token is None:
                token, hint = self.stored_api_key(), "the API key stored with account/login/start"
            if token is None:
                raise CredentialError(
                    "missing_api_key",
                    f"model provider {provider_id!r} needs an OpenAI API key: set "
                    f"{OPENAI_API_KEY} in the server's environment (or name another variable "
                    f"with model_providers.{provider_id}.env_key)",
                )
            return Credentials(token, hint)
        return Credentials(None, None)

    def stored_api_key(self) -> str | None:
        """The API key in ``<home>/auth.json``, if one was stored there."""
        try:
            with open(self.home / "auth.json", encoding="utf-8") as handle:
                stored = json.load(handle)
        except (OSError, ValueError):
            return None
        key = stored.get(OPENAI_API_KEY) if isinstance(stored, dict) else None
        return key if isinstance(key, str) and key.strip() else None

    async def _command_token(
        self, provider_id: str, config: ModelProviderConfig, refresh: bool
    ) -> str:
        auth = config.auth
        assert auth is not None
        lock = self._locks.setdefault(provider_id, asyncio.Lock())
        async with lock:
            cached = self._cached.get(provider_id)
            if cached is not None and not refresh:
                token, at = cached
                interval = auth.refresh_interval_ms / 1000
                if interval == 0 or time.monotonic() - at < interval:
                    return token
            token = await self._run(provider_id, config)
            self._cached[provider_id] = (token, time.monotonic())
            return token

    async def _run(self, provider_id: str, config: ModelProviderConfig) -> str:
        auth = config.auth
        assert auth is not None
        key = f"model_providers.{provider_id}.auth.command"
        cwd = Path(auth.cwd) if auth.cwd else self.home
        try:
            process = await asyncio.create_subprocess_exec(
                auth.command,
                *auth.args,
                cwd=str(cwd) if cwd.is_dir() else None,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
        except OSError as exc:
            raise CredentialError(
                "auth_command_failed", f"{key} could not be started: {exc.strerror or exc}"
            ) from None
        try:
            async with asyncio.timeout(auth.timeout_ms / 1000):
                stdout, _ = await process.communicate()
        except TimeoutError:
            raise CredentialError(
                "auth_command_failed",
                f"{key} did not finish within {auth.timeout_ms} ms "
                f"(model_providers.{provider_id}.auth.timeout_ms)",
            ) from None
        finally:
            if process.returncode is None:  # timed out or cancelled: do not leave it running
                process.kill()
                await asyncio.shield(process.wait())
        token = stdout.decode("utf-8", errors="replace").strip()
        if process.returncode != 0 or not token:
            why = (
                f"exited with status {process.returncode}"
                if process.returncode
                else "printed no token"
            )
            raise CredentialError("auth_command_failed", f"{key} {why}")
        log.debug("model provider %s: got a token from its auth command", provider_id)
        return token
