"""Configuration: ``[kernel_plugins.realtime]``, the reference's top-level keys, the URLs.

Top-level keys of config.toml (the reference's names, read at every start so
an edit applies to the next session):

* ``experimental_realtime_ws_base_url``: where the Realtime API is
  (``wss://host``, ``https://host`` or either with ``/v1``); default: the
  thread's model provider's base URL;
* ``experimental_realtime_ws_model``: the realtime model (default
  ``gpt-realtime-1.5``, as the reference; ``thread/realtime/start.model``
  wins);
* ``experimental_realtime_ws_backend_prompt``: the session's instructions
  (``thread/realtime/start.prompt`` wins).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import attrs

from kernel import SettingError

__all__ = [
    "BASE_URL_KEY",
    "CONFIG_KEYS",
    "DEFAULT_MODEL",
    "Endpoints",
    "RealtimeSettings",
    "endpoints",
]

BASE_URL_KEY = "experimental_realtime_ws_base_url"
MODEL_KEY = "experimental_realtime_ws_model"
PROMPT_KEY = "experimental_realtime_ws_backend_prompt"
CONFIG_KEYS: dict[str, Any] = {
    BASE_URL_KEY: str | None,
    MODEL_KEY: str | None,
    PROMPT_KEY: str | None,
}
DEFAULT_MODEL = "gpt-realtime-1.5"

_WS = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
_HTTP = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


@attrs.frozen
class RealtimeSettings:
    """``[kernel_plugins.realtime]``: limits of one realtime session."""

    # Opening the backend (websocket upgrade or WebRTC call) may take this long.
    connect_timeout_seconds: float = 15.0
    # Frames (audio, text) a session holds for the backend before appends
    # are refused with -32001 (the reference silently drops audio instead).
    max_queued_frames: int = 256

    def check(self, config: Any) -> None:
        """A positive timeout and room for at least one frame."""
        if not self.connect_timeout_seconds > 0:
            raise SettingError("connect_timeout_seconds", "must be greater than 0")
        if self.max_queued_frames < 1:
            raise SettingError("max_queued_frames", "must be at least 1")


def check_base_url(value: str) -> str | None:
    """Why ``value`` cannot be a realtime base URL, or None when it can."""
    parts = urlsplit(value)
    if parts.scheme not in _WS or not parts.netloc:
        return "expected an absolute ws://, wss://, http:// or https:// URL"
    return None


@attrs.frozen
class Endpoints:
    """Where one session's requests go (the realtime model is in the query)."""

    websocket: str  # GET (upgrade) for the websocket transport
    calls: str  # POST for a WebRTC call
    sideband_base: str  # GET (upgrade) + ?call_id= to join a call

    def sideband(self, call_id: str) -> str:
        """The websocket that controls the WebRTC call ``call_id``."""
        return f"{self.sideband_base}?call_id={quote(call_id, safe='')}"


def endpoints(configured: str | None, provider_base: str, model: str) -> Endpoints:
    """The realtime URLs from ``experimental_realtime_ws_base_url`` or the provider's base.

    The configured URL gets ``/v1`` unless its path already ends with it
    (the reference appends ``/v1/realtime`` to it); the provider's base URL
    (``…/v1``) gets ``/realtime``, as the reference builds them.
    """
    if configured:
        parts = urlsplit(configured.rstrip("/"))
        path = parts.path if parts.path.endswith("/v1") else parts.path + "/v1"
    else:
        parts = urlsplit(provider_base.rstrip("/"))
        path = parts.path
    ws_scheme = _WS.get(parts.scheme, "wss")
    http_scheme = _HTTP.get(parts.scheme, "https")
    realtime = path + "/realtime"
    ws_base = urlunsplit((ws_scheme, parts.netloc, realtime, "", ""))
    return Endpoints(
        websocket=f"{ws_base}?model={quote(model, safe='')}",
        calls=urlunsplit((http_scheme, parts.netloc, realtime + "/calls", "", "")),
        sideband_base=ws_base,
    )
