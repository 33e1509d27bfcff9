"""The lecture's figures, recomputed: each PNG reproduces (or measures) one claim of the notes.

======================  ============================================================================
name                    what it shows
======================  ============================================================================
universal_approximation one hidden layer with 10, 100 and 300 tanh units fitting a 1-D function
                        (seed 002: "hidden = 10, 100, 300"): the error falls as units are added
xor_boundary            the decision boundary of a 2-2-1 network on XOR as training goes (frames and
                        an animated GIF), and a run that stays stuck (seed 002)
gd_parabola             gradient descent on f(x) = x^2 (seed 003) with a too-small, a good and a
                        divergent learning rate; x_t = (1 - 2 eta)^t x_0
lr_schedules            the learning-rate schedules of seed 003 over the training steps
optimizer_paths         SGD, momentum, AdaGrad, RMSprop, Adam and RAdam on the Rosenbrock function
minibatch               the mini-batch table of seed 003 measured: time per update, epoch time,
                        gradient noise, loss and test accuracy after a fixed budget, per batch size
critical_points         the Hessian at a constructed saddle, a trained minimum and a degenerate
                        (symmetric) minimum: eigenvalues and the verdict (seed 003)
======================  ============================================================================

:func:`make_figures` writes them all (``backprop figures --out docs/img/gallery``); each
``figure_<name>(out_dir, quick=False, seed=0)`` writes one and returns a :class:`FigureResult`
with the files and the measured numbers. ``quick=True`` uses tiny budgets (for tests): the
figures are drawn, the numbers are not meaningful.

Matplotlib is imported only when a figure is drawn, and only its object API
(``matplotlib.figure.Figure`` on the Agg canvas) is used: no ``pyplot``, no global backend.
Files are written atomically.
"""

from __future__ import annotations

import io
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .callbacks import Callback, atomic_write_bytes

__all__ = [
    "FigureResult",
    "FIGURES",
    "make_figures",
    "figure_universal_approximation",
    "figure_xor_boundary",
    "figure_gd_parabola",
    "figure_lr_schedules",
    "figure_optimizer_paths",
    "figure_minibatch",
    "figure_critical_points",
    "rosenbrock",
    "rosenbrock_grad",
]

DPI = 80


@dataclass
class FigureResult:
    """What one figure function wrote and measured.

    Attributes
    ----------
    name : str
    files : list of str
        Paths written (PNG, and a GIF for ``xor_boundary``).
    claim : str
        One line: the lecture's claim the figure reproduces.
    numbers : dict
        The measured values drawn in the figure (JSON-able).
    seconds : float
        Time taken.
    """

    name: str
    files: list[str]
    claim: str
    numbers: dict = field(default_factory=dict)
    seconds: float = 0.0


# -- helpers ----------------------------------------------------------------------------------


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _png_bytes(fig, dpi: int = DPI) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _save(fig, path: Path) -> str:
    return _write(path, _png_bytes(fig))


