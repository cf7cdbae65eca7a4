"""``kernel call METHOD [PARAMS]``: one request, the handshake done for you.

Without ``--connect`` the call goes to a kernel started in this process
with the usual selection options (``--plugins``, ``-c``, ``--home``); with
``--connect ws://HOST:PORT`` or ``unix://[PATH]`` it goes to a running
server (``--token-file`` sends ``Authorization: Bearer``).

Output: the answer's ``result`` (or, on an error answer, its ``error``
object) as JSON on stdout; exit status 0 for a result, 1 for an error
answer or a failure to reach the server. ``--notifications`` prints every
notification received meanwhile as a JSON line on stderr. Server→client
requests are answered ``-32601``: a one-shot call has nobody to ask.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .bootstrap import build_kernel
from .client import Client
from .config import ConfigError
from .plugins import StartupError
from .rpc.errors import RpcError
from .transports.unix_socket import default_socket_path

__all__ = ["parse_params", "run_call"]


def parse_params(text: str | None) -> Any:
    """The params argument: JSON, ``-`` for stdin, or absent (no params)."""
    if text is None:
        return None
    raw = sys.stdin.read() if text == "-" else text
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"PARAMS is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ConfigError("PARAMS must be a JSON object")
    return value


async def run_call(
    method: str,
    params: Any,
    *,
    home: Path,
    connect: str | None,
    token_file: str | None,
    experimental: bool,
    notifications: bool,
    plugins: Sequence[str] | None,
    disable: Sequence[str],
    overrides: Sequence[str],
) -> int:
    """Make the call and print its answer; returns the exit status."""
    kernel = None
    if connect is None:
        kernel = build_kernel(home=home, plugins=plugins, disable=disable, overrides=overrides)
        await kernel.start()
        client = await Client.in_process(kernel)
    else:
        client = await _connect(connect, home, token_file)
    printer = asyncio.create_task(_print_notifications(client)) if notifications else None
    try:
        await client.initialize(name="kernel-call", experimental=experimental)
        try:
            result = await client.request(method, params)
        except RpcError as error:
            print(json.dumps(error.to_wire(), indent=2))
            print(f"error {error.code}: {error.message}", file=sys.stderr)
            return 1
        print(json.dumps(result, indent=2))
        return 0
    finally:
        if printer is not None:
            await asyncio.sleep(0)  # what arrived with the answer is printed
            printer.cancel()
        await client.close()
        if kernel is not None:
            await kernel.stop()


async def _connect(url: str, home: Path, token_file: str | None) -> Client:
    token = None
    if token_file is not None:
        path = Path(token_file)
        if not path.is_absolute():
            raise ConfigError(f"--token-file {token_file}: the path must be absolute")
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"--token-file {token_file}: {exc.strerror}") from None
    if url == "unix://":
        url = f"unix://{default_socket_path(home)}"
    try:
        return await Client.connect(url, token=token)
    except Exception as exc:
        raise StartupError(f"cannot connect to {url}: {exc}") from None


async def _print_notifications(client: Client) -> None:
    async for note in client.notifications():
        print(json.dumps({"method": note.method, "params": note.params}), file=sys.stderr)
