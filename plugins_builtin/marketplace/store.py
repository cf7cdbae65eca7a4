"""Installed plugin bundles on disk: ``<home>/plugins/cache/<marketplace>/<plugin>/<version>/``.

Installing copies a bundle into a staging directory under
``<home>/plugins/.staging/`` first (``.git`` left out; a symlink is kept only
when it points inside the bundle; at most :data:`MAX_FILES` files and
:data:`MAX_BYTES` bytes), checks it has a manifest, then renames it into
place, so the cache never holds a half-copied bundle. The version directory
is the manifest's ``version``, or ``local`` without one; other versions of
the same bundle are removed. Beside the version directory,
``.install.json`` records when and from where it was installed
(``installedAt``, the marketplace file, the source, a catalog's remote id):
that is what ``installedAt`` and ``plugin/installed`` report.

Everything here is blocking I/O, run in the kernel's blocking threads.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from typing import Any

import attrs

from kernel import atomic_write

from .manifest import load_manifest
from .names import safe_segment

__all__ = ["InstallError", "Record", "install_bundle", "remove_bundle", "scan"]

MAX_FILES = 20_000
MAX_BYTES = 1 << 30
RECORD_FILE = ".install.json"


class InstallError(Exception):
    """The bundle cannot be installed; the message is shown to clients."""


@attrs.frozen
class Record:
    """One installed bundle."""

    marketplace: str
    plugin: str
    root: str  # the version directory
    installed_at: int | None = None
    marketplace_path: str | None = None
    source: dict[str, Any] | None = None
    remote_plugin_id: str | None = None
    display_name: str | None = None

    @property
    def id(self) -> str:
        return f"{self.plugin}@{self.marketplace}"


def cache_root(home: str) -> str:
    return os.path.join(home, "plugins", "cache")


def scan(home: str) -> dict[str, Record]:
    """Every installed bundle, by id ``plugin@marketplace``."""
    found: dict[str, Record] = {}
    base = cache_root(home)
    try:
        markets = [e for e in os.scandir(base) if e.is_dir() and not e.name.startswith(".")]
    except OSError:
        return found
    for market in markets:
        try:
            plugins = [
                e for e in os.scandir(market.path) if e.is_dir() and not e.name.startswith(".")
            ]
        except OSError:
            continue
        for plugin in plugins:
            record = _record(market.name, plugin.name, plugin.path)
            if record is not None:
                found[record.id] = record
    return found


def _record(market: str, plugin: str, directory: str) -> Record | None:
    meta: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        with open(os.path.join(directory, RECORD_FILE), "rb") as handle:
            loaded = json.loads(handle.read())
            meta = loaded if isinstance(loaded, dict) else {}
    version = meta.get("version")
    root = os.path.join(directory, version) if isinstance(version, str) else None
    if root is None or not os.path.isdir(root):
        try:
            dirs = [e for e in os.scandir(directory) if e.is_dir() and not e.name.startswith(".")]
        except OSError:
            return None
        if not dirs:
            return None
        root = max(dirs, key=lambda e: e.stat().st_mtime_ns).path
    at = meta.get("installedAt")
    return Record(
        market,
        plugin,
        root,
        at if isinstance(at, int) else None,
        meta.get("marketplacePath") if isinstance(meta.get("marketplacePath"), str) else None,
        meta.get("source") if isinstance(meta.get("source"), dict) else None,
        meta.get("remotePluginId") if isinstance(meta.get("remotePluginId"), str) else None,
        meta.get("marketplaceDisplayName")
        if isinstance(meta.get("marketplaceDisplayName"), str)
        else None,
    )


def _copy(source: str, target: str) -> None:
    """Copy bundle ``source`` to ``target`` (rules in the module docstring)."""
    real_root = os.path.realpath(source)
    counted = {"files": 0, "bytes": 0}

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = set()
        for name in names:
            path = os.path.join(directory, name)
            if name == ".git":
                skipped.add(name)
            elif os.path.islink(path):
                resolved = os.path.realpath(path)
                if resolved != real_root and not resolved.startswith(real_root + os.sep):
                    skipped.add(name)
            elif os.path.isfile(path):
                counted["files"] += 1
                counted["bytes"] += os.path.getsize(path)
        if counted["files"] > MAX_FILES or counted["bytes"] > MAX_BYTES:
            raise InstallError(
                f"the bundle is larger than {MAX_FILES} files or {MAX_BYTES >> 20} MiB"
            )
        return skipped

    shutil.copytree(source, target, symlinks=True, ignore=ignore)


def install_bundle(
    home: str, market: str, plugin: str, source: str, meta: dict[str, Any]
) -> Record:
    """Install the bundle directory ``source`` as ``plugin@market``; returns its record.

    ``meta`` joins the ``.install.json`` record (``marketplacePath``,
    ``source``, ``remotePluginId``, ``marketplaceDisplayName``).
    """
    if not os.path.isdir(source):
        raise InstallError(f"plugin source `{source}` is not a directory")
    staging = os.path.join(home, "plugins", ".staging", uuid.uuid4().hex)
    os.makedirs(staging, mode=0o700)
    try:
        staged = os.path.join(staging, "bundle")
        try:
            _copy(source, staged)
        except shutil.Error as exc:
            raise InstallError(f"copying the bundle failed: {exc.args[0][0][2]}") from None
        manifest = load_manifest(staged)
        if manifest is None:
            raise InstallError("missing plugin.json")
        directory = os.path.join(cache_root(home), market, plugin)
        os.makedirs(directory, exist_ok=True)
        version = safe_segment(manifest.version or "local")
        target = os.path.join(directory, version)
        for entry in os.scandir(directory):
            if entry.is_dir(follow_symlinks=False):  # the same or another version: goes
                os.rename(entry.path, os.path.join(staging, f"old-{entry.name}"))
        os.rename(staged, target)
        record = {
            **meta,
            "installedAt": int(time.time()),
            "version": version,
        }
        atomic_write(os.path.join(directory, RECORD_FILE), json.dumps(record).encode(), 0o644)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    found = _record(market, plugin, directory)
    assert found is not None
    return found


def remove_bundle(home: str, market: str, plugin: str) -> bool:
    """Delete an installed bundle; False when there was none."""
    directory = os.path.join(cache_root(home), market, plugin)
    if not os.path.lexists(directory):
        return False
    trash = os.path.join(home, "plugins", ".staging", f"removed-{uuid.uuid4().hex}")
    os.makedirs(os.path.dirname(trash), mode=0o700, exist_ok=True)
    os.rename(directory, trash)  # gone from the cache at once, then deleted
    shutil.rmtree(trash, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.rmdir(os.path.dirname(directory))  # the marketplace's directory, when now empty
    return True
