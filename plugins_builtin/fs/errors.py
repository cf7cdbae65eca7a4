"""Filesystem errors as distinct JSON-RPC errors.

The reference answers ``-32603`` with the OS message for every filesystem
failure, so a client cannot tell "not found" from a server fault without
parsing text. Here each condition has its own code; the message names the
condition and the path, and ``data`` carries ``path`` and, for OS errors,
the ``errno`` name. Parameter mistakes (bad base64, copying a directory
without ``recursive``) are ``-32602`` naming the field.
"""

from __future__ import annotations

import errno
from typing import Any

from kernel import RpcError

__all__ = [
    "ALREADY_EXISTS",
    "DIRECTORY_NOT_EMPTY",
    "ERROR_NAMES",
    "IO_ERROR",
    "IS_A_DIRECTORY",
    "NOT_A_DIRECTORY",
    "NOT_FOUND",
    "PERMISSION_DENIED",
    "TOO_LARGE",
    "TOO_MANY_WATCHES",
    "UNSUPPORTED_TYPE",
    "from_os_error",
    "fs_error",
]

NOT_FOUND = -32010
NOT_A_DIRECTORY = -32011
IS_A_DIRECTORY = -32012
PERMISSION_DENIED = -32013
ALREADY_EXISTS = -32014
DIRECTORY_NOT_EMPTY = -32015
TOO_LARGE = -32016
UNSUPPORTED_TYPE = -32017
IO_ERROR = -32018
TOO_MANY_WATCHES = -32019

ERROR_NAMES = {
    NOT_FOUND: "not found",
    NOT_A_DIRECTORY: "not a directory",
    IS_A_DIRECTORY: "is a directory",
    PERMISSION_DENIED: "permission denied",
    ALREADY_EXISTS: "already exists",
    DIRECTORY_NOT_EMPTY: "directory not empty",
    TOO_LARGE: "too large",
    UNSUPPORTED_TYPE: "unsupported file type",
    IO_ERROR: "I/O error",
    TOO_MANY_WATCHES: "too many watches",
}

_BY_ERRNO = {
    errno.ENOENT: NOT_FOUND,
    errno.ENOTDIR: NOT_A_DIRECTORY,
    errno.EISDIR: IS_A_DIRECTORY,
    errno.EACCES: PERMISSION_DENIED,
    errno.EPERM: PERMISSION_DENIED,
    errno.EEXIST: ALREADY_EXISTS,
    errno.ENOTEMPTY: DIRECTORY_NOT_EMPTY,
    errno.EFBIG: TOO_LARGE,
}


def fs_error(code: int, path: str, detail: str = "", **data: Any) -> RpcError:
    """``<condition>: <path>[ (<detail>)]`` with ``data.path``."""
    text = f"{ERROR_NAMES[code]}: {path}"
    if detail:
        text += f" ({detail})"
    return RpcError(code, text, {"path": path, **data})


def from_os_error(exc: OSError, path: str) -> RpcError:
    """Map an OS error to its code; the path is the one the OS names, else ``path``."""
    code = _BY_ERRNO.get(exc.errno or 0, IO_ERROR)
    where = exc.filename if isinstance(exc.filename, str) else path
    name = errno.errorcode.get(exc.errno or 0, "")
    detail = exc.strerror or "" if code == IO_ERROR else ""
    return fs_error(code, where, detail, **({"errno": name} if name else {}))
