"""The protocol's ``PluginSummary``, ``PluginInterface`` and marketplace entries, built as dicts.

Defaults follow the reference: ``installPolicy`` AVAILABLE, ``authPolicy``
ON_INSTALL, ``availability`` AVAILABLE, ``keywords`` [], ``version`` null
for local bundles (``localVersion`` is the manifest's), ``interface`` null
unless the manifest has one or the marketplace entry has a ``category``
(which wins over the manifest's). Manifest asset paths (``composerIcon``,
``logo``, ``logoDark``, ``screenshots``) are resolved to absolute paths
inside the bundle; one that is absolute or leaves the bundle is dropped.
``defaultPrompt`` becomes a list (at most 3 entries of 512 characters).
Unlike the reference, ``installedAt`` is the install time.
"""

from __future__ import annotations

from typing import Any

from .manifest import Entry, Manifest, Marketplace, inside

__all__ = ["interface", "marketplace_entry", "summary"]

_TEXT_FIELDS = (
    ("displayName", "displayName"),
    ("shortDescription", "shortDescription"),
    ("longDescription", "longDescription"),
    ("developerName", "developerName"),
    ("websiteUrl", "websiteURL"),
    ("privacyPolicyUrl", "privacyPolicyURL"),
    ("termsOfServiceUrl", "termsOfServiceURL"),
    ("brandColor", "brandColor"),
)
_ASSETS = (("composerIcon", "composerIcon"), ("logo", "logo"), ("logoDark", "logoDark"))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


_interfaces: dict[tuple[str | None, str | None], tuple[Any, dict[str, Any] | None]] = {}


def cached_interface(raw: Any, category: str | None, bundle: str | None) -> dict[str, Any] | None:
    """:func:`interface` of a local bundle, reused while its manifest object is unchanged.

    The manifest cache hands out the same object until the file changes, so
    a listing of thousands of bundles builds each interface once. The
    result is shared: callers never modify it.
    """
    key = (bundle, category)
    hit = _interfaces.get(key)
    if hit is not None and hit[0] is raw:
        return hit[1]
    built = interface(raw, category, bundle)
    if len(_interfaces) > 50_000:
        _interfaces.clear()
    _interfaces[key] = (raw, built)
    return built


def interface(
    raw: Any, category: str | None, bundle: str | None, remote: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """A ``PluginInterface`` from a manifest's ``interface`` (assets under ``bundle``).

    ``remote`` carries a catalog's URL fields (``composerIconUrl``,
    ``logoUrl``, ``logoUrlDark``, ``screenshotUrls``).
    """
    manifest = raw if isinstance(raw, dict) else None
    if manifest is None and category is None and not remote:
        return None
    m = manifest or {}
    out: dict[str, Any] = {key: _text(m.get(source)) for key, source in _TEXT_FIELDS}
    out["category"] = category or _text(m.get("category"))
    out["capabilities"] = _strings(m.get("capabilities"))
    prompt = m.get("defaultPrompt")
    prompts = [prompt] if isinstance(prompt, str) else _strings(prompt)
    out["defaultPrompt"] = [p[:512] for p in prompts[:3]] or None
    for key, source in _ASSETS:
        out[key] = _asset(m.get(source), bundle)
    out["screenshots"] = [
        p for p in (_asset(s, bundle) for s in _strings(m.get("screenshots"))) if p
    ]
    remote = remote or {}
    out["composerIconUrl"] = _text(remote.get("composerIconUrl"))
    out["logoUrl"] = _text(remote.get("logoUrl"))
    out["logoUrlDark"] = _text(remote.get("logoUrlDark"))
    out["screenshotUrls"] = _strings(remote.get("screenshotUrls"))
    return {
        key: out[key]
        for key in (
            "displayName", "shortDescription", "longDescription", "developerName", "category",
            "capabilities", "websiteUrl", "privacyPolicyUrl", "termsOfServiceUrl",
            "defaultPrompt", "brandColor", "composerIcon", "composerIconUrl", "logo",
            "logoDark", "logoUrl", "logoUrlDark", "screenshots", "screenshotUrls",
        )
    }  # fmt: skip


def _asset(value: Any, bundle: str | None) -> str | None:
    if not isinstance(value, str) or not value or bundle is None:
        return None
    return inside(bundle, value)


def summary(
    market: Marketplace,
    entry: Entry,
    manifest: Manifest | None,
    record: Any | None,
    enabled: bool,
) -> dict[str, Any]:
    """The ``PluginSummary`` of a local marketplace's entry.

    ``record`` is the install record when the bundle is installed (its
    ``installed_at``); ``enabled`` is the config's enablement.
    """
    bundle = entry.source["path"] if entry.source["type"] == "local" else None
    data = manifest.data if manifest is not None else {}
    return {
        "id": f"{entry.name}@{market.name}",
        "remotePluginId": None,
        "version": None,
        "localVersion": manifest.version if manifest is not None else None,
        "name": entry.name,
        "shareContext": None,
        "source": dict(entry.source),
        "installed": record is not None,
        "installedAt": getattr(record, "installed_at", None),
        "enabled": record is not None and enabled,
        "installPolicy": entry.install_policy,
        "installPolicySource": None,
        "mustShowInstallationInterstitial": None,
        "authPolicy": entry.auth_policy,
        "availability": "AVAILABLE",
        "disabledReason": None,
        "eligiblePlanTypes": None,
        "interface": cached_interface(data.get("interface"), entry.category, bundle),
        "keywords": _strings(data.get("keywords")),
    }


def marketplace_entry(
    name: str, path: str | None, display_name: str | None, plugins: list[dict[str, Any]]
) -> dict[str, Any]:
    """A ``PluginMarketplaceEntry``."""
    return {
        "name": name,
        "path": path,
        "interface": {"displayName": display_name} if display_name is not None else None,
        "plugins": plugins,
    }
