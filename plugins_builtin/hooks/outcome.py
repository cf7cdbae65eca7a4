"""What a hook command's exit status and output mean, event by event (the reference's rules).

* Exit 0 with no output: completed. With output: a JSON object when it
  looks like one (``{``), else plain text, which is context for the model
  for ``SessionStart``, ``UserPromptSubmit`` and ``SubagentStart`` and
  ignored elsewhere (``Stop`` needs JSON). Unknown JSON members fail the run,
  so a typo never silently does nothing.
* Exit 2: block, with stderr as the reason (``PreToolUse``,
  ``PermissionRequest``, ``PostToolUse``, ``UserPromptSubmit``, ``Stop``).
* Anything else: failed, and the turn goes on as if the hook were not there.

Universal JSON members: ``continue`` (false stops), ``stopReason``,
``suppressOutput``, ``systemMessage`` (a warning). Per event: ``decision``
and ``reason`` (block), ``hookSpecificOutput`` (``permissionDecision``,
``permissionDecisionReason``, ``additionalContext``, ``decision``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from .events import Event

__all__ = ["Outcome", "interpret"]

_UNIVERSAL = {"continue", "stopReason", "suppressOutput", "systemMessage"}
_EVENT_KEYS = {
    "PreToolUse": {"decision", "reason", "hookSpecificOutput"},
    "PermissionRequest": {"hookSpecificOutput"},
    "PostToolUse": {"decision", "reason", "hookSpecificOutput"},
    "UserPromptSubmit": {"decision", "reason", "hookSpecificOutput"},
    "Stop": {"decision", "reason"},
    "SubagentStop": {"decision", "reason"},
    "SessionStart": {"hookSpecificOutput"},
    "SubagentStart": {"hookSpecificOutput"},
}
_PLAIN_TEXT_IS_CONTEXT = {"SessionStart", "UserPromptSubmit", "SubagentStart"}
_EXIT_2_BLOCKS = {"PreToolUse", "PermissionRequest", "PostToolUse", "UserPromptSubmit", "Stop"}
_JSON_NAMES = {
    "PreToolUse": "pre-tool-use",
    "PostToolUse": "post-tool-use",
    "PermissionRequest": "permission request",
    "UserPromptSubmit": "user prompt submit",
    "SessionStart": "session start",
    "Stop": "stop hook",
}


@attrs.define
class Outcome:
    """A finished run: its status and entries, and what it asks the turn to do."""

    status: str = "completed"
    """``completed``, ``failed``, ``blocked`` or ``stopped``."""
    entries: list[dict[str, str]] = attrs.Factory(list)
    """``HookOutputEntry``: ``{kind, text}``."""
    block_reason: str | None = None
    stop_reason: str | None = None
    context: list[str] = attrs.Factory(list)
    allow: bool = False
    """``PermissionRequest`` answered allow."""

    def entry(self, kind: str, text: str) -> None:
        self.entries.append({"kind": kind, "text": text})

    def fail(self, text: str) -> Outcome:
        self.status = "failed"
        self.entry("error", text)
        self.block_reason = self.stop_reason = None
        self.context.clear()
        self.allow = False
        return self


def interpret(
    event: Event, exit_code: int | None, stdout: str, stderr: str, timed_out: bool, timeout: int
) -> Outcome:
    """The :class:`Outcome` of one run of a hook for ``event``."""
    outcome = Outcome()
    name = event.file
    if timed_out:
        return outcome.fail(f"hook timed out after {timeout}s")
    if exit_code == 2 and name in _EXIT_2_BLOCKS:
        reason = stderr.strip()
        if not reason:
            what = "a continuation prompt" if name == "Stop" else "a blocking reason"
            return outcome.fail(
                f"{name} hook exited with code 2 but did not write {what} to stderr"
            )
        outcome.status = "blocked"
        outcome.block_reason = reason
        outcome.entry("feedback", reason)
        return outcome
    if exit_code is None:
        return outcome.fail("hook exited without a status code")
    if exit_code != 0:
        return outcome.fail(f"hook exited with code {exit_code}")
    text = stdout.strip()
    if not text:
        return outcome
    if not text.startswith(("{", "[")):
        if name in _PLAIN_TEXT_IS_CONTEXT:
            outcome.context.append(text)
            outcome.entry("context", text)
        elif name in ("Stop", "SubagentStop"):
            return outcome.fail(f"hook returned invalid {_JSON_NAMES.get(name, name)} JSON output")
        return outcome
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    label = _JSON_NAMES.get(name, name)
    if not isinstance(data, dict) or set(data) - _UNIVERSAL - _EVENT_KEYS.get(name, set()):
        return outcome.fail(f"hook returned invalid {label} JSON output")
    return _json_outcome(event, data, outcome)


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _json_outcome(event: Event, data: dict[str, Any], outcome: Outcome) -> Outcome:
    name = event.file
    message = _text(data.get("systemMessage"))
    if message:
        outcome.entry("warning", message)
    specific = data.get("hookSpecificOutput")
    specific = specific if isinstance(specific, Mapping) else {}
    stops = data.get("continue") is False
    if stops and name in ("PreToolUse", "PermissionRequest"):
        return outcome.fail(f"{name} hook returned unsupported continue:false")
    decision, reason = data.get("decision"), _text(data.get("reason"))
    if reason and decision is None:
        return outcome.fail(f"{name} hook returned reason without decision")
    if decision is not None and decision != "block":
        return outcome.fail(f"{name} hook returned unsupported decision:{decision}")
    if name == "PreToolUse":
        verdict = specific.get("permissionDecision")
        if verdict == "deny":
            decision, reason = "block", _text(specific.get("permissionDecisionReason")) or reason
        elif verdict is not None:
            return outcome.fail(
                f"PreToolUse hook returned unsupported permissionDecision:{verdict}"
            )
        if "updatedInput" in specific or "additionalContext" in specific:
            unsupported = "updatedInput" if "updatedInput" in specific else "additionalContext"
            return outcome.fail(f"PreToolUse hook returned unsupported {unsupported}")
    if name == "PermissionRequest":
        return _permission(specific, outcome)
    if decision == "block":
        if not reason:
            return outcome.fail(f"{name} hook returned decision:block without a non-empty reason")
        outcome.status = "blocked"
        outcome.block_reason = reason
        outcome.entry("feedback", reason)
    context = _text(specific.get("additionalContext"))
    if context and name in ("PostToolUse", "UserPromptSubmit", "SessionStart", "SubagentStart"):
        outcome.context.append(context)
        outcome.entry("context", context)
    if stops:
        outcome.status = "stopped"
        outcome.stop_reason = _text(data.get("stopReason")) or f"{name} hook stopped execution"
        outcome.entry("stop", outcome.stop_reason)
    return outcome


def _permission(specific: Mapping[str, Any], outcome: Outcome) -> Outcome:
    verdict = specific.get("decision")
    if verdict is None:
        return outcome
    if not isinstance(verdict, Mapping) or verdict.get("behavior") not in ("allow", "deny"):
        return outcome.fail("hook returned invalid permission request JSON output")
    if "updatedInput" in verdict or verdict.get("interrupt"):
        return outcome.fail("PermissionRequest hook returned unsupported updatedInput/interrupt")
    if verdict["behavior"] == "allow":
        outcome.allow = True
        return outcome
    reason = _text(verdict.get("message")) or "PermissionRequest hook denied approval"
    outcome.status = "blocked"
    outcome.block_reason = reason
    outcome.entry("feedback", reason)
    return outcome
