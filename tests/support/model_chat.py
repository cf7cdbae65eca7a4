"""Chat Completions answers for the model stand-in (:mod:`tests.support.model_server`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.support.model_server import Scripted, _next_id

__all__ = [
    "chat_chunk",
    "chat_reasoning",
    "chat_stream",
    "chat_text",
    "chat_tool_call",
    "chat_tool_calls",
    "chat_usage",
]


def chat_usage(
    prompt_tokens: int = 10, completion_tokens: int = 5, cached: int = 0, reasoning_tokens: int = 0
) -> dict[str, Any]:
    """A Chat Completions ``usage`` object."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
    }


def chat_chunk(delta: dict[str, Any] | None = None, finish_reason: str | None = None) -> dict:
    """One ``chat.completion.chunk`` with a single choice."""
    choice = {"index": 0, "delta": delta or {}, "finish_reason": finish_reason}
    head = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0}
    return {**head, "model": "mock-model", "choices": [choice]}


def chat_stream(*chunks: Any, usage: dict[str, Any] | None = None) -> Scripted:
    """``chunks`` (dicts or steps), a usage chunk (when ``usage``), then ``[DONE]``."""
    steps = list(chunks)
    if usage is not None:
        steps.append({**chat_chunk(), "choices": [], "usage": usage})
    steps.append({"done": True})
    return Scripted(steps=steps, chat=True)


def chat_text(
    *deltas: str, usage: dict[str, Any] | None = None, finish_reason: str = "stop"
) -> Scripted:
    """An answer streamed as content ``deltas`` (default ``"ok"``)."""
    first = chat_chunk({"role": "assistant", "content": ""})
    chunks = [chat_chunk({"content": d}) for d in deltas or ("ok",)]
    return chat_stream(first, *chunks, chat_chunk(finish_reason=finish_reason), usage=usage)


def chat_tool_calls(
    *calls: tuple[str, str, str], usage: dict[str, Any] | None = None, fragments: int = 2
) -> Scripted:
    """Parallel tool calls ``(name, arguments, call_id)``, arguments split in ``fragments``
    continuation chunks carrying only the call's ``index`` (as OpenAI streams them)."""
    chunks: list[dict[str, Any]] = [chat_chunk({"role": "assistant", "content": None})]
    for index, (name, arguments, call_id) in enumerate(calls):
        head = {"index": index, "id": call_id, "type": "function"}
        chunks.append(chat_chunk({"tool_calls": [{**head, "function": {"name": name}}]}))
        size = max(1, -(-len(arguments) // max(1, fragments)))
        for start in range(0, len(arguments), size):
            part = {"index": index, "function": {"arguments": arguments[start : start + size]}}
            chunks.append(chat_chunk({"tool_calls": [part]}))
    chunks.append(chat_chunk(finish_reason="tool_calls"))
    return chat_stream(*chunks, usage=usage)


def chat_tool_call(
    name: str, arguments: str = "{}", call_id: str | None = None, **kwargs: Any
) -> Scripted:
    """One tool call (see :func:`chat_tool_calls` for ``usage`` and ``fragments``)."""
    return chat_tool_calls((name, arguments, call_id or _next_id("call")), **kwargs)


def chat_reasoning(
    reasoning: Sequence[str] = ("Thinking",),
    answer: Sequence[str] = ("ok",),
    usage: dict[str, Any] | None = None,
) -> Scripted:
    """``delta.reasoning_content`` chunks (vLLM/Ollama style), then the answer."""
    chunks = [chat_chunk({"role": "assistant", "content": ""})]
    chunks += [chat_chunk({"reasoning_content": r}) for r in reasoning]
    chunks += [chat_chunk({"content": a}) for a in answer]
    chunks.append(chat_chunk(finish_reason="stop"))
    return chat_stream(*chunks, usage=usage)
