"""The CANN path as it must behave on a real Ascend box next to torch_npu (issue 7, spec/host-vs-cann.md "Real-box
facts"), held here with fake CANN trees built from the host libraries and the stand-in torch_npu of
tests/stand_ins/. Each rule has its own test; the scenarios run once per module in child processes (the backend
is chosen once per process) and report what they saw as JSON."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # importlib mode adds no test dir; tests/ holds no package
from stand_ins import fake_cann  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler to build fake CANN trees")


def _facts(r):
    assert r.returncode == 0, r.stdout + r.stderr
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("FACTS ")][-1]
    return json.loads(line[len("FACTS "):])


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    base = tmp_path_factory.mktemp("cann")
    return {
        "a": fake_cann.cann_tree(base / "a"),
        "b": fake_cann.cann_tree(base / "b"),
        "broken": fake_cann.broken_tree(base / "broken"),
        "nodevice": fake_cann.deviceless_tree(base / "nodevice"),
        "failing": fake_cann.deviceless_tree(base / "failing", status=507033),
    }


def _has_torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True

# ---------------------------------------------------------------------------------------------- torch_npu scenario
_INTEROP = r"""
import json, ctypes
import numpy as np
import torch
import torch_npu                                   # imported, not initialised: ACL is still untouched
from torch_npu import npu
import aclnn_moe as am
from aclnn_moe.capi import backend, lib
from aclnn_moe.capi._backend import loaded_copies

facts = {}
launches = []

def spy(api):
    phase2 = getattr(lib, api)
    def call(ws, size, ex, stream):
        s = int(am.capi.ffi.cast("uintptr_t", stream))
        w = int(am.capi.ffi.cast("uintptr_t", ws))
        launches.append({"api": api, "device": npu.real_device(), "cached": npu._tls.device, "stream": s, "ws": w,
                         "size": int(size), "block": npu.blocks.get(w)})
        return phase2(ws, size, ex, stream)
    lib.__dict__[api] = call
for api in ("aclnnMoeGatingTopK", "aclnnMoeComputeExpertTokens"):
    spy(api)
formats = []
create = lib.aclCreateTensor
def create_spy(dims, nd, dtype, strides, offset, fmt, sdims, nsd, data):
    formats.append({"ndim": int(nd), "format": int(fmt), "storage": [int(sdims[i]) for i in range(nsd)]})
    return create(dims, nd, dtype, strides, offset, fmt, sdims, nsd, data)
lib.__dict__["aclCreateTensor"] = create_spy

# rule: ACL initialised by torch_npu, with its config, even though aclnn_moe's call came first
am.moe_compute_expert_tokens(np.array([0, 0, 1, 3], np.int32), 4)
facts["init_status"] = npu.init_status
facts["acl_inits"] = [c for c in torch_npu.calls if c[0] == "aclInit"]

rng = np.random.default_rng(0)
x_host = rng.standard_normal((16, 64)).astype(np.float32)
want_y, want_idx, _ = am.moe_gating_top_k(x_host, 4)
torch.npu.set_device(0)
x = torch_npu.to_npu(torch.from_numpy(x_host), 1)

# rules: device of the operands, stream of that device, workspace for the launch stream
launches.clear()
y, idx, _ = am.moe_gating_top_k(x, 4)
facts["default"] = launches[-1]
facts["stream_dev1"] = torch.npu.current_stream(1).npu_stream
facts["stream_dev0"] = torch.npu.current_stream(0).npu_stream
# an operator without workspace, its output allocated before the call: nothing of the stand-in's own runs between
# aclnn_moe's device switch and the check, so a switch behind torch_npu's back would show
counts = am.moe_compute_expert_tokens(torch_npu.to_npu(torch.tensor([0, 0, 1, 3], dtype=torch.int32), 1), 4)
facts["after_launch"] = launches[-1]
facts["after"] = {"cached": npu._tls.device, "real": npu.real_device()}
facts["out_device"] = [y.device.index, idx.device.index]
facts["correct"] = bool(np.array_equal(y.cpu().numpy(), want_y) and np.array_equal(idx.cpu().numpy(), want_idx))

