"""Wire rules over the real stdio transport, in a subprocess.

Every frame the server sends is validated against the reference schema by the
``serve`` fixture.
"""

from __future__ import annotations

import asyncio

import pytest

from kernel import RpcError

INIT = {"clientInfo": {"name": "tests", "version": "1.0"}}


async def test_initialize_result_and_handshake_rules(serve):
    async with serve() as s:
        c = s.client
        with pytest.raises(RpcError) as not_init:
            await c.request("echo/echo", {"message": "x"})
        assert (not_init.value.code, not_init.value.message) == (-32600, "Not initialized")

        result = await c.request("initialize", INIT)
        assert result["codexHome"] == str(s.home)
        assert result["platformFamily"] == "unix"
        assert result["platformOs"] in ("linux", "macos")
        assert result["userAgent"].startswith("kernel/") and "(tests; 1.0)" in result["userAgent"]
        # A plugin may add members but never replace the kernel's.
        assert result["probe"] == {"experimental": False}

        with pytest.raises(RpcError) as again:
            await c.request("initialize", INIT)
        assert (again.value.code, again.value.message) == (-32600, "Already initialized")
        await c.notify("initialized")
        assert await c.request("echo/echo", {"message": "x"}) == {"message": "x"}


async def test_failed_initialize_leaves_connection_uninitialized(serve):
    async with serve() as s:
        c = s.client
        with pytest.raises(RpcError) as bad:
            await c.request("initialize", {"clientInfo": {"name": "x"}})
        assert bad.value.code == -32602
        assert bad.value.message == "Invalid params: clientInfo.version: missing required field"
        assert bad.value.data == {
            "problems": [{"path": "clientInfo.version", "message": "missing required field"}]
        }
        with pytest.raises(RpcError, match="Not initialized"):
            await c.request("echo/echo", {"message": "x"})
        await c.request("initialize", INIT)  # now it works


async def test_initialize_capabilities_are_type_checked(serve):
    async with serve() as s:
        with pytest.raises(RpcError) as bad:
            await s.client.request(
                "initialize", {**INIT, "capabilities": {"experimentalApi": "yes"}}
            )
        assert bad.value.code == -32602
        assert "capabilities.experimentalApi: expected a boolean, got string" in bad.value.message


async def test_ids_are_echoed_unchanged(serve):
    async with serve() as s:
        await s.client.initialize()
        for request_id in ("abc", "", 0, -5, 2**53, "∑ unicode id"):
            await s.client.send_raw(
                f'{{"id": {__import__("json").dumps(request_id)}, "method": "echo/echo", '
                f'"params": {{"message": "m"}}}}'
            )
            answer = await s.client.next_orphan()
            assert answer["id"] == request_id and type(answer["id"]) is type(request_id)
            assert answer["result"] == {"message": "m"}


async def test_jsonrpc_member_accepted_and_never_emitted(serve):
    async with serve() as s:
        await s.client.initialize()
        await s.client.send_raw(
            '{"jsonrpc": "2.0", "id": "j", "method": "echo/echo", "params": {"message": "v"}}'
        )
        answer = await s.client.next_orphan()
        assert answer == {"id": "j", "result": {"message": "v"}}
        # The checker also rejects any frame that carries "jsonrpc".


@pytest.mark.parametrize(
    ("frame", "code", "message"),
    [
        ("this is not json", -32700, "Parse error"),
        ('{"id": 1, "method": "echo/echo"', -32700, "Parse error"),
        (
            '[{"id": 1, "method": "echo/echo"}]',
            -32600,
            "Invalid request: batch (JSON array) messages are not supported",
        ),
        ("42", -32600, "Invalid request: expected a JSON object, got integer"),
        ('{"foo": 1}', -32600, "Invalid request: a message needs 'method'"),
        (
            '{"id": null, "method": "echo/echo"}',
            -32600,
            "Invalid request: id: expected a string or an integer, got null",
        ),
        (
            '{"id": 1.5, "method": "echo/echo"}',
            -32600,
            "Invalid request: id: expected a string or an integer, got number",
        ),
        (
            '{"id": true, "method": "echo/echo"}',
            -32600,
            "Invalid request: id: expected a string or an integer, got boolean",
        ),
        (b'{"id": 1, "method": "echo/echo", "params": {"message": "\xff"}}', -32700, "Parse error"),
    ],
)
async def test_malformed_frames_are_answered_with_id_null(serve, frame, code, message):
    async with serve() as s:
        await s.client.initialize()
        await s.client.send_raw(frame)
        answer = await s.client.next_orphan()
        assert answer["id"] is None
        assert answer["error"]["code"] == code
        assert answer["error"]["message"].startswith(message)
        # The connection survives: the next request is served.
        assert await s.client.request("echo/echo", {"message": "still here"}) == {
            "message": "still here"
        }


