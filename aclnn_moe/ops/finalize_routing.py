"""MoeFinalizeRouting / MoeFinalizeRoutingV2: combine every token's K expert outputs, weighted by its routing
scales, plus the shared-expert / residual inputs (``torch_npu.npu_moe_finalize_routing``)::

    out[i] = skip1[i] + skip2[i] + sum_k scales[i, k] * (expanded_permuted_rows[R[p(i, k)]] + bias[expert[i, k]])

with p(i, k) = k*N + i for drop_pad_mode 0/1 (the layout aclnnMoeInitRouting produces) and i*K + k for 2/3 (the
layout of aclnnMoeInitRoutingV2/V3). In modes 1/3 expanded_permuted_rows is [E, C, H] and R = -1 marks a dropped
slot, which contributes nothing.

Version: like torch_npu, aclnnMoeFinalizeRoutingV2 is used when the backend has it, else V1, which needs skip1,
bias, scales and export_for_source_row and supports drop_pad_mode 0 only. ``api_version=1`` or ``2`` forces one.
Numerics: fp16 is computed natively in fp16 (rounded after every operation), as the NPU does; bf16 in fp32.
"""
from __future__ import annotations

import numpy as np

from .._dtypes import FLOATS
from .._errors import ArgumentError
from .._operation import Operation
from ..capi import lib

OPERATOR = "MoeFinalizeRouting"
APIS = ("aclnnMoeFinalizeRoutingV2", "aclnnMoeFinalizeRouting")


def available_versions() -> tuple[int, ...]:
    """The finalize versions the active backend exports (2 preferred)."""
    return tuple(v for v, name in ((2, "aclnnMoeFinalizeRoutingV2"), (1, "aclnnMoeFinalizeRouting"))
                 if hasattr(lib, name))


class MoeFinalizeRouting(Operation):
    api = "aclnnMoeFinalizeRoutingV2"

    def __init__(self, expanded_permuted_rows, skip1, skip2, bias, scales, expanded_src_to_dst_row,
                 export_for_source_row, drop_pad_mode: int = 0, *, api_version: int | None = None, stream=None):
        super().__init__(stream=stream)
        drop_pad_mode = int(drop_pad_mode)
        if api_version is None:
            have = available_versions()
            if not have:
                raise ArgumentError("api_version", "the backend exports neither aclnnMoeFinalizeRoutingV2 nor "
                                                   "aclnnMoeFinalizeRouting")
            api_version = have[0]
        if api_version not in (1, 2):
            raise ArgumentError("api_version", f"must be 1, 2 or None, got {api_version}")
        self.api_version = api_version
        if api_version == 1:
            self.api = "aclnnMoeFinalizeRouting"
            why = ("with api_version=1" if 2 in available_versions()
                   else "because the backend has no aclnnMoeFinalizeRoutingV2 (V1 is used)")
            for name, value in (("skip1", skip1), ("bias", bias), ("scales", scales),
                                ("export_for_source_row", export_for_source_row)):
                if value is None:
                    raise ArgumentError(name, f"is required by aclnnMoeFinalizeRouting (V1), {why}")
            if drop_pad_mode != 0:
                raise ArgumentError("drop_pad_mode", f"aclnnMoeFinalizeRouting (V1) supports only 0, got "
                                                     f"{drop_pad_mode}")
        # inputs are declared in the prototype order of the chosen version; ranks that depend on the mode and
        # shape mismatches are reported by the operator (status 561002)
        x = self._input("expanded_permuted_rows", expanded_permuted_rows, dtypes=FLOATS, ndim=(2, 3))
        if api_version == 2:
            r = self._input("expanded_src_to_dst_row", expanded_src_to_dst_row, dtypes=("int32",), ndim=1)
        s1 = self._input("skip1", skip1, dtypes=FLOATS, optional=True)
        s2 = self._input("skip2", skip2, dtypes=FLOATS, optional=True)
        b = self._input("bias", bias, dtypes=FLOATS, optional=True)
        sc = self._input("scales", scales, dtypes=FLOATS, optional=True)
        if api_version == 1:
            r = self._input("expanded_src_to_dst_row", expanded_src_to_dst_row, dtypes=("int32",), ndim=1)
        e = self._input("export_for_source_row", export_for_source_row, dtypes=("int32",), optional=True)
        if sc is not None and len(sc.shape) == 2:
            n = sc.shape[0]
        else:
            n = r.shape[0]
        out = self._output("out", (n, x.shape[-1]), x.dtype)
        if api_version == 2:
            self._args = [x, r, s1, s2, b, sc, e, drop_pad_mode, out]
        else:
            self._args = [x, s1, s2, b, sc, r, e, out]
        self._results = out


