"""Error policy: every failed C call raises ``AclnnError`` carrying the status code, the C function and the
runtime's message (``aclGetRecentErrMsg``); the facade's own argument checks raise ``ArgumentError`` (a
``ValueError``) naming the parameter. A failed creation creates nothing: objects are only kept once their C
call succeeded."""
from __future__ import annotations

import functools
import re

from .capi import ffi, lib

_PREFIXES = ("ACL_SUCCESS", "ACL_ERROR_", "ACLNN_ERR_", "ACLNN_SUCCESS")


@functools.lru_cache(maxsize=1)
def _status_names() -> dict:
    """Status code -> name, from the ``#define`` constants of include/ (the headers are the source of truth)."""
    from .capi import cdef_source

    names: dict = {}
    found = re.findall(r"(?:#define\s+|static\s+const\s+int\s+)([A-Z_0-9]+)\s*=?\s*(-?\d+)", cdef_source())
    for name, value in found:
        if name.startswith(_PREFIXES) and "CONFILICT" not in name:  # CANN keeps a misspelt alias
            names.setdefault(int(value), name)
    names[0] = "ACL_SUCCESS"  # ACL_ERROR_NONE and ACLNN_SUCCESS are its aliases
    return names


def status_name(status: int) -> str:
    return _status_names().get(int(status), "unknown status")


class AclnnError(RuntimeError):
    """A C API call returned a non-zero status."""

    def __init__(self, status: int, api: str, message: str = "", *, c_message: str | None = None):
        self.status = int(status)
        self.api = api
        self.message = message
        self.c_message = message if c_message is None else c_message  # the runtime's text, with C names
        text = f"{api} failed with status {self.status} ({status_name(self.status)})"
        super().__init__(f"{text}: {message}" if message else text)


class ArgumentError(ValueError):
    """An argument broke a rule the facade checks before calling C; ``.param`` names it."""

    def __init__(self, param: str, message: str):
        self.param = param
        super().__init__(f"{param}: {message}")


def recent_message() -> str:
    """The newest error text of this thread (the runtime keeps older ones after it, one per line, as CANN's
    does)."""
    p = lib.aclGetRecentErrMsg()
    return ffi.string(p).decode("utf-8", "replace").split("\n", 1)[0] if p != ffi.NULL else ""


_recover = None  # set by _runtime: re-initialises after someone's aclFinalize (see recover_if_finalized)


def check(status: int, api: str) -> None:
    """Raise AclnnError for a non-zero status of the C function `api`. A status saying that the runtime was
    finalized first initialises it again, so that the next call works (this one still raises)."""
    if status != 0:
        message = recent_message()
        if _recover is not None:
            _recover(status)
        raise AclnnError(status, api, message)
