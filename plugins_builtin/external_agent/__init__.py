"""The ``external_agent`` family: ``externalAgentConfig/*``, importing another agent's setup.

Detects what Claude Code (``~/.claude`` under ``$HOME``, and repositories'
``.claude``) has that this server can use, and imports it where this server
keeps it: instructions as ``AGENTS.md``, settings and MCP servers in
config.toml, skills, commands (as skills), subagents, hooks, enabled
plugins (through the marketplace family), and sessions as stored
threads. See :mod:`.plugin` and docs/external_agent.md.
"""

from __future__ import annotations

from .plugin import ExternalAgentPlugin

__all__ = ["ExternalAgentPlugin"]
