"""Tests of backprop._validation: the fast finiteness check behind every input check."""

import numpy as np
import pytest

from backprop._validation import all_finite, check_array


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_finite_finds_every_kind_of_non_finite_value(dtype):
    a = np.ones((300, 7), dtype)
    assert all_finite(a)
    for bad in (np.nan, np.inf, -np.inf):
        b = a.copy()
        b[123, 4] = bad
        assert not all_finite(b)
    b = a.copy()
    b[0, 0], b[1, 1] = np.inf, -np.inf  # inf - inf: the sum is NaN, still caught
    assert not all_finite(b)


def test_all_finite_is_not_fooled_by_an_overflowing_sum():
    # Every element is finite but the sum overflows: the exact, chunked check decides.
    big = np.full((3000, 1000), np.finfo(np.float32).max / 2, np.float32)
    assert all_finite(big)
    big[2999, 999] = np.nan
    assert not all_finite(big)


def test_all_finite_makes_no_full_size_temporary():
    import tracemalloc

    a = np.ones((1000, 500), np.float32)
    tracemalloc.start()
    try:
        assert all_finite(a)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < a.nbytes // 20  # np.isfinite(a).all() would allocate a.size bytes


def test_check_array_names_the_first_non_finite_entry():
    X = np.zeros((4, 3))
    X[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"row 2, column 1"):
        check_array(X, n_features=3, dtype=np.float64)
