"""Validate frames against the vendored reference schema.

Every server→client frame is checked: the envelope always, and the payload
whenever the method belongs to the reference protocol (our own namespaces,
such as ``echo/*``, have no reference shape). Client→server frames are only
recorded, so that a response can be matched to the method it answers; tests
send malformed client frames on purpose.

Deliberate difference: an error answer to a frame whose id could not be read
carries ``"id": null`` (JSON-RPC 2.0, section 5). The reference schema has no
null id because the reference never answers such frames; for those we check
the ``error`` member alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_PATH = Path(__file__).with_name("codex-app-server-0.169.0.schema.json")

# Methods whose result type is not named after their params type.
_RESULT_TYPES = {
    "initialize": "#/definitions/InitializeResponse",
    "config/value/write": "#/definitions/v2/ConfigWriteResponse",
    "config/batchWrite": "#/definitions/v2/ConfigWriteResponse",
}


class ProtocolViolation(AssertionError):
    """A frame does not match the reference schema."""


class ProtocolChecker:
    """Checks frames of one or more connections; keeps a list of violations."""

    def __init__(self) -> None:
        schema = json.loads(SCHEMA_PATH.read_text())
        self._defs = schema["definitions"]
        self.requests = self._variants("ClientRequest")
        self.server_requests = self._variants("ServerRequest")
        self.notifications = self._variants("ServerNotification")
        self._validators: dict[str, jsonschema.Draft7Validator] = {}
        self.checked = 0

    def _variants(self, union: str) -> dict[str, dict[str, Any]]:
        return {v["properties"]["method"]["enum"][0]: v for v in self._defs[union]["oneOf"]}

    def _validate(self, schema_or_ref: Any, value: Any, what: str) -> None:
        key = json.dumps(schema_or_ref, sort_keys=True)
        validator = self._validators.get(key)
        if validator is None:
            schema = schema_or_ref if isinstance(schema_or_ref, dict) else {"$ref": schema_or_ref}
            validator = jsonschema.Draft7Validator({**schema, "definitions": self._defs})
            self._validators[key] = validator
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
        if errors:
            first = errors[0]
            where = "/".join(str(p) for p in first.path) or "(top)"
            raise ProtocolViolation(f"{what}: at {where}: {first.message[:300]}")
        self.checked += 1

    def result_ref(self, method: str) -> str | None:
        if method in _RESULT_TYPES:
            return _RESULT_TYPES[method]
        params = self.requests.get(method, {}).get("properties", {}).get("params", {})
        ref = params.get("$ref", "")
        return ref[: -len("Params")] + "Response" if ref.endswith("Params") else None

    def check_server_frame(self, msg: Any, pending: dict[Any, str]) -> None:
        """Validate one frame the server sent; ``pending`` maps our ids to methods."""
        if not isinstance(msg, dict):
            raise ProtocolViolation(f"server sent a non-object frame: {msg!r}")
        if "jsonrpc" in msg:
            raise ProtocolViolation("server emitted the 'jsonrpc' member")
        if "method" in msg and "id" in msg:
            self._validate("#/definitions/JSONRPCRequest", msg, "server request envelope")
            variant = self.server_requests.get(msg["method"])
            if variant is not None:
                self._validate(variant, msg, f"server request {msg['method']}")
        elif "method" in msg:
            self._validate("#/definitions/JSONRPCNotification", msg, "notification envelope")
            variant = self.notifications.get(msg["method"])
            if variant is not None:
                self._validate(variant, msg, f"notification {msg['method']}")
        elif "error" in msg:
            if msg.get("id") is None:
                self._validate("#/definitions/JSONRPCErrorError", msg["error"], "error (id null)")
            else:
                self._validate("#/definitions/JSONRPCError", msg, "error response")
            pending.pop(msg.get("id"), None)
        elif "result" in msg:
            self._validate("#/definitions/JSONRPCResponse", msg, "response envelope")
            method = pending.pop(msg["id"], None)
            ref = self.result_ref(method) if method in self.requests else None
            if ref is not None:
                self._validate(ref, msg["result"], f"result of {method}")
        else:
            raise ProtocolViolation(f"server frame is no JSON-RPC message: {msg!r}")

    def check_client_answer(self, method: str, result: Any) -> None:
        """Validate a client's result for a reference server request."""
        variant = self.server_requests.get(method)
        if variant is None:
            return
        ref = variant["properties"]["params"]["$ref"]
        self._validate(ref[: -len("Params")] + "Response", result, f"client answer to {method}")
