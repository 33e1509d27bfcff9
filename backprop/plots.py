"""Figures as PNG files: learning curves, decision boundaries, fitted curves, confusion matrices
and misclassified images.

Matplotlib is imported only when a figure is drawn, and only its object API is used
(``matplotlib.figure.Figure`` drawn by the Agg canvas): nothing here touches ``pyplot``, a
global backend or an open window, so the functions are safe in scripts, servers and tests. Each
function writes the PNG atomically (temporary file + rename) and returns the path.

The plots only read: a :class:`~backprop.callbacks.History` (or its dict), a trained network's
``forward``, and arrays.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .callbacks import History, atomic_write_bytes

__all__ = [
    "plot_history",
    "plot_decision_boundary",
    "plot_fit",
    "plot_confusion",
    "plot_misclassified",
    "confusion_matrix",
]

_DPI = 110


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=_DPI, layout="constrained")


def image_format(path) -> str:
    """The image format that ``path``'s extension names (``png``, ``pdf``, ``svg``, ...; ``png``
    when there is none), or a ``ValueError`` listing the ones matplotlib writes."""
    from matplotlib.backend_bases import FigureCanvasBase

    ext = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    formats = FigureCanvasBase.get_supported_filetypes()
    if ext and ext not in formats:
        raise ValueError(
            f"{os.fspath(path)}: no image format for '.{ext}': expected one of "
            + ", ".join(f".{f}" for f in sorted(formats))
        )
    return ext or "png"


def _save(fig, path) -> str:
    """Write ``fig`` in the format its extension names, atomically (:func:`image_format`)."""
    fmt = image_format(path)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=_DPI)
    atomic_write_bytes(path, buf.getvalue())
    return os.fspath(path)


def _as_history(history: Any) -> History:
    if isinstance(history, History):
        return history
    if isinstance(history, dict):
        return History.from_dict(history)
    raise TypeError(f"history is a {type(history).__name__}: expected a History or its dict")


def _transform(preprocessing, X: np.ndarray, dtype) -> np.ndarray:
    if preprocessing is None:
        return np.asarray(X, dtype=dtype)
    return preprocessing.transform(X, dtype=dtype)


def _class_name(classes, k: int) -> str:
    return str(classes[k]) if classes is not None and k < len(classes) else str(k)


def plot_history(history, path, *, title: str | None = None) -> str:
    """Loss and accuracy per epoch, training and validation, side by side.

    Parameters
    ----------
    history : History or dict
        As returned by :func:`backprop.fit` (or stored in a model file).
    path : str or os.PathLike
        PNG to write.
    title : str, optional

    Returns
    -------
    str
        ``path``.

    The loss panel uses a logarithmic axis when all losses are positive; the epoch whose weights
    early stopping kept is marked with a dotted line.

    Examples
    --------
    >>> hist = fit(net, X, y, epochs=20, validation_data=(Xv, yv))  # doctest: +SKIP
    >>> plot_history(hist, "curves.png")  # doctest: +SKIP
    'curves.png'
    """
    h = _as_history(history)
    if not h.loss:
        raise ValueError("history has no epochs: expected at least one recorded loss")
    has_acc = bool(h.accuracy or h.val_accuracy)
    fig = _figure(10.0 if has_acc else 5.5, 3.8)
    axes = fig.subplots(1, 2 if has_acc else 1, squeeze=False)[0]
    panels = [("loss", h.loss, h.val_loss)]
    if has_acc:
        panels.append(("accuracy", h.accuracy, h.val_accuracy))
    for ax, (name, train, val) in zip(axes, panels, strict=True):
        for values, label, style in ((train, "training", "-"), (val, "validation", "--")):
            if values:
                epochs = np.arange(1, len(values) + 1)
                ax.plot(
                    epochs,
                    values,
                    style,
                    marker="o" if len(values) <= 30 else None,
                    markersize=3,
                    label=label,
                )
        finite = [v for v in list(train) + list(val) if math.isfinite(v)]
        if name == "loss" and finite and min(finite) > 0 and max(finite) / min(finite) > 20:
            ax.set_yscale("log")
        if h.best_epoch:
            ax.axvline(
                h.best_epoch, color="grey", linestyle=":", label=f"best (epoch {h.best_epoch})"
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_decision_boundary(
    net,
    X,
    y,
    path,
    *,
    preprocessing=None,
    classes: Sequence | None = None,
    resolution: int = 200,
    title: str | None = None,
) -> str:
    """The classes a network assigns over the plane, with the samples on top (2-D inputs).

    Parameters
    ----------
    net : Sequential or MLP
        A classifier with two inputs: softmax outputs (the predicted class is the argmax) or one
        sigmoid output (class 1 when ``a >= 0.5``).
    X : array (n_samples, 2)
        Samples in their raw units (the axes of the figure).
    y : array (n_samples,)
        Class indices.
    path : str or os.PathLike
    preprocessing : scaler, optional
        Applied to the grid before ``net.forward`` (as the model was trained).
    classes : sequence, optional
        Names of the class indices for the legend.
    resolution : int, default 200
        Grid points per axis.

    Returns
    -------
    str

    Examples
    --------
    >>> X, y = make_xor()  # doctest: +SKIP
    >>> plot_decision_boundary(net, X, y, "xor.png")  # doctest: +SKIP
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"X has shape {X.shape}: expected (n_samples, 2) for a 2-D boundary")
    if len(y) != len(X):
        raise ValueError(f"y has {len(y)} labels for {len(X)} samples: expected one each")
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = np.maximum(0.25 * (hi - lo), 0.25)
    g0 = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
    g1 = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
    G0, G1 = np.meshgrid(g0, g1)
    grid = np.column_stack([G0.ravel(), G1.ravel()])
    A = net.forward(_transform(preprocessing, grid, net.dtype))
    if A.shape[1] == 1:
        score = A[:, 0].reshape(G0.shape).astype(np.float64)
        pred = (score >= 0.5).astype(int)
        n_classes = 2
    else:
        pred = A.argmax(axis=1).reshape(G0.shape)
        score = A.max(axis=1).reshape(G0.shape).astype(np.float64)
        n_classes = A.shape[1]
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    fig = _figure(5.6, 4.8)
    ax = fig.subplots()
    levels = np.arange(n_classes + 1) - 0.5
    ax.contourf(G0, G1, pred, levels=levels, cmap=cmap, vmin=-0.5, vmax=9.5, alpha=0.35)
    if A.shape[1] == 1:
        cs = ax.contour(G0, G1, score, levels=[0.5], colors="k", linewidths=1.2)
        ax.clabel(cs, fmt={0.5: "a = 0.5"}, fontsize=8)
    for k in np.unique(y):
        m = y == k
        ax.scatter(
            X[m, 0],
            X[m, 1],
            color=cmap(int(k) % 10),
            edgecolor="k",
            s=40,
            label=f"class {_class_name(classes, int(k))}",
            zorder=3,
        )
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.legend(loc="best", fontsize=8)
    ax.set_title(title or "decision regions")
    return _save(fig, path)


