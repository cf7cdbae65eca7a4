"""``exec_command`` and ``write_stdin``: the agent's shell, with approvals and background terminals.

``exec_command`` runs ``[shell, "-lc", cmd]`` through
``kernel.services["process"]`` (one copy of process code: sandbox,
containment, PTYs), inside the turn's sandbox unless an approval lifted it.
It answers once the command ended or ``yield_time_ms`` passed; a command
still running then is a background terminal the model polls or writes to
with ``write_stdin``. Shapes and texts follow the reference (see
docs/agent_tools.md).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

from kernel import RpcError

from .approval_rules import plan_exec, proposed_amendment, sandbox_denied
from .command_actions import parse_command, shlex_join
from .context import Placement, ToolContext, ToolUnavailable
from .exec_format import (
    WRITE_STDIN_SPEC,
    ToolArgumentError,
    exec_command_spec,
    forced_env,
    format_exec_output,
    new_chunk_id,
    parse_exec_args,
    parse_write_stdin_args,
    resolve_login,
    shell_argv,
)
from .terminals import ExecSession

__all__ = ["ExecTools", "rejected_text"]

REJECTED = 'exec_command failed: CreateProcess { message: "Rejected(\\"rejected by user\\")" }'
_APPROVAL_DECISIONS = ("accept", "acceptForSession", "acceptWithExecpolicyAmendment", "decline")


class ExecTools:
    """The two tools, bound to the family's :class:`ToolContext`."""

    def __init__(self, context: ToolContext) -> None:
        self.context = context

    def tools(self) -> list[dict[str, Any]]:
        login = self.context.config.allow_login_shell
        return [
            {"spec": exec_command_spec(allow_login_shell=login), "call": self.exec_command},
            {"spec": WRITE_STDIN_SPEC, "call": self.write_stdin},
        ]

    # -- exec_command ------------------------------------------------------------------

    async def exec_command(self, invocation: Any) -> str:
        turn = invocation.turn
        try:
            args = parse_exec_args(invocation.arguments)
            login = resolve_login(
                args.login, allow_login_shell=self.context.config.allow_login_shell
            )
        except ToolArgumentError as exc:
            return str(exc)
        patch = _heredoc_patch(args.cmd)
        if patch is not None:
            return await self._intercepted_patch(invocation, patch)
        try:
            place = self.context.placement(turn)
        except ToolUnavailable as exc:
            return f"exec_command failed: {exc}"
        cwd = os.path.normpath(os.path.join(place.cwd, args.workdir or ""))
        argv = shell_argv(args.cmd, args.shell, login)
        escalated = args.sandbox_permissions == "require_escalated"
        state = self.context.of(turn.thread_id)
        memory = state.memory
        settings = turn.settings
        full_access = self.context.full_access(settings)
        plan = plan_exec(
            settings.get("approval_policy"),
            full_access=full_access,
            escalated=escalated,
            remembered=memory.remembers_command(args.cmd, cwd, args.tty, escalated),
        )
        if plan.action == "reject":
            return plan.message
        item = _item(invocation.call_id, argv, cwd, args.cmd)
        sandboxed = plan.sandboxed
        if plan.action == "ask":
            answer = await self._ask(turn, item, args, reason=args.justification)
            if isinstance(answer, str):
                return answer
        started = time.monotonic()  # wall time counts the command, not the approval
        terminals = state.terminals
        session_id = terminals.new_id()
        session = ExecSession(
            session_id=session_id, item=item, turn=turn, tty=args.tty, raw_command=args.cmd
        )
        try:
            await self._spawn(session, place, argv, cwd, sandboxed, args.tty)
        except (OSError, RpcError, ConnectionError) as exc:
            terminals.release_id(session_id)
            return await self._spawn_failed(turn, item, exc, already_started=plan.action == "ask")
        if plan.action != "ask":
            await turn.start_item(item)
        try:
            output = await session.collect(args.yield_time_ms / 1000)
        except asyncio.CancelledError:
            # The turn ended while waiting: the command goes on as a background terminal.
            self._keep(turn, session)
            raise
        policy = settings.get("approval_policy")
        if session.done.is_set() and sandbox_denied(
            policy, sandboxed, session.exit_code or 0, output.decode("utf-8", "replace")
        ):
            return await self._retry_unsandboxed(
                invocation, args, place, argv, cwd, output, started
            )
        return self._answer(turn, session, output, started, args.max_output_tokens)

    async def _spawn(
        self,
        session: ExecSession,
        place: Placement,
        argv: list[str],
        cwd: str,
        sandboxed: bool,
        tty: bool,
    ) -> None:
        turn = session.turn
        session.item["processId"] = str(session.session_id)
        session.item["source"] = "unifiedExecStartup"
        handle = await place.executor.start(
            argv,
            cwd=cwd,
            env=forced_env(),
            tty=tty,
            on_output=session.on_output,
            output_cap=None,
            **self.context.sandbox(turn, sandboxed),
        )
        session.watch(handle)

    def _answer(
        self, turn: Any, session: ExecSession, output: bytes, started: float, budget: int | None
    ) -> str:
        running = not session.done.is_set()
        if running:
            self._keep(turn, session)
        else:
            terminals = self.context.of(turn.thread_id).terminals
            terminals.remove(session.session_id)
            terminals.release_id(session.session_id)
        return format_exec_output(
            chunk_id=new_chunk_id(),
            wall_time_s=time.monotonic() - started,
            exit_code=None if running else session.exit_code,
            session_id=session.session_id if running else None,
            output=output.decode("utf-8", errors="replace"),
            max_output_tokens=budget,
        )

    def _keep(self, turn: Any, session: ExecSession) -> None:
        """``session`` is a background terminal now: its item outlives the turn."""
        turn.keep_item_open(session.item["id"])
        pruned = self.context.of(turn.thread_id).terminals.store(session)
        if pruned is not None:
            asyncio.get_running_loop().create_task(pruned.kill())

    async def _ask(
        self, turn: Any, item: dict[str, Any], args: Any, reason: str | None
    ) -> dict[str, Any] | str:
        """Ask for approval with the item shown; the model's text when declined (item completed)."""
        item["source"] = "agent"
        item["processId"] = None
        await turn.start_item(item)
        amendment = proposed_amendment(args.cmd, args.prefix_rule)
        decisions: list[Any] = ["accept", "acceptForSession"]
        if amendment:
            decisions.append({"acceptWithExecpolicyAmendment": {"execpolicy_amendment": amendment}})
        decisions += ["decline", "cancel"]
        params: dict[str, Any] = {
            "threadId": turn.thread_id,
            "turnId": turn.turn_id,
            "itemId": item["id"],
            "startedAtMs": int(time.time() * 1000),
            "kind": "command",
            "command": item["command"],
            "cwd": item["cwd"],
            "commandActions": item["commandActions"],
            "availableDecisions": decisions,
        }
        if reason:
            params["reason"] = reason
        if amendment:
            params["proposedExecpolicyAmendment"] = amendment
        answer = await turn.ask_approval(
            "command",
            "item/commandExecution/requestApproval",
            params,
            (*_APPROVAL_DECISIONS, "cancel"),
        )
        decision = answer.get("decision")
        name = decision if isinstance(decision, str) else next(iter(decision or {}), "")
        if name in ("decline", "cancel", ""):
            item.update(status="declined")
            await turn.complete_item(item)
            if name == "cancel":
                turn.end_as_interrupted()
            return rejected_text(answer)
        memory = self.context.of(turn.thread_id).memory
        escalated = args.sandbox_permissions == "require_escalated"
        if name == "acceptForSession":
            memory.remember_command(args.cmd, item["cwd"], args.tty, escalated)
        elif name == "acceptWithExecpolicyAmendment":
            rule = (decision or {}).get(name, {}).get("execpolicy_amendment") or amendment
            memory.remember_prefix([str(w) for w in rule or []])
        return answer

    async def _spawn_failed(
        self, turn: Any, item: dict[str, Any], exc: Exception, *, already_started: bool
    ) -> str:
        """The command could not start (no such cwd, no sandbox here): its item still completes."""
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if isinstance(exc, ConnectionError):
            text = f"the environment is unreachable: {exc}"
        if isinstance(exc, RpcError) and exc.code == -32022:
            message = f"exec_command failed: {exc.message}"
        else:
            message = (
                'exec_command failed: CreateProcess { message: "Rejected(\\"Failed to create '
                f'unified exec process: {text}\\")" }}'
            )
        item.update(processId=None, status="failed", aggregatedOutput=message, exitCode=-1)
        item["durationMs"] = 0
        if not already_started:
            await turn.start_item(item)
        await turn.complete_item(item)
        return message

    async def _retry_unsandboxed(
        self,
        invocation: Any,
        args: Any,
        place: Placement,
        argv: list[str],
        cwd: str,
        first_output: bytes,
        started: float,
    ) -> str:
        """``on-failure``: the sandbox denied the command; ask to run it again outside."""
        turn = invocation.turn
        item = _item(f"{invocation.call_id}-retry", argv, cwd, args.cmd)
        reason = "command failed in the sandbox; retry without it?"
        answer = await self._ask(turn, item, args, reason=reason)
        if isinstance(answer, str):
            text = first_output.decode("utf-8", errors="replace")
            return f"{answer}\n{text}" if text else answer
        terminals = self.context.of(turn.thread_id).terminals
        session = ExecSession(
            session_id=terminals.new_id(), item=item, turn=turn, tty=args.tty, raw_command=args.cmd
        )
        try:
            await self._spawn(session, place, argv, cwd, False, args.tty)
        except (OSError, RpcError, ConnectionError) as exc:
            return await self._spawn_failed(turn, item, exc, already_started=True)
        output = await session.collect(args.yield_time_ms / 1000)
        return self._answer(turn, session, output, started, args.max_output_tokens)

    async def _intercepted_patch(self, invocation: Any, patch: str) -> str:
        """``apply_patch <<'EOF' ... EOF`` sent as a command is handled as apply_patch."""
        tool = self.context.patch_tool
        output = await tool.apply(invocation.turn, invocation.call_id, patch)
        return f"Wall time: 0.0000 seconds\nOutput:\n{output}"

    # -- write_stdin -------------------------------------------------------------------

    async def write_stdin(self, invocation: Any) -> str:
        started = time.monotonic()
        turn = invocation.turn
        limit = self.context.config.background_terminal_max_timeout
        try:
            args = parse_write_stdin_args(invocation.arguments, max_poll_ms=limit)
        except ToolArgumentError as exc:
            return str(exc)
        terminals = self.context.of(turn.thread_id).terminals
        session = terminals.get(args.session_id)
        if session is None:
            return f"write_stdin failed: Unknown process id {args.session_id}"
        if args.chars:
            if not session.tty:
                return (
                    "write_stdin failed: stdin is closed for this session; rerun exec_command "
                    "with tty=true to keep stdin open"
                )
            await self._interaction(turn, session, args.chars)
            try:
                await session.handle.write(args.chars.encode())
            except (OSError, ValueError) as exc:
                return f"write_stdin failed: {exc}"
            await asyncio.sleep(0.1)
        output = await session.collect(args.yield_time_ms / 1000)
        if not args.chars and not session.done.is_set():
            await self._interaction(turn, session, "")
        return self._answer(turn, session, output, started, args.max_output_tokens)

    @staticmethod
    async def _interaction(turn: Any, session: ExecSession, chars: str) -> None:
        await turn.notify(
            "item/commandExecution/terminalInteraction",
            {
                "threadId": turn.thread_id,
                "turnId": session.turn.turn_id,
                "itemId": session.item["id"],
                "processId": str(session.session_id),
                "stdin": chars,
            },
        )


