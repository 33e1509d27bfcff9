"""Each example runs and reaches its documented result."""

import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from backprop import gradcheck

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))


def _load(name):
    return runpy.run_path(str(EXAMPLES / f"{name}.py"))


def test_worked_example_numbers():
    ex = _load("worked_example")
    res = ex["run"]()
    np.testing.assert_allclose(res["z1"], [-0.9, 0.3], atol=1e-12)
    np.testing.assert_allclose(res["a1"], [0.2891, 0.5744], atol=5e-5)
    assert res["a2"] == pytest.approx(0.5889, abs=5e-5)
    assert res["C0"] == pytest.approx((res["a2"] - 1) ** 2)
    g = res["grads_C0"]
    np.testing.assert_allclose(g["W2"][0], [-0.05754, -0.11434], atol=1e-5)
    assert g["b2"][0] == pytest.approx(-0.19905, abs=1e-5)
    np.testing.assert_allclose(res["grads_half"]["W2"][0], [-0.02877, -0.05717], atol=1e-5)
    # the analytic gradients are those of the finite-difference check
    net = ex["build"]()
    worst, details = gradcheck(net, ex["X"], ex["Y"], loss="squared_error", return_details=True)
    assert worst < 1e-7
    for k, (_analytic, numeric) in details.items():
        np.testing.assert_allclose(g[k], numeric, atol=1e-8)
    assert res["C0_new"] < res["C0"]
    text = " ".join(res["discrepancies"])
    assert "1/2 (a - y)^2" in text and "-0.0287" in text and "only the output layer" in text


def test_worked_example_prints(capsys):
    _load("worked_example")["main"]()
    out = capsys.readouterr().out
    assert "z1 = W1 x + b1 = [-0.9  0.3]" in out
    assert "do not follow" in out


def test_xor_hidden_layer_solves_it_single_neuron_cannot():
    res = _load("xor")["run"]()
    assert res["hidden"]["accuracy"] == 1.0
    assert res["single"]["accuracy"] <= 0.75


def test_curve_fit_recovers_the_curve():
    res = _load("curve_fit")["run"]()
    # Far below the noise level: the network found the smooth curve, not the noise.
    assert res["mse_vs_truth"] < 0.25 * res["noise_mse"]
    assert res["train_mse"] < 2 * res["noise_mse"]
