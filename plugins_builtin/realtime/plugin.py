"""The ``realtime`` plugin: ``thread/realtime/*``, a voice session beside a thread.

One session per loaded thread at most, talking to the Realtime API (v2)
over a websocket, or through a WebRTC call the browser holds and a sideband
websocket this server holds. Threads are reached only through
``kernel.services["threads"]`` (and its ``threads_thread_released`` /
``threads_turn_finished`` hooks, implemented by name), a provider's URL and
key only through ``kernel.services["models"]``. See docs/realtime.md.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kernel import Connection, Kernel, RequestContext, RpcError, hookimpl, method
from kernel.rpc.errors import INVALID_REQUEST, OVERLOADED_MESSAGE, SERVER_OVERLOADED

from . import protocol
from .backend import Backend, BackendTarget
from .config import (
    BASE_URL_KEY,
    CONFIG_KEYS,
    DEFAULT_MODEL,
    MODEL_KEY,
    PROMPT_KEY,
    RealtimeSettings,
    check_base_url,
    endpoints,
)
from .handoff import HandoffRouter
from .params import (
    ThreadRealtimeAppendAudioParams,
    ThreadRealtimeAppendSpeechParams,
    ThreadRealtimeAppendTextParams,
    ThreadRealtimeListVoicesParams,
    ThreadRealtimeStartParams,
    ThreadRealtimeStopParams,
    audio_frame,
    non_empty,
    start_options,
)
from .session import RealtimeSession, SessionSpec
from .voices import DEFAULT_V2, voices_list

__all__ = ["RealtimePlugin"]

log = logging.getLogger("plugins.realtime")

NOTIFICATIONS = (
    "thread/realtime/started",
    "thread/realtime/itemAdded",
    "thread/realtime/item/started",
    "thread/realtime/item/transcript/delta",
    "thread/realtime/item/completed",
    "thread/realtime/transcript/delta",
    "thread/realtime/transcript/done",
    "thread/realtime/outputAudio/delta",
    "thread/realtime/sdp",
    "thread/realtime/error",
    "thread/realtime/closed",
)
DEFAULT_INSTRUCTIONS = (
    "You are the voice of a coding agent that works in the user's project. Speak briefly "
    "and naturally. When the user wants something that needs the project (reading or "
    "changing code, running commands, finding things out), call background_agent with the "
    "user's own words and say you are on it; when its output arrives, tell the user the "
    "gist. Messages starting with [USER] were typed by the user; messages starting with "
    "[BACKEND] come from the agent, say them in your own words."
)
NOT_RUNNING = "conversation is not running"


class RealtimePlugin:
    """``thread/realtime/*``; see the module docstring."""

    def __init__(self) -> None:
        self.kernel: Kernel | None = None
        self.settings = RealtimeSettings()
        self.sessions: dict[str, RealtimeSession] = {}
        self._backend: Backend | None = None
        self._handoffs: HandoffRouter | None = None

    # -- configuration and lifecycle -----------------------------------------------------

    @hookimpl
    def kernel_settings(self) -> type[RealtimeSettings]:
        return RealtimeSettings

    @hookimpl
    def kernel_config_keys(self) -> dict[str, Any]:
        return dict(CONFIG_KEYS)

    @hookimpl
    def kernel_configure(self, kernel: Kernel, settings: RealtimeSettings) -> None:
        base = kernel.config.structure_value(BASE_URL_KEY, str | None)
        problem = check_base_url(base) if base else None
        if problem is not None:
            raise kernel.config.error(BASE_URL_KEY, problem)
        self.kernel = kernel
        self.settings = settings
        self._backend = Backend(kernel)
        self._handoffs = HandoffRouter(kernel)

    @hookimpl
    def kernel_register(self, registrar: Any) -> None:
        for name in NOTIFICATIONS:
            registrar.notification(name, experimental=True)

    @hookimpl
    async def kernel_shutdown(self, kernel: Kernel) -> None:
        """End every session (all at once: each may wait for its backend's close)."""
        await asyncio.gather(*(s.stop("shutdown") for s in list(self.sessions.values())))
        if self._backend is not None:
            await self._backend.close()

    @hookimpl
    async def kernel_connection_closed(self, connection: Connection) -> None:
        """The owner of a session left: its backend connection closes too."""
        owned = [s for s in self.sessions.values() if s.owner is connection]
        await asyncio.gather(*(s.stop("connection_closed") for s in owned))

    @hookimpl
    async def threads_thread_released(self, thread_id: str) -> None:
        """Nobody is left on the thread (or it was unloaded): end its session."""
        session = self.sessions.get(thread_id)
        if session is not None:
            await session.stop("thread_released")

    @hookimpl
    def threads_turn_finished(self, turn: Any, status: str) -> None:
        """A handoff's turn ended: its answer goes back to the voice model."""
        if self._handoffs is not None:
            self._handoffs.turn_finished(turn, status)

    # -- what sessions ask of the plugin (SessionHost) ---------------------------------------

    def recipients(self, session: RealtimeSession) -> list[Connection]:
        """The thread's subscribers, and the session's owner even when not subscribed."""
        assert self.kernel is not None
        threads = self.kernel.services.get("threads")
        found = list(threads.subscribers(session.thread_id)) if threads is not None else []
        owner = session.owner
        if owner is not None and not owner.closing and all(c is not owner for c in found):
            found.append(owner)
        return found

    async def handoff(
        self, session: RealtimeSession, handoff_id: str, request: str, active: list[dict[str, str]]
    ) -> None:
        assert self._handoffs is not None
        await self._handoffs.route(session, handoff_id, request, active)

    def ended(self, session: RealtimeSession) -> None:
        if self.sessions.get(session.thread_id) is session:
            del self.sessions[session.thread_id]
        if self._handoffs is not None:
            self._handoffs.forget(session)

    # -- helpers -------------------------------------------------------------------------------

    def _threads(self, thread_id: str) -> Any:
        """The threads service, after checking the thread is loaded (reference message)."""
        assert self.kernel is not None
        threads = self.kernel.services.get("threads")
        if threads is None:
            raise RpcError(INVALID_REQUEST, "the threads plugin is not loaded")
        threads.require_loaded(thread_id)
        return threads

    def _running(self, thread_id: str) -> RealtimeSession:
        """The thread's session taking input, else ``-32600 conversation is not running``."""
        self._threads(thread_id)
        session = self.sessions.get(thread_id)
        if session is None or not session.accepting:
            raise RpcError(INVALID_REQUEST, NOT_RUNNING, {"field": "threadId"})
        return session

    @staticmethod
    def _queue(session: RealtimeSession, *frames: str) -> None:
        """Queue the frames for the backend, all or none (``-32001`` when full)."""
        queue = session.queue
        if len(queue) + len(frames) > queue.limit:
            raise RpcError(
                SERVER_OVERLOADED,
                OVERLOADED_MESSAGE,
                {"reason": f"{len(queue)} frames are waiting for the realtime backend"},
            )
        for frame in frames:
            session.append(frame)

    async def _target(
        self, ctx: RequestContext, threads: Any, thread_id: str, session_id: str, model: str
    ) -> BackendTarget:
        """The backend's URLs and headers for the thread's model provider."""
        assert self.kernel is not None
        models = self.kernel.services.get("models")
        if models is None:
            raise RpcError(INVALID_REQUEST, "realtime conversation needs the models plugin")
        provider = str(threads.settings(thread_id).get("model_provider") or "openai")
        try:
            base = models.base_url(provider)
            auth = await models.auth_headers(provider, required=True)
        except models.UnknownProvider as exc:
            raise RpcError(INVALID_REQUEST, f"realtime conversation: {exc}") from None
        except models.MissingCredentials as exc:
            raise RpcError(
                INVALID_REQUEST, f"realtime conversation requires API key auth: {exc}"
            ) from None
        info = ctx.connection.client_info
        headers = {
            **models.extra_headers(provider),
            **auth,
            "originator": info.name if info is not None else "kernel",
            "thread-id": thread_id,
            "session-id": thread_id,
            "x-session-id": session_id,
        }
        configured = self.kernel.config.structure_value(BASE_URL_KEY, str | None)
        return BackendTarget(
            endpoints=endpoints(configured, base, model),
            provider_id=provider,
            requires_openai_auth=models.requires_openai_auth(provider),
            headers=headers,
            timeout=self.settings.connect_timeout_seconds,
            connection=ctx.connection,
            thread_id=thread_id,
        )

    # -- methods -------------------------------------------------------------------------

    @method("thread/realtime/start", experimental=True)
    async def start(self, params: ThreadRealtimeStartParams, ctx: RequestContext) -> None:
        """Start (or restart) the thread's session; answers at once, then notifications."""
        assert self.kernel is not None
        thread_id = params.thread_id
        threads = self._threads(thread_id)
        options = start_options(params)
        config = self.kernel.config
        model = params.model or config.structure_value(MODEL_KEY, str | None) or DEFAULT_MODEL
        instructions = params.prompt
        if instructions is None:
            instructions = config.structure_value(PROMPT_KEY, str | None) or DEFAULT_INSTRUCTIONS
        session_id = params.realtime_session_id or thread_id
        target = await self._target(ctx, threads, thread_id, session_id, model)
        spec = SessionSpec(
            thread_id=thread_id,
            session_id=session_id,
            modality=params.output_modality,
            voice=options.voice or DEFAULT_V2,
            model=model,
            instructions=instructions,
            transport=options.transport,
            sdp=options.sdp,
            call_id=options.call_id,
            initial_items=tuple((i.role, i.text) for i in params.initial_items or ()),
            client_managed_handoffs=bool(params.client_managed_handoffs),
            max_queued_frames=self.settings.max_queued_frames,
        )
        while (previous := self.sessions.get(thread_id)) is not None:
            await previous.stop("replaced")
        threads.require_loaded(thread_id)  # it may have been unloaded while we waited
        assert self._backend is not None
        session = RealtimeSession(spec, target, self._backend, self)
        self.sessions[thread_id] = session
        session.start()
        log.info("realtime session %s starting on thread %s (%s)",
                 session_id, thread_id, options.transport)  # fmt: skip

    @method("thread/realtime/appendAudio", experimental=True)
    def append_audio(self, params: ThreadRealtimeAppendAudioParams, ctx: RequestContext) -> None:
        """Queue a chunk of the user's audio for the backend."""
        session = self._running(params.thread_id)
        self._queue(session, protocol.audio_append(audio_frame(params.audio)))

    @method("thread/realtime/appendText", experimental=True)
    def append_text(self, params: ThreadRealtimeAppendTextParams, ctx: RequestContext) -> None:
        """Queue a message for the conversation (user text is marked ``[USER] ``)."""
        session = self._running(params.thread_id)
        self._queue(session, protocol.text_message(non_empty(params.text), params.role))

    @method("thread/realtime/appendSpeech", experimental=True)
    def append_speech(self, params: ThreadRealtimeAppendSpeechParams, ctx: RequestContext) -> None:
        """Have the voice model say ``text`` (a ``[BACKEND] `` message, then a response)."""
        session = self._running(params.thread_id)
        self._queue(session, protocol.speech(non_empty(params.text)))
        session.request_response()

    @method("thread/realtime/stop", experimental=True)
    async def stop(self, params: ThreadRealtimeStopParams, ctx: RequestContext) -> None:
        """End the thread's session; nothing to announce when none runs."""
        self._threads(params.thread_id)
        session = self.sessions.get(params.thread_id)
        if session is not None:
            await session.stop("requested")

    @method("thread/realtime/listVoices", experimental=True)
    def list_voices(
        self, params: ThreadRealtimeListVoicesParams, ctx: RequestContext
    ) -> dict[str, Any]:
        """The voices per Realtime API version, and the defaults."""
        return {"voices": voices_list()}
