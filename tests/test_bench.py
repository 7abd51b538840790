"""``aclnn-moe bench``: its helpers (units, interleaving, memcpy size, the model table, the summary), every torch
composite against the operator it stands for (so that a composite doing less work cannot flatter the
operators), and the quick tier end to end: structure only (every column, every ratio consistent with the
times, every goal in the summary), never a timing goal."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import aclnn_moe as am
from aclnn_moe import _bench_cases as cases, bench


def _cli(*args, timeout=600, code=None):
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "aclnn_moe", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=Path(__file__).parent,
                          env=dict(os.environ))


# ---- helpers ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("us, text", [(0.42, "0.42 us"), (12.5, "12.5 us"), (258, "258 us"), (970, "970 us"),
                                      (4.64e4, "46.4 ms"), (2.1e5, "210 ms"), (1.234e6, "1.23 s"),
                                      (None, "-")])
def test_units_scale(us, text):
    assert bench.format_time(us) == text


def test_repeats_are_interleaved():
    calls = []
    variants = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    samples = bench.interleaved(variants, 6, every={"c": 3}, warmup=0)
    assert {k: len(v) for k, v in samples.items()} == {"a": 6, "b": 6, "c": 2}
    assert all(s >= 0 for v in samples.values() for s in v)
    # one sample of each variant per round, never a variant's repeats back to back in a block
    assert sorted(calls[:3]) == ["a", "b", "c"] and set(calls[3:5]) == {"a", "b"}
    longest_run = max(len(m.group(0)) for m in re.finditer(r"(.)\1*", "".join(calls)))
    assert longest_run <= 2, calls


def test_no_variant_always_follows_the_same_one():
    # (a fixed neighbour, e.g. right after the cache-flushing memcpy, would time one variant cold every round)
    calls = []
    variants = {name: (lambda name=name: calls.append(name)) for name in "abcdefg"}
    bench.interleaved(variants, 15, warmup=0)
    rounds = [calls[i:i + 7] for i in range(0, len(calls), 7)]
    assert all(sorted(r) == list("abcdefg") for r in rounds)
    before = {n: {r[r.index(n) - 1] for r in rounds if r.index(n) > 0} for n in "abcdefg"}
    assert all(len(b) >= 3 for b in before.values()), before


def test_batches_may_differ_per_variant():
    calls = []
    variants = {name: (lambda name=name: calls.append(name)) for name in "ab"}
    samples = bench.interleaved(variants, 3, batch={"a": 4}, warmup=0)
    assert {k: len(v) for k, v in samples.items()} == {"a": 3, "b": 3}
    assert calls.count("a") == 12 and calls.count("b") == 3


def test_memcpy_moves_the_operators_bytes():
    m = bench._Memcpy(1 << 20)
    assert m.n == 1 << 19  # half read, half written
    m.src[:] = 7
    m()
    assert (m.dst == 7).all()


def test_model_table():
    assert set(bench.MODELS) == {"dsv3", "qwen3", "mixtral"}
    d, q, x = (bench.MODELS[n] for n in ("dsv3", "qwen3", "mixtral"))
    assert (d.hidden, d.experts, d.top_k, d.groups, d.topk_groups, d.sigmoid, d.bias) == (7168, 256, 8, 8, 4, True,
                                                                                          True)
    assert (q.hidden, q.experts, q.top_k) == (4096, 128, 8) and (x.hidden, x.experts, x.top_k) == (4096, 8, 2)
    assert d.gating_kwargs()["group_count"] == 8 and q.gating_kwargs()["norm_type"] == 0


def test_case_names_cover_every_operator_and_size():
    for quick, tokens in ((True, (1, 16, 256, 1024)), (False, (1, 16, 256, 4096, 16384))):
        names = bench.case_names(quick)
        assert len(names) == len(set(names)) == len(cases.OPS) * len(tokens)
        assert {n.rsplit(" T=", 1)[0] for n in names} == set(cases.OPS)
        assert {int(n.rsplit("T=", 1)[1]) for n in names} == set(tokens)
    assert set(cases.OPS) >= {"gating_top_k", "gating_top_k_softmax", "compute_expert_tokens", "init_routing",
                              "init_routing_v2", "init_routing_v3", "token_permute_with_ep",
                              "token_unpermute_with_ep", "token_permute", "token_unpermute", "finalize_routing",
                              "re_routing"}


def _row(name, tokens, memory_bound, **times):
    t = {c: times.get(c.replace(" ", "_")) for c in bench.COLUMNS}
    ratios = {r: (t[a] / t[d] if t[a] and t[d] else None) for r, (a, d) in bench.RATIOS.items()}
    return {"name": name, "tokens": tokens, "memory_bound": memory_bound, "times_us": t, "ratios": ratios}


def test_summary_takes_the_worst_case_of_each_goal():
    result = {
        "ladder": [{"call": "tiny", "rows": [{"path": "function form, numpy in/out", "us": 12.0}]}],
        "cases": [_row("a T=1", 1, False, function=20, plan=10, torch_op=30, composite=40, memcpy=5),
                  _row("b T=16", 16, True, function=35, plan=10, torch_op=36, composite=30, memcpy=5),
                  _row("c T=4096", 4096, True, function=12, plan=10, torch_op=13, composite=50, memcpy=8),
                  _row("d T=16384", 16384, True, function=14, plan=10, torch_op=15, composite=50, memcpy=9)],
    }
    s = {g["goal"]: g for g in bench._summary(result)}
    assert {g[0] for g in bench.GOALS} <= set(s)
    assert s["function_vs_plan_small"]["worst"] == 3.5 and s["function_vs_plan_small"]["case"] == "b T=16"
    assert s["function_vs_plan_small"]["met"] is False
    assert s["function_vs_plan_large"]["worst"] == pytest.approx(1.4) and s["function_vs_plan_large"]["met"]
    assert s["tiny_call"]["worst"] == 12.0 and s["tiny_call"]["met"] is False
    assert s["function_vs_composite"]["case"] == "b T=16" and s["function_vs_composite"]["met"] is False
    assert s["torch_op_vs_composite"]["worst"] == pytest.approx(1.2) and not s["torch_op_vs_composite"]["met"]
    assert s["plan_vs_memcpy"]["worst"] == pytest.approx(1.25) and s["plan_vs_memcpy"]["met"] is True
    assert s["plan_vs_memcpy"]["case"] == "c T=4096"
    # no case for a goal: neither met nor failed
    empty = {g["goal"]: g for g in bench._summary({"ladder": [], "cases": result["cases"][:2]})}
    assert empty["plan_vs_memcpy"]["worst"] is None and empty["plan_vs_memcpy"]["met"] is None


def test_header_reads_the_machine():
    info = bench.machine_info()
    assert info["cpu"] and info["cores"] >= 1 and info["backend"] in ("host", "cann")
    if os.path.isdir("/sys/devices/system/cpu/cpu0/cache"):
        assert any(k.startswith("L1") for k in info["caches"]), info["caches"]


# ---- the composites compute what the operators compute ------------------------------------------------------

def _torch_args(b):
    return [bench._to_torch(a) for a in b.args], {k: bench._to_torch(v) for k, v in b.kwargs.items()}


def _separated_gating(b, rng):
    """The case's gating inputs with logits (and bias) whose ranking no rounding can change."""
    from aclnn_moe.ops.gating_top_k import separated_logits

    x = b.args[0]
    b.args = (separated_logits(rng, x.shape[0], x.shape[1], np.float32).astype(x.dtype),) + tuple(b.args[1:])
    if b.kwargs.get("bias") is not None:
        e = x.shape[1]
        b.kwargs["bias"] = (rng.permutation(e) * (1.0 / (4 * e))).astype(x.dtype)
    return b


