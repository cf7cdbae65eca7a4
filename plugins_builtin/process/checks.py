"""Validation of process requests, with ``-32602`` errors naming the field.

``sandboxPolicy`` is checked for shape here, so a malformed one is refused
even when no sandbox plugin is loaded; enforcement is the ``sandbox``
service's (see :mod:`.sandboxing`). The error codes of the family are
listed in docs/process.md.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from typing import Any

from kernel import RpcError, invalid_field

__all__ = [
    "SANDBOX_UNAVAILABLE",
    "SPAWN_FAILED",
    "TOO_MANY_PROCESSES",
    "check_argv",
    "check_env",
    "check_sandbox_policy",
    "check_size",
    "spawn_failed",
]

SPAWN_FAILED = -32020
TOO_MANY_PROCESSES = -32021
# A restricted command that cannot be sandboxed here (never run unsandboxed).
SANDBOX_UNAVAILABLE = -32022
_U16 = 65535
_NETWORK = ("restricted", "enabled")


def spawn_failed(argv0: str, exc: OSError) -> RpcError:
    """The child could not be started (missing program, bad cwd, no permission)."""
    reason = exc.strerror or str(exc)
    named = exc.filename if isinstance(exc.filename, str) else ""
    where = f" ({named})" if named and named != argv0 else ""
    data: dict[str, Any] = {"command": argv0}
    if exc.errno:
        data["errno"] = errno.errorcode.get(exc.errno, str(exc.errno))
    return RpcError(SPAWN_FAILED, f"cannot start {argv0!r}: {reason}{where}", data)


def check_argv(argv: list[str]) -> None:
    if not argv:
        raise invalid_field("command", "must not be empty")
    for index, arg in enumerate(argv):
        if "\0" in arg:
            raise invalid_field(f"command[{index}]", "contains a NUL byte")
    if not argv[0]:
        raise invalid_field("command[0]", "must not be empty")


def check_env(env: Mapping[str, str | None] | None) -> None:
    for key, value in (env or {}).items():
        if not key or "=" in key or "\0" in key:
            raise invalid_field(f"env.{key}", "not a valid variable name")
        if value is not None and "\0" in value:
            raise invalid_field(f"env.{key}", "contains a NUL byte")


def check_size(field: str, rows: int, cols: int) -> None:
    for name, value in (("rows", rows), ("cols", cols)):
        if not 0 <= value <= _U16:
            raise invalid_field(f"{field}.{name}", f"must be between 0 and {_U16}")


def check_sandbox_policy(policy: Mapping[str, Any]) -> None:
    """The reference's SandboxPolicy union, by its ``type`` tag."""
    kind = policy.get("type")
    fields: dict[str, Any] = {"type": None}
    if kind == "dangerFullAccess":
        pass
    elif kind == "readOnly":
        fields["networkAccess"] = bool
    elif kind == "externalSandbox":
        fields["networkAccess"] = _NETWORK
    elif kind == "workspaceWrite":
        fields.update(
            networkAccess=bool,
            excludeSlashTmp=bool,
            excludeTmpdirEnvVar=bool,
            writableRoots=list,
        )
    else:
        raise invalid_field(
            "sandboxPolicy.type",
            "expected one of 'dangerFullAccess', 'readOnly', 'externalSandbox', "
            f"'workspaceWrite', got {kind!r}",
        )
    for key, value in policy.items():
        if key not in fields:
            raise invalid_field(f"sandboxPolicy.{key}", f"unknown field for type {kind!r}")
        want = fields[key]
        if want is bool and type(value) is not bool:
            raise invalid_field(f"sandboxPolicy.{key}", "expected a boolean")
        if isinstance(want, tuple) and value not in want:
            raise invalid_field(f"sandboxPolicy.{key}", f"expected one of {', '.join(want)}")
        if want is list:
            if type(value) is not list:
                raise invalid_field(f"sandboxPolicy.{key}", "expected an array of absolute paths")
            for index, root in enumerate(value):
                if type(root) is not str or not os.path.isabs(root):
                    raise invalid_field(
                        f"sandboxPolicy.{key}[{index}]", "expected an absolute path"
                    )
