"""A stand-in for torch_npu (see ../README.md): what aclnn_moe's CANN path relies on, recording what it is asked."""
from __future__ import annotations

import ctypes
import os

import torch

# libtorch_npu names libascendcl.so in its NEEDED entries: the loader finds it by name, through LD_LIBRARY_PATH
acl = ctypes.CDLL("libascendcl.so", mode=os.RTLD_GLOBAL | os.RTLD_LAZY)
calls: list[tuple] = []  # everything asked of the stand-in, in order

from . import npu  # noqa: E402
from ._tensor import Tensor, empty, to_npu  # noqa: E402

torch.npu = npu  # torch_npu registers itself as torch.npu

Format = npu.Format


def get_npu_format(t) -> int:
    calls.append(("get_npu_format", t.device.index, t._format))
    return t._format


def npu_format_cast(t, fmt: int):
    """The same data labelled with NPU format ``fmt`` (the stand-in does not re-layout: it only tests who asks)."""
    return Tensor(t._view, t.device.index, int(fmt), t._block)


__all__ = ["npu", "calls", "Tensor", "empty", "to_npu", "get_npu_format", "npu_format_cast", "Format"]
