"""Tests of backprop._kernels: the compiled optimizer updates give bit-identical parameters to the
NumPy code, are used only where they should be, and can be switched off."""

import numpy as np
import pytest

from backprop import _kernels
from backprop.optimizers import OPTIMIZERS, Adam, get_optimizer

needs_numba = pytest.mark.skipif(not _kernels.available(), reason="numba is not installed")

CASES = [
    ("sgd", {}),
    ("momentum", {}),
    ("nesterov", {}),
    ("adagrad", {}),
    ("rmsprop", {"alpha": 0.9}),
    ("adam", {}),
    ("adam", {"beta1": 0.5, "beta2": 0.9, "eps": 1e-3}),
    ("radam", {}),  # the first 5 updates are un-adapted, the next ones rectified
]


@pytest.fixture
def kernels_on():
    old = _kernels.set_enabled(True)
    yield
    _kernels.set_enabled(old)


def _run(name, hp, dtype, use_kernels, steps=8, n=_kernels.MIN_SIZE + 7):
    rng = np.random.default_rng(3)
    theta = rng.standard_normal(n).astype(dtype)
    grads = [(rng.standard_normal(n) * rng.uniform(0.1, 3)).astype(dtype) for _ in range(steps)]
    opt = get_optimizer(name, lr=0.01, **hp)
    old = _kernels.set_enabled(use_kernels)
    try:
        for g in grads:
            opt.step({"flat": theta}, {"flat": g})
    finally:
        _kernels.set_enabled(old)
    return theta, opt.state_dict()["state"]


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c[0] + "".join(f"-{k}" for k in c[1]))
def test_kernel_is_bit_identical_to_numpy(case, dtype):
    name, hp = case
    theta_k, state_k = _run(name, hp, dtype, True)
    theta_n, state_n = _run(name, hp, dtype, False)
    assert theta_k.dtype == dtype
    np.testing.assert_array_equal(theta_k, theta_n)
    assert state_k.keys() == state_n.keys()
    for key in state_k:
        np.testing.assert_array_equal(state_k[key], state_n[key])


def test_every_optimizer_is_covered():
    assert {name for name, _ in CASES} == set(OPTIMIZERS)


@needs_numba
def test_kernel_used_only_for_large_contiguous_float_arrays(kernels_on):
    big = np.zeros(_kernels.MIN_SIZE, np.float32)
    assert _kernels.get("adam", big) is not None
    assert _kernels.get("adam", big[: _kernels.MIN_SIZE - 1]) is None  # small
    assert _kernels.get("adam", np.zeros(2 * _kernels.MIN_SIZE)[::2]) is None  # strided
    assert _kernels.get("adam", np.zeros(_kernels.MIN_SIZE, np.float16)) is None
    _kernels.set_enabled(False)
    assert _kernels.get("adam", big) is None


@needs_numba
def test_multidimensional_and_view_parameters_use_the_kernel_correctly(kernels_on):
    rng = np.random.default_rng(0)
    flat = rng.standard_normal(3 * _kernels.MIN_SIZE).astype(np.float32)
    ref = flat.copy()
    W = flat[: 2 * _kernels.MIN_SIZE].reshape(2, -1)  # a contiguous 2-D view
    Wr = ref[: 2 * _kernels.MIN_SIZE].reshape(2, -1)
    g = rng.standard_normal(W.shape).astype(np.float32)
    gt = np.asfortranarray(g)  # same values, not C-contiguous: NumPy path
    before = flat.copy()
    Adam(lr=0.1).step({"W": W}, {"W": g})
    Adam(lr=0.1).step({"W": Wr}, {"W": gt})
    np.testing.assert_array_equal(flat, ref)
    assert not np.array_equal(flat[: W.size], before[: W.size])
    np.testing.assert_array_equal(flat[W.size :], before[W.size :])  # outside the view: untouched