def _write(path: Path, data: bytes) -> str:
    """Write a figure file atomically, creating its folder (``figure_*(out_dir)`` called on a
    folder that does not exist yet, as :func:`make_figures` does)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    return os.fspath(path)


def _one_thread():
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


class _Snapshots(Callback):
    """Keeps a copy of the parameters at the end of chosen epochs."""

    def __init__(self, epochs):
        self.epochs = set(epochs)
        self.params: dict[int, dict] = {}

    def on_epoch_end(self, trainer, epoch, logs):
        if epoch in self.epochs:
            self.params[epoch] = trainer.net.get_params()


# -- 1. universal approximation -----------------------------------------------------------------


def _chirp(x):
    """The target of the universal-approximation figure: ``sin(2 pi 8 x^2)`` on [0, 1]."""
    return np.sin(2.0 * np.pi * 8.0 * x * x)


def figure_universal_approximation(out_dir, *, quick: bool = False, seed: int = 0):
    """One hidden layer with 10, 100 and 300 tanh units fitting ``sin(2 pi 8 x^2)`` on [0, 1].

    Each network (identity output, mean squared error) is trained by full-batch L-BFGS for the
    same budget (2000 iterations) on 500 evenly spaced points; the hidden units' transitions
    start spread over [0, 1] (``W1 ~ N(0, 20)``, ``b1 = -W1 c``, ``c ~ U(0, 1)``). The error on
    a finer grid falls as units are added: the universal approximation theorem's "enough hidden
    units", and its price.
    """
    from .layers import MLP
    from .training import fit

    t0 = time.perf_counter()
    hidden = (10, 100, 300)
    iters = 15 if quick else 2000
    n = 100 if quick else 500
    x = np.linspace(0.0, 1.0, n).reshape(-1, 1)
    y = _chirp(x)
    xt = np.linspace(0.0, 1.0, 2000).reshape(-1, 1)
    yt = _chirp(xt)
    fits, mse = {}, {}
    for H in hidden:
        net = MLP([1, H, 1], activation="tanh", output="identity", dtype="float64", seed=seed)
        rng = np.random.default_rng(seed)
        w = rng.normal(0.0, 20.0, size=H)
        net.params["W1"] = w[:, None]
        net.params["b1"] = -w * rng.uniform(0.0, 1.0, size=H)
        with _one_thread():
            fit(net, x, y, loss="mse", optimizer="lbfgs", epochs=iters, tol=1e-12)
        fits[H] = net.forward(xt)[:, 0]
        mse[H] = float(np.mean((fits[H] - yt[:, 0]) ** 2))
    fig = _figure(11, 5.2)
    axes = fig.subplots(2, 3, sharex=True, height_ratios=[2, 1])
    for k, H in enumerate(hidden):
        ax = axes[0, k]
        ax.plot(xt[:, 0], yt[:, 0], color="0.6", lw=3, label="target sin(2π·8x²)")
        ax.plot(xt[:, 0], fits[H], color="C3", lw=1.2, label=f"{H} hidden units")
        ax.set_title(f"hidden = {H}: MSE {mse[H]:.2g}")
        ax.set_ylim(-1.6, 1.6)
        ax.legend(loc="lower left", fontsize=8)
        err = np.abs(fits[H] - yt[:, 0])
        axes[1, k].semilogy(xt[:, 0], np.maximum(err, 1e-8), color="C0", lw=0.8)
        axes[1, k].set_ylim(1e-6, 3)
        axes[1, k].set_xlabel("x")
    axes[1, 0].set_ylabel("|error|")
    fig.suptitle(
        "Universal approximation: one tanh hidden layer, same L-BFGS budget "
        f"({iters} iterations, {n} points)"
    )
    path = _save(fig, Path(out_dir) / "universal_approximation.png")
    return FigureResult(
        "universal_approximation",
        [path],
        "One hidden layer approximates a continuous function, better with more units "
        "(10, 100, 300).",
        {"mse": {str(h): m for h, m in mse.items()}, "iterations": iters, "points": n},
        time.perf_counter() - t0,
    )


# -- 2. XOR ------------------------------------------------------------------------------------


def _xor_grid(m: int = 61):
    g = np.linspace(-0.5, 1.5, m)
    gx, gy = np.meshgrid(g, g)
    return gx, gy, np.column_stack([gx.ravel(), gy.ravel()])


def _draw_xor(ax, net, params, X, y, title, grid):
    gx, gy, pts = grid
    net.set_params(params)
    p = net.forward(pts)[:, 0].reshape(gx.shape)
    ax.contourf(gx, gy, p, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.75)
    ax.contour(gx, gy, p, levels=[0.5], colors="k", linewidths=1.5)
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap="RdBu_r", edgecolors="k", s=70, vmin=0, vmax=1)
    ax.set_xticks([0, 1])
    ax.set_yticks([0, 1])
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)


def figure_xor_boundary(out_dir, *, quick: bool = False, seed: int = 0, gif: bool = True):
    """The decision boundary of a 2-2-1 network (tanh hidden, sigmoid output, binary
    cross-entropy) on XOR, trained by batch gradient descent (learning rate 0.5) as the notes
    describe, at several epochs; top row a run that solves XOR, bottom row one that stays in a
    poor local minimum (accuracy 50%). Also an animated GIF of the successful run.
    """
    from .datasets import make_xor
    from .layers import MLP
    from .training import evaluate, fit

    t0 = time.perf_counter()
    X, y = make_xor(dtype="float64")
    epochs = 40 if quick else 1500
    frames = [0, 5, 10, 20, 40] if quick else [0, 50, 200, 500, 1500]
    runs = {"solved": 1, "stuck": 0}  # first network seeds tried (offset by seed)
    grid = _xor_grid(31 if quick else 81)
    fig = _figure(11, 4.8)
    axes = fig.subplots(2, len(frames))
    numbers = {}
    gif_params = []
    gif_every = max(1, epochs // (8 if quick else 40))
    for row, (label, first) in enumerate(runs.items()):
        # The rows are labelled by their outcome: from another --seed the first network seed
        # tried may solve XOR where "stuck" is wanted (or the reverse), so try the next ones.
        for s in range(first + seed, first + seed + (1 if quick else 20)):
            net = MLP([2, 2, 1], activation="tanh", output="sigmoid", dtype="float64", seed=s)
            snaps = _Snapshots(set(frames) | set(range(gif_every, epochs + 1, gif_every)))
            snaps.params[0] = net.get_params()
            fit(net, X, y, optimizer="sgd", lr=0.5, epochs=epochs, batch_size=4, shuffle=False,
                callbacks=[snaps])  # fmt: skip
            res = evaluate(net, X, y)
            if (res["accuracy"] == 1.0) == (label == "solved"):
                break
        numbers[label] = {"seed": s, "loss": res["loss"], "accuracy": res["accuracy"]}
        for k, ep in enumerate(frames):
            net.set_params(snaps.params[ep])
            ev = evaluate(net, X, y)
            title = f"epoch {ep}: loss {ev['loss']:.3f}, acc {ev['accuracy']:.0%}"
            _draw_xor(axes[row, k], net, snaps.params[ep], X, y, title, grid)
        axes[row, 0].set_ylabel(f"{label} (seed {s})")
        if label == "solved":
            gif_params = [(ep, snaps.params[ep]) for ep in sorted(snaps.params)]
            gif_net = net
    fig.suptitle(
        "XOR with a 2-2-1 network: the decision boundary (black, p = 0.5) as training goes"
    )
    files = [_save(fig, Path(out_dir) / "xor_boundary.png")]
    if gif:
        files.append(_xor_gif(Path(out_dir) / "xor_boundary.gif", gif_net, gif_params, X, y))
    return FigureResult(
        "xor_boundary",
        files,
        "A hidden layer lets the network separate XOR; gradient descent bends the boundary "
        "step by step (and can get stuck).",
        numbers,
        time.perf_counter() - t0,
    )


def _xor_gif(path: Path, net, params_list, X, y) -> str:
    from PIL import Image

    from .training import evaluate

    grid = _xor_grid(41)
    images = []
    for ep, params in params_list:
        fig = _figure(2.6, 2.8)
        ax = fig.subplots()
        net.set_params(params)
        ev = evaluate(net, X, y)
        _draw_xor(ax, net, params, X, y, f"epoch {ep}: loss {ev['loss']:.3f}", grid)
        images.append(Image.open(io.BytesIO(_png_bytes(fig, dpi=60))).convert("RGB"))
    pal = [im.quantize(colors=64) for im in images]
    buf = io.BytesIO()
    pal[0].save(buf, format="GIF", save_all=True, append_images=pal[1:], duration=120, loop=0,
                optimize=True)  # fmt: skip
    return _write(path, buf.getvalue())


# -- 3. gradient descent on x^2 ----------------------------------------------------------------


def figure_gd_parabola(out_dir, *, quick: bool = False, seed: int = 0):
    """Gradient descent on ``f(x) = x^2`` from ``x_0 = 4`` (the notes' ``gradient_descent``,
    seed 003) with learning rates 0.05 (too small), 0.3 (good) and 1.05 (divergent), run by
    the library's SGD. Since ``f'(x) = 2x``, ``x_{t+1} = (1 - 2 eta) x_t``: it converges iff
    ``0 < eta < 1``, fastest at ``eta = 0.5``.
    """
    from .optimizers import SGD

    t0 = time.perf_counter()
    x0, steps = 4.0, (6 if quick else 12)
    rates = {"too small": 0.05, "good": 0.3, "divergent": 1.05}
    paths = {}
    for label, lr in rates.items():
        x = np.array([x0])
        opt = SGD(lr=lr)
        xs = [x0]
        for _ in range(steps):
            opt.step({"x": x}, {"x": 2.0 * x})
            xs.append(float(x[0]))
        paths[label] = np.array(xs)
    fig = _figure(12, 3.3)
    axes = fig.subplots(1, 4)
    grid = np.linspace(-13, 13, 400)
    for ax, (label, lr) in zip(axes[:3], rates.items(), strict=True):
        xs = paths[label]
        ax.plot(grid, grid**2, color="0.6")
        ax.plot(xs, xs**2, "o-", color="C3", ms=4, lw=1)
        ax.set_title(f"η = {lr} ({label}): x_{steps} = {xs[-1]:.3g}", fontsize=10)
        lim = 1.1 * max(abs(xs).max(), 4.5)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-0.05 * lim**2, 1.05 * lim**2)
        ax.set_xlabel("x")
    axes[0].set_ylabel("f(x) = x²")
    ax = axes[3]
    t = np.arange(steps + 1)
    for k, (label, lr) in enumerate(rates.items()):
        ax.semilogy(t, np.abs(paths[label]), "o", ms=4, color=f"C{k}", label=f"η = {lr}")
        ax.semilogy(t, x0 * abs(1 - 2 * lr) ** t, "-", lw=0.8, color=f"C{k}")
    ax.set_title("|x_t| and |1 − 2η|^t x₀ (lines)", fontsize=10)
    ax.set_xlabel("step t")
    ax.legend(fontsize=8)
    fig.suptitle("Gradient descent on f(x) = x²: x ← x − η f'(x) = (1 − 2η) x")
    path = _save(fig, Path(out_dir) / "gd_parabola.png")
    return FigureResult(
        "gd_parabola",
        [path],
        "Too small a learning rate crawls, a good one converges fast, too large a one diverges.",
        {
            "x0": x0,
            "steps": steps,
            "final_x": {str(lr): float(paths[label][-1]) for label, lr in rates.items()},
        },
        time.perf_counter() - t0,
    )


# -- 4. learning-rate schedules ----------------------------------------------------------------


def figure_lr_schedules(out_dir, *, quick: bool = False, seed: int = 0):
    """The learning-rate schedules of seed 003 (peak 0.1, T = 1000 steps): the notes' "step
    decay" ``eta / sqrt(t + 1)``, linear ``eta (1 - t/T)``, exponential ``eta e^{-kt}``
    (k = 0.005), cosine ``eta (1 + cos(pi t / T)) / 2``, warm-up (100 steps) then cosine, and
    for comparison the classic step decay (halve every 200 steps) and a constant rate; all from
    :mod:`backprop.schedules`.
    """
    from . import schedules as S

    t0 = time.perf_counter()
    T, lr = (100 if quick else 1000), 0.1
    scheds = {
        "constant": S.constant(lr),
        "η/√(t+1) (notes' step decay)": S.inverse_sqrt(lr),
        "step: ×0.5 every T/5": S.step_decay(lr, gamma=0.5, every=T // 5),
        "linear": S.linear(lr, total_steps=T),
        "exponential (k = 5/T)": S.exponential(lr, k=5.0 / T),
        "cosine": S.cosine(lr, total_steps=T),
        "warm-up T/10, then cosine": S.warmup(T // 10, S.cosine(lr, total_steps=T - T // 10)),
    }
    steps = np.arange(T + 1)
    values = {name: np.array([s(int(t)) for t in steps]) for name, s in scheds.items()}
    fig = _figure(11, 3.8)
    axes = fig.subplots(1, 2)
    for k, (name, v) in enumerate(values.items()):
        ls = "--" if name == "constant" else "-"
        axes[0].plot(steps, v, ls, color=f"C{k}", label=name, lw=1.5)
        axes[1].semilogy(steps, np.maximum(v, 1e-5), ls, color=f"C{k}", lw=1.5)
    axes[0].set_ylabel("learning rate")
    axes[1].set_ylim(1e-4, 0.2)
    for ax in axes:
        ax.set_xlabel("optimizer step t")
    axes[0].legend(fontsize=8)
    axes[1].set_title("log scale", fontsize=10)
    fig.suptitle(f"Learning-rate schedules (peak η = {lr}, T = {T} steps)")
    path = _save(fig, Path(out_dir) / "lr_schedules.png")
    mid = T // 2
    return FigureResult(
        "lr_schedules",
        [path],
        "Decay schedules start large and end small; warm-up first increases, then decreases.",
        {name: {"t=0": v[0], f"t={mid}": v[mid], f"t={T}": v[T]} for name, v in values.items()},
        time.perf_counter() - t0,
    )


# -- 5. optimizers on Rosenbrock ---------------------------------------------------------------


def rosenbrock(p):
    """``f(x, y) = (1 - x)^2 + 100 (y - x^2)^2``; minimum 0 at (1, 1)."""
    x, y = p[..., 0], p[..., 1]
    return (1 - x) ** 2 + 100.0 * (y - x * x) ** 2


def rosenbrock_grad(p):
    """Gradient of :func:`rosenbrock` at a point ``p`` of shape (2,)."""
    x, y = p
    return np.array([-2.0 * (1 - x) - 400.0 * x * (y - x * x), 200.0 * (y - x * x)])


_ROSEN_GRID = {
    "sgd": (5e-4, 1e-3, 2e-3),
    "momentum": (1e-4, 2e-4, 3e-4),
    "adagrad": (0.3, 1.0, 3.0),
    "rmsprop": (1e-3, 3e-3, 1e-2),
    "adam": (0.01, 0.03, 0.1),
    "radam": (0.002, 0.005, 0.01),
}
_ROSEN_START = (-1.2, 1.0)


def _rosen_run(name, lr, steps, start):
    from .optimizers import get_optimizer

    opt = get_optimizer(name, lr=lr)
    p = np.array(start, dtype=np.float64)
    path = [p.copy()]
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            opt.step({"p": p}, {"p": rosenbrock_grad(p)})
            if not np.all(np.isfinite(p)) or np.abs(p).max() > 1e3:
                return np.array(path), False
            path.append(p.copy())
    return np.array(path), True


def figure_optimizer_paths(out_dir, *, quick: bool = False, seed: int = 0):
    """Paths of SGD, momentum (0.9), AdaGrad, RMSprop, Adam and RAdam on the Rosenbrock function
    from the classic start (-1.2, 1), 3000 steps each. Each optimizer gets the best learning
    rate of a small grid (final distance to the minimum (1, 1); runs that diverge are
    discarded), so the comparison is of methods, not of one lucky setting. RAdam's first steps
    are plain momentum SGD (its variance estimate is not defined yet), which caps the rate it
    survives on this steep valley.
    """
    t0 = time.perf_counter()
    steps = 60 if quick else 3000
    start = _ROSEN_START
    best = {}
    for name, grid in _ROSEN_GRID.items():
        cands = []
        for lr in grid[1:2] if quick else grid:
            path, ok = _rosen_run(name, lr, steps, start)
            if ok:
                cands.append((float(np.linalg.norm(path[-1] - 1.0)), lr, path))
        if cands:
            best[name] = min(cands, key=lambda c: c[0])
    fig = _figure(12, 5)
    axes = fig.subplots(1, 2, width_ratios=[1.3, 1])
    gx, gy = np.meshgrid(np.linspace(-2, 2, 300), np.linspace(-1, 3, 300))
    f = rosenbrock(np.stack([gx, gy], axis=-1))
    axes[0].contour(gx, gy, np.log10(f + 1e-3), levels=20, cmap="Greys", linewidths=0.6)
    axes[0].plot([1], [1], "*", color="gold", ms=16, mec="k", zorder=5)
    axes[0].plot([start[0]], [start[1]], "ko", ms=5)
    for k, (name, (dist, lr, path)) in enumerate(best.items()):
        label = f"{name} (η = {lr:g}): |p − (1,1)| = {dist:.1e}"
        axes[0].plot(path[:, 0], path[:, 1], "-", color=f"C{k}", lw=1.2, label=label)
        d = np.linalg.norm(path - 1.0, axis=1)
        axes[1].loglog(np.arange(1, len(d) + 1), np.maximum(d, 1e-12), color=f"C{k}", label=name)
    axes[0].set_xlim(-2, 2)
    axes[0].set_ylim(-1, 3)
    axes[0].legend(fontsize=7.5, loc="lower right")
    axes[0].set_title(f"paths from {start}; contours of log f", fontsize=10)
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("distance to the minimum (1, 1)")
    axes[1].set_title(f"{steps} steps, best η of a small grid each", fontsize=10)
    fig.suptitle("Optimizers on the Rosenbrock function f = (1 − x)² + 100 (y − x²)²")
    path = _save(fig, Path(out_dir) / "optimizer_paths.png")
    return FigureResult(
        "optimizer_paths",
        [path],
        "On the curved Rosenbrock valley Adam reaches the minimum; SGD, momentum, AdaGrad and "
        "RMSprop are still crawling along it after 3000 steps.",
        {name: {"lr": lr, "final_distance": dist} for name, (dist, lr, _) in best.items()},
        time.perf_counter() - t0,
    )


# -- 6. the mini-batch table, measured ---------------------------------------------------------


def _gradient_noise(net64, Xtr, Ytr, sizes, rng, n_batches):
    """Measured and predicted ``E ||g_B - g||^2 / ||g||^2`` for batches drawn without
    replacement, at the network's current point."""
    _, g = net64.loss_and_grad(Xtr, Ytr, loss="cross_entropy", training=False)
    g = np.concatenate([v.ravel() for v in g.values()])
    N = len(Xtr)
    per = np.empty((N, g.size))
    for i in range(N):
        _, gi = net64.loss_and_grad(Xtr[i : i + 1], Ytr[i : i + 1], loss="cross_entropy")
        per[i] = np.concatenate([v.ravel() for v in gi.values()])
    spread = float(np.mean(np.sum((per - g) ** 2, axis=1)))
    gg = float(g @ g)
    measured, predicted = {}, {}
    for B in sizes:
        vals = []
        for _ in range(n_batches if B < N else 1):
            idx = rng.choice(N, size=B, replace=False)
            gb = per[idx].mean(axis=0)
            vals.append(float(np.sum((gb - g) ** 2)))
        measured[B] = float(np.mean(vals)) / gg
        predicted[B] = (N - B) / (B * (N - 1)) * spread / gg
    return measured, predicted


