"""The contract every operator keeps, tested generically over every spec of the registry (variants included).

The C-level tests go through the raw two-phase C API (``ws_status``), so they hold on a real CANN too: a NULL
required tensor is 161001, a dtype the spec does not list is 161002, outputs shaped by the spec's rules are what
the operator writes (and a wrong output shape is refused). The facade-level tests check the lifecycle (plan,
reset_operands, execute, free, double free) and that strided host inputs and device inputs give the same bits.
"""
from __future__ import annotations

import numpy as np
import pytest

import aclnn_moe as am
from aclnn_moe import ops
from aclnn_moe._dtypes import bfloat16
from aclnn_moe._operands import Operand
from aclnn_moe._operation import _IntArray
from aclnn_moe._spec import Output, Tensor
from aclnn_moe.capi import lib
from aclnn_moe.ops._compare import assert_all_same

SPECS = ops.all_specs()
_CANDIDATE_DTYPES = ("float32", "float16", "bfloat16", "int8", "int32", "int64", "bool", "float64")


def _examples_for(spec, rng):
    """(public spec, kwargs, facade operation) of the examples whose chosen C function is `spec`'s."""
    public = next(s for s in ops.specs() if s.operator == spec.operator)
    out = []
    for kwargs in public.examples(rng):
        op = ops.CLASSES[public.cls](**kwargs)
        if op.spec.api == spec.api:
            out.append((public, kwargs, op))
        else:
            op.free()
    assert out, f"{spec.api}: no example uses it"
    return out


def _raw_args(op):
    """The C arguments of a built (not yet described) operation: numpy arrays for tensors, lists for int
    arrays, None for NULL, scalars as they are; plus the output arrays in C order."""
    args, outputs = [], []
    for a in op._args:
        if isinstance(a, Operand):
            if a in op._outputs:
                arr = np.zeros(a.shape, bfloat16 if a.dtype == "bfloat16" else np.dtype(a.dtype))
                outputs.append(arr)
            else:
                arr = np.ascontiguousarray(a.host)
            args.append(arr)
        elif isinstance(a, _IntArray):
            args.append(list(a.values))
        else:
            args.append(a)
    return args, outputs


def _binding(spec):
    from aclnn_moe._spec import prototypes

    return spec.bind(prototypes())


@pytest.fixture(params=SPECS, ids=lambda s: s.api)
def spec(request):
    return request.param


def test_each_required_tensor_null_is_161001(spec, rng, ws_status):
    public, kwargs, op = _examples_for(spec, rng)[0]
    args, _ = _raw_args(op)
    op.free()
    checked = 0
    for i, p in enumerate(_binding(spec)):
        required = (isinstance(p, Tensor) and not p.optional) or (isinstance(p, Output) and p.when is None)
        if not required or args[i] is None:
            continue
        bad = list(args)
        bad[i] = None
        status, msg = ws_status(spec.api, *bad)
        assert status == lib.ACLNN_ERR_PARAM_NULLPTR, (p.c, status, msg)
        assert p.c in msg, (p.c, msg)
        checked += 1
    assert checked >= 2


def test_each_unlisted_dtype_is_161002(spec, rng, ws_status):
    public, kwargs, op = _examples_for(spec, rng)[0]
    args, _ = _raw_args(op)
    op.free()
    checked = 0
    for i, p in enumerate(_binding(spec)):
        if not isinstance(p, Tensor) or args[i] is None:
            continue
        for dt in _CANDIDATE_DTYPES:
            if dt in p.dtypes:
                continue
            bad = list(args)
            bad[i] = args[i].astype(bfloat16 if dt == "bfloat16" else dt)
            status, msg = ws_status(spec.api, *bad)
            assert status == lib.ACLNN_ERR_PARAM_INVALID, (p.c, dt, status, msg)
            assert p.c in msg, (p.c, dt, msg)
            checked += 1
    assert checked >= 1


def test_outputs_shaped_by_the_spec_are_what_the_operator_writes(spec, rng, ws_status):
    for public, kwargs, op in _examples_for(spec, rng):
        args, outputs = _raw_args(op)
        results = op._results
        op.free()
        status, msg = ws_status(spec.api, *args, run=True)
        assert status == 0, msg
        # what the facade returns for this call: the outputs in result order (None where not returned)
        by_id = {id(o): arr for o, arr in zip([a for a in op._args if isinstance(a, Operand) and a in op._outputs],
                                             outputs)}
        res = results if isinstance(results, tuple) else (results,)
        got = tuple(None if r is None else by_id[id(r)] for r in res)
        ref = public.reference()
        import inspect

        accepted = inspect.signature(ref).parameters
        exp = ref(**{k: v for k, v in kwargs.items() if k in accepted})
        got = got if isinstance(exp, tuple) else got[0]
        if public.compare is not None:
            public.compare(got, exp, kwargs, spec.api)
        else:
            assert_all_same(got, exp, public.result_names(), spec.api)


