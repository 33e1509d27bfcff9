"""Training and inference speed of backprop against scikit-learn and PyTorch, side by side.

    .venv/bin/pip install -e '.[bench]'            # torch (CPU build) and numba
    .venv/bin/python bench/train_speed.py           # 4 configurations x 5 repeats (~10 min)
    .venv/bin/python bench/train_speed.py --quick   # 784-100-10 at batch 128 and 16, 3 repeats

Protocol (docs/performance.md has the results and the discussion):

- Data: Fashion-MNIST (60,000 x 784 training images, pixels scaled to [0, 1], float32), from
  ``backprop.datasets.load_fashion_mnist``; MNIST or random data (said so in the output) when it
  is not there.
- Every library trains the same architecture (ReLU hidden layers, softmax output and
  cross-entropy), with Adam (lr 1e-3, no weight decay), the same batch size, number of epochs,
  seed value and number of threads, reshuffling every epoch. One *repeat* trains a fresh model
  for ``--epochs`` epochs; its time is the wall-clock time of the whole training call divided by
  the number of epochs (input checks included). The table gives the median, min and max over the
  repeats, and the test accuracy of the last repeat.
- Warm-up: before the timed repeats every worker trains one untimed epoch on the first 4,000
  rows, so that no library's first repeat carries what a process does once (imports, backprop
  loading its compiled kernels, PyTorch's and OpenBLAS's first allocations); that call's time is
  reported separately. ``--no-warmup`` times the first call as a repeat instead.
- Each library runs in its own worker process (so imports and memory do not mix), started afresh
  for every configuration; the repeats of the libraries are interleaved (backprop, scikit-learn,
  torch, backprop, ...), so a change of machine load hits all of them alike.
- Threads: the workers are started with ``OMP_NUM_THREADS``/``OPENBLAS_NUM_THREADS`` set to
  ``--threads``, NumPy's BLAS is limited with threadpoolctl and PyTorch with
  ``torch.set_num_threads``. That is a cap: backprop's ``fit`` runs steps whose products are
  small (``backprop.training.SMALL_PRODUCT``: batch x n_in x n_out under 4 million, here
  configuration d) on one thread by its own rule, which the users of the library get too.
- GEMM bound: the matrix products of one training step at the configuration's shapes (forward
  ``A @ W.T``, ``dW = delta.T @ A`` and, except in the first layer, ``delta @ W``), each timed
  with NumPy (best of many, in samples-in-rows and in feature-major layout, the faster counts)
  by a worker process with the same BLAS settings, summed and multiplied by the number of steps
  of an epoch. Everything above it is overhead. ``GFLOP/s`` is the FLOP count
  ``2 (3 sum(n_in n_out) - n_0 n_1)`` per sample over that time.
- Memory: the peak resident set size of the worker while it trains (``VmHWM`` after resetting it
  through ``/proc/self/clear_refs``), next to the size of the float32 training data. Every worker
  returns the heap freed while loading the data to the OS first (``malloc_trim``).
- Inference: ``forward`` over the 60,000 training images, timed 5 times after the last repeat of
  configuration a; the best and the median, as samples/s.

``--libs`` picks the workers: ``backprop``, ``backprop-numpy`` (backprop with its Numba kernels
switched off, ``BACKPROP_NUMBA=0``), ``sklearn``, ``torch``. ``--json PATH`` saves the raw numbers.

``--profile`` prints instead where the time of one training step goes: the CPU time of each part
(batch gather, each layer's forward and backward, loss, optimizer update), measured on the
calling thread with one BLAS thread and summarised by the 10th percentile over many steps, which
stays meaningful on a busy machine, where wall-clock times do not.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
import warnings

import numpy as np

WARMUP_ROWS = 4000  # 12.5 MB of Fashion-MNIST: large enough for every compiled kernel of backprop

CONFIGS = {
    "a": ([784, 100, 10], 128),
    "b": ([784, 256, 128, 10], 128),
    "c": ([784, 800, 800, 10], 128),
    "d": ([784, 100, 10], 16),
}
QUICK = ("a", "d")
LIBS = ("backprop", "sklearn", "torch")
LABEL = {
    "backprop": "backprop",
    "backprop-numpy": "backprop (NumPy only)",
    "sklearn": "scikit-learn",
    "torch": "PyTorch loop",
}


# ============================================================================ data


def load_data():
    """(X, y, X_test, y_test, source) as float32 in [0, 1] and int64 labels."""
    from backprop import datasets

    source = "Fashion-MNIST"
    try:
        (X, y), (Xt, yt) = datasets.load_fashion_mnist(download=False)
    except Exception:  # noqa: BLE001 - any failure: try the next source
        try:
            (X, y), (Xt, yt) = datasets.load_mnist(download=False)
            source = "MNIST (Fashion-MNIST not found)"
        except Exception:  # noqa: BLE001
            rng = np.random.default_rng(0)
            X = rng.integers(0, 256, (60000, 784), dtype=np.uint8)
            y = rng.integers(0, 10, 60000)
            Xt = rng.integers(0, 256, (10000, 784), dtype=np.uint8)
            yt = rng.integers(0, 10, 10000)
            source = "random data (neither Fashion-MNIST nor MNIST found)"

    def scaled(a):
        out = a.reshape(len(a), -1).astype(np.float32)
        out *= np.float32(1 / 255)
        return out

    X, Xt = scaled(X), scaled(Xt)
    return X, np.asarray(y, np.int64), Xt, np.asarray(yt, np.int64), source


# ============================================================================ memory


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux: writing 5 to clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def release_free_memory() -> None:
    """Give the heap memory freed while loading the data back to the OS (glibc ``malloc_trim``),
    so that every worker starts from the same footing."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_rss_mb() -> float:
    hwm = _status_mb("VmHWM")
    if hwm is not None:
        return hwm
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ============================================================================ the workers


