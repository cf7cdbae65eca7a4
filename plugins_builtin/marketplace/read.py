"""``plugin/read`` for a local marketplace's bundle: the protocol's ``PluginDetail``.

Details come from the bundle's source directory (a git-sourced bundle's
installed copy, once installed; before that only its summary and a
description saying where it comes from). Skills are described by the skills
family (``kernel.services["skills"].skills_under``): without it, ``skills``
is empty.
"""

from __future__ import annotations

from typing import Any

from kernel import RequestContext, RpcError
from kernel.rpc.errors import INVALID_REQUEST

from .detail import apps, hook_summaries, mcp_servers
from .listing import enabled_in
from .manifest import Entry, Manifest, Marketplace, load_manifest
from .summary import summary

__all__ = ["local_detail"]


def _parts(manifest: Manifest, plugin_id: str) -> dict[str, Any]:
    return {
        "hooks": hook_summaries(manifest, plugin_id),
        "apps": apps(manifest),
        "mcpServers": mcp_servers(manifest),
    }


async def local_detail(
    ctx: RequestContext, market: Marketplace, entry: Entry, bundles: dict[str, Any], table: Any
) -> dict[str, Any]:
    """The ``PluginDetail`` of ``entry`` (``bundles``: the installed index, by id)."""
    plugin_id = f"{entry.name}@{market.name}"
    installed = bundles.get(plugin_id)
    record = installed.record if installed is not None else None
    if entry.source["type"] == "local":
        root: str | None = entry.source["path"]
    else:
        root = record.root if record is not None else None
    manifest = (
        await ctx.kernel.blocking.run(ctx.connection, load_manifest, root, timeout=30)
        if root
        else None
    )
    if root is not None and manifest is None:
        raise RpcError(INVALID_REQUEST, "missing or invalid plugin.json")
    enabled = enabled_in(table, plugin_id)
    detail: dict[str, Any] = {
        "marketplaceName": market.name,
        "marketplacePath": market.path,
        "summary": summary(market, entry, manifest, record, enabled),
        "shareUrl": None,
        "description": None,
        "skills": [],
        "onboardingSkill": None,
        "hooks": [],
        "apps": [],
        "appTemplates": [],
        "mcpServers": [],
        "scheduledTasks": None,
    }
    if manifest is None:
        detail["description"] = (
            f"This plugin comes from another repository ({entry.source.get('url')}); install it "
            "to see what it contains."
        )
        return detail
    detail["description"] = manifest.description
    detail.update(
        await ctx.kernel.blocking.run(ctx.connection, _parts, manifest, plugin_id, timeout=30)
    )
    skills_dir = manifest.component("skills", "./skills/")
    service = ctx.kernel.services.get("skills")
    if skills_dir is not None and service is not None:
        found = await service.skills_under(
            skills_dir, ctx.connection, namespace=entry.name, plugin_id=plugin_id, plugin_root=root
        )
        detail["skills"] = [
            {
                "name": s["name"],
                "description": s["description"],
                "shortDescription": s.get("shortDescription"),
                "interface": s.get("interface"),
                "path": s["path"],
                "enabled": s["enabled"],
            }
            for s in found
        ]
    return detail
