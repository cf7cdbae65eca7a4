"""The ``environments`` plugin: where the agent's commands and file edits run.

``local`` is this server. ``environment/add`` registers a remote one: the
URL of another kernel serving ``fs`` and ``process`` over websocket (its
``--ws-auth`` token as ``authBearerToken``). A thread or turn selects
environments with ``environments`` (docs/environments.md); the agent's tools
reach them through ``kernel.services["environments"]``::

    environments = kernel.services.get("environments")
    remote = environments.get("build-box")     # None: unknown (or "local")
    handle = await remote.start(["make"], cwd="/src", on_output=sink)
"""

from __future__ import annotations

import logging
import os
import shutil
from typing import Any
from urllib.parse import urlsplit

import attrs

from kernel import Kernel, RequestContext, RpcError, hookimpl, method
from kernel.rpc.errors import INTERNAL_ERROR, INVALID_REQUEST

from .remote import RemoteEnvironment

__all__ = ["EnvironmentsPlugin", "EnvironmentsService"]

log = logging.getLogger("plugins.environments")

LOCAL = "local"
_DEFAULT_CONNECT_TIMEOUT_MS = 10_000
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


@attrs.frozen
class EnvironmentAddParams:
    """A remote environment: another kernel's websocket URL."""

    environment_id: str
    exec_server_url: str
    auth_bearer_token: str | None = None
    websocket_request_id: str | None = None
    connect_timeout_ms: int | None = None
    skills: Any = None


@attrs.frozen
class EnvironmentIdParams:
    """One environment by id."""

    environment_id: str


class EnvironmentsService:
    """The registered remote environments (``kernel.services["environments"]``)."""

    def __init__(self) -> None:
        self.remote: dict[str, RemoteEnvironment] = {}

    def get(self, environment_id: str) -> RemoteEnvironment | None:
        """A remote environment by id; None for ``local`` or an unknown id."""
        return self.remote.get(environment_id)

    def known(self, environment_id: str) -> bool:
        return environment_id == LOCAL or environment_id in self.remote

    async def close(self) -> None:
        for environment in list(self.remote.values()):
            await environment.close()


def _unknown(environment_id: str) -> RpcError:
    return RpcError(INVALID_REQUEST, f"unknown environment id `{environment_id}`")


class EnvironmentsPlugin:
    """The environment methods; see the module docstring."""

    def __init__(self) -> None:
        self.service = EnvironmentsService()

    @hookimpl
    def kernel_configure(self, kernel: Kernel) -> None:
        kernel.services["environments"] = self.service

    @hookimpl
    async def kernel_shutdown(self, kernel: Kernel) -> None:
        await self.service.close()

    @method("environment/add", experimental=True)
    async def add(self, params: EnvironmentAddParams, ctx: RequestContext) -> dict[str, Any]:
        """Register (or replace) a remote environment; it connects on first use."""
        if params.environment_id == LOCAL:
            raise RpcError(
                INVALID_REQUEST,
                "exec-server protocol error: environment id `local` is reserved for "
                "EnvironmentManager",
            )
        if not params.environment_id.strip():
            raise RpcError(-32602, "Invalid params: environmentId: must not be empty")
        url = urlsplit(params.exec_server_url)
        if url.scheme not in ("ws", "wss") or not url.hostname:
            raise RpcError(
                -32602,
                "Invalid params: execServerUrl: expected a ws:// or wss:// URL of a kernel "
                f"serving fs and process, got {params.exec_server_url!r}",
            )
        if params.auth_bearer_token and url.scheme == "ws" and url.hostname not in _LOOPBACK:
            raise RpcError(
                -32602,
                "Invalid params: authBearerToken: needs a wss:// URL or a loopback host "
                "(the token would travel in clear text)",
            )
        timeout_ms = params.connect_timeout_ms or _DEFAULT_CONNECT_TIMEOUT_MS
        if timeout_ms < 1:
            raise RpcError(-32602, "Invalid params: connectTimeoutMs: must be positive")
        old = self.service.remote.pop(params.environment_id, None)
        if old is not None:
            await old.close()
        self.service.remote[params.environment_id] = RemoteEnvironment(
            params.environment_id,
            params.exec_server_url,
            params.auth_bearer_token,
            timeout_ms / 1000,
        )
        log.info("environment %s added (%s)", params.environment_id, url.hostname)
        return {}

    @method("environment/info", experimental=True)
    async def info(self, params: EnvironmentIdParams, ctx: RequestContext) -> dict[str, Any]:
        """The environment's shell and default working directory (a file URI)."""
        if params.environment_id == LOCAL:
            path = os.environ.get("SHELL") or shutil.which("bash") or "/bin/sh"
            return _info(path, os.getcwd())
        remote = self.service.get(params.environment_id)
        if remote is None:
            raise _unknown(params.environment_id)
        try:
            found = await remote.info()
        except (ConnectionError, RpcError) as exc:
            raise RpcError(
                INTERNAL_ERROR,
                f"failed to get info for environment `{params.environment_id}`: {exc}",
            ) from None
        return _info(found["shell"], found["cwd"])

    @method("environment/status", experimental=True)
    def status(self, params: EnvironmentIdParams, ctx: RequestContext) -> dict[str, Any]:
        """``ready``, ``pending`` (not connected yet) or ``disconnected`` (with the reason)."""
        if params.environment_id == LOCAL:
            return {"status": "ready"}
        remote = self.service.get(params.environment_id)
        if remote is None:
            raise _unknown(params.environment_id)
        answer: dict[str, Any] = {"status": remote.status}
        if remote.status == "disconnected" and remote.error:
            answer["error"] = remote.error
        return answer


def _info(shell: str, cwd: str) -> dict[str, Any]:
    return {
        "shell": {"name": os.path.basename(shell), "path": shell},
        "cwd": "file://" + cwd if cwd.startswith("/") else None,
    }