s = torch.npu.Stream(1)
y2, _, _ = am.moe_gating_top_k(x, 4, stream=s)
facts["explicit"] = launches[-1]
facts["explicit_handle"] = s._handle
am.moe_gating_top_k(x, 4, stream=s._handle)
facts["raw"] = launches[-1]
facts["correct_explicit"] = bool(np.array_equal(y2.cpu().numpy(), want_y))

try:
    am.moe_gating_top_k(x, 4, stream=torch.npu.Stream(0))
    facts["foreign_stream"] = None
except am.ArgumentError as e:
    facts["foreign_stream"] = [e.param, str(e)]
# a host input first, an NPU one second: still the NPU device's current stream (its queue flushed)
am.moe_gating_top_k(x_host, 4, bias=torch_npu.to_npu(torch.zeros(64), 1))
facts["mixed_kinds"] = launches[-1]

# rule: tensor operands on two devices
bias0 = torch_npu.to_npu(torch.zeros(64), 0)
try:
    am.moe_gating_top_k(x, 4, bias=bias0)
    facts["mixed"] = None
except am.ArgumentError as e:
    facts["mixed"] = [e.param, str(e)]

# rule: formats; NZ refused with the way to convert, base formats described as op-plugin does
try:
    am.moe_gating_top_k(torch_npu.npu_format_cast(x, 29), 4)
    facts["nz"] = None
except am.ArgumentError as e:
    facts["nz"] = [e.param, str(e)]
formats.clear()
am.moe_compute_expert_tokens(torch_npu.to_npu(torch.tensor([0, 1, 1, 2], dtype=torch.int32), 1)[::2], 4)
facts["formats_1d"] = formats[:]
formats.clear()
rows3 = torch_npu.to_npu(torch.zeros((2, 3, 8)), 1)
try:
    am.moe_finalize_routing(rows3, None, None, None, torch_npu.to_npu(torch.ones((3, 2)), 1),
                            torch_npu.to_npu(torch.full((6,), -1, dtype=torch.int32), 1),
                            torch_npu.to_npu(torch.zeros((3, 2), dtype=torch.int32), 1), 1)
except am.AclnnError:
    pass
facts["formats_3d"] = formats[:]

