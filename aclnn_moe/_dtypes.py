"""dtype mapping between numpy (bf16 through ml_dtypes), torch and aclDataType.

ml_dtypes is imported on first use of bfloat16, not with the package: importing it costs about a second, ten
times ``import numpy``, and a program without bf16 data never needs it. A numpy array can only have the bf16
dtype once something imported ml_dtypes, so the name lookups below recognise it without importing anything.
Use ``bfloat16_dtype()`` in library code; the module attribute ``bfloat16`` (``from ._dtypes import bfloat16``)
still works and imports ml_dtypes at that moment.
"""
from __future__ import annotations

import sys
from typing import Any

import numpy as np

from .capi import lib

__all__ = ["FLOATS", "INDICES", "ITEMSIZE", "acl_dtype", "bfloat16_dtype", "is_bfloat16", "itemsize", "name_of",
           "numpy_dtype"]

_BY_NAME = {
    "float32": "ACL_FLOAT", "float16": "ACL_FLOAT16", "bfloat16": "ACL_BF16", "float64": "ACL_DOUBLE",
    "int8": "ACL_INT8", "uint8": "ACL_UINT8", "int16": "ACL_INT16", "uint16": "ACL_UINT16",
    "int32": "ACL_INT32", "uint32": "ACL_UINT32", "int64": "ACL_INT64", "uint64": "ACL_UINT64", "bool": "ACL_BOOL",
}

FLOATS = ("float32", "float16", "bfloat16")
INDICES = ("int32", "int64")

# bytes per element of every supported dtype, known without creating the bf16 dtype
ITEMSIZE = {n: (2 if n == "bfloat16" else np.dtype(n).itemsize) for n in _BY_NAME}

_NAME_BY_NUMPY: dict[np.dtype, str] = {np.dtype(n): n for n in _BY_NAME if n != "bfloat16"}
_NUMPY_BY_NAME: dict[str, np.dtype] = {v: k for k, v in _NAME_BY_NUMPY.items()}
_ACL_BY_NAME: dict[str, int] = {}
_BF16: np.dtype | None = None


def bfloat16_dtype() -> np.dtype:
    """numpy's dtype for bfloat16 (``ml_dtypes.bfloat16``), importing ml_dtypes on the first call."""
    global _BF16
    if _BF16 is None:
        import ml_dtypes

        _BF16 = np.dtype(ml_dtypes.bfloat16)
        _NAME_BY_NUMPY[_BF16] = "bfloat16"
        _NUMPY_BY_NAME["bfloat16"] = _BF16
    return _BF16


def __getattr__(name: str) -> Any:
    """``_dtypes.bfloat16``: the bf16 numpy dtype, created (and ml_dtypes imported) on first access."""
    if name == "bfloat16":
        value = bfloat16_dtype()
        globals()["bfloat16"] = value  # later accesses are plain attribute reads
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def is_bfloat16(dtype: Any) -> bool:
    """Whether `dtype` (a numpy dtype) is ml_dtypes' bfloat16; never imports ml_dtypes."""
    if not isinstance(dtype, np.dtype) or "ml_dtypes" not in sys.modules:  # no bf16 numpy data can exist yet
        return False
    return dtype == bfloat16_dtype()


def name_of(dtype: Any) -> str:
    """Canonical name ('float32', 'bfloat16', ...) of a numpy or torch dtype, or of a name."""
    hit = _NAME_BY_NUMPY.get(dtype) if isinstance(dtype, np.dtype) else None
    if hit is not None:  # the hot path: numpy's own dtype.name is slow (~6 us)
        return hit
    if isinstance(dtype, np.dtype):
        name = dtype.name  # ml_dtypes' bfloat16 names itself "bfloat16"
        if name == "bfloat16":
            bfloat16_dtype()  # caches it for the hot path
        return name
    if isinstance(dtype, str) and dtype in _NUMPY_BY_NAME:
        return dtype
    if isinstance(dtype, str):
        return "bfloat16" if dtype == "bfloat16" else np.dtype(dtype).name
    if hasattr(dtype, "is_floating_point") or type(dtype).__module__.startswith("torch"):
        return str(dtype).replace("torch.", "")
    return np.dtype(dtype).name


def numpy_dtype(name: str) -> np.dtype:
    """The numpy dtype of a canonical name (bfloat16 imports ml_dtypes)."""
    hit = _NUMPY_BY_NAME.get(name)
    return hit if hit is not None else (bfloat16_dtype() if name == "bfloat16" else np.dtype(name))


def acl_dtype(name: str) -> int:
    """The aclDataType value of a canonical name; TypeError for a dtype CANN has no code for."""
    hit = _ACL_BY_NAME.get(name)
    if hit is None:
        try:
            hit = _ACL_BY_NAME[name] = int(getattr(lib, _BY_NAME[name]))
        except KeyError:
            raise TypeError(f"dtype {name} has no aclDataType") from None
    return hit


def itemsize(name: str) -> int:
    """Bytes per element of a canonical dtype name."""
    size = ITEMSIZE.get(name)
    return size if size is not None else np.dtype(name).itemsize
