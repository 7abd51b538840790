"""The operator registry: one module per operator, each declaring its ``SPEC`` (``aclnn_moe._spec.OpSpec``).

Modules are discovered, never listed: a new ``ops/<name>.py`` with a ``SPEC`` is an operator everywhere (the
package's ``__all__``, the reference exports, ``selftest``, ``aclnn-moe info``, the generic contract tests).
A module may define ``BASE``, an ``Operation`` subclass holding custom logic (e.g. choosing a C variant), from
which the public class is built; ``VARIANTS``, the other specs that class may use; and helpers of its own.
"""
from __future__ import annotations

import importlib
import pkgutil

from .._operation import Operation
from .._spec import OpSpec, build_function, build_operation

SPECS: dict[str, OpSpec] = {}  # function name -> public spec, in discovery (alphabetical module) order
VARIANTS: list[OpSpec] = []  # specs used only through a public spec's class
CLASSES: dict[str, type] = {}
FUNCTIONS: dict = {}
__all__: list[str] = []

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name.startswith("_"):
        continue
    _m = importlib.import_module(f"{__name__}.{_info.name}")
    _spec = getattr(_m, "SPEC", None)
    if _spec is None:
        continue
    _cls = build_operation(_spec, getattr(_m, "BASE", Operation))
    _fn = build_function(_spec, _cls)
    _spec.module = _m
    SPECS[_spec.function] = _spec
    VARIANTS.extend(getattr(_m, "VARIANTS", ()))
    CLASSES[_spec.cls], FUNCTIONS[_spec.function] = _cls, _fn
    setattr(_m, _spec.cls, _cls)
    setattr(_m, _spec.function, _fn)
    globals()[_spec.cls], globals()[_spec.function] = _cls, _fn
    __all__ += [_spec.function, _spec.cls]


def specs() -> list[OpSpec]:
    """The public operator specs, in registry order."""
    return list(SPECS.values())


def all_specs() -> list[OpSpec]:
    """Every spec, variants included: together they bind every operator prototype of include/."""
    return specs() + VARIANTS
