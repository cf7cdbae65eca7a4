"""The ``account`` plugin: who the server acts as towards the model provider.

This server signs in with an API key only (ChatGPT sign-in needs OpenAI's
OAuth service, which a self-hosted server does not have). The key is kept
where the reference keeps it, ``<home>/auth.json`` as ``{"auth_mode":
"apikey", "OPENAI_API_KEY": "..."}``, written atomically with mode 0600;
the ``models`` family reads that file for providers that need OpenAI auth.
No key is ever logged or sent back to a client.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import attrs

from kernel import Kernel, RequestContext, RpcError, hookimpl, method
from kernel.rpc.errors import INVALID_REQUEST

__all__ = ["AccountPlugin"]

log = logging.getLogger("plugins.account")

_KEY = "OPENAI_API_KEY"
_UNSUPPORTED_LOGIN = (
    "{kind} sign-in is not available on this server: sign in with an API key "
    '(account/login/start {{"type": "apiKey", "apiKey": ...}}) or set OPENAI_API_KEY'
)


@attrs.frozen
class GetAccountParams:
    """``refreshToken`` is accepted and has nothing to refresh here."""

    refresh_token: bool | None = None


@attrs.frozen
class LoginAccountParams:
    """The ``LoginAccountParams`` union, flattened: ``type`` says which members apply."""

    type: str
    api_key: str | None = None
    codex_streamlined_login: bool | None = None
    use_hosted_login_success_page: bool | None = None
    app_brand: Any = None
    access_token: str | None = None
    chatgpt_account_id: str | None = None
    chatgpt_plan_type: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None


@attrs.frozen
class RateLimitsParams:
    """No parameters are defined yet."""


class AccountPlugin:
    """``account/*``: see the module docstring and docs/account.md."""

    def __init__(self) -> None:
        self.kernel: Kernel | None = None

    @hookimpl
    def kernel_configure(self, kernel: Kernel) -> None:
        self.kernel = kernel

    @hookimpl
    def kernel_register(self, registrar: Any) -> None:
        registrar.notification("account/updated")
        registrar.notification("account/login/completed")

    # -- state ---------------------------------------------------------------------------

    @property
    def _auth_file(self) -> Path:
        assert self.kernel is not None
        return Path(self.kernel.home) / "auth.json"

    def _stored_key(self) -> str | None:
        try:
            stored = json.loads(self._auth_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        key = stored.get(_KEY) if isinstance(stored, dict) else None
        return key if isinstance(key, str) and key.strip() else None

    def _has_key(self) -> bool:
        env = os.environ.get(_KEY)
        return bool(env and env.strip()) or self._stored_key() is not None

    async def _requires_openai_auth(self) -> bool:
        """Whether the configured default provider needs an OpenAI credential."""
        assert self.kernel is not None
        provider = self.kernel.config.get("model_provider") or "openai"
        try:
            found = await self.kernel.plugins.first("threads_model_provider", provider_id=provider)
        except Exception:  # the models family failed: assume the safe answer
            log.exception("describing model provider %s failed", provider)
            return True
        if found is None:
            return provider == "openai"
        return bool(found[1].get("requiresOpenaiAuth"))

    # -- methods -------------------------------------------------------------------------

    @method("account/read")
    async def read(self, params: GetAccountParams, ctx: RequestContext) -> dict[str, Any]:
        """The signed-in account (an API key, or none) and whether the provider needs one."""
        account = {"type": "apiKey"} if self._has_key() else None
        return {
            "account": account,
            "userId": None,
            "requiresOpenaiAuth": await self._requires_openai_auth(),
        }

    @method("account/login/start")
    async def login(self, params: LoginAccountParams, ctx: RequestContext) -> dict[str, Any]:
        """Store an API key (``type: "apiKey"``); other sign-in kinds are refused clearly."""
        kind = params.type
        if kind != "apiKey":
            label = {"chatgpt": "ChatGPT", "chatgptDeviceCode": "ChatGPT device-code"}.get(
                str(kind), repr(kind)
            )
            raise RpcError(INVALID_REQUEST, _UNSUPPORTED_LOGIN.format(kind=label))
        key = params.api_key
        if not isinstance(key, str) or not key.strip() or any(c in key for c in "\r\n\0"):
            raise RpcError(-32602, "Invalid params: apiKey: expected a non-empty API key")
        self._write({"auth_mode": "apikey", _KEY: key.strip()})
        log.info("an API key was stored with account/login/start")
        await self._updated(ctx, "apikey")
        return {"type": "apiKey"}

    @method("account/logout")
    async def logout(self, params: None, ctx: RequestContext) -> dict[str, Any]:
        """Forget the stored key (an ``OPENAI_API_KEY`` in the environment stays in effect)."""
        with contextlib.suppress(FileNotFoundError):
            self._auth_file.unlink()
        await self._updated(ctx, "apikey" if self._has_key() else None)
        return {}

    @method("account/rateLimits/read")
    def rate_limits(self, params: RateLimitsParams, ctx: RequestContext) -> dict[str, Any]:
        """Nothing is known about limits here: every field is null, as the schema allows."""
        snapshot = {
            "limitId": "codex",
            "limitName": None,
            "normalModelSlug": None,
            "primary": None,
            "secondary": None,
            "credits": None,
            "individualLimit": None,
            "spendControlReached": None,
            "planType": None,
            "rateLimitReachedType": None,
        }
        return {
            "ordinaryUsageAllowed": None,
            "rateLimits": snapshot,
            "rateLimitsByLimitId": None,
            "rateLimitResetCredits": None,
            "accountId": None,
            "rateLimitUpsell": None,
        }

    @method("account/bedrock/checkGovCloudRequirements", experimental=True)
    def gov_cloud(self, params: None, ctx: RequestContext) -> dict[str, Any]:
        """No Bedrock sign-in here: never GovCloud, nothing to warn about."""
        return {"isGovCloud": False, "shouldWarn": False}

    # -- helpers -------------------------------------------------------------------------

    def _write(self, data: dict[str, Any]) -> None:
        """Replace auth.json atomically, readable by the owner only."""
        target = self._auth_file
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".auth.", dir=target.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    async def _updated(self, ctx: RequestContext, mode: str | None) -> None:
        assert self.kernel is not None
        await self.kernel.broadcast("account/updated", {"authMode": mode, "planType": None})
