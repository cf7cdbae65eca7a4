"""The ``config`` plugin: ``config/read``, ``config/value/write``, ``config/batchWrite``,
``configRequirements/read``, over the kernel's layered configuration.

Writes go through :meth:`kernel.Kernel.write_config`: locked, atomic, only
the changed keys touched in config.toml (comments and layout of the rest
stay), validated against what the loaded plugins declared and against the
managed requirements, and followed by ``kernel_config_changed`` so the
plugins that own a key use the new value without a restart. See
docs/config.md.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import attrs
import pluggy

from kernel import Kernel, RequestContext, hookimpl, method
from kernel.blocking import BlockingTimeout
from kernel.config import MANAGED, SESSION_FLAGS, ConfigError, ConfigVersionConflict

from .edits import (
    CONFLICT,
    READONLY,
    VALIDATION,
    Edit,
    apply_edits,
    check_keys,
    check_requirements,
    parse_edit,
    write_error,
)
from .features import feature_list, known_features, page
from .hookspecs import ConfigSpec
from .layers import effective, layer_metadata, origins, wire_layers
from .requirements import requirements_payload

__all__ = ["ConfigPlugin"]

log = logging.getLogger("plugins.config")

_CLIENT_KEYS: dict[str, Any] = {
    # Written by the reference's own clients (the codex TUI keeps its notices
    # and UI choices in config.toml); stored for them, read by no plugin here.
    "tui": dict[str, Any] | None,
    "notice": dict[str, Any] | None,
}


@attrs.frozen
class ConfigReadParams:
    """``cwd`` is accepted (relative too, as the reference); project layers are not applied."""

    cwd: str | None = None
    include_layers: bool = False


@attrs.frozen
class ConfigValueWriteParams:
    """One edit; ``value`` null deletes the key. Checked by :func:`.edits.parse_edit`."""

    key_path: Any
    value: Any
    merge_strategy: Any
    expected_version: str | None = None
    file_path: str | None = None


@attrs.frozen
class ConfigEditParams:
    """One edit of a batch."""

    key_path: Any
    value: Any
    merge_strategy: Any


@attrs.frozen
class ConfigBatchWriteParams:
    """Edits applied together; ``reloadUserConfig`` re-reads config.toml from disk first."""

    edits: list[ConfigEditParams]
    expected_version: str | None = None
    file_path: str | None = None
    reload_user_config: bool = False


@attrs.frozen
class ExperimentalFeatureListParams:
    """An offset page; ``threadId`` is accepted (flags are server-wide here)."""

    cursor: str | None = None
    limit: int | None = None
    thread_id: str | None = None


@attrs.frozen
class ExperimentalFeatureEnablementSetParams:
    """``enablement``: flag name to on/off."""

    enablement: dict[str, bool]


class ConfigPlugin:
    """Serves the config methods; see the module docstring and docs/config.md."""

    def __init__(self) -> None:
        self.kernel: Kernel | None = None

    @hookimpl
    def kernel_add_hookspecs(self, pluginmanager: pluggy.PluginManager) -> None:
        pluginmanager.add_hookspecs(ConfigSpec)

    @hookimpl
    def kernel_config_keys(self) -> dict[str, Any]:
        return dict(_CLIENT_KEYS)

    @hookimpl
    def kernel_configure(self, kernel: Kernel) -> None:
        self.kernel = kernel

    # -- reading -------------------------------------------------------------------------

    @method("config/read")
    async def read(self, params: ConfigReadParams, ctx: RequestContext) -> dict[str, Any]:
        """The effective configuration, where each value comes from, and (optionally) the layers.

        config.toml is read again first, so a hand edit shows (and its
        version is the one a write with ``expectedVersion`` must name); a
        hand edit that does not validate is logged and the values in use are
        shown.
        """
        kernel = ctx.kernel
        try:
            await kernel.reload_config()
        except ConfigError as exc:
            log.warning("config.toml changed on disk but cannot be used: %s", exc)
        config = kernel.config
        layers = config.layers()
        experimental = ctx.connection.experimental
        result: dict[str, Any] = {
            "config": effective(layers, experimental),
            "origins": origins(config, layers, experimental),
        }
        if params.include_layers:
            result["layers"] = wire_layers(config, layers)
        return result

    @method("configRequirements/read")
    async def read_requirements(self, params: None, ctx: RequestContext) -> dict[str, Any]:
        """The managed constraints of requirements.toml (``requirements: null`` without one)."""
        return requirements_payload(ctx.kernel.config)

    # -- feature flags -------------------------------------------------------------------

    @method("experimentalFeature/list")
    async def feature_list(
        self, params: ExperimentalFeatureListParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """The ``[features]`` flags the loaded plugins read, with their state."""
        features = await known_features(ctx.kernel)
        return page(feature_list(ctx.kernel, features), params.cursor, params.limit)

    @method("experimentalFeature/enablement/set")
    async def feature_set(
        self, params: ExperimentalFeatureEnablementSetParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """Turn flags on or off in config.toml; an unknown flag refuses the whole request."""
        features = await known_features(ctx.kernel)
        unknown = sorted(set(params.enablement) - set(features))
        if unknown:
            raise write_error(VALIDATION, f"unknown feature: {', '.join(unknown)}")
        edits = [
            parse_edit(f"features.{name}", value, "replace")
            for name, value in sorted(params.enablement.items())
        ]
        if edits:
            await self._write(ctx, edits, None, reload=False)
        return {"enablement": dict(params.enablement)}

    # -- writing -------------------------------------------------------------------------

    @method("config/value/write")
    async def write_value(
        self, params: ConfigValueWriteParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """Write one key of config.toml (``value: null`` deletes it)."""
        self._check_file(ctx, params.file_path)
        edit = parse_edit(params.key_path, params.value, params.merge_strategy)
        return await self._write(ctx, [edit], params.expected_version, reload=False)

    @method("config/batchWrite")
    async def batch_write(
        self, params: ConfigBatchWriteParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """Write several keys at once: all of them or none."""
        self._check_file(ctx, params.file_path)
        edits = [parse_edit(e.key_path, e.value, e.merge_strategy) for e in params.edits]
        return await self._write(
            ctx, edits, params.expected_version, reload=params.reload_user_config
        )

    @staticmethod
    def _check_file(ctx: RequestContext, file_path: str | None) -> None:
        if file_path is None:
            return
        user = ctx.kernel.config.user_path
        if not os.path.isabs(file_path) or Path(file_path).resolve() != user.resolve():
            raise write_error(READONLY, "Only writes to the user config are allowed")

    async def _write(
        self, ctx: RequestContext, edits: list[Edit], expected: str | None, reload: bool
    ) -> dict[str, Any]:
        kernel = ctx.kernel
        if reload:
            try:
                await kernel.reload_config()
            except ConfigError as exc:
                raise write_error(VALIDATION, f"Invalid configuration: {exc}") from None

        flags: set[str] = set()
        if any(edit.parts[0] == "features" for edit in edits):
            flags = set(await known_features(kernel))

        def validate(candidate: Any) -> None:
            check_keys(kernel.catalog, candidate, edits, flags)
            check_requirements(candidate, edits)

        try:
            written = await kernel.write_config(
                lambda user: apply_edits(user, edits), validate, expected
            )
        except ConfigVersionConflict as exc:
            raise write_error(CONFLICT, str(exc)) from None
        except ConfigError as exc:
            raise write_error(VALIDATION, f"Invalid configuration: {exc}") from None
        except BlockingTimeout:
            raise write_error(VALIDATION, "config.toml could not be written in time") from None
        result: dict[str, Any] = {
            "status": "ok",
            "version": written.version,
            "filePath": str(kernel.config.user_path),
            "overriddenMetadata": None,
        }
        overridden = self._overridden(kernel, edits)
        if overridden is not None:
            result["status"] = "okOverridden"
            result["overriddenMetadata"] = overridden
        return result

    @staticmethod
    def _overridden(kernel: Kernel, edits: list[Edit]) -> dict[str, Any] | None:
        """When a higher layer (``-c``, requirements.toml) sets a written key, say which."""
        config = kernel.config
        for edit in edits:
            layer_name = config.layer_of(edit.key)
            if layer_name not in (SESSION_FLAGS, MANAGED):
                continue
            layer = next(item for item in config.layers() if item.name == layer_name)
            where = "-c flags" if layer_name == SESSION_FLAGS else str(layer.path)
            return {
                "message": f"{edit.key} is set by {where}, which takes precedence over "
                "config.toml: the written value has no effect while it does",
                "overridingLayer": layer_metadata(config, layer),
                "effectiveValue": config.get(edit.key),
            }
        return None
