"""From a request's sandbox policy to the command line that runs it, contained.

The ``sandbox`` family is found only through ``kernel.services.get("sandbox")``
at call time. With it, its ``wrap`` builds the bubblewrap command line
(a sandbox for a restricted policy; PID-namespace containment for a
full-access one). Without it, or without bubblewrap, a restricted policy
is refused with ``-32022`` (:data:`~.checks.SANDBOX_UNAVAILABLE`), never
run unsandboxed, and a full-access command gets the fallback containment
of :mod:`.containment`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import attrs

from kernel import RpcError, invalid_field
from kernel.config import Config

from .checks import SANDBOX_UNAVAILABLE
from .containment import TOKEN_VARIABLE, Fallback
from .runner import SpawnRequest

__all__ = ["launch", "restricted_without_service"]

_FULL_ACCESS_MODES = (None, "danger-full-access")
_FULL_ACCESS_PROFILES = (":danger-full-access",)


def restricted_without_service(
    config: Config | None,
    sandbox_policy: Mapping[str, Any] | None,
    permission_profile: Any,
    default_to_config: bool,
) -> str | None:
    """What asks for a sandbox when no sandbox plugin is loaded, or None.

    Explicit policies are classified by their tag; the configured default
    counts only when config.toml sets one (``default_permissions`` or a
    ``sandbox_mode`` other than danger-full-access).
    """
    if sandbox_policy is not None:
        kind = sandbox_policy.get("type")
        return None if kind in ("dangerFullAccess", "externalSandbox") else f"sandboxPolicy {kind}"
    if permission_profile is not None:
        if isinstance(permission_profile, Mapping):
            kind = permission_profile.get("type")
            return None if kind in ("disabled", "external") else f"permissionProfile {kind}"
        if permission_profile in _FULL_ACCESS_PROFILES:
            return None
        return f"permissionProfile {permission_profile}"
    if not default_to_config or config is None:
        return None
    profile = config.get("default_permissions")
    if profile is not None and profile not in _FULL_ACCESS_PROFILES:
        return f"default_permissions = {profile!r}"
    mode = config.get("sandbox_mode")
    if mode not in _FULL_ACCESS_MODES:
        return f"sandbox_mode = {mode!r}"
    return None


def _unavailable(reason: str) -> RpcError:
    return RpcError(
        SANDBOX_UNAVAILABLE,
        f"sandboxing is unavailable ({reason}); refusing to run a restricted command unsandboxed",
        {"reason": reason},
    )


def launch(
    kernel: Any,
    fallback: Fallback,
    request: SpawnRequest,
    *,
    sandbox_policy: Mapping[str, Any] | None = None,
    permission_profile: Any = None,
    default_to_config: bool = False,
    additional_permissions: Mapping[str, Any] | None = None,
) -> SpawnRequest:
    """``request`` with the command line (and environment) that enforces the policy.

    Raises :class:`kernel.RpcError`: ``-32022`` when the policy needs a
    sandbox that cannot be built here, ``-32602`` when it is malformed.
    """
    cwd = request.cwd or os.getcwd()
    sandbox = None if kernel is None else kernel.services.get("sandbox")
    if sandbox is None:
        config = None if kernel is None else kernel.config
        wanted = restricted_without_service(
            config, sandbox_policy, permission_profile, default_to_config
        )
        if wanted is not None:
            raise _unavailable(f"{wanted} needs the sandbox plugin, which is not loaded")
        line = None
    else:
        try:
            line = sandbox.wrap(
                request.argv,
                cwd=cwd,
                sandbox_policy=sandbox_policy,
                permission_profile=permission_profile,
                contain=True,
                tty=request.tty,
                env=request.env,
                default_to_config=default_to_config,
                additional_permissions=additional_permissions,
            )
        except sandbox.SandboxUnavailable as exc:
            raise _unavailable(exc.reason) from None
        except sandbox.SandboxError as exc:
            if exc.field:
                raise invalid_field(exc.field, exc.problem) from None
            raise RpcError(-32602, f"Invalid params: {exc.problem}") from None
        if sandbox.available:
            return attrs.evolve(request, launch=line)
    token = fallback.token()
    env = {**request.env, TOKEN_VARIABLE: token}
    return attrs.evolve(
        request, launch=[*fallback.prefix(), *(line or request.argv)], env=env, token=token
    )