facts["copies"] = loaded_copies("libascendcl.so")
facts["backend"] = [backend().name, [str(p) for p in backend().runtime_libraries], backend().how_loaded]
print("FACTS " + json.dumps(facts))
"""


@pytest.fixture(scope="module")
def interop(trees):
    if not _has_torch():
        pytest.skip("the torch_npu stand-in wraps torch CPU tensors: torch is not installed")
    r = fake_cann.run(_INTEROP, stand_in=True, ASCEND_HOME_PATH=trees["a"],
                      LD_LIBRARY_PATH=trees["b"] / "lib64", ACLNN_MOE_HOST_DEVICES=2)
    return _facts(r)


def test_acl_is_initialised_by_torch_npu_not_before_it(interop):
    # aclnn_moe's aclInit(NULL) first would leave torch_npu 100002 and its acl.json unapplied
    assert interop["init_status"] == 0
    assert interop["acl_inits"] == [["aclInit", 0]]


def test_the_call_runs_on_the_operands_device(interop):
    assert interop["default"]["device"] == 1  # x is on npu:1 while torch_npu's current device is 0
    assert interop["out_device"] == [1, 1]
    assert interop["correct"]


def test_torch_npus_device_cache_stays_true(interop):
    # a bare aclrtSetDevice(1) behind torch_npu would leave the thread on 1 while torch_npu believes 0
    launch = interop["after_launch"]
    assert launch["size"] == 0 and (launch["device"], launch["cached"]) == (1, 1)
    assert interop["after"] == {"cached": 0, "real": 0}


def test_the_default_stream_is_the_current_stream_of_the_operands_device(interop):
    assert interop["stream_dev1"] != interop["stream_dev0"]
    assert interop["default"]["stream"] == interop["stream_dev1"]


def test_an_explicit_stream_is_honoured(interop):
    assert interop["explicit"]["stream"] == interop["explicit_handle"] != interop["stream_dev1"]
    assert interop["raw"]["stream"] == interop["explicit_handle"]
    assert interop["correct_explicit"]


def test_a_stream_of_another_device_is_refused(interop):
    param, msg = interop["foreign_stream"]
    assert param == "stream" and "device 0" in msg and "on device 1" in msg


def test_npu_operands_after_host_ones_still_launch_on_their_devices_stream(interop):
    launch = interop["mixed_kinds"]
    assert (launch["device"], launch["stream"]) == (1, interop["stream_dev1"])


def test_the_workspace_is_allocated_for_the_launch_stream(interop):
    for case in ("default", "explicit", "raw"):
        launch = interop[case]
        assert launch["size"] > 0 and launch["block"] is not None, launch  # from torch_npu's caching allocator
        device, stream, nbytes = launch["block"]
        assert (device, stream) == (1, launch["stream"]) and nbytes >= launch["size"], (case, launch)


def test_operands_on_two_devices_are_an_argument_error_naming_both(interop):
    param, msg = interop["mixed"]
    assert param == "bias" and "device 0" in msg and "x is on device 1" in msg


def test_an_nz_tensor_is_refused_with_the_conversion(interop):
    param, msg = interop["nz"]
    assert param == "x" and "FRACTAL_NZ (29)" in msg and "torch_npu.npu_format_cast(x, 2)" in msg


def test_npu_tensors_are_described_as_op_plugin_does(interop):
    # base format by rank (ND, NCL for 3-D) with the whole storage as a 1-D storage shape
    first = interop["formats_1d"][0]
    assert first == {"ndim": 1, "format": 2, "storage": [4]}  # a strided view of a 4-element storage
    assert {"ndim": 3, "format": 47, "storage": [48]} in interop["formats_3d"]


def test_one_libascendcl_the_one_torch_npu_loaded(interop, trees):
    want = str(trees["b"] / "lib64" / "libascendcl.so")
    assert interop["copies"] == [want]  # ASCEND_HOME_PATH points at tree a: opening it would make two
    name, runtime, how = interop["backend"]
    assert name == "cann" and runtime[0] == want and how[want] == "already loaded"


# ---------------------------------------------------------------------------------------------- loading order
_LOADING = r"""
import ctypes, json, os
import numpy as np
import aclnn_moe as am
from aclnn_moe.capi import backend
from aclnn_moe.capi._backend import loaded_copies
facts = {"at_import": loaded_copies("libascendcl.so")}
am.moe_compute_expert_tokens(np.array([0, 0, 1, 3], np.int32), 4)
b = backend()
facts["backend"] = [b.name, str(b.runtime_libraries[0]), b.how_loaded.get(str(b.runtime_libraries[0]))]
ctypes.CDLL("libascendcl.so", mode=os.RTLD_LAZY)  # what libtorch_npu's NEEDED entry does when it loads later
facts["copies"] = loaded_copies("libascendcl.so")
print("FACTS " + json.dumps(facts))
"""


def test_import_opens_no_library_and_ld_library_path_wins(trees):
    f = _facts(fake_cann.run(_LOADING, ASCEND_HOME_PATH=trees["a"], LD_LIBRARY_PATH=trees["b"] / "lib64"))
    assert f["at_import"] == []
    want = str(trees["b"] / "lib64" / "libascendcl.so")
    assert f["backend"] == ["cann", want, "by name"]
    assert f["copies"] == [want]  # a later load by name (torch_npu's) finds the same copy


def test_without_ld_library_path_the_install_path_is_used(trees):
    f = _facts(fake_cann.run(_LOADING, ASCEND_HOME_PATH=trees["a"]))
    assert f["backend"] == ["cann", str(trees["a"] / "lib64" / "libascendcl.so"), "by path"]


# ---------------------------------------------------------------------------------------------- a broken install
def _cli(*args, **env):
    return fake_cann.run(f"import sys; from aclnn_moe.cli import main; sys.exit(main({list(args)!r}))", **env)


def test_a_broken_install_does_not_break_import_or_help(trees):
    r = fake_cann.run("import aclnn_moe, numpy; print('imported')", ASCEND_HOME_PATH=trees["broken"])
    assert r.returncode == 0 and "imported" in r.stdout, r.stderr
    r = _cli("--help", ASCEND_HOME_PATH=trees["broken"])
    assert r.returncode == 0 and "info" in r.stdout, r.stderr


def test_info_on_a_broken_install_names_the_library_the_dependency_and_the_way_out(trees):
    r = _cli("info", ASCEND_HOME_PATH=trees["broken"])
    assert r.returncode != 0
    assert "Traceback" not in r.stderr, r.stderr
    assert str(trees["broken"] / "lib64" / "libascendcl.so") in r.stderr
    assert "libmissing.so" in r.stderr
    assert f"source {trees['broken'] / 'set_env.sh'}" in r.stderr and "ACLNN_MOE_BACKEND=host" in r.stderr


def test_an_operator_call_on_a_broken_install_raises_a_clear_error(trees):
    r = fake_cann.run("""
        import numpy as np, aclnn_moe as am
        from aclnn_moe.capi import BackendLoadError
        try:
            am.moe_compute_expert_tokens(np.array([0, 1], np.int32), 2)
        except BackendLoadError as e:
            print("FACTS", __import__("json").dumps([e.dependency, str(e)]))
    """, ASCEND_HOME_PATH=trees["broken"])
    dep, msg = _facts(r)
    assert dep == "libmissing.so" and "set_env.sh" in msg
    r = _cli("selftest", ASCEND_HOME_PATH=trees["broken"])
    assert r.returncode != 0 and "Traceback" not in r.stderr and "libmissing.so" in r.stderr


def test_the_host_runtime_is_the_way_out_of_a_broken_install(trees):
    r = _cli("info", ASCEND_HOME_PATH=trees["broken"], ACLNN_MOE_BACKEND="host")
    assert r.returncode == 0 and r.stdout.startswith("backend      host"), r.stderr


# ---------------------------------------------------------------------------------------------- no device
def test_cann_without_a_device_is_not_chosen_automatically(trees):
    for tree, said in (("nodevice", "reports no device"), ("failing", "aclrtGetDeviceCount returned 507033")):
        r = fake_cann.run("""
            import json, numpy as np, aclnn_moe as am
            from aclnn_moe.capi import backend
            from aclnn_moe.capi._backend import loaded_copies
            out = am.moe_compute_expert_tokens(np.array([0, 0, 1, 3], np.int32), 4)
            print("FACTS", json.dumps([backend().name, backend().reason, out.tolist(), loaded_copies("libascendcl.so")]))
        """, ASCEND_HOME_PATH=trees[tree])
        name, reason, out, copies = _facts(r)
        assert name == "host" and str(trees[tree]) in reason and said in reason, reason
        assert out == [2, 3, 3, 4]
        # asked in a child process: CANN's libascendcl.so never entered this one (the host libraries bind to theirs)
        assert len(copies) == 1 and str(trees[tree]) not in copies[0], copies
        info = _cli("info", ASCEND_HOME_PATH=trees[tree])
        assert info.returncode == 0 and said in info.stdout and "ACLNN_MOE_BACKEND=cann forces it" in info.stdout


def test_forcing_cann_without_a_device_is_a_clear_error(trees):
    env = dict(ASCEND_HOME_PATH=trees["nodevice"], ACLNN_MOE_BACKEND="cann")
    r = _cli("info", **env)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "no usable device" in r.stderr and "ACLNN_MOE_BACKEND" in r.stderr
    r = fake_cann.run("""
        import numpy as np, aclnn_moe as am
        from aclnn_moe.capi import backend
        assert backend().name == "cann"
        try:
            am.moe_compute_expert_tokens(np.array([0, 1], np.int32), 2)
        except am.AclnnError as e:
            print("FACTS", __import__("json").dumps(str(e)))
    """, **env)
    msg = _facts(r)
    assert "aclrtSetDevice" in msg and "107001" in msg and "no NPU" in msg


# ---------------------------------------------------------------------------------------------- both phases
def test_an_operator_needs_both_of_its_phases(trees, tmp_path):
    """An operator library exporting FinalizeRoutingV2's phase 2 without its phase 1: the operator is absent (the
    V2/V1 choice must not pick it)."""
    root = fake_cann.cann_tree(tmp_path / "half")
    src = tmp_path / "half.c"
    src.write_text("int aclnnMoeFinalizeRoutingV2(void *w, unsigned long n, void *e, void *s) { return 0; }\n")
    fake_cann._cc("-shared", "-fPIC", src, "-o", root / "lib64" / "libopapi.so")
    r = fake_cann.run("""
        import json
        from aclnn_moe.capi import has_symbol, has_operator, lib, SymbolNotFoundError
        from aclnn_moe.ops.finalize_routing import available_versions
        try:
            lib.aclnnMoeFinalizeRoutingV2
            err = None
        except SymbolNotFoundError as e:
            err = str(e)
        print("FACTS", json.dumps([has_symbol("aclnnMoeFinalizeRoutingV2"), has_operator("aclnnMoeFinalizeRoutingV2"),
                                   available_versions(), err]))
    """, ASCEND_HOME_PATH=root)
    sym, op, versions, err = _facts(r)
    assert (sym, op, versions) == (False, False, [])
    assert "aclnnMoeFinalizeRoutingV2GetWorkspaceSize" in err


def test_the_host_runtime_refuses_a_process_holding_another_libascendcl(trees):
    """Its libraries name their runtime libascendcl.so: with CANN's already loaded they would bind to it."""
    r = fake_cann.run("""
        import ctypes, json, os, numpy as np, aclnn_moe as am
        from aclnn_moe.capi import BackendNotFoundError
        ctypes.CDLL("libascendcl.so", mode=os.RTLD_GLOBAL | os.RTLD_LAZY)  # what importing torch_npu does
        try:
            am.moe_compute_expert_tokens(np.array([0, 1], np.int32), 2)
            print("FACTS", json.dumps(None))
        except BackendNotFoundError as e:
            print("FACTS", json.dumps(str(e)))
    """, ACLNN_MOE_BACKEND="host", LD_LIBRARY_PATH=trees["b"] / "lib64")
    msg = _facts(r)
    assert msg and "another libascendcl.so" in msg and str(trees["b"]) in msg


