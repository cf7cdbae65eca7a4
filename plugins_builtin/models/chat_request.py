"""A Responses API request body as a Chat Completions request body.

For providers with ``wire_api = "chat"`` (Ollama, vLLM, llama.cpp, LM
Studio and other OpenAI-compatible servers). What translates:

* ``instructions`` and ``developer``/``system`` messages become ``system``
  messages (local servers rarely know the ``developer`` role); adjacent ones
  are joined, since many chat templates accept a single system message;
* ``user`` and ``assistant`` messages keep their role; text parts are
  joined, user images become ``image_url`` parts;
* ``function_call`` items become an assistant message's ``tool_calls``
  (adjacent calls share one message), ``function_call_output`` items
  become ``tool`` messages;
* ``function`` tools become chat tools; ``tool_choice``,
  ``parallel_tool_calls`` (only with tools), ``temperature``, ``top_p``,
  ``max_output_tokens`` (as ``max_tokens``) and a JSON ``text.format``
  (as ``response_format``) carry over.

Everything else (reasoning items, custom and built-in tool calls, other
tool kinds, ``reasoning``, ``store``, ``include``...) has no Chat
Completions form and is left out with a debug log line.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["chat_request_body"]

log = logging.getLogger("plugins.models")

_TEXT_PARTS = frozenset({"input_text", "output_text", "text", "refusal", "summary_text"})


def _parts(content: Any) -> tuple[str, list[dict[str, Any]], bool]:
    """``(joined text, chat parts, has_image)`` of a Responses message content."""
    if isinstance(content, str):
        return content, [{"type": "text", "text": content}], False
    texts: list[str] = []
    parts: list[dict[str, Any]] = []
    has_image = False
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        if kind in _TEXT_PARTS and isinstance(part.get("text"), str):
            texts.append(part["text"])
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "input_image" and part.get("image_url"):
            url = part["image_url"]
            url = url.get("url") if isinstance(url, Mapping) else url
            parts.append({"type": "image_url", "image_url": {"url": url}})
            has_image = True
        else:
            log.debug("chat translation: leaving out a %s content part", kind)
    return "".join(texts), parts, has_image


def _output_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, Mapping):  # {"content": ...} from older clients
        return _output_text(output.get("content"))
    text, _, _ = _parts(output)
    return text


class _Messages:
    """The chat ``messages`` list being built."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def system(self, text: str) -> None:
        if not text:
            return
        last = self.items[-1] if self.items else None
        if last is not None and last["role"] == "system":
            last["content"] = f"{last['content']}\n\n{text}"
        else:
            self.items.append({"role": "system", "content": text})

    def message(self, item: Mapping[str, Any]) -> None:
        role = item.get("role")
        text, parts, has_image = _parts(item.get("content"))
        if role in ("developer", "system"):
            self.system(text)
        elif role == "user":
            self.items.append({"role": "user", "content": parts if has_image else text})
        elif role == "assistant":
            self.items.append({"role": "assistant", "content": text})
        else:
            log.debug("chat translation: leaving out a message with role %r", role)

    def tool_call(self, item: Mapping[str, Any]) -> None:
        arguments = item.get("arguments")
        if not isinstance(arguments, str):
            arguments = orjson.dumps(arguments or {}).decode()
        call = {
            "id": str(item.get("call_id") or item.get("id") or ""),
            "type": "function",
            "function": {"name": str(item.get("name") or ""), "arguments": arguments},
        }
        last = self.items[-1] if self.items else None
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)
            if not last.get("content"):
                last["content"] = None
        else:
            self.items.append({"role": "assistant", "content": None, "tool_calls": [call]})

    def tool_output(self, item: Mapping[str, Any]) -> None:
        self.items.append(
            {
                "role": "tool",
                "tool_call_id": str(item.get("call_id") or ""),
                "content": _output_text(item.get("output")),
            }
        )


def _tool(tool: Any) -> dict[str, Any] | None:
    if not isinstance(tool, Mapping) or tool.get("type") != "function" or not tool.get("name"):
        kind = tool.get("type") if isinstance(tool, Mapping) else type(tool).__name__
        log.debug("chat translation: leaving out a %s tool", kind)
        return None
    function: dict[str, Any] = {
        "name": tool["name"],
        "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
    }
    if tool.get("description"):
        function["description"] = tool["description"]
    if tool.get("strict") is True:
        function["strict"] = True
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, Mapping) and choice.get("type") == "function" and choice.get("name"):
        return {"type": "function", "function": {"name": choice["name"]}}
    return None


def _response_format(text: Any) -> dict[str, Any] | None:
    fmt = text.get("format") if isinstance(text, Mapping) else None
    if not isinstance(fmt, Mapping):
        return None
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if fmt.get("type") == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    return None


def chat_request_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The Chat Completions body for Responses ``body`` (always streaming, with usage)."""
    messages = _Messages()
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        messages.system(instructions)
    items = body.get("input")
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": items}]
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            messages.message(item)
        elif kind == "function_call":
            messages.tool_call(item)
        elif kind == "function_call_output":
            messages.tool_output(item)
        else:
            log.debug("chat translation: leaving out a %s input item", kind)
    out: dict[str, Any] = {
        "model": body.get("model"),
        "messages": messages.items,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    tools = [t for t in map(_tool, body.get("tools") or []) if t is not None]
    if tools:
        out["tools"] = tools
        choice = _tool_choice(body.get("tool_choice"))
        if choice is not None:
            out["tool_choice"] = choice
        if isinstance(body.get("parallel_tool_calls"), bool):
            out["parallel_tool_calls"] = body["parallel_tool_calls"]
    for key in ("temperature", "top_p"):
        if isinstance(body.get(key), (int, float)):
            out[key] = body[key]
    if isinstance(body.get("max_output_tokens"), int):
        out["max_tokens"] = body["max_output_tokens"]
    response_format = _response_format(body.get("text"))
    if response_format is not None:
        out["response_format"] = response_format
    return out
