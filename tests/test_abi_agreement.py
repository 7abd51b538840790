"""The cffi declarations (generated from include/) and the C headers describe the same ABI.

A C file is generated from cffi's view of every declaration: each function's type, each enum value and
constant, each struct's size and field offsets. gcc then compiles it against the real headers, where
``__builtin_types_compatible_p`` and ``_Static_assert`` fail the build on any disagreement. The headers are
compiled with ``-Dconst=`` for the type checks because cffi's type names drop ``const`` (which never changes the
ABI). Separately, the headers must compile as C and as C++ with warnings as errors, as CANN programs need.
"""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from aclnn_moe.capi import binding_include_dir, cdef_source, declared_functions, ffi, lib
from aclnn_moe.capi._headers import header_files

CC = shutil.which("gcc") or shutil.which("cc")
CXX = shutil.which("g++") or shutil.which("c++")
pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler on this machine")


def _include_dir():
    return binding_include_dir()


def _headers_include_lines():
    inc = _include_dir()
    return "\n".join(f'#include "{p.relative_to(inc)}"' for p in header_files(inc))


def _constants(cdef: str) -> dict[str, int]:
    names = set(re.findall(r"#define\s+(\w+)\s", cdef)) | set(re.findall(r"static const int\s+(\w+)", cdef))
    values = {n: int(getattr(lib, n)) for n in names}
    for typedef in re.findall(r"}\s*(\w+)\s*;", cdef):
        t = ffi.typeof(typedef)
        if t.kind == "enum":
            values.update({k: int(v) for k, v in t.relements.items()})
    return values


def _compile(tmp_path, source: str, *flags, cxx=False):
    src = tmp_path / ("check.cpp" if cxx else "check.c")
    src.write_text(source)
    compiler = CXX if cxx else CC
    cmd = [compiler, "-c", str(src), "-o", str(tmp_path / "check.o"), f"-I{_include_dir()}", "-Wall", "-Wextra",
           "-Werror", *flags]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_every_function_type_matches_the_header(tmp_path):
    cdef = cdef_source()
    lines = [_headers_include_lines(), "#include <stdbool.h>"]
    functions = declared_functions(cdef)
    assert len(functions) > 90, "the binding lost declarations"
    for name in functions:
        cname = ffi.typeof(getattr(lib, name)).cname  # e.g. int32_t(*)(aclTensor *, int64_t, ...)
        fn_type = cname.replace("(*)", "", 1)
        lines.append(f'_Static_assert(__builtin_types_compatible_p(__typeof__({name}), {fn_type}), '
                     f'"{name}: cffi declares {cname}");')
    r = _compile(tmp_path, "\n".join(lines) + "\n", "-std=gnu11", "-Dconst=", "-Wno-unused-variable")
    assert r.returncode == 0, r.stderr[-4000:]


def test_a_wrong_declaration_is_caught(tmp_path):
    """The check above can fail: a deliberately wrong type does not compile."""
    src = _headers_include_lines() + (
        '\n_Static_assert(__builtin_types_compatible_p(__typeof__(aclrtMalloc), int(void **, int, int)), "x");\n')
    assert _compile(tmp_path, src, "-std=gnu11", "-Dconst=", "-Wno-unused-variable").returncode != 0


def test_enum_values_constants_and_struct_layouts_match(tmp_path):
    cdef = cdef_source()
    values = _constants(cdef)
    for name, want in {"ACL_BF16": 27, "ACL_FORMAT_ND": 2, "ACLNN_ERR_INNER_TILING_ERROR": 561002,
                       "ACL_MEMCPY_DEVICE_TO_HOST": 2, "ACL_ERROR_RT_INVALID_DEVICEID": 107001}.items():
        assert values[name] == want, name  # a few values pinned from spec/abi.md
    # C++, where the headers' `static const int` codes are constant expressions
    lines = [_headers_include_lines()]
    lines += [f'static_assert(({n}) == ({v}), "{n} == {v}");' for n, v in sorted(values.items())]
    for typedef in sorted(set(re.findall(r"}\s*(\w+)\s*;", cdef))):
        t = ffi.typeof(typedef)
        lines.append(f'static_assert(sizeof({typedef}) == {ffi.sizeof(t)}, "sizeof {typedef}");')
        if t.kind == "struct":
            for field, _ in t.fields:
                lines.append(f'static_assert(__builtin_offsetof({typedef}, {field}) == '
                             f'{ffi.offsetof(t, field)}, "{typedef}.{field}");')
    if CXX is None:
        pytest.skip("no C++ compiler on this machine")
    r = _compile(tmp_path, "\n".join(lines) + "\n", "-std=c++11", cxx=True)
    assert r.returncode == 0, r.stderr[-4000:]


@pytest.mark.parametrize("lang", ["c99", "c++11"])
def test_headers_compile_cleanly(tmp_path, lang):
    cxx = lang.startswith("c++")
    if cxx and CXX is None:
        pytest.skip("no C++ compiler on this machine")
    src = _headers_include_lines() + "\nint main(void) { return ACL_SUCCESS; }\n"
    r = _compile(tmp_path, src, f"-std={lang}", "-pedantic", cxx=cxx)
    assert r.returncode == 0, r.stderr[-4000:]
