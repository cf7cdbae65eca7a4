"""Small helpers shared by the method-family tests."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

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


def strict_pytest(
    cwd: Path, env: dict[str, str], *targets: str
) -> subprocess.CompletedProcess[str]:
    """Run pytest in ``cwd`` as a plugin author would: pytest-asyncio in strict mode."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=strict",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            *targets,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
