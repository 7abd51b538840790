"""Turn the C headers of ``include/`` into a cffi ``cdef``: the headers stay the single source of truth.

The headers are written as plain C (CANN's own are C++-only), so a light pass suffices: drop the ``__cplusplus``
blocks, comments and preprocessor lines, keep ``#define NAME <integer>`` constants, and remove the visibility
macros. ``tests/test_abi_agreement.py`` compiles the result back against the headers to prove they agree.
"""
from __future__ import annotations

import re
from pathlib import Path

# Dependency order: base types first, operators last.
_CORE_HEADERS = (
    "acl/acl_base.h",
    "acl/acl_rt.h",
    "acl/error_codes/rt_error_codes.h",
    "acl/acl.h",
    "aclnn/opdev/op_errno.h",
    "aclnn/acl_meta.h",
    "aclnn/aclnn_base.h",
)
_MACROS = re.compile(r"\b(ACL_FUNC_VISIBILITY|ACLNN_API|ACL_DEPRECATED)\b|__attribute__\s*\(\(.*?\)\)")
_INT_DEFINE = re.compile(r"#\s*define\s+([A-Za-z_]\w*)\s+(-?(?:0[xX][0-9a-fA-F]+|\d+))[uUlL]*\s*$")


def header_files(include_dir: Path) -> list[Path]:
    """The headers that make up the binding, in dependency order."""
    ops = sorted((include_dir / "aclnnop").glob("aclnn_moe_*.h"))
    return [include_dir / h for h in _CORE_HEADERS] + ops


def _strip(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    out, depth_cpp, depth = [], 0, 0
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#"):
            directive = s[1:].strip()
            if directive.startswith(("if", "ifdef", "ifndef")):
                depth += 1
                if depth_cpp == 0 and re.match(r"ifdef\s+__cplusplus\b", directive):
                    depth_cpp = depth
            elif directive.startswith("endif"):
                if depth_cpp == depth:
                    depth_cpp = 0
                depth -= 1
            elif depth_cpp == 0:
                m = _INT_DEFINE.match(s)
                if m:
                    out.append(f"#define {m.group(1)} {m.group(2)}")
            continue
        if depth_cpp == 0 and s:
            out.append(_MACROS.sub("", line))
    return "\n".join(out)


def build_cdef(include_dir: Path) -> str:
    """The cdef text for every header of the binding."""
    seen_defines: set[str] = set()
    parts = []
    for path in header_files(include_dir):
        lines = []
        for line in _strip(path.read_text()).splitlines():
            if line.startswith("#define "):
                name = line.split()[1]
                if name in seen_defines:
                    continue
                seen_defines.add(name)
            lines.append(line)
        parts.append(f"/* {path.relative_to(include_dir)} */\n" + "\n".join(lines))
    return "\n".join(parts)


def declared_functions(cdef: str) -> list[str]:
    """Names of the functions a cdef declares (used by `aclnn-moe info` and the ABI agreement test)."""
    flat = re.sub(r"\s+", " ", cdef)
    return sorted(set(re.findall(r"\b([A-Za-z_]\w*)\s*\([^;{}]*\)\s*;", flat)) - {"sizeof"})
