"""The write side of the config methods: edits, their checks, and the errors clients get.

An edit names a TOML key path (``hooks.state."<key>".enabled``), a value
(``null`` deletes the key) and a merge strategy: ``replace`` sets the value,
``upsert`` merges a table into the table already there. Edits of one batch
apply to one copy of config.toml and are written together or not at all.

Before anything is written, the candidate configuration must pass:

* the settings catalog (every declared part still has its type; a key that
  no loaded plugin reads is refused rather than silently written);
* the managed requirements: a value that ``requirements.toml`` does not
  allow (``sandbox_mode`` outside ``allowed_sandbox_modes``...) is refused,
  where the reference writes it and ignores it later.

Errors are ``-32600`` with ``data.config_write_error_code`` as the
reference's: ``configValidationError``, ``configVersionConflict``,
``configLayerReadonly``.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import attrs

from kernel import RpcError
from kernel.config import Config, ConfigError
from kernel.rpc.errors import INVALID_REQUEST
from kernel.settings import SettingsCatalog
from kernel.tomledit import TomlEditError, parse_key_path

__all__ = [
    "Edit",
    "apply_edits",
    "check_requirements",
    "write_error",
]

VALIDATION = "configValidationError"
CONFLICT = "configVersionConflict"
READONLY = "configLayerReadonly"

_ALLOWED_LISTS = {
    "sandbox_mode": "allowed_sandbox_modes",
    "approval_policy": "allowed_approval_policies",
    "approvals_reviewer": "allowed_approvals_reviewers",
    "web_search": "allowed_web_search_modes",
}


def write_error(code: str, message: str) -> RpcError:
    """The error a refused write answers with."""
    return RpcError(INVALID_REQUEST, message, {"config_write_error_code": code})


@attrs.frozen
class Edit:
    """One ``ConfigEdit``, its key path already split."""

    parts: tuple[str, ...]
    value: Any
    merge: str

    @property
    def key(self) -> str:
        """The dotted key as the settings catalog names keys."""
        return ".".join(self.parts)


def parse_edit(key_path: Any, value: Any, merge: Any) -> Edit:
    """Check one edit's shape; raises the reference's validation errors."""
    if not isinstance(key_path, str):
        raise write_error(VALIDATION, "keyPath must be a string")
    try:
        parts = parse_key_path(key_path)
    except TomlEditError as exc:
        raise write_error(VALIDATION, str(exc)) from None
    if merge not in ("replace", "upsert"):
        raise RpcError(
            -32602,
            f"Invalid params: mergeStrategy: unknown variant `{merge}`, expected `replace` or "
            "`upsert`",
        )
    if value is not None and _holds_null(value):
        raise write_error(
            VALIDATION, "invalid value: invalid type: null, expected any valid TOML value"
        )
    return Edit(tuple(parts), value, merge)


def _holds_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, Mapping):
        return any(_holds_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_null(v) for v in value)
    return False


def apply_edits(tree: dict[str, Any], edits: Sequence[Edit]) -> None:
    """Apply ``edits`` in order to the user layer ``tree`` (in place)."""
    for edit in edits:
        parent = tree
        for index, part in enumerate(edit.parts[:-1]):
            child = parent.get(part)
            if child is None:
                if edit.value is None:
                    break  # deleting under a table that does not exist: nothing to do
                child = parent[part] = {}
            elif not isinstance(child, dict):
                where = ".".join(edit.parts[: index + 1])
                raise write_error(
                    VALIDATION, f"Invalid configuration: {where} is a value, not a table"
                )
            parent = child
        else:
            _set(parent, edit.parts[-1], edit.value, edit.merge)
            if edit.value is None:
                _prune_emptied(tree, edit.parts[:-1])


def _set(parent: dict[str, Any], key: str, value: Any, merge: str) -> None:
    if value is None:
        parent.pop(key, None)
    elif merge == "upsert" and isinstance(value, Mapping) and isinstance(parent.get(key), dict):
        _upsert(parent[key], value)
    else:
        parent[key] = copy.deepcopy(value)


def _upsert(target: dict[str, Any], value: Mapping[str, Any]) -> None:
    for key, item in value.items():
        if isinstance(item, Mapping) and isinstance(target.get(key), dict):
            _upsert(target[key], item)
        else:
            target[key] = copy.deepcopy(item)


def _prune_emptied(tree: dict[str, Any], parents: Sequence[str]) -> None:
    """Remove the tables a delete left empty along ``parents`` (deepest first).

    Only those: an empty table the user wrote elsewhere stays as written.
    """
    for depth in range(len(parents), 0, -1):
        node: Any = tree
        for part in parents[: depth - 1]:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or node.get(parents[depth - 1]) != {}:
            return
        del node[parents[depth - 1]]


def check_keys(
    catalog: SettingsCatalog,
    candidate: Config,
    edits: Sequence[Edit],
    features: Collection[str] = (),
) -> None:
    """Refuse keys nothing reads and values their owner's type refuses.

    ``features`` are the ``[features]`` flags plugins declared (through
    ``config_features``): ``features.<flag>`` is known even when no loaded
    plugin declares the ``features`` table itself.
    """
    for edit in edits:
        known_flag = len(edit.parts) == 2 and edit.parts[0] == "features"
        try:
            if edit.value is not None and not (known_flag and edit.parts[1] in features):
                catalog.check_key(candidate, edit.key, validate=False)
        except ConfigError as exc:
            raise write_error(VALIDATION, f"Invalid configuration: {_plain(exc)}") from None
    try:
        catalog.validate(candidate)
    except ConfigError as exc:
        raise write_error(VALIDATION, f"Invalid configuration: {_plain(exc)}") from None


def _plain(exc: ConfigError) -> str:
    return str(exc).removeprefix("config error: ")


def check_requirements(candidate: Config, edits: Sequence[Edit]) -> None:
    """Refuse a value the managed requirements do not allow (named, with what is allowed)."""
    for edit in edits:
        top = edit.parts[0]
        allowed_key = _ALLOWED_LISTS.get(top)
        if allowed_key is None or len(edit.parts) != 1 or edit.value is None:
            continue
        allowed = candidate.managed(allowed_key)
        if not isinstance(allowed, list):
            continue
        value = edit.value
        name = next(iter(value)) if isinstance(value, Mapping) and len(value) == 1 else value
        if name == "guardian_subagent":
            name = "auto_review"
        if name not in allowed:
            choices = ", ".join(str(a) for a in allowed) or "nothing"
            raise write_error(
                VALIDATION,
                f"Invalid configuration: {top} = {name!r} is not allowed by managed "
                f"requirements ({allowed_key} in {candidate.requirements_path} allows: "
                f"{choices})",
            )
