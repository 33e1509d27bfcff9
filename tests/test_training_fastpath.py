"""Tests of the training loop's fast path (backprop/training.py): no copy of the data, the same
batches as a shuffled copy would give, the cheap accuracy, the BLAS thread limit for small
products. (Kept apart from test_training.py, which tests the loop's semantics.)"""

import tracemalloc

import numpy as np
import pytest

from backprop import MLP, Callback, _kernels, fit, training


def _data(rng, n=600, d=20, k=4):
    centers = rng.normal(size=(k, d)) * 3
    y = rng.integers(0, k, n)
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y


def test_fit_makes_no_copy_of_the_data(rng):
    X, y = _data(rng, n=20000, d=200)  # 16 MB of float32
    net = MLP([200, 16, 4], output="softmax", seed=0)
    fit(net, X[:100], y[:100], epochs=1)  # imports and first-time set-up outside the trace
    _kernels.row_gatherer(X)  # the large data's batch gather: Numba and its kernel, 17 MB
    tracemalloc.start()
    try:
        fit(net, X, y, epochs=2, batch_size=64)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # A shuffled copy per epoch (the old loop) or a boolean finiteness mask would each cost at
    # least X.nbytes / 4; what remains is the labels (one-hot, shuffled once per epoch), the
    # batch buffers and the optimizer state.
    assert peak < X.nbytes / 4


def test_batches_are_those_of_a_shuffled_copy(rng):
    X, y = _data(rng, n=50)
    seen = []

    class Spy(Callback):
        def on_batch_end(self, trainer, step, batch_loss, batch_size):
            seen.append(trainer.net._output.copy())

    net = MLP([20, 4], output="softmax", dtype="float64", seed=3)
    fit(net, X, y, optimizer="sgd", lr=1e-300, epochs=2, batch_size=16, callbacks=[Spy()])
    # lr ~ 0: the outputs of each batch are those of the untrained net on the rows that the
    # permutations of the net's Generator (seed 3) select, in order
    ref = MLP([20, 4], output="softmax", dtype="float64", seed=3)  # the same Generator state
    rows = [ref.rng.permutation(50) for _ in range(2)]
    expected = [ref.forward(X[r[s : s + 16]]) for r in rows for s in range(0, 50, 16)]
    assert len(seen) == len(expected) == 8
    for got, want in zip(seen, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_training_accuracy_is_that_of_the_batches_as_trained(rng):
    X, y = _data(rng, n=64)
    accs = []

    class Spy(Callback):
        def on_batch_end(self, trainer, step, batch_loss, batch_size):
            out = trainer.net._output
            # the labels of this batch are not exposed; count over the epoch instead
            accs.append(out.argmax(axis=1).copy())

    net = MLP([20, 4], output="softmax", seed=0)
    hist = fit(
        net,
        X,
        y,
        optimizer="sgd",
        lr=0.5,
        epochs=1,
        batch_size=64,
        shuffle=False,
        callbacks=[Spy()],
    )
    assert hist.accuracy[0] == pytest.approx(np.mean(accs[0] == y))


def test_small_products_run_with_one_blas_thread_and_restore_it(rng, monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    X, y = _data(rng, n=200)
    seen = []

    class Spy(Callback):
        def on_batch_end(self, trainer, step, batch_loss, batch_size):
            info = threadpoolctl.threadpool_info()
            seen.append(max(d["num_threads"] for d in info if d["user_api"] == "blas"))

    before = [d["num_threads"] for d in threadpoolctl.threadpool_info() if d["user_api"] == "blas"]
    if not before:
        pytest.skip("no BLAS visible to threadpoolctl")
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        fit(
            MLP([20, 8, 4], output="softmax", seed=0),
            X,
            y,
            epochs=1,
            batch_size=16,
            callbacks=[Spy()],
        )
        assert seen and max(seen) == 1  # 16 x 20 x 8 multiply-adds: a small product
        after = [
            d["num_threads"] for d in threadpoolctl.threadpool_info() if d["user_api"] == "blas"
        ]
        assert max(after) == min(2, max(after))  # the caller's limit is back
        seen.clear()
        monkeypatch.setattr(training, "SMALL_PRODUCT", 0)
        fit(
            MLP([20, 8, 4], output="softmax", seed=0),
            X,
            y,
            epochs=1,
            batch_size=16,
            callbacks=[Spy()],
        )
        assert max(seen) == max(after)  # switched off: the BLAS keeps its threads
