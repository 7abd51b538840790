"""Error policy: every failed C call raises ``AclnnError`` carrying the status code, the C function and the
runtime's message (``aclGetRecentErrMsg``); the facade's own argument checks raise ``ArgumentError`` (a
``ValueError``) naming the parameter. A failed creation creates nothing: objects are only kept once their C
call succeeded."""
from __future__ import annotations

from .capi import ffi, lib

_STATUS_NAMES = {
    0: "ACL_SUCCESS",
    161001: "ACLNN_ERR_PARAM_NULLPTR",
    161002: "ACLNN_ERR_PARAM_INVALID",
    361001: "ACLNN_ERR_RUNTIME_ERROR",
    561000: "ACLNN_ERR_INNER",
    561001: "ACLNN_ERR_INNER_INFERSHAPE_ERROR",
    561002: "ACLNN_ERR_INNER_TILING_ERROR",
    561003: "ACLNN_ERR_INNER_FIND_KERNEL_ERROR",
    561101: "ACLNN_ERR_INNER_CREATE_EXECUTOR",
    561103: "ACLNN_ERR_INNER_NULLPTR",
    100000: "ACL_ERROR_INVALID_PARAM",
    100001: "ACL_ERROR_UNINITIALIZE",
    100002: "ACL_ERROR_REPEAT_INITIALIZE",
    100037: "ACL_ERROR_REPEAT_FINALIZE",
    200000: "ACL_ERROR_BAD_ALLOC",
    200005: "ACL_ERROR_INVALID_RESOURCE_HANDLE",
    107000: "ACL_ERROR_RT_PARAM_INVALID",
    107001: "ACL_ERROR_RT_INVALID_DEVICEID",
    107002: "ACL_ERROR_RT_CONTEXT_NULL",
    207001: "ACL_ERROR_RT_MEMORY_ALLOCATION",
}


def status_name(status: int) -> str:
    return _STATUS_NAMES.get(int(status), "unknown status")


class AclnnError(RuntimeError):
    """A C API call returned a non-zero status."""

    def __init__(self, status: int, api: str, message: str = ""):
        self.status = int(status)
        self.api = api
        self.message = message
        text = f"{api} failed with status {self.status} ({status_name(self.status)})"
        super().__init__(f"{text}: {message}" if message else text)


class ArgumentError(ValueError):
    """An argument broke a rule the facade checks before calling C; ``.param`` names it."""

    def __init__(self, param: str, message: str):
        self.param = param
        super().__init__(f"{param}: {message}")


def recent_message() -> str:
    p = lib.aclGetRecentErrMsg()
    return ffi.string(p).decode("utf-8", "replace") if p != ffi.NULL else ""


def check(status: int, api: str) -> None:
    """Raise AclnnError for a non-zero status of the C function `api`."""
    if status != 0:
        raise AclnnError(status, api, recent_message())