class BackpropRunner:
    def __init__(self, threads):
        from threadpoolctl import threadpool_limits

        import backprop

        self.bp = backprop
        self.limits = threadpool_limits(threads)

    def train(self, sizes, batch, epochs, seed, X, y):
        net = self.bp.MLP(sizes, activation="relu", output="softmax", seed=seed)
        t0 = time.perf_counter()
        hist = self.bp.fit(net, X, y, optimizer="adam", lr=1e-3, epochs=epochs, batch_size=batch)
        wall = time.perf_counter() - t0
        return net, wall, {"history_epoch_time": hist.epoch_time}

    def accuracy(self, net, Xt, yt):
        return float(np.mean(net.forward(Xt).argmax(axis=1) == yt))

    def infer(self, net, X):
        return net.forward(X)


class SklearnRunner:
    def __init__(self, threads):
        from sklearn.neural_network import MLPClassifier
        from threadpoolctl import threadpool_limits

        self.cls = MLPClassifier
        self.limits = threadpool_limits(threads)

    def train(self, sizes, batch, epochs, seed, X, y):
        from sklearn.exceptions import ConvergenceWarning

        clf = self.cls(
            hidden_layer_sizes=tuple(sizes[1:-1]),
            activation="relu",
            solver="adam",
            alpha=0.0,
            batch_size=batch,
            learning_rate_init=1e-3,
            max_iter=epochs,
            shuffle=True,
            random_state=seed,
            tol=0.0,
            n_iter_no_change=10**9,
            early_stopping=False,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t0 = time.perf_counter()
            clf.fit(X, y)
            wall = time.perf_counter() - t0
        return clf, wall, {}

    def accuracy(self, clf, Xt, yt):
        return float(clf.score(Xt, yt))

    def infer(self, clf, X):
        return clf.predict_proba(X)


class TorchRunner:
    def __init__(self, threads):
        import torch

        self.torch = torch
        torch.set_num_threads(threads)
        self._cache = {}

    def _tensors(self, X, y):
        key = (id(X), id(y))
        if key not in self._cache:
            self._cache[key] = (self.torch.from_numpy(X), self.torch.from_numpy(y))
        return self._cache[key]

    def train(self, sizes, batch, epochs, seed, X, y):
        torch = self.torch
        torch.manual_seed(seed)
        layers = []
        for i in range(len(sizes) - 1):
            layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(torch.nn.ReLU())
        model = torch.nn.Sequential(*layers)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = torch.nn.CrossEntropyLoss()
        Xt, yt = self._tensors(X, y)
        gen = torch.Generator().manual_seed(seed)
        n = len(X)
        t0 = time.perf_counter()
        for _ in range(epochs):
            perm = torch.randperm(n, generator=gen)
            for s in range(0, n, batch):
                idx = perm[s : s + batch]
                xb, yb = Xt.index_select(0, idx), yt.index_select(0, idx)
                loss = loss_fn(model(xb), yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        wall = time.perf_counter() - t0
        return model, wall, {}

    def accuracy(self, model, Xt, yt):
        with self.torch.no_grad():
            out = model(self.torch.from_numpy(Xt)).argmax(dim=1).numpy()
        return float(np.mean(out == yt))

    def infer(self, model, X):
        with self.torch.inference_mode():
            return self.torch.softmax(model(self.torch.from_numpy(X)), dim=1)


RUNNERS = {
    "backprop": BackpropRunner,
    "backprop-numpy": BackpropRunner,
    "sklearn": SklearnRunner,
    "torch": TorchRunner,
}


def worker(lib: str, threads: int) -> None:
    """Answer JSON commands on stdin, one per line, with one JSON line each on stdout."""
    base_rss = peak_rss_mb()
    X, y, Xt, yt, source = load_data()
    release_free_memory()
    runner = RUNNERS[lib](threads)
    info = {
        "source": source,
        "data_mb": X.nbytes / 2**20,
        "all_data_mb": (X.nbytes + Xt.nbytes + y.nbytes + yt.nbytes) / 2**20,
        "rss_start_mb": base_rss,
        "rss_loaded_mb": _status_mb("VmRSS"),
    }
    if lib.startswith("backprop"):
        from backprop import _kernels

        info["numba"] = _kernels.enabled()
    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("bound"):
            sec, gflops = gemm_bound(cmd["sizes"], cmd["batch"], cmd["n"], threads)
            print(json.dumps({"seconds": sec, "gflops": gflops}), flush=True)
            continue
        if cmd.get("warmup"):
            # One untimed epoch on the first rows, so that the timed repeats measure training
            # and not what a process does once (imports, loading compiled kernels, first-touch
            # of the BLAS buffers). Its wall time is reported as the first call's cost.
            m = min(len(X), WARMUP_ROWS)
            t0 = time.perf_counter()
            model, _, _ = runner.train(cmd["sizes"], cmd["batch"], 1, 0, X[:m], y[:m])
            print(json.dumps({"warmup_s": time.perf_counter() - t0, "rows": m}), flush=True)
            del model
            continue
        sizes, batch, epochs, seed = cmd["sizes"], cmd["batch"], cmd["epochs"], cmd["seed"]
        gc.collect()
        release_free_memory()  # what earlier repeats freed is not this repeat's memory
        rss_before = _status_mb("VmRSS")
        reset_peak_rss()
        model, wall, extra = runner.train(sizes, batch, epochs, seed, X, y)
        peak = peak_rss_mb()
        out = {
            "per_epoch": wall / epochs,
            "accuracy": runner.accuracy(model, Xt, yt),
            "rss_before_mb": rss_before,
            "peak_rss_mb": peak,
            **extra,
        }
        if cmd.get("infer"):
            times = []
            for _ in range(cmd["infer"]):
                t0 = time.perf_counter()
                runner.infer(model, X)
                times.append(time.perf_counter() - t0)
            out["infer_samples_per_s"] = len(X) / min(times)
            out["infer_median_samples_per_s"] = len(X) / float(np.median(times))
        del model
        print(json.dumps(out), flush=True)


class Worker:
    def __init__(self, lib: str, threads: int, clear_openblas_env: bool, coretype: str | None):
        env = dict(os.environ)
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
        if clear_openblas_env:
            env.pop("OPENBLAS_CORETYPE", None)
            env.pop("OPENBLAS_L2_SIZE", None)
        if coretype:
            env["OPENBLAS_CORETYPE"] = coretype
        if lib == "backprop-numpy":
            env["BACKPROP_NUMBA"] = "0"
        self.lib = lib
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", lib, "--threads", str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.info = self._read()

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.lib} worker died (see its error output above)")
        return json.loads(line)

    def run(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


# ============================================================================ a shared machine


def idle_fraction(window: float = 0.5) -> float:
    """Share of all CPUs' time spent idle over ``window`` seconds (Linux /proc/stat)."""

    def read():
        with open("/proc/stat") as fh:
            vals = [int(v) for v in fh.readline().split()[1:]]
        return vals[3] + vals[4], sum(vals)  # idle + iowait, total

    try:
        i0, t0 = read()
        time.sleep(window)
        i1, t1 = read()
    except OSError:
        return 1.0
    return (i1 - i0) / max(t1 - t0, 1)


def wait_until_idle(max_wait: float, threshold: float = 0.85) -> float:
    """Wait (at most ``max_wait`` seconds) until the machine is at least ``threshold`` idle;
    returns the last idle share seen. On a shared machine this keeps the repeats to the quiet
    moments: two BLAS threads that share their cores with other work can be 10-50x slower."""
    deadline = time.perf_counter() + max_wait
    idle = idle_fraction()
    while idle < threshold and time.perf_counter() < deadline:
        idle = idle_fraction()
    return idle


# ============================================================================ the GEMM bound


def gemm_bound(sizes, batch, n, threads, budget_s=1.0):
    """Seconds per epoch of the step's matrix products alone, and the FLOP rate that implies."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)

    def best(fn, reps):
        fn()
        t = math.inf
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            t = min(t, time.perf_counter() - t0)
        return t

    step = 0.0
    with threadpool_limits(threads):
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            A = rng.random((batch, n_in), dtype=np.float32)  # samples in rows
            AT = rng.random((n_in, batch), dtype=np.float32)  # feature-major
            W = rng.random((n_out, n_in), dtype=np.float32)
            D = rng.random((batch, n_out), dtype=np.float32)
            DT = rng.random((n_out, batch), dtype=np.float32)
            Z = np.empty((batch, n_out), np.float32)
            ZT = np.empty((n_out, batch), np.float32)
            dW = np.empty((n_out, n_in), np.float32)
            dA = np.empty((batch, n_in), np.float32)
            dAT = np.empty((n_in, batch), np.float32)
            guess = 2.0 * batch * n_in * n_out / 100e9 + 2e-6  # seconds, at ~100 GFLOP/s
            reps = int(min(400, max(20, budget_s / (6 * guess))))
            # each product in its two usual memory layouts; the faster one counts
            step += min(
                best(lambda A=A, W=W, Z=Z: np.matmul(A, W.T, out=Z), reps),
                best(lambda AT=AT, W=W, ZT=ZT: np.matmul(W, AT, out=ZT), reps),
            )
            step += min(
                best(lambda A=A, D=D, dW=dW: np.matmul(D.T, A, out=dW), reps),
                best(lambda AT=AT, DT=DT, dW=dW: np.matmul(DT, AT.T, out=dW), reps),
            )
            if i > 0:
                step += min(
                    best(lambda D=D, W=W, dA=dA: np.matmul(D, W, out=dA), reps),
                    best(lambda DT=DT, W=W, dAT=dAT: np.matmul(W.T, DT, out=dAT), reps),
                )
    flops = 2 * (3 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)))
    flops -= 2 * sizes[0] * sizes[1]
    seconds = step * n / batch
    return seconds, flops * n / seconds / 1e9


# ============================================================================ profile


def profile(configs, steps_scale=1.0):
    """Per-part CPU time of the training step (one BLAS thread), as a table."""
    from threadpoolctl import threadpool_limits

    import backprop as bp
    from backprop import _kernels
    from backprop.losses import get_loss
    from backprop.optimizers import get_optimizer

    clock = time.thread_time_ns
    rng = np.random.default_rng(0)
    n_data = 60000  # as large as the data set: the gather's random reads miss the caches
    X = rng.random((n_data, 784), dtype=np.float32)
    labels = rng.integers(0, 10, n_data)
    rows = []
    with threadpool_limits(1):
        for key in configs:
            sizes, batch = CONFIGS[key]
            net = bp.MLP(sizes, activation="relu", output="softmax", seed=0)
            loss = get_loss("cross_entropy")
            Y = net.check_targets(labels, n_data, loss)
            opt = get_optimizer("adam", lr=1e-3)
            params, grads = {"flat": net.flat_params}, {"flat": net.flat_grads}
            net._use_workspace(True)
            xb = np.empty((batch, 784), np.float32)
            gather = _kernels.row_gatherer(X)  # what fit uses
            layers = net.layers
            parts: dict[str, list] = {}

            def add(name, t0, t1, parts=parts):
                parts.setdefault(name, []).append(t1 - t0)

            n_steps = int(steps_scale * max(60, min(2000, 4e8 / (batch * net.n_params))))
            for _ in range(n_steps):
                idx = rng.integers(0, n_data, batch)
                t0 = clock()
                gather(idx, xb)
                yb = np.take(Y, idx, axis=0)
                t1 = clock()
                add("gather batch", t0, t1)
                A = xb
                for i, layer in enumerate(layers[:-1]):
                    t0 = clock()
                    A = layer._train_forward(A, True)
                    add(f"forward {i + 1} {layer!r}", t0, clock())
                t0 = clock()
                value, delta, stop = net._output_loss_delta(A, yb, loss, True)
                add("softmax + cross-entropy", t0, clock())
                for i in range(stop - 1, -1, -1):
                    t0 = clock()
                    delta = layers[i]._train_backward(delta)
                    add(f"backward {i + 1} {layers[i]!r}", t0, clock())
                    if delta is None:
                        break
                t0 = clock()
                opt.step(params, grads)
                add("optimizer (Adam)", t0, clock())
            net._use_workspace(False)
            steps_per_epoch = math.ceil(60000 / batch)
            summary = {k: float(np.percentile(v, 10)) / 1e3 for k, v in parts.items()}
            rows.append((key, summary, steps_per_epoch))
    out = [f"Numba kernels: {_kernels.enabled()}; CPU time per step (us, 10th pct.), 1 thread"]
    for key, summary, steps in rows:
        total = sum(summary.values())
        out.append("")
        out.append(f"{name(key)}: {total:.0f} us/step, {total * steps / 1e6:.3f} s/epoch")
        out.append("| part | us/step | share |")
        out.append("|---|---|---|")
        for part, us in summary.items():
            out.append(f"| {part} | {us:.1f} | {100 * us / total:.0f}% |")
    return "\n".join(out)


# ============================================================================ micro


def micro():
    """The measurements behind each optimisation (CPU time, one BLAS thread, 10th percentile)."""
    from threadpoolctl import threadpool_limits

    import backprop as bp
    from backprop import _kernels
    from backprop._validation import all_finite
    from backprop.losses import get_loss
    from backprop.optimizers import Adam

    clock = time.thread_time_ns
    rng = np.random.default_rng(0)
    lines = ["| what | NumPy as before | now | shape |", "|---|---|---|---|"]

    def t(fn, n=300):
        fn()
        ts = []
        for _ in range(n):
            t0 = clock()
            fn()
            ts.append(clock() - t0)
        return float(np.percentile(ts, 10)) / 1e3  # microseconds

    def row(what, before, after, shape, unit="us"):
        lines.append(f"| {what} | {before:.1f} {unit} | {after:.1f} {unit} | {shape} |")

    with threadpool_limits(1):
        X = rng.random((60000, 784), dtype=np.float32)
        order = rng.permutation(60000)
        buf = np.empty((128, 784), np.float32)

        def per_batch():
            for s in range(0, 60000, 128):
                idx = order[s : s + 128]
                np.take(X, idx, axis=0, out=buf[: len(idx)], mode="clip")

        def wall(fn):
            t0 = time.perf_counter()
            fn()
            return (time.perf_counter() - t0) * 1e3

        row(
            "shuffle the data for an epoch (wall)",
            wall(lambda: X[order]),
            wall(per_batch),
            "copy of 60000x784 vs 469 gathers of 128 rows",
            "ms",
        )
        gather = _kernels.row_gatherer(X)
        for b in (16, 128):
            starts = range(0, 60000 - b, b)
            it = iter(())

            def next_idx(b=b, starts=starts):
                nonlocal it
                try:
                    return next(it)
                except StopIteration:
                    it = iter([order[s : s + b] for s in starts])
                    return next(it)

            row(
                "gather one batch of random rows",
                t(lambda b=b: np.take(X, next_idx(b), axis=0, out=buf[:b], mode="clip"), 2000),
                t(lambda b=b: gather(next_idx(b), buf[:b]), 2000),
                f"{b} rows of 60000x784",
            )
        row(
            "finiteness check of X (wall)",
            wall(lambda: np.isfinite(X).all()),
            wall(lambda: all_finite(X)),
            "60000x784",
            "ms",
        )
        for shape in [(128, 100), (128, 800)]:
            z = rng.standard_normal(shape, dtype=np.float32)
            out = np.empty(shape, np.float32)
            zeros = np.zeros(shape, np.float32)
            row(
                "ReLU forward",
                t(lambda z=z, o=out: np.maximum(z, 0, out=o)),
                t(lambda z=z, o=out, zz=zeros: np.maximum(z, zz, out=o)),
                shape,
            )
            ones = np.ones(shape[0], np.float32)
            gb = np.empty(shape[1], np.float32)
            d = np.asfortranarray(z)
            row(
                "bias gradient db",
                t(lambda d=d, gb=gb: np.sum(d, axis=0, out=gb)),
                t(lambda d=d, gb=gb, ones=ones: np.dot(ones, d, out=gb)),
                f"{shape}, GEMV",
            )
        for b, i, o in [(16, 784, 100), (128, 784, 100), (128, 800, 800)]:
            A = rng.random((b, i), dtype=np.float32)
            AF = np.asfortranarray(A)
            W = rng.random((o, i), dtype=np.float32)
            Z = np.empty((b, o), np.float32)
            ZT = np.empty((o, b), np.float32)
            reps = 300 if o < 800 else 40
            row(
                "Dense forward, A @ W.T vs W @ A^T",
                t(lambda A=A, W=W, Z=Z: np.matmul(A, W.T, out=Z), reps),
                t(lambda AF=AF, W=W, ZT=ZT: np.matmul(W, AF.T, out=ZT), reps),
                f"({b}, {i}) -> {o}",
            )
        for n in (79510, 1276810):
            p = rng.standard_normal(n).astype(np.float32)
            g = (rng.standard_normal(n) * 1e-3).astype(np.float32)
            opt_np, opt_k = Adam(lr=1e-3), Adam(lr=1e-3)
            pk = p.copy()
            old = _kernels.set_enabled(False)
            before = t(lambda p=p, g=g, o=opt_np: o.step({"flat": p}, {"flat": g}), 100)
            _kernels.set_enabled(old)
            after = t(lambda p=pk, g=g, o=opt_k: o.step({"flat": p}, {"flat": g}), 100)
            row(f"Adam step (Numba: {_kernels.enabled()})", before, after, f"{n} parameters")
        for bs in (16, 128):
            net = bp.MLP([784, 100, 10], output="softmax", seed=0)
            ce = get_loss("cross_entropy")
            Zs = rng.standard_normal((bs, 10)).astype(np.float32)
            Y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, bs)]
            last = net.layers[-1]

            def numpy_path(Zs=Zs, Y=Y, last=last, ce=ce):
                ce.fused(Zs, last.forward(Zs), Y)

            net._use_workspace(True)
            old = _kernels.set_enabled(True)
            after = t(lambda Zs=Zs, Y=Y, net=net, ce=ce: net._output_loss_delta(Zs, Y, ce, True))
            _kernels.set_enabled(old)
            row("softmax + cross-entropy + delta", t(numpy_path), after, f"({bs}, 10)")
    return "\n".join(lines)


# ============================================================================ report


def machine_info(threads):
    import threadpoolctl

    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    blas = [
        f"{d.get('internal_api')} {d.get('version')} ({d.get('architecture')})"
        for d in threadpoolctl.threadpool_info()
        if d.get("user_api") == "blas"
    ]
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": threads,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas,
        "openblas_env": env,
    }


def name(key):
    sizes, batch = CONFIGS[key]
    return f"{'-'.join(map(str, sizes))}, batch {batch}"


def fmt_t(ts):
    return f"{np.median(ts):.3f} s ({min(ts):.3f}-{max(ts):.3f})"


def report(results, bounds, info, args, worker_info):
    libs = [lib for lib in args.libs if lib in worker_info]
    lines = []
    head = ["configuration", "GEMM bound"] + [LABEL[lib] for lib in libs]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for key in args.configs:
        sizes, batch = CONFIGS[key]
        bound, gflops = bounds[key]
        row = [name(key), f"{bound:.3f} s ({gflops:.0f} GFLOP/s)"]
        for lib in libs:
            row.append(fmt_t([r["per_epoch"] for r in results[key][lib]]))
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    head = ["configuration", "backprop / bound"] + [
        f"{LABEL[lib]} / backprop (medians)" for lib in libs if lib != "backprop"
    ]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for key in args.configs:
        sizes, batch = CONFIGS[key]
        med = {lib: float(np.median([r["per_epoch"] for r in results[key][lib]])) for lib in libs}
        if "backprop" not in med:
            continue
        row = [name(key), f"{med['backprop'] / bounds[key][0]:.2f}x"]
        own = [r["per_epoch"] for r in results[key]["backprop"]]
        for lib in libs:
            if lib == "backprop":
                continue
            # Repeats run in rounds (backprop, then each peer), close together in time: the
            # ratio within a round is robust to the machine changing speed between rounds.
            paired = [r["per_epoch"] / b for r, b in zip(results[key][lib], own, strict=False)]
            row.append(
                f"{med[lib] / med['backprop']:.2f}x (per round: median {np.median(paired):.2f}x, "
                f"{min(paired):.2f}-{max(paired):.2f})"
            )
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    head = ["configuration"] + [f"{LABEL[lib]} test acc. / peak RSS" for lib in libs]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for key in args.configs:
        sizes, batch = CONFIGS[key]
        row = [name(key)]
        for lib in libs:
            rs = results[key][lib]
            row.append(f"{rs[-1]['accuracy']:.4f} / {max(r['peak_rss_mb'] for r in rs):.0f} MB")
        lines.append("| " + " | ".join(row) + " |")
    infer = {lib: v for lib, v in results.get("infer", {}).items() if lib in libs}
    if infer:
        lines.append("")
        lines.append(
            "| inference, 784-100-10, float32, 60,000 samples | samples/s, best | median |"
        )
        lines.append("|---|---|---|")
        for lib, r in infer.items():
            lines.append(
                f"| {LABEL[lib]} | {r['infer_samples_per_s'] / 1e6:.2f} M | "
                f"{r['infer_median_samples_per_s'] / 1e6:.2f} M |"
            )
    warm = results.get("warmup", {})
    if warm:
        lines.append("")
        lines.append(
            f"First training call of each fresh worker, untimed in the table (one epoch of "
            f"{WARMUP_ROWS:,} rows, imports and compiled-kernel loading included), seconds:"
        )
        for key in args.configs:
            if key in warm:
                sizes, batch = CONFIGS[key]
                lines.append(
                    f"  {'-'.join(map(str, sizes))}, batch {batch}: "
                    + ", ".join(f"{LABEL[lib]} {t:.2f}" for lib, t in warm[key].items())
                )
    else:
        lines.append("")
        lines.append("No warm-up (--no-warmup): each worker's first repeat includes one-off costs.")
    bp = worker_info.get("backprop") or next(iter(worker_info.values()))
    data_mb = bp["data_mb"]
    lines.append("")
    lines.append(
        f"Data: {bp['source']}; float32 training images {data_mb:.0f} MB "
        f"(with test set and labels {bp['all_data_mb']:.0f} MB); "
        f"memory target 1.3 x {data_mb:.0f} + 100 = {1.3 * data_mb + 100:.0f} MB."
    )
    if "backprop" in worker_info:
        lines.append(
            f"backprop worker RSS: {worker_info['backprop']['rss_loaded_mb']:.0f} MB with the data "
            f"loaded; Numba kernels: {worker_info['backprop'].get('numba')}."
        )
    lines.append(
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['threads']} threads; Python "
        f"{info['python']}, NumPy {info['numpy']}, BLAS {', '.join(info['blas'])}; "
        f"OpenBLAS environment: {info['openblas_env'] or 'none'}"
        + (" (cleared for the workers)" if args.clear_openblas_env else "")
        + (f"; workers run with OPENBLAS_CORETYPE={args.coretype}" if args.coretype else "")
        + "."
    )
    lines.append(
        f"Load average before/after: {info['load_before']:.2f} / {info['load_after']:.2f}; "
        f"{args.repeats} repeats x {args.epochs} epoch(s); wall time {info['wall']:.0f} s."
    )
    idles = [
        r["idle_before"]
        for key in args.configs
        for rs in results[key].values()
        for r in rs
        if r.get("idle_before") is not None
    ]
    if idles:
        quiet = sum(i >= 0.85 for i in idles)
        lines.append(
            f"--wait-idle {args.wait_idle:g}: {quiet} of {len(idles)} repeats started on a machine "
            f">= 85% idle (median idle share {np.median(idles):.0%})."
        )
    return "\n".join(lines)


def run_configuration(key, workers, args, n, bounds, results):
    sizes, batch = CONFIGS[key]
    numpy_worker = next((w for lib, w in workers.items() if lib != "torch"), None)
    if numpy_worker is not None:  # measured where the workers' BLAS settings apply
        if args.wait_idle:
            wait_until_idle(args.wait_idle)
        r = numpy_worker.run(bound=True, sizes=sizes, batch=batch, n=n)
        bounds[key] = (r["seconds"], r["gflops"])
    else:
        bounds[key] = gemm_bound(sizes, batch, n, args.threads)
    results[key] = {lib: [] for lib in workers}
    if not args.no_warmup:
        for lib, w in workers.items():
            r = w.run(warmup=True, sizes=sizes, batch=batch)
            results.setdefault("warmup", {}).setdefault(key, {})[lib] = r["warmup_s"]
            print(
                f"  {key} warm-up {lib:15s} {r['warmup_s']:.3f} s (one epoch, {r['rows']} rows)",
                file=sys.stderr,
                flush=True,
            )
    for rep in range(args.repeats):
        for lib, w in workers.items():
            infer = 0
            if key == "a" and rep == args.repeats - 1 and not args.no_infer:
                infer = 5
            idle = wait_until_idle(args.wait_idle) if args.wait_idle else None
            r = w.run(sizes=sizes, batch=batch, epochs=args.epochs, seed=rep, infer=infer)
            r["idle_before"] = idle
            results[key][lib].append(r)
            if infer:
                results.setdefault("infer", {})[lib] = r
            print(
                f"  {key} repeat {rep + 1}/{args.repeats} {lib:15s} "
                f"{r['per_epoch']:.3f} s/epoch  acc {r['accuracy']:.4f}  "
                f"peak {r['peak_rss_mb']:.0f} MB"
                + (f"  idle before {idle:.0%}" if idle is not None else ""),
                file=sys.stderr,
                flush=True,
            )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer >= 1")
    return value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="configurations a and d, 3 repeats")
    ap.add_argument("--configs", default=None, help="comma-separated keys from a,b,c,d")
    ap.add_argument("--libs", default=",".join(LIBS))
    ap.add_argument("--repeats", type=_positive, default=None)
    ap.add_argument("--epochs", type=_positive, default=1)
    ap.add_argument("--threads", type=_positive, default=2)
    ap.add_argument("--no-infer", action="store_true", help="skip the inference measurement")
    ap.add_argument(
        "--no-warmup",
        action="store_true",
        help="time the first training call of each worker too (by default one untimed epoch "
        f"on {WARMUP_ROWS} rows comes first)",
    )
    ap.add_argument("--clear-openblas-env", action="store_true")
    ap.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="S",
        help="before each repeat wait up to S seconds for the machine to be 85%% idle",
    )
    ap.add_argument(
        "--openblas-coretype", dest="coretype", default=None, help="OPENBLAS_CORETYPE for workers"
    )
    ap.add_argument("--json", default=None, help="save the raw numbers here")
    ap.add_argument("--profile", action="store_true", help="where the step's time goes")
    ap.add_argument("--micro", action="store_true", help="the measurements behind each change")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.threads)
        return
    args.configs = (args.configs or ",".join(QUICK if args.quick else CONFIGS)).split(",")
    unknown = [c for c in args.configs if c not in CONFIGS]
    if unknown:
        ap.error(f"unknown configuration {', '.join(unknown)}: expected keys from a,b,c,d")
    if args.profile:
        print(profile(args.configs, 0.3 if args.quick else 1.0))
        return
    if args.micro:
        print(micro())
        return
    args.libs = args.libs.split(",")
    args.repeats = args.repeats or (3 if args.quick else 5)
    bad = [c for c in args.configs if c not in CONFIGS] + [b for b in args.libs if b not in RUNNERS]
    if bad:
        ap.error(f"unknown configuration or library: {', '.join(bad)}")

    t_start = time.perf_counter()
    info = machine_info(args.threads)
    info["load_before"] = os.getloadavg()[0]
    n = 60000
    bounds, results, worker_info = {}, {}, {}
    for key in args.configs:
        # Fresh workers for every configuration: the peak memory of a configuration must not
        # include what an earlier one left resident (the BLAS's per-thread buffers, say).
        workers = {}
        for lib in args.libs:
            try:
                workers[lib] = Worker(lib, args.threads, args.clear_openblas_env, args.coretype)
            except Exception as exc:  # noqa: BLE001 - a missing peer is reported, not fatal
                print(f"skipping {lib}: {exc}", file=sys.stderr)
        for lib, w in workers.items():
            worker_info.setdefault(lib, w.info)
        try:
            run_configuration(key, workers, args, n, bounds, results)
        finally:
            for w in workers.values():
                w.close()
    info["load_after"] = os.getloadavg()[0]
    info["wall"] = time.perf_counter() - t_start
    print(report(results, bounds, info, args, worker_info))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {"machine": info, "workers": worker_info, "bounds": bounds, "results": results},
                fh,
                indent=1,
            )


if __name__ == "__main__":
    main()
