"""The tools that talk to the user or the client: permissions, questions, plan, images.

* ``request_permissions`` (behind ``features.request_permissions_tool``):
  ``item/permissions/requestApproval``; the granted subset of what was
  asked widens the sandbox for the turn or, with ``scope: "session"``, the
  rest of the session. It asks under every approval policy, ``never``
  included; only a granular policy with ``request_permissions: false``
  declines without asking.
* ``request_user_input``: ``item/tool/requestUserInput`` in Plan mode.
* ``update_plan``: ``turn/plan/updated``.
* ``view_image``: an ``imageView`` item and the image as model input.
"""

from __future__ import annotations

import asyncio
import base64
import json
import mimetypes
import os
import time
from typing import Any

from .approval_rules import permissions_requests_allowed
from .context import ToolContext

__all__ = ["InteractionTools"]

_IMAGE_LIMIT = 20 * 1024 * 1024
_PLAN_STATUS = {"pending": "pending", "in_progress": "inProgress", "completed": "completed"}


def _function(name: str, description: str, properties: dict[str, Any], required: list[str]) -> Any:
    return {
        "type": "function",
        "name": name,
        "description": description,
        "strict": False,
        "parameters": {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        },
    }


_PATHS = {"type": "array", "items": {"type": "string"}}
REQUEST_PERMISSIONS_SPEC = _function(
    "request_permissions",
    "Ask the user for extra filesystem or network access and wait for the answer. Whatever is "
    "granted applies to later commands of this turn, or of the whole session when the user "
    "grants it for the session.",
    {
        "permissions": {
            "type": "object",
            "description": "The access to ask for.",
            "additionalProperties": False,
            "properties": {
                "file_system": {
                    "type": "object",
                    "description": "Filesystem access.",
                    "additionalProperties": False,
                    "properties": {
                        "read": {**_PATHS, "description": "Absolute paths to read."},
                        "write": {**_PATHS, "description": "Absolute paths to write."},
                    },
                },
                "network": {
                    "type": "object",
                    "description": "Network access.",
                    "additionalProperties": False,
                    "properties": {
                        "enabled": {"type": "boolean", "description": "True to ask for it."}
                    },
                },
            },
        },
        "reason": {"type": "string", "description": "Why the access is needed, briefly."},
    },
    ["permissions"],
)
_OPTION = {
    "type": "object",
    "additionalProperties": False,
    "required": ["label", "description"],
    "properties": {
        "label": {"type": "string", "description": "What the user sees (a few words)."},
        "description": {"type": "string", "description": "The consequence, in one sentence."},
    },
}
REQUEST_USER_INPUT_SPEC = _function(
    "request_user_input",
    "Ask the user one to three short questions and wait for the answers (Plan mode only).",
    {
        "questions": {
            "type": "array",
            "description": "The questions; one is best, three at most.",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "header", "question", "options"],
                "properties": {
                    "id": {"type": "string", "description": "A snake_case id for the answer."},
                    "header": {"type": "string", "description": "A short label (12 chars)."},
                    "question": {"type": "string", "description": "The question, one sentence."},
                    "options": {
                        "type": "array",
                        "description": "Two or three exclusive choices, recommended first; "
                        "the client adds a free-form answer itself.",
                        "items": _OPTION,
                    },
                },
            },
        }
    },
    ["questions"],
)
UPDATE_PLAN_SPEC = _function(
    "update_plan",
    "Replace the task plan: a list of steps with their status (pending, in_progress, "
    "completed; at most one in progress), and an optional explanation.",
    {
        "explanation": {"type": "string", "description": "Why the plan changed (optional)."},
        "plan": {
            "type": "array",
            "description": "The steps.",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["step", "status"],
                "properties": {
                    "step": {"type": "string"},
                    "status": {"type": "string", "description": "pending, in_progress, completed"},
                },
            },
        },
    },
    ["plan"],
)
VIEW_IMAGE_SPEC = _function(
    "view_image",
    "Look at an image file on disk when you need to see it.",
    {
        "path": {
            "type": "string",
            "description": "The image's path (relative to the cwd or absolute).",
        }
    },
    ["path"],
)


def _arguments(raw: str) -> dict[str, Any] | str:
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        return f"failed to parse function arguments: {exc}"
    if not isinstance(value, dict):
        return "failed to parse function arguments: expected an object"
    return value


