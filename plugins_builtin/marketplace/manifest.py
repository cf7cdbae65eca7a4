"""Marketplace files and plugin bundle manifests, read and checked.

A *marketplace* is a directory holding ``.agents/plugins/marketplace.json``
(or ``.claude-plugin/marketplace.json``)::

    {"name": "local-mkt", "interface": {"displayName": "Local Market"},
     "plugins": [
       {"name": "alpha", "source": {"source": "local", "path": "./plugins/alpha"},
        "policy": {"installation": "AVAILABLE", "authentication": "ON_USE"},
        "category": "Dev"},
       {"name": "beta", "source": "./plugins/beta"},
       {"name": "g", "source": {"source": "url", "url": "https://host/repo.git",
                               "path": "sub/dir", "ref": "main", "sha": "..."}}]}

A *plugin bundle* (a "plugin" in the reference's sense, never a kernel
plugin) is a directory with ``.codex-plugin/plugin.json`` (or
``.claude-plugin/plugin.json``) naming its skills, hooks, MCP servers, apps
and ``interface``.

Local sources must be ``./``-relative paths that stay inside the
marketplace's directory. Unlike the reference, where such an entry silently
disappears, an entry that breaks a rule is left out *and* reported (its
message joins ``marketplaceLoadErrors``). Parsed files are cached by path,
size and modification time, so listing many marketplaces stats each file
instead of reading it again.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import attrs

from .names import bad_name, valid_name

__all__ = [
    "AUTH_POLICIES",
    "INSTALL_POLICIES",
    "Entry",
    "Manifest",
    "Marketplace",
    "MarketplaceError",
    "load_manifest",
    "load_marketplace",
    "marketplace_file",
]

MARKETPLACE_FILES = (
    os.path.join(".agents", "plugins", "marketplace.json"),
    os.path.join(".claude-plugin", "marketplace.json"),
)
MANIFEST_FILES = (
    os.path.join(".codex-plugin", "plugin.json"),
    os.path.join(".claude-plugin", "plugin.json"),
)
INSTALL_POLICIES = ("NOT_AVAILABLE", "AVAILABLE", "INSTALLED_BY_DEFAULT")
AUTH_POLICIES = ("ON_INSTALL", "ON_USE")
MAX_FILE_BYTES = 8 << 20


class MarketplaceError(Exception):
    """A marketplace file that cannot be used; the message is shown to clients."""


@attrs.frozen
class Entry:
    """One plugin entry of a marketplace file.

    ``source`` is ``{"type": "local", "path": abs}`` or ``{"type": "git", "url",
    "path", "refName", "sha"}`` (the protocol's ``PluginSource``).
    """

    name: str
    source: dict[str, Any]
    install_policy: str = "AVAILABLE"
    auth_policy: str = "ON_INSTALL"
    category: str | None = None


@attrs.frozen
class Marketplace:
    """A parsed marketplace file: ``path`` is the file, ``root`` its marketplace directory."""

    name: str
    path: str
    root: str
    display_name: str | None
    entries: tuple[Entry, ...]
    problems: tuple[str, ...] = ()  # entries left out, and why

    def entry(self, name: str) -> Entry | None:
        """The entry called ``name``, if any."""
        for entry in self.entries:
            if entry.name == name:
                return entry
        return None


@attrs.frozen
class Manifest:
    """A bundle's ``plugin.json``: the raw object and where it was found."""

    root: str
    data: dict[str, Any]

    @property
    def version(self) -> str | None:
        value = self.data.get("version")
        return value if isinstance(value, str) and value else None

    @property
    def description(self) -> str | None:
        value = self.data.get("description")
        return value if isinstance(value, str) else None

    def component(self, key: str, default: str) -> str | None:
        """The absolute path a ``./``-relative component entry names (inside the bundle)."""
        value = self.data.get(key, default)
        if isinstance(value, list) and value:
            value = value[0]
        if not isinstance(value, str) or not value:
            return None
        return inside(self.root, value)


def inside(root: str, relative: str) -> str | None:
    """``relative`` resolved under ``root``, or None when it is absolute or escapes."""
    if os.path.isabs(relative):
        return None
    path = os.path.normpath(os.path.join(root, relative))
    return path if path == root or path.startswith(root.rstrip(os.sep) + os.sep) else None


def marketplace_file(root: str) -> str | None:
    """The marketplace file of marketplace directory ``root``, if it has one."""
    for name in MARKETPLACE_FILES:
        path = os.path.join(root, name)
        if os.path.isfile(path):
            return path
    return None


_cache: dict[str, tuple[tuple[int, int], Any]] = {}
_lock = threading.Lock()


def _cached_json(path: str) -> tuple[Any, str | None]:
    """``(object, None)`` or ``(None, problem)``; cached by size and mtime."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None, "does not exist"
    except OSError as exc:
        return None, exc.strerror or str(exc)
    stamp = (info.st_size, info.st_mtime_ns)
    with _lock:
        hit = _cache.get(path)
    if hit is not None and hit[0] == stamp:
        return hit[1], None
    if info.st_size > MAX_FILE_BYTES:
        return None, f"larger than {MAX_FILE_BYTES} bytes"
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read())
    except OSError as exc:
        return None, exc.strerror or str(exc)
    except (ValueError, UnicodeError) as exc:
        return None, str(exc)
    with _lock:
        if len(_cache) > 50_000:
            _cache.clear()
        _cache[path] = (stamp, data)
    return data, None


_derived: dict[str, tuple[Any, Any]] = {}


def _reuse(path: str, data: Any) -> Any:
    """What was built from ``data`` (the very object the JSON cache holds) last time, or None."""
    hit = _derived.get(path)
    return hit[1] if hit is not None and hit[0] is data else None


def _keep(path: str, data: Any, built: Any) -> None:
    with _lock:
        if len(_derived) > 50_000:
            _derived.clear()
        _derived[path] = (data, built)


def load_marketplace(path: str) -> Marketplace:
    """Parse the marketplace file at ``path`` (absolute); raises :class:`MarketplaceError`."""
    data, problem = _cached_json(path)
    if problem is None:
        known = _reuse(path, data)
        if known is not None:
            return known  # type: ignore[no-any-return]
        market = _marketplace(path, data)
        _keep(path, data, market)
        return market
    if problem == "does not exist":
        raise MarketplaceError(f"marketplace file `{path}` does not exist")
    raise MarketplaceError(f"invalid marketplace file `{path}`: {problem}")


def _marketplace(path: str, data: Any) -> Marketplace:
    if not isinstance(data, dict):
        raise MarketplaceError(f"invalid marketplace file `{path}`: expected a JSON object")
    name = data.get("name")
    if not valid_name(name):
        raise MarketplaceError(f"invalid marketplace file `{path}`: {bad_name(name)}")
    root = _root_of(path)
    interface = data.get("interface")
    display = interface.get("displayName") if isinstance(interface, dict) else None
    plugins = data.get("plugins", [])
    if not isinstance(plugins, list):
        raise MarketplaceError(f"invalid marketplace file `{path}`: `plugins` must be an array")
    entries: list[Entry] = []
    problems: list[str] = []
    seen: set[str] = set()
    for index, raw in enumerate(plugins):
        try:
            entry = _entry(raw, root)
        except MarketplaceError as exc:
            problems.append(f"plugins[{index}] left out: {exc}")
            continue
        if entry.name in seen:
            problems.append(f"plugins[{index}]: plugin `{entry.name}` is listed twice")
            continue
        seen.add(entry.name)
        entries.append(entry)
    return Marketplace(
        name,
        path,
        root,
        display if isinstance(display, str) else None,
        tuple(entries),
        tuple(problems),
    )


def _root_of(path: str) -> str:
    """The marketplace directory: two levels above ``.agents/plugins/marketplace.json``."""
    parent = os.path.dirname(path)
    if (
        os.path.basename(parent) == "plugins"
        and os.path.basename(os.path.dirname(parent)) == ".agents"
    ):
        return os.path.dirname(os.path.dirname(parent))
    return os.path.dirname(parent)


def _entry(raw: Any, root: str) -> Entry:
    if not isinstance(raw, dict):
        raise MarketplaceError("an entry must be an object")
    name = raw.get("name")
    if not valid_name(name):
        raise MarketplaceError(bad_name(name))
    source = _source(raw.get("source"), root, name)
    policy: dict[str, Any] = raw["policy"] if isinstance(raw.get("policy"), dict) else {}
    install = policy.get("installation", "AVAILABLE")
    auth = policy.get("authentication", "ON_INSTALL")
    if install not in INSTALL_POLICIES:
        raise MarketplaceError(f"plugin `{name}`: unknown policy.installation {install!r}")
    if auth not in AUTH_POLICIES:
        raise MarketplaceError(f"plugin `{name}`: unknown policy.authentication {auth!r}")
    category = raw.get("category")
    return Entry(name, source, install, auth, category if isinstance(category, str) else None)


def _source(raw: Any, root: str, name: str) -> dict[str, Any]:
    if isinstance(raw, str):
        raw = {"source": "local", "path": raw}
    if not isinstance(raw, dict):
        raise MarketplaceError(f"plugin `{name}`: `source` must be a path or an object")
    kind = raw.get("source")
    if kind == "local":
        relative = raw.get("path")
        if not isinstance(relative, str) or not relative.startswith("./"):
            raise MarketplaceError(
                f"plugin `{name}`: local source path {relative!r} must start with `./`"
            )
        path = inside(root, relative)
        if path is None:
            raise MarketplaceError(
                f"plugin `{name}`: local source path {relative!r} leaves the marketplace directory"
            )
        return {"type": "local", "path": path}
    if kind in ("url", "git", "github"):
        url = raw.get("url") or raw.get("repo")
        if kind == "github" and isinstance(url, str) and "://" not in url:
            url = f"https://github.com/{url}.git"
        if not isinstance(url, str) or not url:
            raise MarketplaceError(f"plugin `{name}`: git source needs a `url`")
        sub = raw.get("path")
        if sub is not None and (not isinstance(sub, str) or inside("/x", sub) is None):
            raise MarketplaceError(f"plugin `{name}`: git source path {sub!r} is not relative")
        ref, sha = raw.get("ref"), raw.get("sha")
        return {
            "type": "git",
            "url": url,
            "path": sub,
            "refName": ref if isinstance(ref, str) else None,
            "sha": sha if isinstance(sha, str) else None,
        }
    raise MarketplaceError(f"plugin `{name}`: unknown source kind {kind!r}")


def load_manifest(bundle: str) -> Manifest | None:
    """The bundle's ``plugin.json`` (None when it has none, or an unusable one)."""
    for name in MANIFEST_FILES:
        path = os.path.join(bundle, name)
        data, problem = _cached_json(path)
        if problem == "does not exist":
            continue
        if problem is not None or not isinstance(data, dict):
            return None
        known = _reuse(path, data)
        if known is None:
            known = Manifest(bundle, data)
            _keep(path, data, known)
        return known  # type: ignore[no-any-return]
    return None