def test_switch_off_falls_back_to_numpy():
    old = _kernels.set_enabled(False)
    try:
        assert not _kernels.enabled()
        assert _kernels.get("adam", np.zeros(_kernels.MIN_SIZE, np.float32)) is None
        theta, _ = _run("adam", {}, np.float32, False, steps=2)
        assert np.isfinite(theta).all()
    finally:
        _kernels.set_enabled(old)


@needs_numba
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("rows", [1, 16, 37])
def test_fused_softmax_cross_entropy_kernel_matches_numpy(dtype, rows, kernels_on):
    from backprop import MLP
    from backprop.losses import get_loss

    rng = np.random.default_rng(5)
    loss = get_loss("cross_entropy")
    nets = [MLP([300, 60, 7], output="softmax", dtype=dtype, seed=0) for _ in range(2)]
    assert nets[0].flat_params.size >= _kernels.MIN_SIZE  # big enough for the kernels
    X = rng.normal(size=(rows, 300)).astype(dtype) * 3
    Y = nets[0].check_targets(rng.integers(0, 7, rows), rows, loss)
    values, grads, outputs = [], [], []
    for net, on in zip(nets, (True, False), strict=True):
        net._use_workspace(True)
        _kernels.set_enabled(on)
        values.append(net._loss_grad(X, Y, loss, 0.0, (), True))
        grads.append(net.flat_grads.copy())
        outputs.append(np.array(net._output))
        net._use_workspace(False)
    eps = float(np.finfo(dtype).eps)
    assert values[0] == pytest.approx(values[1], rel=10 * eps)
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=10 * eps, atol=10 * eps)
    np.testing.assert_allclose(outputs[0].sum(axis=1), 1.0, rtol=10 * eps)
    scale = np.abs(grads[1]).max()
    np.testing.assert_allclose(grads[0], grads[1], rtol=50 * eps, atol=50 * eps * scale)


