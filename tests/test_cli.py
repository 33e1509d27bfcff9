"""The ``backprop`` command: in-process runs of ``main`` and end-to-end runs in a subprocess."""

import io
import json
import os
import signal
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import backprop.cli as cli
from backprop import load
from backprop.cli import ProgressCallback, main
from backprop.datasets import write_idx
from backprop.io import ModelFileError

REPO = Path(__file__).resolve().parents[1]
MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
PNG = b"\x89PNG\r\n\x1a\n"


def run_cli(*args, timeout=120, cwd=None):
    """The installed command's behaviour, in a fresh interpreter."""
    env = dict(os.environ, BACKPROP_DATA=str(MNIST_DIR.parent), COLUMNS="120")
    return subprocess.run(
        [sys.executable, "-m", "backprop.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
    )


def _one_line_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def table(tmp_path):
    """A small CSV with a header, three features and word labels."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    labels = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    p = tmp_path / "t.csv"
    with open(p, "w") as fh:
        fh.write("a,b,c,label\n")
        for x, lab in zip(X, labels, strict=True):
            fh.write(",".join(f"{v:.5f}" for v in x) + f",{lab}\n")
    return p, X, labels


# -- help and usage errors -------------------------------------------------------------------


def test_help_on_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in ("train", "evaluate", "predict", "info", "plot"):
        assert cmd in out
        assert main([cmd, "--help"]) == 0
        assert f"usage: backprop {cmd}" in capsys.readouterr().out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("backprop ")


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2
    assert "usage: backprop" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--epochs", "0"], "expected an integer >= 1"),
        (["train", "--hidden", "10,x"], "not a list of layer widths"),
        (["train", "--hidden", "10,-3"], "width < 1"),
        (["train", "--optimizer", "adamw"], "unknown optimizer 'adamw'"),
        (["train", "--activation", "swish"], "unknown activation 'swish'"),
        (["train", "--schedule", "warmup+bogus"], "unknown schedule"),
        (["train", "--lr", "-1"], "out of range"),
        (["train", "--dropout", "1"], "out of range"),
        (["train", "--dtype", "float16"], "invalid choice"),
        (["train", "--bogus"], "unrecognized arguments"),
        (["predict", "m.safetensors"], "required: INPUT"),
        (["plot", "h.json"], "--out"),
        (["frobnicate"], "invalid choice"),
        (["--threads", "0", "train"], "expected an integer >= 1"),
        (["train", "--threads", "two"], "'two' is not an integer"),
        (["explain", "--steps", "0"], "argument --steps: '0' is invalid: expected an integer >= 1"),
        (["lm", "train", "--corpus", "c.txt", "--epochs", "0"], "expected an integer >= 1"),
    ],
)
def test_bad_arguments_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_bad_arguments_in_a_subprocess_exit_2():
    r = run_cli("train", "--batch-size", "zero")
    assert r.returncode == 2
    assert "not an integer" in r.stderr and "Traceback" not in r.stderr


# -- train, info, evaluate, predict in process -------------------------------------------------


def test_train_xor_default_recipe(in_tmp, capsys):
    assert main(["train", "--data", "xor", "--epochs", "300", "--plot", "x.png"]) == 0
    out = capsys.readouterr().out
    assert "model 2-2-1 (sigmoid hidden, sigmoid output" in out
    assert "training-data accuracy" in out and "model saved to model.safetensors" in out
    net = load("model.safetensors")
    assert net.to_config()["sizes"] == [2, 2, 1]
    assert net.metadata["classes"] == [0, 1]
    assert net.metadata["training"]["epochs"] == 300
    assert len(net.metadata["history"]["loss"]) == 300
    for name in ("x.png", "x-boundary.png"):
        assert (in_tmp / name).read_bytes()[:8] == PNG
    # about 50 epoch lines, not 300, in a log; the first and the last always
    lines = [ln for ln in out.splitlines() if ln.startswith("epoch ")]
    assert lines[0].startswith("epoch 1/300") and lines[-1].startswith("epoch 300/300")
    assert 40 <= len(lines) <= 60


def test_epoch_line_format(in_tmp, capsys):
    argv = ["train", "--data", "digits", "--epochs", "2", "--hidden", "16", "--val-fraction"]
    assert main([*argv, "0.2"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("epoch 2/2"))
    fields = line.split("  ")
    assert fields[0] == "epoch 2/2"
    assert [f.split(" ")[0] for f in fields[1:5]] == ["loss", "acc", "val_loss", "val_acc"]
    assert fields[5].endswith("samples/s") and fields[6].endswith(" s")


def test_train_table_then_predict_and_evaluate(in_tmp, table, capsys):
    path, X, labels = table
    argv = ["train", "--data", str(path), "--hidden", "8", "--epochs", "30", "--quiet"]
    assert main([*argv, "--batch-size", "16", "--out", "t.safetensors", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "epoch 1/" not in out  # --quiet
    meta = load("t.safetensors").metadata
    assert meta["classes"] == ["no", "yes"]
    assert meta["preprocessing"]["input"]["type"] == "standardizer"
    assert meta["training"]["data"]["feature_names"] == ["a", "b", "c"]

    # predict on features only (CSV with header), labels out
    feats = in_tmp / "x.csv"
    feats.write_text("a,b,c\n" + "\n".join(",".join(f"{v:.5f}" for v in x) for x in X[:10]))
    assert main(["predict", "t.safetensors", str(feats)]) == 0
    rows = capsys.readouterr().out.split()
    assert rows[0] == "label" and set(rows[1:]) <= {"yes", "no"} and len(rows) == 11
    assert np.mean(np.array(rows[1:]) == labels[:10]) >= 0.8

    # probabilities from an NPY, to a file
    np.save(in_tmp / "x.npy", X[:10])
    assert main(["predict", "t.safetensors", "x.npy", "--proba", "--out", "p.csv"]) == 0
    lines = (in_tmp / "p.csv").read_text().split()
    assert lines[0] == "no,yes"
    P = np.array([[float(v) for v in ln.split(",")] for ln in lines[1:]])
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-6)
    assert "wrote 10 predictions to p.csv" in capsys.readouterr().err

    # the labelled file itself, ignoring its label column
    assert main(["predict", "t.safetensors", str(path), "--label-column", "label"]) == 0
    assert len(capsys.readouterr().out.split()) == 121

    # evaluate on the whole file: labels mapped through the stored classes
    assert main(["evaluate", "t.safetensors", "--data", str(path), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n"] == 120 and res["classes"] == ["no", "yes"]
    assert res["accuracy"] > 0.8
    cm = np.array(res["confusion_matrix"])
    assert cm.sum() == 120 and np.trace(cm) / 120 == pytest.approx(res["accuracy"])
    assert res["per_class"][1]["support"] == int((labels == "yes").sum())


def test_predict_wrong_width_says_what_to_do(in_tmp, table, capsys):
    path, X, _ = table
    assert main(["train", "--data", str(path), "--epochs", "1", "--quiet"]) == 0
    np.save(in_tmp / "wide.npy", np.zeros((2, 4)))
    capsys.readouterr()
    assert main(["predict", "model.safetensors", "wide.npy"]) == 1
    err = _one_line_error(capsys.readouterr().err)
    assert "4 columns, but the model expects 3 features" in err and "--label-column" in err


def test_evaluate_unknown_label(in_tmp, table, capsys):
    path, X, _ = table
    assert main(["train", "--data", str(path), "--epochs", "1", "--quiet"]) == 0
    bad = in_tmp / "bad.csv"
    bad.write_text("a,b,c,label\n1,2,3,maybe\n")
    capsys.readouterr()
    assert main(["evaluate", "model.safetensors", "--data", str(bad)]) == 1
    err = _one_line_error(capsys.readouterr().err)
    assert "label 'maybe' (sample 1) is not one of the model's classes: 'no', 'yes'" in err


def test_regression_curve(in_tmp, capsys):
    argv = ["train", "--data", "curve", "--epochs", "200", "--plot", "c.png", "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "test rmse" in out
    assert (in_tmp / "c-fit.png").read_bytes()[:8] == PNG
    net = load("model.safetensors")
    assert net.metadata["classes"] is None
    np.save(in_tmp / "x.npy", np.array([[0.0], [0.25], [0.5]]))
    assert main(["predict", "model.safetensors", "x.npy"]) == 0
    rows = capsys.readouterr().out.split()
    assert rows[0] == "y"
    y = np.array([float(v) for v in rows[1:]])
    np.testing.assert_allclose(y, [0.0, 0.55, 0.5], atol=0.25)
    assert main(["evaluate", "model.safetensors", "--json"]) == 0  # the curve: from the model
    res = json.loads(capsys.readouterr().out)
    assert res["n"] == 100 and res["rmse"] < 0.3
    assert main(["predict", "model.safetensors", "x.npy", "--proba"]) == 1
    assert "--proba needs a classifier" in capsys.readouterr().err


def test_regression_table_scales_targets(in_tmp, capsys):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(200, 2))
    y = 1000.0 + 500.0 * X[:, 0] - 200.0 * X[:, 1] + rng.normal(0, 5, 200)
    np.save(in_tmp / "r.npy", np.column_stack([X, y]))
    argv = ["train", "--data", "r.npy", "--task", "regression", "--hidden", "16"]
    assert main([*argv, "--epochs", "60", "--batch-size", "16", "--quiet"]) == 0
    meta = load("model.safetensors").metadata
    assert meta["preprocessing"]["target"]["type"] == "standardizer"
    capsys.readouterr()
    np.save(in_tmp / "x.npy", X[:5])
    assert main(["predict", "model.safetensors", "x.npy"]) == 0
    pred = np.array([float(v) for v in capsys.readouterr().out.split()[1:]])
    np.testing.assert_allclose(pred, y[:5], rtol=0.1)  # back in the target's units


def test_info_text_and_json(in_tmp, capsys):
    assert main(["train", "--data", "xor", "--epochs", "20", "--quiet", "--out", "x.st"]) == 0
    capsys.readouterr()
    assert main(["info", "x.st"]) == 0
    out = capsys.readouterr().out
    assert "MLP 2-2-1, sigmoid hidden, sigmoid output" in out
    assert "W1 (2, 2)" in out and "classes" in out
    assert main(["info", "x.st", "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["config"]["sizes"] == [2, 2, 1] and meta["n_params"] == 9


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--out", "nodir/m.safetensors"], "--out nodir/m.safetensors: no such directory"),
        (["--out", "."], "--out .: is a directory"),
        (["--history-out", "nodir/h.json"], "--history-out nodir/h.json: no such directory"),
        (["--plot", "nodir/c.png"], "--plot nodir/c.png: no such directory"),
    ],
)
def test_train_refuses_an_unwritable_output_before_training(in_tmp, capsys, argv, match):
    # The weights of a finished run used to be lost: the path was only tried when saving.
    assert main(["train", "--data", "xor", "--quiet", *argv]) == 1
    captured = capsys.readouterr()
    assert match in _one_line_error(captured.err)
    assert "epoch" not in captured.out  # nothing was trained


def test_info_shows_numbers_stored_as_null(in_tmp, capsys):
    # Model files store a NaN or infinite metric as null (JSON has no NaN); info says n/a.
    from backprop import MLP, save

    training = {
        "optimizer": "adam",
        "lr": None,
        "results": {
            "epochs_run": 3,
            "stop_reason": "reached epochs=3",
            "test": {"loss": float("nan"), "accuracy": 0.5},
            "train": {"loss": float("inf"), "rmse": None},
        },
    }
    save(MLP([2, 2, 1], seed=0), "n.st", training=training)
    assert main(["info", "n.st"]) == 0
    out = capsys.readouterr().out
    assert "loss n/a, accuracy 0.5000" in out and "loss n/a, rmse n/a" in out


def test_plot_command(in_tmp, capsys):
    argv = ["train", "--data", "xor", "--epochs", "20", "--quiet", "--history-out", "h.json"]
    assert main(argv) == 0
    assert main(["plot", "h.json", "--out", "from_json.png"]) == 0
    assert main(["plot", "model.safetensors", "--out", "from_model.png", "--title", "xor"]) == 0
    for name in ("from_json.png", "from_model.png"):
        assert (in_tmp / name).read_bytes()[:8] == PNG
    capsys.readouterr()
    (in_tmp / "bad.json").write_text('{"nothing": 1}')
    assert main(["plot", "bad.json", "--out", "x.png"]) == 1
    assert "not a training history" in _one_line_error(capsys.readouterr().err)
    assert main(["plot", "missing.json", "--out", "x.png"]) == 1
    assert "missing.json: no such file" in _one_line_error(capsys.readouterr().err)


def test_evaluate_with_plot_on_images(in_tmp, capsys):
    assert main(["train", "--epochs", "2", "--hidden", "16", "--quiet"]) == 0  # digits
    assert main(["evaluate", "model.safetensors", "--plot", "cm.png"]) == 0
    out = capsys.readouterr().out
    assert "digits (test, 359 samples)" in out and "confusion matrix" in out
    assert (in_tmp / "cm.png").read_bytes()[:8] == PNG
    assert (in_tmp / "cm-misclassified.png").read_bytes()[:8] == PNG


# -- failures: one line, exit 1 ---------------------------------------------------------------


def test_missing_data_file(in_tmp, capsys):
    assert main(["train", "--data", "nope.csv"]) == 1
    err = _one_line_error(capsys.readouterr().err)
    assert err.startswith("backprop: error: unknown data set 'nope.csv'")


def test_ragged_and_truncated_tables(in_tmp, capsys):
    (in_tmp / "ragged.csv").write_text("1,2,0\n3,4\n")
    assert main(["train", "--data", "ragged.csv"]) == 1
    assert "line 2 has 2 cells" in _one_line_error(capsys.readouterr().err)
    np.save(in_tmp / "a.npy", np.zeros((10, 3)))
    raw = (in_tmp / "a.npy").read_bytes()
    (in_tmp / "cut.npy").write_bytes(raw[: len(raw) // 2])
    assert main(["train", "--data", "cut.npy"]) == 1
    assert "cut.npy: not a readable .npy file" in _one_line_error(capsys.readouterr().err)


def test_truncated_and_corrupt_idx_files(in_tmp, capsys):
    d = in_tmp / "mn"
    d.mkdir()
    rng = np.random.default_rng(0)
    for part, n in (("train", 20), ("t10k", 10)):
        write_idx(d / f"{part}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), np.uint8))
        write_idx(d / f"{part}-labels-idx1-ubyte", rng.integers(0, 10, n).astype(np.uint8))
    base = ["train", "--data", "mnist", "--data-dir", str(d), "--no-download"]
    img = d / "train-images-idx3-ubyte"
    img.write_bytes(img.read_bytes()[:-100])  # truncated
    assert main(base) == 1
    err = _one_line_error(capsys.readouterr().err)
    assert "train-images-idx3-ubyte" in err
    img.write_bytes(b"\x00\x00\x08\x09garbage")  # corrupt magic number
    assert main(base) == 1
    assert "train-images-idx3-ubyte" in _one_line_error(capsys.readouterr().err)


def test_corrupt_model_file(in_tmp, capsys):
    assert main(["train", "--data", "xor", "--epochs", "5", "--quiet"]) == 0
    raw = (in_tmp / "model.safetensors").read_bytes()
    (in_tmp / "cut.safetensors").write_bytes(raw[:-7])
    (in_tmp / "junk.safetensors").write_bytes(b"\xff" * 64)
    np.save(in_tmp / "x.npy", np.zeros((1, 2)))
    capsys.readouterr()
    for name in ("cut.safetensors", "junk.safetensors", "nothere.safetensors"):
        for argv in (
            ["info", name],
            ["evaluate", name, "--data", "xor"],
            ["predict", name, "x.npy"],
        ):
            assert main(argv) == 1
            err = _one_line_error(capsys.readouterr().err)
            assert err.startswith(f"backprop: error: {name}:")


def test_debug_shows_the_exception(in_tmp):
    with pytest.raises(ModelFileError):
        main(["info", "missing.safetensors", "--debug"])


def test_diverging_run_is_a_clean_failure(in_tmp, capsys):
    argv = ["train", "--data", "curve", "--optimizer", "sgd", "--lr", "1e12", "--quiet"]
    assert main(argv) == 1
    err = _one_line_error(capsys.readouterr().err)
    assert "training diverged" in err
    assert not (in_tmp / "model.safetensors").exists()


# -- progress display -------------------------------------------------------------------------


class _Trainer:
    def __init__(self, times):
        self.history = types.SimpleNamespace(epoch_time=times)


def test_progress_live_on_a_terminal():
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=120)
    cb = ProgressCallback(console, epochs=2, n_samples=100)
    assert cb.live
    tr = _Trainer([0.5])
    cb.on_train_begin(tr)
    cb.on_epoch_begin(tr, 1)
    for step in range(4):
        cb.on_batch_end(tr, step + 1, 0.5, 25)
    cb.on_epoch_end(tr, 1, {"loss": 0.5, "accuracy": 0.75})
    cb.on_train_end(tr)
    text = buf.getvalue()
    assert "epoch 1/2  loss 0.5000  acc 0.750  200 samples/s  0.50 s" in text
    assert cb._progress is None  # the live display is stopped


def test_progress_plain_when_not_a_terminal():
    from rich.console import Console

    buf = io.StringIO()
    cb = ProgressCallback(Console(file=buf), epochs=200, n_samples=1000)
    assert not cb.live and cb.every == 4
    tr = _Trainer([])
    cb.on_train_begin(tr)
    for e in range(1, 11):
        tr.history.epoch_time.append(0.25)
        cb.on_epoch_begin(tr, e)
        cb.on_batch_end(tr, e, 1.0, 1000)
        cb.on_epoch_end(tr, e, {"loss": 1.0 / e, "val_loss": 2.0 / e})
    cb.on_train_end(tr)  # stopped early at epoch 10: its line is written
    lines = buf.getvalue().splitlines()
    assert [ln.split("  ")[0] for ln in lines] == [
        "epoch 1/200",
        "epoch 4/200",
        "epoch 8/200",
        "epoch 10/200",
    ]
    assert lines[0] == "epoch 1/200  loss 1.0000  val_loss 2.0000  4,000 samples/s  0.25 s"


# -- plugins ----------------------------------------------------------------------------------


def test_plugins_are_registered_and_missing_ones_skipped(monkeypatch, capsys):
    mod = types.ModuleType("backprop_fake_plugin")

    def register(sub):
        p = sub.add_parser("hello", help="say hello")
        p.add_argument("--name", default="world")
        p.set_defaults(func=lambda args: print(f"hello {args.name}") or 0)

    mod.register = register
    monkeypatch.setitem(sys.modules, "backprop_fake_plugin", mod)
    monkeypatch.setattr(
        cli, "PLUGIN_MODULES", ("backprop.no_such_plugin_module", "backprop_fake_plugin")
    )
    assert main(["hello", "--name", "you"]) == 0
    assert capsys.readouterr().out == "hello you\n"
    assert main(["--help"]) == 0
    assert "hello" in capsys.readouterr().out


def test_plugin_with_a_broken_import_is_not_hidden(monkeypatch):
    mod_name = "backprop_broken_plugin"
    monkeypatch.setattr(cli, "PLUGIN_MODULES", (mod_name,))

    def fake_import(name):
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    monkeypatch.setattr(cli.importlib, "import_module", fake_import)
    with pytest.raises(ModuleNotFoundError, match="torch"):
        cli.build_parser()


def test_plugin_errors_use_the_common_handler(monkeypatch, capsys):
    mod = types.ModuleType("backprop_failing_plugin")

    def fail(args):
        raise ValueError("bad\nthing")

    mod.register = lambda sub: sub.add_parser("fail").set_defaults(func=fail)
    monkeypatch.setitem(sys.modules, "backprop_failing_plugin", mod)
    monkeypatch.setattr(cli, "PLUGIN_MODULES", ("backprop_failing_plugin",))
    assert main(["fail"]) == 1
    assert capsys.readouterr().err == "backprop: error: bad thing\n"


# -- end to end, in subprocesses --------------------------------------------------------------


def test_end_to_end_train_info_evaluate_predict(tmp_path):
    model = tmp_path / "d.safetensors"
    r = run_cli("train", "--hidden", "32", "--epochs", "3", "--out", model, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "test accuracy" in r.stdout and r.stderr == ""
    r = run_cli("info", model)
    assert r.returncode == 0 and "MLP 64-32-10" in r.stdout
    r = run_cli("evaluate", model, "--data", "digits", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["n"] == 359 and res["accuracy"] > 0.5
    # predictions of the command == the library's on the same raw pixels
    from backprop.datasets import load_dataset

    ds = load_dataset("digits")
    np.save(tmp_path / "x.npy", ds.X_test[:20])
    r = run_cli("predict", model, tmp_path / "x.npy", "--proba")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert lines[0] == ",".join(str(k) for k in range(10))
    P = np.array([[float(v) for v in ln.split(",")] for ln in lines[1:]])
    net = load(model)
    expected = net.forward(ds.X_test[:20] / np.float32(16.0))
    np.testing.assert_allclose(P, expected, rtol=1e-6, atol=1e-7)


def test_failure_in_a_subprocess_is_one_line(tmp_path):
    (tmp_path / "bad.safetensors").write_bytes(b"\x01" * 10)
    r = run_cli("info", tmp_path / "bad.safetensors")
    assert r.returncode == 1
    line = _one_line_error(r.stderr)
    assert line.startswith("backprop: error: ") and "bad.safetensors" in line


def test_sigint_during_training_saves_a_loadable_model(tmp_path):
    """Ctrl-C after the first epoch: the best weights so far are saved and the command says
    so (exit code 130)."""
    model = tmp_path / "int.safetensors"
    env = dict(os.environ, COLUMNS="120")
    proc = subprocess.Popen(
        [sys.executable, "-m", "backprop.cli", "train", "--epochs", "100000", "--hidden", "32"]
        + ["--early-stopping", "--patience", "100000", "--out", str(model)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
        # a shell may start background jobs with SIGINT ignored; the test needs the default
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("epoch 1/"):
                proc.send_signal(signal.SIGINT)
                break
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(seen) + out
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted: saved the best weights so far (epoch " in out
    assert str(model) in out
    net = load(model)
    hist = net.metadata["history"]
    assert hist["interrupted"] is True and hist["best_epoch"] >= 1
    assert net.metadata["training"]["results"]["interrupted"] is True
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]


@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason="MNIST files not found")
def test_mnist_quick_run(tmp_path):
    argv = ["train", "--data", "mnist", "--limit", "3000", "--epochs", "2", "--hidden", "32"]
    r = run_cli(*argv, "--out", tmp_path / "m.safetensors", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "mnist: classification, 60000 training / 10000 test samples" in r.stdout
    assert "epochs of 2,700 samples, 300 held out for validation" in r.stdout
    net = load(tmp_path / "m.safetensors")
    assert net.metadata["preprocessing"]["input"] == {"type": "scale", "factor": 255.0}
    assert net.metadata["training"]["results"]["test"]["accuracy"] > 0.8


@pytest.mark.parametrize("where", ["before", "after"])
def test_threads_limits_the_blas_for_the_command_and_restores_it(
    tmp_path, blas_threads_seen_by, where
):
    """--threads N (before or after the command's name) runs the command with N BLAS threads."""
    import backprop.training as training

    seen = blas_threads_seen_by(training, "fit")
    before = seen.now()
    out = tmp_path / "m.safetensors"
    train = ["train", "--epochs", "1", "--quiet", "--out", str(out)]
    argv = ["--threads", "1", *train] if where == "before" else [*train, "--threads", "1"]
    assert main(argv) == 0
    assert seen == [{1}]
    assert seen.now() == before
    assert out.is_file()


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--threads", "2", "lm", "train", "--corpus", "c.txt"], 2),
        (["lm", "--threads", "2", "train", "--corpus", "c.txt"], 2),
        (["lm", "train", "--threads", "3", "--corpus", "c.txt"], 3),
        (["lm", "train", "--corpus", "c.txt"], None),
        (["lm", "eval", "m.safetensors", "--threads", "1"], 1),
        (["--threads", "2", "lm", "eval", "m.safetensors"], 2),
        (["lm", "generate", "m.safetensors", "--threads", "1"], 1),
    ],
)
def test_threads_reaches_the_language_model_commands(argv, expected):
    # The lm commands' own --threads used to reset a value given before their name to None.
    from backprop.cli import build_parser

    assert getattr(build_parser().parse_args(argv), "threads", None) == expected


