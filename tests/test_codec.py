"""Frame classification: every frame becomes exactly one kind of message."""

from __future__ import annotations

import orjson
import pytest

from kernel.rpc.codec import (
    Invalid,
    Notification,
    Request,
    Response,
    decode,
    encode_error,
    encode_notification,
    encode_request,
    encode_result,
)
from kernel.rpc.errors import RpcError


def test_request_notification_response_are_told_apart():
    req = decode(b'{"id": 3, "method": "a/b", "params": {"x": 1}}')
    assert isinstance(req, Request) and (req.id, req.method, req.params) == (3, "a/b", {"x": 1})
    note = decode('{"method": "a/c"}')
    assert isinstance(note, Notification) and note.params is None
    ok = decode(b'{"id": "s", "result": null}')
    assert isinstance(ok, Response) and ok.error is None and ok.result is None
    err = decode(b'{"id": 4, "error": {"code": 1, "message": "m"}}')
    assert isinstance(err, Response) and err.error == {"code": 1, "message": "m"}


@pytest.mark.parametrize(
    ("frame", "code", "msg_id"),
    [
        (b"{", -32700, None),
        (b"", -32700, None),
        (b"[]", -32600, None),
        (b'"text"', -32600, None),
        (b'{"id": 1}', -32600, 1),
        (b'{"id": {}, "result": 1}', -32600, None),
        (b'{"id": 2, "error": "bad"}', -32600, None),
        (b'{"id": false, "method": "m"}', -32600, None),
        (b'{"id": 5, "method": ["m"]}', -32600, 5),
    ],
)
def test_invalid_frames_carry_code_and_readable_id(frame, code, msg_id):
    msg = decode(frame)
    assert isinstance(msg, Invalid)
    assert msg.error.code == code and msg.id == msg_id


def test_encoders_leave_out_jsonrpc_and_empty_params():
    assert orjson.loads(encode_result(1, {"a": 1})) == {"id": 1, "result": {"a": 1}}
    assert orjson.loads(encode_error(None, RpcError(-1, "m"))) == {
        "id": None,
        "error": {"code": -1, "message": "m"},
    }
    assert orjson.loads(encode_error("x", RpcError(-2, "m", {"d": 1}))) == {
        "id": "x",
        "error": {"code": -2, "message": "m", "data": {"d": 1}},
    }
    assert orjson.loads(encode_notification("n", None)) == {"method": "n"}
    assert orjson.loads(encode_request(0, "q", {"p": 1})) == {
        "id": 0,
        "method": "q",
        "params": {"p": 1},
    }
