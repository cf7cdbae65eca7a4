"""ws_auth settings: command-line flags over ``[kernel_plugins.ws_auth]`` in config.toml.

Every flag has a config key of the same meaning (``--ws-token-file`` is
``token_file``). A flag given on the command line wins over the config value.
Validation happens once, at startup; a bad combination refuses to start with
a message naming the flag (or key) and what to change. Secret material is
read here and never logged.
"""

from __future__ import annotations

import argparse
import hashlib
import re
from pathlib import Path
from typing import Any

import attrs

from kernel import ConfigError, PluginConfig

__all__ = [
    "CAPABILITY_TOKEN",
    "MODES",
    "SIGNED_BEARER_TOKEN",
    "AuthSettings",
    "ConfigFile",
    "load_settings",
]

CAPABILITY_TOKEN = "capability-token"
SIGNED_BEARER_TOKEN = "signed-bearer-token"
MODES = (CAPABILITY_TOKEN, SIGNED_BEARER_TOKEN)
MIN_SECRET_BYTES = 32
DEFAULT_CLOCK_SKEW_SECONDS = 30.0

# config key -> (command-line flag, argparse dest)
OPTIONS = {
    "mode": ("--ws-auth", "ws_auth"),
    "token_file": ("--ws-token-file", "ws_token_file"),
    "token_sha256": ("--ws-token-sha256", "ws_token_sha256"),
    "shared_secret_file": ("--ws-shared-secret-file", "ws_shared_secret_file"),
    "issuer": ("--ws-issuer", "ws_issuer"),
    "audience": ("--ws-audience", "ws_audience"),
    "max_clock_skew_seconds": ("--ws-max-clock-skew-seconds", "ws_max_clock_skew_seconds"),
}
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


@attrs.frozen
class ConfigFile:
    """``[kernel_plugins.ws_auth]`` as written in config.toml (all optional)."""

    mode: str | None = None
    token_file: str | None = None
    token_sha256: str | None = None
    shared_secret_file: str | None = None
    issuer: str | None = None
    audience: str | None = None
    max_clock_skew_seconds: float | None = None


@attrs.frozen(repr=False)
class AuthSettings:
    """What the verifiers need; ``repr`` hides the secret material."""

    mode: str | None
    token_digest: bytes = b""
    shared_secret: bytes = b""
    issuer: str | None = None
    audience: str | None = None
    max_clock_skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS

    def __repr__(self) -> str:
        return f"AuthSettings(mode={self.mode!r})"


class _Values:
    """Merged values that remember where each came from, for error messages."""

    def __init__(self, config: PluginConfig, options: argparse.Namespace) -> None:
        stored = config.structure(ConfigFile)
        self._config = config
        self.values: dict[str, Any] = {}
        self.origin: dict[str, str] = {}
        for key, (flag, dest) in OPTIONS.items():
            cli = getattr(options, dest, None)
            if cli is not None:
                self.values[key], self.origin[key] = cli, flag
            elif getattr(stored, key) is not None:
                self.values[key] = getattr(stored, key)
                self.origin[key] = f"{config.key}.{key}"

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def error(self, key: str, problem: str) -> ConfigError:
        where = self.origin.get(key, OPTIONS[key][0])
        if where.startswith("--"):
            return ConfigError(f"{where}: {problem}")
        return self._config.error(key, problem)


def load_settings(config: PluginConfig, options: argparse.Namespace) -> AuthSettings:
    """Merge, validate and read the files; raises :class:`kernel.ConfigError`."""
    values = _Values(config, options)
    mode = values.get("mode")
    if mode is None:
        given = [k for k in OPTIONS if k != "mode" and values.get(k) is not None]
        if given:
            raise values.error(
                given[0], "requires --ws-auth (capability-token or signed-bearer-token)"
            )
        return AuthSettings(mode=None)
    if mode not in MODES:
        raise values.error("mode", f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    if mode == CAPABILITY_TOKEN:
        return _capability(values)
    return _signed(values)


def _forbid(values: _Values, keys: tuple[str, ...], mode: str) -> None:
    for key in keys:
        if values.get(key) is not None:
            raise values.error(key, f"does not apply to --ws-auth {mode}")


def _capability(values: _Values) -> AuthSettings:
    _forbid(
        values,
        ("shared_secret_file", "issuer", "audience", "max_clock_skew_seconds"),
        CAPABILITY_TOKEN,
    )
    token_file, token_hex = values.get("token_file"), values.get("token_sha256")
    if (token_file is None) == (token_hex is None):
        raise values.error(
            "mode",
            "capability-token needs exactly one of --ws-token-file ABSPATH or "
            "--ws-token-sha256 HEX",
        )
    if token_hex is not None:
        if not isinstance(token_hex, str) or not _HEX64.fullmatch(token_hex.strip()):
            raise values.error("token_sha256", "expected 64 hexadecimal digits (a SHA-256 digest)")
        return AuthSettings(CAPABILITY_TOKEN, token_digest=bytes.fromhex(token_hex.strip()))
    token = _read_secret(values, "token_file").strip()
    if not token:
        raise values.error("token_file", "the token file is empty")
    return AuthSettings(CAPABILITY_TOKEN, token_digest=hashlib.sha256(token).digest())


def _signed(values: _Values) -> AuthSettings:
    _forbid(values, ("token_file", "token_sha256"), SIGNED_BEARER_TOKEN)
    if values.get("shared_secret_file") is None:
        raise values.error("mode", "signed-bearer-token needs --ws-shared-secret-file ABSPATH")
    secret = _read_secret(values, "shared_secret_file").strip()
    if len(secret) < MIN_SECRET_BYTES:
        raise values.error(
            "shared_secret_file",
            f"the shared secret is {len(secret)} bytes; at least {MIN_SECRET_BYTES} are "
            "required for HS256 (generate one with: openssl rand -hex 32)",
        )
    skew = values.get("max_clock_skew_seconds")
    if skew is None:
        skew = DEFAULT_CLOCK_SKEW_SECONDS
    elif isinstance(skew, bool) or not isinstance(skew, int | float) or skew < 0:
        raise values.error("max_clock_skew_seconds", "expected a number of seconds >= 0")
    for key in ("issuer", "audience"):
        value = values.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise values.error(key, "expected a non-empty string")
    return AuthSettings(
        SIGNED_BEARER_TOKEN,
        shared_secret=secret,
        issuer=values.get("issuer"),
        audience=values.get("audience"),
        max_clock_skew_seconds=float(skew),
    )


def _read_secret(values: _Values, key: str) -> bytes:
    raw = values.get(key)
    path = Path(raw) if isinstance(raw, str) else None
    if path is None or not path.is_absolute():
        raise values.error(key, f"expected an absolute path, got {raw!r}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise values.error(key, f"cannot read {path}: {exc.strerror}") from None
