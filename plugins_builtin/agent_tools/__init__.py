"""The ``agent_tools`` plugin: the agent's shell, patch and interaction tools.

``exec_command`` / ``write_stdin`` (background terminals), ``apply_patch``,
``request_permissions``, ``request_user_input``, ``update_plan`` and
``view_image``, with the approvals they need; ``thread/shellCommand`` and
``thread/backgroundTerminals/*``. See docs/agent_tools.md.
"""

from __future__ import annotations

from .plugin import AgentToolsPlugin

__all__ = ["AgentToolsPlugin"]
