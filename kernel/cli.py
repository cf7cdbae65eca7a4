"""The ``kernel`` command: run | plugins | schema | config | proxy.

Parsing is two-phase: the selection options (``--home``, ``-c``,
``--plugins``, ``--disable``) are read first, plugins are loaded, then each
loaded plugin adds its own option group and the full command line is parsed.
So ``kernel run --plugins echo --help`` shows the echo plugin's options.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from ._version import __version__
from .bootstrap import add_plugin_options, make_kernel, prepare, split_names
from .config import Config, ConfigError, parse_override, resolve_home
from .logs import setup_logging
from .plugins import StartupError

__all__ = ["main"]

log = logging.getLogger("kernel.cli")
COMMANDS = ("run", "plugins", "schema", "config", "proxy")


def _selection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", help="home directory (default: $KERNEL_HOME or ~/.kernel)")
    parser.add_argument(
        "-c",
        "--config",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value; VALUE is parsed as TOML, else a string",
    )
    parser.add_argument(
        "--plugins",
        action="append",
        metavar="A,B",
        help="serve exactly these plugins (default: every installed plugin)",
    )
    parser.add_argument(
        "--disable",
        action="append",
        default=[],
        metavar="NAME",
        help="leave this plugin out (repeatable, comma-separated)",
    )
    parser.add_argument(
        "--log-level", help="debug, info, warning, error (default: $KERNEL_LOG or info)"
    )


def _full_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="kernel",
        description="A pluggable app-server speaking the Codex app-server protocol v2.",
    )
    parser.add_argument("--version", action="version", version=f"kernel {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands = {}
    run = sub.add_parser("run", help="serve the protocol")
    run.add_argument(
        "--listen",
        action="append",
        metavar="URL",
        help="stdio:// (default), ws://IP:PORT, unix:// (socket under the home), "
        "unix://PATH, or off; repeat to serve several at once",
    )
    commands["run"] = run
    plugins = sub.add_parser("plugins", help="list installed plugins and what they serve")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    commands["plugins"] = plugins
    schema = sub.add_parser("schema", help="write JSON Schema for the loaded composition")
    schema.add_argument("--out", required=True, metavar="DIR", help="output directory")
    schema.add_argument(
        "--experimental", action="store_true", help="include experimental methods and fields"
    )
    schema.add_argument(
        "--ts", action="store_true", help="write TypeScript declarations instead of JSON Schema"
    )
    commands["schema"] = schema
    config = sub.add_parser("config", help="read or change config.toml (the user layer)")
    config.add_argument("action", choices=("get", "set", "unset"))
    config.add_argument("key", nargs="?", help="dotted key, e.g. plugins.echo.enabled")
    config.add_argument("value", nargs="?", help="for set: TOML value, else a string")
    commands["config"] = config
    for command in commands.values():
        _selection_options(command)
    proxy = sub.add_parser(
        "proxy", help="bridge stdio (JSON lines) to a running server's unix socket"
    )
    proxy.add_argument(
        "--socket",
        metavar="PATH",
        help="socket of the server (default: the one `--listen unix://` creates under the home)",
    )
    proxy.add_argument("--home", help="home directory (default: $KERNEL_HOME or ~/.kernel)")
    proxy.add_argument("--log-level", help="debug, info, warning, error")
    commands["proxy"] = proxy
    return parser, commands


def _pre_parse(argv: Sequence[str]) -> argparse.Namespace:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("command", nargs="?")
    _selection_options(pre)
    known, _ = pre.parse_known_args(list(argv))
    return known


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kernel`` console script and ``python -m kernel``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    pre = _pre_parse(argv)
    setup_logging(pre.log_level)
    parser, commands = _full_parser()
    if pre.command not in COMMANDS:
        parser.parse_args(argv)  # prints usage or help and exits
        return 2
    try:
        home = resolve_home(pre.home)
        if pre.command == "config":
            return _config_command(parser.parse_args(argv), home)
        if pre.command == "proxy":
            return _proxy_command(parser.parse_args(argv), home)
        if pre.command == "plugins":
            from .listing import describe_plugins, format_plugins

            options = parser.parse_args(argv)
            rows = describe_plugins(
                home,
                options.overrides,
                split_names(options.plugins) or None,
                split_names(options.disable),
            )
            print(json.dumps(rows, indent=2) if options.json else format_plugins(rows))
            return 0
        selected = split_names(pre.plugins) or None
        config, host = prepare(home, pre.overrides, selected, split_names(pre.disable))
        add_plugin_options(host, commands[pre.command])
        options = parser.parse_args(argv)
        kernel = make_kernel(config, host, options)
        if pre.command == "schema":
            from .schema import write_schema

            if options.ts:
                from .typescript import write_typescript

                written = write_typescript(kernel.registry, Path(options.out), options.experimental)
                print(f"wrote {len(written)} TypeScript files to {options.out}", file=sys.stderr)
                return 0
            written = write_schema(kernel.registry, Path(options.out), options.experimental)
            print(f"wrote {len(written)} schema files to {options.out}", file=sys.stderr)
            return 0
        from .server import run

        kernel.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        return run(kernel, options.listen or ["stdio://"])
    except (StartupError, ConfigError) as exc:
        log.error("cannot start: %s", exc)
        return 1


def _proxy_command(options: argparse.Namespace, home: Path) -> int:
    import asyncio

    from .transports.proxy import run_proxy
    from .transports.unix_socket import default_socket_path

    if options.socket is None:
        path = default_socket_path(home)
    else:
        path = Path(options.socket)
        if not path.is_absolute():
            raise ConfigError(f"--socket {options.socket}: the socket path must be absolute")
    return asyncio.run(run_proxy(path))


def _config_command(options: argparse.Namespace, home: Path) -> int:
    config = Config(home, options.overrides)
    if options.action == "get":
        if not options.key:
            print(json.dumps(config.merged(), indent=2))
            return 0
        value = config.get(options.key)
        if value is None:
            print(f"{options.key} is not set", file=sys.stderr)
            return 1
        print(json.dumps(value))
        print(f"(from {config.origin(options.key)})", file=sys.stderr)
        return 0
    if not options.key:
        raise ConfigError(f"kernel config {options.action}: a KEY is required")
    if options.action == "set":
        if options.value is None:
            raise ConfigError("kernel config set: a VALUE is required")
        _, value = parse_override(f"{options.key}={options.value}")
        config.set_user_value(options.key, value)
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
