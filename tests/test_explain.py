"""explain: the numbers of the notes' worked example, agreement with the engine and with finite
differences for random small networks, the three output formats, the view, the errors."""

import argparse
import io
import json

import numpy as np
import pytest

from backprop import MLP, Dense, Dropout, Maxout, Sequential, explain, gradcheck
from backprop.explain import (
    SEED000_X,
    SEED000_Y,
    notes_discrepancies,
    seed000_network,
    worked_example,
)
from backprop.gradcheck import numerical_grad

# -- the worked example of the notes (seed 000) ----------------------------------------------


def test_seed000_numbers_in_the_record():
    ex = explain()
    np.testing.assert_allclose(ex["z1"], [-0.9, 0.3], atol=1e-12)
    np.testing.assert_allclose(ex["a1"], [0.2891, 0.5744], atol=5e-5)
    assert ex["output"][0] == pytest.approx(0.5889, abs=5e-5)
    assert ex["z2"][0] == pytest.approx(0.5 * ex["a1"][0] + 0.2 * ex["a1"][1] + 0.1)
    assert ex["loss"] == pytest.approx((ex["output"][0] - 1) ** 2)
    # output factors of C0 = (a - y)^2: dC/da = 2 (a - y), da/dz = a (1 - a)
    a2 = ex["output"][0]
    assert ex["dC/da2"][0] == pytest.approx(2 * (a2 - 1))
    assert ex["da/dz2"][0] == pytest.approx(a2 * (1 - a2))
    np.testing.assert_allclose(ex["dW2"][0], [-0.05754, -0.11434], atol=1e-5)
    assert ex["db2"][0] == pytest.approx(-0.19905, abs=1e-5)
    # the update of every layer with eta = 0.1
    for k in ("W1", "b1", "W2", "b2"):
        np.testing.assert_allclose(ex[k + "_new"], ex[k] - 0.1 * ex["d" + k], rtol=0, atol=0)
    assert ex["loss_new"] < ex["loss"]


def test_seed000_gradients_equal_the_gradient_check():
    ex = explain()
    net = seed000_network()
    worst, details = gradcheck(net, SEED000_X, SEED000_Y, loss="squared_error", return_details=True)
    assert worst < 1e-7
    for k, (analytic, numeric) in details.items():
        np.testing.assert_allclose(ex.steps[0].grads[k], numeric, atol=1e-9)
        np.testing.assert_array_equal(ex.steps[0].grads[k], analytic)
    # the explanation carries its own check
    assert ex.steps[0].check["engine_max_abs_diff"] < 1e-15
    assert ex.steps[0].check["gradcheck_rel_error"] < 1e-7


def test_seed000_text_shows_the_numbers_and_the_notes_errors():
    text = explain().text()
    for s in (
        "z1[1] = 0.2(2) + (-0.5)(3) + 0.1(-1) + 0.3",
        "-0.9",
        "0.2891",
        "0.5744",
        "0.5889",
        "dC/da2[1]",
        "2(0.5889 - 1)",
        "(-0.8222) × 0.2421 × 0.2891",
        "-0.05754",
        "W2[1,1] <- 0.5 - 0.1(-0.05754)",
    ):
        assert s in text, s
    # the notes' halved weight gradient is flagged, their bias gradient is not
    assert "(notes: -0.0287, does not follow)" in text
    assert "(notes: -0.199)" in text
    assert "(notes: 0.29)" in text
    assert "Where the notes' numbers do not follow from their own loss" in text
    assert "gradient of 1/2 (a - y)^2" in text
    assert "only the output layer" in text


def test_notes_discrepancies_name_the_loss_and_the_correct_values():
    lines = notes_discrepancies()
    text = " ".join(lines)
    assert "[-0.0287, -0.0572]" in text and "1/2 (a - y)^2" in text
    assert "[-0.05754, -0.11434]" in text  # the correct C0 gradient
    assert "-0.0575, not -0.0287" in text  # the notes' own product
    assert "0.168921" in text and "0.169004" in text
    res = worked_example()
    assert res["discrepancies"] == lines
    # the notes' numbers do come from an output-layer-only update with the halved gradient
    assert res["a2_new_output_only"] != pytest.approx(res["a2_new"], abs=1e-4)


