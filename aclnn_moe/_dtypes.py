"""dtype mapping between numpy (bf16 through ml_dtypes), torch and aclDataType."""
from __future__ import annotations

import ml_dtypes
import numpy as np

from .capi import lib

bfloat16 = np.dtype(ml_dtypes.bfloat16)

_BY_NAME = {
    "float32": "ACL_FLOAT", "float16": "ACL_FLOAT16", "bfloat16": "ACL_BF16", "float64": "ACL_DOUBLE",
    "int8": "ACL_INT8", "uint8": "ACL_UINT8", "int16": "ACL_INT16", "uint16": "ACL_UINT16",
    "int32": "ACL_INT32", "uint32": "ACL_UINT32", "int64": "ACL_INT64", "uint64": "ACL_UINT64", "bool": "ACL_BOOL",
}

FLOATS = ("float32", "float16", "bfloat16")
INDICES = ("int32", "int64")


_NAME_BY_NUMPY = {numpy_dtype_: numpy_dtype_.name for numpy_dtype_ in
                  [np.dtype(n) for n in _BY_NAME if n != "bfloat16"] + [bfloat16]}
_NUMPY_BY_NAME = {v: k for k, v in _NAME_BY_NUMPY.items()}
_ACL_BY_NAME: dict = {}


def name_of(dtype) -> str:
    """Canonical name ('float32', 'bfloat16', ...) of a numpy or torch dtype, or of a name."""
    hit = _NAME_BY_NUMPY.get(dtype) if isinstance(dtype, np.dtype) else None
    if hit is not None:  # the hot path: numpy's own dtype.name is slow (~6 us)
        return hit
    if isinstance(dtype, str) and dtype in _NUMPY_BY_NAME:
        return dtype
    if isinstance(dtype, str):
        return np.dtype(bfloat16 if dtype == "bfloat16" else dtype).name
    if hasattr(dtype, "is_floating_point") or type(dtype).__module__.startswith("torch"):
        return str(dtype).replace("torch.", "")
    return np.dtype(dtype).name


def numpy_dtype(name: str) -> np.dtype:
    hit = _NUMPY_BY_NAME.get(name)
    return hit if hit is not None else (bfloat16 if name == "bfloat16" else np.dtype(name))


def acl_dtype(name: str) -> int:
    hit = _ACL_BY_NAME.get(name)
    if hit is None:
        try:
            hit = _ACL_BY_NAME[name] = int(getattr(lib, _BY_NAME[name]))
        except KeyError:
            raise TypeError(f"dtype {name} has no aclDataType") from None
    return hit


def itemsize(name: str) -> int:
    return numpy_dtype(name).itemsize
