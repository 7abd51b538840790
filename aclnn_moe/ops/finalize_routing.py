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

import dataclasses

import numpy as np

from .._errors import ArgumentError
from .._operation import Operation
from .._spec import FLOATS, INT32, KW, Attr, OpSpec, Output, Param, Tensor
from ..capi import has_symbol


def available_versions() -> tuple[int, ...]:
    """The finalize versions the active backend exports with both phases (2 preferred)."""
    return tuple(v for v, spec in ((2, SPEC), (1, SPEC_V1))
                 if has_symbol(spec.api) and has_symbol(spec.phase1))


def _rows(a):
    sc = a.scales
    return sc.shape[0] if sc is not None and len(sc.shape) == 2 else a.expanded_src_to_dst_row.shape[0]


def _examples(rng):
    from .._dtypes import bfloat16

    out = []
    for (n, k, h, e, c, dt, mode) in ((3, 2, 4, 2, 0, np.float32, 0), (50, 4, 10, 16, 0, np.float16, 0),
                                      (64, 8, 7168, 256, 0, bfloat16, 2), (20, 1, 33, 16, 4, np.float16, 1),
                                      (17, 3, 130, 8, 5, np.float32, 3)):
        if mode in (1, 3):
            x = rng.standard_normal((e, c, h)).astype(dt)
            rows = rng.integers(-1, e * c, n * k).astype(np.int32)
        else:
            x = rng.standard_normal((n * k, h)).astype(dt)
            rows = rng.permutation(n * k).astype(np.int32)
        full = dict(expanded_permuted_rows=x, skip1=rng.standard_normal((n, h)).astype(dt),
                    skip2=rng.standard_normal((n, h)).astype(dt), bias=rng.standard_normal((e, h)).astype(dt),
                    scales=rng.random((n, k)).astype(np.float32 if dt == bfloat16 else dt),
                    expanded_src_to_dst_row=rows, export_for_source_row=rng.integers(0, e, (n, k)).astype(np.int32),
                    drop_pad_mode=mode)
        out.append(full)
        out.append(dict(full, skip1=None, skip2=None, bias=None, export_for_source_row=None))
        if mode == 0:
            out.append(dict(full, scales=full["scales"].astype(dt), api_version=1))
    return out


_TENSOR = dict(dtypes=FLOATS, optional=True)  # positional, None allowed (torch_npu's signature)
SPEC = OpSpec(
    operator="MoeFinalizeRouting", api="aclnnMoeFinalizeRoutingV2", function="moe_finalize_routing",
    torch_npu=('npu_moe_finalize_routing(Tensor expanded_permuted_rows, Tensor? skip1, Tensor? skip2, '
               'Tensor? bias, Tensor? scales, Tensor expanded_src_to_dst_row, '
               'Tensor? export_for_source_row, int? drop_pad_mode=0, int? k=1) -> Tensor',),
    params=(Tensor("expanded_permuted_rows", "expandedX", dtypes=FLOATS, ndim=(2, 3)),
            Tensor("skip1", "x1Optional", **_TENSOR),
            Tensor("skip2", "x2Optional", **_TENSOR),
            Tensor("bias", "biasOptional", **_TENSOR),
            Tensor("scales", "scalesOptional", **_TENSOR),
            Tensor("expanded_src_to_dst_row", "expandedRowIdx", dtypes=INT32, ndim=1),
            Tensor("export_for_source_row", "expertIdxOptional", dtypes=INT32, optional=True),
            Attr("drop_pad_mode", "dropPadMode", default=0),
            KW,
            Param("api_version", None, default=None)),
    outputs=(Output("out", "out", shape=lambda a: (_rows(a), a.expanded_permuted_rows.shape[-1]),
                    dtype=lambda a: a.expanded_permuted_rows.dtype),),
    examples=_examples,
    doc="""``torch_npu.npu_moe_finalize_routing``.

    expanded_permuted_rows [N*K, H] (modes 0/2) or [E, C, H] (modes 1/3), fp16/bf16/fp32; skip1, skip2 [N, H] or
    None (skip2 needs skip1); bias [E, H] or None (needs export_for_source_row); scales [N, K] or None (then
    K = 1; fp32 scales allowed with bf16 rows); expanded_src_to_dst_row [N*K] int32; export_for_source_row
    [N, K] int32 or None. Returns out [N, H] in the dtype of expanded_permuted_rows. Ranks that depend on the
    mode and shape mismatches are reported by the operator (status 561103 for V2, 561002 for V1).""")

# V1: another C function (other C names, no dropPadMode); skip1, bias, scales and the expert ids are required.
_V1_C = {"skip1": "x1", "skip2": "x2Optional", "bias": "bias", "scales": "scales",
         "export_for_source_row": "expandedExpertIdx", "drop_pad_mode": None}
SPEC_V1 = dataclasses.replace(
    SPEC, api="aclnnMoeFinalizeRouting", public=False,
    params=tuple(p if p == KW or p.name not in _V1_C else
                 dataclasses.replace(p, c=_V1_C[p.name],
                                     **({"optional": False} if p.name in ("skip1", "bias", "scales",
                                                                          "export_for_source_row") else {}))
                 for p in SPEC.params))
VARIANTS = (SPEC_V1,)


class BASE(Operation):
    """Chooses aclnnMoeFinalizeRoutingV2 or V1 (``api_version``, else what the backend has)."""

    def _choose_spec(self, values):
        version = values["api_version"]
        have = available_versions()
        if version is None:
            if not have:
                raise ArgumentError("api_version", "the backend exports neither aclnnMoeFinalizeRoutingV2 nor "
                                                   "aclnnMoeFinalizeRouting")
            version = have[0]
        if version not in (1, 2):
            raise ArgumentError("api_version", f"must be 1, 2 or None, got {version!r}")
        self.api_version = version
        if version == 2:
            return SPEC
        why = "with api_version=1" if 2 in have else "because the backend has no aclnnMoeFinalizeRoutingV2 (V1 is used)"
        for name in ("skip1", "bias", "scales", "export_for_source_row"):
            if values[name] is None:
                raise ArgumentError(name, f"is required by aclnnMoeFinalizeRouting (V1), {why}")
        if values["drop_pad_mode"] != 0:
            raise ArgumentError("drop_pad_mode", f"aclnnMoeFinalizeRouting (V1) supports only 0, got "
                                                 f"{values['drop_pad_mode']}")
        return SPEC_V1
