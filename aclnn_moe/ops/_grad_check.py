"""selftest helper shared by the grad operators: bitwise comparison of results that may be None."""
import numpy as np


def same(got, exp, name):
    assert (got is None) == (exp is None), name
    if got is None:
        return
    assert got.dtype == exp.dtype and got.shape == exp.shape, f"{name}: {got.dtype}{got.shape} != {exp.dtype}{exp.shape}"
    if got.dtype.itemsize == 2:
        got, exp = got.view(np.uint16), exp.view(np.uint16)
    np.testing.assert_array_equal(got, exp, err_msg=name)