def _canonical_gating(y, idx):
    """Rows sorted by expert id: vLLM's grouped_topk returns its picks in no order (sorted=False)."""
    y, idx = np.asarray(y, np.float32), np.asarray(idx)
    o = np.argsort(idx, axis=1)
    return np.take_along_axis(y, o, 1), np.take_along_axis(idx, o, 1)


@pytest.mark.parametrize("model", sorted(bench.MODELS))
@pytest.mark.parametrize("op", list(cases.OPS))
def test_composite_matches_the_operator(model, op):
    torch = pytest.importorskip("torch")
    from aclnn_moe._bench_composites import COMPOSITES

    m = bench.MODELS[model]
    for t in (1, 16, 77):
        rng = np.random.default_rng(t)
        b = cases.build(op, m, t, 64, seed=t)
        if op.startswith("gating"):
            b = _separated_gating(b, rng)
        ours = getattr(am, b.function)(*b.args, **b.kwargs)
        targs, tkw = _torch_args(b)
        theirs = COMPOSITES[b.function](*targs, **tkw)
        if op == "gating_top_k":  # (weights in fp32, picks unordered, as vLLM returns them)
            assert theirs[0].dtype == torch.float32 and theirs[1].dtype == torch.int32
            gy, gi = _canonical_gating(ours[0].astype(np.float32), ours[1])
            cy, ci = _canonical_gating(theirs[0].numpy(), theirs[1].numpy())
            np.testing.assert_array_equal(gi, ci, err_msg=f"{model} {op} T={t}")
            np.testing.assert_allclose(gy, cy, rtol=1e-2, atol=1e-3, err_msg=f"{model} {op} T={t}")
            continue
        assert bench._result_check(b.function, ours, theirs) is None, (model, op, t)
        # the check is strict enough to catch a composite that computed something else
        ours_t = ours if isinstance(ours, tuple) else (ours,)
        first = next(i for i, o in enumerate(ours_t) if o is not None and np.asarray(o).size > 1)
        wrong = list(ours_t)
        wrong[first] = np.asarray(ours_t[first])[::-1].copy()
        if not np.array_equal(np.asarray(wrong[first]).astype(np.float32),
                              np.asarray(ours_t[first]).astype(np.float32)):
            assert bench._result_check(b.function, tuple(wrong), theirs) is not None, (model, op, t)


