"""``[kernel_plugins.remote_control]``: which relay, the enrollment secret, and the bounds.

The relay is given by ``base_url``; its endpoints are the reference's paths
under it (``wham/remote/control/server/enroll``, ``.../refresh`` and the
websocket ``wham/remote/control/server``). An ``https://`` URL may name any
host; plain ``http://`` only a loopback host, since the enrollment secret
and the server token travel in its headers.

The enrollment secret is what this server presents to enroll (``Authorization:
Bearer``): read from ``enrollment_secret_file`` when set, else from the
environment variable named by ``enrollment_secret_env``. It is read when
needed (a rotated secret needs no restart) and never logged or shown.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

import attrs

from kernel import SettingError
from kernel.config import Config

__all__ = ["RelayTarget", "RemoteControlSettings", "SecretError", "read_secret", "relay_target"]

DEFAULT_SECRET_ENV = "KERNEL_REMOTE_CONTROL_SECRET"


@attrs.frozen
class RemoteControlSettings:
    """``[kernel_plugins.remote_control]`` in config.toml."""

    # The relay, e.g. "https://relay.example.com/" (empty: remote control is unavailable).
    base_url: str = ""
    # Where the enrollment secret is: a file (absolute path), else this environment variable.
    enrollment_secret_file: str = ""
    enrollment_secret_env: str = DEFAULT_SECRET_ENV
    # Remote connections open at once; more are refused (the relay is told at once).
    max_clients: int = 256
    # A remote stream without any message or ping for this long is closed.
    idle_timeout_seconds: float = 600.0
    # Messages per remote connection sent and not yet acknowledged by the relay.
    unacked_messages_per_client: int = 256
    # Messages per remote connection delivered and not yet read; then -32001.
    inbound_backlog: int = 256
    # Reconnection backoff grows to this many seconds.
    reconnect_max_seconds: float = 30.0
    # Enrollment, refresh and the websocket handshake each give up after this long.
    request_timeout_seconds: float = 30.0
    # Websocket pings to the relay; no pong within half of it drops the connection.
    heartbeat_seconds: float = 10.0

    def check(self, config: Config) -> None:
        """Reject what a type cannot say: the URL's form, paths and bounds."""
        if self.base_url:
            try:
                relay_target(self.base_url)
            except ValueError as exc:
                raise SettingError("base_url", str(exc)) from None
        if self.enrollment_secret_file and not os.path.isabs(self.enrollment_secret_file):
            raise SettingError("enrollment_secret_file", "must be an absolute path")
        if not self.enrollment_secret_env:
            raise SettingError("enrollment_secret_env", "must name an environment variable")
        for name in ("max_clients", "unacked_messages_per_client", "inbound_backlog"):
            if getattr(self, name) < 1:
                raise SettingError(name, "must be at least 1")
        for name in (
            "idle_timeout_seconds",
            "reconnect_max_seconds",
            "request_timeout_seconds",
            "heartbeat_seconds",
        ):
            if not getattr(self, name) > 0:
                raise SettingError(name, "must be greater than 0")


@attrs.frozen
class RelayTarget:
    """The relay's endpoints, derived from ``base_url``."""

    base_url: str
    enroll_url: str
    refresh_url: str
    websocket_url: str


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def relay_target(base_url: str) -> RelayTarget:
    """The endpoints under ``base_url``; ValueError says why the URL is refused."""
    parts = urlsplit(base_url)
    expected = (
        f"invalid remote control URL `{base_url}`; expected an HTTPS URL, or an HTTP URL "
        "for localhost"
    )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(expected)
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise ValueError(expected)
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"invalid remote control URL `{base_url}`; no query, fragment or user")
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    base = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
    websocket = urljoin(base, "wham/remote/control/server")
    scheme = "wss" if parts.scheme == "https" else "ws"
    return RelayTarget(
        base_url=base,
        enroll_url=urljoin(base, "wham/remote/control/server/enroll"),
        refresh_url=urljoin(base, "wham/remote/control/server/refresh"),
        websocket_url=scheme + websocket[len(parts.scheme) :],
    )


class SecretError(Exception):
    """The enrollment secret is missing or unreadable; the message names where, never what."""


def read_secret(settings: RemoteControlSettings) -> str:
    """The enrollment secret (blocking: may read a file)."""
    if settings.enrollment_secret_file:
        path = Path(settings.enrollment_secret_file)
        try:
            secret = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise SecretError(
                f"cannot read the enrollment secret file {path} "
                f"(kernel_plugins.remote_control.enrollment_secret_file): {reason}"
            ) from None
        where = f"the file {path}"
    else:
        secret = os.environ.get(settings.enrollment_secret_env, "").strip()
        where = f"${settings.enrollment_secret_env}"
    if not secret:
        raise SecretError(
            f"remote control needs an enrollment secret: {where} is empty or unset "
            "(kernel_plugins.remote_control.enrollment_secret_file or enrollment_secret_env)"
        )
    if any(c in secret for c in "\r\n\0"):
        raise SecretError(f"the enrollment secret in {where} contains a line break or NUL")
    return secret