def test_notes_discrepancies_compare_one_update_whatever_the_steps():
    # The notes make one update; with --steps 3 the list quoted the output and loss after the
    # third update as those "after the update".
    one = explain()
    three = explain(steps=3)
    assert three.notes == one.notes
    assert f"all layers {one['output_new'][0]:.4f}" in " ".join(three.notes)
    assert f"{three.loss_after:.6f}" not in " ".join(three.notes)


def test_no_notes_section_for_other_inputs():
    ex = explain(x=[1.0, 0.0, 0.0], y=[0.0])
    assert ex.notes == [] and "Where the notes" not in ex.text()
    assert "(notes:" not in ex.text()


# -- random small networks: every explained gradient equals gradcheck's ----------------------

CASES = [
    ([3, 4, 2], "tanh", "softmax", "cross_entropy"),
    ([2, 3, 3, 1], "sigmoid", "sigmoid", "binary_cross_entropy"),
    ([2, 5, 2], "relu", "identity", "mse"),
    ([3, 2, 3], "leaky_relu", "softmax", "squared_error"),  # softmax Jacobian, not fused
    ([2, 3, 2], "sigmoid", "sigmoid", "half_squared_error"),
    ([4, 3, 2, 2], ["tanh", "relu"], "tanh", "squared_error"),
    ([1, 4, 1], "identity", "identity", "squared_error"),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_random_small_networks_match_gradcheck(case):
    sizes, act, out, loss = CASES[case]
    rng = np.random.default_rng(100 + case)
    net = MLP(sizes, activation=act, output=out, dtype="float64", seed=case)
    n = 1 + case % 3  # one sample and small batches
    X = rng.normal(size=(n, sizes[0]))
    if loss == "cross_entropy":
        Y = rng.integers(0, sizes[-1], size=n)
    elif loss == "binary_cross_entropy":
        Y = rng.integers(0, 2, size=(n, sizes[-1])).astype(float)
    else:
        Y = rng.normal(size=(n, sizes[-1]))
    l2 = 0.05 if case % 2 else 0.0
    ex = explain(net, X, Y, loss=loss, lr=0.05, steps=2, l2=l2)
    for step in ex.steps:
        net.set_params(step.params)
        _, details = gradcheck(net, X, Y, loss=loss, l2=l2, return_details=True)
        for k, (analytic, numeric) in details.items():
            np.testing.assert_allclose(step.grads[k], numeric, rtol=1e-6, atol=1e-8, err_msg=k)
            np.testing.assert_allclose(step.grads[k], analytic, rtol=1e-12, atol=1e-14)
        assert step.check["engine_max_abs_diff"] < 1e-12
        assert step.check["engine_loss_diff"] < 1e-12
    # each printed weight gradient is the product of its printed factors
    s = ex.steps[0].samples[0]
    for lt in s.layers:
        if lt.mode == "elementwise":
            np.testing.assert_allclose(lt.dW, np.outer(lt.dC_da * lt.da_dz, lt.a_in), rtol=1e-12)
        np.testing.assert_allclose(lt.dW, np.outer(lt.delta, lt.a_in), rtol=1e-12)
        np.testing.assert_allclose(lt.db, lt.delta)


def test_printed_gradients_equal_gradcheck():
    # parse the text itself: every "dC/dW2[i,j] = ... = value" line against finite differences
    import re

    pattern = re.compile(r"^\s*dC/d([Wb])(\d+)\[([\d,]+)\]\s*= .* = (\S+)$")
    for case, (sizes, act, out, loss) in enumerate(CASES[:4]):
        rng = np.random.default_rng(7 + case)
        net = MLP(sizes, activation=act, output=out, dtype="float64", seed=10 + case)
        x = rng.normal(size=sizes[0])
        y = rng.integers(0, sizes[-1]) if loss == "cross_entropy" else rng.random(sizes[-1])
        text = explain(net, x, y, loss=loss).text(digits=12)
        _, details = gradcheck(net, x[None], np.atleast_1d(y) if loss == "cross_entropy"
                               else y[None], loss=loss, return_details=True)  # fmt: skip
        seen = 0
        for line in text.splitlines():
            m = pattern.match(line)
            if not m:
                continue
            kind, l, idx, value = m.groups()
            index = tuple(int(i) - 1 for i in idx.split(","))
            numeric = details[f"{kind}{l}"][1][index]
            assert float(value) == pytest.approx(numeric, rel=1e-6, abs=1e-9), line
            seen += 1
        assert seen == sum(v.size for v in net.params.values())


def test_per_sample_gradients_average_to_the_batch_gradient():
    rng = np.random.default_rng(3)
    net = MLP([2, 3, 1], activation="tanh", output="identity", dtype="float64", seed=3)
    X, Y = rng.normal(size=(3, 2)), rng.normal(size=(3, 1))
    ex = explain(net, X, Y, loss="squared_error")
    for i, sample in enumerate(ex.steps[0].samples):
        _, g = net.loss_and_grad(X[i : i + 1], Y[i : i + 1], loss="squared_error")
        for lt in sample.layers:
            np.testing.assert_allclose(lt.dW, g[f"W{lt.layer}"], rtol=1e-12)
    text = ex.text()
    assert "Sample 3 of 3" in text and "Batch gradient" in text


def test_float32_network_is_explained_in_float64_and_left_untouched():
    net = MLP([2, 3, 1], activation="sigmoid", output="sigmoid", seed=0)  # float32
    before = net.flat_params.copy()
    ex = explain(net, [0.3, -0.7], 1, steps=3)
    np.testing.assert_array_equal(net.flat_params, before)
    assert ex["W1"].dtype == np.float64
    np.testing.assert_allclose(ex["W1"], before[:6].reshape(3, 2), rtol=1e-7)
    losses = [s.loss for s in ex.steps] + [ex.loss_after]
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False))  # gradient descent works
    assert "Loss per step" in ex.text()


