"""One skill on disk: ``SKILL.md`` (YAML frontmatter) and its optional ``agents/openai.yaml``.

A skill is a directory holding a ``SKILL.md`` whose file starts with a YAML
frontmatter block between two ``---`` lines::

    ---
    name: greet                     # optional: the directory's name otherwise
    description: Say hello nicely   # required
    metadata:
      short-description: hello      # optional
    ---
    # instructions for the model...

Beside it, ``agents/openai.yaml`` may add an ``interface`` (display name,
short description, icons under the skill's ``assets/``, brand color, default
prompt), ``dependencies.tools`` and ``policy.allow_implicit_invocation``.
That file is optional metadata: a broken one is logged and ignored, never
an error for the skill (as the reference does). Parsing is pure (no I/O but
reading the two files) and runs in the kernel's blocking threads.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

import attrs
import yaml

__all__ = ["MAX_DESCRIPTION", "MAX_NAME", "Skill", "SkillParseError", "parse_skill"]

log = logging.getLogger("plugins.skills")

MAX_NAME = 64
MAX_DESCRIPTION = 1024
MAX_FILE_BYTES = 1 << 20  # a SKILL.md larger than this is not a skill file
SKILL_FILE = "SKILL.md"


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A safe loader with YAML 1.2 booleans: ``name: off`` is the string "off".

    The reference reads it that way too.
    """


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_SPACES = re.compile(r"\s+")


class SkillParseError(Exception):
    """A ``SKILL.md`` that is not a usable skill; the message says why (shown to clients)."""


@attrs.frozen
class Skill:
    """A parsed skill, as ``skills/list`` and the model see it.

    ``path`` is the canonical path of its ``SKILL.md``; ``name`` carries the
    plugin namespace (``<plugin>:<skill>``) for a plugin's skill.
    """

    name: str
    description: str
    path: str
    scope: str
    short_description: str | None = None
    interface: dict[str, Any] | None = None
    dependencies: dict[str, Any] | None = None
    plugin_id: str | None = None
    allow_implicit: bool = True

    def wire(self, enabled: bool) -> dict[str, Any]:
        """The protocol's ``SkillMetadata`` (optional members left out when unset)."""
        out: dict[str, Any] = {"name": self.name, "description": self.description}
        if self.short_description is not None:
            out["shortDescription"] = self.short_description
        if self.interface is not None:
            out["interface"] = self.interface
        if self.dependencies is not None:
            out["dependencies"] = self.dependencies
        out["path"] = self.path
        out["scope"] = self.scope
        out["enabled"] = enabled
        out["pluginId"] = self.plugin_id
        return out


def _single_line(value: Any) -> str:
    return _SPACES.sub(" ", str(value).replace(' in "<unicode string>"', "")).strip()