def figure_minibatch(out_dir, *, quick: bool = False, seed: int = 0):
    """The mini-batch table of seed 003, measured on scikit-learn's digits (1,797 8x8 images,
    standardised; 1,500 for training, 297 held out), a 64-32-10 ReLU/softmax network, plain SGD
    with the same learning rate (0.05) for every batch size and a fixed budget of 5 epochs:

    - time per update and epoch time ("speed (sequential)", "one epoch time");
    - gradient noise ``E ||g_B - g||^2 / ||g||^2`` at the initial weights, measured over 200
      random batches and predicted by ``(N - B) / (B (N - 1)) * mean_i ||g_i - g||^2 / ||g||^2``
      ("gradient: noisy / stable");
    - training loss and held-out accuracy after the budget ("optimization", "generalization").

    The "parallel" row of the table is about GPUs and is not measured. Timings are wall-clock
    times of this machine on one BLAS thread (the table's "sequential" speed), the fastest of
    the 5 epochs (the least disturbed by other work on the machine).
    """
    from .datasets import load_digits
    from .layers import MLP
    from .training import evaluate, fit

    t0 = time.perf_counter()
    X, y = load_digits(dtype=np.float32)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X))
    n_train = 200 if quick else 1500
    tr, te = order[:n_train], order[n_train : n_train + (100 if quick else 297)]
    mu, sd = X[tr].mean(axis=0), X[tr].std(axis=0)
    sd[sd == 0] = 1.0
    Xs = (X - mu) / sd
    Xtr, ytr, Xte, yte = Xs[tr], y[tr], Xs[te], y[te]
    sizes = [1, 16, n_train] if quick else [1, 4, 16, 64, 256, n_train]
    epochs = 1 if quick else 5
    rows = {}
    for B in sizes:
        net = MLP([64, 32, 10], activation="relu", output="softmax", seed=seed)
        with _one_thread():  # the table's "sequential" speed; also steadier on a busy machine
            hist = fit(net, Xtr, ytr, optimizer="sgd", lr=0.05, epochs=epochs, batch_size=B,
                       seed=seed)  # fmt: skip
        ep_time = float(np.min(hist.epoch_time))  # the least disturbed epoch
        updates = math.ceil(n_train / B)
        rows[B] = {
            "epoch_time_s": ep_time,
            "update_time_ms": 1000.0 * ep_time / updates,
            "updates_per_epoch": updates,
            "train_loss": evaluate(net, Xtr, ytr)["loss"],
            "test_accuracy": evaluate(net, Xte, yte)["accuracy"],
        }
    net64 = MLP([64, 32, 10], activation="relu", output="softmax", dtype="float64", seed=seed)
    Ytr = np.eye(10)[ytr]
    measured, predicted = _gradient_noise(
        net64, Xtr.astype(np.float64), Ytr, sizes, rng, 20 if quick else 200
    )
    for B in sizes:
        rows[B]["gradient_noise"] = measured[B]
        rows[B]["gradient_noise_predicted"] = predicted[B]

    Bs = np.array(sizes, dtype=float)
    fig = _figure(13, 6.4)
    axes = fig.subplots(2, 3)
    col = [rows[B] for B in sizes]

    def panel(ax, key, title, ylabel, log=True):
        ax.plot(Bs, [r[key] for r in col], "o-", color="C0")
        ax.set_xscale("log")
        if log:
            ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        ax.set_xlabel("batch size B")

    panel(axes[0, 0], "update_time_ms", "speed (sequential): time per update", "ms")
    panel(axes[0, 1], "epoch_time_s", "one epoch time", "s")
    ax = axes[0, 2]
    nz = [B for B in sizes if B < n_train]
    ax.loglog(nz, [rows[B]["gradient_noise"] for B in nz], "o", color="C0", label="measured")
    ax.loglog(nz, [rows[B]["gradient_noise_predicted"] for B in nz], "-", color="C1",
              label="(N−B)/(B(N−1)) · spread")  # fmt: skip
    ax.set_title("gradient noise E|g_B − g|² / |g|²", fontsize=10)
    ax.set_xlabel("batch size B")
    ax.legend(fontsize=8)
    panel(axes[1, 0], "train_loss", f"optimization: training loss after {epochs} epochs", "loss")
    panel(axes[1, 1], "test_accuracy", f"generalization: held-out accuracy after {epochs} "
          "epochs", "accuracy", log=False)  # fmt: skip
    ax = axes[1, 2]
    ax.axis("off")
    small, large = sizes[0], sizes[-1]
    mid = min(sizes, key=lambda B: rows[B]["train_loss"])
    verdicts = [
        ("Speed (sequential)", "small faster",
         rows[small]["update_time_ms"] < rows[large]["update_time_ms"]),
        ("One epoch time", "small slower",
         rows[small]["epoch_time_s"] > rows[large]["epoch_time_s"]),
        ("Gradient", "small noisy",
         rows[small]["gradient_noise"] > rows[sizes[-2]]["gradient_noise"]),
        ("Optimization", "small better", rows[mid]["train_loss"] < rows[large]["train_loss"]),
        ("Generalization", "small better",
         max(rows[B]["test_accuracy"] for B in sizes[:-1]) > rows[large]["test_accuracy"]),
    ]  # fmt: skip
    lines = ["notes' table (seed 003)        measured here"]
    for what, claim, ok in verdicts:
        lines.append(f"{what:<20} {claim:<14} {'agrees' if ok else 'DISAGREES'}")
    lines += [
        "",
        f"best training loss at B = {mid}; same η = 0.05",
        "for all B, so a large B makes fewer updates",
        "in the same budget (that, more than noise,",
        "is why it lags).",
    ]
    ax.text(0, 1, "\n".join(lines), va="top", family="monospace", fontsize=8.5)
    fig.suptitle(
        f"The mini-batch table measured: digits, 64-32-10 ReLU/softmax, SGD η = 0.05, "
        f"{epochs} epochs per batch size"
    )
    path = _save(fig, Path(out_dir) / "minibatch.png")
    return FigureResult(
        "minibatch",
        [path],
        "Small batches: cheaper updates, slower epochs, noisier gradients, more progress per "
        "epoch.",
        {
            "rows": {str(B): r for B, r in rows.items()},
            "verdicts": {w: ok for w, _, ok in verdicts},
        },
        time.perf_counter() - t0,
    )


