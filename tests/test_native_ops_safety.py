"""Memory safety of the operators' C entry points under hostile input (issues 6 and 12), through raw capi calls.

Dead, wild and foreign handles in every tensor / int-array slot of every operator; range attributes at the int64
limits; shape products past int64; a workspaceSize larger than the block; outputs and workspaces that overlap
other operands. Each case must end in a status code (and, where the call is valid, the right result), never in a
crash or an out-of-bounds access (run the suite against an ASan+UBSan build to see the latter).
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from aclnn_moe import DeviceBuffer
from aclnn_moe._dtypes import acl_dtype
from aclnn_moe._errors import recent_message
from aclnn_moe.capi import cdef_source, ffi, lib

f32, f16, i32 = np.float32, np.float16, np.int32
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _z(shape, dt=f32):
    return np.zeros(shape, dt)


# one valid call per operator entry (C argument order); every tensor / int-array slot is given
VALID = {
    "aclnnMoeComputeExpertTokens": lambda: [np.array([0, 1, 1, 3], i32), 4, _z(4, i32)],
    "aclnnMoeInitRouting": lambda: [_z((3, 4)), np.arange(6, dtype=i32).reshape(2, 3).T.copy(), _z((3, 2), i32), 3,
                                    _z((6, 4)), _z(6, i32), _z(6, i32)],
    "aclnnMoeInitRoutingV2": lambda: [_z((3, 4)), _z((3, 2), i32), 0, 0, 4, 0, 1, False, _z((6, 4)), _z(6, i32),
                                      _z(4, i32), None],
    "aclnnMoeFinalizeRouting": lambda: [_z((6, 4)), _z((3, 4)), _z((3, 4)), _z((2, 4)), _z((3, 2)),
                                        np.arange(6, dtype=i32), _z((3, 2), i32), _z((3, 4))],
    "aclnnMoeFinalizeRoutingV2": lambda: [_z((6, 4)), np.arange(6, dtype=i32), _z((3, 4)), _z((3, 4)), _z((2, 4)),
                                          _z((3, 2)), _z((3, 2), i32), 0, _z((3, 4))],
    "aclnnMoeGatingTopK": lambda: [_z((3, 8)), _z(8), 2, 1, 1, 0, 0, 0, True, 1.0, 1e-20, _z((3, 2)),
                                   _z((3, 2), i32), _z((3, 8))],
    "aclnnMoeReRouting": lambda: [_z((4, 8), f16), np.array([[1, 1], [2, 0]], i32), _z(4), 1, 0, _z((4, 8), f16),
                                  _z(4), _z(4, i32), _z(2, i32)],
    "aclnnMoeTokenPermuteWithEp": lambda: [_z((3, 4)), _z((3, 2), i32), _z((3, 2)), [1, 5], 0, False, _z((4, 4)),
                                           _z(6, i32), _z(4)],
    "aclnnMoeTokenUnpermuteWithEp": lambda: [_z((6, 4)), np.arange(6, dtype=i32), _z((3, 2)), 2, [0, 6], False,
                                             [3, 4], _z((3, 4))],
    "aclnnMoeTokenPermute": lambda: [_z((3, 4)), _z((3, 2), i32), 0, False, _z((6, 4)), _z(6, i32)],
    "aclnnMoeTokenUnpermute": lambda: [_z((6, 4)), np.arange(6, dtype=i32), _z((3, 2)), False, [3, 4], _z((3, 4))],
    "aclnnMoeTokenPermuteWithRoutingMap": lambda: [_z((3, 4)), _z((3, 3), bool), _z((3, 3)), 6, False, _z((6, 4)),
                                                   _z(6), _z(6, i32)],
    "aclnnMoeTokenUnpermuteWithRoutingMap": lambda: [_z((6, 4)), np.arange(6, dtype=i32), _z((3, 3), bool),
                                                     _z((3, 3)), False, [3, 4], _z((3, 4)), _z(6, i32), _z(6, i32),
                                                     _z(6)],
    "aclnnMoeTokenPermuteWithRoutingMapGrad": lambda: [_z((6, 4)), _z(6), np.arange(6, dtype=i32),
                                                       np.ones((3, 2), bool), 2, 3, False, _z((3, 4)), _z((3, 2))],
    "aclnnMoeTokenUnpermuteWithRoutingMapGrad": lambda: [_z((3, 4)), np.arange(6, dtype=i32),
                                                         np.arange(6, dtype=i32), np.ones((3, 2), bool), _z((6, 4)),
                                                         _z((3, 2)), False, [3, 4], _z((6, 4)), _z((3, 2))],
    "aclnnMoeGatingTopKSoftmax": lambda: [_z((3, 8)), _z(3, bool), 2, _z((3, 2)), _z((3, 2), i32), _z((3, 2), i32)],
    "aclnnMoeGatingTopKSoftmaxV2": lambda: [_z((3, 8)), _z(3, bool), 2, 0, True, _z((3, 2)), _z((3, 2), i32),
                                            _z((3, 8))],
}


def _params(api):
    """(C type, C name) of every parameter of api's phase 1, from the cdef the binding was built with."""
    m = re.search(r"\b" + api + r"GetWorkspaceSize\s*\(([^)]*)\)", cdef_source())
    out = []
    for p in m.group(1).split(","):
        p = " ".join(p.split())
        name = re.findall(r"\w+", p)[-1]
        out.append((p[: -len(name)].strip(), name))
    return out


