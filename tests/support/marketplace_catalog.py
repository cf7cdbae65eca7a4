"""A local stand-in for the remote plugin catalog (aiohttp), as docs/marketplace.md describes it.

``CatalogServer`` serves ``GET /api/plugins/list`` from ``marketplaces``,
``GET /api/plugins/<id>/skills/<name>`` from ``skills``, and bundle archives
(``.tar.gz`` of real bundle folders) from ``bundles``; every request is
recorded (path, headers) so tests can assert what was fetched, and what was
not. ``down = True`` answers 503 to everything.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import attrs
from aiohttp import web

__all__ = ["CatalogServer", "tar_bundle"]


def tar_bundle(folder: Path, top: str | None = "bundle") -> bytes:
    """A gzip tar of ``folder`` (under one top directory, or at the root)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=top or ".")
    return buffer.getvalue()


@attrs.define
class Seen:
    path: str
    headers: dict[str, str]


class CatalogServer:
    """The stand-in; an async context manager. ``url`` is the catalog's base URL."""

    def __init__(self) -> None:
        self.marketplaces: list[dict[str, Any]] = []
        self.featured: list[str] = []
        self.skills: dict[tuple[str, str], str] = {}
        self.bundles: dict[str, bytes] = {}
        self.requests: list[Seen] = []
        self.down = False
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    async def __aenter__(self) -> CatalogServer:
        app = web.Application()
        app.router.add_get("/api/plugins/list", self._list)
        app.router.add_get("/api/plugins/{id}/skills/{name}", self._skill)
        app.router.add_get("/api/bundles/{name}", self._bundle)
        app.middlewares.append(self._record)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append(Seen(request.path, dict(request.headers)))
        if self.down:
            return web.Response(status=503, text="down")
        return await handler(request)  # type: ignore[no-any-return]

    async def _list(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"marketplaces": self.marketplaces, "featuredPluginIds": self.featured}
        )

    async def _skill(self, request: web.Request) -> web.Response:
        found = self.skills.get((request.match_info["id"], request.match_info["name"]))
        if found is None:
            return web.Response(status=404, text="no such skill")
        return web.Response(text=found, content_type="text/markdown")

    async def _bundle(self, request: web.Request) -> web.Response:
        data = self.bundles.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="application/gzip")
