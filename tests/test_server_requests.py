"""Server→client requests: answered, refused, timed out, or cut by disconnect."""

from __future__ import annotations

import asyncio

import pytest

from kernel import ConnectionClosed, RpcError


async def test_server_request_round_trip(serve):
    async with serve() as s:
        c = s.client
        asked = []

        async def answer(params):
            asked.append(params)
            return {"answer": params["question"].upper()}

        c.on_request("probe/question", answer)
        await c.initialize()
        assert await c.request("probe/ask", {"question": "why"}) == {"answer": "WHY"}
        assert asked == [{"question": "why"}]
        request = next(m for m in s.stream.received if m.get("method") == "probe/question")
        assert isinstance(request["id"], int)


async def test_client_error_answer_reaches_the_handler(serve):
    async with serve() as s:
        c = s.client

        def refuse(params):
            raise RpcError(-32050, "user declined", {"why": "no"})

        c.on_request("probe/question", refuse)
        await c.initialize()
        with pytest.raises(RpcError) as err:
            await c.request("probe/ask", {"question": "may I?"})
        # The probe lets the client's RpcError propagate: same code, message, data.
        assert (err.value.code, err.value.message, err.value.data) == (
            -32050,
            "user declined",
            {"why": "no"},
        )


async def test_client_without_handler_answers_method_not_found(serve):
    async with serve() as s:
        await s.client.initialize()
        with pytest.raises(RpcError) as err:
            await s.client.request("probe/ask", {"question": "anyone?"})
        assert err.value.code == -32601


async def test_unanswered_server_request_times_out(serve):
    async with serve() as s:
        c = s.client
        never = asyncio.Event()

        async def stall(params):
            await never.wait()

        c.on_request("probe/question", stall)
        await c.initialize()
        with pytest.raises(RpcError) as err:
            await c.request("probe/ask", {"question": "hello?", "timeoutS": 0.3})
        assert err.value.code == -32603
        await c.close()
        assert "ServerRequestTimeout: client did not answer probe/question within 0.3s" in s.log()


async def test_answer_to_unknown_server_request_is_ignored(serve):
    async with serve() as s:
        await s.client.initialize()
        await s.client.send_raw('{"id": 999, "result": {"answer": "unsolicited"}}')
        await s.client.send_raw('{"id": "x", "error": {"code": 1, "message": "m"}}')
        assert await s.client.request("echo/echo", {"message": "fine"}) == {"message": "fine"}
        await s.client.close()
        assert "answer to unknown server request id 999 ignored" in s.log()


async def test_disconnect_fails_pending_server_requests_at_once(inproc):
    async with inproc() as c:
        c.on_request("probe/question", lambda params: asyncio.sleep(3600))
        await c.initialize()
        kernel = c.kernel
        conn = next(iter(kernel.connections))
        waiting = asyncio.ensure_future(conn.request("probe/question", None))
        await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await conn.close(grace=5.0, reason="test disconnect")
        with pytest.raises(ConnectionClosed):
            await waiting
        assert loop.time() - started < 1.0


async def test_server_request_rules_for_plugin_authors(inproc):
    async with inproc() as c:
        conn_before = None
        kernel = c.kernel
        conn_before = next(iter(kernel.connections))
        with pytest.raises(ConnectionClosed, match="not initialized"):
            await conn_before.request("probe/question", None)
        await c.initialize()
        with pytest.raises(LookupError, match="not declared"):
            await conn_before.request("nobody/declared", None)
        with pytest.raises(LookupError, match="not declared"):
            await conn_before.notify("nobody/declared", None)
