"""The README's Python examples run as written (the capi fragment, which elides its tensors, is ported in
full by test_capi.py and samples/)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_facade_examples_run():
    import aclnn_moe as am

    blocks = [b for b in _python_blocks() if "from aclnn_moe.capi" not in b]
    assert len(blocks) >= 2
    stream = am.Stream()
    ns = {"stream": stream}
    exec(blocks[0], ns)  # operator function
    ns["batches"] = [ns["logits"], ns["logits"][::-1].copy()]
    exec(blocks[1], ns)  # plan, rebind, execute
    assert ns["y"].shape == (16, 8) and ns["expert_idx"].dtype == np.int32
    want = am.moe_gating_top_k(ns["batches"][-1], 8, bias=ns["bias"], k_group=4, group_count=8,
                               group_select_mode=1, norm_type=1)[1]
    np.testing.assert_array_equal(ns["expert_idx"], want)
    stream.close()