def test_an_output_of_another_shape_is_refused(spec, rng, ws_status):
    """Every output the call returns is checked against its rule (one more row is refused)."""
    public, kwargs, op = max(_examples_for(spec, rng), key=lambda e: min(
        (min(o.shape) if o.shape else 0) for o in e[2]._outputs))
    args, _ = _raw_args(op)
    res = op._results if isinstance(op._results, tuple) else (op._results,)
    returned = {r.name for r in res if r is not None}
    op.free()
    checked = 0
    for i, p in enumerate(_binding(spec)):
        if not isinstance(p, Output) or args[i] is None or args[i].ndim == 0 or p.name not in returned:
            continue
        bad = list(args)
        bad[i] = np.zeros((args[i].shape[0] + 1,) + args[i].shape[1:], args[i].dtype)
        status, msg = ws_status(spec.api, *bad)
        assert status != 0, f"{p.c} of shape {bad[i].shape} accepted"
        checked += 1
    assert checked >= 1


@pytest.fixture(params=ops.specs(), ids=lambda s: s.operator)
def public_spec(request):
    return request.param


def _host(r):
    if isinstance(r, tuple):
        return tuple(_host(x) for x in r)
    return r.to_host() if isinstance(r, am.DeviceArray) else r


def _compare(spec, got, exp, kwargs, what):
    if spec.compare is not None:
        spec.compare(got, exp, kwargs, what)
    else:
        assert_all_same(got, exp, spec.result_names(), what)


def _reference(spec, kwargs):
    import inspect

    ref = spec.reference()
    accepted = inspect.signature(ref).parameters
    return ref(**{k: v for k, v in kwargs.items() if k in accepted})


def _same_layout(spec, a, b):
    """Two calls that one plan serves: equal attributes, tensors of equal shapes and dtypes."""
    for p in spec.python_params():
        x, y = a.get(p.name), b.get(p.name)
        if isinstance(p, Tensor):
            if (x is None) != (y is None):
                return False
            if x is not None and (np.shape(x) != np.shape(y) or np.asarray(x).dtype != np.asarray(y).dtype):
                return False
        elif x != y:
            return False
    return True


def test_lifecycle_plan_rebind_execute_free(public_spec, rng):
    spec = public_spec
    cls = ops.CLASSES[spec.cls]
    pick = -1 if spec.operator == "MoeGatingTopK" else 0
    kwargs = spec.examples(rng)[pick]
    tensors = [p.name for p in spec.python_params() if isinstance(p, Tensor) and kwargs.get(p.name) is not None]
    # another draw of the same example: the same layout and attributes, other values, so a rebind that did not
    # take would give the first call's results
    other = spec.examples(np.random.default_rng(rng.integers(1 << 31)))[pick]
    other = other if _same_layout(spec, kwargs, other) else kwargs
    op = cls(**kwargs).plan()
    try:
        _compare(spec, op.execute(), _reference(spec, kwargs), kwargs, "first execute")
        fresh = {n: np.ascontiguousarray(other[n]).copy() for n in tensors}  # same layout, new memory
        op.reset_operands(**fresh)
        for _ in range(2):
            _compare(spec, op.execute(), _reference(spec, other), other, "after reset_operands")
        dev = {n: am.to_device(kwargs[n]) for n in tensors}
        with cls(**dict(kwargs, **dev)) as dop:
            dop.plan()
            for _ in range(2):
                _compare(spec, _host(dop.execute()), _reference(spec, kwargs), kwargs, "device operands")
            dop.reset_operands(**{n: am.to_device(kwargs[n]) for n in tensors})
            _compare(spec, _host(dop.execute()), _reference(spec, kwargs), kwargs, "device rebind")
        with pytest.raises(am.ArgumentError):
            op.reset_operands(not_a_parameter=kwargs[tensors[0]])
    finally:
        op.free()
    op.free()  # idempotent
    with pytest.raises(RuntimeError, match="freed"):
        op.execute()


def _strided(a):
    """The same values as a non-contiguous view (every other element of a wider array along the last axis)."""
    a = np.asarray(a)
    if a.ndim == 0 or a.size == 0:
        return a
    wide = np.zeros(a.shape[:-1] + (a.shape[-1] * 2,), a.dtype)
    wide[..., ::2] = a
    view = wide[..., ::2]
    assert not view.flags.c_contiguous or a.shape[-1] == 1
    return view


def test_strided_host_inputs_give_the_same_bits(public_spec, rng):
    spec = public_spec
    fn = ops.FUNCTIONS[spec.function]
    for kwargs in spec.examples(rng)[:3]:
        tensors = [p.name for p in spec.python_params() if isinstance(p, Tensor) and kwargs.get(p.name) is not None]
        strided = dict(kwargs, **{n: _strided(kwargs[n]) for n in tensors})
        _compare(spec, fn(**strided), _reference(spec, kwargs), kwargs, "strided inputs")