def plot_fit(
    net,
    X,
    y,
    path,
    *,
    preprocessing=None,
    target_preprocessing=None,
    true_fn=None,
    title: str | None = None,
) -> str:
    """A 1-D regression: the samples and the network's curve over their range.

    Parameters
    ----------
    net : Sequential or MLP
        One input, one output.
    X : array (n_samples, 1)
    y : array (n_samples,) or (n_samples, 1)
    path : str or os.PathLike
    preprocessing : scaler, optional
        Applied to the inputs before ``net.forward``.
    target_preprocessing : scaler, optional
        Its ``inverse_transform`` maps the network's outputs back to the units of ``y``.
    true_fn : callable, optional
        ``x -> y`` drawn for reference (e.g. ``x + 0.3 sin(2 pi x)``).

    Returns
    -------
    str

    Examples
    --------
    >>> X, y = make_curve(100, seed=0)  # doctest: +SKIP
    >>> def curve(x):
    ...     return x + 0.3 * np.sin(2 * np.pi * x)
    >>> plot_fit(net, X, y, "fit.png", true_fn=curve)  # doctest: +SKIP
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 1:
        raise ValueError(f"X has shape {X.shape}: expected (n_samples, 1) for a 1-D fit")
    y = y.reshape(len(y), -1)
    if len(y) != len(X) or y.shape[1] != 1:
        raise ValueError(f"y has shape {y.shape}: expected ({len(X)},) to match X")
    lo, hi = float(X.min()), float(X.max())
    pad = 0.05 * (hi - lo) or 0.5
    grid = np.linspace(lo - pad, hi + pad, 400).reshape(-1, 1)
    out = net.forward(_transform(preprocessing, grid, net.dtype))
    if target_preprocessing is not None:
        out = target_preprocessing.inverse_transform(out, dtype=np.float64)
    fig = _figure(6.0, 4.2)
    ax = fig.subplots()
    ax.scatter(X[:, 0], y[:, 0], s=14, color="tab:blue", alpha=0.7, label="data")
    ax.plot(
        grid[:, 0], np.asarray(out, dtype=np.float64)[:, 0], color="tab:red", lw=2, label="network"
    )
    if true_fn is not None:
        ax.plot(grid[:, 0], true_fn(grid[:, 0]), "k--", lw=1, label="true function")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title or "fit")
    return _save(fig, path)


def confusion_matrix(y_true, y_pred, n_classes: int | None = None) -> np.ndarray:
    """Counts ``cm[i, j]`` of samples of true class ``i`` predicted as class ``j``.

    Parameters
    ----------
    y_true, y_pred : array (n_samples,) of int
        Class indices ``0 .. n_classes - 1``.
    n_classes : int, optional
        Default: one more than the largest index seen.

    Returns
    -------
    ndarray of shape (n_classes, n_classes), int64

    Examples
    --------
    >>> confusion_matrix([0, 1, 1], [0, 1, 0]).tolist()
    [[1, 0], [1, 1]]
    """
    t = np.asarray(y_true).astype(np.int64).ravel()
    p = np.asarray(y_pred).astype(np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels and y_pred {p.size}: expected the same")
    if t.size and min(t.min(), p.min()) < 0:
        raise ValueError("class indices must be >= 0")
    k = n_classes if n_classes is not None else int(max(t.max(initial=-1), p.max(initial=-1))) + 1
    if t.size and max(t.max(), p.max()) >= k:
        raise ValueError(f"a class index is >= n_classes={k}")
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def plot_confusion(cm, classes: Sequence | None, path, *, title: str | None = None) -> str:
    """A confusion matrix as a heat map, counts written in the cells, recall per row.

    Parameters
    ----------
    cm : array (n_classes, n_classes)
        ``cm[i, j]``: samples of true class ``i`` predicted as ``j`` (see
        :func:`confusion_matrix`).
    classes : sequence or None
        Names of the classes (default ``0 .. n_classes - 1``).
    path : str or os.PathLike

    Returns
    -------
    str

    Examples
    --------
    >>> plot_confusion(confusion_matrix(y, pred), ["cat", "dog"], "cm.png")  # doctest: +SKIP
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(f"cm has shape {cm.shape}: expected a square (n_classes, n_classes)")
    k = cm.shape[0]
    if classes is not None and len(classes) != k:
        raise ValueError(f"{len(classes)} class names for a {k}x{k} matrix: expected {k}")
    names = [_class_name(classes, i) for i in range(k)]
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=np.float64), where=rows > 0)
    size = min(3.0 + 0.55 * k, 14.0)
    fig = _figure(size + 1.0, size)
    ax = fig.subplots()
    im = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of the true class")
    if k <= 30:
        for i in range(k):
            for j in range(k):
                if cm[i, j]:
                    ax.text(
                        j,
                        i,
                        str(int(cm[i, j])),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if frac[i, j] > 0.5 else "black",
                    )
    ax.set_xticks(
        range(k),
        names,
        rotation=45 if max(map(len, names)) > 2 else 0,
        ha="right" if max(map(len, names)) > 2 else "center",
    )
    ax.set_yticks(range(k), names)
    # (No y label: with rotated x tick labels matplotlib places it outside the figure.)
    ax.set_xlabel("predicted class (rows: true class)")
    total = cm.sum()
    acc = np.trace(cm) / total if total else float("nan")
    ax.set_title(title or f"confusion matrix (accuracy {acc:.2%})")
    return _save(fig, path)