def test_dropout_is_switched_off_and_said():
    net = MLP([2, 3, 1], activation="relu", dropout=0.5, dtype="float64", seed=1)
    ex = explain(net, [1.0, 2.0], [0.5])
    assert ex.dropout and "dropout" in ex.text()
    np.testing.assert_allclose(ex["output"], net.forward([[1.0, 2.0]])[0])


def test_sequential_without_activation_between_dense_layers():
    net = Sequential([Dense(2, 2, rng=0, dtype="float64"), Dense(2, 1, rng=1, dtype="float64")])
    ex = explain(net, [1.0, -1.0], [0.3], loss="squared_error")
    assert ex.activations == ["identity", "identity"]
    _, details = gradcheck(net, [[1.0, -1.0]], [[0.3]], loss="squared_error", return_details=True)
    for k, (_, numeric) in details.items():
        np.testing.assert_allclose(ex.steps[0].grads[k], numeric, atol=1e-9)


def test_leaky_relu_keeps_the_networks_slope():
    # A leaky ReLU with alpha = 0.3 was explained with the default slope 0.01 (and so was the
    # engine copy it is checked against): the numbers were not those of the network.
    net = MLP(
        [2, 2, 1],
        activation={"name": "leaky_relu", "alpha": 0.3},
        output="identity",
        dtype="float64",
        seed=0,
    )
    net.params["W1"] = [[-1.0, 0.5], [0.3, -0.2]]
    x, y = np.array([[1.0, 1.0]]), np.array([[0.5]])
    ex = explain(net, x[0], y[0], loss="squared_error")
    np.testing.assert_allclose(ex["a1"], [-0.15, 0.1], rtol=1e-12)
    np.testing.assert_allclose(ex["output"], net.forward(x)[0], rtol=1e-12)
    assert ex["da/dz1"][0] == pytest.approx(0.3)
    _, details = gradcheck(net, x, y, loss="squared_error", return_details=True)
    for k, (_, numeric) in details.items():
        np.testing.assert_allclose(ex.steps[0].grads[k], numeric, atol=1e-8)
    text = ex.text()
    assert "(1 if z1[1] > 0 else 0.3)" in text and "else 0.01" not in text


