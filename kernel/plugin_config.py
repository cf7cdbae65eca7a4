"""One plugin's view of its ``[kernel_plugins.<name>]`` section."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from .settings import PLUGIN_SECTION

if TYPE_CHECKING:
    from .config import Config, ConfigError

__all__ = ["PluginConfig"]

T = TypeVar("T")


class PluginConfig:
    """One plugin's ``[kernel_plugins.<name>]`` section (``enabled`` left out)."""

    def __init__(self, config: Config, name: str) -> None:
        self.name = name
        self.key = f"{PLUGIN_SECTION}.{name}"
        self._config = config
        self.values = config.section(self.key)
        self.values.pop("enabled", None)

    def get(self, key: str, default: Any = None) -> Any:
        """The value at ``key`` inside this section."""
        return self._config.get(f"{self.key}.{key}", default)

    def error(self, key: str, problem: str) -> ConfigError:
        """A :class:`ConfigError` naming ``kernel_plugins.<name>.<key>`` and its layer."""
        return self._config.error(f"{self.key}.{key}", problem)

    def structure(self, cls: type[T]) -> T:
        """This section as ``cls`` (snake_case keys, unknown keys rejected)."""
        return self._config.structure(self.key, cls, ignore=("enabled",))