# -- 7. critical points ------------------------------------------------------------------------


def _loss_plane(net, X, Y, loss, l2, u, v, span, m):
    base = net.flat_params.copy()
    s = np.linspace(-span[0], span[0], m)
    t = np.linspace(-span[1], span[1], m)
    Z = np.empty((m, m))
    for i, a in enumerate(t):
        for j, b in enumerate(s):
            net.flat_params[...] = base + b * u + a * v
            Z[i, j] = net.loss_and_grad(X, Y, loss=loss, l2=l2, training=False)[0]
    net.flat_params[...] = base
    return s, t, Z


def figure_critical_points(out_dir, *, quick: bool = False, seed: int = 0):
    """The notes' second-order test (seed 003) on real networks: the Hessian by central
    differences of the backpropagated gradient (:mod:`backprop.hessian`) at

    - a constructed saddle (all-zero weights of a 1-2-1 tanh network, output bias at the mean
      target): eigenvalues of both signs;
    - a trained minimum (1-2-1 tanh fitted to the notes' curve with L2, L-BFGS then Newton):
      all eigenvalues positive;
    - a degenerate minimum (a linear hidden layer: rescaling symmetries): 5 zero eigenvalues.

    The loss is drawn on the plane of two eigenvectors through each point.
    """
    from .hessian import (
        classify_critical_point,
        constructed_saddle,
        hessian,
        symmetric_minimum,
        trained_minimum,
    )

    t0 = time.perf_counter()
    m = 15 if quick else 61
    cases = {}
    net, X, Y = constructed_saddle()
    cases["constructed saddle"] = (net, X, Y, 0.0)
    net, X, Y, l2 = trained_minimum(seed=seed)
    cases["trained minimum"] = (net, X, Y, l2)
    net, X, Y = symmetric_minimum(seed=seed)
    cases["symmetric minimum"] = (net, X, Y, 0.0)
    results = {}
    for name, (net, X, Y, l2) in cases.items():
        H = hessian(net, X, Y, loss="squared_error", l2=l2)
        _, g = net.loss_and_grad(X, Y, loss="squared_error", l2=l2, training=False)
        results[name] = classify_critical_point(H, g)
    fig = _figure(14, 4.6)
    axes = fig.subplots(1, 3, width_ratios=[1, 1, 1.1])
    labels = {
        "constructed saddle": "zero weights",
        "trained minimum": "tanh + L2",
        "symmetric minimum": "linear hidden",
    }
    for ax, name in zip(axes[:2], ("constructed saddle", "trained minimum"), strict=True):
        net, X, Y, l2 = cases[name]
        cp = results[name]
        w, V = cp.eigenvalues, cp.eigenvectors
        # the saddle: the most negative and the most positive direction; the minimum: the two
        # flattest. Spans where the quadratic model changes the loss by a fixed amount.
        i, j = (0, w.size - 1) if name == "constructed saddle" else (0, 1)
        c0 = net.loss_and_grad(X, Y, loss="squared_error", l2=l2, training=False)[0]
        rise = 0.3 if name == "constructed saddle" else 0.05 * c0  # the quadratic regime
        span = tuple(math.sqrt(2.0 * rise / max(abs(w[k]), 1e-12)) for k in (i, j))
        s, t, Z = _loss_plane(net, X, Y, "squared_error", l2, V[:, i], V[:, j], span, m)
        cs = ax.contourf(s, t, Z - c0, levels=21, cmap="RdBu_r")
        ax.contour(s, t, Z - c0, levels=[0.0], colors="k", linewidths=0.8)
        fig.colorbar(cs, ax=ax, shrink=0.85, label="C − C(θ₀)")
        ax.plot([0], [0], "k+", ms=12)
        ax.set_xlabel(f"along the eigenvector of λ = {w[i]:.3g}")
        ax.set_ylabel(f"along the eigenvector of λ = {w[j]:.3g}")
        ax.set_title(f"{name}: {cp.verdict} (|∇C| = {cp.grad_norm:.0e})", fontsize=10)
    ax = axes[2]
    for k, cp in enumerate(results.values()):
        w = cp.eigenvalues
        ax.plot(np.full(w.size, k), w, "_", ms=30, mew=2, color=f"C{k}")
        ax.text(k, 30, f"{cp.n_negative} neg\n{cp.n_zero} zero\n{cp.n_positive} pos",
                fontsize=8, va="bottom", ha="center")  # fmt: skip
    ax.set_yscale("symlog", linthresh=1e-4)
    ax.set_ylim(-3, 3000)
    ax.axhspan(-1e-4, 1e-4, color="0.9")
    ax.set_xticks(range(len(results)))
    ticks = [f"{labels[n]}\n→ " + cp.verdict.replace(" ", "\n") for n, cp in results.items()]
    ax.set_xticklabels(ticks, fontsize=8)
    ax.set_xlim(-0.6, len(results) - 0.4)
    ax.set_title("Hessian eigenvalues (symlog; grey: |λ| < 1e-4)", fontsize=10)
    fig.suptitle("Critical points: the Hessian decides minimum, maximum or saddle")
    path = _save(fig, Path(out_dir) / "critical_points.png")
    return FigureResult(
        "critical_points",
        [path],
        "At a critical point the Hessian's eigenvalues decide: all positive -> minimum, mixed "
        "-> saddle; symmetries give zero eigenvalues.",
        {
            name: {
                "verdict": cp.verdict,
                "eigenvalues": cp.eigenvalues.tolist(),
                "grad_norm": cp.grad_norm,
                "tol": cp.tol,
            }
            for name, cp in results.items()
        },
        time.perf_counter() - t0,
    )


