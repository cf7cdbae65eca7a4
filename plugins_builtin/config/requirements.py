"""``configRequirements/read``: the managed constraints of ``requirements.toml``.

Every member of the protocol's ``ConfigRequirements`` is present (null when
requirements.toml does not set it), as the reference answers. Members this
server understands are filled from the file's snake_case keys; members whose
structure it does not use (``application``, ``network``, ``otel``...) stay
null rather than be passed through unchecked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kernel.config import Config

__all__ = ["requirements_payload"]

_SIMPLE = {
    "additionalDeveloperInstructions": "additional_developer_instructions",
    "allowAppshots": "allow_appshots",
    "allowBrowserAndComputerUse": "allow_browser_and_computer_use",
    "allowLoginShell": "allow_login_shell",
    "allowManagedHooksOnly": "allow_managed_hooks_only",
    "allowRemoteControl": "allow_remote_control",
    "allowedApprovalPolicies": "allowed_approval_policies",
    "allowedApprovalsReviewers": "allowed_approvals_reviewers",
    "allowedLoginMethods": "allowed_login_methods",
    "allowedPermissionProfiles": "allowed_permission_profiles",
    "allowedSandboxModes": "allowed_sandbox_modes",
    "allowedWebSearchModes": "allowed_web_search_modes",
    "allowedWindowsSandboxImplementations": "allowed_windows_sandbox_implementations",
    "chatgptBaseUrl": "chatgpt_base_url",
    "checkForUpdateOnStartup": "check_for_update_on_startup",
    "defaultPermissions": "default_permissions",
    "enforceResidency": "enforce_residency",
    "logDir": "log_dir",
    "modelCatalogJson": "model_catalog_json",
    "modelProvider": "model_provider",
    "sqliteHome": "sqlite_home",
}
_UNUSED = (
    "application",
    "autoReview",
    "browserUse",
    "cliAuthCredentialsStore",
    "computerUse",
    "feedback",
    "inAppBrowser",
    "modelProviders",
    "models",
    "network",
    "otel",
)
EVENTS = (
    "PreModelRequest",
    "PostModelRequest",
    "PreToolUse",
    "PermissionRequest",
    "PostToolUse",
    "PreCompact",
    "PostCompact",
    "SessionStart",
    "SessionEnd",
    "UserPromptSubmit",
    "SubagentStart",
    "SubagentStop",
    "Stop",
    "Interrupt",
)


def _handler(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        return None
    kind = raw.get("type")
    if kind == "command":
        return {
            "type": "command",
            "command": str(raw.get("command", "")),
            "commandWindows": raw.get("commandWindows", raw.get("command_windows")),
            "timeoutSec": raw.get("timeout", raw.get("timeoutSec")),
            "async": bool(raw.get("async", False)),
            "statusMessage": raw.get("statusMessage", raw.get("status_message")),
            "additionalContextLimit": raw.get("additionalContextLimit"),
        }
    if kind == "mcp_tool":
        return {
            "type": "mcp_tool",
            "server": str(raw.get("server", "")),
            "tool": str(raw.get("tool", "")),
            "input": dict(raw.get("input") or {}),
            "timeoutSec": raw.get("timeout", raw.get("timeoutSec")),
            "statusMessage": raw.get("statusMessage", raw.get("status_message")),
        }
    if kind in ("prompt", "agent"):
        return {"type": kind}
    return None


def _hooks(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        return None
    result: dict[str, Any] = {
        "managedDir": raw.get("managed_dir"),
        "windowsManagedDir": raw.get("windows_managed_dir"),
    }
    for event in EVENTS:
        groups = []
        for group in raw.get(event) or []:
            if not isinstance(group, Mapping):
                continue
            handlers = [h for h in map(_handler, group.get("hooks") or []) if h is not None]
            matcher = group.get("matcher")
            groups.append(
                {"matcher": matcher if isinstance(matcher, str) else None, "hooks": handlers}
            )
        result[event] = groups
    return result


def requirements_payload(config: Config) -> dict[str, Any]:
    """The ``ConfigRequirementsReadResponse`` for ``config``'s managed layer."""
    managed = next(layer for layer in config.layers() if layer.name == "managed").tree
    if not managed:
        return {"requirements": None, "supportsIndependentSpeedModes": False}
    requirements: dict[str, Any] = {name: None for name in (*_SIMPLE, *_UNUSED)}
    for wire, key in _SIMPLE.items():
        if key in managed:
            requirements[wire] = managed[key]
    if requirements["allowedLoginMethods"] is None:
        requirements["allowedLoginMethods"] = ["api", "chatgpt"]
    features = managed.get("features")
    requirements["featureRequirements"] = (
        {k: v for k, v in features.items() if isinstance(v, bool)}
        if isinstance(features, Mapping)
        else None
    )
    requirements["hooks"] = _hooks(managed.get("hooks"))
    return {"requirements": requirements, "supportsIndependentSpeedModes": False}
