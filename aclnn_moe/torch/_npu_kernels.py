"""Kernels on torch_npu's device key (PrivateUse1, renamed ``npu`` by torch_npu) for NPU tensors.

Registered only when torch_npu is importable; the facade then describes the NPU tensors in place and runs on the
current stream of their device with workspace from torch_npu's caching allocator (see ``aclnn_moe._npu``)."""
from __future__ import annotations

import importlib.util

from .. import ops

if importlib.util.find_spec("torch_npu") is not None:  # pragma: no cover  (Ascend boxes only)
    import torch_npu  # noqa: F401  (renames PrivateUse1 to npu, initialises the device first)

    from ._library import NAMESPACE, _lib, _make_kernel

    for _spec in ops.specs():
        _lib.impl(_spec.function, _make_kernel(_spec), "PrivateUse1")
