"""One BLAS thread against two, run after run: how steady each is, and whether they agree.

Trains 784-100-10 (ReLU, softmax, Adam, batch 128) for one epoch on Fashion-MNIST again and again,
alternating one and two BLAS threads, and prints each run's wall time and the process's CPU time.
On a machine whose cores are not always equally fast (a virtual machine sharing its host), runs
come in two speeds, in periods of tens of seconds. Two-thread runs suffer most: OpenBLAS splits
each product evenly between its threads and waits for the slower one, so both threads' CPU time
doubles. See docs/performance.md. (``fit``'s own rule that runs small products on one thread,
``backprop.training.SMALL_PRODUCT``, is switched off here. The one-thread runs' CPU time can
exceed their wall time: OpenBLAS's idle second thread spins a while after each switch.)

It then checks whether the matrix products of a training step give bit-identical results with
one and two threads. They do not all do so, which is why ``fit`` never switches the thread count
on its own during a run: the same seed must give the same network.

    .venv/bin/python bench/blas_threads.py             # 10 pairs of runs
    .venv/bin/python bench/blas_threads.py --pairs 20
    .venv/bin/python bench/blas_threads.py --parts 60  # the step's parts, for 60 seconds

``--parts S`` looks inside the step instead: for S seconds it alternates blocks of 300 training
steps with two and with one BLAS thread and prints, per block, the median wall time of the batch
gather, of the forward and backward pass, and of the Adam update. The gather and Adam run on
one thread in both modes; in the slow periods they take 3-4 times longer when the BLAS uses two
threads (the data they touch was last touched on the other core), and not when it uses one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_speed import _positive  # noqa: E402 - the bench scripts' shared argument type

SHAPES = [(100, 784, 128), (10, 100, 128), (256, 784, 128), (800, 800, 128), (100, 784, 16)]


def runs(pairs: int, hidden: int, batch: int) -> dict[int, list[tuple[float, float]]]:
    from train_speed import load_data

    import backprop as bp
    import backprop.training as training

    # fit runs small products (batch x n_in x n_out < SMALL_PRODUCT) on one BLAS thread by
    # itself; switched off here, so that "2 threads" means two at every batch size.
    training.SMALL_PRODUCT = 0
    X, y, _, _, source = load_data()
    print(f"data: {source}; 784-{hidden}-10, batch {batch}, one epoch per run")
    out: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    for r in range(pairs + 1):  # the first pair warms up (kernel loading) and is not counted
        cells = []
        for threads in (1, 2):
            with threadpool_limits(threads):
                net = bp.MLP([784, hidden, 10], output="softmax", seed=r)
                c0, t0 = os.times(), time.perf_counter()
                bp.fit(net, X, y, optimizer="adam", lr=1e-3, epochs=1, batch_size=batch)
                wall, c1 = time.perf_counter() - t0, os.times()
            cpu = (c1.user - c0.user) + (c1.system - c0.system)
            cells.append(f"{threads} thread(s) {wall:.3f} s wall, {cpu:.2f} s CPU")
            if r:
                out[threads].append((wall, cpu))
        print(("warm-up  " if r == 0 else f"pair {r:<3}  ") + " | ".join(cells), flush=True)
    return out


def parts(seconds: float, hidden: int, batch: int, block: int = 300) -> list[str]:
    """Per-part wall time (us, median over a block of steps), blocks of two and one thread."""
    from train_speed import load_data

    import backprop as bp
    from backprop import _kernels
    from backprop.losses import get_loss
    from backprop.optimizers import get_optimizer

    X, y, _, _, source = load_data()
    print(f"data: {source}; 784-{hidden}-10, batch {batch}, blocks of {block} steps")
    rng = np.random.default_rng(0)
    net = bp.MLP([784, hidden, 10], output="softmax", seed=0)
    loss = get_loss("cross_entropy")
    Y = net.check_targets(y, X.shape[0], loss)
    opt = get_optimizer("adam", lr=1e-3)
    params, grads = {"flat": net.flat_params}, {"flat": net.flat_grads}
    xb = np.empty((batch, X.shape[1]), X.dtype)
    gather = _kernels.row_gatherer(X)  # what fit uses
    layers, clock = net.layers, time.perf_counter_ns

    def run(threads):
        t = {"gather": [], "forward + backward": [], "Adam": [], "step": []}
        with threadpool_limits(threads):
            for _ in range(block):
                idx = rng.integers(0, X.shape[0], batch)
                t0 = clock()
                gather(idx, xb)
                yb = np.take(Y, idx, axis=0)
                t1 = clock()
                A = xb
                for layer in layers[:-1]:
                    A = layer._train_forward(A, True)
                _, delta, stop = net._output_loss_delta(A, yb, loss, True)
                for i in range(stop - 1, -1, -1):
                    delta = layers[i]._train_backward(delta)
                    if delta is None:
                        break
                t2 = clock()
                opt.step(params, grads)
                t3 = clock()
                for k, v in zip(t, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
                    t[k].append(v / 1e3)
        return {k: statistics.median(v) for k, v in t.items()}

    net._use_workspace(True)
    rows, end = [], time.perf_counter() + seconds
    run(2)  # warm-up: kernel loading, first touches
    while time.perf_counter() < end:
        cells = []
        for threads in (2, 1):
            m = run(threads)
            cells.append(
                f"{threads} thread(s): " + ", ".join(f"{k} {v:4.0f}" for k, v in m.items())
            )
            rows.append((threads, m))
        print(" | ".join(cells), flush=True)
    net._use_workspace(False)
    out = ["", "median over the blocks (us per step):"]
    for threads in (2, 1):
        ms = [m for th, m in rows if th == threads]
        out.append(
            f"  {threads} thread(s): "
            + ", ".join(f"{k} {statistics.median(m[k] for m in ms):.0f}" for k in ms[0])
            + f"; step min {min(m['step'] for m in ms):.0f}, max {max(m['step'] for m in ms):.0f}"
        )
    return out


def agreement() -> list[str]:
    rng = np.random.default_rng(0)
    lines = []
    for o, i, b in SHAPES:
        W = rng.standard_normal((o, i)).astype(np.float32)
        A = rng.standard_normal((b, i)).astype(np.float32)
        dT = rng.standard_normal((o, b)).astype(np.float32)
        res = {}
        for threads in (1, 2):
            with threadpool_limits(threads, user_api="blas"):
                res[threads] = {
                    "W @ A^T": W @ A.T,
                    "delta^T A": dT @ A,
                    "W^T delta": W.T @ dT,
                }
        same = [name for name in res[1] if np.array_equal(res[1][name], res[2][name])]
        diff = [name for name in res[1] if name not in same]
        lines.append(
            f"  {b} x {i} -> {o}: identical: {', '.join(same) or 'none'}; "
            f"different: {', '.join(diff) or 'none'}"
        )
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=_positive, default=10)
    ap.add_argument("--hidden", type=_positive, default=100)
    ap.add_argument("--batch-size", type=_positive, default=128)
    ap.add_argument(
        "--parts", type=_positive, metavar="S", help="time the step's parts for S seconds instead"
    )
    args = ap.parse_args(argv)
    if args.parts:
        print("\n".join(parts(args.parts, args.hidden, args.batch_size)))
        return 0
    res = runs(args.pairs, args.hidden, args.batch_size)
    print()
    for threads, rows in res.items():
        walls = [w for w, _ in rows]
        ratio = [c / w for w, c in rows]
        print(
            f"{threads} thread(s): wall median {statistics.median(walls):.3f} s "
            f"(min {min(walls):.3f}, max {max(walls):.3f}); CPU / wall "
            f"{min(ratio):.2f}-{max(ratio):.2f}"
        )
    print("\nproducts with one and with two BLAS threads, bit for bit:")
    print("\n".join(agreement()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
