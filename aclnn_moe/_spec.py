"""Operator specs: every fact about one operator, written once.

An ``OpSpec`` names the CANN operator and its phase-2 C function, and lists the parameters in their *Python*
order (torch_npu's names, order and defaults), each with its C parameter name and its role:

* ``Tensor``   an input tensor (dtypes, rank, optional, same-dtype-as);
* ``Attr``     a scalar attribute (``int`` / ``float`` / ``bool``, default, facade-checked range);
* ``IntList``  an ``aclIntArray`` attribute (None or [] is absent, i.e. NULL);
* ``Output``   an output tensor (shape and dtype as functions of the inputs, when it is passed / returned).

The C parameter *order* is never written here: it is read from the prototype in ``include/`` and every C
parameter is bound by name (``bind()``, checked for every spec by ``tests/test_registry.py``: a C parameter that
no spec parameter names, or that two name, is an error). ``reset_operands`` rebinds by the C input index that
binding gives. From a spec, ``build_operation`` makes the ``Operation`` subclass and ``build_function`` the
function form, both with the real Python signature; ``aclnn_moe.ops`` collects the specs of every operator
module into one registry, which drives ``__all__``, the reference exports, ``selftest``, ``aclnn-moe info``, the
README's operator list and the generic contract tests.

Shape and dtype rules receive ``a``, a namespace of the call's arguments by Python name: tensors appear as
objects with ``.shape`` (tuple) and ``.dtype`` (canonical name, e.g. ``"bfloat16"``) or None when absent,
attributes as their converted values. The same rules serve the facade (real operands) and torch fake tensors.
"""
from __future__ import annotations

import functools
import numbers
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ._errors import ArgumentError

FLOATS = ("float32", "float16", "bfloat16")
INDICES = ("int32", "int64")
INT32 = ("int32",)
FLOAT32 = ("float32",)

_REQUIRED = object()  # the default of a parameter without one
KW = "*"  # in OpSpec.params: the parameters after it are keyword-only
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


# ----------------------------------------------------------------------------------------------- parameter kinds
@dataclass(frozen=True)
class Param:
    name: str  # the Python keyword
    c: str | None  # the C parameter name; None: a Python-only parameter (consumed by ``prepare``)
    default: Any = _REQUIRED
    doc: str = ""

    @property
    def has_default(self) -> bool:
        return self.default is not _REQUIRED


@dataclass(frozen=True)
class Tensor(Param):
    dtypes: tuple = FLOATS
    ndim: int | tuple | None = None
    optional: bool = False
    same_dtype: str | None = None  # Python name of the tensor whose dtype this one must share


@dataclass(frozen=True)
class Attr(Param):
    kind: str = "int"  # "int" | "float" | "bool"
    lo: int | float | None = None  # facade-checked inclusive bounds (the operator checks the rest)
    hi: int | float | None = None
    hi_from: Callable | None = None  # hi as a function of ``a`` (e.g. the expert count of x)
    why: str = ""  # what the bound is, for the message


@dataclass(frozen=True)
class IntList(Param):
    length: int | None = None  # facade-checked length when given


@dataclass(frozen=True)
class Output:
    name: str
    c: str
    shape: Callable  # a -> tuple of ints
    dtype: Callable | str  # a -> dtype name, or a fixed name
    when: Callable | None = None  # a -> bool: passed (else NULL); None: always
    returned: Callable | None = None  # a -> bool: returned (else None); None: whenever passed
    doc: str = ""


