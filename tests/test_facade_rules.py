"""Rules of the facade found by trying it as a new user would: byte order, attribute types, messages that name
the caller's keywords, results the caller owns, status names from the headers."""
from __future__ import annotations

import numpy as np
import pytest

import aclnn_moe as am
from aclnn_moe import reference as ref
from aclnn_moe._errors import status_name
from aclnn_moe.capi import lib


def test_non_native_byte_order_is_converted_not_reinterpreted(rng):
    ids = np.array([0, 0, 1, 3], ">i4")
    np.testing.assert_array_equal(am.moe_compute_expert_tokens(ids, 4), [2, 3, 3, 4])
    x = rng.standard_normal((6, 16)).astype(np.float32)
    _, idx, _ = am.moe_gating_top_k(x.astype(">f4"), 3)
    np.testing.assert_array_equal(idx, ref.moe_gating_top_k(x, 3)[1])


@pytest.mark.parametrize("bad", [2.7, True, np.float32(2.0), "2", None, 2 ** 63, -(2 ** 63) - 1])
def test_integer_attributes_take_integers_only(bad):
    x = np.zeros((2, 8), np.float32)
    with pytest.raises(am.ArgumentError) as e:
        am.moe_gating_top_k(x, bad)
    assert e.value.param == "k"
    with pytest.raises(am.ArgumentError) as e:
        am.moe_init_routing_v2(x, np.zeros((2, 2), np.int32), active_num=bad)
    assert e.value.param == "active_num"


def test_numpy_integers_are_integers():
    y, idx, _ = am.moe_gating_top_k(np.zeros((2, 8), np.float32), np.int64(2), k_group=np.int32(1))
    assert y.shape == (2, 2)


def test_range_values_beyond_int64_are_argument_errors():
    tokens, indices = np.zeros((2, 4), np.float32), np.zeros((2, 1), np.int32)
    with pytest.raises(am.ArgumentError) as e:
        am.moe_token_permute_with_ep(tokens, indices, range=[0, 2 ** 64])
    assert e.value.param == "range[1]"


def test_c_check_messages_name_the_python_keywords(rng):
    rows = np.arange(4, dtype=np.int32)
    x = rng.standard_normal((4, 8)).astype(np.float32)
    skip = np.zeros((4, 8), np.float32)
    with pytest.raises(am.AclnnError) as e:
        am.moe_finalize_routing(x, None, skip, None, None, rows, None, api_version=2)
    assert "skip2" in e.value.message and "skip1" in e.value.message, e.value.message
    assert "x2Optional" in e.value.c_message and "x2Optional" not in e.value.message
    with pytest.raises(am.AclnnError) as e:
        am.moe_finalize_routing(x, None, None, np.zeros((2, 8), np.float32), np.ones((4, 1), np.float32), rows,
                                None, api_version=2)
    assert "export_for_source_row" in e.value.message and "bias" in e.value.message, e.value.message


@pytest.mark.parametrize("to_kind", [lambda a: a, am.to_device])
def test_each_execute_returns_arrays_the_caller_owns(rng, to_kind):
    xs = [rng.standard_normal((4, 16)).astype(np.float32) for _ in range(2)]
    host = lambda r: r.to_host() if isinstance(r, am.DeviceArray) else r  # noqa: E731
    with am.MoeGatingTopK(to_kind(xs[0]), 2) as op:
        op.plan()
        first = op.execute()
        op.reset_operands(x=to_kind(xs[1]))
        second = op.execute()
        np.testing.assert_array_equal(host(first[1]), ref.moe_gating_top_k(xs[0], 2)[1])
        np.testing.assert_array_equal(host(second[1]), ref.moe_gating_top_k(xs[1], 2)[1])
        assert first[0] is not second[0]


def test_reuse_outputs_is_the_explicit_allocation_free_mode(rng):
    xs = [rng.standard_normal((4, 16)).astype(np.float32) for _ in range(2)]
    with am.MoeGatingTopK(xs[0], 2, reuse_outputs=True) as op:
        op.plan()
        first = op.execute()
        op.reset_operands(x=xs[1])
        second = op.execute()
        assert first[0] is second[0]  # the same buffer, overwritten by the second call
        np.testing.assert_array_equal(first[1], ref.moe_gating_top_k(xs[1], 2)[1])


def test_reset_operands_rebinds_by_c_index_even_when_python_order_differs(rng):
    """FinalizeRoutingV2 takes expandedRowIdx second in C but sixth in Python."""
    n, k, h = 5, 2, 8
    x = am.to_device(rng.standard_normal((n * k, h)).astype(np.float32))
    scales = am.to_device(rng.random((n, k)).astype(np.float32))
    perms = [rng.permutation(n * k).astype(np.int32) for _ in range(2)]
    with am.MoeFinalizeRouting(x, None, None, None, scales, am.to_device(perms[0]), None, api_version=2) as op:
        op.plan()
        for p in perms:
            op.reset_operands(expanded_src_to_dst_row=am.to_device(p))
            got = op.execute().to_host()
            exp = ref.moe_finalize_routing(x.to_host(), None, None, None, scales.to_host(), p, None, 0)
            np.testing.assert_array_equal(got, exp)


def test_status_names_come_from_the_headers():
    assert status_name(561103) == "ACLNN_ERR_INNER_NULLPTR"
    for code in range(561104, 561120):
        assert status_name(code).startswith("ACLNN_ERR_INNER_"), code
    assert status_name(int(lib.ACL_ERROR_RT_MEMORY_ALLOCATION)) == "ACL_ERROR_RT_MEMORY_ALLOCATION"
    assert status_name(0) == "ACL_SUCCESS"


def test_a_negative_expert_id_names_the_real_rule():
    x = np.zeros((3, 4), np.float32)
    ids = np.array([[0, -1], [1, 2], [0, 1]], np.int32)
    with pytest.raises(am.AclnnError) as e:
        am.moe_init_routing_v2(x, ids)
    assert "expert_idx[0, 1] = -1 is negative" in e.value.message and "2147483647" not in e.value.message
    with pytest.raises(am.AclnnError) as e:
        am.moe_init_routing_v2(x, ids, expert_num=4, expert_tokens_count_or_cumsum_flag=1)
    assert "outside [0, 4)" in e.value.message
