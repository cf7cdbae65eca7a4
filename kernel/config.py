"""Layered TOML configuration under the kernel's home directory.

Layers, lowest precedence first:

1. built-in defaults (the attrs classes that structure each section);
2. ``config.toml`` in the home directory — the user layer, the only one the
   server writes, always atomically (temp file + rename);
3. ``-c key=value`` command-line overrides (the value is parsed as TOML, and
   taken as a plain string when it is not valid TOML);
4. ``requirements.toml`` in the home directory — the managed layer. The server
   never writes it; its values win over every other layer, and a lower layer
   that tries to change one is logged.

Keys are dotted paths (``kernel_plugins.echo.enabled``). Every error names
the key and the layer it came from, never the value (it may be a secret).
What each part may hold is declared in :mod:`kernel.settings`.

Writes to config.toml (``kernel config set``, the config methods) are
read-modify-write under an exclusive lock on ``config.toml.lock`` in the
home, re-reading the file under it, so concurrent writers never lose each
other's changes.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import tomllib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import tomli_w

from .files import atomic_write
from .rpc.converter import StructureError, WireConverter
from .settings import PLUGIN_SECTION, KernelSettings

__all__ = [
    "Config",
    "ConfigError",
    "KernelSettings",
    "PluginConfig",
    "parse_override",
    "resolve_home",
]

_LEGACY_HINT = (
    'kernel plugin settings moved to [kernel_plugins.{name}]; [plugins."<id>"] holds '
    "the reference's plugin bundles, whose ids contain '@'"
)

log = logging.getLogger("kernel.config")
T = TypeVar("T")

DEFAULT_HOME = "~/.kernel"


class ConfigError(Exception):
    """Configuration is unusable; the message names the key and its source."""


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created 0600), where the OS has flock."""
    try:
        import fcntl  # POSIX only
    except ImportError:  # pragma: no cover - Windows: single-writer assumed
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def resolve_home(cli_home: str | None = None) -> Path:
    """The home directory: ``--home``, else ``$KERNEL_HOME``, else ``~/.kernel``."""
    raw = cli_home or os.environ.get("KERNEL_HOME") or DEFAULT_HOME
    return Path(raw).expanduser().absolute()


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``key.path=value``; the value is TOML if it parses, else a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"-c {text!r}: expected key.path=value")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.split("."), value


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _set(tree: dict[str, Any], parts: list[str], value: Any, origin: str) -> None:
    node = tree
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(
                f"{'.'.join(parts[: i + 1])}: is a value, cannot hold "
                f"{'.'.join(parts)} (from {origin})"
            )
        node = child
    node[parts[-1]] = value


def _walk(
    tree: dict[str, Any], prefix: tuple[str, ...] = ()
) -> Iterable[tuple[tuple[str, ...], Any]]:
    for key, value in tree.items():
        path = (*prefix, key)
        if isinstance(value, dict) and value:
            yield from _walk(value, path)
        else:
            yield path, value


