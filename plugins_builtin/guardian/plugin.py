"""The ``guardian`` plugin: automatic approval review (``approvals_reviewer = "auto_review"``).

It answers the threads family's ``threads_review_approval`` hook for
command, file change, permission and MCP tool call approvals when the
turn's reviewer is ``auto_review`` and its approval policy is
``on-request`` or granular (as the reference routes them; other policies
still ask the user; MCP elicitation forms always go to the user). Each review
is one request to the turn's model provider (:mod:`.review`); reviews of
parallel tool calls run in parallel. It also serves
``thread/approveGuardianDeniedAction`` (:mod:`.overrides`). Without this
plugin, approvals go to the client whatever the reviewer setting. See
docs/guardian.md.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from kernel import Kernel, RequestContext, RpcError, SettingError, hookimpl, method
from kernel.config import Config
from kernel.rpc.errors import INVALID_REQUEST

from .actions import KINDS
from .overrides import Overrides
from .review import Reviewer

__all__ = ["GuardianPlugin", "GuardianSettings"]

log = logging.getLogger("plugins.guardian")

_NOTIFICATIONS = (
    "item/autoApprovalReview/started",
    "item/autoApprovalReview/completed",
    "guardianWarning",
)


@attrs.frozen
class GuardianSettings:
    """``[kernel_plugins.guardian]`` in config.toml."""

    # The reviewer's model; unset: the turn's own model (same provider either way).
    model: str | None = None
    # The reviewer's reasoning effort; empty: the provider's default.
    reasoning_effort: str | None = "low"
    # A review that takes longer is refused (fails closed) and reported as timed out.
    timeout_seconds: float = 90.0

    def check(self, config: Config) -> None:
        """Ranges."""
        if not self.timeout_seconds > 0:
            raise SettingError("timeout_seconds", "must be positive")
        if self.model is not None and not self.model.strip():
            raise SettingError("model", "must not be empty (leave it out to use the turn's model)")


@attrs.frozen
class ThreadApproveGuardianDeniedActionParams:
    """Approve an action automatic review denied (see docs/guardian.md)."""

    thread_id: str
    event: Any


def reviews(settings: Mapping[str, Any]) -> bool:
    """Whether a turn with ``settings`` has its approvals reviewed automatically."""
    if settings.get("approvals_reviewer") != "auto_review":
        return False
    policy = settings.get("approval_policy")
    return policy == "on-request" or (isinstance(policy, Mapping) and "granular" in policy)


class GuardianPlugin:
    """Automatic approval review; see the module docstring."""

    def __init__(self) -> None:
        self.settings = GuardianSettings()
        self.kernel: Kernel | None = None
        self.reviewer: Reviewer | None = None
        self.overrides = Overrides()

    # -- configuration -------------------------------------------------------------------

    @hookimpl
    def kernel_configure(self, kernel: Kernel, settings: GuardianSettings) -> None:
        self.settings = settings
        self.kernel = kernel
        self.reviewer = Reviewer(
            kernel,
            model=settings.model,
            reasoning_effort=settings.reasoning_effort or None,
            timeout=settings.timeout_seconds,
            on_denied=self.overrides.denied,
        )

    @hookimpl
    def kernel_register(self, registrar: Any) -> None:
        for name in _NOTIFICATIONS:
            registrar.notification(name)

    # -- the threads family's hooks ------------------------------------------------------

    @hookimpl
    async def threads_review_approval(
        self,
        turn: Any,
        kind: str,
        params: Mapping[str, Any],
        item: Mapping[str, Any] | None,
        history: Sequence[Mapping[str, Any]],
    ) -> dict[str, Any] | None:
        """Review the approval when the turn's reviewer is ``auto_review``; else None."""
        if self.reviewer is None or not reviews(turn.settings):
            return None
        if kind not in KINDS:
            log.info("approval kind %r is not reviewed automatically; asking the client", kind)
            return None
        return await self.reviewer.review(turn, kind, params, item, history)

    @hookimpl
    async def threads_context(self, turn: Any) -> None:
        """Approvals waiting for the thread join its history: the turn is about to ask its model.

        ``turn.add_to_history`` (not returned context) keeps them in the
        conversation, after the turn's user message.
        """
        await self.overrides.flush(turn)

    @hookimpl
    async def threads_turn_finished(self, turn: Any) -> None:
        """Approvals given while the turn ran join the history now that its calls are answered."""
        await self.overrides.flush(turn)

    @hookimpl
    def threads_thread_released(self, thread_id: str) -> None:
        """An unloaded thread's waiting approvals are dropped (a thread still loaded keeps them)."""
        threads = self.kernel.services.get("threads") if self.kernel is not None else None
        if threads is None or not threads.is_loaded(thread_id):
            self.overrides.forget(thread_id)

    # -- methods -------------------------------------------------------------------------

    @method("thread/approveGuardianDeniedAction")
    def approve_denied_action(
        self, params: ThreadApproveGuardianDeniedActionParams, ctx: RequestContext
    ) -> None:
        """Record that the user approved a denied action for the model; nothing runs here."""
        threads = ctx.kernel.services.get("threads")
        if threads is None:
            raise RpcError(INVALID_REQUEST, "the threads plugin is not loaded")
        threads.require_loaded(params.thread_id)
        self.overrides.approve(params.thread_id, params.event)
