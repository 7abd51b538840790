"""aclnn_moe.torch_npu_compat: torch_npu's names, order, keywords and defaults; install() defines torch.ops.npu with
op-plugin's schemas and a torch_npu module only when the real torch_npu is absent (each install runs in a fresh
interpreter, so nothing leaks into the other tests)."""
from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch", reason="torch is optional (the `torch` extra); these tests need it")

import aclnn_moe.torch_npu_compat as compat  # noqa: E402
from aclnn_moe import ArgumentError  # noqa: E402


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-P", "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def _schema_args(schema: str):
    return torch._C.parse_schema("npu::" + schema).arguments


@pytest.mark.parametrize("name", sorted(compat.SCHEMAS))
def test_function_signature_is_op_plugins(name):
    assert name in compat.available(), f"{compat.BACKING[name]} declares {name} but is not registered"
    sig = inspect.signature(getattr(compat, name))
    args = _schema_args(compat.SCHEMAS[name])
    params = list(sig.parameters.values())
    assert [p.name for p in params] == [a.name for a in args]
    for p, a in zip(params, args):
        assert (p.kind == p.KEYWORD_ONLY) == a.kwarg_only, p.name
        if a.default_value is not None or p.default is not inspect.Parameter.empty:
            if a.default_value is None and "?" not in str(a.type) and p.default is inspect.Parameter.empty:
                continue
            want = a.default_value
            got = p.default
            assert (list(got) if isinstance(got, (list, tuple)) else got) == want, p.name


def test_specs_naming_a_torch_npu_function_are_covered():
    from aclnn_moe import ops

    names = {n for s in ops.specs() for n in s.torch_npu_names}
    assert names == set(compat.SCHEMAS) == set(compat.available())
    for spec in ops.specs():  # each schema parses and names its function
        for schema, name in zip(spec.torch_npu, spec.torch_npu_names):
            assert str(torch._C.parse_schema("npu::" + schema).name) == "npu::" + name


def test_nothing_is_installed_on_import():
    out = _run("""
        import sys, torch, aclnn_moe.torch_npu_compat as c
        print('torch_npu' in sys.modules, hasattr(torch.ops.npu, 'npu_moe_init_routing_v2'), c.installed())
    """)
    assert out.split() == ["False", "False", "False"]


def test_unsupported_arguments_raise_naming_them():
    x = torch.randn(4, 8)
    with pytest.raises(ArgumentError, match="input_ids"):
        compat.npu_moe_gating_top_k(x, 2, input_ids=torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ArgumentError, match="x_dtype"):
        compat.npu_moe_init_routing_v2(x, torch.zeros(4, 2, dtype=torch.int32), expert_num=4, x_dtype=1)
    with pytest.raises(ArgumentError, match="tokens_dtype"):
        compat.npu_moe_re_routing(x.half(), torch.ones(1, 4, dtype=torch.int32), tokens_dtype=1)
    with pytest.raises(ArgumentError, match="k"):
        compat.npu_moe_finalize_routing(x, None, None, None, torch.rand(4, 2), torch.arange(8, dtype=torch.int32),
                                        None, 2, k=3)


def test_gating_top_k_returns_torch_npus_three_outputs():
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(2))
    y, idx, out = compat.npu_moe_gating_top_k(x, 2, norm_type=1)
    assert y.shape == (5, 2) and idx.dtype == torch.int32 and out.shape == (5, 8) and out.dtype == torch.float32
    torch.testing.assert_close(out, torch.sigmoid(x))
    torch.testing.assert_close(y, torch.sigmoid(x).gather(1, idx.long()) / torch.sigmoid(x).gather(
        1, idx.long()).sum(1, keepdim=True))


def test_finalize_routing_k_without_scales_sums_k_rows():
    g = torch.Generator().manual_seed(0)
    n, k, h = 5, 3, 4
    x = torch.randn(n * k, h, generator=g)
    r = torch.randperm(n * k, generator=g).to(torch.int32)
    out = compat.npu_moe_finalize_routing(x, None, None, None, None, r, None, 2, k=k)
    torch.testing.assert_close(out, x[r.long()].view(n, k, h).sum(1))


