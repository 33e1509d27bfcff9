import numpy as np
import pytest

from backprop import MLP, gradcheck
from backprop.activations import Tanh
from backprop.gradcheck import numerical_grad, relative_error


def test_relative_error_floor():
    assert relative_error(np.array([0.0]), np.array([1e-12])) < 1e-5
    assert relative_error(np.array([1.0]), np.array([1.1])) == pytest.approx(0.1 / 1.1)


def test_numerical_grad_of_a_quadratic():
    p = {"x": np.array([1.0, -2.0, 3.0])}
    g = numerical_grad(lambda: float((p["x"] ** 2).sum()), p)
    np.testing.assert_allclose(g["x"], [2.0, -4.0, 6.0], atol=1e-8)
    np.testing.assert_array_equal(p["x"], [1.0, -2.0, 3.0])  # restored


def test_gradcheck_catches_a_wrong_backward(rng, monkeypatch):
    net = MLP([3, 4, 2], activation="tanh", dtype="float64", seed=0)
    X, Y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    assert gradcheck(net, X, Y) < 1e-7
    # A classic bug: forgetting the square in tanh' = 1 - a^2.
    monkeypatch.setattr(Tanh, "backward", lambda self, z, a, g: g * (1 - a))
    assert gradcheck(net, X, Y) > 1e-2


def test_numerical_grad_edits_column_major_views_in_place():
    # Regression: a transposed (column-major) parameter view used to be copied by reshape(-1),
    # so the finite differences moved the copy and every derivative read 0.
    base = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    params = {"w": base.T}  # shape (3, 2), Fortran-ordered view of base
    num = numerical_grad(lambda: float((params["w"] ** 2 * [[1.0, 2.0]]).sum()), params)
    np.testing.assert_allclose(num["w"], 2 * base.T * [[1.0, 2.0]], rtol=1e-7)
    np.testing.assert_array_equal(base, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])  # restored


def test_numerical_grad_refuses_a_non_contiguous_parameter():
    params = {"w": np.ones((4, 4))[::2, ::2]}
    with pytest.raises(ValueError, match="not contiguous"):
        numerical_grad(lambda: 0.0, params)


def test_gradcheck_refuses_a_gradient_that_leaves_out_a_parameter(monkeypatch):
    net = MLP([2, 3, 1], activation="tanh", dtype="float64", seed=0)
    real = net.loss_and_grad

    def without_w2(*args, **kwargs):
        value, grads = real(*args, **kwargs)
        grads.pop("W2")
        return value, grads

    monkeypatch.setattr(net, "loss_and_grad", without_w2)
    X = np.array([[0.1, 0.2], [0.3, -0.4]])
    with pytest.raises(ValueError, match=r"missing \['W2'\]"):
        gradcheck(net, X, [[0.5], [0.1]])
