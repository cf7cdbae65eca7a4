"""Handoffs: the voice model asks the thread's agent to do the work.

When the realtime model calls ``background_agent``, the request (and the
transcript since the previous handoff) becomes work on the thread, through
``kernel.services["threads"]`` only:

* the thread is idle: a turn starts (``start_turn``) with the request
  wrapped as the reference wraps it::

      <realtime_delegation>
        <input>what the user asked</input>
        <transcript_delta>user: …
      assistant: …</transcript_delta>
      </realtime_delegation>

  When that turn ends (the ``threads_turn_finished`` hook), its last agent
  message goes back to the voice model as the call's output, and the model
  is asked to respond (it speaks the result);
* a turn is running: the request steers it (``steer``), and the call is
  answered at once saying so;
* nothing can take it (no threads family, the thread is gone): the call is
  answered with why, so the voice model can tell the user.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from kernel import RpcError

if TYPE_CHECKING:
    from kernel import Kernel

    from .session import RealtimeSession

__all__ = ["HandoffRouter", "delegation_text", "turn_result"]

log = logging.getLogger("plugins.realtime")

STEERED = "Sent to the agent's task in progress as guidance; its answer will follow."
# What a handoff's result may cost the voice model's context (about 1,000 tokens).
MAX_RESULT_CHARS = 4000


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def delegation_text(request: str, active: list[dict[str, str]]) -> str | None:
    """The turn's text for a handoff, or None when there is nothing to hand off."""
    transcript = "\n".join(f"{entry['role']}: {entry['text']}" for entry in active)
    wanted = request.strip() or transcript
    if not wanted:
        return None
    text = f"<realtime_delegation>\n  <input>{_escape(wanted)}</input>\n"
    if transcript:
        text += f"  <transcript_delta>{_escape(transcript)}</transcript_delta>\n"
    return text + "</realtime_delegation>"


def turn_result(turn: Any, status: str) -> str:
    """What the voice model is told when the handoff's turn ended with ``status``."""
    message = turn.last_agent_message
    if status != "completed":
        result = f"The agent's task ended {status}."
        if message:
            result += f" Its last message: {message}"
    else:
        result = message or "The agent finished without a message."
    if len(result) > MAX_RESULT_CHARS:
        result = result[: MAX_RESULT_CHARS - 1] + "…"
    return result


class HandoffRouter:
    """Starts or steers turns for handoffs and answers the calls; see the module docstring."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self._pending: dict[str, tuple[RealtimeSession, str]] = {}

    async def route(
        self, session: RealtimeSession, handoff_id: str, request: str, active: list[dict[str, str]]
    ) -> None:
        """Give the request to the thread's agent (see the module docstring)."""
        text = delegation_text(request, active)
        if text is None:
            session.answer_call(handoff_id, "There was nothing to hand off: the request was empty.")
            return
        threads = self.kernel.services.get("threads")
        if threads is None:
            session.answer_call(handoff_id, "No agent can take requests on this server.")
            return
        thread_id = session.thread_id
        user_input = [{"type": "text", "text": text}]
        owner = session.owner if session.owner is not None and not session.owner.closing else None
        try:
            turn_id = await threads.start_turn(thread_id, user_input, connection=owner)
        except RpcError as exc:  # a turn is running (or the thread is gone)
            problem = exc.message
            try:
                steered = threads.steer(thread_id, user_input)
            except RpcError as steer_failed:
                steered, problem = False, steer_failed.message
            if steered:
                session.answer_call(handoff_id, STEERED)
            else:
                log.info("handoff on thread %s not taken: %s", thread_id, problem)
                session.answer_call(handoff_id, f"The agent could not take it: {problem}")
            return
        self._pending[str(turn_id)] = (session, handoff_id)

    def turn_finished(self, turn: Any, status: str) -> None:
        """A turn ended: answer the handoff that started it, if its session is still on."""
        entry = self._pending.pop(str(getattr(turn, "turn_id", "")), None)
        if entry is None:
            return
        session, handoff_id = entry
        if session.accepting:
            session.answer_call(handoff_id, turn_result(turn, status))

    def forget(self, session: RealtimeSession) -> None:
        """Drop the handoffs of an ended session (their turns go on without a voice)."""
        for turn_id in [t for t, (s, _) in self._pending.items() if s is session]:
            del self._pending[turn_id]
