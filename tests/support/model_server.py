"""A stand-in for a model API: scripted Responses and Chat Completions streams.

A real aiohttp server on 127.0.0.1 (a free port), for tests that drive the
kernel against a "model" without the network and without patching our code::

    async with ModelServer() as server:
        server.responses.append(text("Hel", "lo", usage=usage(10, 2)))
        server.chat.append(chat_tool_call("shell", '{"cmd": "ls"}', call_id="call_1"))
        ...  # point a provider's base_url at server.base_url
        assert server.requests[0].body["model"] == "gpt-5.5"

Routes: ``POST /v1/responses`` and ``POST /v1/chat/completions`` answer
from their FIFO queues (``server.responses``, ``server.chat``); a request
that finds its queue empty gets a plain "ok" answer. ``GET /v1/models``
answers an empty list; anything else is a 404. Every request is recorded in
``server.requests`` (:class:`RecordedRequest`: method, path, query, headers,
parsed JSON body, arrival time) before it is answered.

A scripted answer is a :class:`Scripted`: an HTTP status with headers and a
JSON body (:func:`http_error`), or a 200 event stream made of steps:

* an event dict, sent as ``event: <type>`` + ``data: <json>`` (Responses)
  or as ``data: <json>`` (chat chunks);
* ``{"sleep": seconds}``: a pause between events;
* ``{"raw": text}``: text written as is (comments, malformed lines...);
* ``{"done": True}``: ``data: [DONE]``;
* ``{"drop": True}``: the connection is cut (the body stays incomplete);
* ``{"stall": True}``: nothing more is sent until the client disconnects.

``Scripted.match`` (a substring of the raw request body) makes an entry
wait in the queue for a request that contains it; ``server.router``, a
callable ``(RecordedRequest) -> Scripted | None``, is asked before the
queues. ``server.disconnects`` counts streams whose client went away before
the stream ended (``wait_disconnect()`` waits for the next one).

The builders below make :class:`Scripted` answers: Responses (``text``,
``function_call``, ``custom_tool_call``, ``reasoning``, ``stream``), chat
(``chat_*``) and either (``http_error``, ``stall``, ``drop``, ``sleep``).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import orjson
from aiohttp import web
from multidict import CIMultiDict

__all__ = [
    "ModelServer",
    "RecordedRequest",
    "Scripted",
    "custom_tool_call",
    "drop",
    "function_call",
    "http_error",
    "message_steps",
    "reasoning",
    "scripted_types",
    "sleep",
    "stall",
    "stream",
    "text",
    "usage",
]

_ids = itertools.count(1)


def _next_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids)}"


@attrs.define
class RecordedRequest:
    """One request the stand-in received."""

    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: Any
    raw: bytes
    at: float  # time.monotonic() when it arrived
    disconnected: bool = False  # the client went away before its stream ended


@attrs.define
class Scripted:
    """One scripted answer: ``status`` (+ ``headers``, JSON ``body``) or a stream of ``steps``."""

    steps: list[Any] = attrs.field(factory=list)
    status: int = 200
    headers: dict[str, str] = attrs.field(factory=dict)
    body: Any = None
    chat: bool = False
    match: str | None = None


# -- Responses API builders -------------------------------------------------------------


def usage(
    input_tokens: int = 10,
    output_tokens: int = 5,
    cached: int = 0,
    reasoning_tokens: int = 0,
    total: int | None = None,
) -> dict[str, Any]:
    """A Responses API ``usage`` object."""
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": input_tokens + output_tokens if total is None else total,
    }


_usage = usage


def sleep(seconds: float) -> dict[str, Any]:
    """A pause between two steps."""
    return {"sleep": seconds}


def _ev(kind: str, **fields: Any) -> dict[str, Any]:
    """A ``response.<kind>`` event."""
    return {"type": f"response.{kind}", **fields}


def _item(kind: str, item: dict[str, Any], index: int = 0) -> dict[str, Any]:
    """``response.output_item.<kind>`` (added or done) for ``item``."""
    return _ev(f"output_item.{kind}", output_index=index, item=item)


def stream(*steps: Any, usage: dict[str, Any] | None = None, complete: bool = True) -> Scripted:
    """``response.created``, ``steps``, then ``response.completed`` (unless not ``complete``)."""
    response = {"id": _next_id("resp"), "object": "response", "status": "in_progress"}
    body = [_ev("created", response=response), *steps]
    if complete:
        done = {**response, "status": "completed", "usage": usage or _usage()}
        body.append(_ev("completed", response=done))
    return Scripted(steps=body)


def message_steps(
    deltas: Sequence[str], item_id: str | None = None, index: int = 0
) -> list[dict[str, Any]]:
    """The events of one assistant message streamed as ``deltas`` (output ``index``)."""
    item_id = item_id or _next_id("msg")
    added = {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress"}
    where = {"item_id": item_id, "output_index": index, "content_index": 0}
    content = [{"type": "output_text", "text": "".join(deltas), "annotations": []}]
    return [
        _item("added", {**added, "content": []}, index),
        *(_ev("output_text.delta", **where, delta=delta) for delta in deltas),
        _item("done", {**added, "status": "completed", "content": content}, index),
    ]


def text(*deltas: str, item_id: str | None = None, usage: dict[str, Any] | None = None) -> Scripted:
    """An assistant answer streamed as ``deltas`` (default: ``"ok"``)."""
    return stream(*message_steps(deltas or ("ok",), item_id), usage=usage)


def function_call(
    name: str,
    arguments: str = "{}",
    call_id: str | None = None,
    namespace: str | None = None,
    usage: dict[str, Any] | None = None,
) -> Scripted:
    """A ``function_call`` item (``namespace`` for a namespaced tool)."""
    item: dict[str, Any] = {"id": _next_id("fc"), "type": "function_call", "status": "completed"}
    item.update(call_id=call_id or _next_id("call"), name=name, arguments=arguments)
    if namespace is not None:
        item["namespace"] = namespace
    return stream(
        _item("added", {**item, "arguments": "", "status": "in_progress"}),
        _ev("function_call_arguments.delta", item_id=item["id"], output_index=0, delta=arguments),
        _item("done", item),
        usage=usage,
    )


def custom_tool_call(
    name: str, input: str, call_id: str | None = None, usage: dict[str, Any] | None = None
) -> Scripted:
    """A ``custom_tool_call`` item, e.g. ``apply_patch`` with the raw patch as ``input``."""
    item = {"id": _next_id("ctc"), "type": "custom_tool_call", "status": "completed"}
    item.update(call_id=call_id or _next_id("call"), name=name, input=input)
    return stream(_item("added", {**item, "input": ""}), _item("done", item), usage=usage)


def reasoning(
    summary: Sequence[str] = ("Thinking",),
    content: Sequence[str] = (),
    answer: Sequence[str] | None = ("ok",),
    usage: dict[str, Any] | None = None,
) -> Scripted:
    """A reasoning item (one summary part streamed as ``summary`` deltas, raw
    reasoning as ``content`` deltas), then an answer unless ``answer`` is None."""
    item_id = _next_id("rs")
    at = {"item_id": item_id, "output_index": 0}
    steps = [_item("added", {"id": item_id, "type": "reasoning", "summary": []})]
    if summary:
        part = {"type": "summary_text", "text": ""}
        steps.append(_ev("reasoning_summary_part.added", **at, summary_index=0, part=part))
    steps += [_ev("reasoning_summary_text.delta", **at, summary_index=0, delta=d) for d in summary]
    steps += [_ev("reasoning_text.delta", **at, content_index=0, delta=d) for d in content]
    done: dict[str, Any] = {"id": item_id, "type": "reasoning", "summary": []}
    if summary:
        done["summary"] = [{"type": "summary_text", "text": "".join(summary)}]
    if content:
        done["content"] = [{"type": "reasoning_text", "text": "".join(content)}]
    steps.append(_item("done", done))
    if answer is not None:
        steps += message_steps(answer, index=1)
    return stream(*steps, usage=usage)


def http_error(
    status: int,
    body: Any = None,
    retry_after: float | str | None = None,
    headers: dict[str, str] | None = None,
) -> Scripted:
    """An HTTP error answer; ``body`` (default: an OpenAI-style error) is sent as JSON."""
    default = {"error": {"message": f"scripted error {status}", "type": "mock", "code": None}}
    extra = {} if retry_after is None else {"Retry-After": str(retry_after)}
    return Scripted(status=status, headers={**(headers or {}), **extra}, body=body or default)


def stall(*steps: Any, chat: bool = False) -> Scripted:
    """A 200 stream that sends ``steps`` and then nothing until the client disconnects."""
    return Scripted(steps=[*steps, {"stall": True}], chat=chat)


def drop(*steps: Any, chat: bool = False) -> Scripted:
    """A 200 stream that sends ``steps`` and then cuts the connection mid-body."""
    return Scripted(steps=[*steps, {"drop": True}], chat=chat)


# -- the server -------------------------------------------------------------------------


class ModelServer:
    """The stand-in; an async context manager (see the module docstring)."""

    def __init__(self) -> None:
        self.responses: deque[Scripted] = deque()
        self.chat: deque[Scripted] = deque()
        self.requests: list[RecordedRequest] = []  # model requests (responses, chat)
        self.other_requests: list[RecordedRequest] = []  # everything else (GET /models...)
        self.router: Callable[[RecordedRequest], Scripted | None] | None = None
        self.disconnects = 0
        self.models: list[str] = []  # what GET /v1/models lists
        self.windows: dict[str, int] = {}  # context windows /v1/models states, by model
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Condition()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: a provider's ``base_url``."""
        return f"http://127.0.0.1:{self.port}/v1"

    async def __aenter__(self) -> ModelServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application(client_max_size=256 << 20)  # long histories are large
        app.router.add_post("/v1/responses", self._model)
        app.router.add_post("/v1/chat/completions", self._model)
        app.router.add_route("*", "/{tail:.*}", self._other)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_requests(self, count: int, timeout: float = 30.0) -> list[RecordedRequest]:
        """Wait until at least ``count`` requests arrived; returns them all."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.requests) >= count)
        return self.requests

    async def wait_disconnect(self, count: int = 1, timeout: float = 30.0) -> None:
        """Wait until ``count`` streams in total were abandoned by their client."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.disconnects >= count)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- handlers ------------------------------------------------------------------------

    async def _record(self, request: web.Request, model: bool = True) -> RecordedRequest:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=CIMultiDict(request.headers),
            body=body,
            raw=raw,
            at=time.monotonic(),
        )
        (self.requests if model else self.other_requests).append(recorded)
        await self._notify()
        return recorded

    def _pick(self, recorded: RecordedRequest) -> Scripted:
        chat = recorded.path.endswith("/chat/completions")
        if self.router is not None:
            routed = self.router(recorded)
            if routed is not None:
                return routed
        queue = self.chat if chat else self.responses
        for entry in queue:
            if entry.match is None or entry.match.encode() in recorded.raw:
                queue.remove(entry)
                return entry
        if chat:
            from tests.support.model_chat import chat_text  # it builds on this module

            return chat_text("ok")
        return text("ok")

    async def _model(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        scripted = self._pick(recorded)
        if scripted.status != 200 or (not scripted.steps and scripted.body is not None):
            return web.json_response(
                scripted.body, status=scripted.status, headers=scripted.headers
            )
        response = web.StreamResponse(
            status=200, headers={"Content-Type": "text/event-stream", **scripted.headers}
        )
        try:
            await response.prepare(request)
            for step in scripted.steps:
                played = await self._step(request, response, step, scripted.chat)
                if played != "ok":
                    if played == "left":
                        await self._left(recorded)
                    return response
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            await self._left(recorded)
            raise
        return response

    async def _left(self, recorded: RecordedRequest) -> None:
        recorded.disconnected = True
        self.disconnects += 1
        await self._notify()

    async def _step(
        self, request: web.Request, response: web.StreamResponse, step: Any, chat: bool
    ) -> str:
        """Play one step: "ok", "left" (the client went away) or "dropped" (we cut it)."""
        if isinstance(step, dict) and "sleep" in step:
            await asyncio.sleep(step["sleep"])
        elif isinstance(step, dict) and "raw" in step:
            await response.write(step["raw"].encode())
        elif isinstance(step, dict) and step.get("done"):
            await response.write(b"data: [DONE]\n\n")
        elif isinstance(step, dict) and step.get("drop"):
            transport = request.transport
            if transport is not None:
                transport.abort()
            return "dropped"
        elif isinstance(step, dict) and step.get("stall"):
            while request.transport is not None and not request.transport.is_closing():
                await asyncio.sleep(0.01)
            return "left"
        else:
            await response.write(_frame(step, chat))
        return "ok"

    async def _other(self, request: web.Request) -> web.Response:
        await self._record(request, model=False)
        if request.method == "GET" and request.path == "/v1/models":
            data = [
                {"id": model, "object": "model", **_window(self.windows.get(model))}
                for model in self.models
            ]
            return web.json_response({"object": "list", "data": data})
        return web.json_response({"error": {"message": f"no route {request.path}"}}, status=404)


def _window(tokens: int | None) -> dict[str, Any]:
    return {} if tokens is None else {"context_window": tokens}


def _frame(event: dict[str, Any], chat: bool) -> bytes:
    data = orjson.dumps(event)
    if chat or "type" not in event:
        return b"data: " + data + b"\n\n"
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + data + b"\n\n"


def scripted_types(scripted: Scripted) -> list[str]:
    """The ``type`` of each event step (handy in assertions)."""
    return [s["type"] for s in scripted.steps if isinstance(s, dict) and "type" in s]
