"""What the model is told: base instructions, environment context, the request body.

The base instructions are this project's own text. The request follows the
Responses API: the base instructions are the first ``developer`` message of
``input`` (no top-level ``instructions``), then the thread's developer
instructions, then the environment context as a ``user`` message, then the
conversation. ``store`` is false and the thread id is the prompt cache key,
so a provider can reuse the cached prefix from one request to the next.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping, Sequence
from typing import Any

from .state import Settings

__all__ = ["BASE_INSTRUCTIONS", "environment_context", "request_body"]

BASE_INSTRUCTIONS = """\
You are a coding agent working in the user's workspace on their behalf.

Work in small, verifiable steps. Read the code before you change it, keep
changes focused on what was asked, and say plainly what you did and what you
did not do. When a tool is available for an action (running a command,
editing a file), use it instead of describing the action. If a request is
ambiguous or an action could destroy data, ask first. Report results
honestly: never claim something ran, passed or exists unless you saw it."""


def environment_context(settings: Settings) -> str:
    """The ``<environment_context>`` block: where the agent works and under what rules."""
    now = datetime.datetime.now().astimezone()
    network = "enabled" if settings.sandbox == "danger-full-access" else "restricted"
    policy = settings.approval_policy
    policy_text = policy if isinstance(policy, str) else "granular"
    lines = [
        "<environment_context>",
        f"  <cwd>{settings.cwd}</cwd>",
        f"  <approval_policy>{policy_text}</approval_policy>",
        f"  <sandbox_mode>{settings.sandbox}</sandbox_mode>",
        f"  <network_access>{network}</network_access>",
        f"  <shell>{os.path.basename(os.environ.get('SHELL', 'bash')) or 'bash'}</shell>",
        f"  <current_date>{now.date().isoformat()}</current_date>",
        f"  <timezone>{now.tzname() or 'UTC'}</timezone>",
        "</environment_context>",
    ]
    return "\n".join(lines)


def _message(role: str, text: str) -> dict[str, Any]:
    part = "input_text"
    return {"type": "message", "role": role, "content": [{"type": part, "text": text}]}


def request_body(
    thread_id: str,
    settings: Settings,
    history: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]],
    output_schema: Any = None,
    context: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The Responses API body of the next model request of a turn.

    ``context`` (items from ``threads_context`` plugins: the skills list...)
    follows the developer instructions and precedes the environment context.
    """
    prefix = [_message("developer", settings.base_instructions or BASE_INSTRUCTIONS)]
    if settings.developer_instructions:
        prefix.append(_message("developer", settings.developer_instructions))
    prefix.extend(dict(item) for item in context)
    prefix.append(_message("user", environment_context(settings)))
    body: dict[str, Any] = {
        "model": settings.model,
        "input": [*prefix, *history],
        "tools": list(tools),
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "store": False,
        "stream": True,
        "prompt_cache_key": thread_id,
    }
    reasoning: dict[str, Any] = {}
    if settings.reasoning_effort:
        reasoning["effort"] = settings.reasoning_effort
    if settings.reasoning_summary and settings.reasoning_summary != "none":
        reasoning["summary"] = settings.reasoning_summary
    if reasoning:
        body["reasoning"] = reasoning
        body["include"] = ["reasoning.encrypted_content"]
    if output_schema is not None:
        body["text"] = {
            "format": {
                "type": "json_schema",
                "name": "turn_output_schema",
                "strict": False,
                "schema": output_schema,
            }
        }
    return body