async def test_message_without_method_keeps_its_id(serve):
    async with serve() as s:
        await s.client.initialize()
        await s.client.send_raw('{"id": 7}')
        answer = await s.client.next_orphan()
        assert answer["id"] == 7 and answer["error"]["code"] == -32600
        await s.client.send_raw('{"id": 8, "method": 5}')
        answer = await s.client.next_orphan()
        assert answer == {
            "id": 8,
            "error": {
                "code": -32600,
                "message": "Invalid request: method: expected a string, got integer",
            },
        }


async def test_unknown_method_is_method_not_found(serve):
    async with serve() as s:
        await s.client.initialize()
        with pytest.raises(RpcError) as err:
            await s.client.request("no/such", {})
        assert (err.value.code, err.value.message) == (-32601, "Method not found: no/such")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"ms": "10"}, "Invalid params: ms: expected an integer, got string"),
        ({}, "Invalid params: ms: missing required field"),
        ({"ms": True}, "Invalid params: ms: expected an integer, got boolean"),
        ({"ms": 1, "label": ["x"]}, "Invalid params: label: expected a string, got array"),
        ([1, 2], "Invalid params: params: expected an object, got array"),
        ("x", "Invalid params: params: expected an object, got string"),
    ],
)
async def test_wrong_params_name_the_field(serve, params, message):
    async with serve() as s:
        await s.client.initialize()
        with pytest.raises(RpcError) as err:
            await s.client.request("probe/sleep", params)
        assert err.value.code == -32602
        assert err.value.message == message


async def test_missing_params_count_as_empty_object(serve):
    async with serve() as s:
        await s.client.initialize()
        with pytest.raises(RpcError, match="Invalid params: message: missing required field"):
            await s.client.request("echo/echo")
        assert await s.client.request("probe/state") is not None


async def test_unknown_params_fields_are_ignored(serve):
    async with serve() as s:
        await s.client.initialize()
        assert await s.client.request("echo/echo", {"message": "a", "futureField": 1}) == {
            "message": "a"
        }


async def test_handler_exception_is_generic_on_wire_and_logged(serve):
    async with serve() as s:
        await s.client.initialize()
        for method in ("probe/fail", "probe/syncFail"):
            with pytest.raises(RpcError) as err:
                await s.client.request(method)
            assert err.value.code == -32603
            assert err.value.message == "Internal error; the server log has the details."
            assert "hunter2" not in str(err.value.data) and "Traceback" not in err.value.message
        await s.client.close()
        log = s.log()
        assert "Traceback" in log and "probe failure with secret detail hunter2" in log
        assert "sync probe failure" in log


async def test_rpc_error_from_handler_passes_through(serve):
    async with serve() as s:
        await s.client.initialize()
        with pytest.raises(RpcError) as err:
            await s.client.request("probe/rpcError")
        assert (err.value.code, err.value.message, err.value.data) == (
            -32010,
            "probe says no",
            {"reason": "testing"},
        )


async def test_long_running_handler_does_not_block_others(serve):
    async with serve() as s:
        await s.client.initialize()
        slow = asyncio.ensure_future(s.client.request("probe/sleep", {"ms": 1500, "label": "slow"}))
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i in range(20):
            assert await s.client.request("echo/echo", {"message": str(i)}) == {"message": str(i)}
        assert loop.time() - started < 1.5
        assert not slow.done()
        assert await slow == {"label": "slow"}


async def test_experimental_method_requires_capability(serve):
    async with serve(plugins=["diagnostics", "echo"]) as s:
        await s.client.initialize()
        with pytest.raises(RpcError) as err:
            await s.client.request("server/diagnostics", {})
        assert (err.value.code, err.value.message) == (
            -32600,
            "server/diagnostics requires experimentalApi capability",
        )