def test_a_failing_compilation_falls_back_to_numpy(monkeypatch):
    def broken(numba, name):
        raise RuntimeError("no LLVM today")

    monkeypatch.setattr(_kernels, "_build", broken)
    monkeypatch.setattr(_kernels, "_compiled", {})
    monkeypatch.setitem(_kernels._state, "enabled", True)
    monkeypatch.setitem(_kernels._state, "tried", True)
    monkeypatch.setitem(_kernels._state, "numba", object())  # "available"
    assert _kernels.kernel("adam") is None
    theta, _ = _run("adam", {}, np.float32, True, steps=2)  # trains with the NumPy update
    assert np.isfinite(theta).all()


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows", [1, 7, 8, 13, 128])
def test_row_gather_kernel_copies_exactly_the_rows_of_np_take(dtype, rows, kernels_on):
    rng = np.random.default_rng(5)
    n, d = (_kernels.GATHER_MIN_BYTES // np.dtype(dtype).itemsize) // 100 + 1, 100
    X = rng.standard_normal((n, d)).astype(dtype)
    gather = _kernels.row_gatherer(X)
    assert gather.__name__ == "gather"  # the compiled path
    idx = rng.permutation(n)[:rows]
    out = np.full((rows, d), np.nan, dtype=dtype)
    assert gather(idx, out) is out
    np.testing.assert_array_equal(out, X[idx])
    out = np.full((8, d), np.nan, dtype=dtype)
    # a view of the buffer (the last, shorter batch of an epoch) and repeated rows
    idx = np.array([3, 3, n - 1, 0, 5], dtype=np.int64)
    np.testing.assert_array_equal(gather(idx, out[: len(idx)]), X[idx])


@needs_numba
def test_row_gather_kernel_reads_read_only_and_memory_mapped_data(tmp_path, kernels_on):
    rng = np.random.default_rng(8)
    X = rng.standard_normal((_kernels.GATHER_MIN_BYTES // 400 + 3, 100)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    idx = rng.permutation(len(X))[:37]
    out = np.empty((37, 100), np.float32)
    ro = X.copy()
    ro.setflags(write=False)
    for data in (ro, np.load(tmp_path / "X.npy", mmap_mode="r")):
        calls = []
        real = _kernels.kernel("gather_rows")

        def spy(*args, real=real, calls=calls):
            real(*args)
            calls.append(1)  # only when the compiled kernel accepted the arrays

        _kernels._compiled["gather_rows"] = spy
        try:
            out[:] = np.nan
            _kernels.row_gatherer(data)(idx, out)
        finally:
            _kernels._compiled["gather_rows"] = real
        assert calls == [1]
        np.testing.assert_array_equal(out, X[idx])


def test_row_gatherer_falls_back_to_np_take_when_the_kernel_rejects_the_arrays(
    monkeypatch, kernels_on
):
    X = np.random.default_rng(9).standard_normal((_kernels.GATHER_MIN_BYTES // 400 + 3, 100))
    X = X.astype(np.float32)

    def rejects(*args):
        raise TypeError("No matching definition for argument type(s)")

    monkeypatch.setitem(_kernels._compiled, "gather_rows", rejects)
    monkeypatch.setitem(_kernels._state, "tried", True)
    monkeypatch.setitem(_kernels._state, "numba", object())
    idx = np.array([5, 1, 5, 0], dtype=np.int64)
    out = np.empty((4, 100), np.float32)
    np.testing.assert_array_equal(_kernels.row_gatherer(X)(idx, out), X[idx])


def test_row_gatherer_falls_back_to_np_take_where_the_kernel_does_not_apply(kernels_on):
    rng = np.random.default_rng(6)
    small = rng.standard_normal((50, 100)).astype(np.float32)  # under GATHER_MIN_BYTES
    narrow = rng.standard_normal((_kernels.GATHER_MIN_BYTES // 4, 2)).astype(np.float32)
    ints = rng.integers(0, 9, (_kernels.GATHER_MIN_BYTES // 8 // 100 + 1, 100))
    for X in (small, narrow, ints, np.asfortranarray(small)):
        gather = _kernels.row_gatherer(X)
        assert gather.__name__ == "take"
        idx = np.array([4, 0, 4, 1])
        np.testing.assert_array_equal(gather(idx, np.empty((4, X.shape[1]), X.dtype)), X[idx])
    old = _kernels.set_enabled(False)
    try:
        big = np.zeros((_kernels.GATHER_MIN_BYTES // 400 + 1, 100), np.float32)
        assert _kernels.row_gatherer(big).__name__ == "take"
    finally:
        _kernels.set_enabled(old)


@needs_numba
def test_fit_gathers_batches_with_the_kernel_and_trains_identically(kernels_on, monkeypatch):
    """The same seed gives the same parameters whether the batches come from np.take or from the
    compiled gather (the kernel only changes how rows are copied)."""
    import backprop as bp

    rng = np.random.default_rng(7)
    X = rng.standard_normal((_kernels.GATHER_MIN_BYTES // 256 + 10, 64)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    calls = []
    real = _kernels.row_gatherer

    def spy(data):
        g = real(data)
        calls.append(g.__name__)
        return g

    def take_only(data):
        return lambda idx, out: np.take(data, idx, axis=0, out=out)

    params = []
    for factory in (spy, take_only):
        monkeypatch.setattr(_kernels, "row_gatherer", factory)
        net = bp.MLP([64, 8, 2], output="softmax", seed=0)
        bp.fit(net, X, y, epochs=1, batch_size=100, seed=1)
        params.append(net.flat_params.copy())
    assert calls == ["gather"]
    np.testing.assert_array_equal(params[0], params[1])


@needs_numba
@pytest.mark.parametrize("shuffle", [False, True])
def test_training_on_read_only_data_uses_the_kernels_and_matches_writable_data(shuffle, kernels_on):
    """Read-only inputs and one-hot targets (np.load(mmap_mode="r"), frozen arrays) train exactly
    as their writable copies: the compiled paths accept them (they used to raise a TypeError)."""
    import backprop as bp

    rng = np.random.default_rng(10)
    X = rng.random((600, 784), dtype=np.float32)
    Y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 600)]
    real = _kernels.kernel("softmax_xent")
    params = []
    for frozen in (False, True):
        Xc, Yc = X.copy(), Y.copy()
        if frozen:
            Xc.setflags(write=False)
            Yc.setflags(write=False)
        net = bp.MLP([784, 30, 10], output="softmax", seed=0)
        assert net.n_params >= _kernels.MIN_SIZE
        calls = []

        def spy(*args, calls=calls):
            calls.append(1)
            return real(*args)

        _kernels._compiled["softmax_xent"] = spy
        try:
            bp.fit(net, Xc, Yc, epochs=2, batch_size=64, shuffle=shuffle, seed=1)
        finally:
            _kernels._compiled["softmax_xent"] = real
        assert len(calls) == 2 * 10  # every step went through the compiled output layer
        params.append(net.flat_params.copy())
    np.testing.assert_array_equal(params[0], params[1])


def test_output_layer_falls_back_to_numpy_when_the_fused_kernel_rejects_its_arrays(
    monkeypatch, kernels_on
):
    import backprop as bp

    rng = np.random.default_rng(11)
    X = rng.random((300, 784), dtype=np.float32)
    y = rng.integers(0, 10, 300)

    def rejects(*args):
        raise TypeError("No matching definition for argument type(s)")

    params = []
    for replacement in (rejects, None):  # None: the kernel is unavailable, NumPy does it
        monkeypatch.setitem(_kernels._compiled, "softmax_xent", replacement)
        net = bp.MLP([784, 30, 10], output="softmax", seed=0)
        hist = bp.fit(net, X, y, epochs=2, batch_size=50, seed=1)
        assert np.isfinite(hist.loss).all()
        params.append(net.flat_params.copy())
    np.testing.assert_array_equal(params[0], params[1])


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizers_take_read_only_gradients(name, kernels_on):
    """A read-only gradient, which the compiled updates cannot take, is applied by the NumPy code
    with the same result as a writable one (it used to raise a TypeError from Numba)."""
    rng = np.random.default_rng(12)
    g = rng.standard_normal(_kernels.MIN_SIZE + 3).astype(np.float32)
    frozen = g.copy()
    frozen.setflags(write=False)
    results = []
    for grad in (g, frozen):
        p = np.linspace(-1, 1, g.size, dtype=np.float32)
        opt = get_optimizer(name, lr=0.01)
        for _ in range(3):
            opt.step({"w": p}, {"w": grad})
        results.append(p)
    np.testing.assert_array_equal(results[0], results[1])
    with pytest.raises(ValueError, match="expected shape .* and dtype float32"):
        get_optimizer(name).step({"w": results[0]}, {"w": g.astype(np.float64)})


@needs_numba
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_l2_gradient_kernel_is_bit_identical_to_numpy(dtype, kernels_on):
    """The L2 term's gradient ``lam / n * W``, added in one compiled pass for large weight
    matrices, gives the same bits as NumPy's two passes, and the kernel is really used."""
    import backprop as bp

    rng = np.random.default_rng(13)
    X = rng.random((40, 300)).astype(dtype)
    y = rng.integers(0, 10, 40)
    real = _kernels.kernel("add_scaled")
    results = []
    for use in (True, False):
        calls = []

        def spy(*args, calls=calls):
            calls.append(args[0].size)
            return real(*args)

        _kernels._compiled["add_scaled"] = spy
        old = _kernels.set_enabled(use)
        try:
            net = bp.MLP([300, 60, 10], output="softmax", seed=0, dtype=dtype)  # W1: 18,000
            results.append(net.loss_and_grad(X, y, l2=0.3))
        finally:
            _kernels.set_enabled(old)
            _kernels._compiled["add_scaled"] = real
        assert calls == ([18_000] if use else [])  # W2 (600 weights) stays with NumPy
    (v1, g1), (v2, g2) = results
    assert v1 == v2
    for k in g1:
        np.testing.assert_array_equal(g1[k], g2[k])
