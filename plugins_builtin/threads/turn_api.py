"""What a tool (and any family holding a ``turn``) may do with the running turn.

:class:`TurnApi` is the public half of :class:`~.engine.TurnRunner`: items,
notifications, server requests, approvals, flags, history, persistence.
docs/threads.md ("Tools from plugins") documents it for other families.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kernel import ConnectionClosed

from .approvals import ask_approval
from .state import item_record, now_ms

if TYPE_CHECKING:
    from kernel import Connection, Kernel

    from .hub import LoadedThread
    from .state import TurnState

__all__ = ["TurnApi", "public_item"]


def public_item(item: dict[str, Any]) -> dict[str, Any]:
    """The item without the engine's private ``_`` members."""
    return {k: v for k, v in item.items() if not k.startswith("_")}


class TurnApi:
    """The turn as tools see it; see the module docstring."""

    kernel: Kernel
    thread: LoadedThread
    turn: TurnState
    connection: Connection | None
    store: Any
    open_items: dict[str, dict[str, Any]]

    def interrupt(self) -> None:
        raise NotImplementedError

    async def _model_items(self, items: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    # -- what tools see ---------------------------------------------------------

    @property
    def thread_id(self) -> str:
        return self.thread.id

    @property
    def turn_id(self) -> str:
        return self.turn.id

    @property
    def cwd(self) -> str:
        return self.thread.state.settings.cwd

    @property
    def settings(self) -> dict[str, Any]:
        return self.thread.state.settings.to_record()

    @property
    def transcript_path(self) -> str | None:
        """The thread's rollout file (None for an ephemeral thread)."""
        path = self.thread.meta.path
        return None if self.thread.ephemeral or not path else str(path)

    @property
    def last_agent_message(self) -> str | None:
        """The text of the turn's last completed ``agentMessage`` item, if any."""
        for item in reversed(self.turn.items):
            if item.get("type") == "agentMessage":
                text = item.get("text")
                return text if isinstance(text, str) and text else None
        return None

    @property
    def turn_number(self) -> int:
        """1 for the thread's first turn, 2 for the next... (turns replayed from disk count)."""
        for index, turn in enumerate(self.thread.state.turns):
            if turn is self.turn:
                return index + 1
        return len(self.thread.state.turns) + 1

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        """Send a notification to the thread's subscribers."""
        await self.thread.emit(method, params)

    async def start_item(self, item: dict[str, Any]) -> None:
        """``item/started``; the item stays open until :meth:`complete_item`."""
        item_id = item["id"]
        self.open_items[item_id] = item
        item.setdefault("_startedAtMs", now_ms())
        params = {
            "item": public_item(item),
            "threadId": self.thread_id,
            "turnId": self.turn_id,
            "startedAtMs": item["_startedAtMs"],
        }
        await self.notify("item/started", params)

    async def complete_item(self, item: dict[str, Any]) -> None:
        """``item/completed``, recorded in the turn and the rollout."""
        self.open_items.pop(item["id"], None)
        parts = item.pop("_textParts", None)
        if parts:  # streamed text is collected in parts: one join, not a copy per delta
            item["text"] = item.get("text", "") + "".join(parts)
        started = item.get("_startedAtMs")
        completed = now_ms()
        public = public_item(item)
        self.turn.add_item(public, started, completed)
        await self.persist([item_record(self.turn_id, public, started, completed)])
        params = {
            "item": public,
            "threadId": self.thread_id,
            "turnId": self.turn_id,
            "completedAtMs": completed,
        }
        await self.notify("item/completed", params)

    async def request(self, method: str, params: Any, timeout: float | None = -1) -> Any:
        """Ask a client: the turn's own connection if subscribed, else another subscriber.

        After the answer, subscribers get ``serverRequest/resolved``.
        """
        conn = self._asked_connection()
        if conn is None:
            raise ConnectionClosed(f"thread {self.thread_id} has no subscribed client to ask")
        request_id = conn.next_server_request_id()
        try:
            return await conn.request(method, params, timeout=timeout, request_id=request_id)
        finally:
            await self.notify(
                "serverRequest/resolved", {"threadId": self.thread_id, "requestId": request_id}
            )

    def _asked_connection(self) -> Connection | None:
        subscribers = self.thread.subscribers
        if self.connection is not None and self.connection.id in subscribers:
            return self.connection
        return next(iter(subscribers.values()), None)

    async def set_flags(self, flags: list[str]) -> None:
        """Change the thread's active flags (``waitingOnApproval``...)."""
        await self.thread.set_flags(flags)

    async def flag(self, name: str, on: bool) -> None:
        """Set or clear one active flag of the thread (``waitingOnUserInput``...)."""
        flags = [f for f in self.thread.flags if f != name]
        await self.thread.set_flags([*flags, name] if on else flags)

    async def ask_approval(
        self, kind: str, method: str, params: dict[str, Any], allowed: Any
    ) -> dict[str, Any]:
        """Ask the reviewer hook, else the client; fails closed (see :mod:`.approvals`)."""
        return await ask_approval(self, kind, method, params, allowed)

    def keep_item_open(self, item_id: str) -> None:
        """The item outlives the turn (a background terminal): its tool completes it later.

        Without this, ending the turn (interrupt, failure) completes every
        item still open as failed.
        """
        self.open_items.pop(item_id, None)

    async def add_to_history(self, items: list[dict[str, Any]]) -> None:
        """Append Responses API input items to what the model sees next (and the rollout)."""
        await self._model_items(items)

    @property
    def session(self) -> dict[str, Any]:
        """Per-thread scratch space for tools (approvals cached for the session...)."""
        return self.thread.session

    def end_as_interrupted(self) -> None:
        """End the turn ``interrupted`` after the current tool call (an approval's ``cancel``)."""
        self.interrupt()

    async def persist(self, records: list[dict[str, Any]]) -> None:
        """Append records to the thread's rollout (nothing for an ephemeral thread)."""
        if not self.thread.ephemeral:
            await self.store.append(self.thread_id, records)
