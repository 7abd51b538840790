"""include/ declares CANN's ABI: every function with CANN's name, return type and parameter types in CANN's
order, and every enumerator and status code with CANN's value, as transcribed from the specification into
tests/data/cann_abi_snapshot.txt (an ABI snapshot in the manner of cuda-python's). The comparison is textual on
type names, so a typedef swapped for its underlying type (aclnnStatus -> int) is caught too."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from aclnn_moe.capi import cdef_source, lib

SNAPSHOT = Path(__file__).parent / "data" / "cann_abi_snapshot.txt"


def _norm_type(p: str):
    toks = p.replace("*", " * ").split()
    if not toks or toks == ["void"]:
        return None
    if len(toks) > 1 and re.fullmatch(r"[A-Za-z_]\w*", toks[-1]) and not (len(toks) == 2 and toks[0] == "const"):
        toks = toks[:-1]  # the parameter name
    return " ".join(t for t in toks if t != "const").replace(" *", "*")


def _our_prototypes() -> dict[str, str]:
    flat = re.sub(r"\s+", " ", re.sub(r"/\*.*?\*/", " ", cdef_source(), flags=re.S))
    flat = re.sub(r"#define \w+ -?\w+", " ", flat)
    out = {}
    for stmt in flat.split(";"):
        stmt = stmt.split("}")[-1].strip()
        m = re.fullmatch(r"((?:const )?[A-Za-z_]\w*\s*\**)\s*([A-Za-z_]\w*)\s*\(([^()]*)\)", stmt)
        if m and not stmt.startswith("typedef"):
            params = [t for t in (_norm_type(x) for x in m.group(3).split(",")) if t]
            out[m.group(2)] = f"{_norm_type(m.group(1) + ' x')}|{','.join(params)}"
    return out


def _snapshot():
    funcs, values = {}, {}
    for line in SNAPSHOT.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if "|" in line:
            name, sig = line.split("|", 1)
            funcs[name] = sig
        else:
            key, value = line.rsplit("=", 1)
            values[key.split(".", 1)[1]] = int(value)
    return funcs, values


FUNCS, VALUES = _snapshot()


def test_snapshot_covers_every_operator_and_the_runtime():
    assert len(FUNCS) >= 90 and len(VALUES) >= 140
    for op in ("MoeGatingTopK", "MoeComputeExpertTokens", "MoeReRouting", "MoeFinalizeRouting",
               "MoeFinalizeRoutingV2", "MoeTokenPermuteWithEp", "MoeTokenUnpermuteWithEp", "MoeInitRouting",
               "MoeInitRoutingV2"):
        assert f"aclnn{op}" in FUNCS and f"aclnn{op}GetWorkspaceSize" in FUNCS


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_prototype_matches_cann(name):
    ours = _our_prototypes()
    assert name in ours, f"{name} is not declared in include/"
    assert ours[name] == FUNCS[name], f"{name}: include/ has {ours[name]}, CANN has {FUNCS[name]}"


def test_enum_and_status_values_match_cann():
    wrong = {k: (int(getattr(lib, k)), v) for k, v in VALUES.items() if int(getattr(lib, k)) != v}
    assert not wrong, wrong
