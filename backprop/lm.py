"""The neural probabilistic language model of Bengio et al. (2003).

The model (the paper's section 3; our ``E`` is the paper's ``C``)::

    x  = [E[w_{t-n+1}], ..., E[w_{t-1}]]         concatenated embeddings, (n-1) * dim values
    a  = tanh(d + H x)                           hidden layer, ``hidden`` units
    y  = b + W x + U a                           one score per word of the vocabulary
    P(w_t = i | context) = exp(y_i) / sum_j exp(y_j)

``W`` holds the optional direct connections from the embeddings to the output (``direct=True``);
``hidden=0`` leaves only them (the paper's MLP3). Looking up ``E[w]`` is the product of the
one-hot vector of ``w`` with ``E``, done as a row lookup (:class:`backprop.layers.Embedding`).

Training minimises the mean negative log-likelihood of the next word (cross-entropy) over the
n-gram windows of :mod:`backprop.lm_data`, so perplexities compare with the Kneser-Ney baseline
of :mod:`backprop.ngram` measured on the same streams. The softmax over the whole vocabulary
dominates the cost; it is computed in place on one ``(batch, |V|)`` buffer in float32, fused with
the cross-entropy on integer targets (never a one-hot matrix)::

    delta = dC/dy = (softmax(y) - onehot(target)) / batch

and the rest of the backward pass is three batched matrix products
(``dU = delta^T a``, ``dW = delta^T x``, ``delta @ [U W]``) plus the small hidden layer.

Besides the model: :func:`train_lm` (mini-batch training with validation perplexity per epoch,
early stopping, learning-rate decay on plateaus and resumable checkpoints), :func:`generate`,
:func:`nearest_words`, :func:`analogy`, and the mixture with an n-gram model that the paper's
best figure used (:func:`mixture_weight`). Model files: :func:`save_lm` / :func:`load_lm` (the
project's safetensors format, the vocabulary in the metadata).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ._validation import as_dtype, check_nonneg_float
from .callbacks import History, TrainingDiverged, atomic_write_bytes
from .layers import ActivationLayer, Dense, Dropout, Embedding, FlatParams, ParamDict
from .lm_data import (
    BOS_ID,
    EOS_ID,
    UNK_ID,
    Vocabulary,
    check_ids,
    context_window,
    ngram_arrays,
    prompt_stream,
)
from .optimizers import Optimizer, get_optimizer

__all__ = [
    "NeuralLM",
    "expected_shapes",
    "from_config",
    "train_lm",
    "TrainState",
    "save_lm",
    "load_lm",
    "save_checkpoint",
    "load_checkpoint",
    "generate",
    "nearest_words",
    "analogy",
    "mixture_weight",
    "mix_log_probs",
    "perplexity_from_log_probs",
]

#: Number of threads for the element-wise passes over the ``(batch, |V|)`` scores (the matrix
#: products use the BLAS library's own threads).
N_THREADS = max(1, min(2, os.cpu_count() or 1))
_POOL: ThreadPoolExecutor | None = None
_LIMITER = None
_BLAS_DEPTH = 0


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=N_THREADS, thread_name_prefix="backprop-lm")
    return _POOL


def _int_arg(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name}={value!r}: expected an int >= {minimum}")
    if value < minimum:
        raise ValueError(f"{name}={value!r}: expected an int >= {minimum}")
    return int(value)


def _prob_arg(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise TypeError(f"{name}={value!r}: expected a number in [0, 1)")
    v = float(value)
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{name}={value!r}: expected a number in [0, 1)")
    return v


# ---------------------------------------------------------------------------------------------
# Softmax + cross-entropy on integer targets, in place, over row blocks in parallel
# ---------------------------------------------------------------------------------------------


def _xent_rows(Z: np.ndarray, t: np.ndarray, scale: float, grad: bool) -> np.ndarray:
    """Rows of scores ``Z`` (edited in place) -> ``-log softmax(Z)[t]`` per row (float64).

    With ``grad`` ``Z`` becomes ``(softmax(Z) - onehot(t)) * scale``; otherwise it holds
    ``exp(Z - max)`` afterwards. The max is subtracted first so ``exp`` never overflows.
    """
    rows = np.arange(len(t))
    # A diverging run (inf or NaN scores) is caught by the caller's finite check, not by
    # floating-point warnings (errstate is per thread, so it is set here).
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        mx = Z.max(axis=1, keepdims=True)
        Z -= mx
        zt = Z[rows, t].astype(np.float64)
        np.exp(Z, out=Z)
        s = Z.sum(axis=1, dtype=np.float64)
        nll = np.log(s) - zt
        if grad:
            Z *= (scale / s).astype(Z.dtype)[:, None]
            Z[rows, t] -= Z.dtype.type(scale)
    return nll


def softmax_xent(Z: np.ndarray, t: np.ndarray, scale: float = 1.0, grad: bool = True):
    """Fused softmax and cross-entropy on integer targets, in place on the score matrix.

    Parameters
    ----------
    Z : numpy.ndarray, shape (n, V)
        Scores (logits), C-contiguous; overwritten.
    t : numpy.ndarray of int, shape (n,)
        Target index of each row.
    scale : float, default 1.0
        Factor of the gradient (``1 / batch`` for a mean loss).
    grad : bool, default True
        Leave ``(softmax(Z) - onehot(t)) * scale`` in ``Z`` (the output delta); otherwise ``Z``
        ends as garbage (the unnormalised probabilities).

    Returns
    -------
    numpy.ndarray of float64, shape (n,)
        ``-log softmax(Z)[i, t_i]`` for every row.

    Examples
    --------
    >>> Z = np.log(np.array([[0.5, 0.25, 0.25]], dtype=np.float32))
    >>> round(float(softmax_xent(Z, np.array([1]))[0]), 5)    # -log 0.25
    1.38629
    >>> Z.round(3).tolist()
    [[0.5, -0.75, 0.25]]
    """
    out = np.empty(Z.shape[0], dtype=np.float64)

    def rows(r):
        out[r] = _xent_rows(Z[r], t[r], scale, grad)

    _parallel(rows, Z.shape[0])
    return out


def _parallel(fn: Callable[[slice], None], n: int, min_part: int = 32) -> None:
    """Run ``fn(slice)`` on :data:`N_THREADS` consecutive parts of ``range(n)`` in parallel
    threads (NumPy and BLAS release the GIL), or on the whole range for small ``n``."""
    k = min(N_THREADS, max(1, n // min_part))
    if k == 1:
        fn(slice(0, n))
        return
    bounds = [n * i // k for i in range(k + 1)]
    futs = [_pool().submit(fn, slice(bounds[i], bounds[i + 1])) for i in range(1, k)]
    fn(slice(bounds[0], bounds[1]))  # this thread does the first part
    for f in futs:
        f.result()


@contextlib.contextmanager
def _single_blas():
    """BLAS limited to one thread inside the block; our own threads split the products.

    Two layers of threads on two cores fight, and OpenBLAS's busy-waiting threads collapse when
    another process holds a core. Re-entrant: nested blocks (a training step inside the
    training loop) leave the limit alone, because every change of OpenBLAS's thread count
    wakes its threads, which then spin for a while and eat a core.
    """
    global _LIMITER, _BLAS_DEPTH
    if _BLAS_DEPTH:
        _BLAS_DEPTH += 1
        try:
            yield
        finally:
            _BLAS_DEPTH -= 1
        return
    if _LIMITER is None:
        from threadpoolctl import ThreadpoolController

        _LIMITER = ThreadpoolController()
    with _LIMITER.limit(limits=1, user_api="blas"):
        _BLAS_DEPTH = 1
        try:
            yield
        finally:
            _BLAS_DEPTH = 0


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


def _param_shapes(
    n_vocab: int, order: int, dim: int, hidden: int, direct: bool
) -> dict[str, tuple[int, ...]]:
    c = (order - 1) * dim
    shapes: dict[str, tuple[int, ...]] = {"E": (n_vocab, dim)}
    if hidden:
        shapes["H"] = (hidden, c)
        shapes["d"] = (hidden,)
        shapes["U"] = (n_vocab, hidden)
    if direct:
        shapes["W"] = (n_vocab, c)
    shapes["b"] = (n_vocab,)
    return shapes


class NeuralLM(FlatParams):
    """Bengio et al. (2003)'s neural language model: ``P(w_t | w_{t-n+1} ... w_{t-1})``.

    ``y = b + W x + U tanh(d + H x)``, ``P = softmax(y)``, with ``x`` the ``n - 1`` context
    embeddings (rows of ``E``) concatenated.

    Parameters
    ----------
    n_vocab : int
        Vocabulary size ``|V|`` (ids ``0 .. n_vocab - 1``, see
        :class:`backprop.lm_data.Vocabulary`).
    order : int, default 5
        ``n`` of the n-grams: the model reads ``n - 1`` context words (paper: 3 to 6).
    dim : int, default 30
        Embedding width ``m`` (paper: 30 to 100).
    hidden : int, default 100
        Hidden tanh units ``h`` (paper: 0 to 100); 0 needs ``direct=True``.
    direct : bool, default True
        The direct connections ``W`` from the embeddings to the output.
    dropout : float, default 0.0
        Dropout probability on the hidden units during training (inverted dropout).
    input_dropout : float, default 0.0
        Dropout probability on the concatenated embeddings ``x`` during training.
    dtype : "float32" (default) or "float64"
    seed : int or numpy.random.Generator, optional
        The model's one Generator: initialisation, dropout and (in :func:`train_lm`) shuffling.

    Attributes
    ----------
    params : dict of numpy.ndarray
        ``E (n_vocab, dim)``, ``H (hidden, (n-1) dim)``, ``d (hidden,)``, ``U (n_vocab, hidden)``,
        ``W (n_vocab, (n-1) dim)``, ``b (n_vocab,)`` -- views into ``flat_params`` (``W`` as
        ``(n_out, n_in)`` as everywhere in the project). ``H, d, U`` are absent when
        ``hidden=0``, ``W`` when ``direct=False``.
    grads : dict of numpy.ndarray
        Same keys, views into ``flat_grads``.
    weight_keys : list of str
        The parameters an L2 penalty applies to (all but the biases ``d`` and ``b``; the paper
        decays ``E`` too).

    Examples
    --------
    >>> lm = NeuralLM(50, order=3, dim=4, hidden=8, seed=0)
    >>> lm.params["W"].shape, lm.params["U"].shape
    ((50, 8), (50, 8))
    >>> lm.log_proba([[1, 1], [1, 7]]).shape      # next-word log-probabilities
    (2, 50)
    """

    def __init__(
        self,
        n_vocab: int,
        order: int = 5,
        dim: int = 30,
        hidden: int = 100,
        *,
        direct: bool = True,
        dropout: float = 0.0,
        input_dropout: float = 0.0,
        dtype="float32",
        seed=None,
    ):
        self.n_vocab = _int_arg(n_vocab, "n_vocab", 2)
        self.order = _int_arg(order, "order", 2)
        self.dim = _int_arg(dim, "dim", 1)
        self.hidden = _int_arg(hidden, "hidden", 0)
        if not isinstance(direct, bool | np.bool_):
            raise TypeError(f"direct={direct!r}: expected True or False")
        self.direct = bool(direct)
        if self.hidden == 0 and not self.direct:
            raise ValueError("hidden=0 and direct=False leave no path to the output: expected one")
        self.dropout = _prob_arg(dropout, "dropout")
        self.input_dropout = _prob_arg(input_dropout, "input_dropout")
        self.dtype = as_dtype(dtype)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        c = (self.order - 1) * self.dim
        self.n_context = self.order - 1
        # The layers of the core do the embedding lookup, the hidden layer and dropout; the
        # output y = b + W x + U a is one matrix product here (see _consolidate).
        self.embedding = Embedding(self.n_vocab, self.dim, rng=self.rng, dtype=self.dtype)
        self.embedding.params["E"][...] = self.rng.normal(
            0.0, 1.0 / math.sqrt(self.dim), size=(self.n_vocab, self.dim)
        )
        self.input_drop = Dropout(self.input_dropout, rng=self.rng)
        self.hidden_layer = self.tanh = self.hidden_drop = None
        init: dict[str, np.ndarray] = {"E": self.embedding.params["E"]}
        if self.hidden:
            self.hidden_layer = Dense(c, self.hidden, rng=self.rng, dtype=self.dtype)
            self.tanh = ActivationLayer("tanh")
            self.hidden_drop = Dropout(self.dropout, rng=self.rng)
            init["H"] = self.hidden_layer.params["W"]
            init["d"] = self.hidden_layer.params["b"]
            init["U"] = _uniform(self.rng, (self.n_vocab, self.hidden), self.dtype)
        if self.direct:
            init["W"] = _uniform(self.rng, (self.n_vocab, c), self.dtype)
        init["b"] = np.zeros(self.n_vocab, dtype=self.dtype)
        self._consolidate(init)
        self._work: dict[tuple, np.ndarray] = {}

    # -- parameter storage -------------------------------------------------------------------
    def _consolidate(self, init: dict[str, np.ndarray]) -> None:
        """One flat vector ``[E | H | d | S]`` holds every parameter; ``params`` are views.

        The output parameters form one block ``S = [U^T; W^T; b]`` of shape ``(K + 1, V)``
        (``K = hidden + (order - 1) dim``), so that the scores of a batch are ONE matrix
        product ``y = [a, x, 1] @ S`` and their gradient ``dS = [a, x, 1]^T delta`` another
        (``db`` is its last row). ``params["U"]`` and ``params["W"]`` are the transposes of
        row blocks of ``S``: views of shape ``(V, hidden)`` and ``(V, (order - 1) dim)`` as the
        convention wants, in column-major layout.
        """
        V, h = self.n_vocab, self.hidden
        c = self.n_context * self.dim
        K = h + (c if self.direct else 0)
        self._K = K
        sizes = {"E": V * self.dim, "H": h * c, "d": h, "S": (K + 1) * V}
        total = sum(sizes.values())
        self.flat_params = np.empty(total, dtype=self.dtype)
        self.flat_grads = np.zeros(total, dtype=self.dtype)
        blocks, gblocks, off = {}, {}, 0
        for name, size in sizes.items():
            blocks[name] = self.flat_params[off : off + size]
            gblocks[name] = self.flat_grads[off : off + size]
            off += size
        views, gviews = {}, {}
        for store, src in ((views, blocks), (gviews, gblocks)):
            store["E"] = src["E"].reshape(V, self.dim)
            S = src["S"].reshape(K + 1, V)
            if h:
                store["H"] = src["H"].reshape(h, c)
                store["d"] = src["d"]
                store["U"] = S[:h].T
            if self.direct:
                store["W"] = S[h:K].T
            store["b"] = S[K]
            store["S"] = S
        self._S, self._dS = views.pop("S"), gviews.pop("S")
        params = ParamDict()
        for name, v in views.items():
            v[...] = init[name]
            dict.__setitem__(params, name, v)
        self.params, self.grads = params, gviews
        self.embedding._bind({"E": params["E"]}, {"E": gviews["E"]})
        if h:
            self.hidden_layer._bind(
                {"W": params["H"], "b": params["d"]}, {"W": gviews["H"], "b": gviews["d"]}
            )
        self.weight_keys = [k for k in ("E", "H", "U", "W") if k in params]

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_work"] = {}
        return state

    def __setstate__(self, state):
        # Unpickled views are separate arrays: gather them into one flat buffer again.
        self.__dict__.update(state)
        self._consolidate({k: np.array(v) for k, v in state["params"].items()})

    def to_config(self) -> dict:
        """The architecture as JSON (``type: "NeuralLM"``); :func:`from_config` rebuilds it."""
        return {
            "type": "NeuralLM",
            "n_vocab": self.n_vocab,
            "order": self.order,
            "dim": self.dim,
            "hidden": self.hidden,
            "direct": self.direct,
            "dropout": self.dropout,
            "input_dropout": self.input_dropout,
            "dtype": str(self.dtype),
        }

    def __repr__(self):
        return (
            f"NeuralLM(n_vocab={self.n_vocab}, order={self.order}, dim={self.dim}, "
            f"hidden={self.hidden}, direct={self.direct}, dropout={self.dropout}, "
            f"input_dropout={self.input_dropout}, dtype={str(self.dtype)!r})"
        )

    def init_output_bias(self, counts) -> None:
        """Start the output biases at the log unigram frequencies: ``b_i = log((c_i + 1) / Z)``.

        With ``U`` and ``W`` near zero the untrained model then predicts the (add-one smoothed)
        unigram distribution instead of the uniform one, which saves the first steps.

        Parameters
        ----------
        counts : array_like, shape (n_vocab,)
            Training count of every word (``Vocabulary.counts``).
        """
        c = np.asarray(counts, dtype=np.float64)
        if c.shape != (self.n_vocab,) or not np.all(np.isfinite(c)) or np.any(c < 0):
            raise ValueError(
                f"counts has shape {c.shape}: expected {self.n_vocab} finite non-negative counts"
            )
        p = (c + 1.0) / (c + 1.0).sum()
        self.params["b"][...] = np.log(p)

    # -- computation ---------------------------------------------------------------------------
    def _buffer(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A reused work array (the score matrix is large: reusing it saves page faults)."""
        key = (name, shape)
        buf = self._work.get(key)
        if buf is None:
            if len(self._work) > 8:
                self._work.clear()
            buf = self._work[key] = np.empty(shape, dtype=self.dtype)
        return buf

    def check_contexts(self, contexts) -> np.ndarray:
        """Contexts as a C-contiguous int array of shape ``(n, order - 1)``, ids checked."""
        C = np.asarray(contexts)
        if C.dtype == object or C.dtype.kind not in "iu":
            raise TypeError(f"contexts have dtype {C.dtype}: expected integer word ids")
        if C.ndim == 1 and C.shape[0] == self.n_context:
            C = C[None, :]
        if C.ndim != 2 or C.shape[1] != self.n_context:
            raise ValueError(
                f"contexts have shape {C.shape}: expected (n, {self.n_context}) -- "
                f"order={self.order} reads {self.n_context} words (use "
                "backprop.lm_data.context_window to cut or pad a longer or shorter history)"
            )
        if C.shape[0] == 0:
            raise ValueError("contexts are empty: expected at least one context")
        lo, hi = int(C.min()), int(C.max())
        if lo < 0 or hi >= self.n_vocab:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"contexts contain the word id {bad}: expected 0 <= id < {self.n_vocab}"
            )
        return np.ascontiguousarray(C, dtype=np.intp)

    def _check_targets(self, targets, n: int) -> np.ndarray:
        t = np.asarray(targets)
        if t.dtype == object or t.dtype.kind not in "iu":
            raise TypeError(f"targets have dtype {t.dtype}: expected integer word ids")
        if t.shape != (n,):
            raise ValueError(f"targets have shape {t.shape}: expected ({n},), one per context")
        if n and (int(t.min()) < 0 or int(t.max()) >= self.n_vocab):
            bad = int(t.min()) if int(t.min()) < 0 else int(t.max())
            raise ValueError(
                f"targets contain the word id {bad}: expected 0 <= id < {self.n_vocab}"
            )
        return np.ascontiguousarray(t, dtype=np.intp)

    def _inputs(self, C: np.ndarray, training: bool) -> np.ndarray:
        """``A1 = [a, x, 1]`` of shape (n, K + 1) in a reused buffer: the embeddings looked up
        and concatenated (``x``), the hidden layer ``a = tanh(d + H x)``, and a column of ones
        for the biases ``b``."""
        n, h, K = C.shape[0], self.hidden, self._K
        x = self.embedding.forward(C, training)  # (n, (order-1) dim): rows of E, concatenated
        x = self.input_drop.forward(x, training)
        A1 = self._buffer("A1", (n, K + 1))
        if h:
            a = self.tanh.forward(self.hidden_layer.forward(x, training), training)
            A1[:, :h] = self.hidden_drop.forward(a, training)
        if self.direct:
            A1[:, h:K] = x
        A1[:, K] = 1.0
        return A1

    def _forward(self, C: np.ndarray, training: bool) -> np.ndarray:
        """Scores ``y = U a + W x + b = [a, x, 1] @ S``, shape (n, V), in a reused buffer."""
        A1 = self._inputs(C, training)
        Y = self._buffer("scores", (C.shape[0], self.n_vocab))
        with _single_blas():
            _parallel(lambda r: np.matmul(A1[r], self._S, out=Y[r]), len(Y))
        return Y

    def _loss_grad(self, C: np.ndarray, t: np.ndarray, l2: float = 0.0, training: bool = True):
        """Forward + backward on checked arrays; fills ``flat_grads``; returns the mean NLL
        (plus the L2 term ``l2 / (2 n) * sum of squared weights``).

        The big products and the softmax run on both halves of the batch in parallel threads
        (each with a single-threaded BLAS call): rows for the scores, the softmax and
        ``[U W]^T delta``, columns of the vocabulary for ``dS``.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            return self._loss_grad_unguarded(C, t, l2, training)

    def _loss_grad_unguarded(self, C, t, l2, training):
        n, h, K = C.shape[0], self.hidden, self._K
        A1 = self._inputs(C, training)
        Y = self._buffer("scores", (n, self.n_vocab))
        dA = self._buffer("dA", (n, K))
        nll = np.empty(n, dtype=np.float64)
        S, dS = self._S, self._dS

        def rows(r):  # scores, fused softmax + cross-entropy, delta back into [a, x]
            np.matmul(A1[r], S, out=Y[r])  # y = U a + W x + b: one product
            nll[r] = _xent_rows(Y[r], t[r], 1.0 / n, True)  # Y <- delta = (p - onehot) / n
            np.matmul(Y[r], S[:K].T, out=dA[r])  # [U W]^T delta

        def cols(c):  # [dU^T; dW^T; db] = [a, x, 1]^T delta, one block of words per thread
            np.matmul(A1.T, Y[:, c], out=dS[:, c])

        with _single_blas():
            _parallel(rows, n)
            _parallel(cols, self.n_vocab)
        dx = dA[:, h:] if self.direct else None
        if h:
            da = self.hidden_drop.backward(dA[:, :h])
            dz = self.tanh.backward(da)  # * (1 - a^2)
            dxh = self.hidden_layer.backward(dz)  # fills dH, dd; returns H^T dz
            dx = dxh if dx is None else dx + dxh
        dx = self.input_drop.backward(dx)
        self.embedding.backward(dx)  # rows added into dE: repeated words accumulate
        value = float(nll.mean())
        if l2:
            c = l2 / n
            for k in self.weight_keys:
                p = self.params[k]
                value += 0.5 * c * float(np.vdot(p, p))
                self.grads[k] += self.dtype.type(c) * p
        return value

    def loss_and_grad(self, X, Y, loss=None, l2: float = 0.0, regularizers=(), training=True):
        """Mean cross-entropy of the next word and its gradient with respect to every parameter.

        Same call as :meth:`backprop.layers.Sequential.loss_and_grad`, so
        :func:`backprop.gradcheck` works on the model.

        Parameters
        ----------
        X : array_like of int, shape (n, order - 1)
            Contexts (word ids).
        Y : array_like of int, shape (n,)
            The word that follows each context.
        loss : None or "cross_entropy"
        l2 : float, default 0.0
            Adds ``l2 / (2 n) * sum W^2`` over :attr:`weight_keys`.
        regularizers : sequence
            Objects with ``value_and_grad(params)`` (e.g. :class:`backprop.SynapticPlasticity`).
        training : bool, default True
            Whether dropout is active.

        Returns
        -------
        loss : float
        grads : dict of numpy.ndarray
            Copies, same keys and shapes as :attr:`params`.
        """
        if loss not in (None, "cross_entropy"):
            raise ValueError(f"loss={loss!r}: the language model is trained with cross_entropy")
        l2 = check_nonneg_float(l2, "l2")
        C = self.check_contexts(X)
        t = self._check_targets(Y, len(C))
        value = self._loss_grad(C, t, l2, training)
        for r in regularizers:
            reg, gr = r.value_and_grad(self.params)
            value += reg
            for k, v in gr.items():
                self.grads[k] += v
        return value, {k: v.copy() for k, v in self.grads.items()}

    def logits(self, contexts) -> np.ndarray:
        """Scores ``y = b + W x + U tanh(d + H x)`` (dropout off), shape ``(n, n_vocab)``."""
        return self._forward(self.check_contexts(contexts), False).copy()

    def log_proba(self, contexts) -> np.ndarray:
        """Log-probabilities of the next word, shape ``(n, n_vocab)``, in the model's dtype."""
        Y = self.logits(contexts)
        Y -= Y.max(axis=1, keepdims=True)
        Y -= np.log(np.exp(Y).sum(axis=1, keepdims=True))
        return Y

    def log_prob(self, contexts, targets, *, batch_size: int = 1024) -> np.ndarray:
        """``log P(target_i | context_i)`` for every row, computed in batches (float64).

        Parameters
        ----------
        contexts : array_like of int, shape (N, order - 1)
        targets : array_like of int, shape (N,)
        batch_size : int, default 1024
            Rows per batch (the score buffer is ``batch_size * n_vocab`` values).

        Returns
        -------
        numpy.ndarray of float64, shape (N,)
        """
        batch_size = _int_arg(batch_size, "batch_size", 1)
        C = self.check_contexts(contexts)
        t = self._check_targets(targets, len(C))
        out = np.empty(len(C), dtype=np.float64)
        with _single_blas():
            for s in range(0, len(C), batch_size):
                A1 = self._inputs(C[s : s + batch_size], False)
                Y = self._buffer("scores", (len(A1), self.n_vocab))
                ts, os_ = t[s : s + batch_size], out[s : s + batch_size]

                def rows(r, A1=A1, Y=Y, ts=ts, os_=os_):
                    np.matmul(A1[r], self._S, out=Y[r])
                    os_[r] = -_xent_rows(Y[r], ts[r], 1.0, False)

                _parallel(rows, len(A1))
        return out

    def perplexity(self, ids, *, batch_size: int = 1024, exclude_eos: bool = False) -> float:
        """Perplexity ``exp(-mean log P)`` of an encoded stream (every token scored, ``</s>``
        included, with the boundary rule of :mod:`backprop.lm_data`).

        Parameters
        ----------
        ids : array_like of int, shape (N,)
            A stream from ``Vocabulary.encode`` (``</s>`` after every sentence).
        batch_size : int, default 1024
        exclude_eos : bool, default False
            Leave the ``</s>`` targets out of the mean (the "words only" figure).

        Examples
        --------
        >>> lm = NeuralLM(10, order=3, dim=2, hidden=3, seed=0)
        >>> 5 < lm.perplexity([3, 4, 2, 5, 2]) < 20    # untrained: near |V| = 10
        True
        """
        ids = check_ids(ids, self.n_vocab)
        C, t = ngram_arrays(ids, self.order)
        lp = self.log_prob(C, t, batch_size=batch_size)
        if exclude_eos:
            lp = lp[t != EOS_ID]
        return perplexity_from_log_probs(lp)


