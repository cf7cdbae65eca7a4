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
from typing import Any

from ._version import __version__
from .bootstrap import add_plugin_options, make_kernel, prepare, split_names
from .config import ConfigError, resolve_home
from .logs import setup_logging
from .plugins import StartupError

__all__ = ["main"]

log = logging.getLogger("kernel.cli")
COMMANDS = ("run", "plugins", "schema", "config", "call", "new-plugin", "proxy")
# One-shot commands log only problems unless asked for more.
_QUIET = frozenset({"config", "call", "new-plugin"})


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
    config.add_argument("key", nargs="?", help="dotted key, e.g. kernel_plugins.echo.enabled")
    config.add_argument("value", nargs="?", help="for set: TOML value, else a string")
    commands["config"] = config
    call = sub.add_parser("call", help="make one request (handshake done) and print the answer")
    call.add_argument("method", help="e.g. fs/readFile")
    call.add_argument("params", nargs="?", help="JSON object, or - to read it from stdin")
    call.add_argument(
        "--connect",
        metavar="URL",
        help="a running server: ws://HOST:PORT, unix:// or unix://PATH "
        "(default: a kernel started in this process)",
    )
    call.add_argument("--token-file", metavar="ABSPATH", help="bearer token for --connect ws://")
    call.add_argument("--experimental", action="store_true", help="initialize with experimentalApi")
    call.add_argument(
        "--notifications", action="store_true", help="print notifications to stderr as JSON lines"
    )
    commands["call"] = call
    for command in commands.values():
        _selection_options(command)
    new_plugin = sub.add_parser(
        "new-plugin", help="write a new plugin package (one method, settings, tests)"
    )
    new_plugin.add_argument("name", help="the plugin's name (lowercase letters, digits, _)")
    new_plugin.add_argument(
        "--dir", metavar="PATH", help="where to write it (default: ./kernel-NAME)"
    )
    commands["new-plugin"] = new_plugin
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
    setup_logging(pre.log_level, default="warning" if pre.command in _QUIET else "info")
    parser, commands = _full_parser()
    if pre.command not in COMMANDS:
        parser.parse_args(argv)  # prints usage or help and exits
        return 2
    try:
        home = resolve_home(pre.home)
        if pre.command == "config":
            from .config_command import config_command

            return config_command(parser.parse_args(argv), home, commands["config"].error)
        if pre.command == "proxy":
            return _proxy_command(parser.parse_args(argv), home)
        if pre.command == "new-plugin":
            return _new_plugin_command(parser.parse_args(argv), commands["new-plugin"].error)
        if pre.command == "call":
            return _call_command(parser.parse_args(argv), home)
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
        if pre.command == "run":
            log.error("cannot start: %s", exc)
        else:
            log.error("kernel %s: %s", pre.command, exc)
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


def _new_plugin_command(options: argparse.Namespace, usage: Any) -> int:
    from .scaffold import new_plugin

    directory = Path(options.dir or f"kernel-{options.name}").absolute()
    try:
        written = new_plugin(options.name, directory)
    except ValueError as exc:
        usage(str(exc))
    except FileExistsError as exc:
        raise ConfigError(str(exc)) from None
    for path in written:
        print(path.relative_to(directory.parent))
    print(
        f"next: cd {directory} && pip install -e '.[test]' && pytest",
        file=sys.stderr,
    )
    return 0


def _call_command(options: argparse.Namespace, home: Path) -> int:
    import asyncio

    from .call import parse_params, run_call

    params = parse_params(options.params)
    return asyncio.run(
        run_call(
            options.method,
            params,
            home=home,
            connect=options.connect,
            token_file=options.token_file,
            experimental=options.experimental,
            notifications=options.notifications,
            plugins=split_names(options.plugins) or None,
            disable=split_names(options.disable),
            overrides=options.overrides,
        )
    )
