"""Outbound HTTP made on a connection's or thread's behalf, and the plugins that decorate it.

A family that calls an external service for a client (the model provider's
requests, compaction, the realtime session setup, relay enrollment) describes
each HTTP attempt as an :class:`OutboundRequest` and asks
:func:`outbound_headers` for the headers plugins add, right before sending
it. The caller never knows who answers; the plugins (``attestation``...)
never know who calls. The hook is
:meth:`kernel.hookspecs.KernelSpec.kernel_outbound_request_headers`.

How the answers combine:

* each plugin is called on its own (``kernel.plugins.acall``), so one
  plugin raising only loses that plugin's headers: the exception is logged
  with its traceback and the request goes out with the others' headers;
* a plugin that must not let the request go without it (attestation
  configured as required) returns :class:`Refuse`; :func:`outbound_headers`
  then raises :class:`OutboundRefused` and the caller must not send the
  request, and reports the refusal's reason to its client (the models plugin
  ends the stream with a ``response.failed`` carrying it, which fails the
  turn). A plugin that must fail closed catches its own errors and refuses;
* a header name the request already carries (``Authorization``,
  ``Content-Type``...) or an earlier plugin already added is kept, and the
  later one is logged and dropped; so is a name or value that is not a
  valid header (a name that is not an HTTP token, a value with CR, LF or
  NUL). Values are never logged: they may be credentials.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from .connection import Connection
    from .plugins import PluginHost

__all__ = [
    "HOOK",
    "PURPOSE_COMPACTION",
    "PURPOSE_MODEL",
    "PURPOSE_REALTIME",
    "PURPOSE_RELAY_ENROLLMENT",
    "OutboundRefused",
    "OutboundRequest",
    "Refuse",
    "outbound_headers",
]

log = logging.getLogger("kernel.outbound")

HOOK = "kernel_outbound_request_headers"

PURPOSE_MODEL = "model"
"""A model request of a turn (Responses API or Chat Completions)."""
PURPOSE_COMPACTION = "compaction"
"""A model request that compacts a thread's history."""
PURPOSE_REALTIME = "realtime"
"""The setup of a realtime session."""
PURPOSE_RELAY_ENROLLMENT = "relay_enrollment"
"""Enrolling this server with a remote-control relay."""


@attrs.frozen
class OutboundRequest:
    """One HTTP attempt about to be sent on someone's behalf.

    ``purpose`` says what it is for (the ``PURPOSE_*`` values; a family may
    use its own short name). ``provider_id`` is the model provider's id
    (``[model_providers.<id>]``) when one is involved, and
    ``requires_openai_auth`` whether the request is authenticated with
    OpenAI credentials (the provider's ``requires_openai_auth``).
    ``connection`` is the connection the work is done for (the one that
    started the turn), or None when none is (a background job, a client
    that left); ``thread_id`` and ``turn_id`` name the thread and turn, when
    there is one. ``attempt`` counts the HTTP attempts of one logical
    request from 1: every retry is a new attempt, asked for again.
    """

    purpose: str
    url: str
    method: str = "POST"
    provider_id: str | None = None
    requires_openai_auth: bool = False
    connection: Connection | None = None
    thread_id: str | None = None
    turn_id: str | None = None
    attempt: int = 1


@attrs.frozen
class Refuse:
    """What a hook implementation returns to stop the request from being sent.

    ``reason`` is shown to the client (the turn's error message): say what
    is missing and which setting asks for it, never a secret. ``code`` is a
    short machine-readable name (``attestation_unavailable``).
    """

    reason: str
    code: str = "outbound_request_refused"


class OutboundRefused(Exception):
    """Plugin ``plugin`` refused the request; it must not be sent."""

    def __init__(self, plugin: str, reason: str, code: str) -> None:
        super().__init__(reason)
        self.plugin = plugin
        self.reason = reason
        self.code = code


# RFC 9110 token characters: what a header name may contain.
_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _valid(name: Any, value: Any) -> bool:
    if not isinstance(name, str) or not isinstance(value, str):
        return False
    return _NAME.fullmatch(name) is not None and not any(c in value for c in "\r\n\0")


async def outbound_headers(
    plugins: PluginHost, request: OutboundRequest, present: Iterable[str] = ()
) -> dict[str, str]:
    """The headers plugins add to ``request`` (rules in the module docstring).

    ``present`` names the headers the request already carries; plugins
    cannot replace them. Raises :class:`OutboundRefused` when a plugin
    refused the request (the first refusal in load order is reported).
    """
    results = await plugins.acall(HOOK, request=request)
    for name, answer in results:
        if isinstance(answer, Refuse):
            log.warning(
                "plugin %s refused %s request %s (attempt %d): %s",
                name, request.purpose, request.url, request.attempt, answer.reason,
            )  # fmt: skip
            raise OutboundRefused(name, answer.reason, answer.code)
    taken = {header.lower() for header in present}
    added: dict[str, str] = {}
    for name, answer in results:
        if answer is None:
            continue
        if not isinstance(answer, Mapping):
            log.error(
                "plugin %s returned %s from %s; expected a mapping of headers, None or Refuse",
                name, type(answer).__name__, HOOK,
            )  # fmt: skip
            continue
        for header, value in answer.items():
            if not _valid(header, value):
                log.error("plugin %s: left out header %r: not a valid header", name, header)
            elif header.lower() in taken:
                log.error("plugin %s: left out header %r: the request already has it", name, header)
            else:
                taken.add(header.lower())
                added[header] = value
    return added
