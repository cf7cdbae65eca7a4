"""A minimal raw HTTP/1.1 client: exact status and body of any request.

aiohttp's client hides the body of a refused websocket upgrade; tests need
both, so this speaks HTTP over a plain socket (TCP or unix). For requests
no client library would send (malformed heads, heads that never end),
:func:`open_raw` gives the socket and :func:`read_until_closed` waits for
the server to hang up.
"""

from __future__ import annotations

import asyncio

UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


async def open_raw(
    url: str, unix: str | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
    """A plain connection to the listener at ``url`` (or ``unix``); also the Host to send."""
    if unix is not None:
        reader, writer = await asyncio.open_unix_connection(unix)
        return reader, writer, "localhost"
    host_port = url.split("://", 1)[1].rstrip("/")
    host, _, port = host_port.rpartition(":")
    reader, writer = await asyncio.open_connection(host.strip("[]"), int(port))
    return reader, writer, host


async def read_until_closed(reader: asyncio.StreamReader, timeout: float = 30.0) -> bytes | None:
    """Everything the server sends until it closes (EOF or reset); None if it never does."""
    data = b""
    try:
        async with asyncio.timeout(timeout):
            while chunk := await reader.read(65536):
                data += chunk
    except TimeoutError:
        return None
    except ConnectionError:
        pass
    return data


async def http_get(
    url: str,
    path: str = "/",
    headers: dict[str, str] | None = None,
    unix: str | None = None,
    method: str = "GET",
) -> tuple[int, dict[str, str], str]:
    """Send ``method path``; returns (status, lower-cased headers, body)."""
    reader, writer, host = await open_raw(url, unix)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
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
            if status != 101 and method != "HEAD":
                length = int(found.get("content-length", "0"))
                body = await reader.readexactly(length) if length else b""
    finally:
        writer.close()
    return status, found, body.decode(errors="replace")
