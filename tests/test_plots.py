"""Figures: each function writes a real PNG; bad input is refused with a clear message."""

import sys

import numpy as np
import pytest

from backprop import MLP, History, fit
from backprop.datasets import Standardizer, make_curve, make_xor
from backprop.plots import (
    confusion_matrix,
    plot_confusion,
    plot_decision_boundary,
    plot_fit,
    plot_history,
    plot_misclassified,
)

PNG = b"\x89PNG\r\n\x1a\n"


def _png(path):
    data = open(path, "rb").read()
    assert data[:8] == PNG
    assert len(data) > 2000  # a drawn figure, not an empty canvas
    return data


def test_plot_history_with_validation_and_best_epoch(tmp_path):
    h = History(
        loss=[1.0, 0.5, 0.3, 0.25],
        accuracy=[0.5, 0.7, 0.8, 0.85],
        val_loss=[1.1, 0.6, 0.5, 0.55],
        val_accuracy=[0.5, 0.65, 0.75, 0.74],
        best_epoch=3,
    )
    p = tmp_path / "h.png"
    assert plot_history(h, p, title="run") == str(p)
    _png(p)
    # the dict form (as stored in a model file) draws the same figure
    p2 = tmp_path / "h2.png"
    plot_history(h.to_dict(), p2, title="run")
    assert _png(p2) == _png(p)


def test_plot_history_regression_only_loss(tmp_path):
    p = plot_history({"loss": [0.3, 0.2, 0.1]}, tmp_path / "r.png")
    _png(p)


def test_plot_history_refuses_empty(tmp_path):
    with pytest.raises(ValueError, match="no epochs"):
        plot_history(History(), tmp_path / "e.png")
    with pytest.raises(TypeError, match="expected a History"):
        plot_history([1, 2], tmp_path / "e.png")


def test_decision_boundary_softmax_and_sigmoid(tmp_path):
    X, y = make_xor(dtype="float64")
    for output, n_out in (("softmax", 2), ("sigmoid", 1)):
        net = MLP([2, 4, n_out], activation="tanh", output=output, dtype="float64", seed=0)
        fit(net, X, y, epochs=50, batch_size=4, lr=0.05)
        _png(plot_decision_boundary(net, X, y, tmp_path / f"{output}.png", resolution=50))


def test_decision_boundary_uses_preprocessing(tmp_path):
    X, y = make_xor(n=40, noise=0.1, seed=0)
    X = X * 100.0 + 50.0
    scaler = Standardizer().fit(X)
    net = MLP([2, 4, 2], activation="tanh", output="softmax", seed=0)
    fit(net, scaler.transform(X), y, epochs=5)
    p = plot_decision_boundary(
        net, X, y, tmp_path / "b.png", preprocessing=scaler, classes=["no", "yes"]
    )
    _png(p)


def test_decision_boundary_needs_two_features(tmp_path):
    net = MLP([3, 2], output="softmax", seed=0)
    with pytest.raises(ValueError, match=r"expected \(n_samples, 2\)"):
        plot_decision_boundary(net, np.zeros((4, 3)), np.zeros(4), tmp_path / "x.png")


def test_plot_fit(tmp_path):
    X, y = make_curve(50, seed=0, dtype="float64")
    net = MLP([1, 8, 1], activation="tanh", dtype="float64", seed=0)
    fit(net, X, y, epochs=20, batch_size=10, lr=0.01)
    p = plot_fit(net, X, y, tmp_path / "f.png", true_fn=lambda x: x + 0.3 * np.sin(2 * np.pi * x))
    _png(p)
    with pytest.raises(ValueError, match=r"expected \(n_samples, 1\)"):
        plot_fit(net, np.zeros((3, 2)), np.zeros(3), tmp_path / "g.png")


def test_confusion_matrix_counts():
    cm = confusion_matrix([0, 1, 2, 2, 1], [0, 2, 2, 2, 1], n_classes=4)
    assert cm.tolist() == [[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 2, 0], [0, 0, 0, 0]]
    with pytest.raises(ValueError, match="n_classes=2"):
        confusion_matrix([0, 2], [0, 1], n_classes=2)
    with pytest.raises(ValueError, match="expected the same"):
        confusion_matrix([0, 1], [0])


def test_plot_confusion(tmp_path):
    cm = confusion_matrix([0, 1, 2, 2, 1, 0], [0, 2, 2, 2, 1, 1])
    _png(plot_confusion(cm, ["T-shirt/top", "Trouser", "Pullover"], tmp_path / "c.png"))
    _png(plot_confusion(np.zeros((2, 2), int), None, tmp_path / "z.png"))  # no samples: no crash
    with pytest.raises(ValueError, match="2 class names for a 3x3 matrix"):
        plot_confusion(cm, ["a", "b"], tmp_path / "c.png")


def test_plot_misclassified(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(50, 64)).astype(np.uint8)
    t = rng.integers(0, 10, 50)
    p = t.copy()
    p[::3] = (p[::3] + 1) % 10
    _png(plot_misclassified(X, t, p, (8, 8), tmp_path / "m.png", max_images=10))
    _png(plot_misclassified(X, t, t, (8, 8), tmp_path / "none.png"))  # nothing wrong
    with pytest.raises(ValueError, match=r"images of shape \(7, 7\)"):
        plot_misclassified(X, t, p, (7, 7), tmp_path / "bad.png")


def test_no_pyplot_state(tmp_path):
    plot_history({"loss": [1.0, 0.5]}, tmp_path / "a.png")
    assert (
        "matplotlib.pyplot" not in sys.modules
        or sys.modules["matplotlib.pyplot"].get_fignums() == []
    )
