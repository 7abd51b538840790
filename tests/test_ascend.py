"""Integration tests for an Ascend box with CANN (and torch_npu): the same operators through the real
libraries, checked against the numpy references and against torch_npu's own bindings. They skip elsewhere."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import aclnn_moe as am
from aclnn_moe import reference as ref
from aclnn_moe.capi import backend, has_symbol

pytestmark = pytest.mark.ascend


def test_selftest_passes_on_the_npu():
    r = subprocess.run([sys.executable, "-m", "aclnn_moe.cli", "selftest"], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr


def test_backend_is_cann_with_its_operator_libraries():
    b = backend()
    assert b.name == "cann" and b.op_libraries, b
    assert has_symbol("aclnnMoeComputeExpertTokens") and has_symbol("aclnnMoeFinalizeRouting")


@pytest.mark.parametrize("api_version", [1, 2])
def test_finalize_routing_both_versions(rng, api_version):
    if api_version == 2 and not has_symbol("aclnnMoeFinalizeRoutingV2"):
        pytest.skip("this CANN has no aclnnMoeFinalizeRoutingV2")
    n, k, h, e = 16, 4, 64, 8
    rows = rng.standard_normal((n * k, h)).astype(np.float32)
    skip1 = rng.standard_normal((n, h)).astype(np.float32)
    bias = rng.standard_normal((e, h)).astype(np.float32)
    scales = rng.random((n, k)).astype(np.float32)
    idx = rng.integers(0, e, (n, k)).astype(np.int32)
    perm = rng.permutation(n * k).astype(np.int32)
    got = am.moe_finalize_routing(rows, skip1, None, bias, scales, perm, idx, 0, api_version=api_version)
    want = ref.moe_finalize_routing(rows, skip1, None, bias, scales, perm, idx, 0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.torch_npu
def test_gating_top_k_matches_torch_npu_on_device_tensors(rng):
    import torch
    import torch_npu

    x = torch.from_numpy(rng.standard_normal((64, 256)).astype(np.float32)).npu()
    bias = torch.from_numpy(rng.standard_normal(256).astype(np.float32)).npu()
    kw = dict(k_group=4, group_count=8, group_select_mode=1, norm_type=1, routed_scaling_factor=2.5)
    y, idx, _ = am.moe_gating_top_k(x, 8, bias=bias, **kw)  # NPU tensors in, NPU tensors out
    assert y.device.type == "npu"
    y_ref, idx_ref, _ = torch_npu.npu_moe_gating_top_k(x, 8, bias=bias, **kw)
    torch.testing.assert_close(y.cpu(), y_ref.cpu())
    assert torch.equal(idx.cpu(), idx_ref.cpu())


@pytest.mark.torch_npu
def test_permute_with_ep_has_no_torch_npu_entry_but_works_here(rng):
    import torch

    x = torch.from_numpy(rng.standard_normal((32, 128)).astype(np.float32)).npu()
    idx = torch.from_numpy(rng.integers(0, 16, (32, 4)).astype(np.int32)).npu()
    pt, sorted_idx, _ = am.moe_token_permute_with_ep(x, idx, range=[8, 64])
    want, want_idx, _ = ref.moe_token_permute_with_ep(x.cpu().numpy(), idx.cpu().numpy(), range=[8, 64])
    np.testing.assert_array_equal(sorted_idx.cpu().numpy(), want_idx)
    np.testing.assert_array_equal(pt.cpu().numpy(), want)


# ---- the torch_npu interop rules of tests/test_cann_path.py, on the real thing
@pytest.mark.torch_npu
def test_one_libascendcl_next_to_torch_npu():
    import torch
    import torch_npu  # noqa: F401
    from aclnn_moe.capi._backend import loaded_copies

    x = torch.arange(8, dtype=torch.int32).npu() % 4
    am.moe_compute_expert_tokens(torch.sort(x).values, 4)
    assert len(loaded_copies("libascendcl.so")) == 1, loaded_copies("libascendcl.so")


@pytest.mark.torch_npu
def test_operands_on_another_device_run_there_with_its_stream(rng):
    import torch
    import torch_npu  # noqa: F401

    if torch.npu.device_count() < 2:
        pytest.skip("needs two NPUs")
    torch.npu.set_device(0)
    x_host = rng.standard_normal((64, 256)).astype(np.float32)
    x = torch.from_numpy(x_host).to("npu:1")
    y, idx, _ = am.moe_gating_top_k(x, 8)
    assert y.device.index == 1 and torch.npu.current_device() == 0
    want_y, want_idx, _ = ref.moe_gating_top_k(x_host, 8)
    np.testing.assert_array_equal(idx.cpu().numpy(), want_idx)
    s = torch.npu.Stream("npu:1")
    y2, _, _ = am.moe_gating_top_k(x, 8, stream=s)
    s.synchronize()
    torch.testing.assert_close(y2.cpu(), y.cpu())


@pytest.mark.torch_npu
def test_an_nz_tensor_is_refused_on_the_npu(rng):
    import torch
    import torch_npu

    x = torch.from_numpy(rng.standard_normal((64, 256)).astype(np.float16)).npu()
    nz = torch_npu.npu_format_cast(x, 29)
    with pytest.raises(am.ArgumentError, match=r"FRACTAL_NZ.*npu_format_cast\(x, 2\)"):
        am.moe_gating_top_k(nz, 8)
    y, _, _ = am.moe_gating_top_k(torch_npu.npu_format_cast(nz, 2), 8)  # the advised conversion works
    assert y.shape == (64, 8)
