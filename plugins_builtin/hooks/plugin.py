"""The ``hooks`` plugin: ``hooks/list``, and the user's hook commands run during turns.

Discovery, keys, hashes and trust are in :mod:`.discovery`; how a command's
result is read in :mod:`.outcome`; running with notifications in
:mod:`.runs`. The events are fired through the threads family's lifecycle
hooks (no import of that family):

=====================  ==========================================================
``SessionStart``       the first turn of a thread in this server (``threads_context``)
``UserPromptSubmit``   the user's input, before the model sees it (``threads_user_input``)
``PreToolUse``         before a tool call (``threads_tool_call``)
``PermissionRequest``  before an approval reaches the reviewer or the user
                       (``threads_review_approval``, asked before the guardian)
``PostToolUse``        after a tool call (``threads_tool_result``)
``Stop``               the model is done (``threads_turn_stopping``)
=====================  ==========================================================

See docs/hooks_family.md.
"""

from __future__ import annotations

import html
import json
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import pluggy

from kernel import Kernel, RequestContext, RpcError, hookimpl, method, notification

from .discovery import Bundle, Hook, Listing, discover
from .events import event_by_file_name
from .hookspecs import HooksSpec
from .runs import Folded, HookRunner

__all__ = ["HooksPlugin"]

log = logging.getLogger("plugins.hooks")

_TURN_CACHE = 64


@attrs.frozen
class HooksListParams:
    """``cwds`` (default: the thread's cwd with ``threadId``, else the server's); ``threadId``."""

    cwds: list[str] | None = None
    thread_id: str | None = None


def _developer(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "role": "developer",
        "content": [{"type": "input_text", "text": text}],
    }


def _tool_subject(name: str, namespace: Any, arguments: Any) -> tuple[str, dict[str, Any]]:
    """The ``tool_name`` and ``tool_input`` hooks see for a call (``Bash`` for commands)."""
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
    except json.JSONDecodeError:
        parsed = arguments
    if name in ("exec_command", "shell") and isinstance(parsed, Mapping):
        command = parsed.get("cmd", parsed.get("command"))
        if isinstance(command, list):
            command = " ".join(str(c) for c in command)
        return "Bash", {"command": command}
    if name == "apply_patch":
        patch = parsed.get("input", parsed) if isinstance(parsed, Mapping) else parsed
        return "apply_patch", {"command": patch if isinstance(patch, str) else arguments}
    if isinstance(namespace, str) and namespace.startswith("mcp__"):
        return f"{namespace}__{name}", parsed if isinstance(parsed, dict) else {"input": parsed}
    return name, parsed if isinstance(parsed, dict) else {"input": parsed}


