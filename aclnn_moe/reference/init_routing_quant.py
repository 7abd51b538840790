"""numpy reference of aclnnMoeInitRoutingQuant, written from the operator's documentation and golden (MoeInitRouting
V1 routing, spec/semantics.md section 6, with the gathered rows quantised):

    expanded_x[j] = int8(clip(rint(fp16(x_row) * fp16(scale) + fp16(offset)), -128, 127))

computed in fp16 arithmetic as the golden does (``x.astype(float16) * scale + offset``): the attributes become
float32 (the op definition's Float) and then fp16; each fp16 operation is rounded once (computed exactly in float64,
then rounded to fp16). Also the shared quantisation helpers of the other quantising references.
"""
import numpy as np

from .init_routing import moe_init_routing as _route_v1


def to_f16(a):
    """fp16 of fp16/bf16/fp32 values: through fp32, rounded to nearest even."""
    return np.asarray(a).astype(np.float32).astype(np.float16)


def static_quant_f16(rows, scale, offset):
    """int8 of rint(fp16(rows) * fp16(scale) + fp16(offset)), every fp16 operation rounded once."""
    s16 = np.float16(np.float32(scale))
    o16 = np.float16(np.float32(offset))
    h = to_f16(rows).astype(np.float64)
    m = (h * np.float64(s16)).astype(np.float16)
    a = (m.astype(np.float64) + np.float64(o16)).astype(np.float16)
    return saturate_i8(np.rint(a.astype(np.float32)))


def saturate_i8(v):
    """int8 of already rounded values, saturating; NaN becomes 0."""
    v = np.nan_to_num(np.asarray(v, np.float64), nan=0.0, posinf=127.0, neginf=-128.0)
    return np.clip(v, -128, 127).astype(np.int8)


def dynamic_quant(rows_f32, ties="even"):
    """Per-row dynamic int8: s = max|row| / 127 (fp32), q = round(row / s) with ties to even or away from zero.
    A zero row gives s = 0 and q = 0."""
    r = np.asarray(rows_f32, np.float32)
    if r.shape[-1] == 0:
        return np.zeros(r.shape, np.int8), np.zeros(r.shape[:-1], np.float32)
    s = (np.max(np.abs(r), axis=-1) / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = (r / s[..., None]).astype(np.float32).astype(np.float64)
    if ties == "even":
        v = np.rint(v)
    else:
        v = np.sign(v) * np.floor(np.abs(v) + 0.5)
    return saturate_i8(v), s


def moe_init_routing_quant(x, row_idx, expert_idx, active_num, scale, offset):
    """Return ``(expanded_x int8, expanded_row_idx, expanded_expert_idx)`` (see the module docstring)."""
    gathered, expanded_row_idx, expanded_expert_idx = _route_v1(x, row_idx, expert_idx, active_num)
    return static_quant_f16(gathered, scale, offset), expanded_row_idx, expanded_expert_idx