def test_device_arrays_carry_their_device_without_torch_npu():
    """Without torch_npu the same rules hold for DeviceArrays: outputs, staging and workspace on their device."""
    r = fake_cann.run("""
        import json, numpy as np, aclnn_moe as am
        from aclnn_moe._runtime import Device, current_device, workspace_pool
        x_host = np.random.default_rng(0).standard_normal((16, 64)).astype(np.float32)
        Device(1).set_current()
        x = am.to_device(x_host)
        Device(0).set_current()
        y, idx, _ = am.moe_gating_top_k(x, 4)
        after = current_device().id  # the call ran on device 1 and gave the thread back its device 0
        want = am.moe_gating_top_k(x_host, 4)[1]  # host operands: on the current device
        facts = {"x": x.device, "out": [y.device, idx.device], "ws": sorted({k[2] for k in workspace_pool._buffers}),
                 "same": bool(np.array_equal(idx.to_host(), want)), "after": after}
        try:
            am.moe_gating_top_k(x, 4, bias=am.to_device(np.zeros(64, np.float32)))
        except am.ArgumentError as e:
            facts["mixed"] = [e.param, str(e)]
        print("FACTS", json.dumps(facts))
    """, ACLNN_MOE_BACKEND="host", ACLNN_MOE_HOST_DEVICES=2)
    f = _facts(r)
    assert f["x"] == 1 and f["out"] == [1, 1] and f["ws"] == [0, 1] and f["same"] and f["after"] == 0
    assert f["mixed"][0] == "bias" and "x is on device 1" in f["mixed"][1]