class InteractionTools:
    """The four tools, bound to the family's :class:`ToolContext`."""

    def __init__(self, context: ToolContext) -> None:
        self.context = context

    def tools(self, turn: Any) -> list[dict[str, Any]]:
        offered = [{"spec": REQUEST_USER_INPUT_SPEC, "call": self.request_user_input}]
        if self.context.config.feature("request_permissions_tool"):
            offered.append({"spec": REQUEST_PERMISSIONS_SPEC, "call": self.request_permissions})
        offered += [
            {"spec": UPDATE_PLAN_SPEC, "call": self.update_plan},
            {"spec": VIEW_IMAGE_SPEC, "call": self.view_image},
        ]
        return offered

    # -- request_permissions -------------------------------------------------------------

    async def request_permissions(self, invocation: Any) -> str:
        turn = invocation.turn
        args = _arguments(invocation.arguments)
        if isinstance(args, str):
            return args
        asked = _requested(args.get("permissions"), turn.cwd)
        if isinstance(asked, str):
            return asked
        granted: dict[str, Any] = {}
        scope = "turn"
        if permissions_requests_allowed(turn.settings.get("approval_policy")):
            params = {
                "threadId": turn.thread_id,
                "turnId": turn.turn_id,
                "itemId": invocation.call_id,
                "startedAtMs": int(time.time() * 1000),
                "cwd": turn.cwd,
                "reason": args.get("reason") if isinstance(args.get("reason"), str) else None,
                "permissions": asked,
            }
            answer = await turn.ask_approval(
                "permissions", "item/permissions/requestApproval", params, None
            )
            if isinstance(answer.get("permissions"), dict):
                granted = _intersect(answer["permissions"], asked)
                scope = "session" if answer.get("scope") == "session" else "turn"
                if scope == "session" and answer.get("strictAutoReview"):
                    granted, scope = {}, "turn"
        state = self.context.of(turn.thread_id)
        if scope == "session":
            state.session_grants.add(granted)
        else:
            state.turn_grants.setdefault(turn.turn_id, type(state.session_grants)()).add(granted)
        fs = granted.get("fileSystem") or {}
        file_system = {k: fs[k] for k in ("read", "write") if fs.get(k)} or None
        network = granted.get("network")
        result = {"permissions": {"network": network, "file_system": file_system}, "scope": scope}
        return json.dumps(result, separators=(",", ":"))

    # -- request_user_input --------------------------------------------------------------

    async def request_user_input(self, invocation: Any) -> str:
        turn = invocation.turn
        mode = turn.settings.get("collaboration_mode") or "default"
        if mode != "plan":
            return f"request_user_input is unavailable in {mode.capitalize()} mode"
        args = _arguments(invocation.arguments)
        if isinstance(args, str):
            return args
        questions = args.get("questions")
        if not isinstance(questions, list) or not 1 <= len(questions) <= 3:
            return "request_user_input needs one to three questions"
        shown = []
        for q in questions:
            if not isinstance(q, dict) or not all(
                isinstance(q.get(k), str) for k in ("id", "header", "question")
            ):
                return "each question needs a string id, header and question"
            options = q.get("options")
            shown.append(
                {
                    "id": q["id"],
                    "header": q["header"],
                    "question": q["question"],
                    "isOther": True,
                    "isSecret": False,
                    "options": [
                        {
                            "label": str(o.get("label", "")),
                            "description": str(o.get("description", "")),
                        }
                        for o in options
                        if isinstance(o, dict)
                    ]
                    if isinstance(options, list)
                    else None,
                }
            )
        params = {
            "threadId": turn.thread_id,
            "turnId": turn.turn_id,
            "itemId": invocation.call_id,
            "questions": shown,
            "isBlocking": True,
            "autoResolutionMs": None,
        }
        await turn.flag("waitingOnUserInput", True)
        try:
            answer = await turn.request("item/tool/requestUserInput", params)
        except Exception:  # a client error or disconnect: no answers, as the reference
            answer = None
        finally:
            await turn.flag("waitingOnUserInput", False)
        answers = answer.get("answers") if isinstance(answer, dict) else None
        if not isinstance(answers, dict):
            answers = {}
        return json.dumps({"answers": answers}, separators=(",", ":"))

    # -- update_plan ---------------------------------------------------------------------

    async def update_plan(self, invocation: Any) -> str:
        turn = invocation.turn
        args = _arguments(invocation.arguments)
        if isinstance(args, str):
            return args
        plan = args.get("plan")
        if not isinstance(plan, list):
            return "failed to parse function arguments: missing field `plan`"
        steps = []
        for entry in plan:
            status = _PLAN_STATUS.get(str(entry.get("status"))) if isinstance(entry, dict) else None
            if status is None or not isinstance(entry.get("step"), str):
                return "each plan step needs a step and a status of pending, in_progress, completed"
            steps.append({"step": entry["step"], "status": status})
        explanation = args.get("explanation")
        await turn.notify(
            "turn/plan/updated",
            {
                "threadId": turn.thread_id,
                "turnId": turn.turn_id,
                "explanation": explanation if isinstance(explanation, str) else None,
                "plan": steps,
            },
        )
        return "Plan updated"

    # -- view_image ----------------------------------------------------------------------

    async def view_image(self, invocation: Any) -> Any:
        turn = invocation.turn
        args = _arguments(invocation.arguments)
        if isinstance(args, str):
            return args
        raw = args.get("path")
        if not isinstance(raw, str) or not raw:
            return "failed to parse function arguments: missing field `path`"
        path = os.path.normpath(os.path.join(turn.cwd, raw))
        try:
            data = await asyncio.to_thread(_read_image, path)
        except OSError as exc:
            return f"unable to locate image at `{path}`: {exc.strerror} (os error {exc.errno})"
        except ValueError as exc:
            return f"unable to read image at `{path}`: {exc}"
        item = {"type": "imageView", "id": invocation.call_id, "path": path}
        await turn.start_item(item)
        await turn.complete_item(item)
        mime = mimetypes.guess_type(path)[0] or "application/octet-stream"
        url = f"data:{mime};base64,{base64.b64encode(data).decode()}"
        return [{"type": "input_image", "image_url": url, "detail": "original"}]