def test_valid_calls_succeed(ws_status):
    for api, make in VALID.items():
        assert ws_status(api, *make(), run=True) == (0, ""), api


def _handle_slots():
    for api, make in VALID.items():
        params = _params(api)
        for i, a in enumerate(make()):
            ctype = params[i][0]
            if a is not None and ("aclTensor" in ctype or "aclIntArray" in ctype):
                yield api, i, params[i][1], "aclTensor" in ctype


SLOTS = list(_handle_slots())


def _build(args, keep):
    """C arguments for ws_status-style arguments: arrays become live tensors, lists live int arrays."""
    out = []
    for a in args:
        if isinstance(a, np.ndarray):
            buf = DeviceBuffer(max(a.nbytes, 1))
            keep.append(buf)
            dims = ffi.new("int64_t[]", list(a.shape) or [0])
            t = lib.aclCreateTensor(dims, a.ndim, acl_dtype(a.dtype.name), ffi.NULL, 0, lib.ACL_FORMAT_ND, dims,
                                    a.ndim, buf.cptr)
            keep.append(("tensor", t))
            out.append(t)
        elif isinstance(a, list):
            h = lib.aclCreateIntArray(ffi.new("int64_t[]", a), len(a))
            keep.append(("array", h))
            out.append(h)
        else:
            out.append(ffi.NULL if a is None else a)
    return out


def _release(keep):
    for k in reversed(keep):
        if isinstance(k, tuple):
            if k[1] is not None:
                (lib.aclDestroyTensor if k[0] == "tensor" else lib.aclDestroyIntArray)(k[1])
        else:
            k.close()


@pytest.mark.parametrize("api, i, name, is_tensor", SLOTS, ids=[f"{s[0][5:]}-{s[2]}" for s in SLOTS])
@pytest.mark.parametrize("kind", ["destroyed", "wild", "foreign"])
def test_dead_or_foreign_handle_names_the_parameter(api, i, name, is_tensor, kind):
    keep = []
    try:
        args = _build(VALID[api](), keep)
        if kind == "destroyed":  # destroyed just before the call: nothing can have reused its memory yet
            slot = next(j for j, k in enumerate(keep) if isinstance(k, tuple) and k[1] == args[i])
            (lib.aclDestroyTensor if is_tensor else lib.aclDestroyIntArray)(args[i])
            keep[slot] = (keep[slot][0], None)
        elif kind == "wild":  # readable garbage: a check that reads it would still be fooled, not crash
            wild = ffi.new("unsigned char[512]", b"\x41" * 512)
            keep.append(wild)
            args[i] = ffi.cast("aclTensor *" if is_tensor else "aclIntArray *", wild)
        else:  # a live object of the other type
            other = _build([[1, 2]] if is_tensor else [np.zeros(2, f32)], keep)[0]
            args[i] = ffi.cast("aclTensor *" if is_tensor else "aclIntArray *", other)
        ws, ex = ffi.new("uint64_t *"), ffi.new("aclOpExecutor **")
        status = getattr(lib, api + "GetWorkspaceSize")(*args, ws, ex)
        msg = recent_message()
        assert status == lib.ACLNN_ERR_PARAM_INVALID, msg
        assert f"{name} " in msg and "not a live" in msg and "dtype" not in msg, msg
    finally:
        _release([k for k in keep if not isinstance(k, ffi.CData)])