def _uniform(rng, shape, dtype) -> np.ndarray:
    """Glorot-uniform weights for an output matrix of shape (n_out, n_in)."""
    limit = math.sqrt(6.0 / (shape[0] + shape[1]))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def expected_shapes(config) -> tuple[str, dict[str, tuple[int, ...]], int]:
    """From a :meth:`NeuralLM.to_config` dict alone: (dtype name, ``{tensor: shape}``, outputs).

    Used by :mod:`backprop.io` to check a model file before reading any weight.

    Raises
    ------
    ValueError
        The config is not a valid NeuralLM description.
    """
    if not isinstance(config, dict) or config.get("type") != "NeuralLM":
        raise ValueError("the architecture is not a dict of type 'NeuralLM'")
    vals = {}
    for key, lo in (("n_vocab", 2), ("order", 2), ("dim", 1), ("hidden", 0)):
        v = config.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= 2**31:
            raise ValueError(f"{key}={v!r} in the architecture is not a valid size")
        vals[key] = v
    direct = config.get("direct", True)
    if not isinstance(direct, bool) or (vals["hidden"] == 0 and not direct):
        raise ValueError(f"direct={direct!r} in the architecture is invalid")
    dtype = config.get("dtype", "float32")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype {dtype!r} in the architecture is not supported")
    shapes = _param_shapes(vals["n_vocab"], vals["order"], vals["dim"], vals["hidden"], direct)
    return dtype, shapes, vals["n_vocab"]


