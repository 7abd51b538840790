"""Result comparison shared by the selftest and the tests: exact, bf16/fp16 compared as bits."""
from __future__ import annotations

import numpy as np


def assert_same(got, exp, what: str) -> None:
    """got and exp are both None, or arrays of the same dtype, shape and bits (NaN payloads aside)."""
    assert (got is None) == (exp is None), f"{what}: {got is None=} but {exp is None=}"
    if got is None:
        return
    got, exp = np.asarray(got), np.asarray(exp)
    assert got.dtype == exp.dtype and got.shape == exp.shape, f"{what}: {got.dtype}{got.shape} != {exp.dtype}{exp.shape}"
    if got.dtype.kind == "V" or got.dtype.name in ("bfloat16", "float16"):
        got, exp = got.view(np.uint16), exp.view(np.uint16)
    np.testing.assert_array_equal(got, exp, err_msg=what)


def assert_all_same(got, exp, names, what: str) -> None:
    if not isinstance(got, tuple):
        got, exp, names = (got,), (exp,), names[:1]
    assert len(got) == len(exp), f"{what}: {len(got)} results, the reference has {len(exp)}"
    for name, g, x in zip(names, got, exp):
        assert_same(g, x, f"{what} {name}")