def test_names_with_brackets_are_printed_as_given(in_tmp, capsys):
    # The console read "[red]" and "[v2]" as style markup: it printed "m.safetensors" for
    # "m[v2].safetensors", and a closing tag such as "[/x]" made a finished command fail.
    out = "[bold]m[v2].safetensors"
    assert main(["train", "--data", "xor", "--epochs", "2", "--out", out]) == 0
    assert f"model saved to {out}" in capsys.readouterr().out
    assert main(["info", out]) == 0
    assert out in capsys.readouterr().out


def test_evaluate_json_is_standard_json(in_tmp, capsys):
    # One regression row has no R^2 (no variance): it was printed as the non-standard NaN.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    with open("reg.csv", "w") as fh:
        fh.write("a,b,y\n" + "".join(f"{a},{b},{a - b}\n" for a, b in X))
    with open("one.csv", "w") as fh:
        fh.write("a,b,y\n0.1,0.2,0.3\n")
    argv = ["train", "--data", "reg.csv", "--task", "regression", "--epochs", "2", "--quiet"]
    assert main([*argv, "--out", "r.st"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "r.st", "--data", "one.csv", "--json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-standard {c}"))
    assert data["r2"] is None and data["rmse"] >= 0


def test_a_table_file_named_like_a_built_in_set_gets_the_general_defaults(in_tmp, capsys):
    with open("curve", "w") as fh:
        fh.write("a,b,y\n" + "".join(f"{i},{2 * i},{i % 3}.5\n" for i in range(30)))
    assert main(["train", "--data", "./curve", "--epochs", "1", "--quiet", "--out", "c.st"]) == 0
    out = capsys.readouterr().out
    assert "2 features" in out and "tanh" not in out and "lr 0.003" in out  # not curve's recipe


