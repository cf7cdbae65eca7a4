"""The ``models`` plugin: retries, dropped and idle streams, unreachable providers, cancellation."""

from __future__ import annotations

import time

from tests.support.model_server import (
    ModelServer,
    drop,
    http_error,
    message_steps,
    scripted_types,
    stall,
    stream,
    text,
)
from tests.support.models_calls import (
    events_of,
    failure,
    free_port,
    kernel,
    provider,
    types,
)

# -- retries -------------------------------------------------------------------------------


async def test_429_then_success_is_retried(serve, model_server: ModelServer):
    model_server.responses.extend([http_error(429), text("after", " retry")])
    async with kernel(serve, provider("mock", model_server.base_url)) as served:
        events = await events_of(served)
    assert types(events) == list(scripted_types(text("a", "b")))
    assert len(model_server.requests) == 2


async def test_retry_after_is_honoured(serve, model_server: ModelServer):
    model_server.responses.extend([http_error(503, retry_after=1), text("ok")])
    async with kernel(serve, provider("mock", model_server.base_url)) as served:
        events = await events_of(served)
    assert types(events)[-1] == "response.completed"
    first, second = model_server.requests
    assert second.at - first.at >= 0.9  # the base delay alone is 10 ms here


async def test_exhausted_retries_report_status_and_provider_message(
    serve, model_server: ModelServer
):
    busy = {"error": {"message": "engine overloaded xyz", "code": "server_is_overloaded"}}
    model_server.responses.extend([http_error(503, busy) for _ in range(3)])
    args = provider("mock", model_server.base_url, request_max_retries=2)
    async with kernel(serve, args) as served:
        error = failure(await events_of(served))
    assert len(model_server.requests) == 3
    assert error["status"] == 503 and error["code"] == "server_is_overloaded"
    assert "HTTP 503 Service Unavailable: engine overloaded xyz" in error["message"]
    assert "gave up after 2 retries (model_providers.mock.request_max_retries)" in error["message"]


async def test_non_retryable_status_fails_at_once(serve, model_server: ModelServer):
    bad = {"error": {"message": "Unknown parameter: 'foo'.", "code": "unknown_parameter"}}
    model_server.responses.extend([http_error(400, bad), http_error(404, {"detail": "no model"})])
    async with kernel(serve, provider("mock", model_server.base_url)) as served:
        bad_request = failure(await events_of(served))
        not_found = failure(await events_of(served))
    assert len(model_server.requests) == 2
    assert bad_request["code"] == "unknown_parameter" and bad_request["status"] == 400
    assert "HTTP 400 Bad Request: Unknown parameter: 'foo'." in bad_request["message"]
    assert not_found["status"] == 404 and "no model" in not_found["message"]
    assert f"{model_server.base_url}/responses" in not_found["message"]
    assert "model_providers.mock.base_url" in not_found["message"]


async def test_stream_dropped_before_output_is_retried(serve, model_server: ModelServer):
    first = stream(complete=False).steps  # response.created only
    model_server.responses.extend([drop(*first), text("second", " try")])
    async with kernel(serve, provider("mock", model_server.base_url)) as served:
        events = await events_of(served)
    assert types(events) == list(scripted_types(text("a", "b")))
    assert types(events).count("response.created") == 1
    assert "".join(e.get("delta", "") for e in events) == "second try"
    assert len(model_server.requests) == 2


async def test_stream_dropped_after_output_is_reported(serve, model_server: ModelServer):
    steps = stream(*message_steps(["partial"])[:2], complete=False).steps
    model_server.responses.append(drop(*steps))
    args = provider("mock", model_server.base_url, stream_max_retries=3)
    async with kernel(serve, args) as served:
        events = await events_of(served)
    assert types(events)[:3] == [
        "response.created",
        "response.output_item.added",
        "response.output_text.delta",
    ]
    error = failure(events)
    assert error["code"] == "stream_disconnected"
    assert "not retried" in error["message"] and "'mock'" in error["message"]
    assert len(model_server.requests) == 1


async def test_idle_stream_is_retried_then_fails(serve, model_server: ModelServer):
    model_server.responses.extend([stall(), stall()])
    args = provider("mock", model_server.base_url, stream_idle_timeout_ms=300, stream_max_retries=1)
    async with kernel(serve, args) as served:
        error = failure(await events_of(served))
    assert error["code"] == "stream_idle_timeout"
    assert "stream_idle_timeout_ms" in error["message"]
    assert "gave up after 1 retry (model_providers.mock.stream_max_retries)" in error["message"]
    assert len(model_server.requests) == 2
    await model_server.wait_disconnect(2)


async def test_transient_response_failed_before_output_is_retried(serve, model_server: ModelServer):
    failed = {
        "type": "response.failed",
        "response": {"error": {"code": "server_error", "message": "try again in 10ms"}},
    }
    model_server.responses.extend([stream(failed, complete=False), text("fine")])
    async with kernel(serve, provider("mock", model_server.base_url)) as served:
        events = await events_of(served)
    assert types(events)[-1] == "response.completed"
    assert len(model_server.requests) == 2


async def test_unreachable_base_url_names_it(serve):
    url = f"http://127.0.0.1:{free_port()}/v1"
    async with kernel(serve, provider("mock", url, request_max_retries=1)) as served:
        error = failure(await events_of(served))
    assert error["code"] == "connection_failed"
    assert url in error["message"] and "model_providers.mock.base_url" in error["message"]
    assert "after 1 retry" in error["message"]


async def test_aclose_cancels_the_upstream_request(serve, model_server: ModelServer):
    steps = stream(*message_steps(["one", "two"])[:3], complete=False).steps
    model_server.responses.append(stall(*steps))
    async with kernel(serve, provider("mock", model_server.base_url)) as served:
        started = time.monotonic()
        events = await events_of(served, close_after=3)
        assert types(events) == [
            "response.created",
            "response.output_item.added",
            "response.output_text.delta",
        ]
        await model_server.wait_disconnect(1, timeout=30)
        assert time.monotonic() - started < 30
        # The kernel is still healthy and serves the next request.
        model_server.responses.append(text("next"))
        assert types(await events_of(served))[-1] == "response.completed"
    assert model_server.requests[0].disconnected
