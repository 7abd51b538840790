"""Operands: what an operator argument is made of, whatever array library it came from.

An Operand knows its shape, dtype, element strides and offset, where its data lives, and owns its aclTensor
descriptor. Host arrays (numpy, torch CPU, DLPack CPU producers) are staged through device memory on CANN, and
described in place on the host backend (registered with aclrtHostRegister for the call, see _operation); device
arrays (DeviceArray, torch NPU tensors) are described in place, with their strides, so non-contiguous inputs
never need a copy.
"""
from __future__ import annotations

import math

import numpy as np

from ._dtypes import ITEMSIZE, acl_dtype, bfloat16_dtype, is_bfloat16, name_of, numpy_dtype
from ._errors import ArgumentError, check
from . import _npu
from ._runtime import DeviceArray, new_device_array
from .capi import ffi, lib

HOST, TORCH_CPU, DEVICE, TORCH_NPU = "numpy", "torch", "device", "torch_npu"
# ctypes parsed once: ffi.new("int64_t[]") re-parses its string on every call
_I64_ARRAY = ffi.typeof("int64_t[]")
_VOID_P = ffi.typeof("void *")
_UINTPTR = ffi.typeof("uintptr_t")
_FORMAT_ND = int(lib.ACL_FORMAT_ND)  # a constant: read without opening any library (capi._constants)
_ITEMSIZE = ITEMSIZE  # known without creating the bf16 dtype (which imports ml_dtypes)


def _torch_module(value):
    mod = type(value).__module__
    return mod.startswith("torch") and hasattr(value, "data_ptr")


def _torch_to_numpy(t) -> np.ndarray:
    import torch

    if t.dtype == torch.bfloat16:
        return t.detach().view(torch.int16).numpy().view(bfloat16_dtype())
    return t.detach().numpy()


def numpy_to_torch(a: np.ndarray):
    import torch

    if is_bfloat16(a.dtype):
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def _extent(shape, strides) -> int:
    """Elements spanned by a view with non-negative strides (0 for an empty view)."""
    if any(s == 0 for s in shape):
        return 0
    return 1 + sum((d - 1) * s for d, s in zip(shape, strides))


