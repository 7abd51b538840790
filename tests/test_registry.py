"""The operator registry: one spec per operator drives every list, and the specs agree with include/."""
from __future__ import annotations

import inspect
import re
import sys
import textwrap
from pathlib import Path

import pytest

import aclnn_moe as am
from aclnn_moe import ops, reference
from aclnn_moe._spec import KW, Attr, IntList, OpSpec, Output, Tensor, operator_prototypes, prototypes

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_operator_prototype_is_bound_by_exactly_one_spec():
    protos = prototypes()
    bound = {}
    for spec in ops.all_specs():
        spec.bind(protos)  # raises naming the C parameter that is unmapped or mapped twice
        assert spec.phase1 not in bound, f"{spec.phase1} bound by {bound.get(spec.phase1)} and {spec.operator}"
        bound[spec.phase1] = spec.operator
        assert spec.api in protos, f"{spec.api} (phase 2) is not declared in include/"
    assert sorted(bound) == operator_prototypes()


def _spec(**over):
    base = dict(operator="MoeFoo", api="aclnnMoeComputeExpertTokens", function="moe_foo",
                params=(Tensor("sorted", "sortedExperts", dtypes=("int32",)), Attr("n", "numExperts"), KW),
                outputs=(Output("out", "out", shape=lambda a: (a.n,), dtype="int32"),))
    base.update(over)
    return OpSpec(**base)


def test_binding_rejects_unmapped_and_doubly_mapped_parameters():
    protos = prototypes()
    assert [p.name for p in _spec().bind(protos)] == ["sorted", "n", "out"]
    with pytest.raises(ValueError, match="numExperts is not mapped"):
        _spec(params=(Tensor("sorted", "sortedExperts"),)).bind(protos)
    with pytest.raises(ValueError, match="sortedExperts is mapped by 2"):
        _spec(params=(Tensor("sorted", "sortedExperts"), Tensor("again", "sortedExperts"),
                      Attr("n", "numExperts"))).bind(protos)
    with pytest.raises(ValueError, match="names C parameter nope"):
        _spec(params=(Tensor("sorted", "sortedExperts"), Attr("n", "numExperts"), Attr("z", "nope"))).bind(protos)


def test_reset_operands_index_is_the_c_input_index():
    """aclSetInputTensorAddr counts tensor inputs in prototype order, absent optional ones included."""
    protos = prototypes()
    fin = ops.SPECS["moe_finalize_routing"]
    assert fin.input_index(protos)["expanded_src_to_dst_row"] == 1  # V2: second in C, sixth in Python
    v1 = next(v for v in ops.VARIANTS if v.api == "aclnnMoeFinalizeRouting")
    assert v1.input_index(protos)["expanded_src_to_dst_row"] == 5


def test_one_registry_drives_all_lists():
    names = {s.function for s in ops.specs()}
    classes = {s.cls for s in ops.specs()}
    public_ops = {n for n in am.__all__ if n.startswith("moe_") or n.startswith("Moe")}
    assert public_ops == names | classes
    assert set(reference.__all__) == names, "every operator has its reference, and nothing else is exported"
    for spec in ops.specs():
        fn = getattr(am, spec.function)
        assert fn.spec is spec and getattr(am, spec.cls).spec.operator == spec.operator
        assert callable(spec.examples) and spec.examples.__module__ == spec.module.__name__
        ref_params = list(inspect.signature(spec.reference()).parameters)
        facade_params = [p for p in inspect.signature(fn).parameters if p != "stream"]
        assert [p for p in facade_params if p in ref_params] == ref_params, spec.operator


def test_readme_lists_every_operator():
    text = README.read_text()
    m = re.search(r"^Operators: (.*?)\.\n", text, re.M | re.S)
    assert m, "README has an 'Operators:' line"
    listed = set()
    for item in re.split(r",\s*", m.group(1).replace("\n", " ")):
        base, _, versions = item.strip().partition(" (")
        listed.add(base)
        for v in re.findall(r"V\d+", versions):
            listed.add(base + v if not base.endswith(v) else base)
    registry = {s.operator for s in ops.specs()} | {v.operator for v in ops.VARIANTS}
    assert registry <= listed, f"README misses {sorted(registry - listed)}"


def test_a_new_operator_module_needs_no_edit_to_any_list(tmp_path, monkeypatch):
    """Dropping one module with a SPEC into ops/ (and its reference) makes it an operator everywhere."""
    import subprocess

    if any("aclnn_moe" in type(f).__module__ for f in sys.meta_path):
        # (the README's and CI's non-editable install runs it) an editable install keeps include/ and the host
        # libraries outside the package folder, so a copy of that folder is not a whole package
        pytest.skip("editable install: a copy of the package folder lacks its headers and host libraries")

    pkg = Path(ops.__file__).parent
    ref_pkg = Path(reference.__file__).parent
    code = textwrap.dedent('''
        import shutil, sys, pathlib, importlib
        src = pathlib.Path(sys.argv[1]); dst = pathlib.Path(sys.argv[2])
        shutil.copytree(src, dst / "aclnn_moe")
        (dst / "aclnn_moe/ops/foo_count.py").write_text(
            "from .._spec import INT32, KW, Attr, OpSpec, Output, Tensor\\n"
            "SPEC = OpSpec(operator='MoeFooCount', api='aclnnMoeComputeExpertTokens', function='moe_foo_count',\\n"
            "    params=(Tensor('ids', 'sortedExperts', dtypes=INT32, ndim=1), Attr('n', 'numExperts'), KW),\\n"
            "    outputs=(Output('out', 'out', shape=lambda a: (a.n,), dtype='int32'),))\\n")
        (dst / "aclnn_moe/reference/foo_count.py").write_text(
            "import numpy as np\\n"
            "def moe_foo_count(ids, n):\\n"
            "    return np.searchsorted(ids, np.arange(n), side='right').astype(np.int32)\\n")
        sys.path.insert(0, str(dst))
        import aclnn_moe as am, numpy as np
        assert "moe_foo_count" in am.__all__ and "MoeFooCount" in am.__all__
        from aclnn_moe import reference
        assert "moe_foo_count" in reference.__all__
        ids = np.array([0, 0, 2], np.int32)
        np.testing.assert_array_equal(am.moe_foo_count(ids, 3), reference.moe_foo_count(ids, 3))
        print("ok")
    ''')
    out = subprocess.run([sys.executable, "-c", code, str(pkg.parent), str(tmp_path)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr


def test_info_and_selftest_cover_every_operator():
    import subprocess

    for cmd in ("info", "selftest"):
        out = subprocess.run([sys.executable, "-P", "-m", "aclnn_moe.cli", cmd], capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stdout + out.stderr
        for spec in ops.specs():
            assert spec.operator in out.stdout, (cmd, spec.operator)