class HooksPlugin:
    """See the module docstring."""

    hook_started = notification("hook/started")
    hook_completed = notification("hook/completed")

    def __init__(self) -> None:
        self.kernel: Kernel | None = None
        self.runner: HookRunner | None = None
        self._turn_hooks: dict[str, list[Hook]] = {}
        self._stop_active: set[str] = set()
        self._started_threads: set[str] = set()

    # -- kernel hooks ------------------------------------------------------------------

    @hookimpl
    def kernel_add_hookspecs(self, pluginmanager: pluggy.PluginManager) -> None:
        pluginmanager.add_hookspecs(HooksSpec)

    @hookimpl
    def kernel_config_keys(self) -> dict[str, Any]:
        # [hooks] (events and their per-key state) and [projects."<root>"] (trust).
        return {"hooks": dict[str, Any] | None, "projects": dict[str, Any] | None}

    @hookimpl
    def kernel_configure(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.runner = HookRunner(kernel)

    @hookimpl
    async def kernel_shutdown(self, kernel: Kernel) -> None:
        if self.runner is not None:
            await self.runner.close()

    # -- discovery ---------------------------------------------------------------------

    async def _bundles(self) -> list[Bundle]:
        assert self.kernel is not None
        found: list[Bundle] = []
        for name, listed in await self.kernel.plugins.acall("hooks_bundles"):
            for raw in listed or []:
                try:
                    found.append(
                        Bundle(
                            plugin_id=str(raw["pluginId"]),
                            root=str(raw["root"]),
                            hooks_file=str(raw["hooksFile"]),
                            relative_path=str(raw["relativePath"]),
                            version=str(raw.get("version") or "local"),
                            data_dir=str(raw.get("dataDir") or raw["root"]),
                        )
                    )
                except (KeyError, TypeError):
                    log.error("plugin %s: hooks_bundles returned a malformed entry", name)
        return found

    async def listing(self, cwd: str, owner: object) -> Listing:
        """Every hook for ``cwd``, read from disk now (off the event loop)."""
        assert self.kernel is not None
        bundles = await self._bundles()
        config = self.kernel.config
        return await self.kernel.blocking.run(owner, discover, config, cwd, bundles, timeout=30)

    @method("hooks/list")
    async def list_hooks(self, params: HooksListParams, ctx: RequestContext) -> dict[str, Any]:
        """The hooks of each cwd, with their trust and warnings (re-read from disk each call)."""
        cwds = params.cwds
        if params.thread_id is not None:
            threads = ctx.kernel.services.get("threads")
            if threads is None:
                raise RpcError(-32600, f"thread not found: {params.thread_id}")
            threads.require_loaded(params.thread_id)
            if cwds is None:
                cwds = [threads.settings(params.thread_id)["cwd"]]
        if cwds is None:
            cwds = [os.getcwd()]
        listings = [await self.listing(cwd, ctx.connection) for cwd in cwds]
        return {"data": [listing.wire() for listing in listings]}

    async def _hooks_for(self, turn: Any) -> list[Hook]:
        """The hooks of this turn's cwd, discovered once per turn."""
        hooks = self._turn_hooks.get(turn.turn_id)
        if hooks is None:
            hooks = (await self.listing(turn.cwd, self)).hooks
            self._turn_hooks[turn.turn_id] = hooks
            while len(self._turn_hooks) > _TURN_CACHE:
                self._turn_hooks.pop(next(iter(self._turn_hooks)))
        return hooks

    # -- firing ------------------------------------------------------------------------

    def _common(self, turn: Any, event_name: str, with_turn: bool = True) -> dict[str, Any]:
        settings = turn.settings
        payload: dict[str, Any] = {"session_id": turn.thread_id}
        if with_turn:
            payload["turn_id"] = turn.turn_id
        payload.update(
            transcript_path=turn.transcript_path,
            cwd=turn.cwd,
            hook_event_name=event_name,
            model=settings.get("model"),
            permission_mode=(
                "bypassPermissions" if settings.get("approval_policy") == "never" else "default"
            ),
        )
        return payload

    async def _fire(
        self,
        turn: Any,
        event_name: str,
        subject: str | None,
        extra: Mapping[str, Any],
        suffix: str | None = None,
        with_turn: bool = True,
    ) -> Folded:
        event = event_by_file_name(event_name)
        assert event is not None and self.runner is not None
        hooks = await self._hooks_for(turn)
        if not any(h.definition.event == event and h.runnable for h in hooks):
            return Folded([])
        payload = {**self._common(turn, event_name, with_turn), **extra}
        return await self.runner.run_event(turn, event, hooks, subject, payload, suffix)

    @hookimpl
    async def threads_context(self, turn: Any) -> None:
        """``SessionStart``: once per thread in this server, at its first turn here."""
        if turn.thread_id in self._started_threads:
            return None
        self._started_threads.add(turn.thread_id)
        source = "startup" if turn.turn_number == 1 else "resume"
        folded = await self._fire(turn, "SessionStart", source, {"source": source}, with_turn=False)
        if folded.context:
            await turn.add_to_history([_developer(text) for text in folded.context])
        return None

    @hookimpl
    def threads_thread_released(self, thread_id: str) -> None:
        self._started_threads.discard(thread_id)

    @hookimpl
    async def threads_user_input(
        self, turn: Any, user_input: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any] | None:
        """``UserPromptSubmit``: a block or stop drops the prompt; context follows it."""
        prompt = "\n".join(
            str(item.get("text", "")) for item in user_input if item.get("type") == "text"
        )
        folded = await self._fire(turn, "UserPromptSubmit", None, {"prompt": prompt})
        if not folded.runs:
            return None
        return {
            "drop": folded.blocked or folded.stopped,
            "items": [_developer(text) for text in folded.context],
        }

    @hookimpl
    async def threads_tool_call(self, turn: Any, call: Any) -> str | None:
        """``PreToolUse``: a block answers the model instead of running the call."""
        name, tool_input = _tool_subject(call.name, call.namespace, call.arguments)
        extra = {"tool_name": name, "tool_input": tool_input, "tool_use_id": call.call_id}
        folded = await self._fire(turn, "PreToolUse", name, extra, suffix=call.call_id)
        if not folded.blocked:
            return None
        command = tool_input.get("command")
        if name in ("Bash", "apply_patch") and isinstance(command, str):
            return f"Command blocked by PreToolUse hook: {folded.block_reason}. Command: {command}"
        return f"Tool call blocked by PreToolUse hook: {folded.block_reason}. Tool: {name}"

    @hookimpl
    async def threads_tool_result(self, turn: Any, call: Any, output: Any) -> dict[str, Any] | None:
        """``PostToolUse``: a block or stop replaces the output; context goes after it."""
        name, tool_input = _tool_subject(call.name, call.namespace, call.arguments)
        extra = {
            "tool_name": name,
            "tool_input": tool_input,
            "tool_use_id": call.call_id,
            "tool_response": output,
        }
        folded = await self._fire(turn, "PostToolUse", name, extra, suffix=call.call_id)
        if not folded.runs:
            return None
        replaced = folded.block_reason or (folded.stop_reason if folded.stopped else None)
        return {"output": replaced, "items": [_developer(text) for text in folded.context]}

    @hookimpl
    async def threads_turn_stopping(self, turn: Any, last_message: str | None) -> list[Any] | None:
        """``Stop``: a block continues the turn with the hook's reason as a user prompt."""
        active = turn.turn_id in self._stop_active
        extra = {"stop_hook_active": active, "last_assistant_message": last_message}
        folded = await self._fire(turn, "Stop", None, extra)
        if folded.stopped or not folded.blocked:
            return None
        self._stop_active.add(turn.turn_id)
        content = [
            {"type": "input_text", "text": _hook_prompt(run_id, o.block_reason or "")}
            for run_id, o in folded.block_runs
        ]
        return [{"type": "message", "role": "user", "content": content}]

    @hookimpl
    def threads_turn_finished(self, turn: Any) -> None:
        self._stop_active.discard(turn.turn_id)
        self._turn_hooks.pop(turn.turn_id, None)

    @hookimpl(tryfirst=True)
    async def threads_review_approval(
        self, turn: Any, kind: str, params: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """``PermissionRequest``: allow approves, deny declines, silence asks the reviewer."""
        name, tool_input = _approval_subject(kind, params)
        extra = {"tool_name": name, "tool_input": tool_input}
        suffix = str(params.get("itemId") or "")
        folded = await self._fire(turn, "PermissionRequest", name, extra, suffix=suffix or None)
        if folded.blocked:
            return {"decision": "decline", "reason": folded.block_reason}
        if folded.allow:
            if kind == "permissions":
                return {"permissions": dict(params.get("permissions") or {}), "scope": "turn"}
            return {"decision": "accept"}
        return None


def _hook_prompt(run_id: str, reason: str) -> str:
    """The continuation a blocking ``Stop`` hook asks for (its reason, XML-escaped)."""
    return f'<hook_prompt hook_run_id="{run_id}">{html.escape(reason, quote=False)}</hook_prompt>'


def _approval_subject(kind: str, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    if kind == "command":
        return "Bash", {"command": params.get("command")}
    if kind == "fileChange":
        return "apply_patch", {"changes": params.get("changes"), "reason": params.get("reason")}
    if kind == "permissions":
        return "request_permissions", {"permissions": params.get("permissions")}
    return str(params.get("tool") or kind), dict(params.get("arguments") or {})
