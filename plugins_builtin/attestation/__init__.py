"""The ``attestation`` plugin: a fresh client attestation token on scoped outbound requests.

Clients that advertise ``capabilities.requestAttestation`` are asked
``attestation/generate`` before each HTTP attempt to a model provider in
scope (through the kernel's ``kernel_outbound_request_headers`` hook), and
the token is forwarded as ``x-oai-attestation``. See docs/attestation.md.
"""

from __future__ import annotations

from .plugin import AttestationPlugin
from .settings import AttestationSettings

__all__ = ["AttestationPlugin", "AttestationSettings"]