# -- all of them -------------------------------------------------------------------------------

FIGURES: dict[str, Callable[..., FigureResult]] = {
    "universal_approximation": figure_universal_approximation,
    "xor_boundary": figure_xor_boundary,
    "gd_parabola": figure_gd_parabola,
    "lr_schedules": figure_lr_schedules,
    "optimizer_paths": figure_optimizer_paths,
    "minibatch": figure_minibatch,
    "critical_points": figure_critical_points,
}
"""Registry ``name -> figure function``, in the order of the gallery."""


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def make_figures(
    out_dir="docs/img/gallery",
    only: Sequence[str] | None = None,
    *,
    quick: bool = False,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> list[FigureResult]:
    """Write the figures of :data:`FIGURES` (or those named in ``only``) into ``out_dir``.

    Also writes ``figures.json`` there with every figure's claim and measured numbers (merged
    with an existing file, so regenerating one figure keeps the others' numbers).

    Parameters
    ----------
    out_dir : path, default "docs/img/gallery"
        Created if missing.
    only : sequence of str, optional
        Names from :data:`FIGURES`.
    quick : bool
        Tiny budgets (seconds in all), for tests.
    seed : int
    log : callable, optional
        Called with one line per figure written.

    Returns
    -------
    list of FigureResult

    Examples
    --------
    >>> make_figures("/tmp/gallery", only=["gd_parabola"])[0].files  # doctest: +SKIP
    ['/tmp/gallery/gd_parabola.png']
    """
    names = list(FIGURES) if not only else list(only)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise ValueError(f"unknown figure {unknown[0]!r}: expected one of {', '.join(FIGURES)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed={seed!r} is invalid: expected an integer")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in names:
        res = FIGURES[name](out, quick=quick, seed=int(seed))
        results.append(res)
        if log is not None:
            log(f"{name}: {', '.join(res.files)} ({res.seconds:.1f} s) - {res.claim}")
    summary_path = out / "figures.json"
    summary = {}
    if summary_path.exists():
        try:
            summary = json.loads(summary_path.read_text())
        except (OSError, ValueError):
            summary = {}
        if not isinstance(summary, dict):  # valid JSON, but not the summary: start afresh
            summary = {}
    for r in results:
        summary[r.name] = {
            "files": [os.path.basename(f) for f in r.files],
            "claim": r.claim,
            "numbers": _jsonable(r.numbers),
            "quick": quick,
            "seed": int(seed),
        }
    atomic_write_bytes(summary_path, (json.dumps(summary, indent=1) + "\n").encode())
    return results