@pytest.mark.parametrize("rng_", [[INT64_MIN, 6], [INT64_MIN, INT64_MIN], [0, INT64_MIN], [-1, 3], [3, -1]])
def test_unpermute_range_outside_int64_positions(ws_status, rng_):
    args = VALID["aclnnMoeTokenUnpermuteWithEp"]()
    args[4] = rng_
    status, msg = ws_status("aclnnMoeTokenUnpermuteWithEp", *args, run=True)
    assert status == lib.ACLNN_ERR_INNER_TILING_ERROR and "rangeOptional" in msg, msg


@pytest.mark.parametrize("rng_", [[INT64_MIN, 6], [0, INT64_MAX], [INT64_MAX, INT64_MIN], [-1, 2], [1, 2, 3]])
def test_permute_range_outside_int64_positions(ws_status, rng_):
    args = VALID["aclnnMoeTokenPermuteWithEp"]()
    args[3] = rng_
    status, msg = ws_status("aclnnMoeTokenPermuteWithEp", *args, run=True)
    assert status == lib.ACLNN_ERR_INNER_TILING_ERROR and "range" in msg, msg


def test_unpermute_large_range_start_stays_in_bounds(ws_status):
    """start > every index: nothing selected, zeros out (no `d - start` wrap)."""
    args = VALID["aclnnMoeTokenUnpermuteWithEp"]()
    args[0] = np.ones((6, 4), f32)
    args[4] = [INT64_MAX - 1, INT64_MAX]
    out = args[-1] = np.full((3, 4), 7, f32)
    assert ws_status("aclnnMoeTokenUnpermuteWithEp", *args, run=True) == (0, "")
    assert not out.any()


# --------------------------------------------------------------------------- shape products past int64
class _Refused(Exception):
    """aclCreateTensor refused the descriptor (the runtime's own overflow checks got there first)."""


def _refused_for_size(e: _Refused) -> bool:
    return "9223372036854775807" in str(e) or "int64" in str(e)


def _overlap_refused(status: int) -> bool:
    """Phase 2's generic overlap check (161002) is the other legal answer to overlapping operands."""
    return status == lib.ACLNN_ERR_PARAM_INVALID and "overlap" in recent_message()


