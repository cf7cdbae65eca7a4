"""A minimal raw HTTP/1.1 client: exact status and body of any request.

aiohttp's client hides the body of a refused websocket upgrade; tests need
both, so this speaks HTTP over a plain socket (TCP or unix).
"""

from __future__ import annotations

import asyncio

UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


async def http_get(
    url: str, path: str = "/", headers: dict[str, str] | None = None, unix: str | None = None
) -> tuple[int, dict[str, str], str]:
    """GET ``path``; returns (status, lower-cased headers, body)."""
    if unix is not None:
        reader, writer = await asyncio.open_unix_connection(unix)
        host = "localhost"
    else:
        host_port = url.split("://", 1)[1].rstrip("/")
        host, _, port = host_port.rpartition(":")
        reader, writer = await asyncio.open_connection(host.strip("[]"), int(port))
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    for name, value in (headers or {}).items():
        if name.lower() == "connection":
            lines[2] = f"Connection: {value}"
        else:
            lines.append(f"{name}: {value}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    try:
        async with asyncio.timeout(10):
            status_line = await reader.readline()
            status = int(status_line.split()[1])
            found: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                found[name.strip().lower()] = value.strip()
            body = b""
            if status != 101:
                length = int(found.get("content-length", "0"))
                body = await reader.readexactly(length) if length else b""
    finally:
        writer.close()
    return status, found, body.decode(errors="replace")
