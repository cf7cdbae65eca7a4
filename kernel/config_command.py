"""``kernel config get|set|unset``: read and change config.toml as ``kernel run`` reads it.

``set`` refuses exactly what startup would refuse: the value is checked
against the type its plugin declares (see :mod:`kernel.settings`) with
every installed plugin loaded, enabled or not, before anything is written.
``get`` shows a key's default, with its origin, when no layer sets it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .bootstrap import installed_catalog
from .config import Config, parse_override
from .settings import PLUGIN_SECTION, SettingsCatalog

__all__ = ["config_command"]


def config_command(options: argparse.Namespace, home: Path, usage: Any) -> int:
    config = Config(home, options.overrides)
    if options.action != "get" and not options.key:
        usage(f"kernel config {options.action}: a KEY is required")
    if options.action == "set" and options.value is None:
        usage("kernel config set: a VALUE is required")
    catalog = installed_catalog(config)
    if options.action == "get":
        return _config_get(config, catalog, options.key)
    if options.action == "set":
        _, value = parse_override(f"{options.key}={options.value}")
        config.set_user_value(
            options.key, value, validate=lambda candidate: catalog.check_key(candidate, options.key)
        )
        managed = config.managed(options.key)
        if managed is not None and managed != value:
            print(
                f"note: requirements.toml pins {options.key}; the managed value stays in effect",
                file=sys.stderr,
            )
        return 0
    if not config.unset_user_value(options.key):
        print(f"{options.key} is not set in {config.user_path}", file=sys.stderr)
        return 1
    return 0


def _config_get(config: Config, catalog: SettingsCatalog, key: str | None) -> int:
    if not key:
        print(json.dumps(config.merged(), indent=2))
        return 0
    value = config.get(key)
    origin = config.origin(key)
    found, default = catalog.default(key)
    if isinstance(value, dict) and found and isinstance(default, dict):
        value = _with_defaults(default, value)
        origin = f"{origin}; defaults for the rest"
    if value is None:
        value = default
        if not found:
            reads = catalog.part(key) is not None or key.split(".")[0] == PLUGIN_SECTION
            why = "has no default" if reads else "and no installed plugin reads it"
            print(f"{key} is not set {why}", file=sys.stderr)
            return 1
        origin = "defaults"
    print(json.dumps(value))
    print(f"(from {origin})", file=sys.stderr)
    return 0


def _with_defaults(default: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    merged = dict(default)
    for key, item in value.items():
        below = merged.get(key)
        merged[key] = (
            _with_defaults(below, item)
            if isinstance(below, dict) and isinstance(item, dict)
            else item
        )
    return merged
