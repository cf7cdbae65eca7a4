"""Small helpers shared by the method-family tests."""

from __future__ import annotations

import base64

import pytest

from kernel import RpcError


def b64(data: bytes) -> str:
    """Standard base64 text of ``data``."""
    return base64.b64encode(data).decode()


async def fails(client, method: str, params: dict) -> RpcError:
    """Call ``method`` expecting an error answer; returns it."""
    with pytest.raises(RpcError) as info:
        await client.request(method, params)
    return info.value
