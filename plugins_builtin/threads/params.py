"""Params of the thread and turn methods, with the reference protocol's fields.

Every field the reference schema (0.169.0) defines is declared, so any
client's request structures; the ones this server does not act on are
accepted and ignored (docs/threads.md lists them). Fields the reference
gates behind ``experimentalApi`` are gated here too. Unions the schema
defines as tagged objects (user input, sandbox policy, approval policy,
dynamic tools) are taken as JSON values and checked in
:mod:`.checks`, which names the offending field.
"""

from __future__ import annotations

from typing import Any

import attrs

from kernel import field

__all__ = [
    "UNSET",
    "ThreadArchiveParams",
    "ThreadCompactStartParams",
    "ThreadForkParams",
    "ThreadItemsListParams",
    "ThreadItemsReadParams",
    "ThreadListParams",
    "ThreadLoadedListParams",
    "ThreadMetadataUpdateParams",
    "ThreadReadParams",
    "ThreadReadStateUpdateParams",
    "ThreadResumeParams",
    "ThreadSetNameParams",
    "ThreadStartParams",
    "ThreadTurnsListParams",
    "ThreadUnsubscribeParams",
    "TurnInterruptParams",
    "TurnStartParams",
    "TurnSteerParams",
]


class _Unset:
    """A member the client left out (``null`` means something else: clear it)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def _exp(default: Any = None) -> Any:
    return field(default=default, experimental=True)


@attrs.frozen(kw_only=True)
class _ThreadOverrides:
    """What thread/start, resume and fork all accept: the thread's settings."""

    model: str | None = None
    model_provider: str | None = None
    cwd: str | None = None
    approval_policy: Any = None
    approvals_reviewer: str | None = None
    sandbox: str | None = None
    config: dict[str, Any] | None = None
    base_instructions: str | None = None
    developer_instructions: str | None = None
    service_tier: str | None = None
    permissions: str | None = _exp()
    runtime_workspace_roots: list[str] | None = _exp()


@attrs.frozen(kw_only=True)
class ThreadStartParams(_ThreadOverrides):
    """``thread/start``."""

    personality: str | None = None
    ephemeral: bool | None = None
    service_name: str | None = None
    session_start_source: str | None = None
    thread_source: str | None = None
    dynamic_tools: list[Any] | None = _exp()
    allow_provider_model_fallback: bool | None = _exp()
    daybreak_enabled: bool | None = _exp()
    environments: list[Any] | None = _exp()
    experimental_raw_events: bool | None = _exp()
    history_mode: str | None = _exp()
    mock_experimental_field: str | None = _exp()
    multi_agent_mode: str | None = _exp()
    project_id: str | None = _exp()
    selected_capability_roots: list[Any] | None = _exp()


@attrs.frozen(kw_only=True)
class ThreadResumeParams(_ThreadOverrides):
    """``thread/resume``."""

    thread_id: str
    personality: str | None = None
    exclude_turns: bool = False
    history: list[Any] | None = _exp()
    initial_turns_page: Any = _exp()
    path: str | None = _exp()


@attrs.frozen(kw_only=True)
class ThreadForkParams(_ThreadOverrides):
    """``thread/fork``."""

    thread_id: str
    ephemeral: bool = False
    exclude_turns: bool = False
    last_turn_id: str | None = None
    thread_source: str | None = None
    attach_to_source: bool | None = _exp()
    before_turn_id: str | None = _exp()
    defer_goal_continuation: bool | None = _exp()
    experimental_disable_prediction_mcp: bool | None = _exp()
    experimental_prediction_mode: bool | None = _exp()
    path: str | None = _exp()


@attrs.frozen
class ThreadReadParams:
    """``thread/read``."""

    thread_id: str
    include_turns: bool = False