def _as_int(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ArgumentError(name, f"must be an integer (a Python int or a numpy integer), got {type(value).__name__} "
                                  f"{value!r}")
    value = int(value)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ArgumentError(name, f"{value} does not fit in int64")
    return value


def convert_attr(p: Attr, value):
    """The C value of attribute ``p`` from the caller's value, or ArgumentError naming it."""
    if p.kind == "int":
        return _as_int(p.name, value)
    if p.kind == "bool":
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        if isinstance(value, numbers.Integral) and int(value) in (0, 1):
            return bool(value)
        raise ArgumentError(p.name, f"must be a bool, got {type(value).__name__} {value!r}")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ArgumentError(p.name, f"must be a real number, got {type(value).__name__} {value!r}")
    return float(value)


def convert_int_list(p: IntList, value):
    """An int list attribute: None or empty -> None (NULL), else a list of int64 values."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise ArgumentError(p.name, f"must be a sequence of integers or None, got {type(value).__name__}")
    if len(value) == 0:
        return None
    values = [_as_int(f"{p.name}[{i}]", v) for i, v in enumerate(value)]
    if p.length is not None and len(values) != p.length:
        raise ArgumentError(p.name, f"must have {p.length} values, got {len(values)}")
    return values


# ------------------------------------------------------------------------------------------------- the spec itself
@dataclass
class OpSpec:
    operator: str  # CANN's operator name, e.g. "MoeInitRoutingV2"
    api: str  # phase-2 C function; phase 1 is api + "GetWorkspaceSize"
    function: str  # the facade function's name, e.g. "moe_init_routing_v2"
    params: tuple  # Python order; KW separates positional from keyword-only parameters
    outputs: tuple  # Output, any order (C order comes from the prototype)
    results: tuple | None = None  # output names in the order returned; None: outputs' order
    doc: str = ""
    prepare: Callable | None = None  # a -> None: derived values and rules across parameters (may raise)
    examples: Callable | None = None  # rng -> list of kwargs dicts of valid small calls (selftest, contract tests)
    compare: Callable | None = None  # (got, expected, kwargs, what) -> None: raise AssertionError; default exact
    class_name: str | None = None  # default: the operator name
    public: bool = True  # False: a variant bound only through another spec's class (e.g. FinalizeRouting V1)
    # op-plugin's schemas (op_plugin_functions.yaml, verbatim) of the torch_npu functions this operator backs;
    # aclnn_moe.torch_npu_compat builds its surface and install() from them
    torch_npu: tuple = ()
    variants: tuple = ()  # other specs the class may use (e.g. V1 of FinalizeRouting)
    _binding: tuple | None = field(default=None, repr=False)

    # ---- derived views
    @property
    def phase1(self) -> str:
        return self.api + "GetWorkspaceSize"

    @property
    def torch_npu_names(self) -> list[str]:
        return [s.split("(", 1)[0] for s in self.torch_npu]

    @property
    def cls(self) -> str:
        return self.class_name or self.operator

    def python_params(self) -> list[Param]:
        return [p for p in self.params if p != KW]

    def param(self, name: str) -> Param:
        for p in self.python_params():
            if p.name == name:
                return p
        raise KeyError(name)

    def by_c(self) -> dict:
        """C name -> spec parameter (Param or Output)."""
        out = {}
        for p in list(self.python_params()) + list(self.outputs):
            if p.c is not None:
                out.setdefault(p.c, []).append(p)
        return out

    def c_to_python(self) -> dict:
        return {c: ps[0].name for c, ps in self.by_c().items()}

    def bind(self, prototypes: dict) -> tuple:
        """Bind every C parameter of the phase-1 prototype to one spec parameter, in C order.

        Returns a tuple of spec parameters (Param / Output) in prototype order, without the trailing
        workspaceSize / executor. Raises ValueError when a C parameter is unmapped, mapped twice, or a spec
        parameter names a C parameter the prototype does not have."""
        if self._binding is not None:
            return self._binding
        proto = prototypes.get(self.phase1)
        if proto is None:
            raise ValueError(f"{self.operator}: no prototype {self.phase1} in include/")
        cnames = [n for _, n in proto]
        if cnames[-2:] != ["workspaceSize", "executor"]:
            raise ValueError(f"{self.phase1}: the prototype does not end with workspaceSize, executor")
        cnames = cnames[:-2]
        mapped = self.by_c()
        problems = [f"C parameter {c} is mapped by {len(mapped[c])} spec parameters" for c in cnames
                    if len(mapped.get(c, ())) > 1]
        problems += [f"C parameter {c} is not mapped" for c in cnames if c not in mapped]
        problems += [f"spec parameter {ps[0].name} names C parameter {c}, which {self.phase1} does not have"
                     for c, ps in mapped.items() if c not in cnames]
        if problems:
            raise ValueError(f"{self.operator}: " + "; ".join(problems))
        self._binding = tuple(mapped[c][0] for c in cnames)
        return self._binding

    def input_index(self, prototypes: dict) -> dict:
        """Python name -> the C input index of each tensor input (what aclSetInputTensorAddr takes): inputs are
        numbered in prototype order, absent optional ones included."""
        tensors = [p for p in self.bind(prototypes) if isinstance(p, Tensor)]
        return {p.name: i for i, p in enumerate(tensors)}

    def output_index(self, prototypes: dict) -> dict:
        outs = [p for p in self.bind(prototypes) if isinstance(p, Output)]
        return {p.name: i for i, p in enumerate(outs)}

    def result_names(self) -> tuple:
        return self.results or tuple(o.name for o in self.outputs)

    def output(self, name: str) -> Output:
        for o in self.outputs:
            if o.name == name:
                return o
        raise KeyError(name)

    def reference(self):
        """The numpy reference implementation (``aclnn_moe.reference.<function>``)."""
        from . import reference

        return getattr(reference, self.function)

    # ---- the rules, shared by the facade and torch fake implementations
    def check_attrs(self, a) -> None:
        """The facade's range checks of attributes (the operator checks every other rule)."""
        for p in self.python_params():
            if not isinstance(p, Attr) or (p.lo is None and p.hi is None and p.hi_from is None):
                continue
            v = getattr(a, p.name)
            hi = p.hi_from(a) if p.hi_from is not None else p.hi
            if (p.lo is not None and v < p.lo) or (hi is not None and v > hi):
                lo = "-inf" if p.lo is None else p.lo
                raise ArgumentError(p.name, f"must be in [{lo}, {'inf' if hi is None else hi}]"
                                            f"{' (' + p.why + ')' if p.why else ''}, got {v}")

    def output_layouts(self, a, concrete: bool = True) -> dict:
        """name -> (shape, dtype) of every output passed to C (absent ones map to None). With
        ``concrete=False`` sizes stay as computed (torch SymInts under fake tensors), never forced to int."""
        out = {}
        for o in self.outputs:
            if o.when is not None and not o.when(a):
                out[o.name] = None
                continue
            dtype = o.dtype(a) if callable(o.dtype) else o.dtype
            shape = tuple(o.shape(a))
            out[o.name] = (tuple(int(max(s, 0)) for s in shape) if concrete else shape, dtype)
        return out

    def returned(self, a) -> dict:
        return {o.name: (o.returned(a) if o.returned is not None else True) for o in self.outputs}


class Args:
    """The namespace ``a`` the rules read: arguments by Python name."""

    def __init__(self, **values):
        self.__dict__.update(values)

    def __repr__(self):
        return f"Args({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"


# ---------------------------------------------------------------------------------------------- prototypes (C)
@functools.lru_cache(maxsize=1)
def prototypes() -> dict:
    """Function name -> [(C type, C parameter name)] for every function declared in include/."""
    from .capi import cdef_source

    flat = re.sub(r"\s+", " ", cdef_source())
    out = {}
    for name, params in re.findall(r"\b([A-Za-z_]\w*)\s*\(([^;{}()]*)\)\s*;", flat):
        items = []
        for raw in params.split(","):
            raw = raw.strip()
            if not raw or raw == "void":
                continue
            m = re.match(r"(.*?)([A-Za-z_]\w*)\s*$", raw)
            items.append((m.group(1).strip(), m.group(2)))
        out[name] = items
    return out


def operator_prototypes() -> list[str]:
    """Every phase-1 function of include/aclnnop/ (what the registry must bind)."""
    return sorted(n for n in prototypes() if n.startswith("aclnn") and n.endswith("GetWorkspaceSize"))


# --------------------------------------------------------------------------------------- classes and functions
def _signature_source(spec: OpSpec, extra: str) -> tuple[str, str]:
    """(parameter list, argument tuple) source text for the spec's Python signature."""
    parts, names, kw = [], [], False
    for p in spec.params:
        if p == KW:
            parts.append("*")
            kw = True
            continue
        parts.append(f"{p.name}=_d[{p.name!r}]" if p.has_default else p.name)
        names.append(p.name)
    if extra:
        if not kw:
            parts.append("*")
        parts.append(extra)
    elif parts and parts[-1] == "*":
        parts.pop()  # (a bare * must be followed by a keyword-only parameter)
    return ", ".join(parts), "(" + "".join(f"{n}, " for n in names) + ")"


def build_operation(spec: OpSpec, base: type) -> type:
    """The Operation subclass of a spec, with an ``__init__`` of the spec's real signature."""
    params, values = _signature_source(spec, "stream=None, reuse_outputs=False")
    defaults = {p.name: p.default for p in spec.python_params() if p.has_default}
    src = (f"def __init__(self, {params}):\n"
           f"    _base.__init__(self, {values}, stream=stream, reuse_outputs=reuse_outputs)\n")
    ns = {"_d": defaults, "_base": base}
    exec(src, ns)  # noqa: S102  (generated from the spec's own names, like namedtuple)
    init = ns["__init__"]
    init.__qualname__ = f"{spec.cls}.__init__"
    cls = type(spec.cls, (base,), {"__init__": init, "spec": spec, "__doc__": spec.doc,
                                    "__module__": "aclnn_moe"})
    return cls


def build_function(spec: OpSpec, cls: type) -> Callable:
    """The function form: build the operation, execute it once, free it."""
    params, values = _signature_source(spec, "stream=None")
    defaults = {p.name: p.default for p in spec.python_params() if p.has_default}
    src = (f"def {spec.function}({params}):\n"
           f"    return _call(_cls, {values}, stream)\n")  # (the values in Python parameter order)
    from ._plan_cache import function_call  # (the plan cache: repeated layouts reuse a planned executor)

    ns = {"_d": defaults, "_cls": cls, "_call": function_call}
    exec(src, ns)  # noqa: S102
    fn = ns[spec.function]
    fn.__doc__ = spec.doc
    fn.__module__ = "aclnn_moe"
    fn.spec = spec
    return fn
