"""torch.ops.aclnn_moe: schemas, CPU kernels, fake implementations, opcheck, torch.compile."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is optional (the `torch` extra); these tests need it")

import aclnn_moe.torch as amt  # noqa: E402
from aclnn_moe import ops  # noqa: E402
from aclnn_moe._operands import numpy_to_torch  # noqa: E402
from aclnn_moe.ops._compare import assert_all_same  # noqa: E402


def _to_torch(kwargs):
    return {k: numpy_to_torch(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v
            for k, v in kwargs.items()}


def _to_numpy(r):
    from aclnn_moe._operands import _torch_to_numpy

    if isinstance(r, tuple):
        return tuple(_to_numpy(x) for x in r)
    return _torch_to_numpy(r)


@pytest.fixture(params=ops.specs(), ids=lambda s: s.operator)
def spec(request):
    return request.param


def test_importing_aclnn_moe_does_not_import_torch():
    code = "import sys, aclnn_moe; import aclnn_moe.ops; assert 'torch' not in sys.modules, 'torch imported'"
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_every_operator_is_a_torch_op_with_torch_npus_names(spec):
    op = getattr(torch.ops.aclnn_moe, spec.function)
    schema = op.default._schema
    assert [a.name for a in schema.arguments] == [p.name for p in spec.python_params()]
    assert spec.function in amt.op_names()


def test_torch_op_matches_the_reference_on_every_example(spec, rng):
    op = getattr(torch.ops.aclnn_moe, spec.function)
    for i, kwargs in enumerate(spec.examples(rng)[:4]):
        got = op(**_to_torch(kwargs))
        ref = spec.reference()
        import inspect

        acc = inspect.signature(ref).parameters
        exp = ref(**{k: v for k, v in kwargs.items() if k in acc})
        got = _to_numpy(got)
        # absent outputs are empty tensors in torch, None in the reference
        if isinstance(exp, tuple):
            got = tuple(None if e is None else g for g, e in zip(got, exp))
        if spec.compare is not None:
            spec.compare(got, exp, kwargs, f"{spec.operator} {i}")
        else:
            assert_all_same(got, exp, spec.result_names(), f"{spec.operator} {i}")


def test_opcheck_passes_on_every_example(spec, rng):
    op = getattr(torch.ops.aclnn_moe, spec.function)
    for kwargs in spec.examples(rng)[:3]:
        kw = _to_torch(kwargs)
        names = [p.name for p in spec.python_params()]
        positional = [kw.pop(n) for n in names if n in kw and not _kw_only(spec, n)]
        torch.library.opcheck(op, tuple(positional), kw)


def _kw_only(spec, name):
    from aclnn_moe._spec import KW

    seen = False
    for p in spec.params:
        if p == KW:
            seen = True
        elif p.name == name:
            return seen
    return False


def test_meta_tensors_get_the_output_shapes(spec, rng):
    op = getattr(torch.ops.aclnn_moe, spec.function)
    kwargs = spec.examples(rng)[0]
    real = op(**_to_torch(kwargs))
    meta = op(**{k: v.to("meta") if isinstance(v, torch.Tensor) else v for k, v in _to_torch(kwargs).items()})
    real, meta = (real, meta) if isinstance(real, tuple) else ((real,), (meta,))
    for r, m in zip(real, meta):
        assert m.device.type == "meta" and m.shape == r.shape and m.dtype == r.dtype
