"""Driving the attestation plugin as a desktop app does, against the model stand-in.

``attested(serve, model_server, ...)`` starts ``kernel run --plugins
threads,models,attestation`` over stdio with provider ``mock`` (at the
stand-in, ``requires_openai_auth`` by default so it is in the default scope)
and yields an :class:`Agent` whose client is initialized with or without
``capabilities.requestAttestation``. :class:`TokenClient` answers
``attestation/generate`` the way a test asks: fresh numbered tokens, an
error, garbage, or late.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from kernel import RpcError
from kernel.client import Client
from tests.support.agent import Agent, provider_args

__all__ = [
    "API_KEY",
    "ENV",
    "HEADER",
    "PLUGINS",
    "TokenClient",
    "argv",
    "attestation_args",
    "attested",
    "header_of",
]

HEADER = "x-oai-attestation"
API_KEY = "sk-attestation-test-key"
ENV = {"OPENAI_API_KEY": API_KEY}
PLUGINS = ("threads", "models", "attestation")


def attestation_args(**settings: Any) -> list[str]:
    """``-c kernel_plugins.attestation.<key>=<value>`` for each setting."""
    out: list[str] = []
    for key, value in settings.items():
        if isinstance(value, bool):
            literal = "true" if value else "false"
        elif isinstance(value, list):
            literal = "[" + ", ".join(f'"{v}"' for v in value) + "]"
        else:
            literal = str(value)
        out += ["-c", f"kernel_plugins.attestation.{key}={literal}"]
    return out


def header_of(request: Any) -> str | None:
    """The attestation header a recorded stand-in request carried, if any."""
    return request.headers.get(HEADER)


class TokenClient:
    """Answers ``attestation/generate`` on ``client`` as ``mode`` says; counts the asks.

    Modes: ``"ok"`` (tokens ``tok-1``, ``tok-2``...), ``"error"`` (a
    JSON-RPC error), ``"garbage"`` (a result without ``token``), ``"huge"``
    (a token too long for a header), ``"slow"``
    (answers only once :meth:`release` is called).
    """

    def __init__(self, client: Client, mode: str = "ok", prefix: str = "tok") -> None:
        self.mode = mode
        self.prefix = prefix
        self.params: list[Any] = []
        self.was_asked = asyncio.Event()
        self._released = asyncio.Event()
        client.on_request("attestation/generate", self._answer)

    @property
    def asked(self) -> int:
        return len(self.params)

    def release(self) -> None:
        """Let a slow client answer (late) the requests it holds."""
        self._released.set()

    async def _answer(self, params: Any) -> dict[str, Any]:
        self.params.append(params)
        self.was_asked.set()
        if self.mode == "error":
            raise RpcError(-32000, "device check unavailable")
        if self.mode == "garbage":
            return {"tokn": "x"}
        if self.mode == "huge":
            return {"token": "x" * 10_000}
        if self.mode == "slow":
            await self._released.wait()
        return {"token": f"{self.prefix}-{len(self.params)}"}


def argv(
    model_server: Any,
    settings: dict[str, Any] | None = None,
    provider: dict[str, Any] | None = None,
) -> list[str]:
    """``kernel run`` options: provider ``mock`` at the stand-in, and the plugin's settings."""
    fields = {"requires_openai_auth": True, **(provider or {})}
    # The reference's 100 ms is too tight for a loaded test machine; tests
    # about timeouts set their own.
    settings = {"timeout_ms": 30_000, **(settings or {})}
    return [
        *provider_args(model_server.base_url, **fields),
        "-c",
        "kernel_plugins.models.retry_base_delay_ms=10",
        *attestation_args(**settings),
    ]


@contextlib.asynccontextmanager
async def attested(
    serve: Any,
    model_server: Any,
    *,
    capable: bool = True,
    settings: dict[str, Any] | None = None,
    provider: dict[str, Any] | None = None,
    args: Sequence[str] = (),
) -> AsyncIterator[Agent]:
    """A kernel with the attestation plugin; yields an initialized :class:`Agent`."""
    command = [*argv(model_server, settings, provider), *args]
    async with serve(plugins=PLUGINS, args=command, env=ENV) as served:
        caps = {"requestAttestation": True} if capable else {}
        await served.client.initialize(experimental=True, capabilities=caps)
        yield Agent(served.client, served)