class Config:
    """The merged configuration of one kernel, with the origin of every key."""

    def __init__(self, home: Path, overrides: Iterable[str] = ()) -> None:
        self.home = home
        self.user_path = home / "config.toml"
        self.lock_path = home / "config.toml.lock"
        self.requirements_path = home / "requirements.toml"
        self._user = _read_toml(self.user_path)
        self._cli: dict[str, Any] = {}
        for text in overrides:
            parts, value = parse_override(text)
            _set(self._cli, parts, value, "-c")
        self._managed = _read_toml(self.requirements_path)
        self._merge()
        self._converter = WireConverter(wire_names=False, forbid_extra_keys=True)
        self._check_legacy()

    def _check_legacy(self) -> None:
        plugins = self._merged.get("plugins")
        if not isinstance(plugins, dict):
            return
        for name in plugins:
            if "@" not in name:
                raise self.error(f"plugins.{name}", _LEGACY_HINT.format(name=name))

    def _merge(self) -> None:
        merged: dict[str, Any] = {}
        origins: dict[tuple[str, ...], str] = {}
        layers = [
            (self._user, str(self.user_path)),
            (self._cli, "-c override"),
            (self._managed, f"{self.requirements_path} (managed)"),
        ]
        self._layer_names = [name for _, name in layers]
        for tree, origin in layers:
            for path, value in _walk(tree):
                if (
                    path in origins
                    and origin.endswith("(managed)")
                    and self._lookup(merged, path) != value
                ):
                    log.warning(
                        "%s from %s is overridden by %s", ".".join(path), origins[path], origin
                    )
                _set(merged, list(path), copy.deepcopy(value), origin)
                origins[path] = origin
        self._merged = merged
        self._origins = origins

    @staticmethod
    def _lookup(tree: dict[str, Any], path: Iterable[str]) -> Any:
        node: Any = tree
        for part in path:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def get(self, key: str, default: Any = None) -> Any:
        """The merged value at dotted ``key``, or ``default``."""
        value = self._lookup(self._merged, key.split("."))
        return default if value is None else value

    def section(self, key: str) -> dict[str, Any]:
        """A copy of the table at dotted ``key`` (empty if absent)."""
        value = self.get(key, {})
        if not isinstance(value, dict):
            raise self.error(key, "must be a table")
        return copy.deepcopy(value)

    def merged(self) -> dict[str, Any]:
        """A copy of the whole merged configuration."""
        return copy.deepcopy(self._merged)

    def managed(self, key: str) -> Any:
        """The value the managed layer pins at ``key``, or None."""
        return self._lookup(self._managed, key.split("."))

    def origin(self, key: str) -> str:
        """Which layer set ``key``; for a table, every layer that set keys in it."""
        parts = tuple(key.split("."))
        while parts:
            if parts in self._origins:
                return self._origins[parts]
            found = {o for p, o in self._origins.items() if p[: len(parts)] == parts}
            if found:
                return ", ".join(o for o in self._layer_names if o in found)
            parts = parts[:-1]
        return "defaults"

    def error(self, key: str, problem: str) -> ConfigError:
        """A :class:`ConfigError` for ``key`` that names where it was set."""
        return ConfigError(f"config error: {key}: {problem} (from {self.origin(key)})")

    def structure(self, key: str, cls: type[T], *, ignore: Iterable[str] = ()) -> T:
        """Structure the table at ``key`` as ``cls``; unknown keys are errors.

        Keys named in ``ignore`` are left out before structuring.
        """
        values = self.section(key)
        for name in ignore:
            values.pop(name, None)
        return self._structured(key, values, cls)

    def structure_value(self, key: str, tp: Any) -> Any:
        """The merged value at ``key`` structured as ``tp`` (any type cattrs knows)."""
        return self._structured(key, copy.deepcopy(self.get(key)), tp)

    def _structured(self, key: str, value: Any, tp: Any) -> Any:
        try:
            return self._converter.structure(value, tp)
        except StructureError as exc:
            problem = exc.problems[0]
            full = ".".join(p for p in (key, problem.path) if p)
            raise self.error(full, problem.message) from None

    def kernel_settings(self) -> KernelSettings:
        """The validated ``[kernel]`` section."""
        settings = self.structure("kernel", KernelSettings)
        settings.check(self)
        return settings

    def plugin_enabled(self, name: str) -> bool | None:
        """``kernel_plugins.<name>.enabled`` if any layer sets it, else None."""
        key = f"{PLUGIN_SECTION}.{name}.enabled"
        value = self.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self.error(key, "expected true or false")
        return value

    def managed_enabled(self, name: str) -> Any:
        """What requirements.toml pins ``kernel_plugins.<name>.enabled`` to, or None."""
        return self.managed(f"{PLUGIN_SECTION}.{name}.enabled")

    def plugin(self, name: str) -> PluginConfig:
        """The view of ``[kernel_plugins.<name>]`` handed to that plugin."""
        return PluginConfig(self, name)

    # -- writing the user layer -------------------------------------------

    def update_user(
        self,
        change: Callable[[dict[str, Any]], T],
        validate: Callable[[Config], None] | None = None,
    ) -> T:
        """Read-modify-write config.toml under its lock; returns what ``change`` returned.

        ``change(tree)`` edits the freshly read user layer in place;
        ``validate(candidate)`` sees the configuration as it would be and
        raises :class:`ConfigError` to refuse the write (nothing is written).
        """
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _locked(self.lock_path):
            user = _read_toml(self.user_path)
            before = copy.deepcopy(user)
            result = change(user)
            candidate = copy.copy(self)
            candidate._user = user
            candidate._merge()
            if validate is not None:
                validate(candidate)
            if user != before:
                atomic_write(self.user_path, tomli_w.dumps(user).encode())
        self._user = user
        self._merge()
        return result

    def set_user_value(
        self, key: str, value: Any, validate: Callable[[Config], None] | None = None
    ) -> None:
        """Set dotted ``key`` in config.toml (locked, atomic) and in this view."""
        self.update_user(
            lambda user: _set(user, key.split("."), value, str(self.user_path)), validate
        )

    def unset_user_value(self, key: str) -> bool:
        """Remove dotted ``key`` from config.toml; False if it was not set."""
        parts = key.split(".")

        def remove(user: dict[str, Any]) -> bool:
            parent = self._lookup(user, parts[:-1]) if len(parts) > 1 else user
            if not isinstance(parent, dict) or parts[-1] not in parent:
                return False
            del parent[parts[-1]]
            return True

        return self.update_user(remove)


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