def plot_misclassified(
    X,
    y_true,
    y_pred,
    image_shape: Sequence[int],
    path,
    *,
    classes: Sequence | None = None,
    max_images: int = 36,
    title: str | None = None,
) -> str:
    """A grid of the first misclassified images, each titled ``true -> predicted``.

    Parameters
    ----------
    X : array (n_samples, prod(image_shape))
        Raw images flattened row by row.
    y_true, y_pred : array (n_samples,)
        Class indices.
    image_shape : (rows, cols)
    path : str or os.PathLike
    classes : sequence, optional
        Class names.
    max_images : int, default 36

    Returns
    -------
    str
        When nothing is misclassified the figure says so.

    Examples
    --------
    >>> plot_misclassified(X_test, y_test, pred, (28, 28), "errors.png")  # doctest: +SKIP
    """
    X = np.asarray(X)
    t = np.asarray(y_true).ravel()
    p = np.asarray(y_pred).ravel()
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 2 or X.ndim != 2 or X.shape[1] != shape[0] * shape[1]:
        raise ValueError(
            f"X has shape {X.shape}: expected (n_samples, {math.prod(shape)}) images of "
            f"shape {shape}"
        )
    if not (len(t) == len(p) == len(X)):
        raise ValueError(
            f"{len(X)} images, {len(t)} true and {len(p)} predicted labels: expected equal"
        )
    wrong = np.flatnonzero(t != p)[: int(max_images)]
    n = len(wrong)
    cols = min(max(n, 1), 9)
    rows = max(1, math.ceil(n / cols))
    fig = _figure(1.3 * cols + 0.4, 1.45 * rows + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, i in zip(axes.ravel(), wrong, strict=False):
        ax.imshow(X[i].reshape(shape), cmap="gray_r")
        ax.set_title(
            f"{_class_name(classes, int(t[i]))} → {_class_name(classes, int(p[i]))}", fontsize=7
        )
    if n == 0:
        axes[0, 0].text(0.5, 0.5, "no misclassified samples", ha="center", va="center")
    total = int((t != p).sum())
    fig.suptitle(title or f"misclassified: {total} of {len(t)} (true → predicted)", fontsize=9)
    return _save(fig, path)
