"""``kernel-relay``: run the relay, print a client token, list environments.

::

    kernel-relay serve --listen 0.0.0.0:8700 --state-dir /var/lib/kernel-relay
    kernel-relay client-token env_0123...
    kernel-relay environments --state-dir /var/lib/kernel-relay

Secrets come from ``--enrollment-secret-file`` / ``--client-secret-file``,
else from ``$KERNEL_RELAY_ENROLLMENT_SECRET`` / ``$KERNEL_RELAY_CLIENT_SECRET``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import hmac
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from . import __version__
from .app import RelayConfig, build_app
from .credentials import (
    CLIENT_SECRET_ENV,
    ENROLLMENT_SECRET_ENV,
    CredentialError,
    client_token,
    load_secret,
)
from .hub import HubLimits
from .protocol import CHUNK_BYTES, SEGMENT_COUNT_MAX
from .store import RelayStore

__all__ = ["main"]

log = logging.getLogger("kernel_remote_relay")

_MAX_MESSAGE_CEILING = CHUNK_BYTES * SEGMENT_COUNT_MAX


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kernel-relay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"kernel-relay {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the relay")
    serve.add_argument("--listen", type=_listen, default=("127.0.0.1", 8700), metavar="HOST:PORT")
    serve.add_argument("--state-dir", type=Path, help="keep enrollments here (survive restarts)")
    serve.add_argument("--enrollment-secret-file", metavar="PATH")
    serve.add_argument("--client-secret-file", metavar="PATH")
    serve.add_argument("--path-prefix", default="", help="serve the routes under this path")
    serve.add_argument("--token-ttl-seconds", type=float, default=3600.0)
    serve.add_argument("--max-message-bytes", type=int, default=HubLimits.max_message_bytes)
    serve.add_argument("--server-grace-seconds", type=float, default=60.0)
    serve.add_argument("--ping-interval-seconds", type=float, default=60.0)
    serve.add_argument("--log-level", default="info")

    token = commands.add_parser("client-token", help="print the token of an environment")
    token.add_argument("environment_id")
    token.add_argument("--client-secret-file", metavar="PATH")

    listing = commands.add_parser("environments", help="list the enrolled environments")
    listing.add_argument("--state-dir", type=Path, required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``kernel-relay``; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "client-token":
            secret = load_secret(args.client_secret_file, CLIENT_SECRET_ENV, "client secret")
            print(client_token(secret, args.environment_id))
            return 0
        if args.command == "environments":
            return _list(args.state_dir)
        return _serve(args)
    except (CredentialError, RuntimeError, ValueError) as exc:
        print(f"kernel-relay: {exc}", file=sys.stderr)
        return 2


def _list(state_dir: Path) -> int:
    store = RelayStore(state_dir)
    store.load()
    for record in store.records():
        created = datetime.datetime.fromtimestamp(record.created_at, datetime.UTC)
        print(f"{record.environment_id}\t{record.name}\t{record.server_id}\t{created:%Y-%m-%d}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    enrollment = load_secret(
        args.enrollment_secret_file, ENROLLMENT_SECRET_ENV, "enrollment secret"
    )
    client = load_secret(args.client_secret_file, CLIENT_SECRET_ENV, "client secret")
    if hmac.compare_digest(enrollment, client):
        raise ValueError("the enrollment secret and the client secret must differ")
    if not 0 < args.max_message_bytes <= _MAX_MESSAGE_CEILING:
        raise ValueError(f"--max-message-bytes must be between 1 and {_MAX_MESSAGE_CEILING}")
    for name in ("token_ttl_seconds", "server_grace_seconds", "ping_interval_seconds"):
        if not getattr(args, name) > 0:
            raise ValueError(f"--{name.replace('_', '-')} must be greater than 0")
    store = RelayStore(args.state_dir)
    loaded = store.load()
    if args.state_dir is None:
        log.warning("no --state-dir: enrollments are lost when the relay restarts")
    config = RelayConfig(
        enrollment_secret=enrollment,
        client_secret=client,
        path_prefix=args.path_prefix,
        token_ttl_seconds=args.token_ttl_seconds,
        limits=HubLimits(
            max_message_bytes=args.max_message_bytes,
            server_grace_seconds=args.server_grace_seconds,
            ping_interval_seconds=args.ping_interval_seconds,
        ),
    )
    host, port = args.listen
    runner = _event_loop_runner()
    runner(_run(build_app(config, store), host, port, loaded))
    return 0


def _event_loop_runner() -> Any:
    """``uvloop.run`` when uvloop is installed (``pip install kernel-remote-relay[fast]``)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


async def _run(app: web.Application, host: str, port: int, loaded: int) -> None:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    for address in runner.addresses:
        bound_host, bound_port = address[0], address[1]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        print(f"kernel-relay listening on http://{shown}:{bound_port}", file=sys.stderr, flush=True)
    log.info("%d enrolled environments loaded", loaded)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await runner.cleanup()