def test_result_check_names_what_differs():
    torch = pytest.importorskip("torch")
    ours = (np.arange(4, dtype=np.int32), None)
    assert bench._result_check("x", ours, (torch.arange(4, dtype=torch.int32), None)) is None
    assert "differ" in bench._result_check("x", ours, (torch.tensor([0, 1, 2, 4], dtype=torch.int32), None))
    assert "None" in bench._result_check("x", ours, (torch.arange(4, dtype=torch.int32), torch.zeros(1)))
    assert "shape" in bench._result_check("x", ours, (torch.arange(5, dtype=torch.int32), None))


# ---- the quick tier end to end -----------------------------------------------------------------------------

def _check_structure(data, *, with_torch):
    assert data["tier"] == "quick" and data["backend"] == data["machine"]["backend"]
    m = data["machine"]
    assert m["cpu"] and m["cores"] >= 1 and isinstance(m["caches"], dict)
    assert (m["torch"] is not None) == with_torch
    assert len(data["load_before"]) == 3 and len(data["load_after"]) == 3
    tiny, decode = data["ladder"]
    for call in (tiny, decode):
        paths = [r["path"] for r in call["rows"]]
        assert paths[0].startswith("function form") and paths[-1].startswith("raw capi")
        assert any(p.startswith("plan.execute, numpy") for p in paths)
        assert any(p.startswith("plan.execute, DeviceArray") for p in paths)
        assert any(p.startswith("torch op") for p in paths) == with_torch
        assert any("aten.add" in p for p in paths) == with_torch
        raw = call["rows"][-1]["us"]
        for r in call["rows"]:
            assert r["us"] > 0 and r["x_raw"] == pytest.approx(r["us"] / raw)
    for c in data["cases"]:
        t = c["times_us"]
        assert set(t) == set(bench.COLUMNS), c["name"]
        for col in ("function", "plan", "raw capi", "numpy", "memcpy"):  # (quick: the reference runs everywhere)
            assert t[col] is not None and t[col] > 0, (c["name"], col)
        for col in ("torch op", "composite"):
            assert (t[col] is not None) == with_torch, (c["name"], col)
        assert set(c["ratios"]) == set(bench.RATIOS)
        for r, (a, d) in bench.RATIOS.items():
            if t[a] is None or t[d] is None:
                assert c["ratios"][r] is None
            else:
                assert c["ratios"][r] == pytest.approx(t[a] / t[d]), (c["name"], r)
        assert c["bytes"] > 0 and c["memcpy_gbps"] == pytest.approx(c["bytes"] / (t["memcpy"] * 1e3))
        assert all(n >= 1 for n in c["samples"].values())
        if with_torch and c["tokens"] <= bench.CHECK_MAX_TOKENS and not c["op"].startswith("gating"):
            assert c["composite_check"] == "equal", (c["name"], c["composite_check"])
    goals = {g["goal"]: g for g in data["summary"]}
    assert {g[0] for g in bench.GOALS} <= set(goals)
    for g in goals.values():
        if g["limit"] is not None and g["worst"] is not None:
            assert g["met"] == (g["worst"] < g["limit"] if g["limit"] == 1.0 else g["worst"] <= g["limit"])
    assert goals["plan_vs_memcpy"]["met"] is None  # the quick tier has no T >= 4096


