"""MCP ``elicitation/create`` ↔ the protocol's ``mcpServer/elicitation/request``.

An MCP server asks for user input during a tool call. What happens, in order:

1. the thread's approval policy decides first, as in the reference:
   ``never`` declines (under full access, a form with no fields, a bare
   confirmation, is accepted with ``{}``); a granular policy with
   ``mcp_elicitations: false`` declines;
2. the ``threads_review_approval`` hook (kind ``mcpElicitation``), then the
   client, through ``turn.ask_approval``: ``waitingOnApproval`` is set while
   the client is asked and ``serverRequest/resolved`` follows the answer,
   also when the turn is interrupted meanwhile;
3. the answer ``{action, content, _meta}`` goes back to the MCP server.
   Anything else (an error, a timeout, a disconnect, an unknown action, an
   ``accept`` whose content is not an object) is a ``decline``: fail closed.

Form schemas are passed on in the protocol's ``McpElicitationSchema`` shape:
keywords it does not have (a top-level ``title``...) are left out instead of
failing the request as the reference does; a field type it cannot express
(a nested object) cannot be shown to a user, so the request is cancelled.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import mcp_types as types
from pydantic import BaseModel, ValidationError

from kernel import ConnectionClosed, RpcError, ServerRequestTimeout

__all__ = [
    "DECLINE",
    "METHOD",
    "ask_client",
    "form_schema",
    "policy_answer",
    "request_params",
    "to_result",
]

log = logging.getLogger("plugins.mcp.elicitation")

METHOD = "mcpServer/elicitation/request"
DECLINE: dict[str, Any] = {"action": "decline", "content": None, "_meta": None}
_ACTIONS = ("accept", "decline", "cancel")
_FORMATS = ("email", "uri", "date", "date-time")
_FULL_ACCESS_POLICIES = ("dangerFullAccess", "externalSandbox")


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    return value


def request_params(
    thread_id: str, turn_id: str | None, server: str, params: Any
) -> dict[str, Any] | None:
    """The ``mcpServer/elicitation/request`` params for MCP ``params``; None if unshowable."""
    head = {"threadId": thread_id, "turnId": turn_id, "serverName": server}
    meta = _dump(getattr(params, "meta", None))
    if getattr(params, "mode", "form") == "url":
        return {
            **head,
            "mode": "url",
            "_meta": meta,
            "message": params.message,
            "url": params.url,
            "elicitationId": params.elicitation_id,
        }
    schema = form_schema(params.requested_schema)
    if schema is None:
        return None
    return {
        **head,
        "mode": "form",
        "_meta": meta,
        "message": params.message,
        "requestedSchema": schema,
    }


def _pick(source: Mapping[str, Any], kinds: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, kind in kinds.items():
        value = source.get(key)
        if value is not None and _is(value, kind):
            out[key] = value
    return out


def _is(value: Any, kind: Any) -> bool:
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "count":
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if kind == "strings":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, kind)


def _options(value: Any) -> list[dict[str, str]] | None:
    if not isinstance(value, list):
        return None
    options = []
    for option in value:
        if not isinstance(option, Mapping) or not isinstance(option.get("const"), str):
            return None
        title = option.get("title")
        options.append(
            {
                "const": option["const"],
                "title": title if isinstance(title, str) else option["const"],
            }
        )
    return options


def _field(schema: Any) -> dict[str, Any] | None:
    if not isinstance(schema, Mapping):
        return None
    kind = schema.get("type")
    base = _pick(schema, {"title": str, "description": str})
    if kind == "string":
        if "enum" in schema:
            if not _is(schema["enum"], "strings"):
                return None
            extra = _pick(schema, {"default": str, "enumNames": "strings"})
            return {"type": "string", **base, "enum": schema["enum"], **extra}
        if "oneOf" in schema:
            options = _options(schema["oneOf"])
            if options is None:
                return None
            return {"type": "string", **base, "oneOf": options, **_pick(schema, {"default": str})}
        extra = _pick(schema, {"minLength": "count", "maxLength": "count", "default": str})
        if schema.get("format") in _FORMATS:
            extra["format"] = schema["format"]
        return {"type": "string", **base, **extra}
    if kind in ("number", "integer"):
        extra = _pick(schema, {"minimum": "number", "maximum": "number", "default": "number"})
        return {"type": kind, **base, **extra}
    if kind == "boolean":
        return {"type": "boolean", **base, **_pick(schema, {"default": bool})}
    if kind == "array":
        items = schema.get("items")
        if not isinstance(items, Mapping):
            return None
        if _is(items.get("enum"), "strings"):
            shaped: dict[str, Any] = {"type": "string", "enum": items["enum"]}
        elif (options := _options(items.get("anyOf"))) is not None:
            shaped = {"anyOf": options}
        else:
            return None
        extra = _pick(schema, {"minItems": "count", "maxItems": "count", "default": "strings"})
        return {"type": "array", **base, "items": shaped, **extra}
    return None


def form_schema(schema: Any) -> dict[str, Any] | None:
    """``schema`` as an ``McpElicitationSchema``; None when a field cannot be expressed."""
    if not isinstance(schema, Mapping) or schema.get("type", "object") != "object":
        return None
    properties = schema.get("properties") or {}
    if not isinstance(properties, Mapping):
        return None
    fields: dict[str, Any] = {}
    for name, sub in properties.items():
        shaped = _field(sub)
        if shaped is None:
            log.warning("elicitation field %r has a type a form cannot show", name)
            return None
        fields[str(name)] = shaped
    out: dict[str, Any] = {"type": "object", "properties": fields}
    if isinstance(schema.get("$schema"), str):
        out = {"$schema": schema["$schema"], **out}
    required = schema.get("required")
    if isinstance(required, list) and _is(required, "strings"):
        out["required"] = [r for r in required if r in fields]
    return out


def policy_answer(settings: Mapping[str, Any], request: Mapping[str, Any]) -> dict[str, Any] | None:
    """The answer the approval policy gives without asking anyone, or None to ask."""
    policy = settings.get("approval_policy")
    granular = policy.get("granular") if isinstance(policy, Mapping) else None
    if policy == "never":
        schema = request.get("requestedSchema")
        empty = isinstance(schema, Mapping) and not schema.get("properties")
        if request.get("mode") == "form" and empty and full_access(settings):
            return {"action": "accept", "content": {}, "_meta": None}
        return dict(DECLINE)
    if isinstance(granular, Mapping) and not granular.get("mcp_elicitations", True):
        return dict(DECLINE)
    return None


def full_access(settings: Mapping[str, Any]) -> bool:
    """Whether the turn runs without a sandbox (danger-full-access or an external one)."""
    policy = settings.get("sandbox_policy")
    if isinstance(policy, Mapping):
        return policy.get("type") in _FULL_ACCESS_POLICIES
    return settings.get("sandbox") == "danger-full-access"


def to_result(answer: Any, request: Mapping[str, Any]) -> types.ElicitResult:
    """The MCP ``ElicitResult`` for the answer to ``request``; fails closed.

    The answer is the client's ``{action, content, _meta}``. A reviewer may
    answer with an approval decision instead: ``accept`` accepts a URL
    request or a form without fields (nothing to fill in), ``cancel``
    cancels, anything else declines.
    """
    declined = types.ElicitResult(action="decline")
    if isinstance(answer, Mapping) and "action" not in answer and "decision" in answer:
        answer = _from_decision(answer.get("decision"), request)
    if not isinstance(answer, Mapping) or answer.get("action") not in _ACTIONS:
        log.warning("an elicitation was answered without a valid action; declined")
        return declined
    action = answer["action"]
    result: dict[str, Any] = {"action": action}
    if isinstance(answer.get("_meta"), dict):
        result["_meta"] = answer["_meta"]
    if action == "accept" and request.get("mode") != "url":
        if not isinstance(answer.get("content"), dict):
            log.warning("an accepted form elicitation came without an object as content; declined")
            return declined
        result["content"] = answer["content"]
    try:
        return types.ElicitResult.model_validate(result)
    except ValidationError:
        log.warning("an accepted elicitation's content has values MCP cannot carry; declined")
        return declined


def _from_decision(decision: Any, request: Mapping[str, Any]) -> dict[str, Any]:
    schema = request.get("requestedSchema")
    nothing_to_fill = request.get("mode") == "url" or (
        isinstance(schema, Mapping) and not schema.get("properties")
    )
    if decision in ("accept", "acceptForSession") and nothing_to_fill:
        return {"action": "accept", "content": {}}
    if decision == "cancel":
        return {"action": "cancel"}
    return {"action": "decline"}


async def ask_client(connection: Any, thread_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """Ask ``connection`` directly (a client's own ``mcpServer/tool/call``), then resolve."""
    request_id = connection.next_server_request_id()
    try:
        answer = await connection.request(METHOD, params, request_id=request_id)
    except (RpcError, ServerRequestTimeout, ConnectionClosed, LookupError) as exc:
        log.info("elicitation of thread %s not answered (%s); declined", thread_id, exc)
        return dict(DECLINE)
    finally:
        try:
            await connection.notify(
                "serverRequest/resolved", {"threadId": thread_id, "requestId": request_id}
            )
        except Exception:
            log.debug("serverRequest/resolved not delivered", exc_info=True)
    return answer if isinstance(answer, dict) else dict(DECLINE)
