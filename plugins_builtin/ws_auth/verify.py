"""Checking one ``Authorization: Bearer`` header against the configured mode.

Capability token: the presented token, surrounding whitespace removed, is
hashed with SHA-256 and compared with the expected digest in constant time
(``hmac.compare_digest``), so neither the token nor timing leaks.

Signed bearer token: a JWT signed with HMAC-SHA256 by the shared secret. The
algorithm is pinned to HS256, whatever the token's header claims (``none``,
RS256 and HS512 are refused). ``exp`` is required; ``exp`` and ``nbf`` are
checked with the configured clock skew; ``iss`` and ``aud`` when configured.
``exp``, ``nbf`` and ``iat`` must be JSON numbers (RFC 7519 NumericDate):
PyJWT would accept ``"exp": "9999999999"`` by converting the string, so a
token with a string, boolean or any other non-number time claim is refused
before its times are looked at.
"""

from __future__ import annotations

import hashlib
import hmac
import math

import jwt
from jwt.types import Options

from kernel import AuthResult

from .settings import CAPABILITY_TOKEN, AuthSettings

__all__ = ["MAX_TOKEN_BYTES", "verify_bearer"]

MAX_TOKEN_BYTES = 4096
_TIME_CLAIMS = ("exp", "nbf", "iat")
# Signature only: the claims are checked once their types are known.
_SIGNATURE_ONLY: Options = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_iss": False,
    "verify_aud": False,
}


def verify_bearer(settings: AuthSettings, header: str | None) -> AuthResult:
    """Judge an Authorization header value (None when absent)."""
    if header is None:
        return AuthResult.reject("missing websocket bearer token")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return AuthResult.reject("expected Authorization: Bearer <token>")
    if len(token) > MAX_TOKEN_BYTES:
        return AuthResult.reject(f"bearer token longer than {MAX_TOKEN_BYTES} bytes")
    if settings.mode == CAPABILITY_TOKEN:
        return _capability(settings, token)
    return _signed(settings, token)


def _capability(settings: AuthSettings, token: str) -> AuthResult:
    digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
    if hmac.compare_digest(digest, settings.token_digest):
        return AuthResult.accept("capability token")
    return AuthResult.reject("invalid websocket bearer token")


def _signed(settings: AuthSettings, token: str) -> AuthResult:
    try:
        unchecked = jwt.decode(
            token, settings.shared_secret, algorithms=["HS256"], options=_SIGNATURE_ONLY
        )
    except jwt.InvalidTokenError:
        # Bad signature, wrong algorithm, garbage: one answer for all.
        return AuthResult.reject("invalid websocket jwt")
    for claim in _TIME_CLAIMS:
        if claim in unchecked and not _is_numeric_date(unchecked[claim]):
            return AuthResult.reject(f"invalid websocket jwt: {claim!r} is not a number")
    try:
        claims = jwt.decode(
            token,
            settings.shared_secret,
            algorithms=["HS256"],
            issuer=settings.issuer,
            audience=settings.audience,
            leeway=settings.max_clock_skew_seconds,
            options={"require": ["exp"], "verify_aud": settings.audience is not None},
        )
    except jwt.ExpiredSignatureError:
        return AuthResult.reject("websocket jwt expired")
    except jwt.ImmatureSignatureError:
        return AuthResult.reject("websocket jwt not yet valid")
    except jwt.InvalidIssuerError:
        return AuthResult.reject("websocket jwt has the wrong issuer")
    except jwt.InvalidAudienceError:
        return AuthResult.reject("websocket jwt has the wrong audience")
    except jwt.MissingRequiredClaimError as exc:
        return AuthResult.reject(f"websocket jwt lacks the {exc.claim!r} claim")
    except jwt.InvalidTokenError:
        # Bad signature, wrong algorithm, garbage: one answer for all.
        return AuthResult.reject("invalid websocket jwt")
    subject = claims.get("sub")
    return AuthResult.accept(f"jwt sub={subject}" if isinstance(subject, str) else "jwt")


def _is_numeric_date(value: object) -> bool:
    """A finite JSON number (RFC 7519 NumericDate); a ``bool`` is an ``int`` to Python."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)