def test_fused_softmax_explains_a_minus_y():
    net = MLP([2, 2, 3], activation="tanh", output="softmax", dtype="float64", seed=4)
    ex = explain(net, [0.5, 0.5], 2)
    out = ex.steps[0].samples[0].layers[-1]
    assert out.mode == "fused"
    np.testing.assert_allclose(out.delta, out.a - np.array([0, 0, 1.0]))
    text = ex.text()
    assert "targets sum to 1" in text and "a2[1] - y[1]" in text
    # the softmax + squared-error pair goes through the Jacobian instead
    ex2 = explain(net, [0.5, 0.5], [[0, 0, 1.0]], loss="squared_error")
    out2 = ex2.steps[0].samples[0].layers[-1]
    assert out2.mode == "jacobian"
    np.testing.assert_allclose(out2.jacobian, np.diag(out2.a) - np.outer(out2.a, out2.a))
    np.testing.assert_allclose(out2.delta, out2.jacobian.T @ out2.dC_da)
    assert "Jacobian" in ex2.text()


def test_the_explained_loss_is_a_function_of_the_parameters():
    # dC/dW from explain equals finite differences of explain's own loss
    net = MLP([2, 2, 1], activation="sigmoid", output="sigmoid", dtype="float64", seed=5)
    x, y = [0.2, -0.4], [1.0]
    ex = explain(net, x, y, loss="squared_error", check=False)
    assert ex.steps[0].check == {}

    def f():
        return explain(net, x, y, loss="squared_error", check=False).steps[0].loss

    num = numerical_grad(f, net.params)
    for k in net.params:
        np.testing.assert_allclose(ex.steps[0].grads[k], num[k], atol=1e-9)


# -- formats and view -------------------------------------------------------------------------


def test_json_and_markdown_formats():
    ex = explain()
    d = json.loads(ex.to_json())
    assert d["steps"][0]["samples"][0]["layers"][0]["z"] == pytest.approx([-0.9, 0.3])
    assert d["steps"][0]["grads"]["W2"][0] == pytest.approx([-0.05754, -0.11434], abs=1e-5)
    assert d["after"]["loss"] == pytest.approx(ex.loss_after)
    assert len(d["notes"]) == len(ex.notes) > 0
    md = ex.markdown()
    assert md.startswith("# backprop explain")
    assert r"z^{(1)}_{1} &= 0.2(2) + (-0.5)(3) + 0.1(-1) + 0.3 = -0.9" in md
    assert r"\frac{\partial C}{\partial W^{(2)}_{11}}" in md
    assert md.count("$$") % 2 == 0
    assert ex._repr_markdown_() == md


def test_print_colour_only_on_request():
    ex = explain()
    plain, colour = io.StringIO(), io.StringIO()
    ex.print(plain)  # a StringIO is not a terminal: no escape codes
    ex.print(colour, color=True)
    assert "\x1b[" not in plain.getvalue() and plain.getvalue().rstrip("\n") == ex.text()
    assert "\x1b[" in colour.getvalue()
    assert "0.2891" in colour.getvalue()


def test_view_narrows_to_a_layer_and_a_unit():
    ex = explain()
    t = ex.text(layer=2)
    assert "z2[1] =" in t and "z1[1] =" not in t and "dC/dW1" not in t
    t = ex.text(layer=1, unit=2)
    assert "z1[2] =" in t and "z1[1] =" not in t
    assert "dC/dW1[2,3]" in t and "dC/dW1[1,1]" not in t
    assert "W1[2,1] <-" in t and "W2[1,1] <-" not in t
    # the record itself is complete whatever the view
    ex2 = explain(layer=1, unit=2)
    assert ex2.text() == t and ex2.steps[0].grads["W2"].shape == (1, 2)