def from_config(config: dict, seed=None) -> NeuralLM:
    """Rebuild an (untrained) :class:`NeuralLM` from :meth:`NeuralLM.to_config`."""
    expected_shapes(config)
    return NeuralLM(
        config["n_vocab"],
        config["order"],
        config["dim"],
        config["hidden"],
        direct=config.get("direct", True),
        dropout=config.get("dropout", 0.0),
        input_dropout=config.get("input_dropout", 0.0),
        dtype=config.get("dtype", "float32"),
        seed=seed,
    )


def _ppl(mean_nll: float) -> float:
    """Perplexity ``exp(mean negative log-likelihood)``; infinity past float range (a loss above
    about 709 nats, in a diverging run, made ``math.exp`` raise OverflowError)."""
    return math.exp(mean_nll) if mean_nll < 709.0 else math.inf


def perplexity_from_log_probs(log_probs) -> float:
    """``exp(-mean(log_probs))``.

    Examples
    --------
    >>> perplexity_from_log_probs(np.log([0.5, 0.125]))
    4.0
    """
    lp = np.asarray(log_probs, dtype=np.float64)
    if lp.size == 0:
        raise ValueError("log_probs is empty: expected at least one token")
    return _ppl(float(-lp.mean()))


# ---------------------------------------------------------------------------------------------
# Mixture with an n-gram model (the paper's "mix" column)
# ---------------------------------------------------------------------------------------------