@attrs.frozen
class ThreadListParams:
    """``thread/list``."""

    cursor: str | None = None
    limit: int | None = None
    sort_key: str | None = None
    sort_direction: str | None = None
    model_providers: list[str] | None = None
    source_kinds: list[str] | None = None
    archived: bool | None = None
    cwd: Any = None
    search_term: str | None = None
    use_state_db_only: bool = False
    current_account_only: bool = False
    excluded_thread_ids: list[str] | None = None
    originators: list[str] | None = None
    section_id: str | None = None
    ancestor_thread_id: str | None = _exp()
    attached_to_thread_id: str | None = _exp()
    include_attached_threads: bool | None = _exp()
    parent_thread_id: str | None = _exp()
    project_id: str | None = _exp()


@attrs.frozen
class ThreadLoadedListParams:
    """``thread/loaded/list``."""

    cursor: str | None = None
    limit: int | None = None


@attrs.frozen
class ThreadArchiveParams:
    """``thread/archive``, ``thread/unarchive``."""

    thread_id: str


@attrs.frozen
class ThreadUnsubscribeParams:
    """``thread/unsubscribe``."""

    thread_id: str


@attrs.frozen
class ThreadSetNameParams:
    """``thread/name/set``."""

    thread_id: str
    name: str


@attrs.frozen
class ThreadMetadataUpdateParams:
    """``thread/metadata/update``: omitted fields stay, ``null`` clears."""

    thread_id: str
    git_info: Any = UNSET
    daybreak_enabled: bool | None = _exp()
    project_id: str | None = _exp()


@attrs.frozen
class ThreadReadStateUpdateParams:
    """``thread/readState/update`` (experimental)."""

    thread_id: str
    expected_revision: str
    operation: dict[str, Any]


@attrs.frozen
class ThreadTurnsListParams:
    """``thread/turns/list``."""

    thread_id: str
    cursor: str | None = None
    limit: int | None = None
    items_view: str | None = None
    sort_direction: str | None = None


@attrs.frozen
class ThreadItemsListParams:
    """``thread/items/list``."""

    thread_id: str
    turn_id: str | None = None
    cursor: Any = None
    limit: int | None = None
    sort_direction: str | None = None
    defer_output: Any = None


@attrs.frozen
class ThreadItemsReadParams:
    """``thread/items/read`` (experimental)."""

    thread_id: str
    turn_id: str
    item_ids: list[str]


@attrs.frozen
class TurnStartParams:
    """``turn/start``: input plus per-turn overrides that persist for later turns."""

    thread_id: str
    input: list[Any]
    model: str | None = None
    effort: str | None = None
    summary: str | None = None
    cwd: str | None = None
    approval_policy: Any = None
    approvals_reviewer: str | None = None
    sandbox_policy: dict[str, Any] | None = None
    personality: str | None = None
    output_schema: Any = None
    client_user_message_id: str | None = None
    disabled_plugin_ids: list[str] | None = None
    parent_turn_id: str | None = None
    root_turn_id: str | None = None
    service_tier: str | None = None
    service_tier_for_turn: str | None = None
    tool_output: Any = None
    turn_trigger: str | None = None
    additional_context: dict[str, Any] | None = _exp()
    collaboration_mode: Any = _exp()
    cyber_access_program: Any = _exp()
    environments: list[Any] | None = _exp()
    multi_agent_mode: str | None = _exp()
    permissions: str | None = _exp()
    responsesapi_client_metadata: dict[str, str] | None = _exp()
    responsesapi_client_metadata_patch: dict[str, str] | None = _exp()
    runtime_workspace_roots: list[str] | None = _exp()


@attrs.frozen
class TurnSteerParams:
    """``turn/steer``."""

    thread_id: str
    input: list[Any]
    expected_turn_id: str
    client_user_message_id: str | None = None
    additional_context: dict[str, Any] | None = _exp()
    responsesapi_client_metadata: dict[str, str] | None = _exp()
    responsesapi_client_metadata_patch: dict[str, str] | None = _exp()


@attrs.frozen
class TurnInterruptParams:
    """``turn/interrupt``."""

    thread_id: str
    turn_id: str


@attrs.frozen
class ThreadCompactStartParams:
    """Compact a loaded thread's history now."""

    thread_id: str