def _frontmatter(text: str) -> str:
    """The YAML between the opening and closing ``---`` lines."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        raise SkillParseError("missing YAML frontmatter delimited by ---")
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            return "\n".join(lines[1:index])
    raise SkillParseError("missing YAML frontmatter delimited by ---")


def _limited(field: str, value: str, limit: int) -> str:
    if len(value) > limit:
        raise SkillParseError(f"invalid {field}: longer than {limit} characters")
    return value


def parse_skill(
    skill_md: str,
    scope: str,
    *,
    plugin_id: str | None = None,
    namespace: str | None = None,
    plugin_root: str | None = None,
) -> Skill:
    """Parse the skill whose ``SKILL.md`` is at ``skill_md`` (a canonical path).

    Raises :class:`SkillParseError` (or ``OSError``) for a file that is not a
    usable skill. ``namespace`` prefixes the name (a plugin's skills).
    """
    with open(skill_md, "rb") as handle:
        raw = handle.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise SkillParseError(f"file is larger than {MAX_FILE_BYTES} bytes")
    text = raw.decode("utf-8", errors="replace")
    try:
        data = yaml.load(_frontmatter(text), Loader=_Loader)
    except yaml.YAMLError as exc:
        raise SkillParseError(f"invalid YAML: {_single_line(exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SkillParseError("invalid YAML: the frontmatter is not a mapping")
    if data.get("description") is None:
        raise SkillParseError("missing field `description`")
    skill_dir = os.path.dirname(skill_md)
    base = _single_line(data["name"]) if data.get("name") is not None else ""
    base = base or _single_line(os.path.basename(skill_dir)) or "skill"
    name = f"{namespace}:{base}" if namespace else base
    description = _limited("description", _single_line(data["description"]), MAX_DESCRIPTION)
    metadata = data.get("metadata")
    short = metadata.get("short-description") if isinstance(metadata, dict) else None
    short_text = _single_line(short) if short is not None else ""
    extra = _metadata_file(skill_dir, plugin_root)
    return Skill(
        name=_limited("name", name, MAX_NAME),
        description=description,
        path=skill_md,
        scope=scope,
        short_description=_limited("metadata.short-description", short_text, MAX_DESCRIPTION)
        if short_text
        else None,
        interface=extra.get("interface"),
        dependencies=extra.get("dependencies"),
        plugin_id=plugin_id,
        allow_implicit=extra.get("allow_implicit", True),
    )


def _metadata_file(skill_dir: str, plugin_root: str | None) -> dict[str, Any]:
    """``agents/openai.yaml``, resolved; empty when absent or unusable (logged)."""
    path = os.path.join(skill_dir, "agents", "openai.yaml")
    try:
        with open(path, "rb") as handle:
            data = yaml.load(handle.read(MAX_FILE_BYTES), Loader=_Loader)
    except FileNotFoundError:
        return {}
    except (OSError, yaml.YAMLError) as exc:
        log.warning("ignoring %s: %s", path, _single_line(exc))
        return {}
    if not isinstance(data, dict):
        return {}
    out: dict[str, Any] = {}
    interface = _interface(data.get("interface"), skill_dir, plugin_root)
    if interface is not None:
        out["interface"] = interface
    tools = _dependency_tools(data.get("dependencies"))
    if tools:
        out["dependencies"] = {"tools": tools}
    policy = data.get("policy")
    if isinstance(policy, dict) and policy.get("allow_implicit_invocation") is False:
        out["allow_implicit"] = False
    return out


def _text(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    text = _single_line(value)
    return text[:limit] if text else None


def _interface(raw: Any, skill_dir: str, plugin_root: str | None) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        return None
    found = {
        "displayName": _text(raw.get("display_name"), MAX_NAME),
        "shortDescription": _text(raw.get("short_description"), MAX_DESCRIPTION),
        "iconSmall": _asset(raw.get("icon_small"), skill_dir, plugin_root),
        "iconLarge": _asset(raw.get("icon_large"), skill_dir, plugin_root),
        "brandColor": _color(raw.get("brand_color")),
        "defaultPrompt": _text(raw.get("default_prompt"), MAX_DESCRIPTION),
    }
    if not any(v is not None for v in found.values()):
        return None
    return {**found, "iconSmallUrl": None, "iconLargeUrl": None}


def _color(value: Any) -> str | None:
    if isinstance(value, str) and re.fullmatch(r"#[0-9A-Fa-f]{6}", value.strip()):
        return value.strip()
    return None


def _asset(value: Any, skill_dir: str, plugin_root: str | None) -> str | None:
    """An icon path: relative, under the skill's ``assets/`` (or the plugin's ``assets/``)."""
    if not isinstance(value, str) or not value or os.path.isabs(value):
        return None
    resolved = os.path.normpath(os.path.join(skill_dir, value))
    allowed = [os.path.join(skill_dir, "assets")]
    if plugin_root is not None:
        allowed.append(os.path.join(plugin_root, "assets"))
    if any(resolved.startswith(base + os.sep) for base in allowed):
        return resolved
    return None


def _dependency_tools(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, dict) or not isinstance(raw.get("tools"), list):
        return []
    tools = []
    for entry in raw["tools"]:
        if not isinstance(entry, dict):
            continue
        kind, value = _text(entry.get("type"), MAX_NAME), _text(entry.get("value"), 1024)
        if kind is None or value is None:
            continue
        tool: dict[str, Any] = {"type": kind, "value": value}
        for key in ("description", "transport", "command", "url"):
            text = _text(entry.get(key), 1024)
            if text is not None:
                tool[key] = text
        tools.append(tool)
    return tools
