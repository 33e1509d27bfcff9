"""Optional compiled kernels for the optimizer updates (Numba), with NumPy as the fallback.

Why: an optimizer update done with NumPy ufuncs is a dozen passes over the parameter vector
(Adam: twelve, one of them a square root). Each pass is cheap, but the passes add up: on the
784-800-800-10 network (1.3 million parameters) the NumPy Adam step takes about 2 ms, as long
as a third of the step's matrix products; on 784-100-10 at batch size 16 it takes longer than
the products. One compiled loop that reads ``p, g, m, v`` once and writes them once does the same
arithmetic in about a fifth of the time (see docs/performance.md for the measurements).

The kernels compute *exactly* the same float operations in the same order as the NumPy code in
:mod:`backprop.optimizers` (no fused multiply-add, no ``fastmath``), so both paths give
bit-identical parameters; the tests check this. The batch gather and the L2 term's one-pass
update are bit-identical too. The fused softmax + cross-entropy (``softmax_xent``) is the
exception: it sums each row's exponentials in float64 where NumPy sums float32 in float32, so
its outputs agree with the NumPy path to rounding, not bit for bit, and parameters trained with
and without the kernels drift apart in the last bits (a few times 1e-8 after an epoch of Adam).

Numba is optional (``pip install backprop[fast]``). Without it, or with the environment variable
``BACKPROP_NUMBA=0``, or after :func:`set_enabled` ``(False)``, everything runs in NumPy. The
kernels are compiled on first use (about half a second each, then cached on disk) and only
used for parameter vectors of at least :data:`MIN_SIZE` elements, where the saving repays the
call; a small network never imports Numba.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["MIN_SIZE", "available", "enabled", "set_enabled", "get", "kernel", "row_gatherer"]

MIN_SIZE = 16_384
"""Smallest flat parameter vector for which the compiled update is used."""

GATHER_MIN_BYTES = 8 << 20
"""Smallest data set (in bytes) whose mini-batches are gathered by the compiled kernel."""

_state: dict = {
    "enabled": os.environ.get("BACKPROP_NUMBA", "1").strip().lower()
    not in ("0", "false", "no", "off"),
    "numba": None,
    "tried": False,
}
_compiled: dict[str, object] = {}


def _import_numba():
    if not _state["tried"]:
        _state["tried"] = True
        try:
            import numba  # noqa: PLC0415 - optional, imported on first need only
        except Exception:  # missing, or broken against this NumPy: fall back to NumPy
            numba = None
        _state["numba"] = numba
    return _state["numba"]


def available() -> bool:
    """Whether Numba can be imported (imports it)."""
    return _import_numba() is not None


def enabled() -> bool:
    """Whether compiled kernels will be used (Numba available and not switched off)."""
    return bool(_state["enabled"]) and available()


def set_enabled(flag: bool) -> bool:
    """Switch the compiled kernels on or off for this process; returns the previous setting."""
    old = bool(_state["enabled"])
    _state["enabled"] = bool(flag)
    return old


def get(name: str, p: np.ndarray):
    """The compiled update ``name`` for parameter ``p``, or None to use NumPy.

    None when kernels are off or unavailable, or ``p`` is small, not C-contiguous, or not
    float32/float64. The kernel takes 1-D arrays: call it with ``p.reshape(-1)`` etc.
    """
    if not _state["enabled"] or p.size < MIN_SIZE or not p.flags.c_contiguous:
        return None
    if p.dtype != np.float32 and p.dtype != np.float64:
        return None
    return kernel(name)


def row_gatherer(X: np.ndarray):
    """A function ``(idx, out) -> out`` that copies the rows ``X[idx]`` into ``out``.

    The compiled :func:`_gather_rows` for a large, C-contiguous float32/float64 matrix with
    rows of at least 64 values (where memory latency dominates the copy), ``np.take`` otherwise.
    ``idx`` must be a C-contiguous int64 vector of valid row numbers and ``out`` a C-contiguous
    array of ``len(idx)`` rows; both paths give identical results.
    """

    def take(idx, out):
        return np.take(X, idx, axis=0, out=out, mode="clip")

    if (
        not _state["enabled"]
        or X.ndim != 2
        or X.shape[1] < 64
        or X.nbytes < GATHER_MIN_BYTES
        or not X.flags.c_contiguous
        or X.dtype not in (np.float32, np.float64)
    ):
        return take
    fn = kernel("gather_rows")
    if fn is None:
        return take

    def gather(idx, out):
        if idx.dtype != np.int64 or not idx.flags.c_contiguous or not out.flags.c_contiguous:
            return take(idx, out)
        try:
            fn(X, idx, out)
        except TypeError:  # an array type the kernel was not compiled for: NumPy does it
            return take(idx, out)
        return out

    return gather


def kernel(name: str):
    """The compiled function ``name`` (compiled on first use), or None when kernels are off or
    Numba is missing. The caller decides whether the work is large enough to be worth it."""
    if not _state["enabled"]:
        return None
    fn = _compiled.get(name, False)
    if fn is False:
        numba = _import_numba()
        if numba is None:
            return None
        try:
            fn = _build(numba, name)
        except Exception:  # a compiler problem must never stop training: use NumPy
            fn = None
        _compiled[name] = fn
    return fn


# --------------------------------------------------------------------------- the kernels
# Written as plain loops; `error_model="numpy"` lets LLVM vectorise them (no division check);
# each line mirrors one NumPy call of backprop/optimizers.py, in the same order.


def _sgd(p, g, lr):
    for i in range(p.shape[0]):
        p[i] = p[i] - g[i] * lr


def _momentum(p, g, v, lr, mu):
    for i in range(p.shape[0]):
        eg = g[i] * lr
        vi = v[i] * mu - eg
        v[i] = vi
        p[i] = p[i] + vi


def _nesterov(p, g, v, lr, mu):
    for i in range(p.shape[0]):
        eg = g[i] * lr
        vi = v[i] * mu - eg
        v[i] = vi
        p[i] = (p[i] - eg) + vi * mu


def _adagrad(p, g, G, lr, eps):
    for i in range(p.shape[0]):
        gi = g[i]
        Gi = G[i] + gi * gi
        G[i] = Gi
        p[i] = p[i] - (gi / (np.sqrt(Gi) + eps)) * lr


def _rmsprop(p, g, s, lr, alpha, one_minus_alpha, eps):
    for i in range(p.shape[0]):
        gi = g[i]
        si = s[i] * alpha + (gi * gi) * one_minus_alpha
        s[i] = si
        p[i] = p[i] - (gi / (np.sqrt(si) + eps)) * lr


def _adam(p, g, m, v, one_minus_b1, b2, one_minus_b2, step_size, eps_hat):
    for i in range(p.shape[0]):
        gi = g[i]
        mi = m[i] + (gi - m[i]) * one_minus_b1
        vi = v[i] * b2 + (gi * gi) * one_minus_b2
        m[i] = mi
        v[i] = vi
        p[i] = p[i] - (mi / (np.sqrt(vi) + eps_hat)) * step_size


def _add_scaled(w, g, c):
    """``g += w * c``: the L2 penalty's gradient ``lam / n * W`` added to the weight gradient in
    one pass (NumPy needs two and a scratch array: ``tmp = W * c``, ``g += tmp``)."""
    for i in range(w.shape[0]):
        g[i] = g[i] + w[i] * c


def _radam_plain(p, g, m, v, one_minus_b1, b2, one_minus_b2, step_size):
    for i in range(p.shape[0]):
        gi = g[i]
        mi = m[i] + (gi - m[i]) * one_minus_b1
        vi = v[i] * b2 + (gi * gi) * one_minus_b2
        m[i] = mi
        v[i] = vi
        p[i] = p[i] - mi * step_size


def _softmax_xent(Z, Y, A, D, scale):
    """Softmax of the logits ``Z`` into ``A``, the mean cross-entropy against ``Y`` (returned)
    and the output delta ``D = (A - Y) * scale`` (``scale = 1/n`` in the arrays' dtype), in one
    pass over the rows.

    NumPy needs about fifteen calls for this (max, shift, exp, sums, log, ...), each costing a
    microsecond or more even on a 16 x 10 batch; here it is one call. The loss is accumulated in
    float64; the arrays keep their dtype.
    """
    n, K = Z.shape
    total = 0.0
    for i in range(n):
        m = Z[i, 0]
        for k in range(1, K):
            if Z[i, k] > m:
                m = Z[i, k]
        s = 0.0
        for k in range(K):
            e = np.exp(Z[i, k] - m)
            A[i, k] = e
            s += e
        yz = 0.0
        for k in range(K):
            A[i, k] = A[i, k] / s
            yz += Y[i, k] * Z[i, k]
            D[i, k] = (A[i, k] - Y[i, k]) * scale
        total += (m + np.log(s)) - yz
    return total / n


def _gather_rows(X, idx, out):
    """``out[r] = X[idx[r]]`` for every ``r``: the rows of one shuffled mini-batch.

    ``np.take`` copies one row after the other, so a batch of random rows of a large array waits
    on memory once per row. Copying eight rows side by side keeps eight streams of reads in
    flight: 2.2x faster for 128 rows of 784 floats from 60,000 (docs/performance.md). The
    indices must be valid row numbers (the training loop's permutation); there is no check.
    """
    n = idx.shape[0]
    d = X.shape[1]
    r = 0
    while r + 8 <= n:
        x0 = X[idx[r]]
        x1 = X[idx[r + 1]]
        x2 = X[idx[r + 2]]
        x3 = X[idx[r + 3]]
        x4 = X[idx[r + 4]]
        x5 = X[idx[r + 5]]
        x6 = X[idx[r + 6]]
        x7 = X[idx[r + 7]]
        o0 = out[r]
        o1 = out[r + 1]
        o2 = out[r + 2]
        o3 = out[r + 3]
        o4 = out[r + 4]
        o5 = out[r + 5]
        o6 = out[r + 6]
        o7 = out[r + 7]
        for j in range(d):
            o0[j] = x0[j]
            o1[j] = x1[j]
            o2[j] = x2[j]
            o3[j] = x3[j]
            o4[j] = x4[j]
            o5[j] = x5[j]
            o6[j] = x6[j]
            o7[j] = x7[j]
        r += 8
    while r < n:
        x0 = X[idx[r]]
        o0 = out[r]
        for j in range(d):
            o0[j] = x0[j]
        r += 1


_PY = {
    "gather_rows": _gather_rows,
    "sgd": _sgd,
    "momentum": _momentum,
    "nesterov": _nesterov,
    "adagrad": _adagrad,
    "rmsprop": _rmsprop,
    "adam": _adam,
    "radam_plain": _radam_plain,
    "softmax_xent": _softmax_xent,
    "add_scaled": _add_scaled,
}


# The number of array and scalar arguments of each kernel (arrays first).
_ARITY = {
    "gather_rows": (3, 0),
    "sgd": (2, 1),
    "momentum": (3, 2),
    "nesterov": (3, 2),
    "adagrad": (3, 2),
    "rmsprop": (3, 4),
    "adam": (4, 5),
    "radam_plain": (4, 4),
    "softmax_xent": (4, 1),
    "add_scaled": (2, 1),
}


def _build(numba, name: str):
    """Compile ``name`` eagerly for float32 and float64 (so that a failure shows here, where it
    can fall back to NumPy, and not in the middle of a step); cached on disk by Numba."""
    n_arrays, n_scalars = _ARITY[name]
    sigs = []
    for t in (numba.float32, numba.float64):
        if name == "gather_rows":  # C-contiguous rows (writable or not), int64 row numbers
            for readonly in (False, True):
                X = numba.types.Array(t, 2, "C", readonly=readonly)
                sigs.append(numba.void(X, numba.int64[::1], t[:, ::1]))
        elif name == "softmax_xent":  # 2-D arrays of any memory layout; returns the loss
            # The targets may be the caller's read-only array; a writable one converts to this
            # type too (two signatures would make every writable call ambiguous).
            Y = numba.types.Array(t, 2, "A", readonly=True)
            sigs.append(numba.float64(t[:, :], Y, t[:, :], t[:, :], t))

        else:  # 1-D contiguous vectors, updated in place
            arrays = (t[::1],) * n_arrays
            sigs.append(numba.void(*arrays, *(t,) * n_scalars))
    return numba.njit(sigs, cache=True, nogil=True, error_model="numpy")(_PY[name])
