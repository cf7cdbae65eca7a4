"""The hooks the ``threads`` family publishes, for other plugins to implement.

The contract is plain data in public formats, so no plugin imports this
family: a model request is a Responses API request body, a model's answer is
a stream of Responses API server-sent events (as dicts), a tool is a
Responses API tool definition plus an async callable. Implement these hooks
by name (pluggy matches implementations to specs by name); the threads plugin
adds the specs when it loads and calls them one plugin at a time through
``kernel.plugins``.

Hooks:

* :meth:`ThreadsSpec.threads_model_provider`: who knows a model provider id
  (the ``models`` plugin: every ``[model_providers.<id>]`` and the built-in
  ``openai``).
* :meth:`ThreadsSpec.threads_model_stream`: who sends a model request and
  streams its events.
* :meth:`ThreadsSpec.threads_tools`: tools offered to the model for a turn
  (``agent_tools``, ``mcp``, ``goals`` contribute).
* :meth:`ThreadsSpec.threads_review_approval`: who decides an approval
  instead of the client (``guardian`` answers under ``auto_review``).
* :meth:`ThreadsSpec.threads_thread_released`: a thread has nobody left
  (``agent_tools`` stops its background terminals).
* :meth:`ThreadsSpec.threads_turn_finished`: a turn ended (``goals``
  accounts its tokens and may continue).
* :meth:`ThreadsSpec.threads_context`: context for the model's requests of
  a turn (``skills`` lists the skills, ``marketplace`` the plugin bundles).
* Lifecycle: :meth:`ThreadsSpec.threads_user_input`,
  :meth:`ThreadsSpec.threads_tool_call`, :meth:`ThreadsSpec.threads_tool_result`,
  :meth:`ThreadsSpec.threads_turn_stopping` (``hooks`` runs the user's hook
  commands there).

Families also reach loaded threads through ``kernel.services["threads"]``
(:mod:`.published`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from kernel import hookspec, may_be_async

__all__ = ["ThreadsSpec"]


class ThreadsSpec:
    """Hook specifications of the threads family (see each method)."""

    @hookspec
    def threads_model_provider(self, provider_id: str) -> Mapping[str, Any] | None:
        """Describe model provider ``provider_id``, if this plugin serves it.

        When: when a thread is started, resumed or forked with a provider
        (its ``modelProvider`` param, else config ``model_provider``, else
        ``"openai"``), and by ``modelProvider/list``-style callers.

        Parameters: ``provider_id``, the key of ``[model_providers.<id>]``.

        Returns: None when this plugin does not know the id; else a mapping
        with at least ``id``, ``name`` (display name) and ``wireApi``
        (``"responses"`` or ``"chat"``), and ``requiresOpenaiAuth`` (bool).
        The first plugin (in load order) that answers describes it.

        Errors: logged with traceback; the next plugin is asked.
        """

    @may_be_async
    @hookspec
    def threads_model_metadata(self, provider_id: str, model: str) -> Mapping[str, Any] | None:
        """What is known about ``model`` of ``provider_id``. May be async.

        When: when a turn starts (the context window decides when the turn
        compacts, and is reported as ``modelContextWindow``), unless
        config.toml sets ``model_context_window``.

        Parameters: ``provider_id``; ``model``, the model slug.

        Returns: None when this plugin does not serve the provider or knows
        nothing; else a mapping with ``contextWindow`` (tokens). The first
        plugin that answers decides.

        Errors: logged; the window is unknown (no automatic compaction unless
        ``model_auto_compact_token_limit`` is set).
        """

    @hookspec
    def threads_model_stream(
        self, provider_id: str, body: Mapping[str, Any], headers: Mapping[str, str], context: Any
    ) -> AsyncIterator[Mapping[str, Any]] | None:
        """Send one model request and stream its events.

        When: for every model request of a turn (and of compaction), after
        the request is built; a steered or interrupted turn closes the
        iterator (``aclose()``), which must cancel the HTTP request.

        Parameters: ``provider_id`` as above; ``body``, a Responses API
        request body (``model``, ``input``, ``tools``, ``tool_choice``,
        ``parallel_tool_calls``, ``reasoning``, ``store``, ``stream``,
        ``include``, ``prompt_cache_key``, ``text``...), which a provider
        speaking another wire API translates; ``headers``, extra request
        headers the reference sends (``session-id``, ``thread-id``,
        ``originator``, ``User-Agent``...); ``context``, the request's
        origin for plugins that decorate outbound requests: an object with
        ``connection`` (the connection that started the turn, or None),
        ``thread_id``, ``turn_id`` and ``purpose`` (``"model"``, or
        ``"compaction"`` for a summary request).

        Returns: None when this plugin does not serve ``provider_id``; else
        an async iterator of Responses API stream events as dicts
        (``{"type": "response.output_text.delta", "delta": ..., "item_id": ...}``,
        ``response.output_item.added``/``done``, reasoning deltas,
        ``response.completed`` with ``usage``...). Failures are events too:
        after the configured retries, the iterator yields one
        ``{"type": "response.failed", "response": {"error": {"code": ...,
        "message": ...}}}`` whose message says what to configure (a missing
        API key names its environment variable), then ends. The first
        plugin (in load order) that answers serves the request.

        Errors: an exception raised while creating or iterating fails the
        turn with that plugin's name in the log and a generic message to the
        client.
        """

    @may_be_async
    @hookspec
    def threads_tools(self, turn: Any) -> list[Mapping[str, Any]] | None:
        """Offer tools to the model for one turn. May be async.

        When: once per turn, before its first model request.

        Parameters: ``turn``, the running turn: ``turn.thread_id``,
        ``turn.turn_id``, ``turn.cwd``, ``turn.settings`` (model, approval
        policy, sandbox...), and the methods a tool uses to report progress
        (documented in docs/threads.md, "Tools").

        Returns: None, or a list of tools, each a mapping with ``spec`` (the
        Responses API tool definition sent to the model: ``{"type":
        "function", "name", "description", "parameters", "strict"}``,
        ``{"type": "custom", ...}`` or ``{"type": "namespace", ...}``) and
        ``call``, an async callable ``call(invocation) -> output``.
        ``invocation`` has ``call_id``, ``name``, ``namespace``,
        ``arguments`` (the raw string) and ``turn``; ``output`` is the
        string (or list of content items) returned to the model. Tools of
        all plugins are offered together, in load order; a name offered
        twice is kept once (the first) and the duplicate logged.

        Errors: logged with traceback; the turn runs without that plugin's
        tools.
        """

    @may_be_async
    @hookspec
    def threads_review_approval(
        self,
        turn: Any,
        kind: str,
        params: Mapping[str, Any],
        item: Mapping[str, Any] | None,
        history: Sequence[Mapping[str, Any]],
    ) -> Mapping[str, Any] | None:
        """Decide an approval the turn needs, instead of asking the client. May be async.

        When: every time a tool asks for approval (``turn.ask_approval``),
        before the client is asked; ``turn.settings["approvals_reviewer"]``
        says who the user wants to review (``"user"`` or ``"auto_review"``).
        Tool calls of one model answer run concurrently, so one turn may
        have several reviews in flight.

        Parameters: ``turn`` (as for :meth:`threads_tools`); ``kind``,
        ``"command"``, ``"fileChange"``, ``"permissions"``, or from the mcp
        family ``"mcpToolCall"`` and ``"mcpElicitation"``; ``params``,
        the server request the client would get
        (``item/commandExecution/requestApproval`` params...); ``item``, the
        started item the approval is about (``params["itemId"]``, wire form:
        the ``fileChange`` item carries the changes), or None; ``history``,
        a snapshot of the model's view of the thread (Responses API input
        items: user and assistant messages, tool calls and outputs). An
        implementation may take only the parameters it needs.

        Returns: None to let the client decide; else the answer the client
        would give (``{"decision": "accept"}``...; for ``"permissions"`` a
        ``PermissionsRequestApprovalResponse``, ``{"permissions": {...},
        "scope": "turn"}``). A ``decline`` may carry ``reason``: the text
        the tool gives the model instead of its own rejection text (the
        guardian's rationale reaches the model this way). The first plugin
        (in load order) that answers decides.

        Errors: the approval fails closed (declined) and the failure is
        logged; the client is not asked.
        """

    @may_be_async
    @hookspec
    def threads_thread_released(self, thread_id: str) -> None:
        """A thread has nobody left: stop what you keep running for it. May be async.

        When: the thread's last subscriber left (``thread/unsubscribe``, or
        its connection closed), and again when the thread is unloaded or
        archived. A thread may be released more than once (a client
        subscribes again, then leaves); do nothing when there is nothing
        left to stop. At server shutdown, plugins clean up in their own
        ``kernel_shutdown`` instead.

        Parameters: ``thread_id``.

        Returns: nothing. Every plugin is called.

        Errors: logged with traceback; the other plugins are still called.
        """

    @may_be_async
    @hookspec
    def threads_turn_finished(
        self, turn: Any, status: str, token_usage: Mapping[str, int] | None
    ) -> None:
        """A turn ended. May be async.

        When: right after its ``turn/completed`` was sent, whatever the
        status; the thread is idle again (a plugin may start another turn
        through ``kernel.services["threads"].start_turn``).

        Parameters: ``turn`` (as for :meth:`threads_tools`; its methods that
        notify still work); ``status``, ``"completed"``, ``"interrupted"``
        or ``"failed"``; ``token_usage``, the turn's own usage summed over
        its model requests (``totalTokens``, ``inputTokens``...), or None
        when no request reported usage.

        Returns: nothing. Every plugin is called.

        Errors: logged with traceback; the other plugins are still called.
        """

    @may_be_async
    @hookspec
    def threads_context(
        self, turn: Any, user_input: Sequence[Mapping[str, Any]]
    ) -> list[Mapping[str, Any]] | None:
        """Add context to the model's requests of one turn. May be async.

        When: once per turn that asks the model (not ``thread/shellCommand``
        turns), before its first model request, after the user's message
        joined the history and after ``threads_tools``.

        Parameters: ``turn`` (as for :meth:`threads_tools`; ``turn.cwd`` is
        the thread's working directory); ``user_input``, the turn's own
        ``UserInput`` items as the client sent them in ``turn/start``
        (``text``, ``skill``, ``mention``...; empty for a turn started
        without user input; steer input is not included).

        Returns: None, or a list of Responses API input items (usually
        ``{"type": "message", "role": "developer", "content": [{"type":
        "input_text", "text": ...}]}``). They are placed in every request
        of the turn after the base and developer instructions and before
        the environment context, in plugin load order; they are not
        recorded in the thread's history, so each turn asks again. What
        must stay in the conversation (the body of a skill the user named)
        goes through ``await turn.add_to_history(items)`` instead, which
        places it after the user's message.

        Errors: logged with traceback; the turn runs without that plugin's
        context.
        """

    # -- lifecycle -----------------------------------------------------------------------

    @may_be_async
    @hookspec
    def threads_user_input(
        self, turn: Any, user_input: Sequence[Mapping[str, Any]]
    ) -> Mapping[str, Any] | None:
        """Look at the user's input before the model sees it. May be async.

        When: for the input of ``turn/start`` and of each ``turn/steer``,
        right after its ``userMessage`` item completed and before it joins the
        model's history.

        Parameters: ``turn`` (as for :meth:`threads_tools`); ``user_input``,
        the ``UserInput`` items as the client sent them.

        Returns: None, or a mapping with ``drop`` (true: the model never sees
        this input; when a turn's own input is dropped and nothing else was
        given, the turn ends without a model request) and ``items``
        (Responses API input items placed after the input, e.g. a developer
        message with context). Every plugin is called; any ``drop`` drops,
        ``items`` of all plugins are added in load order.

        Errors: logged with traceback; that plugin's answer is ignored.
        """

    @may_be_async
    @hookspec
    def threads_tool_call(self, turn: Any, call: Any) -> Any:
        """Before a tool call of the model runs. May be async.

        When: for every call of a model answer (calls of one answer run
        concurrently), before it reaches its tool (a plugin tool, a dynamic
        tool of the client, or an unknown name).

        Parameters: ``turn``; ``call`` with ``name``, ``namespace`` (or
        None), ``call_id``, ``kind`` (``function_call`` or
        ``custom_tool_call``) and ``arguments`` (the raw JSON text, or the
        freeform input of a custom tool).

        Returns: None to let the call run; else the output the model gets
        instead (a string, or what a tool would return), and the call does
        not run. The first plugin (in load order) that answers decides.

        Errors: logged with traceback; the call runs.
        """

    @may_be_async
    @hookspec
    def threads_tool_result(self, turn: Any, call: Any, output: Any) -> Mapping[str, Any] | None:
        """After a tool call ran. May be async.

        When: for every call that ran (not for calls
        :meth:`threads_tool_call` replaced), with the output its tool
        returned, before it goes back to the model.

        Parameters: ``turn``; ``call`` (as for :meth:`threads_tool_call`);
        ``output``, what the tool returned.

        Returns: None, or a mapping with ``output`` (replaces what the model
        gets; the first plugin that replaces wins) and ``items`` (Responses
        API input items added after all outputs of the round, in load order).

        Errors: logged with traceback; that plugin's answer is ignored.
        """

    @may_be_async
    @hookspec
    def threads_turn_stopping(self, turn: Any, last_message: str | None) -> list[Any] | None:
        """The model answered without tool calls: the turn is about to end. May be async.

        When: each time a model answer asks for no tool and no steer input
        is waiting (so possibly several times in one turn, when plugins keep
        it going); not for interrupted or failed turns.

        Parameters: ``turn``; ``last_message``, the text of the turn's last
        agent message, or None.

        Returns: None to let the turn end; or Responses API input items
        (usually one user message) added to the history, after which the
        model is asked again. Every plugin is called and the items of all are
        added. ``kernel_plugins.threads.max_model_requests_per_turn`` still
        bounds the turn.

        Errors: logged with traceback; that plugin's answer is ignored.
        """

    @may_be_async
    @hookspec
    def threads_thread_resumed(self, thread_id: str, connection: Any) -> None:
        """A client resumed a thread. May be async.

        When: after the ``thread/resume`` answer and its own notifications
        were sent to ``connection``.

        Parameters: ``thread_id``; ``connection``, the client that resumed
        (send it what it needs to show the thread's state: the goals family
        sends the thread's goal).

        Returns: nothing; every plugin is called.

        Errors: logged with traceback; the other plugins are still called.
        """
