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