def test_plots_are_written_in_the_format_their_extension_names(in_tmp, capsys):
    # A .pdf used to get PNG bytes; an unknown extension is refused before training.
    assert main(["train", "--data", "xor", "--epochs", "5", "--quiet", "--out", "x.st"]) == 0
    assert main(["plot", "x.st", "--out", "c.pdf"]) == 0
    assert main(["plot", "x.st", "--out", "c.svg"]) == 0
    assert (in_tmp / "c.pdf").read_bytes()[:5] == b"%PDF-"
    assert b"<svg" in (in_tmp / "c.svg").read_bytes()[:500]
    capsys.readouterr()
    assert main(["train", "--data", "xor", "--quiet", "--plot", "c.xyz"]) == 1
    captured = capsys.readouterr()
    assert "c.xyz: no image format for '.xyz'" in _one_line_error(captured.err)
    assert "epoch" not in captured.out


def test_evaluate_and_predict_refuse_a_language_model_file(in_tmp, capsys):
    from backprop.lm import NeuralLM, save_lm
    from backprop.lm_data import Vocabulary

    vocab = Vocabulary(min_count=1).fit("a b c a b".split())
    save_lm(NeuralLM(len(vocab), order=3, dim=4, hidden=5, seed=0), "lm.safetensors", vocab)
    np.save("x.npy", np.zeros((2, 3)))
    for argv in (
        ["evaluate", "lm.safetensors", "--data", "x.npy"],
        ["predict", "lm.safetensors", "x.npy"],
    ):
        assert main(argv) == 1
        assert "a NeuralLM (language model) file: use 'backprop lm eval'" in _one_line_error(
            capsys.readouterr().err
        )


