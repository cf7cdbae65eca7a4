"""The read side of the config methods: layers, the effective configuration, origins.

The kernel reads four layers (lowest first): the system ``config.toml``,
the user's ``config.toml``, ``-c`` session flags and the managed
``requirements.toml``. On the wire each becomes a ``ConfigLayer`` with the
reference's source shapes (``system``, ``user``, ``sessionFlags``,
``legacyManagedConfigTomlFromFile``) and a ``sha256:`` version.

``requirements.toml`` holds two kinds of keys. Constraints (``allowed_*``,
``allow_*``, managed ``[hooks]``...) are what ``configRequirements/read``
reports and never configuration values; everything else in it pins a
configuration value, which wins over every other layer. The effective
configuration therefore leaves the constraints out.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from kernel.config import MANAGED, SESSION_FLAGS, SYSTEM, USER, Config, Layer

__all__ = [
    "CONSTRAINT_KEYS",
    "KNOWN_KEYS",
    "effective",
    "layer_metadata",
    "layer_source",
    "origins",
    "wire_layers",
]

CONSTRAINT_KEYS = frozenset(
    {
        "additional_developer_instructions",
        "allow_appshots",
        "allow_browser_and_computer_use",
        "allow_login_shell",
        "allow_managed_hooks_only",
        "allow_remote_control",
        "allowed_approval_policies",
        "allowed_approvals_reviewers",
        "allowed_login_methods",
        "allowed_permission_profiles",
        "allowed_sandbox_modes",
        "allowed_web_search_modes",
        "allowed_windows_sandbox_implementations",
        "enforce_residency",
        "hooks",
    }
)
"""Keys of requirements.toml that constrain rather than set a value."""

KNOWN_KEYS = (
    "analytics",
    "approval_policy",
    "approvals_reviewer",
    "apps",
    "browser_use",
    "client_search_provider",
    "compact_prompt",
    "computer_use",
    "desktop",
    "developer_instructions",
    "forced_chatgpt_workspace_id",
    "forced_login_method",
    "instructions",
    "model",
    "model_auto_compact_token_limit",
    "model_auto_compact_token_limit_scope",
    "model_context_window",
    "model_provider",
    "model_reasoning_effort",
    "model_reasoning_summary",
    "model_verbosity",
    "review_model",
    "sandbox_mode",
    "sandbox_workspace_write",
    "service_tier",
    "tools",
    "web_search",
)
"""The protocol's ``Config`` members: present (null when unset) in every ``config/read``."""


def layer_source(config: Config, layer: Layer) -> dict[str, Any]:
    """The ``ConfigLayerSource`` of one layer."""
    if layer.name == SYSTEM:
        return {"type": "system", "file": str(layer.path)}
    if layer.name == USER:
        return {"type": "user", "file": str(layer.path), "profile": None}
    if layer.name == SESSION_FLAGS:
        return {"type": "sessionFlags"}
    return {"type": "legacyManagedConfigTomlFromFile", "file": str(layer.path)}


def layer_metadata(config: Config, layer: Layer) -> dict[str, Any]:
    """``ConfigLayerMetadata``: the layer's source and version."""
    return {"name": layer_source(config, layer), "version": layer.version}


def _values(layer: Layer) -> dict[str, Any]:
    if layer.name != MANAGED:
        return layer.tree
    return {k: v for k, v in layer.tree.items() if k not in CONSTRAINT_KEYS}


def _merge_into(target: dict[str, Any], tree: Mapping[str, Any]) -> None:
    for key, value in tree.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def effective(layers: Sequence[Layer], experimental: bool) -> dict[str, Any]:
    """The configuration as the server applies it, with every protocol key present.

    ``approvals_reviewer`` is an experimental field of the protocol: it is
    left out for clients without ``experimentalApi``; the legacy
    ``guardian_subagent`` reads as ``auto_review``.
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        _merge_into(merged, _values(layer))
    for key in KNOWN_KEYS:
        merged.setdefault(key, None)
    reviewer = merged.get("approvals_reviewer")
    if reviewer == "guardian_subagent":
        merged["approvals_reviewer"] = "auto_review"
    if not experimental:
        merged.pop("approvals_reviewer", None)
    return merged


def _leaves(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, Mapping) and value:
        for key, child in value.items():
            yield from _leaves(child, (*prefix, key))
    elif isinstance(value, list) and value:
        for index, child in enumerate(value):
            yield from _leaves(child, (*prefix, index))
    else:
        yield prefix


def _holds(tree: Any, parts: tuple[Any, ...]) -> bool:
    for part in parts:
        if isinstance(part, int) and isinstance(tree, list) and part < len(tree):
            tree = tree[part]
        elif isinstance(tree, Mapping) and part in tree:
            tree = tree[part]
        else:
            return False
    return True


def origins(config: Config, layers: Sequence[Layer], experimental: bool) -> dict[str, Any]:
    """Which layer each leaf of the effective configuration comes from (dotted, arrays indexed).

    The origin of a leaf is the highest layer that holds it: a table merges
    the layers key by key, a list or a scalar is one layer's whole value.
    """
    effective_values: dict[str, Any] = {}
    for layer in layers:
        _merge_into(effective_values, _values(layer))
    highest_first = [(layer, _values(layer)) for layer in reversed(layers)]
    found: dict[str, Any] = {}
    for parts in _leaves(effective_values):
        if not parts or (not experimental and parts[0] == "approvals_reviewer"):
            continue
        for layer, values in highest_first:
            if _holds(values, parts):
                found[".".join(str(p) for p in parts)] = layer_metadata(config, layer)
                break
    return found


def wire_layers(config: Config, layers: Sequence[Layer]) -> list[dict[str, Any]]:
    """``ConfigLayer`` entries, highest precedence first.

    The system and user layers are always listed (empty when their file is
    absent, as the reference lists them); session flags and the managed
    layer only when they exist.
    """
    wire = []
    for layer in reversed(layers):
        if layer.name == SESSION_FLAGS and not layer.tree:
            continue
        if layer.name == MANAGED and not (layer.path is not None and layer.path.exists()):
            continue
        wire.append(
            {
                "name": layer_source(config, layer),
                "version": layer.version,
                "config": layer.tree,
                "disabledReason": None,
            }
        )
    return wire