def test_digits():
    assert "0.28905" in explain().text(digits=5)
    assert "0.29 " in explain(digits=2).text()


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"lr": 0}, ValueError, "lr=0"),
        ({"lr": "big"}, TypeError, "lr='big'"),
        ({"steps": 0}, ValueError, "steps=0"),
        ({"layer": 3}, ValueError, "layer=3"),
        ({"layer": 1, "unit": 3}, ValueError, "unit=3"),
        ({"unit": 1}, ValueError, "needs a layer"),
        ({"x": [1.0, 2.0]}, ValueError, "give both x and y"),
        ({"x": [1.0, 2.0], "y": [1.0]}, ValueError, "features"),
        ({"l2": -1}, ValueError, "l2=-1"),
        ({"digits": 0}, ValueError, "digits=0"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        explain(**kwargs)


def test_unsupported_networks():
    with pytest.raises(ValueError, match="small networks"):
        explain(MLP([3, 40, 1], seed=0), [1.0, 2.0, 3.0], [0.0])
    assert explain(MLP([3, 40, 1], seed=0), [1, 2, 3], [0.0], max_width=40).sizes == [3, 40, 1]
    with pytest.raises(ValueError, match="Maxout"):
        explain(Sequential([Maxout(2, 2, rng=0), Dense(2, 1, rng=0)]), [1.0, 2.0], [0.0])
    with pytest.raises(TypeError, match="expected a backprop MLP"):
        explain("net", [1.0], [1.0])
    with pytest.raises(ValueError, match="needs an input x"):
        explain(MLP([2, 1], seed=0))
    with pytest.raises(ValueError, match="at most 8"):
        explain(MLP([2, 1], seed=0), np.zeros((9, 2)), np.zeros(9))
    with pytest.raises(ValueError, match="class label 5"):
        explain(MLP([2, 3], output="softmax", seed=0), [1.0, 2.0], 5)
    # dropout alone between layers is fine, an activation without a Dense layer is not
    assert explain(Sequential([Dense(2, 1, rng=0), Dropout(0.2)]), [1, 2], [0.0]).dropout


def test_getitem_unknown_key():
    with pytest.raises(KeyError, match="unknown quantity"):
        explain()["z9"]


# -- the command line -------------------------------------------------------------------------


def _run_cli(argv, capsys):
    from backprop import cli_explain

    parser = argparse.ArgumentParser(prog="backprop")
    sub = parser.add_subparsers(dest="command")
    cli_explain.register(sub)
    args = parser.parse_args(["explain", *argv])
    rc = args.func(args)
    return rc, capsys.readouterr().out


def test_cli_no_arguments_explains_seed000(capsys):
    rc, out = _run_cli([], capsys)
    assert rc == 0
    assert "0.2891" in out and "0.5889" in out and "does not follow" in out
    assert "\x1b[" not in out  # not a terminal: plain text


def test_cli_weights_input_target_and_formats(capsys):
    argv = [
        "--W1", "0.2,-0.5,0.1; -0.3,0.4,0.2",
        "--b1=0.3,-0.1",
        "--W2", "[[0.5, 0.2]]",
        "--b2", "0.1",
        "--x", "2,3,-1",
        "--y", "1",
        "--loss", "squared_error",
        "--format", "json",
    ]  # fmt: skip
    rc, out = _run_cli(argv, capsys)
    assert rc == 0
    d = json.loads(out)
    assert d["network"]["sizes"] == [3, 2, 1]
    assert d["network"]["activations"] == ["sigmoid", "sigmoid"]
    np.testing.assert_allclose(d["steps"][0]["grads"]["W2"][0], [-0.05754, -0.11434], atol=1e-5)
    assert d["notes"] == []  # given explicitly, not the notes' default: no notes section
    rc, out = _run_cli(["--format", "markdown", "--layer", "2", "--steps", "2"], capsys)
    assert rc == 0 and "$$" in out and "Step 2 of 2" in out and "z^{(1)}" not in out


def test_cli_random_network_and_model_file(capsys, tmp_path):
    rc, out = _run_cli(
        ["--sizes", "2,3,2", "--activation", "tanh", "--output", "softmax", "--seed", "1",
         "--x", "0.5,-1", "--y", "1", "--lr", "0.5", "--format", "json"],
        capsys,
    )  # fmt: skip
    assert rc == 0
    d = json.loads(out)
    assert d["loss"] == "cross_entropy" and d["network"]["sizes"] == [2, 3, 2]
    assert d["steps"][0]["check"]["gradcheck_rel_error"] < 1e-6
    try:
        from backprop.io import save
    except ImportError:  # pragma: no cover - model files come with backprop.io
        pytest.skip("backprop.io is not available")
    net = MLP([2, 2, 1], activation="tanh", output="sigmoid", seed=2)
    path = tmp_path / "m.safetensors"
    save(net, path)
    rc, out = _run_cli(["--model", str(path), "--x", "1,2", "--y", "1", "--format", "json"], capsys)
    assert rc == 0
    d = json.loads(out)
    np.testing.assert_allclose(d["steps"][0]["params"]["W1"], net.params["W1"], rtol=1e-7)


def test_cli_model_file_preprocessing_is_applied(capsys, tmp_path):
    pytest.importorskip("backprop.io")
    from backprop.datasets import Scale
    from backprop.io import save

    net = MLP([2, 2, 1], activation="tanh", output="sigmoid", dtype="float64", seed=3)
    path = tmp_path / "scaled.safetensors"
    save(net, path, preprocessing=Scale(2.0))
    rc, out = _run_cli(["--model", str(path), "--x", "2,4", "--y", "1", "--format", "json"], capsys)
    assert rc == 0
    d = json.loads(out)
    assert d["x"] == [[1.0, 2.0]]  # the network sees x / 2, as in training
    np.testing.assert_allclose(d["steps"][0]["samples"][0]["output"], net.forward([[1.0, 2.0]])[0])


@pytest.mark.parametrize("y_text", ["100", "100.0", "100.5"])
def test_cli_model_file_target_scaling_applies_to_whole_number_targets(capsys, tmp_path, y_text):
    # A regression model's --y of 100 was read as a class label and left unscaled (loss ~1e4).
    from backprop.datasets import Standardizer
    from backprop.io import save

    net = MLP([2, 2, 1], activation="tanh", dtype="float64", seed=3)
    target = Standardizer().fit(np.array([[90.0], [110.0], [100.0], [104.0]]))
    path = tmp_path / "reg.safetensors"
    save(net, path, preprocessing={"target": target})
    argv = ["--model", str(path), "--x", "0.1,0.2", "--y", y_text, "--format", "json"]
    rc, out = _run_cli(argv, capsys)
    assert rc == 0
    d = json.loads(out)
    expected = target.transform(np.array([[float(y_text)]]), dtype=np.float64)
    np.testing.assert_allclose(d["y"], expected)


def test_installed_command():
    import subprocess
    from pathlib import Path

    exe = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "backprop"
    if not exe.exists():
        pytest.skip("the backprop script is not installed")
    run = subprocess.run([str(exe), "explain"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "0.2891" in run.stdout and "does not follow" in run.stdout
    assert "\x1b[" not in run.stdout  # a pipe, not a terminal: plain text
    run = subprocess.run(
        [str(exe), "explain", "--color", "always", "--layer", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0 and "\x1b[" in run.stdout
    run = subprocess.run(
        [str(exe), "explain", "--layer", "5"], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 1
    assert run.stderr.startswith("backprop: error:") and "layer=5" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--W1", "1,2;3"], "rows of different lengths"),
        (["--W1", "1,2", "--W2", "1,2,3"], "W2 has 3 columns"),
        (["--model", "m.safetensors", "--W1", "1"], "not both"),
        (["--sizes", "2,2,1"], "needs --x"),
        (["--W2", "1,2"], "W1"),
        (["--x", "1,a"], "--x"),
    ],
)
def test_cli_bad_arguments(argv, match, capsys):
    with pytest.raises(ValueError, match=match):
        _run_cli(argv, capsys)


def test_check_warns_when_finite_differences_disagree_at_a_relu_kink(capsys):
    # With x = 0 and zero biases every ReLU sits at z = 0: the one-sided derivative the
    # formulas use is 0 while central differences see half the slope. It used to say "equals".
    rc, out = _run_cli(
        ["--sizes", "2,2,1", "--activation", "relu", "--x", "0,0", "--y", "1", "--color", "never"],
        capsys,
    )
    assert rc == 0
    assert "Warning: the gradients above differ" in out and "Every gradient above" not in out


@pytest.mark.parametrize("y", [1.0, 10.0, 100.0])
def test_check_does_not_cry_bug_at_a_saturated_unit_with_a_large_loss(y):
    # A saturated sigmoid unit has gradients around 1e-7 to 1e-5; next to a loss of 1 to 1e4
    # the rounding noise of a central difference (about 1e-10 of the loss) is a large part of
    # them, and the fixed floor of 1e-6 turned it into "a relative error of 2.8e-02 ...
    # otherwise this is a bug" for gradients that are exact.
    net = MLP([2, 2, 1], activation="sigmoid", output="identity", dtype="float64", seed=0)
    net.params["W1"] = [[8.0, 8.0], [0.3, -0.2]]
    ex = explain(net, [1.0, 1.0], y, loss="squared_error")
    g = ex.steps[0].grads["W1"][0]
    assert 1e-8 < abs(g[0]) < 1e-4  # the saturated unit: small, but not zero
    _, details = gradcheck(net, [[1.0, 1.0]], [[y]], loss="squared_error", return_details=True)
    for k, (analytic, _) in details.items():
        np.testing.assert_allclose(ex.steps[0].grads[k], analytic, rtol=1e-12, atol=1e-15)
    assert ex.steps[0].check["gradcheck_rel_error"] < 1e-4
    assert "Every gradient above equals" in ex.text() and "Warning" not in ex.text()


def test_check_still_warns_when_a_small_gradient_is_wrong(monkeypatch):
    # the looser floor of a large loss still sees a wrong gradient of ordinary size
    from backprop.activations import Tanh

    net = MLP([2, 2, 1], activation="tanh", output="identity", dtype="float64", seed=0)
    monkeypatch.setattr(Tanh, "backward", lambda self, z, a, g: g * (1 - a))
    ex = explain(net, [1.0, 1.0], 100.0, loss="squared_error")
    assert ex.steps[0].check["gradcheck_rel_error"] > 1e-2
    assert "Warning: the gradients above differ" in ex.text()


def test_a_diverging_run_is_explained_up_to_the_divergence(capsys):
    argv = [
        "--sizes",
        "2,2,1",
        "--activation",
        "relu",
        "--output",
        "identity",
        "--x",
        "1,2",
        "--y",
        "1",
        "--lr",
        "20",
        "--steps",
        "200",
        "--color",
        "never",
    ]
    rc, out = _run_cli(argv, capsys)
    assert rc == 0  # it crashed with 'NoneType' object is not subscriptable
    assert "The loss is no longer a finite number" in out and "diverged" in out
    rc, out = _run_cli([*argv[:-2], "--format", "json"], capsys)
    assert rc == 0
    json.loads(out, parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))


def test_class_labels_per_sample_may_be_separated_by_semicolons(capsys):
    base = ["--sizes", "2,2,3", "--output", "softmax", "--x", "1,2;3,4", "--format", "json"]
    rc, out_semicolons = _run_cli([*base, "--y", "0;2"], capsys)
    assert rc == 0  # was: y has shape (2, 1): expected (2, 3)
    rc, out_commas = _run_cli([*base, "--y", "0,2"], capsys)
    assert rc == 0 and json.loads(out_semicolons) == json.loads(out_commas)


def test_softmax_jacobian_rows_of_a_batch_name_the_sample_loss_and_the_l2_heading_reads():
    """With several samples the Jacobian row read dC/da although its values are dC_x/da; with
    one sample and L2 the heading read 'L2 term + (lambda/n) W for weights'."""
    net = MLP([2, 3, 2], activation="tanh", output="softmax", dtype="float64", seed=0)
    X = np.array([[1.0, 2.0], [0.5, -1.0]])
    Y = np.array([[1.0, 0.0], [0.0, 1.0]])
    text = explain(net, X, Y, loss="squared_error", lr=0.1).text()
    assert "sum_k dC_x/da2[k] a2[k] = " in text
    assert "sum_k dC/da2" not in text
    one = explain(net, X[:1], Y[:1], loss="squared_error", lr=0.1, l2=0.1).text()
    assert "With the L2 term: dC/dtheta = dC_x/dtheta + (lambda/n) W for weights" in one
    assert "L2 term + (lambda/n)" not in one