def test_lbfgs_trains_the_recipes_and_refuses_step_options(in_tmp, capsys):
    # The xor and curve recipes' learning rate used to reach L-BFGS, which takes none: the run
    # failed after loading the data. The user's --lr, --schedule or --batch-size, which L-BFGS
    # would not use, are refused before any work.
    for data in ("xor", "curve"):
        argv = ["train", "--data", data, "--optimizer", "lbfgs", "--epochs", "5", "--quiet"]
        assert main([*argv, "--out", f"{data}.st"]) == 0, capsys.readouterr().err
        training = load(f"{data}.st").metadata["training"]
        assert training["optimizer"] == "lbfgs" and training["lr"] is None
    capsys.readouterr()
    for option, value in (("--lr", "0.1"), ("--schedule", "linear"), ("--batch-size", "8")):
        argv = ["train", "--data", "xor", "--optimizer", "lbfgs", option, value, "--quiet"]
        assert main([*argv, "--out", "refused.st"]) == 2
        captured = capsys.readouterr()
        assert f"{option} is not used by lbfgs" in _one_line_error(captured.err)
        assert "epoch" not in captured.out and not (in_tmp / "refused.st").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["--out", "run.json", "--history-out", "run.json"],
        ["--out", "run.png", "--plot", "run.png"],
        ["--out", "run-boundary.png", "--plot", "run.png"],
        ["--history-out", "run.png", "--plot", "./run.png"],
    ],
)
def test_train_refuses_two_outputs_with_one_name(in_tmp, capsys, argv):
    # The history or a plot used to be written over the model file just saved ("model saved
    # to run.json", but run.json held the history): the run was lost.
    assert main(["train", "--data", "xor", "--epochs", "5", "--quiet", *argv]) == 2
    captured = capsys.readouterr()
    assert "same file" in _one_line_error(captured.err)
    assert "epoch" not in captured.out and not list(in_tmp.iterdir())


