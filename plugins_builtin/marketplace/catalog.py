"""The remote plugin catalog (the reference's plugin service) behind ``catalog_url``.

Configured by ``[kernel_plugins.marketplace] catalog_url`` (unset: no remote
catalog). The service answers three requests, JSON unless said otherwise:

* ``GET <catalog_url>/plugins/list`` → ``{"marketplaces": [{"name",
  "displayName", "plugins": [{"id" (the remote id: ASCII letters, digits,
  ``_``, ``-``, ``~``), "name", "version", "description", "availability"
  ("AVAILABLE" | "DISABLED_BY_ADMIN"), "disabledReason", "installPolicy",
  "authPolicy", "keywords", "interface" (manifest-style fields plus
  ``composerIconUrl``, ``logoUrl``, ``logoUrlDark``, ``screenshotUrls``),
  "skills": [{"name", "description", "shortDescription"}], "mcpServers",
  "bundleUrl"}]}], "featuredPluginIds": [...]}``;
* ``GET <catalog_url>/plugins/<id>/skills/<skill>`` → the skill's
  ``SKILL.md`` as text (404: no such skill);
* ``GET <bundleUrl>`` (relative to ``catalog_url``) → the bundle as a
  ``.tar.gz`` whose root, or single top directory, holds
  ``.codex-plugin/plugin.json``.

Requests carry ``Authorization: Bearer $<catalog_token_env>`` when that
variable is set, and whatever ``kernel_outbound_request_headers`` plugins
add (purpose ``plugin_catalog``). The list is cached for
``catalog_ttl_seconds``; ``forceRefetch`` bypasses it. Downloads are
streamed to a temporary file with a size cap, and extracted with tarfile's
``data`` filter (no absolute paths, no ``..``, no links leaving the bundle,
no device files) within file-count and size caps. Every file operation of a
download (the temporary file's writes, the extraction, the clean-up) runs
in the kernel's blocking threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import tarfile
import time
import uuid
from typing import Any
from urllib.parse import quote, urljoin

import aiohttp

from kernel import Kernel
from kernel.outbound import OutboundRefused, OutboundRequest, outbound_headers

from .store import MAX_BYTES, MAX_FILES

__all__ = ["CatalogClient", "CatalogError", "valid_remote_id"]

log = logging.getLogger("plugins.marketplace.catalog")

PURPOSE = "plugin_catalog"
MAX_LIST_BYTES = 32 << 20
MAX_DOWNLOAD_BYTES = 256 << 20
WRITE_BATCH = 1 << 20  # received bytes handed to a blocking thread at a time
_REMOTE_ID = re.compile(r"^[A-Za-z0-9_~-]+$")


class CatalogError(Exception):
    """The catalog could not answer; the message is shown to clients."""


def valid_remote_id(value: str) -> bool:
    """Whether ``value`` is a well-formed remote plugin id."""
    return bool(_REMOTE_ID.match(value))


class CatalogClient:
    """One kernel's client of the remote catalog."""

    def __init__(
        self, kernel: Kernel, base_url: str, token_env: str | None, ttl: float, timeout: float
    ) -> None:
        self.kernel = kernel
        self.base_url = base_url.rstrip("/") + "/"
        self.token_env = token_env
        self.ttl = ttl
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._listing: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=self.timeout)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def close(self) -> None:
        """Close the HTTP session (shutdown)."""
        if self._session is not None:
            await self._session.close()

    async def _headers(self, url: str, connection: Any) -> dict[str, str]:
        headers: dict[str, str] = {}
        token = os.environ.get(self.token_env) if self.token_env else None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = OutboundRequest(PURPOSE, url, "GET", connection=connection)
        try:
            headers.update(await outbound_headers(self.kernel.plugins, request, headers.keys()))
        except OutboundRefused as exc:
            raise CatalogError(exc.reason) from None
        return headers

    async def _get(self, path: str, connection: Any, limit: int) -> tuple[int, bytes]:
        url = urljoin(self.base_url, path)
        headers = await self._headers(url, connection)
        try:
            async with self._client().get(url, headers=headers, allow_redirects=False) as response:
                body = await response.content.read(limit + 1)
                if len(body) > limit:
                    raise CatalogError(
                        f"the catalog answer from {url} is larger than {limit} bytes"
                    )
                return response.status, body
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise CatalogError(
                f"the plugin catalog at {url} is unreachable: {exc or type(exc).__name__}"
            ) from None

    async def listing(self, force: bool, connection: Any) -> dict[str, Any]:
        """The catalog's ``plugins/list`` answer (cached for the TTL)."""
        async with self._lock:
            now = time.monotonic()
            if not force and self._listing is not None and now - self._listing[0] < self.ttl:
                return self._listing[1]
            status, body = await self._get("plugins/list", connection, MAX_LIST_BYTES)
            if status != 200:
                raise CatalogError(f"the plugin catalog answered HTTP {status} to plugins/list")
            try:
                data = json.loads(body)
            except ValueError as exc:
                raise CatalogError(
                    f"the plugin catalog's plugins/list is not JSON: {exc}"
                ) from None
            if not isinstance(data, dict) or not isinstance(data.get("marketplaces"), list):
                raise CatalogError("the plugin catalog's plugins/list has no `marketplaces` array")
            self._listing = (now, data)
            return data

    def cached_listing(self) -> dict[str, Any] | None:
        """The last ``plugins/list`` answer, however old (None before the first); no request.

        For callers that must never wait for the catalog (``plugin/installed``
        runs at every client's startup).
        """
        return self._listing[1] if self._listing is not None else None

    async def find(
        self, marketplace: str, plugin: str, connection: Any, *, by_id: bool = False
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """``(marketplace, plugin)`` objects of the catalog, by plugin name (or remote id)."""
        data = await self.listing(False, connection)
        for market in data["marketplaces"]:
            if not isinstance(market, dict) or market.get("name") != marketplace:
                continue
            for entry in market.get("plugins") or []:
                if isinstance(entry, dict) and entry.get("id" if by_id else "name") == plugin:
                    return market, entry
        return None

    async def skill(self, remote_id: str, skill: str, connection: Any) -> str | None:
        """A remote skill's markdown, or None when the catalog has no such skill."""
        path = f"plugins/{quote(remote_id, safe='')}/skills/{quote(skill, safe='')}"
        status, body = await self._get(path, connection, 4 << 20)
        if status == 404:
            return None
        if status != 200:
            raise CatalogError(f"the plugin catalog answered HTTP {status} for skill `{skill}`")
        return body.decode("utf-8", errors="replace")

    async def download(self, entry: dict[str, Any], staging: str, connection: Any) -> str:
        """Fetch and unpack a bundle into a new directory under ``staging``; its bundle root."""
        bundle_url = entry.get("bundleUrl")
        if not isinstance(bundle_url, str) or not bundle_url:
            raise CatalogError(f"the catalog gives no bundleUrl for plugin `{entry.get('name')}`")
        url = urljoin(self.base_url, bundle_url)
        owner = connection or self
        blocking = self.kernel.blocking
        await blocking.run(owner, os.makedirs, staging, 0o700, True, timeout=30)
        archive = os.path.join(staging, f"download-{uuid.uuid4().hex}.tar.gz")
        headers = await self._headers(url, connection)
        try:
            async with self._client().get(url, headers=headers, allow_redirects=False) as response:
                if response.status != 200:
                    raise CatalogError(f"downloading the bundle failed: HTTP {response.status}")
                await self._save(response, archive, owner)
            target = os.path.join(staging, f"bundle-{uuid.uuid4().hex}")
            await blocking.run(owner, _extract, archive, target, timeout=120)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise CatalogError(
                f"downloading the bundle from {url} failed: {exc or type(exc).__name__}"
            ) from None
        finally:
            try:
                await blocking.run(owner, _unlink, archive, timeout=30)
            except (TimeoutError, RuntimeError) as exc:  # logged: keep the first error
                log.warning("could not delete %s: %s", archive, exc)
        return target

    async def _save(self, response: aiohttp.ClientResponse, archive: str, owner: object) -> None:
        """Stream the body into ``archive`` (size-capped), writing in blocking threads."""
        blocking = self.kernel.blocking
        handle = await blocking.run(owner, open, archive, "wb", timeout=30)
        try:
            size = 0
            pending = bytearray()
            async for chunk in response.content.iter_chunked(1 << 16):
                size += len(chunk)
                if size > MAX_DOWNLOAD_BYTES:
                    raise CatalogError(f"the bundle is larger than {MAX_DOWNLOAD_BYTES} bytes")
                pending += chunk
                if len(pending) >= WRITE_BATCH:
                    data, pending = pending, bytearray()
                    await blocking.run(owner, handle.write, data, timeout=60)
            if pending:
                await blocking.run(owner, handle.write, pending, timeout=60)
        finally:
            await blocking.run(owner, handle.close, timeout=30)


def _unlink(path: str) -> None:
    """Remove ``path`` if it is there."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _extract(archive: str, target: str) -> None:
    """Unpack ``archive`` into ``target`` (caps and filter of the module docstring).

    A failure part way removes what was unpacked: nothing is left in staging.
    """
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            if len(members) > MAX_FILES or sum(m.size for m in members) > MAX_BYTES:
                raise CatalogError("the bundle archive is too large")
            tar.extractall(target, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise CatalogError(f"the bundle archive cannot be unpacked: {exc}") from None
