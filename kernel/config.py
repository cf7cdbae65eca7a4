"""Layered TOML configuration under the kernel's home directory.

Layers, lowest precedence first:

1. built-in defaults (the attrs classes that structure each section);
2. ``config.toml`` in the system directory (``$KERNEL_SYSTEM_DIR``, default
   ``/etc/kernel-app-server``) — the system layer, for every user of the
   machine; read only;
3. ``config.toml`` in the home directory — the user layer, the only one the
   server writes, always atomically (temp file + rename) and keeping the
   comments and layout of everything a write does not change;
4. ``-c key=value`` command-line overrides (the value is parsed as TOML, and
   taken as a plain string when it is not valid TOML);
5. ``requirements.toml`` in the home directory — the managed layer. The server
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
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import attrs

from .files import atomic_write

if TYPE_CHECKING:
    from .plugin_config import PluginConfig
from .rpc.converter import StructureError, WireConverter
from .settings import PLUGIN_SECTION, KernelSettings
from .tomledit import TomlEditError, changed_paths, edit_document, version_of

__all__ = [
    "Config",
    "ConfigError",
    "ConfigVersionConflict",
    "KernelSettings",
    "Layer",
    "UserWrite",
    "parse_override",
    "resolve_home",
    "resolve_system_dir",
]

_LEGACY_HINT = (
    'kernel plugin settings moved to [kernel_plugins.{name}]; [plugins."<id>"] holds '
    "the reference's plugin bundles, whose ids contain '@'"
)

log = logging.getLogger("kernel.config")
T = TypeVar("T")

DEFAULT_HOME = "~/.kernel"
DEFAULT_SYSTEM_DIR = "/etc/kernel-app-server"

USER, SYSTEM, SESSION_FLAGS, MANAGED = "user", "system", "sessionFlags", "managed"


class ConfigError(Exception):
    """Configuration is unusable; the message names the key and its source."""


class ConfigVersionConflict(ConfigError):
    """config.toml changed since the version the writer expected."""


@attrs.frozen
class Layer:
    """One layer of the configuration as it was read (see :meth:`Config.layers`)."""

    name: str
    """``system``, ``user``, ``sessionFlags`` or ``managed``."""
    path: Path | None
    """The file it comes from (None for ``-c`` overrides)."""
    tree: dict[str, Any]
    """Its values, as read (a copy is handed out)."""
    version: str
    """``sha256:<hex>`` of the file's bytes (of the overrides' text for ``-c``)."""


@attrs.frozen
class UserWrite:
    """What :meth:`Config.write_user` did."""

    result: Any
    """What the ``change`` callable returned."""
    version: str
    """The version of config.toml after the write (unchanged when nothing changed)."""
    changed: tuple[str, ...]
    """Dotted paths of the merged configuration whose values changed."""


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


def resolve_system_dir() -> Path:
    """The system directory: ``$KERNEL_SYSTEM_DIR``, else ``/etc/kernel-app-server``."""
    raw = os.environ.get("KERNEL_SYSTEM_DIR") or DEFAULT_SYSTEM_DIR
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


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _parse_toml(path: Path, data: bytes) -> dict[str, Any]:
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    return _parse_toml(path, _read_bytes(path))


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

    def __init__(
        self, home: Path, overrides: Iterable[str] = (), system_dir: Path | None = None
    ) -> None:
        self.home = home
        self.system_dir = resolve_system_dir() if system_dir is None else system_dir
        self.system_path = self.system_dir / "config.toml"
        self.user_path = home / "config.toml"
        self.lock_path = home / "config.toml.lock"
        self.requirements_path = home / "requirements.toml"
        self._system_bytes = _read_bytes(self.system_path)
        self._system = _parse_toml(self.system_path, self._system_bytes)
        self._user_bytes = _read_bytes(self.user_path)
        self._user = _parse_toml(self.user_path, self._user_bytes)
        self._overrides = list(overrides)
        self._cli: dict[str, Any] = {}
        for text in self._overrides:
            parts, value = parse_override(text)
            _set(self._cli, parts, value, "-c")
        self._managed_bytes = _read_bytes(self.requirements_path)
        self._managed = _parse_toml(self.requirements_path, self._managed_bytes)
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
            (self._system, f"{self.system_path} (system)"),
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

    def layers(self) -> list[Layer]:
        """Every layer as it was read, lowest precedence first (absent files are empty)."""
        overrides = "\n".join(self._overrides).encode()
        return [
            Layer(
                SYSTEM,
                self.system_path,
                copy.deepcopy(self._system),
                version_of(self._system_bytes),
            ),
            Layer(USER, self.user_path, copy.deepcopy(self._user), version_of(self._user_bytes)),
            Layer(SESSION_FLAGS, None, copy.deepcopy(self._cli), version_of(overrides)),
            Layer(
                MANAGED,
                self.requirements_path,
                copy.deepcopy(self._managed),
                version_of(self._managed_bytes),
            ),
        ]

    def layer_tree(self, name: str) -> Mapping[str, Any]:
        """One layer's values (``system``, ``user``, ``sessionFlags``, ``managed``), not copied.

        For readers on a hot path (hook discovery runs per turn): the mapping
        is this view's own and must not be changed; :meth:`layers` hands out
        copies with versions.
        """
        trees = {
            SYSTEM: self._system,
            USER: self._user,
            SESSION_FLAGS: self._cli,
            MANAGED: self._managed,
        }
        return trees[name]

    def layer_of(self, key: str) -> str | None:
        """The name of the highest layer that sets dotted ``key`` (or a key inside it), if any."""
        parts = key.split(".")
        for name, tree in (
            (MANAGED, self._managed),
            (SESSION_FLAGS, self._cli),
            (USER, self._user),
            (SYSTEM, self._system),
        ):
            if self._lookup(tree, parts) is not None:
                return name
        return None

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
        from .plugin_config import PluginConfig

        return PluginConfig(self, name)

    # -- writing the user layer -------------------------------------------

    def update_user(
        self,
        change: Callable[[dict[str, Any]], T],
        validate: Callable[[Config], None] | None = None,
    ) -> T:
        """Read-modify-write config.toml under its lock; returns what ``change`` returned.

        See :meth:`write_user`, which also reports the new version and what
        changed.
        """
        return cast(T, self.write_user(change, validate).result)

    def write_user(
        self,
        change: Callable[[dict[str, Any]], Any],
        validate: Callable[[Config], None] | None = None,
        expected_version: str | None = None,
    ) -> UserWrite:
        """Read-modify-write config.toml under its lock.

        ``change(tree)`` edits the freshly read user layer (a plain dict) in
        place; ``validate(candidate)`` sees the configuration as it would be
        and raises :class:`ConfigError` to refuse the write (nothing is
        written). With ``expected_version``, a file whose version differs
        (someone wrote it since) raises :class:`ConfigVersionConflict`.
        Only the difference reaches the file: untouched keys keep their
        comments and layout. A symlinked config.toml is written through.
        Blocking (file I/O under a lock): call it off the event loop.
        """
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = self.user_path.resolve() if self.user_path.is_symlink() else self.user_path
        with _locked(self.lock_path):
            data = _read_bytes(target)
            if expected_version is not None and expected_version != version_of(data):
                raise ConfigVersionConflict(
                    "Configuration was modified since last read. Fetch latest version and retry."
                )
            user = _parse_toml(self.user_path, data)
            before = copy.deepcopy(user)
            result = change(user)
            candidate = copy.copy(self)
            candidate._user = user
            candidate._merge()
            if validate is not None:
                validate(candidate)
            if user != before:
                try:
                    text = edit_document(data.decode("utf-8"), before, user)
                except TomlEditError as exc:  # pragma: no cover - parsed above
                    raise ConfigError(f"{self.user_path}: {exc}") from None
                data = text.encode("utf-8")
                atomic_write(target, data)
            # Adopted under the lock: two writers never leave the older view behind.
            changed = self._adopt(candidate, data)
        return UserWrite(result, version_of(data), changed)

    def reload_user(self, validate: Callable[[Config], None] | None = None) -> tuple[str, ...]:
        """Re-read config.toml from disk (edited by hand); returns the changed paths.

        Blocking. A file that is not valid TOML, or that ``validate`` refuses,
        raises :class:`ConfigError` and leaves this view as it was; what is
        adopted is exactly what was validated.
        """
        with _locked(self.lock_path):
            data = _read_bytes(self.user_path)
            candidate = copy.copy(self)
            candidate._user = _parse_toml(self.user_path, data)
            candidate._merge()
            if validate is not None:
                validate(candidate)
            return self._adopt(candidate, data)

    def _adopt(self, candidate: Config, data: bytes) -> tuple[str, ...]:
        """Take ``candidate``'s user layer (and its merge) as this view's; the changed paths."""
        merged_before = self._merged
        self._user, self._user_bytes = candidate._user, data
        self._merged, self._origins = candidate._merged, candidate._origins
        return tuple(changed_paths(merged_before, self._merged))

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