def test_warmup_schedules_run_their_decay_over_the_rest():
    # warmup+NAME is one epoch of warm-up, then NAME over the rest of the run. step and
    # exponential used to be sized for the whole run: warmup+step cut the rate once instead
    # of twice, warmup+exponential fell 46-fold instead of 100-fold.
    total, epoch = 40, 10  # 30 steps after the warm-up
    step = cli._make_schedule("warmup+step", 1.0, total, epoch)
    rates = [float(step(t)) for t in range(total)]
    assert rates[epoch] == pytest.approx(1.0)
    assert rates[epoch + 9] == pytest.approx(1.0) and rates[epoch + 10] == pytest.approx(0.1)
    assert rates[epoch + 20] == pytest.approx(0.01) and rates[-1] == pytest.approx(0.01)
    exp = cli._make_schedule("warmup+exponential", 1.0, total, epoch)
    assert float(exp(epoch)) == pytest.approx(1.0)
    assert float(exp(total)) == pytest.approx(0.01)
    # without a warm-up, the same decays over the whole run
    assert float(cli._make_schedule("exponential", 1.0, total, epoch)(total)) == pytest.approx(0.01)
    assert float(cli._make_schedule("step", 1.0, 30, epoch)(20)) == pytest.approx(0.01)


def test_ctrl_c_between_training_and_saving_does_not_lose_the_run(in_tmp, capsys, monkeypatch):
    # A Ctrl-C (a second one, say) while the finished network was being evaluated, before the
    # save, ended the command with nothing saved: like one during the save, it is ignored.
    measure = cli._classify_metrics

    def interrupted(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return measure(*args, **kwargs)

    monkeypatch.setattr(cli, "_classify_metrics", interrupted)
    assert main(["train", "--data", "xor", "--epochs", "5", "--quiet", "--out", "x.st"]) == 0
    assert "model saved to x.st" in capsys.readouterr().out
    assert load("x.st").metadata["training"]["results"]["train"]["n"] == 4
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_npz_without_labels_is_refused_by_train_and_evaluate(in_tmp, capsys):
    # An NPZ with only X (data to predict) gave "AttributeError: 'NoneType' object has no
    # attribute 'dtype'" in train and "len() of unsized object" in evaluate.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    np.savez("xy.npz", X=X, y=(X[:, 0] > 0).astype(int))
    np.savez("x.npz", X=X)
    assert main(["train", "--data", "x.npz", "--epochs", "2", "--quiet", "--out", "a.st"]) == 1
    assert "x.npz: no labels" in _one_line_error(capsys.readouterr().err)
    argv = ["train", "--data", "xy.npz", "--epochs", "2", "--quiet"]
    assert main([*argv, "--test-data", "x.npz", "--out", "a.st"]) == 1
    assert "x.npz: no labels" in _one_line_error(capsys.readouterr().err)
    assert main([*argv, "--out", "m.st"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "m.st", "--data", "x.npz"]) == 1
    assert "x.npz: no labels" in _one_line_error(capsys.readouterr().err)
    assert main(["predict", "m.st", "x.npz"]) == 0  # data to predict needs none
    assert len(capsys.readouterr().out.splitlines()) == 41


def test_a_table_with_one_class_is_named_as_such(in_tmp, capsys):
    # Every label the same used to fail inside training with "loss 'cross_entropy' needs a
    # softmax output over 2 or more units, not a softmax output of 1 unit(s)".
    Path("one.csv").write_text("x1,x2,label\n1,2,cat\n3,4,cat\n5,6,cat\n7,8,cat\n")
    assert main(["train", "--data", "one.csv", "--epochs", "2", "--quiet", "--out", "m.st"]) == 1
    captured = capsys.readouterr()
    err = _one_line_error(captured.err)
    assert "one.csv: every label is 'cat'" in err and "at least 2 classes" in err
    assert "epoch" not in captured.out and not Path("m.st").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--patience", "3"], "--patience needs --early-stopping"),
        (["--hidden", "none", "--dropout", "0.5"], "--dropout needs a hidden layer"),
    ],
)
def test_train_refuses_options_that_would_do_nothing(in_tmp, capsys, argv, message):
    # Both were accepted and silently had no effect (the header even announced "dropout 0.5").
    assert main(["train", "--data", "xor", "--epochs", "2", "--quiet", *argv]) == 2
    captured = capsys.readouterr()
    assert message in _one_line_error(captured.err)
    assert "epoch" not in captured.out and not list(in_tmp.iterdir())