class _Views:
    """Tensors over small device buffers with arbitrary dims / strides (stride 0 lets dims grow past memory)."""

    def __init__(self):
        self.keep = []

    def make(self, shape, dtype=f32, strides=None, buf=None, offset=0):
        if buf is None:
            buf = DeviceBuffer(64 if strides is not None else max(64, int(np.prod(shape)) * np.dtype(dtype).itemsize))
            self.keep.append(buf)
        dims = ffi.new("int64_t[]", list(shape))
        st = ffi.new("int64_t[]", list(strides)) if strides is not None else ffi.NULL
        storage = ffi.new("int64_t[]", [buf.nbytes // np.dtype(dtype).itemsize])
        t = lib.aclCreateTensor(dims, len(shape), acl_dtype(np.dtype(dtype).name), st, offset, lib.ACL_FORMAT_ND,
                                storage, 1, buf.cptr)
        if t == ffi.NULL:
            raise _Refused(recent_message())
        self.keep.append(t)
        return t

    def close(self):
        for k in reversed(self.keep):
            if isinstance(k, DeviceBuffer):
                k.close()
            else:
                lib.aclDestroyTensor(k)


@pytest.fixture
def views():
    v = _Views()
    yield v
    v.close()


def _phase1(api, *args):
    ws, ex = ffi.new("uint64_t *"), ffi.new("aclOpExecutor **")
    status = getattr(lib, api + "GetWorkspaceSize")(*args, ws, ex)
    if status == 0:
        getattr(lib, api)(ffi.NULL, 0, ex[0], ffi.NULL)  # consume it (fails on the workspace if one is needed)
    return status, recent_message() if status else ""


@pytest.mark.parametrize("api, code", [("aclnnMoeFinalizeRouting", 561002), ("aclnnMoeFinalizeRoutingV2", 561103)])
def test_finalize_huge_hidden_size_rejected_in_phase1(views, api, code):
    """H = 2^62 on stride-0 views: N*H passes int64 (and 16384 / (H*(K+2)) used to divide by zero)."""
    try:
        H = 2**62
        big = lambda rows: views.make((rows, H), strides=(0, 0))  # noqa: E731
        ridx = views.make((6,), i32)
        eidx, scales = views.make((3, 2), i32, strides=(0, 0)), views.make((3, 2), strides=(0, 0))
        if api.endswith("V2"):
            args = (big(6), ridx, big(3), ffi.NULL, views.make((2, H), strides=(0, 0)), scales, eidx, 0, big(3))
        else:
            args = (big(6), big(3), ffi.NULL, views.make((2, H), strides=(0, 0)), scales, ridx, eidx, big(3))
        status, msg = _phase1(api, *args)
        assert status == code and "2^63" in msg, msg
    except _Refused as e:  # refused at aclCreateTensor: the size itself passes int64 bytes
        assert _refused_for_size(e), str(e)


def test_gating_rows_times_experts_overflow_rejected(views):
    try:
        rows = 2**62
        x = views.make((rows, 8), strides=(0, 0))
        y, idx, out = views.make((rows, 2), strides=(0, 0)), views.make((rows, 2), i32, strides=(0, 0)), \
            views.make((rows, 8), strides=(0, 0))
        status, msg = _phase1("aclnnMoeGatingTopK", x, ffi.NULL, 2, 1, 1, 0, 0, 0, True, 1.0, 1e-20, y, idx, out)
        assert status == 561002, msg
    except _Refused as e:  # refused at aclCreateTensor: the size itself passes int64 bytes
        assert _refused_for_size(e), str(e)


def test_reroute_count_product_overflow_rejected(views):
    try:
        tokens, cnt = views.make((4, 8), f16), views.make((2**40, 2**40), i32, strides=(0, 0))
        outs = (views.make((4, 8), f16), views.make((4,)), views.make((4,), i32), views.make((2**40,), i32, strides=(0,)))
        status, msg = _phase1("aclnnMoeReRouting", tokens, cnt, ffi.NULL, 1, 0, *outs)
        assert status == 561002, msg
    except _Refused as e:  # refused at aclCreateTensor: the size itself passes int64 bytes
        assert _refused_for_size(e), str(e)


# --------------------------------------------------------------------------- workspaceSize larger than the block
def test_compute_expert_tokens_ignores_an_inflated_workspace_size():
    """The kernel sizes its per-chunk histograms from phase 1's size, not the (larger) workspaceSize claim."""
    rows, e = 1 << 18, 16
    sorted_experts = np.sort(np.random.default_rng(0).integers(0, e, rows)).astype(i32)
    xb, ob = DeviceBuffer(sorted_experts.nbytes), DeviceBuffer(e * 4)
    xb.upload(sorted_experts)
    d_in, d_out = ffi.new("int64_t[]", [rows]), ffi.new("int64_t[]", [e])
    t_in = lib.aclCreateTensor(d_in, 1, acl_dtype("int32"), ffi.NULL, 0, lib.ACL_FORMAT_ND, d_in, 1, xb.cptr)
    t_out = lib.aclCreateTensor(d_out, 1, acl_dtype("int32"), ffi.NULL, 0, lib.ACL_FORMAT_ND, d_out, 1, ob.cptr)
    try:
        ws, ex = ffi.new("uint64_t *"), ffi.new("aclOpExecutor **")
        assert lib.aclnnMoeComputeExpertTokensGetWorkspaceSize(t_in, e, t_out, ws, ex) == 0
        w = DeviceBuffer(max(ws[0], 1))
        try:
            assert lib.aclnnMoeComputeExpertTokens(w.cptr, ws[0] * 64 + 4096, ex[0], ffi.NULL) == 0, recent_message()
        finally:
            w.close()
        got = np.zeros(e, i32)
        ob.download(got)
        np.testing.assert_array_equal(got, np.searchsorted(sorted_experts, np.arange(e), side="right"))
    finally:
        lib.aclDestroyTensor(t_in)
        lib.aclDestroyTensor(t_out)
        xb.close()
        ob.close()


# --------------------------------------------------------------------------- overlapping operands
def _run(api, args, ws_buf=None):
    ws, ex = ffi.new("uint64_t *"), ffi.new("aclOpExecutor **")
    status = getattr(lib, api + "GetWorkspaceSize")(*args, ws, ex)
    assert status == 0, recent_message()
    own = None
    if ws_buf is None and ws[0]:
        own = ws_buf = DeviceBuffer(ws[0])
    try:
        return getattr(lib, api)(ws_buf.cptr if ws_buf else ffi.NULL, ws[0], ex[0], ffi.NULL), ws[0]
    finally:
        if own:
            own.close()


def _upload(views, a, nbytes=None):
    buf = DeviceBuffer(max(nbytes or a.nbytes, 64))
    buf.upload(np.ascontiguousarray(a))
    views.keep.append(buf)
    return buf


def test_reroute_index_output_sharing_the_token_output(views):
    """permuteTokenIdxOut on the bytes of permuteTokensOut: the rows are gathered from the blocks, not read back
    from the index output (whose values are then token bytes), so permuteTokensOut is still right."""
    A, H = 4, 8
    tokens = np.arange(A * H, dtype=np.int8).reshape(A, H) + 100
    counts = np.array([[1, 1], [2, 0]], i32)  # rank-major; expert-major order: rows 0, 2, 3, 1
    tb, cb = _upload(views, tokens), _upload(views, counts)
    shared = DeviceBuffer(A * H)
    views.keep.append(shared)
    args = (views.make((A, H), np.int8, buf=tb), views.make((2, 2), i32, buf=cb), ffi.NULL, 1, 0,
            views.make((A, H), np.int8, buf=shared), views.make((A,)), views.make((A,), i32, buf=shared),
            views.make((2,), i32))
    status, _ = _run("aclnnMoeReRouting", args)
    if _overlap_refused(status):
        return
    assert status == 0, recent_message()
    got = np.zeros((A, H), np.int8)
    shared.download(got)
    np.testing.assert_array_equal(got, tokens[[0, 2, 3, 1]])


def test_finalize_out_over_its_row_index_stays_in_bounds(views):
    """out written over expandedRowIdx (and expertIdx): the indices re-read per row are bounded."""
    N, K, H, E = 64, 2, 16, 4
    rng = np.random.default_rng(1)
    shared = _upload(views, np.arange(N * K, dtype=i32), N * H * 4)
    eb = _upload(views, rng.integers(0, E, (N, K)).astype(i32), N * H * 4)
    xb = _upload(views, rng.standard_normal((N * K, H)).astype(f32) * 1e30)
    args = (views.make((N * K, H), buf=xb), views.make((N * K,), i32, buf=shared), ffi.NULL, ffi.NULL,
            views.make((E, H)), views.make((N, K)), views.make((N, K), i32, buf=eb), 0, views.make((N, H), buf=shared))
    status, _ = _run("aclnnMoeFinalizeRoutingV2", args)
    assert status == 0 or _overlap_refused(status), recent_message()


@pytest.mark.parametrize("api", ["aclnnMoeInitRouting", "aclnnMoeInitRoutingV2", "aclnnMoeTokenPermuteWithEp"])
def test_workspace_over_an_output_stays_in_bounds(views, api):
    """The workspace block given as the memory of the index outputs: the re-read order is bounded."""
    N, K, H = 64, 2, 8
    rng = np.random.default_rng(2)
    x = _upload(views, rng.standard_normal((N, H)).astype(f32))
    experts = _upload(views, rng.integers(0, 8, (N, K)).astype(i32))
    ws_block = DeviceBuffer(1 << 16)
    ws_block.upload(np.full(1 << 14, 0x7F7F7F7F, np.int32))
    views.keep.append(ws_block)
    xi, ei = views.make((N, H), buf=x), views.make((N, K), i32, buf=experts)
    if api == "aclnnMoeInitRouting":
        rows = _upload(views, np.arange(N * K, dtype=i32).reshape(K, N).T.copy())
        args = (xi, views.make((N, K), i32, buf=rows), ei, N, views.make((N * K, H)),
                views.make((N * K,), i32, buf=ws_block), views.make((N * K,), i32, buf=ws_block))
    elif api == "aclnnMoeInitRoutingV2":
        args = (xi, ei, 0, 0, 8, 0, 0, False, views.make((N * K, H)), views.make((N * K,), i32, buf=ws_block),
                ffi.NULL, ffi.NULL)
    else:
        args = (xi, ei, ffi.NULL, ffi.NULL, 0, False, views.make((N * K, H)),
                views.make((N * K,), i32, buf=ws_block), ffi.NULL)
    status, need = _run(api, args, ws_block)
    assert need <= ws_block.nbytes
    assert status == 0 or _overlap_refused(status), recent_message()


def test_output_with_stride_zero_rejected(views):
    """An output that overlaps itself (stride 0 on a dim of size > 1) is refused in phase 1; inputs may broadcast."""
    se = _upload(views, np.array([0, 1, 1, 3], i32))
    ok = _phase1("aclnnMoeComputeExpertTokens", views.make((4,), i32, strides=(0,), buf=se), 4, views.make((4,), i32))
    assert ok == (0, ""), ok  # the broadcast input is fine
    status, msg = _phase1("aclnnMoeComputeExpertTokens", views.make((4,), i32, buf=se), 4,
                          views.make((4,), i32, strides=(0,)))
    assert status == 161002 and "out has stride 0" in msg, msg