async def test_experimental_fields_gate_input_and_are_hidden_in_output(serve):
    async with serve() as s:
        await s.client.initialize()
        with pytest.raises(RpcError) as err:
            await s.client.request("probe/gated", {"name": "n", "preview": "p"})
        assert (err.value.code, err.value.message) == (
            -32600,
            "probe/gated.preview requires experimentalApi capability",
        )
        with pytest.raises(RpcError) as nested:
            await s.client.request(
                "probe/gated", {"name": "n", "inner": {"flag": True, "hidden": "h"}}
            )
        assert (
            nested.value.message == "probe/gated.inner.hidden requires experimentalApi capability"
        )
        # Type errors win over the gate, as in the reference.
        with pytest.raises(RpcError) as typed:
            await s.client.request("probe/gated", {"name": 1, "preview": "p"})
        assert typed.value.code == -32602
        # null is "not used": accepted without the capability.
        result = await s.client.request("probe/gated", {"name": "n", "preview": None})
        assert result == {"name": "n", "inner": {"flag": True}}


async def test_experimental_client_sees_experimental_fields(serve):
    async with serve() as s:
        await s.client.initialize(experimental=True)
        result = await s.client.request(
            "probe/gated", {"name": "n", "preview": "p", "inner": {"flag": False, "hidden": "h"}}
        )
        assert result == {
            "name": "n",
            "preview": "preview-value",
            "inner": {"flag": True, "hidden": "hidden-value"},
        }


async def test_notifications_respect_opt_out_and_experimental_gates(serve):
    async with serve() as s:
        await s.client.initialize(opt_out=["probe/other"])
        assert await s.client.request("probe/ticks", {"count": 3}) == {"delivered": 3}
        for i in range(3):
            note = await s.client.next_notification("probe/tick")
            assert note.params == {"index": i}  # experimental field left out
        assert await s.client.request("probe/ticks", {"count": 2, "method": "probe/other"}) == {
            "delivered": 0
        }
        assert await s.client.request(
            "probe/ticks", {"count": 2, "method": "probe/previewTick"}
        ) == {"delivered": 0}


async def test_opt_out_matches_exact_names_only(serve):
    async with serve() as s:
        await s.client.initialize(experimental=True, opt_out=["probe/tic", "probe/*"])
        assert await s.client.request("probe/ticks", {"count": 1}) == {"delivered": 1}
        note = await s.client.next_notification("probe/tick")
        assert note.params == {"index": 0, "secretNote": "preview-only"}


async def test_blank_lines_skipped_and_last_line_without_newline_served(serve):
    async with serve() as s:
        await s.client.initialize()
        process = s.process
        assert process.stdin is not None
        process.stdin.write(b"\n   \n\r\n")
        process.stdin.write(b'{"id": "tail", "method": "echo/echo", "params": {"message": "t"}}')
        await process.stdin.drain()
        process.stdin.close()
        answer = await s.client.next_orphan()
        assert answer == {"id": "tail", "result": {"message": "t"}}
        assert await process.wait() == 0


async def test_oversized_message_is_rejected_and_connection_survives(serve):
    async with serve(args=["-c", "kernel.max_message_bytes=1000"]) as s:
        await s.client.initialize()
        big = '{"id": 1, "method": "echo/echo", "params": {"message": "' + "x" * 5000 + '"}}'
        await s.client.send_raw(big)
        answer = await s.client.next_orphan()
        assert answer["id"] is None and answer["error"]["code"] == -32600
        assert "exceeds the limit of 1000 bytes" in answer["error"]["message"]
        assert await s.client.request("echo/echo", {"message": "ok"}) == {"message": "ok"}


async def test_stray_print_goes_to_stderr_not_the_protocol(serve):
    async with serve() as s:
        await s.client.initialize()
        assert await s.client.request("probe/print") == {"printed": True}
        assert await s.client.request("echo/echo", {"message": "after"}) == {"message": "after"}
        await s.client.close()
        assert "this stray print must not reach the protocol stream" in s.log()


async def test_connection_state_set_by_opened_hook(serve):
    async with serve() as s:
        await s.client.initialize()
        assert (await s.client.request("probe/state"))["state"] == {"opened": True}
