"""The model's goal tools: ``get_goal``, ``create_goal``, ``update_goal`` (the reference's specs).

Usage accounting stays with the server: the model may read the goal, create
one when none exists, and mark it ``complete`` or ``blocked`` — never pause,
resume or budget it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CREATE", "GET", "UPDATE", "continuation_message", "specs"]

GET, CREATE, UPDATE = "get_goal", "create_goal", "update_goal"


def _function(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict:
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


def specs() -> list[dict[str, Any]]:
    """The three tools' Responses API definitions."""
    return [
        _function(
            GET,
            "Get the current goal for this thread, including status, budgets, token and "
            "elapsed-time usage, and remaining token budget.",
            {},
            [],
        ),
        _function(
            CREATE,
            "Create a goal only when explicitly requested by the user or system/developer "
            "instructions; do not infer goals from ordinary tasks. Set token_budget only when an "
            f"explicit token budget is requested. Fails if a goal exists; use {UPDATE} only for "
            "status.",
            {
                "objective": {
                    "type": "string",
                    "description": "Required. The concrete objective to start pursuing.",
                },
                "token_budget": {
                    "type": "integer",
                    "description": "Optional positive token budget for the new active goal.",
                },
            },
            ["objective"],
        ),
        _function(
            UPDATE,
            "Update the existing goal. Use this tool only to mark the goal achieved or genuinely "
            "blocked. Set status to `complete` only when the objective has actually been achieved "
            "and no required work remains. Set status to `blocked` only when the same blocking "
            "condition has repeated for at least three consecutive goal turns and you cannot make "
            "meaningful progress without user input. You cannot pause, resume or budget a goal.",
            {
                "status": {
                    "type": "string",
                    "enum": ["complete", "blocked"],
                    "description": "Required. `complete` or `blocked`.",
                }
            },
            ["status"],
        ),
    ]


def continuation_message(goal: Any) -> dict[str, Any]:
    """The input that starts an automatic turn toward ``goal`` (a user message, no item)."""
    budget = (
        f"{goal.tokens_used} tokens used of a budget of {goal.token_budget}"
        if goal.token_budget is not None
        else f"{goal.tokens_used} tokens used (no budget)"
    )
    text = (
        '<codex_internal_context source="goal">\n'
        "Continue working toward the active thread goal.\n"
        f"<objective>\n{goal.objective}\n</objective>\n"
        f"Usage so far: {budget}.\n"
        f"When the objective is achieved, call {UPDATE} with status `complete`; if you are "
        "genuinely blocked, with status `blocked`.\n"
        "</codex_internal_context>"
    )
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
