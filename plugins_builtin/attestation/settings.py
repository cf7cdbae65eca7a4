"""``[kernel_plugins.attestation]``: which outbound requests carry a token, and how hard to try.

The reference has no configuration for attestation (its scope and its
100 ms budget are built in); these keys make both explicit, and add the
fail-closed mode it lacks. Defaults reproduce the reference's behaviour.
"""

from __future__ import annotations

import attrs

from kernel import SettingError
from kernel.config import Config
from kernel.outbound import OutboundRequest

__all__ = ["AttestationSettings"]

# A client slower than this is not waiting on a device check but stuck.
MAX_TIMEOUT_MS = 60_000


@attrs.frozen
class AttestationSettings:
    """``[kernel_plugins.attestation]`` (docs/attestation.md)."""

    # Model provider ids whose requests carry ``x-oai-attestation``. Unset:
    # every provider with ``requires_openai_auth`` (the reference's scope).
    providers: list[str] | None = None
    # Kinds of outbound request in scope ("model", "compaction", "realtime",
    # "relay_enrollment"...). Unset: every kind.
    purposes: list[str] | None = None
    # When true, an in-scope request without a token is not sent and the
    # turn fails saying why; when false (the reference), it goes out anyway.
    required: bool = False
    # How long the client has to answer ``attestation/generate``.
    timeout_ms: int = 100

    def check(self, config: Config) -> None:
        """A positive, bounded timeout; no blank names."""
        if not 1 <= self.timeout_ms <= MAX_TIMEOUT_MS:
            raise SettingError("timeout_ms", f"must be between 1 and {MAX_TIMEOUT_MS}")
        for key in ("providers", "purposes"):
            names = getattr(self, key)
            if names is not None and any(not name.strip() for name in names):
                raise SettingError(key, "must not contain an empty name")

    def in_scope(self, request: OutboundRequest) -> bool:
        """Whether ``request`` should carry an attestation header."""
        if self.purposes is not None and request.purpose not in self.purposes:
            return False
        if self.providers is None:
            return request.requires_openai_auth
        return request.provider_id is not None and request.provider_id in self.providers