def test_init_routing_v2_defaults_are_v3_semantics():
    g = torch.Generator().manual_seed(1)
    n, k, h, e = 6, 2, 4, 5
    x = torch.randn(n, h, generator=g)
    ids = torch.randint(0, e, (n, k), generator=g, dtype=torch.int32)
    ex, ri, counts, scale = compat.npu_moe_init_routing_v2(x, ids, expert_num=e, expert_tokens_num_flag=True,
                                                          expert_tokens_num_type=1, active_expert_range=[1, 4])
    inr = (ids >= 1) & (ids < 4)
    assert counts.dtype == torch.int64 and counts.tolist() == [int((ids == i).sum()) for i in (1, 2, 3)]
    assert ex.shape == (n * k, h) and int((ri >= 0).sum()) == int(inr.sum())
    assert scale.numel() == 0  # torch_npu's empty expanded_scale without quant or scale
    for p in range(n * k):
        if ri[p] >= 0:
            torch.testing.assert_close(ex[ri[p]], x[p // k])


def test_install_defines_torch_ops_npu_and_a_torch_npu_module():
    out = _run("""
        import sys, torch
        import aclnn_moe.torch_npu_compat as c
        assert c.install() is True and c.install() is True
        import torch_npu
        assert torch_npu.npu_moe_init_routing_v2 is torch.ops.npu.npu_moe_init_routing_v2
        s = str(torch.ops.npu.npu_moe_init_routing_v2.default._schema)
        assert "int[2] active_expert_range=[]" in s and "int? x_dtype=None" in s, s
        # every function runs through the dispatcher, meta tensors included
        x = torch.randn(6, 8); ids = torch.randint(0, 4, (6, 2), dtype=torch.int32)
        a = torch_npu.npu_moe_init_routing_v2(x, ids, expert_num=4, active_num=12)
        b = c.npu_moe_init_routing_v2(x, ids, expert_num=4, active_num=12)
        assert all(torch.equal(p, q) for p, q in zip(a, b))
        m = torch_npu.npu_moe_init_routing_v2(x.to('meta'), ids.to('meta'), expert_num=4, active_num=12)
        assert [t.shape for t in m] == [t.shape for t in a], ([t.shape for t in m], [t.shape for t in a])
        # autograd through the CompositeImplicitAutograd kernel
        xr = x.clone().requires_grad_(True)
        ex, ri, _, _ = torch.ops.npu.npu_moe_init_routing_v2(xr, ids, expert_num=4)
        ex.sum().backward()
        assert torch.equal(xr.grad, torch.full_like(x, 2.0))
        # compile, fullgraph
        f = torch.compile(lambda x, ids: torch_npu.npu_moe_token_unpermute(
            *torch_npu.npu_moe_token_permute(x, ids)[:2], torch.full((6, 2), 0.5)), fullgraph=True, backend="aot_eager")
        torch.testing.assert_close(f(x, ids), x)
        print(sorted(n for n in dir(torch_npu) if n.startswith("npu_moe")))
    """)
    assert "npu_moe_init_routing_v2" in out and "npu_moe_finalize_routing" in out


def test_install_changes_nothing_when_the_real_torch_npu_is_there():
    out = _run("""
        import sys, types, torch
        import aclnn_moe.torch_npu_compat as c
        real = types.ModuleType("torch_npu")  # a stand-in for the real torch_npu, already imported
        sys.modules["torch_npu"] = real
        print(c.install(), c.installed(), sys.modules["torch_npu"] is real,
              hasattr(torch.ops.npu, "npu_moe_init_routing_v2"), hasattr(real, "npu_moe_init_routing_v2"))
    """)
    assert out.split() == ["False", "False", "True", "False", "False"]


def test_install_changes_nothing_when_torch_npu_is_importable(tmp_path):
    (tmp_path / "torch_npu").mkdir()
    (tmp_path / "torch_npu" / "__init__.py").write_text("MARK = 'real'\n")
    out = _run(f"""
        import sys, torch
        sys.path.insert(0, {str(tmp_path)!r})
        import aclnn_moe.torch_npu_compat as c
        r = c.install()
        import torch_npu
        print(r, torch_npu.MARK, hasattr(torch.ops.npu, "npu_moe_token_permute"))
    """)
    assert out.split() == ["False", "real", "False"]
