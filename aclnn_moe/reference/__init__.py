"""numpy reference implementations of every operator, written from the specification (spec/semantics.md).

They exist to check the backends (tests, ``aclnn-moe selftest``, benchmarks); the facade never uses them to
produce results. Each has the facade function's name and signature (without ``stream``) and returns numpy
arrays, fp16/bf16 results rounded to nearest-even from fp32 as the NPU does.

Modules are discovered: every public function of ``reference/<name>.py`` whose name starts with ``moe_`` is
exported here (``tests/test_registry.py`` checks that each operator spec has its reference and nothing else is).
"""
import importlib as _importlib
import pkgutil as _pkgutil

__all__ = []
for _info in sorted(_pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name.startswith("_"):
        continue
    _m = _importlib.import_module(f"{__name__}.{_info.name}")
    for _name in dir(_m):
        _fn = getattr(_m, _name)
        if _name.startswith("moe_") and callable(_fn) and getattr(_fn, "__module__", None) == _m.__name__:
            globals()[_name] = _fn
            __all__.append(_name)
