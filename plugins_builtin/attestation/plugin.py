"""The ``attestation`` plugin: a fresh client token on every scoped outbound request.

A client (the desktop app) that sends ``capabilities.requestAttestation:
true`` in ``initialize`` is asked ``attestation/generate {}`` right before
each HTTP attempt in scope (:class:`.settings.AttestationSettings`), through
the kernel's ``kernel_outbound_request_headers`` hook, and the answer goes
out as ``x-oai-attestation: {"v":1,"s":0,"t":"<token>"}``. Who is asked is
in :mod:`.asking`.

Failures, as the reference: no capable client, no header; a timeout, an
error or a malformed answer, the header with the failure's status and no
token (``{"v":1,"s":1}``). With ``required = true`` every such case stops
the request instead (:class:`kernel.outbound.Refuse`), and the turn fails
saying why. The token is never logged.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from kernel import Kernel, hookimpl, server_request
from kernel.outbound import OutboundRequest, Refuse

from .asking import (
    GENERATE,
    Answer,
    AttestationGenerateParams,
    AttestationGenerateResponse,
    Status,
    ask,
    candidates,
)
from .settings import AttestationSettings

__all__ = ["HEADER", "AttestationPlugin", "header_value"]

log = logging.getLogger("plugins.attestation")

HEADER = "x-oai-attestation"
REFUSED_CODE = "attestation_unavailable"


def header_value(answer: Answer) -> str:
    """``{"v":1,"s":<status>,"t":"<token>"}`` (``t`` only with a token), compact ASCII JSON."""
    envelope: dict[str, Any] = {"v": 1, "s": int(answer.status)}
    if answer.token is not None:
        envelope["t"] = answer.token
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=True)


def _what(request: OutboundRequest) -> str:
    if request.provider_id is not None:
        return f"{request.purpose} requests to model provider {request.provider_id!r}"
    return f"{request.purpose} requests"


class AttestationPlugin:
    """Answers ``kernel_outbound_request_headers``; see the module docstring."""

    generate = server_request(GENERATE, AttestationGenerateParams, AttestationGenerateResponse)

    def __init__(self) -> None:
        self.settings = AttestationSettings()
        self.kernel: Kernel | None = None

    @hookimpl
    def kernel_settings(self) -> type[AttestationSettings]:
        return AttestationSettings

    @hookimpl
    def kernel_configure(self, kernel: Kernel, settings: AttestationSettings) -> None:
        self.settings = settings
        self.kernel = kernel

    @hookimpl
    async def kernel_outbound_request_headers(
        self, request: OutboundRequest
    ) -> dict[str, str] | Refuse | None:
        if not self.settings.in_scope(request):
            return None
        try:
            answer = await self._ask(request)
        except Exception:
            # Our own failure: fail closed when required, else report it as the
            # reference reports a failed request (status 2, no token).
            log.exception("attestation for %s failed", _what(request))
            detail = "asking the client failed inside the server (see its log)"
            answer = Answer(Status.REQUEST_FAILED, detail=detail)
        if answer is None:
            if self.settings.required:
                return Refuse(
                    f"attestation is required for {_what(request)} "
                    "(kernel_plugins.attestation.required), but no client of this thread offers "
                    "it (capabilities.requestAttestation in initialize)",
                    REFUSED_CODE,
                )
            return None
        if answer.status is not Status.OK and self.settings.required:
            return Refuse(
                f"attestation is required for {_what(request)} "
                f"(kernel_plugins.attestation.required), but {answer.detail}",
                REFUSED_CODE,
            )
        return {HEADER: header_value(answer)}

    async def _ask(self, request: OutboundRequest) -> Answer | None:
        """The answer of the client asked, or None when no client can be asked."""
        subscribers: list[Any] = []
        threads = self.kernel.services.get("threads") if self.kernel is not None else None
        if threads is not None and request.thread_id is not None:
            subscribers = threads.subscribers(request.thread_id)
        conns = candidates(request.connection, subscribers)
        if not conns:
            log.debug(
                "attestation: no client of thread %s offers it; %s attempt %d of %s",
                request.thread_id, request.purpose, request.attempt, request.provider_id,
            )  # fmt: skip
            return None
        answer = await ask(conns, self.settings.timeout_ms)
        log.log(
            logging.DEBUG if answer.status is Status.OK else logging.WARNING,
            "attestation: connection %s for thread %s (%s attempt %d): %s%s",
            answer.connection_id, request.thread_id, request.purpose, request.attempt,
            answer.status.name.lower(), f" ({answer.detail})" if answer.detail else "",
        )  # fmt: skip
        return answer
