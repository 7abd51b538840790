"""The stand-in's NPU tensors: a torch CPU tensor viewing a block of the caching allocator (the host runtime's
device memory is host memory), with the device index and NPU format torch_npu keeps for it."""
from __future__ import annotations

import ctypes
import math
import weakref

import torch

from . import npu


class _Block:
    """One allocation, returned to the caching allocator when the last tensor viewing it goes."""

    def __init__(self, nbytes: int, index: int):
        self.ptr = npu.caching_allocator_alloc(max(nbytes, 1), index)
        self.nbytes = nbytes
        raw = (ctypes.c_char * max(nbytes, 1)).from_address(self.ptr)
        self.bytes = torch.frombuffer(raw, dtype=torch.uint8)[:nbytes]
        weakref.finalize(self, npu.caching_allocator_delete, self.ptr)


class Tensor:
    def __init__(self, view: torch.Tensor, index: int, fmt: int, block: _Block):
        self._view, self._format, self._block = view, int(fmt), block
        self.device = npu._Device(index)

    # what aclnn_moe reads of a torch tensor
    shape = property(lambda self: self._view.shape)
    dtype = property(lambda self: self._view.dtype)
    is_npu = True

    def stride(self, *a):
        return self._view.stride(*a)

    def storage_offset(self):
        return self._view.storage_offset()

    def untyped_storage(self):
        return self._view.untyped_storage()

    def element_size(self):
        return self._view.element_size()

    def dim(self):
        return self._view.dim()

    def numel(self):
        return self._view.numel()

    def data_ptr(self):
        return self._view.data_ptr()

    def new_empty(self, size, dtype=None):
        return empty(size, dtype or self.dtype, self.device.index)

    def __getitem__(self, key):
        return Tensor(self._view[key], self.device.index, self._format, self._block)

    def transpose(self, a, b):
        return Tensor(self._view.transpose(a, b), self.device.index, self._format, self._block)

    def cpu(self) -> torch.Tensor:
        npu.synchronize(self.device.index)
        return self._view.clone()

    def __repr__(self):
        return f"stand-in NPU tensor {tuple(self.shape)} {self.dtype} on {self.device}"


def empty(size, dtype, device: int = 0) -> Tensor:
    size = tuple(int(s) for s in size)
    itemsize = torch.empty((), dtype=dtype).element_size()
    block = _Block(math.prod(size) * itemsize, int(device))
    view = block.bytes.view(dtype).view(size)
    return Tensor(view, int(device), npu.Format.ND, block)


def to_npu(t: torch.Tensor, device: int = 0) -> Tensor:
    out = empty(t.shape, t.dtype, device)
    out._view.copy_(t)
    return out
