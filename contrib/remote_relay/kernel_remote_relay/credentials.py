"""The relay's three credentials, and how each is checked.

* **Enrollment secret** (operator → app-servers): an app-server presents it
  as ``Authorization: Bearer`` to ``/enroll`` and ``/refresh``. Whoever holds
  it can add an environment to this relay.
* **Server token** (relay → one app-server): issued at enrollment and
  refresh, valid ``token_ttl_seconds``, presented on the app-server's
  websocket. The relay keeps only its SHA-256.
* **Client token** (operator → a client, per environment): ``rcc_`` and the
  base64url HMAC-SHA256 of the environment id under the *client secret*.
  It opens that environment and no other; the relay stores nothing per
  client (``kernel-relay client-token ENV_ID`` prints one; rotating the
  client secret revokes them all).

Secrets are compared with :func:`hmac.compare_digest`, read from a file or
an environment variable, and never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "CLIENT_SECRET_ENV",
    "ENROLLMENT_SECRET_ENV",
    "MIN_SECRET_BYTES",
    "CredentialError",
    "bearer",
    "client_token",
    "client_token_matches",
    "load_secret",
    "new_server_token",
    "secret_matches",
    "token_digest",
    "token_matches",
]

ENROLLMENT_SECRET_ENV = "KERNEL_RELAY_ENROLLMENT_SECRET"
CLIENT_SECRET_ENV = "KERNEL_RELAY_CLIENT_SECRET"
MIN_SECRET_BYTES = 16
_CLIENT_CONTEXT = b"kernel-remote-relay client token v1\0"


class CredentialError(Exception):
    """A secret is missing, unreadable or too weak; the message never holds it."""


def load_secret(file: str | None, env: str, what: str) -> bytes:
    """The secret from ``file`` if given, else from ``$env``; at least 16 bytes."""
    if file:
        path = Path(file)
        try:
            secret = path.read_bytes().strip()
        except OSError as exc:
            raise CredentialError(f"cannot read the {what} from {path}: {exc.strerror}") from None
        where = str(path)
    else:
        secret = os.environ.get(env, "").strip().encode()
        where = f"${env}"
    if not secret:
        raise CredentialError(f"no {what}: {where} is empty or unset")
    if len(secret) < MIN_SECRET_BYTES:
        raise CredentialError(f"the {what} in {where} is shorter than {MIN_SECRET_BYTES} bytes")
    if any(c in secret for c in b"\r\n\0"):
        raise CredentialError(f"the {what} in {where} contains a line break or NUL")
    return secret


def bearer(headers: Mapping[str, str]) -> str | None:
    """The token of ``Authorization: Bearer <token>``, or None."""
    value = headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def secret_matches(presented: str | None, secret: bytes) -> bool:
    """Whether ``presented`` is ``secret`` (constant time)."""
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode(), secret)


def client_token(client_secret: bytes, environment_id: str) -> str:
    """The token that opens ``environment_id``."""
    mac = hmac.new(client_secret, _CLIENT_CONTEXT + environment_id.encode(), hashlib.sha256)
    return "rcc_" + base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def client_token_matches(presented: str | None, client_secret: bytes, environment_id: str) -> bool:
    """Whether ``presented`` opens ``environment_id`` (constant time)."""
    if presented is None:
        return False
    expected = client_token(client_secret, environment_id)
    return hmac.compare_digest(presented.encode(), expected.encode())


def new_server_token() -> str:
    """A fresh server token (256 random bits)."""
    return "rcs_" + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the relay keeps of a server token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(presented: str | None, digest: str) -> bool:
    """Whether ``presented`` is the token whose digest is ``digest`` (constant time)."""
    if presented is None:
        return False
    return hmac.compare_digest(token_digest(presented), digest)
