"""Catalog plugins as the protocol shows them: summaries, details, marketplace entries.

A catalog plugin's id is ``<name>@<marketplace>`` like a local one; its
``remotePluginId`` is the catalog's id, ``source`` is ``{"type":
"remote"}``, ``version`` the catalog's version and ``localVersion`` the
installed copy's. ``availability`` and ``disabledReason`` come from the
catalog (``DISABLED_BY_ADMIN`` is shown, and refuses installs).
"""

from __future__ import annotations

from typing import Any

from .manifest import AUTH_POLICIES, INSTALL_POLICIES, load_manifest
from .store import Record
from .summary import interface, marketplace_entry

__all__ = ["remote_detail", "remote_entries", "remote_summary"]

_AVAILABILITY = ("AVAILABLE", "DISABLED_BY_ADMIN")
_REASONS = ("disabled_by_admin", "plan_not_eligible", "required_app_unavailable", "unknown")


def _pick(value: Any, allowed: tuple[str, ...], default: str) -> str:
    return value if value in allowed else default


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def remote_summary(
    market: str, entry: dict[str, Any], record: Record | None, enabled: bool
) -> dict[str, Any]:
    """The ``PluginSummary`` of one catalog plugin."""
    name = str(entry.get("name"))
    raw_interface = entry.get("interface") if isinstance(entry.get("interface"), dict) else None
    manifest = load_manifest(record.root) if record is not None else None
    reason = entry.get("disabledReason")
    keywords = entry.get("keywords")
    plans = entry.get("eligiblePlanTypes")
    return {
        "id": f"{name}@{market}",
        "remotePluginId": _text(entry.get("id")),
        "version": _text(entry.get("version")),
        "localVersion": manifest.version if manifest is not None else None,
        "name": name,
        "shareContext": None,
        "source": {"type": "remote"},
        "installed": record is not None,
        "installedAt": record.installed_at if record is not None else None,
        "enabled": record is not None and enabled,
        "installPolicy": _pick(entry.get("installPolicy"), INSTALL_POLICIES, "AVAILABLE"),
        "installPolicySource": None,
        "mustShowInstallationInterstitial": None,
        "authPolicy": _pick(entry.get("authPolicy"), AUTH_POLICIES, "ON_INSTALL"),
        "availability": _pick(entry.get("availability"), _AVAILABILITY, "AVAILABLE"),
        "disabledReason": reason if reason in _REASONS else None,
        "eligiblePlanTypes": [p for p in plans if isinstance(p, str)]
        if isinstance(plans, list)
        else None,
        "interface": interface(raw_interface, _text(entry.get("category")), None, raw_interface),
        "keywords": [k for k in keywords if isinstance(k, str)]
        if isinstance(keywords, list)
        else [],
    }


def remote_entries(
    listing: dict[str, Any], records: dict[str, Record], enabled: Any, installed_only: bool
) -> list[dict[str, Any]]:
    """``PluginMarketplaceEntry`` objects for the catalog's marketplaces (``path`` null)."""
    out = []
    for market in listing.get("marketplaces") or []:
        if not isinstance(market, dict) or not isinstance(market.get("name"), str):
            continue
        name = market["name"]
        plugins = []
        for entry in market.get("plugins") or []:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                continue
            record = records.get(f"{entry['name']}@{name}")
            if installed_only and record is None:
                continue
            plugins.append(remote_summary(name, entry, record, enabled(f"{entry['name']}@{name}")))
        if plugins or not installed_only:
            out.append(marketplace_entry(name, None, _text(market.get("displayName")), plugins))
    return out


def remote_detail(
    market: dict[str, Any], entry: dict[str, Any], record: Record | None, enabled: bool
) -> dict[str, Any]:
    """The ``PluginDetail`` of one catalog plugin (skills as the catalog describes them)."""
    name = str(entry.get("name"))
    skills = []
    for skill in entry.get("skills") or []:
        if isinstance(skill, dict) and isinstance(skill.get("name"), str):
            skills.append(
                {
                    "name": f"{name}:{skill['name']}",
                    "description": str(skill.get("description") or ""),
                    "shortDescription": _text(skill.get("shortDescription")),
                    "interface": None,
                    "path": None,
                    "enabled": True,
                }
            )
    servers = entry.get("mcpServers")
    return {
        "marketplaceName": market["name"],
        "marketplacePath": None,
        "summary": remote_summary(market["name"], entry, record, enabled),
        "shareUrl": None,
        "description": _text(entry.get("description")),
        "skills": skills,
        "onboardingSkill": None,
        "hooks": [],
        "apps": [],
        "appTemplates": [],
        "mcpServers": [s for s in servers if isinstance(s, str)]
        if isinstance(servers, list)
        else [],
        "scheduledTasks": None,
    }
