"""aclnn_moe: Huawei Ascend's aclnn Mixture-of-Experts operators from Python.

Three levels:
  * ``aclnn_moe.capi``: the C API 1:1 (cffi ABI mode) on the active backend (CANN, or the embedded host runtime);
  * operator functions (``moe_gating_top_k`` ...) taking numpy / torch / DLPack / DeviceArray tensors and
    returning the caller's kind, and their stateful ``Operation`` forms (plan once, execute many);
  * runtime objects: ``Device``, ``Stream``, ``Event``, ``DeviceArray`` and the workspace pool.
"""
from ._errors import AclnnError, ArgumentError
from ._operation import Operation
from ._plan_cache import plan_cache
from ._runtime import Device, DeviceArray, DeviceBuffer, Event, Stream, WorkspacePool, to_device, workspace_pool
from .ops import *  # noqa: F401,F403
from .ops import __all__ as _ops_all

from ._version import __version__

__all__ = ["AclnnError", "ArgumentError", "Operation", "Device", "DeviceArray", "DeviceBuffer", "Event", "Stream",
           "WorkspacePool", "to_device", "workspace_pool", "plan_cache"] + list(_ops_all)