def rejected_text(answer: dict[str, Any]) -> str:
    """What the model is told about a declined command: a reviewer's ``reason``, if it gave one.

    The reference prints the reason inside its error's debug form (the
    guardian's rationale arrives this way).
    """
    reason = answer.get("reason")
    if not isinstance(reason, str) or not reason:
        return REJECTED
    message = _debug_str("Rejected(" + _debug_str(reason) + ")")
    return f"exec_command failed: CreateProcess {{ message: {message} }}"


def _debug_str(text: str) -> str:
    """``text`` quoted and escaped as Rust's ``{:?}`` prints a string."""
    for raw, escaped in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        text = text.replace(raw, escaped)
    return f'"{text}"'


def _item(item_id: str, argv: list[str], cwd: str, script: str) -> dict[str, Any]:
    return {
        "type": "commandExecution",
        "id": item_id or str(uuid.uuid4()),
        "command": shlex_join(argv),
        "cwd": cwd,
        "processId": None,
        "source": "unifiedExecStartup",
        "status": "inProgress",
        "commandActions": parse_command(argv, cwd),
        "aggregatedOutput": None,
        "exitCode": None,
        "durationMs": None,
    }


def _heredoc_patch(cmd: str) -> str | None:
    """The patch of ``apply_patch <<'EOF' ... EOF``, if that is the whole command."""
    text = cmd.strip()
    for name in ("apply_patch", "applypatch"):
        if not text.startswith(name):
            continue
        rest = text[len(name) :].lstrip(" ")
        if not rest.startswith("<<"):
            return None
        header, _, body = rest[2:].partition("\n")
        marker = header.strip().strip("'\"")
        if not marker or not body.rstrip().endswith(marker):
            return None
        return body.rstrip()[: -len(marker)]
    return None
