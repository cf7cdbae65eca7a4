"""The hook the ``config`` family publishes: the feature flags of ``[features]``.

Families that read a switch from ``[features]`` describe it here, so
``experimentalFeature/list`` shows every flag the loaded plugins honour and
``experimentalFeature/enablement/set`` refuses names nobody reads.
"""

from __future__ import annotations

from typing import Any

from kernel import hookspec

__all__ = ["ConfigSpec"]


class ConfigSpec:
    """Hookspecs of the ``config`` family (docs/config.md)."""

    @hookspec
    def config_features(self) -> list[dict[str, Any]] | None:
        """The ``[features]`` switches this plugin reads.

        When: on every ``experimentalFeature/list`` and
        ``experimentalFeature/enablement/set``.

        Parameters: none.

        Returns: None, or a list of mappings: ``name`` (the key under
        ``[features]``), ``stage`` (``beta``, ``underDevelopment``,
        ``stable``, ``deprecated`` or ``removed``), ``defaultEnabled``
        (bool), and optionally ``displayName`` and ``announcement``. Lists of
        all plugins are concatenated; a name listed twice keeps the first.

        Errors: logged with traceback; that plugin's features are left out.
        """
