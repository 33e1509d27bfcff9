import warnings

import numpy as np
import pytest

from backprop import MLP, SynapticPlasticity, gradcheck
from backprop.losses import get_loss, l2_penalty


def test_squared_error_conventions(rng):
    A = rng.normal(size=(4, 3))
    Y = rng.normal(size=(4, 3))
    sq = ((A - Y) ** 2).sum(axis=1).mean()
    assert get_loss("squared_error").value(A, Y) == pytest.approx(sq)
    assert get_loss("half_squared_error").value(A, Y) == pytest.approx(sq / 2)
    assert get_loss("mse").value(A, Y) == pytest.approx(((A - Y) ** 2).mean())
    np.testing.assert_allclose(get_loss("squared_error").grad(A, Y), 2 * (A - Y) / 4)
    np.testing.assert_allclose(get_loss("half_squared_error").grad(A, Y), (A - Y) / 4)
    np.testing.assert_allclose(get_loss("mse").grad(A, Y), 2 * (A - Y) / 12)


def test_cross_entropy_from_logits_matches_definition(rng):
    Z = rng.normal(size=(5, 4))
    Y = np.eye(4)[rng.integers(0, 4, 5)]
    A = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    ce = get_loss("cross_entropy")
    expected = -(Y * np.log(A)).sum(axis=1).mean()
    value, delta = ce.fused(Z, A, Y)
    assert value == pytest.approx(expected)
    assert ce.value(A, Y) == pytest.approx(expected)
    np.testing.assert_allclose(delta, (A - Y) / 5)


def test_binary_cross_entropy_from_logits(rng):
    Z = rng.normal(size=(6, 2))
    Y = (rng.random((6, 2)) > 0.5).astype(float)
    A = 1 / (1 + np.exp(-Z))
    bce = get_loss("binary_cross_entropy")
    expected = -(Y * np.log(A) + (1 - Y) * np.log(1 - A)).sum(axis=1).mean()
    value, delta = bce.fused(Z, A, Y)
    assert value == pytest.approx(expected)
    assert bce.value(A, Y) == pytest.approx(expected)
    np.testing.assert_allclose(delta, (A - Y) / 6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_losses_stable_at_large_logits(dtype):
    for out, loss, y in [
        ("softmax", "cross_entropy", [0, 1]),
        ("sigmoid", "binary_cross_entropy", [[1.0], [0.0]]),
    ]:
        n_out = 2 if out == "softmax" else 1
        net = MLP([1, n_out], output=out, dtype=dtype, seed=0)
        net.params["W1"][...] = [[1000.0], [-1000.0]][:n_out]
        X = np.array([[-1.0], [1.0]])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            value, grads = net.loss_and_grad(X, y, loss=loss)
        assert np.isfinite(value) and value > 100  # confidently wrong: a large, finite loss
        assert all(np.isfinite(g).all() for g in grads.values())


def test_labels_and_onehot_give_same_loss(rng):
    net = MLP([3, 5, 4], output="softmax", dtype="float64", seed=0)
    X = rng.normal(size=(7, 3))
    y = rng.integers(0, 4, 7)
    l1, g1 = net.loss_and_grad(X, y)
    l2, g2 = net.loss_and_grad(X, np.eye(4)[y])
    assert l1 == pytest.approx(l2)
    for k in g1:
        np.testing.assert_allclose(g1[k], g2[k])


@pytest.mark.parametrize(
    "output,loss",
    [
        ("identity", "squared_error"),
        ("identity", "half_squared_error"),
        ("identity", "mse"),
        ("softmax", "cross_entropy"),
        ("sigmoid", "binary_cross_entropy"),
        ("sigmoid", "mse"),  # not fused: goes through the generic chain rule
        ("tanh", "squared_error"),
        ("softmax", "half_squared_error"),
    ],
)
def test_every_loss_passes_gradcheck(output, loss, rng):
    net = MLP([3, 4, 2], activation="tanh", output=output, dtype="float64", seed=3)
    X = rng.normal(size=(5, 3))
    if loss == "cross_entropy":
        Y = rng.integers(0, 2, 5)
    elif loss == "binary_cross_entropy":
        Y = (rng.random((5, 2)) > 0.5).astype(float)
    else:
        Y = rng.normal(size=(5, 2))
    assert gradcheck(net, X, Y, loss=loss) < 1e-6


def test_l2_penalty_value_and_gradient(rng):
    net = MLP([3, 4, 2], dtype="float64", seed=0)
    value, grads = l2_penalty(net.params, net.weight_keys, 0.5, 10)
    sq = sum((net.params[k] ** 2).sum() for k in ("W1", "W2"))
    assert value == pytest.approx(0.5 / 20 * sq)
    assert set(grads) == {"W1", "W2"}  # biases are not penalised
    np.testing.assert_allclose(grads["W1"], 0.05 * net.params["W1"])
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    assert gradcheck(net, X, Y, l2=0.7) < 1e-6


def test_synaptic_plasticity_penalty(rng):
    net = MLP([2, 3, 1], activation="tanh", dtype="float64", seed=0)
    anchor = {k: v + rng.normal(size=v.shape) for k, v in net.params.items()}
    importance = {k: rng.random(v.shape) for k, v in net.params.items()}
    pen = SynapticPlasticity(anchor, importance, lam=0.3)
    value, grads = pen.value_and_grad(net.params)
    expected = 0.3 * sum((importance[k] * (anchor[k] - net.params[k]) ** 2).sum() for k in anchor)
    assert value == pytest.approx(expected)
    np.testing.assert_allclose(
        grads["W1"], 2 * 0.3 * importance["W1"] * (net.params["W1"] - anchor["W1"])
    )
    X, Y = rng.normal(size=(4, 2)), rng.normal(size=(4, 1))
    assert gradcheck(net, X, Y, regularizers=[pen]) < 1e-6
    # At the anchor the penalty and its gradient vanish.
    at_anchor = SynapticPlasticity(net.params, importance, lam=5.0)
    v0, g0 = at_anchor.value_and_grad(net.params)
    assert v0 == 0.0 and all(not g.any() for g in g0.values())


def test_synaptic_plasticity_validates():
    net = MLP([2, 1], seed=0)
    with pytest.raises(ValueError, match="lam"):
        SynapticPlasticity(net.params, lam=-1)
    with pytest.raises(ValueError, match="shape"):
        SynapticPlasticity(net.params, {"W1": np.ones(3), "b1": np.ones(1)})


def test_unknown_loss():
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        get_loss("hinge")