def test_train_help_names_the_recipes_defaults(capsys):
    # --help gave "--epochs (default 20)" and "--batch-size (default 128)" alone, while plain
    # 'backprop train' (the digits) runs 40 epochs of batches of 32.
    assert main(["train", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "digits: epochs 40, batch size 32" in out
    assert "xor: hidden 2, activation sigmoid, output sigmoid, lr 0.1" in out


def test_predict_refuses_to_write_over_its_model(in_tmp, capsys):
    # --out naming the model file replaced the trained network with a CSV of its predictions.
    assert main(["train", "--data", "xor", "--epochs", "2", "--quiet", "--out", "m.st"]) == 0
    Path("x.csv").write_text("0,1\n1,1\n")
    before = Path("m.st").read_bytes()
    capsys.readouterr()
    assert main(["predict", "m.st", "x.csv", "--out", "./m.st"]) == 2
    assert "--out ./m.st is the model file" in _one_line_error(capsys.readouterr().err)
    assert Path("m.st").read_bytes() == before


def test_evaluate_split_is_refused_for_a_table(in_tmp, table, capsys):
    # --split train on a table file was ignored: the whole file was evaluated, as without it.
    path, _, _ = table
    assert main(["train", "--data", str(path), "--epochs", "2", "--quiet", "--out", "m.st"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "m.st", "--data", str(path), "--split", "train"]) == 2
    assert "--split is for a built-in data set" in _one_line_error(capsys.readouterr().err)
    assert main(["evaluate", "m.st", "--data", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 120


def test_too_few_samples_for_a_validation_part_says_what_to_do(in_tmp, capsys):
    # "1 samples cannot be split; expected at least 2" named neither option involved.
    argv = ["train", "--limit", "1", "--epochs", "1", "--quiet", "--out", "m.st"]
    assert main(argv) == 1
    err = _one_line_error(capsys.readouterr().err)
    assert "1 training sample" in err and "--val-fraction 0" in err
    assert main([*argv, "--val-fraction", "0"]) == 0


@pytest.mark.parametrize(
    "text, message",
    [
        ("[0.5, 0.4]", "h.json: not a training history"),
        ('{"loss": [0.5, "low"]}', "h.json: 'loss' holds 'low'; expected numbers"),
        ('{"loss": 0.5}', "h.json: 'loss' holds 0.5; expected a list of numbers"),
    ],
)
def test_plot_names_a_bad_history_file(in_tmp, capsys, text, message):
    # A JSON list was read as a model file ("truncated or not a model file"), a word among the
    # losses gave "must be real number, not str" and a number for the list a TypeError.
    Path("h.json").write_text(text)
    assert main(["plot", "h.json", "--out", "h.png"]) == 1
    assert message in _one_line_error(capsys.readouterr().err)
    assert not Path("h.png").exists()