def _read_image(path: str) -> bytes:
    size = os.path.getsize(path)
    if size > _IMAGE_LIMIT:
        raise ValueError(f"the image is {size} bytes; the limit is {_IMAGE_LIMIT}")
    mime = mimetypes.guess_type(path)[0] or ""
    if not mime.startswith("image/"):
        raise ValueError("not an image file")
    with open(path, "rb") as handle:
        return handle.read()


def _requested(permissions: Any, cwd: str) -> dict[str, Any] | str:
    """The ``RequestPermissionProfile`` the client is shown (absolute paths)."""
    if not isinstance(permissions, dict):
        return "failed to parse function arguments: missing field `permissions`"
    fs = permissions.get("file_system") or {}
    out_fs: dict[str, Any] | None = None
    if isinstance(fs, dict) and (fs.get("read") or fs.get("write")):
        out_fs = {"read": None, "write": None, "entries": []}
        for access in ("read", "write"):
            paths = fs.get(access) or []
            if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
                return f"permissions.file_system.{access} must be a list of paths"
            absolute = [os.path.normpath(os.path.join(cwd, p)) for p in paths]
            if absolute:
                out_fs[access] = absolute
                out_fs["entries"] += [
                    {"path": {"type": "path", "path": p}, "access": access} for p in absolute
                ]
    network = permissions.get("network")
    out_net = {"enabled": True} if isinstance(network, dict) and network.get("enabled") else None
    return {"network": out_net, "fileSystem": out_fs}


def _intersect(granted: dict[str, Any], asked: dict[str, Any]) -> dict[str, Any]:
    """What was granted, limited to what was asked."""
    out: dict[str, Any] = {}
    fs, asked_fs = granted.get("fileSystem") or {}, asked.get("fileSystem") or {}
    if isinstance(fs, dict):
        kept = {}
        for access in ("read", "write"):
            allowed = set(asked_fs.get(access) or [])
            paths = [p for p in fs.get(access) or [] if p in allowed]
            if paths:
                kept[access] = paths
        if kept:
            out["fileSystem"] = kept
    network = granted.get("network")
    if isinstance(network, dict) and network.get("enabled") and asked.get("network"):
        out["network"] = {"enabled": True}
    return out
