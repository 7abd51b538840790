"""Registration of the registry's operators with torch.library (schemas, CPU/NPU kernels, fake impls)."""
from __future__ import annotations

import torch

from .. import ops
from .._dtypes import name_of
from .._spec import KW, Args, Attr, IntList, OpSpec, Param, Tensor

NAMESPACE = "aclnn_moe"
_lib = None
_registered: dict[str, OpSpec] = {}


def _default(v) -> str:
    if v is None:
        return "None"
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(str(int(x)) for x in v) + "]"
    return str(v)


def _arg_schema(p: Param) -> str:
    if isinstance(p, Tensor):
        t = "Tensor?" if p.optional else "Tensor"
    elif isinstance(p, Attr):
        t = {"int": "int", "float": "float", "bool": "bool"}[p.kind]
        if p.has_default and p.default is None:
            t += "?"
    elif isinstance(p, IntList):
        t = "int[]" if isinstance(p.default, (list, tuple)) else "int[]?"  # a list default: torch_npu's `=[]`
    else:  # a Python-only parameter (e.g. finalize's api_version)
        t = "int?"
    return f"{t} {p.name}" + (f"={_default(p.default)}" if p.has_default else "")


def schema_of(spec: OpSpec) -> str:
    """The torch schema of a spec (without the namespace), e.g. ``moe_foo(Tensor x, int k, *, ...) -> (...)``."""
    args = ["*" if p == KW else _arg_schema(p) for p in spec.params]
    if args and args[-1] == "*":
        args.pop()
    rets = ", ".join(f"Tensor {n}" for n in spec.result_names())
    rets = f"({rets})" if len(spec.result_names()) > 1 else "Tensor"
    return f"{spec.function}({', '.join(args)}) -> {rets}"


_TORCH_DTYPE = {}


def torch_dtype(name: str):
    hit = _TORCH_DTYPE.get(name)
    if hit is None:
        hit = _TORCH_DTYPE[name] = getattr(torch, name)
    return hit


class _Meta:
    """What the shape rules read of a tensor: its shape and dtype name."""

    __slots__ = ("shape", "dtype")

    def __init__(self, t):
        self.shape = tuple(t.shape)
        self.dtype = name_of(t.dtype)


def _absent(spec: OpSpec, name: str, like):
    """The empty tensor that stands for an output the operator does not produce."""
    out = spec.output(name)
    dtype = out.dtype if isinstance(out.dtype, str) else "float32"
    return torch.empty((0,), dtype=torch_dtype(dtype), device=like.device)


def _bind(spec: OpSpec, args, kwargs) -> dict:
    names = [p.name for p in spec.python_params()]
    values = {p.name: p.default for p in spec.python_params() if p.has_default}
    values.update(zip(names, args))
    values.update(kwargs)
    return values


def _first_tensor(values):
    return next(v for v in values.values() if isinstance(v, torch.Tensor))


def _make_kernel(spec: OpSpec):
    """The CPU kernel: the arguments straight to the plan cache (the function form's own path), as a tuple in
    the Python parameter order, without a dict of them or another call layer."""
    from .._plan_cache import function_call

    cls = ops.CLASSES[spec.cls]
    params = spec.python_params()
    names = tuple(p.name for p in params)
    defaults = tuple(p.default if p.has_default else None for p in params)
    n = len(names)
    results = spec.result_names()
    single = len(results) == 1

    def kernel(*args, **kwargs):
        if len(args) == n and not kwargs:
            values = args
        else:  # (the dispatcher drops arguments equal to their default)
            values = args + tuple(kwargs.get(names[i], defaults[i]) for i in range(len(args), n))
        res = function_call(cls, values, None)
        if single:
            return res if res is not None else _absent(spec, results[0], _first_tensor_of(values))
        for r in res:
            if r is None:
                break
        else:
            return res
        like = _first_tensor_of(values)
        return tuple(r if r is not None else _absent(spec, nm, like) for nm, r in zip(results, res))

    kernel.__name__ = f"{spec.function}_kernel"
    return kernel


def _first_tensor_of(values):
    return next(v for v in values if isinstance(v, torch.Tensor))


def _make_fake(spec: OpSpec):
    names = spec.result_names()

    def fake(*args, **kwargs):
        values = _bind(spec, args, kwargs)
        like = _first_tensor(values)
        a = Args()
        for p in spec.python_params():
            v = values[p.name]
            if isinstance(p, Tensor):
                v = None if v is None else _Meta(v)
            elif isinstance(p, IntList):
                v = None if v is None or len(v) == 0 else [int(x) for x in v]
            setattr(a, p.name, v)
        if spec.prepare is not None:
            spec.prepare(a)
        layouts = spec.output_layouts(a, concrete=False)
        returned = spec.returned(a)
        out = []
        for n in names:
            lay = layouts[n]
            if lay is None or not returned[n]:
                out.append(_absent(spec, n, like))
            else:
                shape, dtype = lay
                out.append(like.new_empty(tuple(max(s, 0) if isinstance(s, int) else s for s in shape),
                                          dtype=torch_dtype(dtype)))
        return out[0] if len(out) == 1 else tuple(out)

    fake.__name__ = f"{spec.function}_fake"
    return fake


def register_all() -> None:
    """Define every operator of the registry (idempotent)."""
    global _lib
    if _lib is None:
        _lib = torch.library.Library(NAMESPACE, "DEF")
    for spec in ops.specs():
        if spec.function in _registered:
            continue
        _lib.define(schema_of(spec))
        _lib.impl(spec.function, _make_kernel(spec), "CPU")
        torch.library.register_fake(f"{NAMESPACE}::{spec.function}", _make_fake(spec), lib=_lib)
        _registered[spec.function] = spec
    from . import _autograd, _npu_kernels  # noqa: F401  (backward formulas; NPU kernels when torch_npu is there)


def op_names() -> list[str]:
    return list(_registered)