def moe_finalize_routing(expanded_permuted_rows, skip1, skip2, bias, scales, expanded_src_to_dst_row,
                         export_for_source_row, drop_pad_mode: int = 0, *, api_version: int | None = None,
                         stream=None):
    """``torch_npu.npu_moe_finalize_routing``.

    expanded_permuted_rows [N*K, H] (modes 0/2) or [E, C, H] (modes 1/3), fp16/bf16/fp32; skip1, skip2 [N, H] or
    None (skip2 needs skip1); bias [E, H] or None (needs export_for_source_row); scales [N, K] or None (then
    K = 1; fp32 scales allowed with bf16 rows); expanded_src_to_dst_row [N*K] int32; export_for_source_row
    [N, K] int32 or None. Returns out [N, H] in the dtype of expanded_permuted_rows.
    """
    return MoeFinalizeRouting(expanded_permuted_rows, skip1, skip2, bias, scales, expanded_src_to_dst_row,
                              export_for_source_row, drop_pad_mode, api_version=api_version,
                              stream=stream).run_once()


def selftest(rng: np.random.Generator) -> None:
    from .._dtypes import bfloat16
    from ..reference.finalize_routing import moe_finalize_routing as ref

    def check(got, exp, what):
        assert got.dtype == exp.dtype and got.shape == exp.shape, what
        np.testing.assert_array_equal(got.view(np.uint16) if got.dtype != np.float32 else got,
                                      exp.view(np.uint16) if exp.dtype != np.float32 else exp, err_msg=what)

    for (n, k, h, e, c, dt, mode) in ((3, 2, 4, 2, 0, np.float32, 0), (50, 4, 10, 16, 0, np.float16, 0),
                                      (64, 8, 7168, 256, 0, bfloat16, 2), (20, 1, 33, 16, 4, np.float16, 1),
                                      (17, 3, 130, 8, 5, np.float32, 3)):
        if mode in (1, 3):
            x = rng.standard_normal((e, c, h)).astype(dt)
            rows = rng.integers(-1, e * c, n * k).astype(np.int32)
        else:
            x = rng.standard_normal((n * k, h)).astype(dt)
            rows = rng.permutation(n * k).astype(np.int32)
        skip1 = rng.standard_normal((n, h)).astype(dt)
        skip2 = rng.standard_normal((n, h)).astype(dt)
        bias = rng.standard_normal((e, h)).astype(dt)
        scales = rng.random((n, k)).astype(np.float32 if dt == bfloat16 else dt)
        experts = rng.integers(0, e, (n, k)).astype(np.int32)
        versions = available_versions()
        if 2 in versions:
            got = moe_finalize_routing(x, skip1, skip2, bias, scales, rows, experts, mode, api_version=2)
            check(got, ref(x, skip1, skip2, bias, scales, rows, experts, mode), f"V2 mode {mode} {dt}")
            got = moe_finalize_routing(x, None, None, None, scales, rows, None, mode, api_version=2)
            check(got, ref(x, None, None, None, scales, rows, None, mode), f"V2 mode {mode} {dt} no skips")
        if 1 in versions and mode == 0:
            sc = scales.astype(dt)
            got = moe_finalize_routing(x, skip1, skip2, bias, sc, rows, experts, 0, api_version=1)
            check(got, ref(x, skip1, skip2, bias, sc, rows, experts, 0), f"V1 {dt}")
