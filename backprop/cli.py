"""The ``backprop`` command: train, evaluate, predict, info and plot.

It only wires the library together: :mod:`backprop.datasets` loads the data, :class:`MLP` and
:func:`fit` train, :mod:`backprop.io` writes and reads the model file, :mod:`backprop.plots`
draws. Rich (progress, tables) and matplotlib are imported only by the commands that use them,
so ``import backprop.cli`` stays fast.

Exit codes: 0 success, 1 failure (one line ``backprop: error: ...`` on stderr; ``--debug``
shows the traceback instead), 2 usage error (argparse), 130 interrupted by Ctrl-C (``train``
saves the weights first).

Other modules add subcommands: every module named in :data:`PLUGIN_MODULES` that exists is
imported and its ``register(subparsers)`` called; a subcommand sets
``set_defaults(func=handler)`` with ``handler(args) -> int``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import math
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from . import __version__
from ._validation import int_arg_at_least
from .callbacks import Callback, json_safe

__all__ = [
    "main",
    "build_parser",
    "add_common_training_args",
    "ProgressCallback",
    "PLUGIN_MODULES",
    "RECIPES",
    "DEFAULTS",
    "LEARNING_RATES",
]

PLUGIN_MODULES = ("backprop.cli_explain", "backprop.cli_figures", "backprop.cli_lm")

#: Defaults of ``train`` when neither the user nor a recipe sets an option.
DEFAULTS = {
    "hidden": [100],
    "activation": "relu",
    "optimizer": "adam",
    "lr": None,  # LEARNING_RATES, else the optimizer's own default
    "schedule": "cosine",
    "epochs": 20,
    "batch_size": 128,
    "dropout": 0.0,
    "l2": 0.0,
    "patience": 10,
    "val_fraction": 0.1,
    "seed": 0,
    "dtype": "float32",
    "scale": "auto",
}

#: Default peak learning rates of ``train`` (the cosine schedule anneals them to 0); other
#: optimizers start from their own default (SGD 0.01, ...).
LEARNING_RATES = {"adam": 0.003, "radam": 0.003}

#: Per-data-set defaults (the user's options always win): small problems want other settings
#: than MNIST.
RECIPES = {
    "digits": {"epochs": 40, "batch_size": 32},
    # The notes' 2-2-1 XOR network (sigmoid units), trained on the 4 points as a full batch.
    "xor": {
        "hidden": [2],
        "activation": "sigmoid",
        "output": "sigmoid",
        "lr": 0.1,
        "schedule": "constant",
        "epochs": 2000,
        "batch_size": 4,
        "val_fraction": 0.0,
        "seed": 1,
        "scale": "none",
    },
    # The notes' curve y = x + 0.3 sin(2 pi x) + eps with a 1-20-1 tanh network.
    "curve": {
        "hidden": [20],
        "activation": "tanh",
        "lr": 0.01,
        "schedule": "constant",
        "epochs": 2000,
        "batch_size": 20,
        "val_fraction": 0.0,
        "scale": "none",
    },
}

_SCHEDULE_NAMES = ("constant", "cosine", "linear", "step", "exponential", "inverse_sqrt")


class _Usage(Exception):
    """A bad combination of options found after parsing: exit 2 like argparse."""


# --------------------------------------------------------------------------------------------
# Argument types
# --------------------------------------------------------------------------------------------


def _hidden(text: str) -> list[int]:
    t = text.strip().lower()
    if t in ("", "none", "0"):
        return []
    try:
        sizes = [int(s) for s in t.replace(" ", "").split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of layer widths: expected e.g. 256,128 (or none)"
        ) from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"{text!r} has a width < 1: expected positive integers")
    return sizes


_positive_int = int_arg_at_least(1)


def _float(lo: float, hi: float | None, lo_open: bool, hi_open: bool = True):
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        ok = math.isfinite(v) and (v > lo if lo_open else v >= lo)
        if hi is not None:
            ok = ok and (v < hi if hi_open else v <= hi)
        if not ok:
            left = "(" if lo_open else "["
            right = ("" if hi is None else f", {hi:g}") + (")" if hi_open else "]")
            rng = f"{left}{lo:g}{right if hi is not None else ', inf)'}"
            raise argparse.ArgumentTypeError(f"{text!r} is out of range: expected a value in {rng}")
        return v

    return parse


_positive_float = _float(0.0, None, lo_open=True)
_nonneg_float = _float(0.0, None, lo_open=False)
_fraction = _float(0.0, 1.0, lo_open=False)


def _schedule_name(text: str) -> str:
    t = text.strip().lower()
    stem = t[len("warmup+") :] if t.startswith("warmup+") else t
    stem = {"step_decay": "step", "invscaling": "inverse_sqrt"}.get(stem, stem)
    if stem not in _SCHEDULE_NAMES:
        raise argparse.ArgumentTypeError(
            f"unknown schedule {text!r}: expected one of {', '.join(_SCHEDULE_NAMES)} "
            "(each also as warmup+<name>)"
        )
    return ("warmup+" if t.startswith("warmup+") else "") + stem


def _choice(names, what: str):
    valid = sorted(names)

    def parse(text: str) -> str:
        t = text.strip().lower()
        if t not in valid:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {text!r}: expected one of {', '.join(valid)}"
            )
        return t

    return parse


def _label_column(text: str):
    try:
        return int(text)
    except ValueError:
        return text


# --------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------


def add_common_training_args(parser: argparse.ArgumentParser) -> None:
    """Add the model and optimisation options of ``train`` to ``parser``.

    Every default is None, meaning "the data set's recipe, else :data:`DEFAULTS`"; use
    :func:`resolve_training_options` to fill them in.
    """
    from .activations import ACTIVATIONS
    from .losses import LOSSES
    from .optimizers import FULL_BATCH, OPTIMIZERS

    g = parser.add_argument_group("model and training")
    g.add_argument(
        "--hidden",
        type=_hidden,
        metavar="W1,W2,...",
        help="hidden layer widths, e.g. 256,128; 'none' for no hidden layer (default 100)",
    )
    acts = _choice(ACTIVATIONS, "activation")
    g.add_argument(
        "--activation",
        type=acts,
        metavar="NAME",
        help=f"hidden activation: {', '.join(sorted(ACTIVATIONS))} (default relu)",
    )
    g.add_argument(
        "--output",
        type=acts,
        metavar="NAME",
        help="output activation (default softmax for classes, identity for regression)",
    )
    g.add_argument(
        "--loss",
        type=_choice(LOSSES, "loss"),
        metavar="NAME",
        help=f"{', '.join(sorted(LOSSES))} (default: the output's natural loss)",
    )
    opts = sorted(set(OPTIMIZERS) | set(FULL_BATCH))
    g.add_argument(
        "--optimizer",
        type=_choice(opts, "optimizer"),
        metavar="NAME",
        help=f"{', '.join(opts)} (default adam)",
    )
    g.add_argument(
        "--lr",
        type=_positive_float,
        help="peak learning rate (default 0.003 for adam and radam, else the optimizer's own)",
    )
    g.add_argument(
        "--schedule",
        type=_schedule_name,
        metavar="NAME",
        help=f"learning-rate schedule over the whole run: {', '.join(_SCHEDULE_NAMES)}, or "
        "warmup+<name> (one epoch of linear warm-up) (default cosine)",
    )
    g.add_argument("--epochs", type=_positive_int, help="maximum passes over the data (default 20)")
    g.add_argument("--batch-size", type=_positive_int, help="mini-batch size (default 128)")
    g.add_argument(
        "--dropout",
        type=_fraction,
        metavar="P",
        help="dropout probability after each hidden layer (default 0)",
    )
    g.add_argument(
        "--l2",
        type=_nonneg_float,
        metavar="LAMBDA",
        help="L2 penalty lambda/2n sum W^2 (default 0)",
    )
    g.add_argument(
        "--early-stopping",
        action="store_true",
        help="stop when the validation loss stops improving and keep the best weights",
    )
    g.add_argument(
        "--patience", type=_positive_int, help="epochs without improvement before stopping (10)"
    )
    g.add_argument(
        "--val-fraction",
        type=_fraction,
        metavar="F",
        help="fraction of the training data held out for validation (default 0.1)",
    )
    g.add_argument("--seed", type=int, help="seed of the one random generator (default 0)")
    g.add_argument(
        "--dtype", choices=("float32", "float64"), help="floating type end to end (float32)"
    )


def _add_data_args(parser, *, required: bool) -> None:
    g = parser.add_argument_group("data")
    g.add_argument(
        "--data",
        required=required,
        metavar="NAME|PATH",
        help="digits, mnist, fashion-mnist, xor, curve, or a .csv/.npy/.npz file",
    )
    g.add_argument(
        "--label-column",
        type=_label_column,
        metavar="COL",
        help="label column of a table: index (negative from the end) or header name (default -1)",
    )
    g.add_argument("--data-dir", metavar="DIR", help="where the MNIST/Fashion-MNIST files are")
    g.add_argument("--no-download", action="store_true", help="never download MNIST/Fashion-MNIST")


def _recipe_text(recipe: dict) -> str:
    """``{"epochs": 40, "batch_size": 32}`` -> ``"epochs 40, batch size 32"``."""

    def shown(v):
        if isinstance(v, list):
            return ",".join(map(str, v))
        return f"{v:g}" if isinstance(v, float) else str(v)

    return ", ".join(f"{k.replace('_', ' ')} {shown(v)}" for k, v in recipe.items())


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``backprop`` command, plugins included."""
    parser = argparse.ArgumentParser(
        prog="backprop",
        description="Multilayer perceptrons trained by error backpropagation.",
        epilog="Run 'backprop COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"backprop {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    parser.add_argument("--threads", type=_positive_int, metavar="N", help=THREADS_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    # -- train --------------------------------------------------------------------------------
    p = sub.add_parser(
        "train",
        help="train a network and save it (default: the digits, in seconds)",
        description="Train a multilayer perceptron, report its test accuracy and save it. "
        "Without options it trains 64-100-10 on scikit-learn's bundled digits in seconds. "
        "Ctrl-C stops training and still saves the weights so far (the best ones with "
        "--early-stopping).",
        epilog="A few data sets change some of these defaults unless given: "
        + "; ".join(f"{name}: {_recipe_text(recipe)}" for name, recipe in RECIPES.items())
        + ".",
    )
    _add_data_args(p, required=False)
    p.add_argument(
        "--test-data", metavar="PATH", help="a table to test on (default: a 20%% split of --data)"
    )
    p.add_argument(
        "--task", choices=("classification", "regression"), help="for a table (default: guessed)"
    )
    p.add_argument(
        "--limit", type=_positive_int, metavar="N", help="train on N random training samples only"
    )
    p.add_argument(
        "--scale",
        choices=("auto", "standardize", "unit", "none"),
        help="input preprocessing, stored in the model: standardize per feature, unit = divide "
        "by the data's maximum (auto: unit for images, else standardize)",
    )
    add_common_training_args(p)
    g = p.add_argument_group("output")
    g.add_argument(
        "--out",
        default="model.safetensors",
        metavar="PATH",
        help="model file to write (default model.safetensors)",
    )
    g.add_argument("--history-out", metavar="JSON", help="also write the training history here")
    g.add_argument(
        "--plot",
        metavar="PNG",
        help="learning curves to PNG, plus NAME-boundary/-fit/-confusion/-misclassified.png "
        "as they apply",
    )
    g.add_argument("--quiet", action="store_true", help="no progress lines, only the summary")
    p.set_defaults(func=cmd_train)

    # -- evaluate -----------------------------------------------------------------------------
    p = sub.add_parser(
        "evaluate",
        help="loss, accuracy, per-class precision/recall and confusion matrix",
        description="Evaluate a saved model on a data set: a built-in one (its test part) or "
        "a whole table file. Without --data, the data set the model was trained on.",
    )
    p.add_argument("model", metavar="MODEL", help="a model file written by 'backprop train'")
    _add_data_args(p, required=False)
    p.add_argument(
        "--split",
        choices=("test", "train"),
        help="part of a built-in data set (default test)",
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument(
        "--plot", metavar="PNG", help="confusion matrix (and NAME-misclassified.png for images)"
    )
    p.set_defaults(func=cmd_evaluate)

    # -- predict ------------------------------------------------------------------------------
    p = sub.add_parser(
        "predict",
        help="predict labels or values for a CSV/NPY file",
        description="Apply a saved model (with its stored preprocessing) to every row of "
        "INPUT and write CSV: the class label, the class probabilities (--proba) or the "
        "predicted values.",
    )
    p.add_argument("model", metavar="MODEL")
    p.add_argument("input", metavar="INPUT", help=".csv/.npy/.npz of features, one sample a row")
    p.add_argument("--out", metavar="CSV", help="write here instead of standard output")
    p.add_argument("--proba", action="store_true", help="one probability column per class")
    p.add_argument(
        "--label-column",
        type=_label_column,
        metavar="COL",
        help="INPUT also has a label column: ignore it",
    )
    p.add_argument("--no-header", action="store_true", help="no header line")
    p.set_defaults(func=cmd_predict)

    # -- info ---------------------------------------------------------------------------------
    p = sub.add_parser(
        "info",
        help="architecture, classes, preprocessing and training of a model file",
        description="Describe a model file without loading its weights.",
    )
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--json", action="store_true", help="print the metadata as JSON")
    p.set_defaults(func=cmd_info)

    # -- plot ---------------------------------------------------------------------------------
    p = sub.add_parser(
        "plot",
        help="learning curves from a history JSON or a model file",
        description="Draw the loss and accuracy curves (training and validation) of a run.",
    )
    p.add_argument("source", metavar="HISTORY.json|MODEL")
    p.add_argument("--out", required=True, metavar="PNG")
    p.add_argument("--title")
    p.set_defaults(func=cmd_plot)

    _register_plugins(sub)
    for command in sub.choices.values():  # also accepted after the command's name
        command.add_argument(
            "--threads",
            type=_positive_int,
            metavar="N",
            default=argparse.SUPPRESS,
            help=THREADS_HELP,
        )
    return parser


THREADS_HELP = (
    "threads for the matrix products (the BLAS library's; default: its own choice, usually one "
    "per core). On a busy or shared machine 1 can be faster"
)


def _blas_threads(n: int | None):
    """A context that limits the BLAS libraries to ``n`` threads (nothing when ``n`` is None)."""
    import contextlib

    if n is None:
        return contextlib.nullcontext()
    import scipy.linalg  # noqa: F401 - loads SciPy's own BLAS now, so that the limit covers it
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n, user_api="blas")


def _register_plugins(sub) -> None:
    for name in PLUGIN_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub)


# --------------------------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------------------------


def _epoch_line(epoch: int, epochs: int, logs: dict, n_samples: int, seconds: float) -> str:
    parts = [f"epoch {epoch}/{epochs}", f"loss {logs['loss']:.4f}"]
    if "accuracy" in logs:
        parts.append(f"acc {logs['accuracy']:.3f}")
    if "val_loss" in logs:
        parts.append(f"val_loss {logs['val_loss']:.4f}")
    if "val_accuracy" in logs:
        parts.append(f"val_acc {logs['val_accuracy']:.3f}")
    if seconds > 0:
        parts.append(f"{n_samples / seconds:,.0f} samples/s")
    parts.append(f"{seconds:.2f} s" if seconds < 1 else f"{seconds:.1f} s")
    return "  ".join(parts)


class ProgressCallback(Callback):
    """Shows training as it goes.

    On a terminal: a live bar per epoch (samples done, running loss, throughput) drawn by rich,
    and one line per finished epoch. Otherwise (a pipe, a log file): only the epoch lines,
    flushed as they are written, e.g.::

        epoch 3/20  loss 0.3012  acc 0.912  val_loss 0.3311  val_acc 0.905  48,000 samples/s  0.93 s

    Parameters
    ----------
    console : rich.console.Console
    epochs : int
        Planned number of epochs (for ``3/20``).
    n_samples : int
        Training samples per epoch.
    live : bool, optional
        Draw the bar; default: when ``console`` is a terminal.
    every : int, optional
        Write every ``every``-th epoch line (the first and the last always); default: about 50
        lines for the whole run (every epoch up to 50 epochs).
    """

    def __init__(self, console, epochs: int, n_samples: int, live: bool | None = None, every=None):
        self.console = console
        self.every = int(every) if every else max(1, math.ceil(int(epochs) / 50))
        self._pending = None
        self.epochs = int(epochs)
        self.n_samples = int(n_samples)
        self.live = console.is_terminal if live is None else bool(live)
        self._progress = None
        self._task = None
        self._seen = 0
        self._loss_sum = 0.0
        self._t0 = 0.0
        self.lines: list[str] = []

    def on_train_begin(self, trainer):
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("{task.fields[speed]} samples/s"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._progress.start()

    def on_epoch_begin(self, trainer, epoch):
        self._seen = 0
        self._loss_sum = 0.0
        self._t0 = time.perf_counter()
        if self._progress is not None:
            if self._task is not None:
                self._progress.remove_task(self._task)
            self._task = self._progress.add_task(
                f"epoch {epoch}/{self.epochs}", total=self.n_samples, loss="-", speed="-"
            )

    def on_batch_end(self, trainer, step, batch_loss, batch_size):
        if self._progress is None:
            return
        self._seen += batch_size
        self._loss_sum += batch_loss * batch_size
        dt = time.perf_counter() - self._t0
        self._progress.update(
            self._task,
            completed=self._seen,
            loss=f"{self._loss_sum / self._seen:.4f}",
            speed=f"{self._seen / dt:,.0f}" if dt > 0 else "-",
        )

    def on_epoch_end(self, trainer, epoch, logs):
        times = trainer.history.epoch_time
        seconds = times[-1] if times else 0.0
        line = _epoch_line(epoch, self.epochs, logs, self.n_samples, seconds)
        self.lines.append(line)
        if epoch == 1 or epoch % self.every == 0 or epoch == self.epochs:
            self._write(line)
            self._pending = None
        else:
            self._pending = line

    def _write(self, line: str) -> None:
        if self._progress is not None:
            self._progress.console.print(line, highlight=False)
        else:
            # A plain write, not console.print: a Ctrl-C landing inside rich's buffered print
            # would leave the line in its buffer and print it twice.
            fh = self.console.file
            fh.write(line + "\n")
            fh.flush()

    def on_train_end(self, trainer):
        if self._pending is not None:  # the last epoch is always shown
            self._write(self._pending)
            self._pending = None
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, markup=False)  # names are shown as given


def _data_key(source: str) -> str:
    """``--data`` as a built-in data set's name would be spelled (aliases resolved)."""
    key = source.strip().lower()
    return {"fashion_mnist": "fashion-mnist", "fashion": "fashion-mnist"}.get(key, key)


def _load_data(source: str, args, dtype: str):
    """A :class:`backprop.datasets.Dataset` for ``--data`` (built-in name or table path)."""
    from .datasets import DATASET_NAMES, load_dataset

    key = _data_key(source)
    kw: dict = {}
    if key in ("mnist", "fashion-mnist"):
        if getattr(args, "data_dir", None):
            kw["data_dir"] = args.data_dir
        if getattr(args, "no_download", False):
            kw["download"] = False
    elif key in ("digits", "xor", "curve"):
        kw["dtype"] = dtype
    elif key not in DATASET_NAMES:
        kw["dtype"] = dtype
        if getattr(args, "label_column", None) is not None:
            kw["label_column"] = args.label_column
        if getattr(args, "test_data", None):
            kw["test_path"] = args.test_data
        if getattr(args, "task", None):
            kw["task"] = args.task
    return load_dataset(source, **kw)


def _scalers(metadata: dict):
    from .datasets import scaler_from_config

    pre = metadata.get("preprocessing") or {}
    return scaler_from_config(pre.get("input")), scaler_from_config(pre.get("target"))


def _prepare_inputs(X, scaler, dtype) -> np.ndarray:
    if scaler is not None:
        return scaler.transform(X, dtype=dtype)
    return np.ascontiguousarray(X, dtype=dtype)


def _forward(net, X, batch: int = 8192) -> np.ndarray:
    return np.concatenate([net.forward(X[s : s + batch]) for s in range(0, len(X), batch)])


def _predicted_classes(A: np.ndarray) -> np.ndarray:
    if A.shape[1] == 1:
        return (A[:, 0] >= 0.5).astype(np.int64)
    return A.argmax(axis=1)


def _class_targets(y: np.ndarray, n_out: int, dtype) -> np.ndarray:
    """Class indices -> the network's targets: one-hot rows, or a 0/1 column for 1 output."""
    if n_out == 1:
        return y.astype(dtype).reshape(-1, 1)
    Y = np.zeros((len(y), n_out), dtype=dtype)
    Y[np.arange(len(y)), y] = 1
    return Y


def _regression_metrics(pred: np.ndarray, y: np.ndarray) -> dict:
    pred = np.asarray(pred, np.float64).reshape(len(pred), -1)
    y = np.asarray(y, np.float64).reshape(len(y), -1)
    err = pred - y
    ss_tot = float(((y - y.mean(axis=0)) ** 2).sum())
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "r2": 1.0 - float((err**2).sum()) / ss_tot if ss_tot > 0 else float("nan"),
    }


def _per_class(cm: np.ndarray) -> list[dict]:
    out = []
    for k in range(cm.shape[0]):
        tp = int(cm[k, k])
        pred_k = int(cm[:, k].sum())
        true_k = int(cm[k, :].sum())
        precision = tp / pred_k if pred_k else 0.0
        recall = tp / true_k if true_k else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out.append({"precision": precision, "recall": recall, "f1": f1, "support": true_k})
    return out


def _classify_metrics(net, X, y, loss_name: str) -> dict:
    """Loss, accuracy, confusion matrix and per-class figures of a classifier on (X, y)."""
    from .plots import confusion_matrix
    from .training import evaluate

    n_out = net.n_out
    n_classes = max(n_out, 2)
    ev = evaluate(net, X, _class_targets(y, n_out, net.dtype), loss=loss_name)
    pred = _predicted_classes(_forward(net, X))
    cm = confusion_matrix(y, pred, n_classes)
    return {
        "n": int(len(y)),
        "loss": float(ev["loss"]),
        "accuracy": float(np.mean(pred == y)),
        "confusion": cm,
        "per_class": _per_class(cm),
        "pred": pred,
    }


def _plot_base(path: str) -> tuple[str, str]:
    root, ext = os.path.splitext(path)
    return root, ext or ".png"


def _ignore_sigint():
    """Context manager: a second Ctrl-C must not abort the save of the weights."""

    class _Guard:
        def __enter__(self):
            try:
                self.old = signal.signal(signal.SIGINT, signal.SIG_IGN)
            except ValueError:  # not the main thread
                self.old = None
            return self

        def __exit__(self, *exc):
            if self.old is not None:
                signal.signal(signal.SIGINT, self.old)
            return False

    return _Guard()


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------


def resolve_training_options(args, data_name: str) -> dict:
    """The effective settings: the user's options, else the data set's recipe, else DEFAULTS."""
    recipe = RECIPES.get(data_name, {})
    out = {}
    for key in (*DEFAULTS, "output", "loss"):
        value = getattr(args, key, None)
        if value is None:
            value = recipe.get(key, DEFAULTS.get(key))
        out[key] = value
    out["early_stopping"] = bool(getattr(args, "early_stopping", False))
    return out


def _make_schedule(name: str, lr: float, total_steps: int, steps_per_epoch: int):
    from .schedules import get_schedule

    warm = name.startswith("warmup+")
    stem = name[len("warmup+") :] if warm else name
    kw: dict = {}
    # After a warm-up the schedule runs over the rest of the run (get_schedule subtracts the
    # warm-up from total_steps itself; step's and exponential's lengths are set here).
    warmup_steps = min(steps_per_epoch, max(0, total_steps - 1)) if warm else 0
    rest = total_steps - warmup_steps
    if stem in ("cosine", "linear"):
        kw["total_steps"] = total_steps
    elif stem == "step":
        kw.update(gamma=0.1, every=max(1, rest // 3))
    elif stem == "exponential":
        kw["k"] = math.log(100.0) / max(1, rest)  # the rate falls 100-fold over the run
    if warm:
        kw["warmup_steps"] = warmup_steps
    if stem == "constant" and not warm:
        return None
    return get_schedule(name, lr, **kw)


def check_output_path(path, what: str = "--out") -> None:
    """Refuse, before any work, an output path that cannot be written: its directory missing
    or not writable, or the path an existing directory (a training run would be lost)."""
    if path is None:
        return
    p = os.path.abspath(os.fspath(path))
    d = os.path.dirname(p)
    if os.path.isdir(p):
        raise IsADirectoryError(f"{what} {path}: is a directory; expected a file name")
    if not os.path.isdir(d):
        raise FileNotFoundError(f"{what} {path}: no such directory {d}")
    if not os.access(d, os.W_OK | os.X_OK):
        raise PermissionError(f"{what} {path}: the directory {d} is not writable")


def _check_distinct_outputs(args) -> None:
    """Refuse, before any work, two outputs of ``train`` with one file name: the later one
    would be written over the model file (or the history) just saved."""
    files = [("--out", args.out)]
    if args.history_out:
        files.append(("--history-out", args.history_out))
    if args.plot:
        root, ext = _plot_base(args.plot)
        files.append(("--plot", args.plot))
        for suffix in ("boundary", "fit", "confusion", "misclassified"):
            files.append(("--plot", f"{root}-{suffix}{ext}"))
    seen: dict[str, tuple[str, str]] = {}
    for option, path in files:
        key = os.path.realpath(path)
        if key in seen and seen[key][0] != option:
            first, first_path = seen[key]
            raise _Usage(
                f"{first} {first_path} and {option} {args.plot if option == '--plot' else path} "
                f"would write the same file {path}: expected different names"
            )
        seen.setdefault(key, (option, path))


def _load_mlp(path):
    """A model file for evaluate and predict: a network of layers, not a language model."""
    from .io import load

    net = load(path)
    if not hasattr(net, "n_in"):
        raise ValueError(
            f"{path}: a {type(net).__name__} (language model) file: use 'backprop lm eval' or "
            "'backprop lm generate' with it"
        )
    return net


def cmd_train(args) -> int:
    from .callbacks import EarlyStopping
    from .datasets import Scale, Standardizer, train_test_split
    from .io import save
    from .layers import MLP
    from .optimizers import FULL_BATCH, OPTIMIZERS
    from .training import fit

    console = _console()
    t_start = time.perf_counter()
    for path, what in ((args.out, "--out"), (args.history_out, "--history-out")):
        check_output_path(path, what)
    check_output_path(args.plot, "--plot")
    if args.plot:
        from .plots import image_format

        image_format(args.plot)
    _check_distinct_outputs(args)
    if args.patience is not None and not args.early_stopping:
        raise _Usage("--patience needs --early-stopping: without it training never stops early")
    if args.dropout and args.hidden == []:
        raise _Usage(
            "--dropout needs a hidden layer: it acts after each one, and --hidden gives none"
        )
    if args.optimizer in FULL_BATCH:
        for option, value in (
            ("--lr", args.lr),
            ("--schedule", args.schedule),
            ("--batch-size", args.batch_size),
        ):
            if value is not None:
                raise _Usage(
                    f"{option} is not used by {args.optimizer}: it trains on the full batch and "
                    "its line search chooses each step"
                )
    source = args.data if args.data is not None else "digits"
    key = source.strip().lower()
    dtype = args.dtype or "float32"
    ds = _load_data(source, args, dtype)
    # A built-in data set's recipe only for the built-in name: a table file called "curve"
    # (--data ./curve) is the user's data and gets the general defaults.
    from .datasets import DATASET_NAMES

    opt = resolve_training_options(args, ds.name if _data_key(source) in DATASET_NAMES else key)
    dtype = opt["dtype"]
    classification = ds.task == "classification"

    # The network first: its one Generator then draws the subset, the validation split, the
    # dropout masks and the shuffles, so --seed fixes everything.
    if classification:
        n_classes = len(ds.classes)
        if n_classes < 2:
            raise ValueError(
                f"{source}: every label is {ds.classes[0]!r}; a classifier needs at least 2 "
                "classes (numeric targets: --task regression)"
            )
        output = opt["output"] or "softmax"
        n_out = 1 if output == "sigmoid" and n_classes == 2 else n_classes
    else:
        output = opt["output"] or "identity"
        n_out = 1 if np.ndim(ds.y_train) == 1 else int(np.shape(ds.y_train)[1])
    sizes = [ds.n_features, *opt["hidden"], n_out]
    net = MLP(
        sizes,
        activation=opt["activation"],
        output=output,
        dtype=dtype,
        seed=opt["seed"],
        dropout=opt["dropout"],
    )
    rng = net.rng

    X_all, y_all = ds.X_train, ds.y_train
    if args.limit is not None and args.limit < len(X_all):
        keep = np.sort(rng.permutation(len(X_all))[: args.limit])
        X_all, y_all = X_all[keep], y_all[keep]
    if opt["val_fraction"] > 0:
        if len(X_all) < 2:
            raise ValueError(
                f"{len(X_all)} training sample leaves none to hold out for validation: expected "
                "--val-fraction 0 (or more data)"
            )
        X_tr, X_val, y_tr, y_val = train_test_split(
            X_all, y_all, opt["val_fraction"], seed=rng, stratify=classification
        )
    else:
        X_tr, y_tr, X_val, y_val = X_all, y_all, None, None
    if ds.X_test is not None:
        X_te, y_te, test_name = ds.X_test, ds.y_test, "test"
    else:
        X_te, y_te, test_name = X_all, y_all, "train"

    # Preprocessing, fitted on the training part only.
    scale = opt["scale"]
    if scale == "auto":
        scale = "unit" if ds.value_range is not None else "standardize"
    if scale == "standardize":
        x_scaler = Standardizer().fit(X_tr)
    elif scale == "unit":
        vr = ds.value_range
        x_scaler = Scale(vr[1]).fit(X_tr) if vr is not None else Scale().fit(X_tr)
    else:
        x_scaler = None
    y_scaler = None
    if not classification and scale != "none":
        y_scaler = Standardizer().fit(np.asarray(y_tr, np.float64).reshape(len(y_tr), -1))

    def inputs(X):
        return _prepare_inputs(X, x_scaler, dtype)

    loss_name = opt["loss"] or net.default_loss()

    def targets(y):
        if classification:
            return _class_targets(y, n_out, dtype)
        Y = np.asarray(y, np.float64).reshape(len(y), -1)
        Y = y_scaler.transform(Y, dtype=dtype) if y_scaler is not None else Y.astype(dtype)
        return Y

    Xtr, Ytr = inputs(X_tr), targets(y_tr)
    val = (inputs(X_val), targets(y_val)) if X_val is not None else None
    del X_tr, X_val  # the split's raw copies (42 MB for Fashion-MNIST): only Xtr and val train
    data_summary = ds.summary()
    if ds.X_test is not None and ds.n_features > 2:
        # Nor is the raw training part needed any more (only the plots of one- or two-feature
        # data redraw it): release it for the run, 47 MB for Fashion-MNIST.
        ds = dataclasses.replace(
            ds,
            X_train=np.empty((0, ds.n_features), ds.X_train.dtype),
            y_train=np.empty((0, *np.shape(ds.y_train)[1:]), np.asarray(ds.y_train).dtype),
        )
        del X_all, y_all

    optimizer = opt["optimizer"]
    full_batch = optimizer in FULL_BATCH
    batch_size = min(opt["batch_size"], len(Xtr))
    steps_per_epoch = math.ceil(len(Xtr) / batch_size)
    lr = None if full_batch else opt["lr"]  # a recipe's rate is for the step optimizers
    schedule = None
    if not full_batch:
        if lr is None:
            lr = LEARNING_RATES.get(optimizer) or float(OPTIMIZERS[optimizer]().current_lr())
        schedule = _make_schedule(
            opt["schedule"], lr, opt["epochs"] * steps_per_epoch, steps_per_epoch
        )

    arch = "-".join(str(s) for s in sizes)
    head = (
        f"{data_summary}\n"
        f"model {arch} ({opt['activation']} hidden, {output} output, {loss_name} loss, "
        f"{dtype}), {net.n_params:,} parameters\n"
    )
    if full_batch:
        head += f"training: {optimizer} (full batch), at most {opt['epochs']} iterations"
    else:
        head += (
            f"training: {optimizer} lr {lr:g} ({opt['schedule']} schedule), batch "
            f"{batch_size}, {opt['epochs']} epochs of {len(Xtr):,} samples"
        )
    if opt["l2"]:
        head += f", l2 {opt['l2']:g}"
    if opt["dropout"]:
        head += f", dropout {opt['dropout']:g}"
    if val is not None:
        head += f", {len(val[0]):,} held out for validation"
    if opt["early_stopping"]:
        head += f", early stopping (patience {opt['patience']})"
    console.print(head, highlight=False, soft_wrap=True)

    progress = ProgressCallback(console, opt["epochs"], len(Xtr))
    callbacks = []
    if opt["early_stopping"]:
        # Before the progress display: an epoch is recorded as the best before its line is
        # written, so a Ctrl-C right after the line still keeps it.
        callbacks.append(
            EarlyStopping(
                monitor="val_loss" if val is not None else "loss", patience=opt["patience"]
            )
        )
    if not args.quiet:
        callbacks.append(progress)
    try:
        history = fit(
            net,
            Xtr,
            Ytr,
            loss=loss_name,
            optimizer=optimizer,
            lr=lr,
            schedule=schedule,
            epochs=opt["epochs"],
            batch_size=batch_size,
            l2=opt["l2"],
            validation_data=val,
            callbacks=callbacks,
            seed=rng,
        )
    finally:
        progress.on_train_end(None)  # a failed run must not leave the live display behind
    # From here until the file is saved a Ctrl-C (a second one, say) is ignored: the run is
    # finished and must not be lost.
    with _ignore_sigint():
        train_time = float(sum(history.epoch_time))
        n_train = len(Xtr)
        del Xtr, Ytr  # 188 MB for Fashion-MNIST: not needed for the evaluation, the plots, the file

        # Results on the final (or restored best) weights.
        results: dict = {
            "epochs_run": history.epochs,
            "stop_reason": history.stop_reason,
            "interrupted": history.interrupted,
            "best_epoch": history.best_epoch,
            "train_seconds": round(train_time, 3),
        }
        if history.epochs:
            results["samples_per_second"] = round(n_train * history.epochs / max(train_time, 1e-9))
        parts = [("validation", val, None, None), (test_name, None, X_te, y_te)]
        for name, pair, Xr, yr in parts:
            if name == "validation" and pair is None:
                continue
            if name == "validation":
                Xe, ye = pair[0], y_val
            else:
                Xe, ye = inputs(Xr), yr
            if classification:
                m = _classify_metrics(net, Xe, ye, loss_name)
                results[name.split(" ")[0]] = {
                    "loss": m["loss"],
                    "accuracy": m["accuracy"],
                    "n": m["n"],
                }
                if name != "validation":
                    test_metrics = m
            else:
                from .training import evaluate

                ev = evaluate(net, Xe, targets(ye), loss=loss_name)
                pred = _forward(net, Xe)
                if y_scaler is not None:
                    pred = y_scaler.inverse_transform(pred, dtype=np.float64)
                r = {"loss": float(ev["loss"]), "n": int(len(ye)), **_regression_metrics(pred, ye)}
                results[name.split(" ")[0]] = r
                test_metrics = r

        training = {
            "data": {
                "source": source,
                "name": ds.name,
                "task": ds.task,
                "n_features": ds.n_features,
                "n_train": int(n_train),
                "n_val": int(len(val[0])) if val is not None else 0,
                "n_test": int(len(X_te)) if ds.X_test is not None else 0,
                "image_shape": list(ds.image_shape) if ds.image_shape else None,
                "feature_names": ds.feature_names,
                "limit": args.limit,
            },
            "hidden": opt["hidden"],
            "activation": opt["activation"],
            "output": output,
            "loss": loss_name,
            "optimizer": optimizer,
            "lr": lr,
            "schedule": None if full_batch else opt["schedule"],
            "epochs": opt["epochs"],
            "batch_size": batch_size,
            "dropout": opt["dropout"],
            "l2": opt["l2"],
            "early_stopping": opt["early_stopping"],
            "patience": opt["patience"],
            "val_fraction": opt["val_fraction"],
            "seed": opt["seed"],
            "dtype": dtype,
            "scale": scale,
            "results": results,
            "backprop_version": __version__,
        }
        out = args.out
        save(
            net,
            out,
            classes=ds.classes,
            preprocessing={"input": x_scaler, "target": y_scaler},
            training=training,
            history=history,
        )
        if args.history_out:
            history.save_json(args.history_out)

    written = []
    if args.plot:
        written = _train_plots(
            args.plot,
            net,
            history,
            ds,
            x_scaler,
            y_scaler,
            X_te,
            y_te,
            test_metrics,
            classification,
            f"{ds.name} {arch}",
        )

    _train_summary(
        console,
        data_summary,
        arch,
        net,
        history,
        results,
        test_name,
        classification,
        out,
        written,
        args.history_out,
        time.perf_counter() - t_start,
    )
    return 130 if history.interrupted else 0


def _train_plots(
    path, net, history, ds, x_scaler, y_scaler, X_te, y_te, test_metrics, classification, title
) -> list[str]:
    from . import plots

    root, ext = _plot_base(path)
    written = []
    if history.epochs:
        written.append(plots.plot_history(history, path, title=title))
    if classification and ds.n_features == 2:
        X_all = ds.X_train if ds.X_test is None else np.concatenate([ds.X_train, ds.X_test])
        y_all = ds.y_train if ds.y_test is None else np.concatenate([ds.y_train, ds.y_test])
        written.append(
            plots.plot_decision_boundary(
                net,
                X_all,
                y_all,
                f"{root}-boundary{ext}",
                preprocessing=x_scaler,
                classes=ds.classes,
                title=f"{title}: decision regions",
            )
        )
    if not classification and ds.n_features == 1 and net.n_out == 1:
        true_fn = None
        if ds.name == "curve":

            def true_fn(x):
                return x + 0.3 * np.sin(2 * np.pi * x)

        written.append(
            plots.plot_fit(
                net,
                ds.X_train,
                ds.y_train,
                f"{root}-fit{ext}",
                preprocessing=x_scaler,
                target_preprocessing=y_scaler,
                true_fn=true_fn,
                title=f"{title}: fit",
            )
        )
    if classification and ds.X_test is not None and len(ds.classes) <= 50:
        written.append(
            plots.plot_confusion(
                test_metrics["confusion"],
                ds.classes,
                f"{root}-confusion{ext}",
                title=f"{title}: test confusion matrix (accuracy {test_metrics['accuracy']:.2%})",
            )
        )
        if ds.image_shape is not None and len(ds.image_shape) == 2:
            written.append(
                plots.plot_misclassified(
                    X_te,
                    y_te,
                    test_metrics["pred"],
                    ds.image_shape,
                    f"{root}-misclassified{ext}",
                    classes=ds.classes,
                )
            )
    return written


def _train_summary(
    console,
    data_summary,
    arch,
    net,
    history,
    results,
    test_name,
    classification,
    out,
    plots_written,
    history_out,
    total_seconds,
) -> None:
    from rich import box
    from rich.table import Table

    t = Table(title="summary", box=box.SIMPLE_HEAVY, show_header=False, title_justify="left")
    t.add_column("", style="bold")
    t.add_column("")
    t.add_row("data", data_summary)
    t.add_row("model", f"{arch}, {net.n_params:,} parameters, {net.dtype}")
    stop = history.stop_reason or "-"
    if history.best_epoch:
        stop += f"; kept the weights of epoch {history.best_epoch}"
    t.add_row("epochs", f"{history.epochs} ({stop})")
    t.add_row(
        "time",
        f"{results['train_seconds']:.1f} s training"
        + (
            f", {results['samples_per_second']:,} samples/s"
            if "samples_per_second" in results
            else ""
        )
        + f", {total_seconds:.1f} s in all",
    )
    if history.loss:
        last = f"loss {history.loss[-1]:.4f}"
        if history.accuracy:
            last += f", accuracy {history.accuracy[-1]:.4f}"
        t.add_row("last epoch", last)
    for part in ("validation", test_name.split(" ")[0]):
        r = results.get(part)
        if r is None:
            continue
        label = f"{part} ({r['n']:,})"
        if part == "train":
            label = f"training data ({r['n']:,}; no test set)"
        if classification:
            t.add_row(label, f"loss {r['loss']:.4f}, accuracy {r['accuracy']:.4f}")
        else:
            t.add_row(label, f"loss {r['loss']:.4g}, rmse {r['rmse']:.4g}, r2 {r['r2']:.4f}")
    saved = f"{out}"
    if history.interrupted:
        which = (
            f"the best weights (epoch {history.best_epoch})"
            if history.best_epoch
            else "the weights at the interruption"
        )
        saved += f" ({which})"
    t.add_row("model file", saved)
    if history_out:
        t.add_row("history", history_out)
    for p in plots_written:
        t.add_row("plot", p)
    console.print(t)
    if history.interrupted:
        which = (
            f"the best weights so far (epoch {history.best_epoch})"
            if history.best_epoch
            else "the weights so far"
        )
        console.print(f"interrupted: saved {which} to {out}", highlight=False)
    else:
        key = "test" if "test" in results else "train"
        r = results[key]
        what = f"accuracy {r['accuracy']:.4f}" if classification else f"rmse {r['rmse']:.4g}"
        where = "test" if key == "test" else "training-data"
        console.print(f"{where} {what}; model saved to {out}", highlight=False)


# --------------------------------------------------------------------------------------------
# evaluate / predict / info / plot
# --------------------------------------------------------------------------------------------


def _label_indices(labels: np.ndarray, classes: list, source: str) -> np.ndarray:
    """Map raw labels (ints or strings) to the model's class indices."""
    lookup = {c: i for i, c in enumerate(classes)}
    lookup_str = {str(c): i for i, c in enumerate(classes)}
    out = np.empty(len(labels), dtype=np.int64)
    for i, v in enumerate(labels.tolist()):
        k = lookup.get(v)
        if k is None:
            k = lookup_str.get(str(v))
        if k is None:
            shown = ", ".join(repr(c) for c in classes[:12]) + (
                ", ..." if len(classes) > 12 else ""
            )
            raise ValueError(
                f"{source}: label {v!r} (sample {i + 1}) is not one of the model's classes: {shown}"
            )
        out[i] = k
    return out


def _evaluation_data(args, metadata: dict):
    """(X raw, y raw labels or targets, description, image_shape) for ``evaluate``."""
    from .datasets import DATASET_NAMES, load_table

    training = metadata.get("training") or {}
    data_info = training.get("data") or {}
    source = args.data
    if source is None:
        source = data_info.get("source")
        if source is None or source.strip().lower() not in DATASET_NAMES:
            raise _Usage("give --data: the model does not name a built-in data set")
    key = source.strip().lower()
    key = {"fashion_mnist": "fashion-mnist", "fashion": "fashion-mnist"}.get(key, key)
    dtype = (metadata.get("config") or {}).get("dtype", "float32")
    if key in DATASET_NAMES:
        ds = _load_data(source, args, dtype)
        if args.split != "train" and ds.X_test is not None:
            X, y, part = ds.X_test, ds.y_test, "test"
        else:
            X, y, part = ds.X_train, ds.y_train, "train"
        if ds.task == "classification":
            y = np.asarray([ds.classes[k] for k in y.tolist()], dtype=object)
        return X, y, f"{ds.name} ({part}, {len(X):,} samples)", ds.image_shape
    if args.split is not None:
        raise _Usage(
            f"--split is for a built-in data set: a table file ({source}) is evaluated whole"
        )
    label_column = args.label_column if args.label_column is not None else -1
    t = load_table(source, label_column, dtype=dtype)
    if t.y is None:
        raise ValueError(
            f"{source}: no labels (only an array X); evaluate needs them: expected arrays 'X' "
            "and 'y'"
        )
    image_shape = t.image_shape or (
        tuple(data_info["image_shape"]) if data_info.get("image_shape") else None
    )
    return t.X, t.y, f"{source} ({len(t.X):,} samples)", image_shape


def cmd_evaluate(args) -> int:

    net = _load_mlp(args.model)
    meta = net.metadata
    x_scaler, y_scaler = _scalers(meta)
    X_raw, y_raw, desc, image_shape = _evaluation_data(args, meta)
    if X_raw.shape[1] != net.n_in:
        raise ValueError(f"{desc}: {X_raw.shape[1]} features, but the model expects {net.n_in}")
    X = _prepare_inputs(X_raw, x_scaler, net.dtype)
    training = meta.get("training") or {}
    loss_name = training.get("loss") or net.default_loss()
    classes = meta.get("classes")
    if classes is not None:
        y = _label_indices(np.asarray(y_raw), classes, desc.split(" (")[0])
        m = _classify_metrics(net, X, y, loss_name)
        result = {
            "model": os.fspath(args.model),
            "data": desc,
            "n": m["n"],
            "loss": m["loss"],
            "accuracy": m["accuracy"],
            "classes": classes,
            "per_class": m["per_class"],
            "confusion_matrix": m["confusion"].tolist(),
        }
    else:
        from .training import evaluate

        Y = np.asarray(y_raw, np.float64).reshape(len(y_raw), -1)
        if Y.shape[1] != net.n_out:
            raise ValueError(f"{desc}: {Y.shape[1]} targets, but the model has {net.n_out}")
        Yt = y_scaler.transform(Y, dtype=net.dtype) if y_scaler is not None else Y.astype(net.dtype)
        ev = evaluate(net, X, Yt, loss=loss_name)
        pred = _forward(net, X)
        if y_scaler is not None:
            pred = y_scaler.inverse_transform(pred, dtype=np.float64)
        result = {
            "model": os.fspath(args.model),
            "data": desc,
            "n": int(len(Y)),
            "loss": float(ev["loss"]),
            **_regression_metrics(pred, Y),
        }
    written = []
    if args.plot and classes is not None:
        from . import plots

        root, ext = _plot_base(args.plot)
        written.append(
            plots.plot_confusion(
                m["confusion"], classes, args.plot, title=f"{desc}: accuracy {m['accuracy']:.2%}"
            )
        )
        if image_shape is not None and len(image_shape) == 2:
            written.append(
                plots.plot_misclassified(
                    X_raw,
                    y,
                    m["pred"],
                    image_shape,
                    f"{root}-misclassified{ext}",
                    classes=classes,
                )
            )
    elif args.plot:
        raise ValueError("--plot draws a confusion matrix: the model is not a classifier")
    if args.json:
        import json

        result["plots"] = written
        print(json.dumps(json_safe(result), indent=1, allow_nan=False))
        return 0
    _print_evaluation(result, written)
    return 0


def _print_evaluation(result: dict, written: list[str]) -> None:
    from rich import box
    from rich.table import Table

    console = _console()
    console.print(f"model {result['model']} on {result['data']}")
    if "accuracy" not in result:
        console.print(
            f"loss {result['loss']:.6g}  rmse {result['rmse']:.6g}  mae {result['mae']:.6g}  "
            f"r2 {result['r2']:.4f}"
        )
        return
    console.print(f"loss {result['loss']:.4f}  accuracy {result['accuracy']:.4f}")
    classes = [str(c) for c in result["classes"]]
    t = Table(box=box.SIMPLE, title="per class", title_justify="left")
    for col in ("class", "precision", "recall", "f1", "support"):
        t.add_column(col, justify="left" if col == "class" else "right")
    for name, pc in zip(classes, result["per_class"], strict=True):
        t.add_row(
            name,
            f"{pc['precision']:.4f}",
            f"{pc['recall']:.4f}",
            f"{pc['f1']:.4f}",
            f"{pc['support']:,}",
        )
    console.print(t)
    cm = result["confusion_matrix"]
    if len(cm) <= 20:
        short = [c if len(c) <= 8 else c[:7] + "…" for c in classes]
        t = Table(
            box=box.SIMPLE,
            title="confusion matrix (rows: true, columns: predicted)",
            title_justify="left",
        )
        t.add_column("")
        for c in short:
            t.add_column(c, justify="right")
        for c, row in zip(short, cm, strict=True):
            t.add_row(c, *[str(v) for v in row])
        console.print(t)
    for p in written:
        console.print(f"plot: {p}")


def cmd_predict(args) -> int:
    import csv

    from .datasets import load_table

    if args.out and os.path.realpath(args.out) == os.path.realpath(args.model):
        raise _Usage(f"--out {args.out} is the model file: expected another name for the CSV")
    net = _load_mlp(args.model)
    meta = net.metadata
    x_scaler, y_scaler = _scalers(meta)
    dtype = str(net.dtype)
    label_column = args.label_column
    t = load_table(args.input, label_column, dtype=dtype)
    X_raw = t.X
    if X_raw.shape[1] != net.n_in:
        extra = ""
        if X_raw.shape[1] == net.n_in + 1 and label_column is None:
            extra = " (if one column is the label, pass --label-column)"
        raise ValueError(
            f"{args.input}: {X_raw.shape[1]} columns, but the model expects {net.n_in} "
            f"features{extra}"
        )
    A = _forward(net, _prepare_inputs(X_raw, x_scaler, net.dtype))
    classes = meta.get("classes")
    fmt = "%.9g" if net.dtype == np.float32 else "%.17g"
    if classes is not None:
        if args.proba:
            P = np.column_stack([1.0 - A[:, 0], A[:, 0]]) if A.shape[1] == 1 else A
            header = [str(c) for c in classes]
            rows = [[fmt % v for v in row] for row in P.tolist()]
        else:
            header = ["label"]
            rows = [[str(classes[k])] for k in _predicted_classes(A).tolist()]
    else:
        if args.proba:
            raise ValueError("--proba needs a classifier: this model predicts values")
        if y_scaler is not None:
            A = y_scaler.inverse_transform(A, dtype=np.float64)
        header = ["y"] if A.shape[1] == 1 else [f"y{k + 1}" for k in range(A.shape[1])]
        rows = [[fmt % v for v in row] for row in np.asarray(A, np.float64).tolist()]

    def write(fh):
        w = csv.writer(fh, lineterminator="\n")
        if not args.no_header:
            w.writerow(header)
        w.writerows(rows)

    if args.out:
        import io as _io

        from .callbacks import atomic_write_bytes

        buf = _io.StringIO()
        write(buf)
        atomic_write_bytes(args.out, buf.getvalue().encode())
        print(f"wrote {len(rows):,} predictions to {args.out}", file=sys.stderr)
    else:
        write(sys.stdout)
    return 0


def _fmt(value, spec: str) -> str:
    """A number from a model file's metadata, or "n/a" where it was not a finite number (model
    files store NaN and infinity as null)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, spec)
    return "n/a"


def _activation_label(spec) -> str:
    """An activation of a model config as text: its name, with its options (a leaky ReLU's
    slope) when the config stores them."""
    if not isinstance(spec, dict):
        return str(spec)
    opts = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "name")
    return f"{spec.get('name')}({opts})"


def cmd_info(args) -> int:
    from .io import read_metadata

    meta = read_metadata(args.model)
    if args.json:
        import json

        print(json.dumps(json_safe(meta), indent=1, allow_nan=False))
        return 0
    from rich import box
    from rich.table import Table

    console = _console()
    cfg = meta["config"]
    training = meta.get("training") or {}
    t = Table(title=f"{args.model}", box=box.SIMPLE_HEAVY, show_header=False, title_justify="left")
    t.add_column("", style="bold")
    t.add_column("")
    t.add_row(
        "format",
        f"backprop model, version {meta['format_version']} (safetensors), "
        f"{meta['file_size']:,} bytes",
    )
    if cfg.get("type") == "MLP":
        acts = [_activation_label(a) for a in cfg.get("activation") or []]
        act = acts[0] if acts and all(a == acts[0] for a in acts) else ",".join(acts) or "-"
        arch = "-".join(str(s) for s in cfg["sizes"])
        desc = f"MLP {arch}, {act} hidden, {_activation_label(cfg.get('output'))} output"
        drops = [d for d in cfg.get("dropout") or [] if d]
        if drops:
            desc += f", dropout {','.join(f'{d:g}' for d in cfg['dropout'])}"
    elif cfg.get("type") == "NeuralLM":  # backprop.lm (backprop lm train)
        desc = (
            f"neural language model: n = {cfg['order']}, m = {cfg['dim']}, h = {cfg['hidden']}, "
            f"direct connections {'on' if cfg.get('direct') else 'off'}, |V| = {cfg['n_vocab']:,}"
        )
    else:
        desc = "Sequential: " + ", ".join(layer.get("type", "?") for layer in cfg["layers"])
    t.add_row("architecture", desc)
    t.add_row("dtype", str(cfg.get("dtype")))
    t.add_row(
        "parameters",
        f"{meta['n_params']:,}: "
        + ", ".join(f"{k} {tuple(v['shape'])}" for k, v in meta["tensors"].items()),
    )
    classes = meta.get("classes")
    if classes is not None:
        shown = ", ".join(str(c) for c in classes[:20]) + (" ..." if len(classes) > 20 else "")
        t.add_row("classes", f"{len(classes)}: {shown}")
    pre = meta.get("preprocessing") or {}
    for part in ("input", "target"):
        c = pre.get(part)
        if c:
            if c.get("type") == "scale":
                s = f"divide by {c['factor']:g}"
            elif c.get("type") == "standardizer":
                s = f"standardize ({len(c.get('mean', []))} features)"
            else:
                s = str(c.get("type"))
            t.add_row(f"{part} scaling", s)
    data = training.get("data") or {}
    if data:
        t.add_row(
            "data",
            f"{data.get('name')} ({data.get('task')}), {data.get('n_train', 0):,} training samples",
        )
    if training:
        bits = [f"{training.get('optimizer')}"]
        if training.get("lr") is not None:
            bits.append(f"lr {_fmt(training['lr'], 'g')}")
        if training.get("schedule"):
            bits.append(f"{training['schedule']} schedule")
        for k in ("batch_size", "epochs", "l2", "dropout", "seed"):
            if training.get(k) not in (None, 0, 0.0):
                bits.append(f"{k.replace('_', ' ')} {training[k]}")
        if training.get("early_stopping"):
            bits.append(f"early stopping (patience {training.get('patience')})")
        t.add_row("training", ", ".join(bits))
        res = training.get("results") or {}
        if res:
            line = f"{res.get('epochs_run')} epochs, {res.get('stop_reason', '')}"
            if res.get("interrupted"):
                line += " (interrupted)"
            t.add_row("run", line)
            if "test_ppl" in res:  # a language model
                t.add_row(
                    "perplexity",
                    f"valid {_fmt(res.get('best_valid_ppl'), '.1f')}, "
                    f"test {_fmt(res['test_ppl'], '.1f')}",
                )
            for part in ("validation", "test", "train"):
                r = res.get(part)
                if r:
                    if "accuracy" in r:
                        t.add_row(
                            part,
                            f"loss {_fmt(r['loss'], '.4f')}, accuracy {_fmt(r['accuracy'], '.4f')}",
                        )
                    else:
                        t.add_row(
                            part,
                            f"loss {_fmt(r['loss'], '.4g')}, rmse {_fmt(r.get('rmse'), '.4g')}",
                        )
    hist = meta.get("history")
    if hist:
        t.add_row(
            "history", f"{len(hist.get('loss', []))} epochs recorded ('backprop plot' draws them)"
        )
    if meta.get("extra"):
        t.add_row("extra", ", ".join(sorted(meta["extra"])))
    console.print(t)
    return 0


def cmd_plot(args) -> int:
    from .callbacks import History
    from .plots import plot_history

    src = Path(args.source)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no such file")
    with open(src, "rb") as fh:
        head = fh.read(64).lstrip()
    if head.startswith((b"{", b"[")):  # JSON; a model file starts with its header's length
        hist = History.load_json(src)
    else:
        from .io import read_metadata

        meta = read_metadata(src)
        if not meta.get("history"):
            raise ValueError(f"{src}: the model file has no training history")
        hist = History.from_dict(meta["history"])
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_time"):
        values = getattr(hist, key)
        if not isinstance(values, list):
            raise ValueError(f"{src}: {key!r} holds {values!r}; expected a list of numbers")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"{src}: {key!r} holds {v!r}; expected numbers")
    title = args.title if args.title is not None else src.name
    out = plot_history(hist, args.out, title=title)
    print(f"wrote {out}")
    return 0


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args:
        msg = f"missing key {exc.args[0]!r}"
    elif isinstance(exc, OSError) and exc.strerror and exc.filename:
        msg = f"{exc.filename}: {exc.strerror}"
    else:
        msg = str(exc)
    msg = " ".join(msg.split()) or type(exc).__name__
    if not isinstance(exc, (ValueError, TypeError, OSError, KeyError, RuntimeError)):
        msg = f"{type(exc).__name__}: {msg} (run with --debug for the traceback)"
    return msg


def main(argv: list[str] | None = None) -> int:
    """Run the ``backprop`` command with ``argv`` (default ``sys.argv[1:]``); return the exit
    code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    debug = "--debug" in argv[:cut]
    if debug:
        argv = [a for i, a in enumerate(argv) if not (a == "--debug" and i < cut)]
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        with _blas_threads(getattr(args, "threads", None)):
            return int(args.func(args) or 0)
    except _Usage as exc:
        if debug:
            raise
        print(f"backprop {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if debug:
            raise
        print("backprop: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # e.g. 'backprop predict ... | head': not an error.
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        except OSError:
            pass
        return 0
    except Exception as exc:
        if debug:
            raise
        print(f"backprop: error: {_one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