class Operand:
    """One tensor argument (input or output) of an operation."""

    __slots__ = ("name", "kind", "shape", "dtype", "strides", "offset", "storage", "host", "ptr", "tensor",
                 "source", "device_obj", "format", "in_place")

    def __init__(self, name: str, value=None, *, shape=None, dtype=None, like_kind=HOST, device_like=None):
        self.name = name
        self.format = _FORMAT_ND  # the aclFormat of the descriptor (torch NPU tensors: see _npu.describe)
        self.in_place = False  # host data described in place (registered per call), not staged
        self.tensor = None
        self.ptr = None  # device address of the storage base
        self.source = value
        self.device_obj = None
        if value is None:  # an output to allocate
            self.shape = tuple(int(s) for s in shape)
            self.dtype = name_of(dtype)
            self.strides = _contiguous(self.shape)
            self.offset = 0
            self.storage = math.prod(self.shape)
            self._allocate_output(like_kind, device_like)
            return
        self._describe_input(value)

    # ---- inputs
    def _describe_input(self, value):
        if isinstance(value, DeviceArray):
            self.kind, self.shape, self.dtype = DEVICE, value.shape, name_of(value.dtype)
            self.strides, self.offset = _contiguous(self.shape), 0
            self.storage = int(np.prod(self.shape, dtype=np.int64))
            self.ptr, self.host, self.device_obj = value.ptr, None, value
            return
        if _torch_module(value):
            dev = value.device.type
            if dev == "npu":
                self._describe_torch_device(value)
                return
            if dev != "cpu":
                raise ArgumentError(self.name, f"is a torch tensor on device {value.device}; aclnn_moe takes CPU "
                                               "tensors (host memory) or Ascend NPU tensors (torch_npu)")
            self.kind = TORCH_CPU
            value = _torch_to_numpy(value)
        else:
            self.kind = HOST
            if not isinstance(value, np.ndarray):
                value = np.from_dlpack(value) if hasattr(value, "__dlpack__") else np.asarray(value)
        if not value.dtype.isnative:  # the C side reads native byte order: convert, never reinterpret
            value = value.astype(value.dtype.newbyteorder("="))
        if any(s < 0 or s % value.itemsize for s in value.strides):
            value = np.ascontiguousarray(value)  # negative / unaligned strides have no aclTensor form
        self.shape = value.shape
        self.dtype = name_of(value.dtype)
        self.strides = tuple(s // value.itemsize for s in value.strides)
        self.offset = 0
        self.storage = _extent(self.shape, self.strides)
        self.host = value
        self.source = value

    def _describe_torch_device(self, t):
        self.format = _npu.describe(t, self.name)  # ArgumentError for a format the operators cannot take
        self.kind = TORCH_NPU
        self.shape = tuple(t.shape)
        self.dtype = name_of(t.dtype)
        self.strides = tuple(t.stride())
        self.offset = int(t.storage_offset())
        st = t.untyped_storage()
        self.storage = st.nbytes() // t.element_size()
        self.ptr = st.data_ptr()
        self.host = None
        self.device_obj = t

    # ---- outputs
    def _allocate_output(self, like_kind, device_like):
        if like_kind == TORCH_NPU:
            t = _npu.empty(self.shape, self.dtype, device_like)
            self.kind, self.ptr, self.host, self.device_obj = TORCH_NPU, t.data_ptr(), None, t
            self.format = _npu.plain_format(len(self.shape))
        elif like_kind == DEVICE:
            d = DeviceArray(self.shape, self.dtype, device=device_like.device)
            self.kind, self.ptr, self.host, self.device_obj = DEVICE, d.ptr, None, d
        else:
            self.kind = like_kind
            self.host = np.empty(self.shape, numpy_dtype(self.dtype))

    def reallocate(self) -> None:
        """A new output buffer of the same layout (the previous one now belongs to the caller)."""
        if self.kind in (HOST, TORCH_CPU):
            self.host = np.empty(self.shape, numpy_dtype(self.dtype))
        elif self.kind == DEVICE and type(self.device_obj) is DeviceArray:
            old = self.device_obj  # (its shape, numpy dtype and size are this layout's: no conversions again)
            d = self.device_obj = new_device_array(old.shape, old.dtype, old.nbytes, old.device)
            self.ptr = d.ptr
        else:
            self._allocate_output(self.kind, self.device_obj)

    @property
    def staged(self) -> bool:
        """Whether the data lives on the host and travels through a staging buffer."""
        return self.host is not None

    @property
    def staging_nbytes(self) -> int:
        return self.storage * _ITEMSIZE[self.dtype]

    def host_span(self) -> np.ndarray:
        """The host memory the view covers, as one contiguous 1-D array (what gets uploaded)."""
        a = self.host
        if a.flags.c_contiguous:
            return a.reshape(-1)
        return np.lib.stride_tricks.as_strided(a, shape=(self.storage,), strides=(a.itemsize,))

    def host_address(self) -> int:
        """The address of the host storage base (the view's first element minus its offset)."""
        return int(ffi.cast(_UINTPTR, ffi.from_buffer(self.host_span())))

    def layout_key(self):
        return (self.shape, self.dtype, self.strides, self.offset, self.storage)

    # ---- descriptor
    def create_tensor(self) -> None:
        dims = ffi.new(_I64_ARRAY, list(self.shape) or [0])
        strides = ffi.new(_I64_ARRAY, list(self.strides) or [0])
        storage = ffi.new(_I64_ARRAY, [self.storage])
        t = lib.aclCreateTensor(dims, len(self.shape), acl_dtype(self.dtype), strides, self.offset,
                                self.format, storage, 1, ffi.cast(_VOID_P, self.ptr or 0))
        if t == ffi.NULL:
            from ._errors import AclnnError, recent_message

            raise AclnnError(lib.ACLNN_ERR_PARAM_INVALID, "aclCreateTensor", f"{self.name}: {recent_message()}")
        self.tensor = t

    def destroy_tensor(self) -> None:
        if self.tensor is not None:
            t, self.tensor = self.tensor, None
            check(lib.aclDestroyTensor(t), "aclDestroyTensor")

    def result(self):
        """The output in the caller's array library."""
        if self.kind == HOST:
            return self.host
        if self.kind == TORCH_CPU:
            return numpy_to_torch(self.host)
        return self.device_obj


def _contiguous(shape):
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= max(int(d), 1)
    return tuple(reversed(strides))


def check_input(op_name: str, operand: Operand, dtypes=None, ndim=None) -> None:
    """The facade's up-front checks of one input; raise ArgumentError naming it."""
    if dtypes is not None and operand.dtype not in dtypes:
        raise ArgumentError(operand.name, f"{op_name} does not support dtype {operand.dtype}; "
                                          f"expected one of {', '.join(dtypes)}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if len(operand.shape) not in allowed:
            want = " or ".join(f"{n}-D" for n in allowed)
            raise ArgumentError(operand.name, f"{op_name} needs a {want} tensor, got shape {operand.shape}")