def test_quick_tier_json_has_every_column_and_consistent_ratios(capsys):
    pytest.importorskip("torch")
    assert bench.main(quick=True, as_json=True, repeat=3, progress="none") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["import"]["numpy_ms"] > 0 and data["import"]["aclnn_moe_ms"] > 0
    assert data["model"] == "dsv3" and data["hidden"] == 512 and data["repeat"] == 3
    assert [c["name"] for c in data["cases"]] == bench.case_names(quick=True)
    _check_structure(data, with_torch=True)


def test_text_report_header_table_summary_progress_and_plot(tmp_path):
    plot = tmp_path / "bench.png"
    try:
        import matplotlib  # noqa: F401
        has_mpl = True
    except ImportError:
        has_mpl = False
    r = _cli("bench", "--quick", "--only", "compute_expert_tokens,finalize_routing T=16", "--repeat", "3",
             *(["--plot", str(plot)] if has_mpl else []))
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert re.search(r"^cpu: .+; \d+ cores .*caches: .*L1d", out, re.M), out
    assert re.search(r"load average \(1, 5, 15 min\) before \[[\d., ]+\], after \[[\d., ]+\]", out), out
    assert "per-call overhead, tiny call" in out and "per-call overhead, decode call: gating_top_k" in out
    assert "raw capi phase 2" in out
    header = next(line for line in out.splitlines() if line.startswith("case "))
    for col in (*bench.COLUMNS, *bench.RATIOS):
        assert col in header, col
    assert re.search(r"^compute_expert_tokens T=1024 +[\d.]+ (us|ms|s) ", out, re.M), out
    assert re.search(r"^finalize_routing T=16 ", out, re.M) and not re.search(r"^finalize_routing T=256", out, re.M)
    assert "summary against the goals of issue 13" in out
    for _, text, *_ in bench.GOALS:
        assert text in out, text
    assert "columns (medians" in out
    steps = re.findall(r"^\[(\d+)/(\d+)\] ", r.stderr, re.M)
    assert len(steps) == 6 and steps[-1] == ("6", "6"), r.stderr  # the ladder, 5 cases (no import cost: --only)
    if has_mpl:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
        assert f"plot written to {plot}" in out


def test_other_models_take_their_shapes():
    r = _cli("bench", "--quick", "--model", "mixtral", "--only", "re_routing T=16,gating_top_k T=1", "--repeat", "3",
             "--json", "--progress", "none")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr == ""
    data = json.loads(r.stdout)
    assert data["model"] == "mixtral" and data["hidden"] == 512
    names = [c["name"] for c in data["cases"]]
    assert names == ["gating_top_k T=1", "re_routing T=16"]
    rr = data["cases"][1]
    assert rr["ep_ranks"] == 8 and rr["local_experts"] == 1 and rr["rows"] == 16 * 2  # A = T*K, K=2
    assert "Mixtral" in data["ladder"][1]["call"]


def test_without_torch_the_torch_columns_are_empty():
    code = ("import sys; sys.modules['torch'] = None; "
            "import importlib.util as u; u.find_spec = (lambda f: (lambda n, *a: None if n == 'torch' else f(n, *a)))"
            "(u.find_spec); from aclnn_moe.cli import main; "
            "sys.exit(main(['bench', '--quick', '--only', 'compute_expert_tokens T=16', '--repeat', '3', '--json', "
            "'--progress', 'none']))")
    r = _cli(code=code)
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(r.stdout)
    [c] = data["cases"]
    assert c["times_us"]["torch op"] is None and c["times_us"]["composite"] is None
    assert c["ratios"]["top/comp"] is None and c["times_us"]["plan"] > 0
    goals = {g["goal"]: g for g in data["summary"]}
    assert goals["torch_op_vs_composite"]["met"] is None


def test_primed_variants_get_one_untimed_call_before_each_sample():
    calls = []
    variants = {name: (lambda name=name: calls.append(name)) for name in "ab"}
    samples = bench.interleaved(variants, 3, batch={"a": 2}, warmup=0, prime=["a"])
    assert {k: len(v) for k, v in samples.items()} == {"a": 3, "b": 3}
    assert calls.count("a") == 9 and calls.count("b") == 3  # 3 samples x (1 primer + 2 timed)
