"""Expert parallelism across processes (aclnn_moe.distributed): 2 and 4 gloo ranks on 127.0.0.1, both
dispatchers, fp32 and bf16, skewed routing (experts and ranks that receive nothing), forward and backward against
the dense single-process layer; a failing or dying rank ends the run with an error within the timeout.
All cases of one world size run in one spawn (start-up dominates on a loaded 2-core machine)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402

if not dist.is_available() or not dist.is_gloo_available():  # pragma: no cover
    pytest.skip("torch.distributed with gloo is needed", allow_module_level=True)

from aclnn_moe.distributed import RankError, spawn  # noqa: E402
from aclnn_moe.distributed import _checks  # noqa: E402

TIMEOUT = 60  # the group timeout (every collective) and, doubled, the bound of each spawn
SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "ep_torchrun.py"

# E = 8 experts; skew [0, 1, 2] leaves experts 3..7 empty: with 2 ranks rank 1 receives nothing, with 4 ranks
# ranks 2 and 3 do
CASES = {
    2: [dict(kind=k, sizes=[5, 7], dtype=d) for k in ("a2a", "ag") for d in ("float32", "bfloat16")]
    + [dict(kind=k, sizes=[6, 3], skew=[0, 1, 2], seed=1) for k in ("a2a", "ag")]
    + [dict(kind="a2a", sizes=[6, 4], quant=True, backward=False, seed=2)],
    4: [dict(kind=k, sizes=[3, 5, 2, 4], dtype=d, seed=3) for k in ("a2a", "ag") for d in ("float32", "bfloat16")]
    + [dict(kind=k, sizes=[4, 0, 6, 3], skew=[0, 1, 2], k=3, seed=4) for k in ("a2a", "ag")],
}
_RESULTS: dict = {}


def _results(world):
    if world not in _RESULTS:
        t0 = time.monotonic()
        _RESULTS[world] = spawn(_checks.all_checks, world, (CASES[world],), timeout=TIMEOUT)
        assert time.monotonic() - t0 < 2 * TIMEOUT + 30
    return _RESULTS[world]


def _tol(case):
    return 2e-2 if case.get("dtype") == "bfloat16" else 1e-5


def _ids():
    for world, cases in CASES.items():
        for i, c in enumerate(cases):
            name = f"ep{world}-{c['kind']}-{c.get('dtype', 'float32')}" + ("-skew" if c.get("skew") else "") + \
                   ("-int8" if c.get("quant") else "") + f"-{i}"
            yield world, i, name


PARAMS = [pytest.param(w, i, id=n) for w, i, n in _ids()]


@pytest.mark.parametrize("world", [2, 4])
def test_collectives_and_their_gradients(world):
    for rank, res in enumerate(_results(world)):
        col = res["collectives"]
        assert col["a2a_bf16_dtype"] == "torch.bfloat16"
        for name, err in col.items():
            if name != "a2a_bf16_dtype":
                assert err == 0.0, (rank, name, err)


@pytest.mark.parametrize("world,index", PARAMS)
def test_forward_matches_dense(world, index):
    case = CASES[world][index]
    tol = 3e-2 if case.get("quant") else _tol(case)
    for rank, res in enumerate(_results(world)):
        got = res["cases"][index]
        assert got["rank"] == rank and got["out_shape"] == (case["sizes"][rank], 16)
        assert got["out_dtype"] == case.get("dtype", "float32")
        assert got["out"] < tol, (rank, got)


def _backward_params():
    return [pytest.param(w, i, id=n) for w, i, n in _ids() if CASES[w][i].get("backward", True)]


@pytest.mark.parametrize("world,index", _backward_params())
def test_backward_matches_dense(world, index):
    case = CASES[world][index]
    tol = 5e-2 if case.get("dtype") == "bfloat16" else 1e-4
    for rank, res in enumerate(_results(world)):
        got = res["cases"][index]
        assert "backward_error" not in got, got["backward_error"]
        for name in ("grad_x", "grad_weights", "grad_w1", "grad_w2"):
            assert got[name] < tol, (rank, name, got)


def test_skewed_routing_leaves_ranks_empty():
    """the skewed cases really exercise ranks that receive nothing (and, with 4 ranks, one that sends nothing)"""
    from aclnn_moe.distributed._checks import make_problem

    for world, cases in CASES.items():
        for c in cases:
            if c.get("skew"):
                p = make_problem(c.get("seed", 0), c["sizes"], 16, 8, c.get("k", 2), 8, skew=c["skew"])
                owners = set((p["ids"].long() // (8 // world)).reshape(-1).tolist())
                assert owners != set(range(world))


@pytest.mark.parametrize("how", ["raise", "exit"])
def test_failing_rank_ends_the_run(how):
    t0 = time.monotonic()
    with pytest.raises(RankError, match="rank 1"):
        spawn(_checks.fail_on, 2, (1, how), timeout=20)
    assert time.monotonic() - t0 < 70


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="nprocs"):
        spawn(_checks.fail_on, 0, (0,))


@pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
                    reason="torchrun is not installed")
def test_torchrun_sample():
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    env = dict(os.environ, EP_SAMPLE_TIMEOUT="60")
    r = subprocess.run([torchrun, "--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port",
                        str(_free_port()), str(SAMPLE)], capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.count("ok") >= 4, r.stdout


def _free_port():
    from aclnn_moe.distributed.launch import free_port

    return free_port()


def test_importing_the_package_never_imports_torch():
    code = "import sys, aclnn_moe; sys.exit(int('torch' in sys.modules or 'aclnn_moe.distributed' in sys.modules))"
    assert subprocess.run([sys.executable, "-P", "-c", code], timeout=120).returncode == 0


def test_demo_ep_checks_every_rank():
    r = subprocess.run([sys.executable, "-P", "-m", "aclnn_moe.cli", "demo", "--ep", "2", "--tokens", "64",
                        "--repeat", "1"], capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.count(" ok") == 2 and "demo --ep passed" in r.stdout, r.stdout
    for phase in ("routing", "exchange", "experts", "combine"):
        assert phase in r.stdout


def test_demo_ep_rejects_a_rank_count_that_does_not_divide_the_experts():
    r = subprocess.run([sys.executable, "-P", "-m", "aclnn_moe.cli", "demo", "--ep", "3"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "--ep" in r.stderr and "256" in r.stderr, r.stderr
