"""Registration of the registry's operators with torch.library (schemas, CPU/NPU kernels, fake impls)."""
from __future__ import annotations

import torch

from .. import ops
from .._dtypes import name_of
from .._spec import KW, Args, Attr, IntList, OpSpec, Param, Tensor

NAMESPACE = "aclnn_moe"
_lib = None
_registered: dict[str, OpSpec] = {}
CPU_KERNELS: dict = {}  # op -> its CPU kernel (the Autograd kernel calls it directly when CPU is next)


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


def _absent_cpu(spec: OpSpec, name: str):
    """``_absent`` for the CPU kernel: a maker of the empty CPU tensor, its dtype read once."""
    out = spec.output(name)
    dtype = torch_dtype(out.dtype if isinstance(out.dtype, str) else "float32")
    return lambda: torch.empty(0, dtype=dtype)


def _bind(spec: OpSpec, args, kwargs) -> dict:
    names = [p.name for p in spec.python_params()]
    values = {p.name: p.default for p in spec.python_params() if p.has_default}
    values.update(zip(names, args))
    values.update(kwargs)
    return values


def _first_tensor(values):
    return next(v for v in values.values() if isinstance(v, torch.Tensor))


def _make_kernel(spec: OpSpec):
    """The CPU kernel: the arguments straight to the plan cache (the function form's own path). Generated with
    the spec's Python signature (``_spec._signature_source``, the one the function form has), so that Python binds
    the dispatcher's arguments (which omits those equal to their default) and the values go on as one tuple."""
    from .._plan_cache import function_call
    from .._spec import _signature_source

    params, values = _signature_source(spec, "")
    results = spec.result_names()
    defaults = {p.name: p.default for p in spec.python_params() if p.has_default}
    if len(results) == 1:
        body = "    res = _call(_cls, {values}, None)\n    return res if res is not None else _absent[0]()\n"
    else:
        body = ("    res = _call(_cls, {values}, None)\n"
                "    for r in res:\n"
                "        if r is None:\n"
                "            return tuple(r if r is not None else make() for make, r in zip(_absent, res))\n"
                "    return res\n")
    name = f"{spec.function}_kernel"
    src = f"def {name}({params}):\n" + body.format(values=values)
    ns = {"_d": defaults, "_cls": ops.CLASSES[spec.cls], "_call": function_call,
          "_absent": tuple(_absent_cpu(spec, n) for n in results)}  # (this kernel only ever sees CPU tensors)
    exec(src, ns)  # noqa: S102  (generated from the spec's own names, like the function forms)
    return ns[name]


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
        CPU_KERNELS[spec.function] = kernel = _make_kernel(spec)
        _lib.impl(spec.function, kernel, "CPU")
        torch.library.register_fake(f"{NAMESPACE}::{spec.function}", _make_fake(spec), lib=_lib)
        _registered[spec.function] = spec
    from . import _autograd, _npu_kernels  # noqa: F401  (backward formulas; NPU kernels when torch_npu is there)


def op_names() -> list[str]:
    return list(_registered)