def mix_log_probs(lp_a, lp_b, weight: float) -> np.ndarray:
    """``log(weight * P_a + (1 - weight) * P_b)`` from the two models' log-probabilities."""
    w = float(weight)
    if not 0.0 <= w <= 1.0:
        raise ValueError(f"weight={weight!r}: expected a number in [0, 1]")
    a = np.asarray(lp_a, dtype=np.float64)
    b = np.asarray(lp_b, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.logaddexp(a + np.log(w), b + np.log1p(-w))


def mixture_weight(lp_a, lp_b, *, iters: int = 100, tol: float = 1e-7) -> float:
    """The weight ``w`` of model a in ``w P_a + (1 - w) P_b`` that maximises the likelihood of
    held-out tokens (EM; the paper fitted its mixture weights on validation data).

    Parameters
    ----------
    lp_a, lp_b : array_like of float, shape (N,)
        Each model's ``log P(token)`` on the same validation tokens.

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> a = np.log([0.9, 0.1, 0.5]); b = np.log([0.1, 0.9, 0.5])
    >>> round(mixture_weight(a, b), 3)
    0.5
    """
    a = np.asarray(lp_a, dtype=np.float64)
    b = np.asarray(lp_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"lp_a and lp_b have shapes {a.shape}, {b.shape}: expected equal (N,)")
    w = 0.5
    for _ in range(iters):
        la, lb = a + math.log(w), b + math.log1p(-w)
        post = np.exp(la - np.logaddexp(la, lb))  # responsibility of model a per token
        new = float(np.clip(post.mean(), 1e-6, 1 - 1e-6))
        if abs(new - w) < tol:
            return new
        w = new
    return w


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


@dataclass
class TrainState:
    """Where a run stands; everything a checkpoint needs besides the arrays.

    ``epoch`` counts finished epochs; ``batch`` the batches done in the current one;
    ``epoch_rng`` is the Generator state at the start of the current epoch (the shuffle is
    drawn from it, so a resumed run sees the same order). ``stop_kind`` says why a finished
    run stopped: ``"epochs"``, ``"time"`` (both may be continued with more epochs or time) or
    ``"early"`` (early stopping: final).
    """

    epoch: int = 0
    batch: int = 0
    epoch_rng: dict | None = None
    best_loss: float = math.inf
    bad_epochs: int = 0
    epoch_loss_sum: float = 0.0
    epoch_tokens: int = 0
    epoch_seconds: float = 0.0
    total_seconds: float = 0.0
    lr_scale: float = 1.0
    done: bool = False
    stop_kind: str = ""


def _check_checkpoint_path(path) -> None:
    """Refuse, before any training, a checkpoint file that could not be written (the first one
    is written after the first epoch)."""
    shown = os.fspath(path)
    p = os.path.abspath(shown)
    d = os.path.dirname(p)
    if os.path.isdir(p):
        raise IsADirectoryError(f"checkpoint {shown}: is a directory; expected a file name")
    if not os.path.isdir(d):
        raise FileNotFoundError(f"checkpoint {shown}: no such directory {d}")
    if not os.access(d, os.W_OK | os.X_OK):
        raise PermissionError(f"checkpoint {shown}: the directory {d} is not writable")


def _fingerprint(ids: np.ndarray) -> str:
    return f"{len(ids)}:{zlib.crc32(np.ascontiguousarray(ids, dtype=np.int32).tobytes()):08x}"


def train_lm(
    model: NeuralLM,
    train_ids,
    valid_ids=None,
    *,
    optimizer="adam",
    lr: float = 1e-3,
    epochs: int = 10,
    batch_size: int = 256,
    l2: float = 0.0,
    patience: int = 2,
    lr_decay: float = 0.5,
    min_delta: float = 1e-3,
    max_seconds: float | None = None,
    anneal: bool = False,
    checkpoint=None,
    resume: bool = False,
    checkpoint_every: float = 300.0,
    progress: Callable[[dict], None] | None = None,
    report_every: float = 10.0,
    eval_batch_size: int = 1024,
    extra: dict | None = None,
) -> History:
    """Train ``model`` by mini-batch gradient descent on the next-word cross-entropy.

    Each epoch visits every (context, next word) window of ``train_ids`` once, in an order
    shuffled by ``model.rng``; then the validation perplexity is measured. When it has not
    improved by ``min_delta`` (in log-perplexity) the learning rate is multiplied by
    ``lr_decay``; after ``patience`` such epochs in a row training stops. In every case the
    weights of the best validation epoch are restored at the end.

    Parameters
    ----------
    model : NeuralLM
    train_ids : array_like of int, shape (N,)
        Encoded training stream (``</s>`` after every sentence).
    valid_ids : array_like of int, optional
        Encoded validation stream; without it there is no early stopping.
    optimizer : str, dict or Optimizer, default "adam"
        See :func:`backprop.optimizers.get_optimizer`; it updates ``model.flat_params``. An
        optimizer whose ``lr`` is a schedule needs ``lr_decay=1.0``.
    lr : float, default 1e-3
        Learning rate (ignored when ``optimizer`` is an instance or a config).
    epochs : int, default 10
    batch_size : int, default 256
    l2 : float, default 0.0
        Weight decay ``l2 / (2 n) sum w^2`` on ``E, H, U, W`` per batch of ``n``.
    patience : int, default 2
        Epochs without improvement before stopping.
    lr_decay : float, default 0.5
        Learning-rate factor after an epoch without improvement (1.0: never decay).
    min_delta : float, default 1e-3
        Smallest decrease of the validation loss (nats) that counts as an improvement.
    max_seconds : float, optional
        Wall-clock budget of the run (validation included). When it is reached inside an
        epoch, that partial epoch is validated like a full one and training stops.
    anneal : bool, default False
        With ``max_seconds``: scale the learning rate by ``1 - elapsed / max_seconds`` (linear
        decay to zero over the time budget, floored at 1 %), the usual way to spend a fixed
        budget well. The rate then depends on the machine's speed.
    checkpoint : str or os.PathLike, optional
        File written after every epoch, every ``checkpoint_every`` seconds and when training
        stops or is interrupted (:func:`save_checkpoint`).
    resume : bool, default False
        Continue from ``checkpoint`` when that file exists: weights, optimizer state,
        Generator state, position in the epoch and history are restored, so the resumed run
        goes on where the interrupted one stopped (same batches, same dropout masks).
    checkpoint_every : float, default 300
        Seconds between checkpoints inside an epoch.
    progress : callable, optional
        Called with a dict: ``{"event": "batch", "epoch", "batch", "n_batches", "tokens",
        "tokens_per_s", "ppl", "lr"}`` about every ``report_every`` seconds (``ppl``: the
        running training perplexity of the epoch), ``{"event": "epoch", "epoch", "train_ppl",
        "valid_ppl", "seconds", "tokens", "tokens_per_s", "eval_tokens_per_s", "lr", "best"}``
        after every epoch (``tokens``: those trained on, fewer in a partial epoch),
        ``{"event": "resume", "epoch", "batch"}`` and ``{"event": "stop", "reason"}``.
    report_every : float, default 10
    eval_batch_size : int, default 1024
    extra : dict, optional
        JSON stored in the checkpoint (e.g. the vocabulary), returned by :func:`load_checkpoint`.

    Returns
    -------
    History
        ``loss`` / ``val_loss`` are mean cross-entropies in nats per token (perplexity =
        ``exp``), ``lr``, ``epoch_time``, ``n_steps``, ``best_epoch``, ``stop_reason``,
        ``interrupted`` (Ctrl-C: training stops at the end of the current batch, the checkpoint
        is written and the best weights are restored; a second Ctrl-C stops at once).

    Raises
    ------
    TrainingDiverged
        The loss became NaN or infinite; the model keeps the best weights (or those at the
        start of the epoch).

    Examples
    --------
    >>> lm = NeuralLM(10, order=3, dim=4, hidden=8, seed=0)
    >>> h = train_lm(lm, [3, 4, 5, 2] * 50, [3, 4, 5, 2] * 5, epochs=5, lr=0.05, batch_size=16)
    >>> round(math.exp(min(h.val_loss)), 2)    # every next word is certain here
    1.0
    """
    if not isinstance(model, NeuralLM):
        raise TypeError(f"model is a {type(model).__name__}: expected a NeuralLM")
    train = check_ids(train_ids, model.n_vocab, name="train_ids")
    valid = None if valid_ids is None else check_ids(valid_ids, model.n_vocab, name="valid_ids")
    epochs = _int_arg(epochs, "epochs", 1)
    batch_size = _int_arg(batch_size, "batch_size", 1)
    patience = _int_arg(patience, "patience", 1)
    eval_batch_size = _int_arg(eval_batch_size, "eval_batch_size", 1)
    l2 = check_nonneg_float(l2, "l2")
    min_delta = check_nonneg_float(min_delta, "min_delta")
    lr_decay = float(lr_decay)
    if not 0.0 < lr_decay <= 1.0:
        raise ValueError(f"lr_decay={lr_decay!r}: expected a number in (0, 1]")
    if max_seconds is not None and not float(max_seconds) > 0:
        raise ValueError(f"max_seconds={max_seconds!r}: expected a positive number or None")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path")
    if checkpoint is not None:
        _check_checkpoint_path(checkpoint)
    if anneal and max_seconds is None:
        raise ValueError("anneal=True needs max_seconds (the budget the rate decays over)")
    opt = optimizer if isinstance(optimizer, Optimizer) else get_optimizer(optimizer, lr=lr)
    if isinstance(optimizer, dict):
        opt = get_optimizer(optimizer)
    base_lr = opt.lr
    if not isinstance(base_lr, int | float) and (lr_decay != 1.0 or anneal):
        raise ValueError(
            f"lr_decay={lr_decay!r}, anneal={anneal!r} with a learning-rate schedule: expected "
            "lr_decay=1.0 and anneal=False (the schedule sets the rate)"
        )

    C_all, t_all = ngram_arrays(train, model.order)
    C_all = C_all.astype(np.intp)
    t_all = t_all.astype(np.intp)
    N = len(t_all)
    n_batches = -(-N // batch_size)
    C_val = t_val = None
    if valid is not None:
        C_val, t_val = ngram_arrays(valid, model.order)
    settings = {
        "batch_size": batch_size,
        "l2": l2,
        "patience": patience,
        "lr_decay": lr_decay,
        "min_delta": min_delta,
        "epochs": epochs,
        "max_seconds": max_seconds,
        "anneal": bool(anneal),
        "optimizer": opt.to_config(),
        "train": _fingerprint(train),
        "valid": None if valid is None else _fingerprint(valid),
    }

    history = History()
    state = TrainState()
    best = None
    if resume and os.path.exists(checkpoint):
        ck = load_checkpoint(checkpoint, model=model, optimizer=opt)
        old = ck["settings"]
        for key in ("batch_size", "train", "valid"):
            if old.get(key) != settings[key]:
                raise ValueError(
                    f"{checkpoint}: the checkpoint was made with {key}={old.get(key)!r}, this run "
                    f"has {settings[key]!r}: expected the same data and batch size to resume"
                )
        history, state, best = ck["history"], ck["state"], ck["best"]
        if ck["base_lr"] is not None:
            base_lr = ck["base_lr"]
        more = (state.stop_kind == "epochs" and epochs > state.epoch) or (
            state.stop_kind == "time"
            and (max_seconds is None or float(max_seconds) > state.total_seconds)
        )
        if state.done and not more:
            if progress:
                progress(
                    {
                        "event": "stop",
                        "reason": f"the checkpoint's run had already finished "
                        f"({history.stop_reason}); delete {os.fspath(checkpoint)} to start over",
                    }
                )
            _restore_best(model, best)
            return history
        state.done, state.stop_kind = False, ""
        history.interrupted, history.stop_reason = False, ""
        if progress:
            progress({"event": "resume", "epoch": state.epoch + 1, "batch": state.batch})
    _set_lr(opt, base_lr, state.lr_scale)

    def write_checkpoint():
        if checkpoint is not None:
            save_checkpoint(
                checkpoint, model, opt, state, history, best, settings, base_lr, extra=extra
            )

    def log_event(d):
        if progress:
            progress(d)

    started = time.perf_counter() - state.total_seconds
    last_ckpt = time.perf_counter()
    stop_reason = ""
    last_good = model.flat_params.copy()
    try:
        with _DeferredInterrupt() as interrupt, _single_blas():
            while state.epoch < epochs and not stop_reason:
                if state.batch == 0:
                    state.epoch_rng = model.rng.bit_generator.state
                    state.epoch_loss_sum, state.epoch_tokens, state.epoch_seconds = 0.0, 0, 0.0
                    perm = model.rng.permutation(N)
                else:  # resuming inside an epoch: redraw the same order, then go on from there
                    cur = model.rng.bit_generator.state
                    model.rng.bit_generator.state = state.epoch_rng
                    perm = model.rng.permutation(N)
                    model.rng.bit_generator.state = cur
                np.copyto(last_good, model.flat_params)
                t_epoch = time.perf_counter() - state.epoch_seconds
                t_report, tok_report = time.perf_counter(), state.epoch_tokens
                while state.batch < n_batches:
                    idx = perm[state.batch * batch_size : (state.batch + 1) * batch_size]
                    loss = model._loss_grad(C_all[idx], t_all[idx], l2, True)
                    if not math.isfinite(loss):
                        np.copyto(model.flat_params, best if best is not None else last_good)
                        raise _Diverged(
                            f"the training loss became {loss} at epoch {state.epoch + 1}, batch "
                            f"{state.batch + 1}: lower the learning rate "
                            f"(lr={opt.current_lr():g})"
                        )
                    if anneal:
                        frac = (time.perf_counter() - started) / float(max_seconds)
                        _set_lr(opt, base_lr, state.lr_scale * max(1.0 - frac, 0.01))
                    opt.step({"flat": model.flat_params}, {"flat": model.flat_grads})
                    history.n_steps += 1
                    state.batch += 1
                    state.epoch_loss_sum += loss * len(idx)
                    state.epoch_tokens += len(idx)
                    now = time.perf_counter()
                    state.epoch_seconds = now - t_epoch
                    state.total_seconds = now - started
                    if now - t_report >= report_every:
                        log_event(
                            {
                                "event": "batch",
                                "epoch": state.epoch + 1,
                                "batch": state.batch,
                                "n_batches": n_batches,
                                "tokens": state.epoch_tokens,
                                "tokens_per_s": (state.epoch_tokens - tok_report)
                                / (now - t_report),
                                "ppl": _ppl(state.epoch_loss_sum / state.epoch_tokens),
                                "lr": opt.current_lr(),
                            }
                        )
                        t_report, tok_report = now, state.epoch_tokens
                    if interrupt.requested:
                        raise KeyboardInterrupt
                    if max_seconds is not None and state.total_seconds >= max_seconds:
                        stop_reason = f"time budget of {max_seconds:g} s reached"
                        state.stop_kind = "time"
                        break
                    if checkpoint is not None and now - last_ckpt >= checkpoint_every:
                        write_checkpoint()
                        last_ckpt = time.perf_counter()
                # -- end of the epoch (or of the budget): validation, lr decay, early stopping
                partial = state.batch < n_batches
                train_loss = state.epoch_loss_sum / max(state.epoch_tokens, 1)
                history.loss.append(train_loss)
                history.lr.append(opt.current_lr())
                history.epoch_time.append(state.epoch_seconds)
                state.epoch += 1
                state.batch = 0
                msg = {
                    "event": "epoch",
                    "epoch": state.epoch,
                    "partial": partial,
                    "train_ppl": _ppl(train_loss),
                    "seconds": state.epoch_seconds,
                    "tokens": state.epoch_tokens,
                    "tokens_per_s": state.epoch_tokens / max(state.epoch_seconds, 1e-9),
                    "lr": opt.current_lr(),
                }
                if valid is not None:
                    t0 = time.perf_counter()
                    val_loss = float(
                        -model.log_prob(C_val, t_val, batch_size=eval_batch_size).mean()
                    )
                    msg["eval_seconds"] = time.perf_counter() - t0
                    msg["eval_tokens_per_s"] = len(t_val) / max(msg["eval_seconds"], 1e-9)
                    if not math.isfinite(val_loss):
                        np.copyto(model.flat_params, best if best is not None else last_good)
                        raise _Diverged(
                            f"the validation loss became {val_loss} at epoch {state.epoch}: "
                            f"lower the learning rate (lr={opt.current_lr():g})"
                        )
                    history.val_loss.append(val_loss)
                    msg["valid_ppl"] = _ppl(val_loss)
                    msg["best"] = val_loss < state.best_loss - min_delta
                    if msg["best"]:
                        state.best_loss, state.bad_epochs = val_loss, 0
                        best = model.flat_params.copy()
                        history.best_epoch = state.epoch
                    elif not partial:
                        state.bad_epochs += 1
                        if state.bad_epochs >= patience:
                            stop_reason = (
                                f"early stopping: validation perplexity did not improve for "
                                f"{patience} epoch(s) (best {_ppl(state.best_loss):.2f} at "
                                f"epoch {history.best_epoch})"
                            )
                            state.stop_kind = "early"
                        elif lr_decay < 1.0:
                            state.lr_scale *= lr_decay
                            _set_lr(opt, base_lr, state.lr_scale)
                            msg["lr_decayed_to"] = opt.current_lr()
                state.total_seconds = time.perf_counter() - started
                log_event(msg)
                if not stop_reason and max_seconds is not None:
                    if state.total_seconds >= max_seconds:
                        stop_reason = f"time budget of {max_seconds:g} s reached"
                        state.stop_kind = "time"
                if state.epoch >= epochs and not stop_reason:
                    stop_reason = f"finished {epochs} epoch(s)"
                    state.stop_kind = "epochs"
                state.done = bool(stop_reason)
                history.stop_reason = stop_reason
                write_checkpoint()
                last_ckpt = time.perf_counter()
                if interrupt.requested:
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        history.interrupted = True
        stop_reason = "interrupted (Ctrl-C): resume with the same checkpoint"
        write_checkpoint()
    except _Diverged as exc:
        history.stop_reason = str(exc)
        log_event({"event": "stop", "reason": str(exc)})
        raise TrainingDiverged(str(exc), history) from None
    history.stop_reason = stop_reason
    log_event({"event": "stop", "reason": stop_reason})
    _restore_best(model, best)
    return history


class _Diverged(Exception):
    pass


class _DeferredInterrupt:
    """Within the block, a first Ctrl-C only sets ``requested`` (the loop stops at the end of
    the batch, with a consistent state); a second one raises at once. Main thread only."""

    def __init__(self):
        self.requested = False
        self._old = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        import signal

        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


def _set_lr(opt: Optimizer, base_lr, scale: float) -> None:
    opt.lr = base_lr if scale == 1.0 else base_lr * scale


def _restore_best(model: NeuralLM, best) -> None:
    if best is not None:
        np.copyto(model.flat_params, best)


# ---------------------------------------------------------------------------------------------
# Files: the model (project format) and training checkpoints
# ---------------------------------------------------------------------------------------------


def save_lm(
    model: NeuralLM, path, vocab: Vocabulary, *, training=None, history=None, extra=None
) -> str:
    """Write the model and its vocabulary to a backprop model file (safetensors), atomically.

    The tensors are ``E, H, d, U, W, b`` (as in :attr:`NeuralLM.params`); the metadata holds
    the architecture (``config``), ``training`` and ``history``, and ``extra["vocab"]``
    (:meth:`Vocabulary.to_config`). :func:`load_lm` and :func:`backprop.io.load` read it back.

    Examples
    --------
    >>> save_lm(lm, "brown.safetensors", vocab, training={"test_ppl": 140.0})  # doctest: +SKIP
    """
    from . import io

    if not isinstance(model, NeuralLM):
        raise TypeError(f"model is a {type(model).__name__}: expected a NeuralLM")
    if not isinstance(vocab, Vocabulary):
        raise TypeError(f"vocab is a {type(vocab).__name__}: expected a Vocabulary")
    if len(vocab) != model.n_vocab:
        raise ValueError(
            f"the vocabulary has {len(vocab)} words but the model {model.n_vocab}: expected equal"
        )
    ext = dict(extra or {})
    ext["vocab"] = vocab.to_config()
    return io.save(model, path, training=training, history=history, extra=ext)


def load_lm(path) -> tuple[NeuralLM, Vocabulary]:
    """Read a file written by :func:`save_lm`: ``(model, vocabulary)``.

    ``model.metadata`` holds the file's metadata (``training``, ``history``, ``extra``).

    Raises
    ------
    backprop.io.ModelFileError
        Not a model file, corrupt, or not a language model (no vocabulary).
    """
    from . import io

    model = io.load(path)
    if not isinstance(model, NeuralLM):
        raise io.ModelFileError(
            f"{os.fspath(path)}: holds a {type(model).__name__}, not a language model "
            "(train one with `backprop lm train`)"
        )
    voc = (model.metadata.get("extra") or {}).get("vocab")
    try:
        vocab = Vocabulary.from_config(voc)
    except (TypeError, ValueError) as exc:
        raise io.ModelFileError(
            f"{os.fspath(path)}: the vocabulary is unreadable ({exc})"
        ) from None
    if len(vocab) != model.n_vocab:
        raise io.ModelFileError(
            f"{os.fspath(path)}: the vocabulary has {len(vocab)} words, the model "
            f"{model.n_vocab}: corrupt file"
        )
    return model, vocab


_CKPT_FORMAT = "backprop-lm-checkpoint"


def save_checkpoint(
    path, model, optimizer, state, history, best, settings, base_lr, *, extra=None
) -> None:
    """Write everything needed to resume :func:`train_lm` to one safetensors file, atomically.

    Tensors: ``param.<name>`` (the current weights), ``best.flat`` (the best weights so far, if
    any) and ``opt.<slot>.<key>`` (the optimizer's state arrays). Metadata (JSON): the model
    config, the optimizer's ``t`` and hyperparameters, :class:`TrainState` (Generator states
    included), the history, the run's settings and ``extra``.
    """
    from safetensors.numpy import save as st_save

    tensors = {f"param.{k}": np.ascontiguousarray(v) for k, v in model.params.items()}
    if best is not None:
        tensors["best.flat"] = best
    sd = optimizer.state_dict()
    for k, v in sd["state"].items():
        tensors[f"opt.{k}"] = np.ascontiguousarray(v)
    lr_cfg = base_lr.to_config() if hasattr(base_lr, "to_config") else base_lr
    meta = {
        "format": _CKPT_FORMAT,
        "config": model.to_config(),
        "optimizer": {"name": sd["name"], "t": sd["t"], "hyper": sd["hyper"]},
        "base_lr": lr_cfg,
        "state": {**state.__dict__, "rng": model.rng.bit_generator.state},
        "history": history.to_dict(),
        "settings": settings,
        "extra": extra,
    }
    text = json.dumps(meta, separators=(",", ":"), default=_json_default)
    atomic_write_bytes(path, st_save(tensors, metadata={"format": _CKPT_FORMAT, "json": text}))


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON")


def load_checkpoint(path, *, model: NeuralLM | None = None, optimizer: Optimizer | None = None):
    """Read a checkpoint of :func:`save_checkpoint`.

    With ``model`` (whose architecture must match) the weights and the Generator state are
    restored into it; with ``optimizer`` its state. Returns a dict with ``config``, ``state``
    (:class:`TrainState`), ``history`` (:class:`History`), ``best`` (flat array or None),
    ``settings``, ``base_lr`` and ``extra``.

    Raises
    ------
    ValueError
        Not a checkpoint, corrupt, or made for another architecture.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    p = os.fspath(path)
    try:
        arrays = load_file(p)
        with open(p, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(n))
        meta = json.loads(header["__metadata__"]["json"])
        if header["__metadata__"].get("format") != _CKPT_FORMAT:
            raise KeyError("format")
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{p}: not a language-model checkpoint or corrupt ({exc})") from None
    cfg = meta["config"]
    if model is not None:
        if cfg != model.to_config():
            raise ValueError(
                f"{p}: the checkpoint is for {cfg}, the model is {model.to_config()}: expected "
                "the same architecture to resume"
            )
        for k in model.params:
            arr = arrays.get(f"param.{k}")
            if arr is None or arr.shape != model.params[k].shape:
                raise ValueError(f"{p}: tensor param.{k} is missing or has the wrong shape")
            model.params[k][...] = arr
        st = meta["state"]
        model.rng.bit_generator.state = st["rng"]
    if optimizer is not None:
        o = meta["optimizer"]
        state = {k[4:]: v for k, v in arrays.items() if k.startswith("opt.")}
        optimizer.load_state_dict(
            {"name": o["name"], "t": o["t"], "hyper": o["hyper"], "state": state}
        )
    st = dict(meta["state"])
    st.pop("rng", None)
    base_lr = meta.get("base_lr")
    if isinstance(base_lr, dict):
        from .schedules import from_config as schedule_from_config

        base_lr = schedule_from_config(base_lr)
    return {
        "config": cfg,
        "state": TrainState(**st),
        "history": History.from_dict(meta["history"]),
        "best": arrays.get("best.flat"),
        "settings": meta["settings"],
        "base_lr": base_lr,
        "extra": meta.get("extra"),
    }


# ---------------------------------------------------------------------------------------------
# Using a trained model
# ---------------------------------------------------------------------------------------------


def _encode_prompt(vocab: Vocabulary, prompt) -> tuple[list[str], list[str]]:
    if isinstance(prompt, str):
        from .lm_data import tokenize

        toks = tokenize(prompt)
    else:
        toks = list(prompt)
    unknown = [t for t in toks if t not in vocab]
    return toks, unknown


def generate(
    model: NeuralLM,
    vocab: Vocabulary,
    prompt: str | Sequence[str] = "",
    *,
    max_tokens: int = 30,
    temperature: float = 1.0,
    top_k: int | None = None,
    rng=None,
    stop_at_eos: bool = True,
    allow_unk: bool = False,
) -> list[str]:
    """Continue ``prompt`` by sampling one word at a time from the model.

    Each step reads the context that the boundary rule gives
    (:func:`backprop.lm_data.context_window`: the last ``order - 1`` tokens of the current
    sentence, ``<s>``-padded), so a prompt longer than the model's context is cut to its last
    ``order - 1`` words and a shorter one is read as the start of a sentence. Prompt words not in
    the vocabulary are read as ``<unk>``.

    Parameters
    ----------
    model : NeuralLM
    vocab : Vocabulary
    prompt : str or sequence of str, default ""
        Text (tokenised with :func:`backprop.lm_data.tokenize`) or tokens.
    max_tokens : int, default 30
    temperature : float, default 1.0
        Sample from ``softmax(y / temperature)``; 0 picks the most probable word (greedy).
    top_k : int, optional
        Sample only among the ``top_k`` most probable words.
    rng : numpy.random.Generator or int, optional
    stop_at_eos : bool, default True
        Stop after generating ``</s>``.
    allow_unk : bool, default False
        Let the model generate ``<unk>`` (otherwise it is never drawn).

    Returns
    -------
    list of str
        The generated tokens (not the prompt); ``</s>`` ends a sentence.

    Examples
    --------
    >>> generate(lm, vocab, "the jury said", temperature=0.8, rng=0)  # doctest: +SKIP
    ['that', 'the', 'city', ...]
    """
    max_tokens = _int_arg(max_tokens, "max_tokens", 0)
    if isinstance(temperature, bool) or not isinstance(temperature, int | float | np.floating):
        raise TypeError(f"temperature={temperature!r}: expected a number >= 0")
    temperature = float(temperature)
    if not (temperature >= 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature={temperature!r}: expected a finite number >= 0")
    if top_k is not None:
        top_k = _int_arg(top_k, "top_k", 1)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    toks, _ = _encode_prompt(vocab, prompt)
    history = list(vocab.encode(prompt_stream(toks)))  # the current sentence is the context
    out: list[str] = []
    banned = [BOS_ID] + ([] if allow_unk else [UNK_ID])
    for _ in range(max_tokens):
        ctx = context_window(np.array(history, dtype=np.int32), model.order)
        y = model.logits(ctx[None, :])[0].astype(np.float64)
        y[banned] = -np.inf
        if temperature == 0:
            nxt = int(np.argmax(y))
        else:
            # y - max first: a tiny temperature then sends the others to -inf, not inf - inf
            with np.errstate(over="ignore"):
                y = (y - y.max()) / temperature
            if top_k is not None and top_k < len(y):
                cut = np.partition(y, -top_k)[-top_k]
                y[y < cut] = -np.inf
            p = np.exp(y - y.max())  # y.max() is 0 but for the top-k cut
            p /= p.sum()
            nxt = int(rng.choice(len(p), p=p))
        history.append(nxt)
        out.append(vocab.words[nxt])
        if stop_at_eos and nxt == EOS_ID:
            break
    return out


def _word_id(vocab: Vocabulary, word: str) -> int:
    if not isinstance(word, str):
        raise TypeError(f"word {word!r} is a {type(word).__name__}: expected str")
    if word not in vocab or vocab.index(word) in (UNK_ID, BOS_ID, EOS_ID):
        hint = ""
        for alt in (word.lower(), word.capitalize()):
            if alt != word and alt in vocab:
                hint = f" (did you mean {alt!r}?)"
                break
        raise ValueError(
            f"{word!r} is not in the vocabulary ({len(vocab):,} words, seen at least "
            f"{'once' if vocab.min_count == 1 else f'{vocab.min_count} times'} in training){hint}"
        )
    return vocab.index(word)


def _unit_embeddings(model: NeuralLM) -> np.ndarray:
    E = model.params["E"].astype(np.float64)
    norms = np.linalg.norm(E, axis=1, keepdims=True)
    return E / np.maximum(norms, 1e-12)


def nearest_words(model: NeuralLM, vocab: Vocabulary, word: str, k: int = 10):
    """The ``k`` words whose embeddings (rows of ``E``) have the highest cosine similarity with
    ``word``'s.

    Returns
    -------
    list of (str, float)
        Words and cosine similarities, most similar first (``word`` itself and the special
        symbols left out).

    Raises
    ------
    ValueError
        ``word`` is not in the vocabulary (the message suggests another case when that one is).

    Examples
    --------
    >>> nearest_words(lm, vocab, "Monday", k=3)  # doctest: +SKIP
    [('Tuesday', 0.91), ('Friday', 0.90), ('Saturday', 0.88)]
    """
    k = _int_arg(k, "k", 1)
    i = _word_id(vocab, word)
    En = _unit_embeddings(model)
    return _top(En @ En[i], vocab, {i}, k)


def analogy(model: NeuralLM, vocab: Vocabulary, a: str, b: str, c: str, k: int = 5):
    """``a`` is to ``b`` as ``c`` is to ?: the words nearest (cosine) to ``e_b - e_a + e_c``
    (unit-length embeddings; ``a``, ``b``, ``c`` themselves excluded).

    Returns
    -------
    list of (str, float)

    Examples
    --------
    >>> analogy(lm, vocab, "he", "his", "she")  # doctest: +SKIP
    [('her', 0.83), ...]
    """
    k = _int_arg(k, "k", 1)
    ia, ib, ic = (_word_id(vocab, w) for w in (a, b, c))
    En = _unit_embeddings(model)
    q = En[ib] - En[ia] + En[ic]
    q /= max(np.linalg.norm(q), 1e-12)
    return _top(En @ q, vocab, {ia, ib, ic}, k)


def _top(scores: np.ndarray, vocab: Vocabulary, exclude: set[int], k: int):
    scores = scores.copy()
    scores[[UNK_ID, BOS_ID, EOS_ID, *exclude]] = -np.inf
    k = min(k, int(np.isfinite(scores).sum()))
    top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    top = top[np.argsort(-scores[top], kind="stable")][:k]
    return [(vocab.words[j], float(scores[j])) for j in top]
