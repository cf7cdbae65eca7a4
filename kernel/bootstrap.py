"""From command-line choices to a configured, registered :class:`Kernel`.

Plugin options are only known once plugins are selected, so building is two
phases: :func:`prepare` reads config and loads plugins, then the caller adds
plugin options to its parser (:func:`add_plugin_options`), parses, and calls
:func:`make_kernel`. :func:`build_kernel` does all of it for embedding and
tests.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .config import Config, ConfigError
from .plugins import PluginHost, StartupError
from .runtime import Kernel, build_catalog
from .settings import SettingsCatalog

__all__ = [
    "add_plugin_options",
    "build_kernel",
    "installed_catalog",
    "make_kernel",
    "prepare",
    "split_names",
]


def split_names(values: Iterable[str] | None) -> list[str]:
    """Flatten repeatable, comma-separated name options into a list."""
    names: list[str] = []
    for value in values or ():
        names.extend(n.strip() for n in value.split(",") if n.strip())
    return names


def prepare(
    home: Path,
    overrides: Sequence[str] = (),
    plugins: Sequence[str] | None = None,
    disable: Sequence[str] = (),
    extra_plugins: Mapping[str, Any] | None = None,
    discover: bool = True,
) -> tuple[Config, PluginHost]:
    """Read configuration, then discover, select and load plugins.

    ``extra_plugins`` offers plugin objects by name as if they were
    installed; ``discover=False`` skips entry points (only those are known).
    """
    try:
        config = Config(home, overrides)
    except ConfigError as exc:
        raise StartupError(str(exc)) from None
    host = PluginHost()
    if discover:
        host.discover()
    for name, plugin in (extra_plugins or {}).items():
        host.add(name, plugin)
    try:
        host.select(
            plugins,
            disable,
            config.plugin_enabled,
            config.managed_enabled,
        )
    except ConfigError as exc:
        raise StartupError(str(exc)) from None
    host.load()
    return config, host


def add_plugin_options(host: PluginHost, parser: argparse.ArgumentParser) -> None:
    """Give each plugin an option group on ``parser`` (``kernel_add_cli_options``)."""
    host.call(
        "kernel_add_cli_options",
        stage="add command-line options",
        per_plugin=lambda name: {"group": parser.add_argument_group(f"plugin {name}")},
    )


def make_kernel(config: Config, host: PluginHost, options: argparse.Namespace) -> Kernel:
    """Create the kernel and run configure + register for every plugin."""
    try:
        kernel = Kernel(config, host, options)
    except ConfigError as exc:
        raise StartupError(str(exc)) from None
    kernel.configure_and_register()
    return kernel


def build_kernel(
    *,
    home: Path | str,
    plugins: Sequence[str] | None = None,
    disable: Sequence[str] = (),
    overrides: Sequence[str] = (),
    argv: Sequence[str] = (),
    extra_plugins: Mapping[str, Any] | None = None,
    discover: bool = True,
) -> Kernel:
    """One-call build: ``argv`` holds plugin options (``--echo-prefix x``)."""
    config, host = prepare(
        Path(home).absolute(), overrides, plugins, disable, extra_plugins, discover
    )
    parser = argparse.ArgumentParser(prog="kernel", add_help=False)
    add_plugin_options(host, parser)
    options = parser.parse_args(list(argv))
    return make_kernel(config, host, options)


def installed_catalog(config: Config) -> SettingsCatalog:
    """The settings every installed plugin declares, enabled or not (nothing starts).

    For ``kernel config get|set``: a disabled plugin's section is still
    checked against its type. Plugins forbidden by requirements.toml are
    left out; one that fails to load is logged and left out.
    """
    host = PluginHost()
    host.discover()
    host.select(None, (), lambda name: None, config.managed_enabled)
    host.load()
    return build_catalog(host)
