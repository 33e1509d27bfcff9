"""Layers and the networks built from them.

Each layer does two local things, as in micrograd: ``forward`` computes its output from its input
(keeping what backward needs), and ``backward`` takes ``delta = dC/d(output)`` and returns
``dC/d(input)``, storing ``dC/d(parameter)`` in ``layer.grads``. Chaining the backward calls in
reverse is the notes' delta recursion

    delta(l) = W(l+1)^T delta(l+1) * f'(z(l)),   dW(l) = delta(l) a(l-1)^T,   db(l) = delta(l),

written for a whole batch with samples in rows: ``dW = delta.T @ A``, ``db = delta.sum(0)``,
``delta_in = delta @ W``.

:class:`Sequential` chains layers, names their parameters ``W1, b1, W2, b2, ...`` and keeps all
parameters (and all gradients) in one contiguous vector, so an optimizer updates the whole model
with a few vectorised operations; ``net.params[k]`` are views into that vector.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from . import _kernels
from ._validation import (
    all_finite,
    as_dtype,
    as_rng,
    check_array,
    check_finite,
    check_nonneg_float,
    check_positive_int,
    check_targets,
)
from .activations import ACTIVATIONS, Activation, get_activation
from .init import default_init_for, initialize
from .losses import BinaryCrossEntropy, CrossEntropy, default_loss_for, get_loss

__all__ = [
    "Layer",
    "Dense",
    "ActivationLayer",
    "Dropout",
    "Maxout",
    "Embedding",
    "Sequential",
    "MLP",
    "ParamDict",
    "from_config",
]


def _per_hidden_dropout(dropout, n_hidden: int) -> list:
    """One dropout rate per hidden layer, from a single rate or a list of them."""
    if dropout is None or isinstance(dropout, (str, bytes)):
        raise TypeError(f"dropout={dropout!r} is invalid: expected a rate in [0, 1) or a list")
    drops = [dropout] * n_hidden if np.isscalar(dropout) else list(dropout)
    if len(drops) != n_hidden:
        raise ValueError(
            f"dropout has {len(drops)} entries: expected one per hidden layer ({n_hidden})"
        )
    for p in drops:
        try:
            float(p)
        except (TypeError, ValueError):
            raise TypeError(f"dropout p={p!r} is invalid: expected a number in [0, 1)") from None
    return drops


def _activation_spec(act: Activation):
    """An activation for a config: its name, or its config dict when it has options that
    differ from the defaults (a leaky ReLU's slope), so that the model rebuilds the same."""
    cfg = act.to_config()
    default = ACTIVATIONS.get(act.name)
    return act.name if default is not None and cfg == default().to_config() else cfg


def _rng(rng) -> np.random.Generator:
    return as_rng(rng, "rng")


class Layer:
    """Base class. ``params``/``grads`` map local names (``"W"``, ``"b"``) to arrays.

    ``forward``/``backward`` return fresh arrays. The training step of :class:`Sequential`
    calls ``_train_forward``/``_train_backward`` instead: while the network's workspace is on
    (during :func:`backprop.fit`), the built-in layers write into buffers they keep and reuse
    from step to step, so a step allocates (almost) nothing. Those results are only valid until
    the next step, which is why user-facing calls never get them. A layer that does not
    override the two methods simply runs ``forward``/``backward``.

    The workspace arrays of shape ``(n_samples, n_features)`` are stored feature-major (the
    transpose of a C-contiguous ``(n_features, n_samples)`` array, i.e. the notes' column
    vectors side by side): the shapes and values are the usual ones, only the memory order
    differs. Dense then computes ``Z^T = W A^T`` with both operands in the order the BLAS
    likes best, which measured about 2x faster than ``A @ W.T`` for a batch of 16 and 10-20%
    faster for batches of 128 (docs/performance.md).
    """

    weight_names: tuple[str, ...] = ()
    _ws: dict | None = None  # the layer's workspace (buffers by name), None when off

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.need_input_grad = True

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, delta: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def output_width(self, n_in: int) -> int:
        return n_in

    def to_config(self) -> dict:
        raise NotImplementedError

    def _bind(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Point the layer at new (view) arrays; Sequential uses it to share one flat buffer."""
        self.params = params
        self.grads = grads

    # -- the training fast path ----------------------------------------------------------------
    def _train_forward(self, X: np.ndarray, training: bool) -> np.ndarray:
        return self.forward(X, training)

    def _train_backward(self, delta: np.ndarray) -> np.ndarray | None:
        return self.backward(delta)

    def _buffer(
        self, key: str, rows: int, shape: tuple, dtype, zero: bool = False, order: str = "F"
    ) -> np.ndarray:
        """A reusable ``(rows, *shape)`` array from the workspace, kept from step to step.

        2-D buffers are feature-major (``order="F"``) unless ``order="C"`` is asked for. One
        array per key and number of rows (so an epoch uses two: full batches and the last one).
        The contents are undefined, except with ``zero=True``: all zeros (never write to it).
        """
        buf = self._ws.get((key, rows))
        if buf is None or buf.shape[1:] != tuple(shape) or buf.dtype != dtype:
            make = np.zeros if zero else np.empty
            if len(shape) == 1 and order == "F":
                buf = make((shape[0], rows), dtype=dtype).T
            else:
                buf = make((rows, *shape), dtype=dtype)
            self._ws[(key, rows)] = buf
        return buf


class Dense(Layer):
    """Fully connected layer ``z = W a + b``; batched ``Z = A @ W.T + b``.

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths; ``W`` has shape ``(n_out, n_in)`` as in the notes.
    init : str or dict, default "glorot_uniform"
        Initialiser name from :mod:`backprop.init`.
    rng : Generator or int, optional
    dtype : "float32" or "float64"

    Examples
    --------
    >>> layer = Dense(3, 2, rng=0, dtype="float64")
    >>> layer.forward(np.ones((5, 3))).shape
    (5, 2)
    """

    weight_names = ("W",)

    def __init__(self, n_in: int, n_out: int, *, init="glorot_uniform", rng=None, dtype="float32"):
        super().__init__()
        self.n_in = check_positive_int(n_in, "n_in")
        self.n_out = check_positive_int(n_out, "n_out")
        dt = as_dtype(dtype)
        rng = _rng(rng)
        self.params = {
            "W": initialize(init, rng, (self.n_out, self.n_in), self.n_in, self.n_out, dt),
            "b": np.zeros(self.n_out, dtype=dt),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.init = init
        self._A = None

    def forward(self, X, training=False):
        self._A = X
        Z = X @ self.params["W"].T
        Z += self.params["b"]
        return Z

    def backward(self, delta):
        A = self._A
        np.matmul(delta.T, A, out=self.grads["W"])  # dW = delta^T A   (n_out, n_in)
        np.sum(delta, axis=0, out=self.grads["b"])  # db = sum over the batch of delta
        if not self.need_input_grad:
            return None
        return delta @ self.params["W"]  # W^T delta, batched

    def _train_forward(self, X, training):
        ws = self._ws
        if ws is None:
            return self.forward(X, training)
        self._A = X
        Z = self._buffer("z", X.shape[0], (self.n_out,), X.dtype)
        ZT = Z.T  # C-contiguous (n_out, n): z = W a + b for every sample (column) at once
        np.matmul(self.params["W"], X.T, out=ZT)
        b = ws.get("b_col")
        if b is None:
            b = ws["b_col"] = self.params["b"][:, None]
        np.add(ZT, b, out=ZT)
        return Z

    def _train_backward(self, delta):
        ws = self._ws
        if ws is None:
            return self.backward(delta)
        n = delta.shape[0]
        np.matmul(delta.T, self._A, out=self.grads["W"])  # dW = delta^T A
        ones = ws.get(("ones", n))
        if ones is None:
            ones = ws[("ones", n)] = np.ones(n, dtype=delta.dtype)
        np.dot(ones, delta, out=self.grads["b"])  # db = sum of delta over the batch (a GEMV)
        if not self.need_input_grad:
            return None
        dA = self._buffer("dA", delta.shape[0], (self.n_in,), delta.dtype)
        np.matmul(self.params["W"].T, delta.T, out=dA.T)  # (W^T delta)^T, column by column
        return dA

    def output_width(self, n_in):
        return self.n_out

    def to_config(self):
        return {"type": "Dense", "n_in": self.n_in, "n_out": self.n_out, "init": self.init}

    def __repr__(self):
        return f"Dense({self.n_in}, {self.n_out})"


class ActivationLayer(Layer):
    """Applies an activation elementwise (row-wise for softmax): ``a = f(z)``."""

    def __init__(self, activation: str | dict | Activation):
        super().__init__()
        self.activation = get_activation(activation)
        self._z = self._a = None

    @property
    def name(self) -> str:
        return self.activation.name

    def forward(self, X, training=False):
        self._z = X
        self._a = self.activation.forward(X)
        return self._a

    def backward(self, delta):
        return self.activation.backward(self._z, self._a, delta)

    def _train_forward(self, X, training):
        if self._ws is None:
            return self.forward(X, training)
        self._z = X
        out = self._buffer("a", X.shape[0], X.shape[1:], X.dtype)
        self._a = self.activation._forward_into(X, out, self._buffer)
        return self._a

    def _train_backward(self, delta):
        if self._ws is None:
            return self.backward(delta)
        return self.activation._backward_inplace(self._z, self._a, delta, self._buffer)

    def to_config(self):
        return {"type": "Activation", "activation": self.activation.to_config()}

    def __repr__(self):
        return f"Activation({self.activation.name!r})"


class Dropout(Layer):
    """Inverted dropout: in training each unit is kept with probability ``1 - p`` and scaled by
    ``1 / (1 - p)``, so inference is the identity (no rescaling at test time).

    Parameters
    ----------
    p : float in [0, 1)
        Probability of dropping a unit.
    rng : Generator or int, optional
    """

    def __init__(self, p: float = 0.5, *, rng=None):
        super().__init__()
        try:
            p = float(p)
        except (TypeError, ValueError):
            raise TypeError(f"dropout p={p!r} is invalid: expected a number in [0, 1)") from None
        if not (0.0 <= p < 1.0):
            raise ValueError(f"dropout p={p!r} is invalid: expected 0 <= p < 1")
        self.p = p
        self.rng = _rng(rng)
        self._mask = None

    def forward(self, X, training=False):
        if not training or self.p == 0.0:
            self._mask = None
            return X
        keep = self.rng.random(X.shape, dtype=X.dtype) >= self.p
        self._mask = keep.astype(X.dtype)
        self._mask *= X.dtype.type(1.0 / (1.0 - self.p))
        return X * self._mask

    def backward(self, delta):
        if self._mask is None:
            return delta
        return delta * self._mask

    def _train_forward(self, X, training):
        if self._ws is None or not training or self.p == 0.0:
            return self.forward(X, training)
        # The same draws as forward (Generator.random fills `out` from the same stream).
        n, shape = X.shape[0], X.shape[1:]
        u = self._buffer("u", n, shape, X.dtype, order="C")  # the draws fill memory in C order
        self.rng.random(X.shape, dtype=X.dtype, out=u)
        keep = self._buffer("keep", n, shape, np.bool_)
        np.greater_equal(u, X.dtype.type(self.p), out=keep)
        mask = self._mask = self._buffer("mask", n, shape, X.dtype)
        np.copyto(mask, keep)
        mask *= X.dtype.type(1.0 / (1.0 - self.p))
        out = self._buffer("out", n, shape, X.dtype)
        return np.multiply(X, mask, out=out)

    def _train_backward(self, delta):
        if self._ws is None or self._mask is None:
            return self.backward(delta)
        delta *= self._mask  # the incoming delta is a buffer of the next layer: update in place
        return delta

    def to_config(self):
        return {"type": "Dropout", "p": self.p}

    def __repr__(self):
        return f"Dropout(p={self.p})"


class Maxout(Layer):
    """Maxout (Goodfellow et al. 2013): each of ``n_out`` units is the maximum of ``k`` affine
    pieces, ``a_j = max_p (W_{j,p} x + b_{j,p})``.

    ``W`` has shape ``(n_out * k, n_in)`` with the pieces of unit ``j`` in rows
    ``j*k .. j*k + k - 1``. The gradient flows only through the winning piece.
    """

    weight_names = ("W",)

    def __init__(
        self, n_in: int, n_out: int, k: int = 2, *, init="glorot_uniform", rng=None, dtype="float32"
    ):
        super().__init__()
        self.n_in = check_positive_int(n_in, "n_in")
        self.n_out = check_positive_int(n_out, "n_out")
        self.k = check_positive_int(k, "k")
        dt = as_dtype(dtype)
        rng = _rng(rng)
        rows = self.n_out * self.k
        self.params = {
            "W": initialize(init, rng, (rows, self.n_in), self.n_in, self.n_out, dt),
            "b": np.zeros(rows, dtype=dt),
        }
        self.grads = {k_: np.zeros_like(v) for k_, v in self.params.items()}
        self.init = init
        self._A = self._idx = None

    def forward(self, X, training=False):
        self._A = X
        Z = (X @ self.params["W"].T + self.params["b"]).reshape(X.shape[0], self.n_out, self.k)
        self._idx = Z.argmax(axis=2)[..., None]
        return np.take_along_axis(Z, self._idx, axis=2)[..., 0]

    def backward(self, delta):
        n = delta.shape[0]
        dZ = np.zeros((n, self.n_out, self.k), dtype=delta.dtype)
        np.put_along_axis(dZ, self._idx, delta[..., None], axis=2)
        dZ = dZ.reshape(n, self.n_out * self.k)
        np.matmul(dZ.T, self._A, out=self.grads["W"])
        np.sum(dZ, axis=0, out=self.grads["b"])
        if not self.need_input_grad:
            return None
        return dZ @ self.params["W"]

    def output_width(self, n_in):
        return self.n_out

    def to_config(self):
        return {
            "type": "Maxout",
            "n_in": self.n_in,
            "n_out": self.n_out,
            "k": self.k,
            "init": self.init,
        }

    def __repr__(self):
        return f"Maxout({self.n_in}, {self.n_out}, k={self.k})"


class Embedding(Layer):
    """Row lookup in an embedding matrix ``E`` of shape ``(n_vocab, dim)``.

    For integer input of shape ``(n, c)`` (``c`` context words) the output is the ``c``
    embedding rows concatenated, shape ``(n, c * dim)``: the same as multiplying each one-hot
    word vector by ``E``, without ever forming the one-hot matrix. The backward pass adds each
    row of ``delta`` into the row of ``dE`` of its word, so a word used several times in a batch
    accumulates all its gradients.
    """

    weight_names = ("E",)

    def __init__(self, n_vocab: int, dim: int, *, init=None, rng=None, dtype="float32"):
        super().__init__()
        self.n_vocab = check_positive_int(n_vocab, "n_vocab")
        self.dim = check_positive_int(dim, "dim")
        dt = as_dtype(dtype)
        init = init or {"name": "normal", "sigma": 0.01}
        self.params = {
            "E": initialize(init, _rng(rng), (self.n_vocab, self.dim), self.n_vocab, self.dim, dt)
        }
        self.grads = {"E": np.zeros_like(self.params["E"])}
        self.init = init
        self.need_input_grad = False
        self._idx = None

    def forward(self, X, training=False):
        idx = np.asarray(X)
        if not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"Embedding input has dtype {idx.dtype}: expected integer word ids")
        if idx.ndim == 1:
            idx = idx[:, None]
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_vocab):
            bad = idx.min() if idx.min() < 0 else idx.max()
            raise ValueError(f"word id {bad} is out of range: expected 0 <= id < {self.n_vocab}")
        self._idx = idx
        return self.params["E"][idx].reshape(idx.shape[0], idx.shape[1] * self.dim)

    def backward(self, delta):
        dE = self.grads["E"]
        dE.fill(0)
        np.add.at(dE, self._idx.ravel(), delta.reshape(-1, self.dim))
        return None

    def output_width(self, n_in):
        return n_in * self.dim

    def to_config(self):
        return {"type": "Embedding", "n_vocab": self.n_vocab, "dim": self.dim}

    def __repr__(self):
        return f"Embedding({self.n_vocab}, {self.dim})"


class ParamDict(dict):
    """The live parameters of a network. Assigning ``net.params["W1"] = new`` copies ``new``
    into the model's storage (shape checked), so the model and this dict never drift apart."""

    def __setitem__(self, key, value):
        if key not in self:
            raise KeyError(f"unknown parameter {key!r}: the model has {', '.join(self)}")
        cur = dict.__getitem__(self, key)
        arr = np.asarray(value)
        if arr.shape != cur.shape:
            raise ValueError(f"parameter {key!r} must have shape {cur.shape}, got {arr.shape}")
        cur[...] = arr

    def __reduce__(self):
        # The default dict pickling re-inserts items through __setitem__, which refuses new keys.
        return (type(self), (dict(self),))


class FlatParams:
    """What every model that keeps its parameters in one vector offers: ``flat_params`` (the
    vector) and ``params`` (a :class:`ParamDict` of views into it) are set by the model."""

    flat_params: np.ndarray
    params: ParamDict

    @property
    def n_params(self) -> int:
        return int(self.flat_params.size)

    def get_params(self) -> dict[str, np.ndarray]:
        """A copy of every parameter (for snapshots such as early stopping's best weights)."""
        return {k: v.copy() for k, v in self.params.items()}

    def set_params(self, values: dict[str, np.ndarray]) -> None:
        """Copy arrays into the model (shapes checked)."""
        for k, v in values.items():
            self.params[k] = v


class Sequential(FlatParams):
    """A chain of layers trained as one model.

    Parameters are named after their layer's position among the layers that have parameters:
    ``W1, b1`` for the first, ``W2, b2`` for the second (for an MLP: from the first hidden
    layer, as in the notes). All parameters live in one contiguous vector ``flat_params`` and
    all gradients in ``flat_grads``; ``params`` and ``grads`` are dicts of views into them.

    Examples
    --------
    >>> net = Sequential([Dense(2, 4, rng=0), ActivationLayer("tanh"), Dense(4, 1, rng=1)])
    >>> net.forward(np.zeros((3, 2), np.float32)).shape
    (3, 1)
    """

    def __init__(self, layers: Iterable[Layer], *, n_in: int | None = None):
        try:
            self.layers = list(layers)
        except TypeError:
            raise TypeError(f"layers={layers!r} is invalid: expected a list of layers") from None
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise TypeError(
                    f"layers[{i}] is a {type(layer).__name__}: expected a layer (Dense, "
                    "ActivationLayer('relu'), Dropout, Maxout, Embedding)"
                )
        if not self.layers:
            raise ValueError("Sequential needs at least one layer")
        self.n_in = check_positive_int(n_in, "n_in") if n_in is not None else self._infer_n_in()
        self._check_widths()
        self._consolidate()
        first_param = next((i for i, l in enumerate(self.layers) if l.params), None)
        for i, layer in enumerate(self.layers):
            if i == first_param and not isinstance(layer, Embedding):
                # The input needs no gradient: skip the largest product of the backward pass.
                layer.need_input_grad = False

    def _infer_n_in(self) -> int | None:
        """The input width: the first layer's ``n_in``; for an Embedding first, the number of
        context ids that the next layer with a fixed input width takes (``n_in / dim``)."""
        first = self.layers[0]
        if not isinstance(first, Embedding):
            return getattr(first, "n_in", None)
        for layer in self.layers[1:]:
            width = getattr(layer, "n_in", None)
            if width is not None:
                if width % first.dim:
                    raise ValueError(
                        f"{layer!r} after {first!r} takes {width} inputs, not a multiple of the "
                        f"embedding dimension {first.dim}: expected n_in = context size x "
                        f"{first.dim}"
                    )
                return width // first.dim
        return None

    def _check_widths(self) -> None:
        """Each layer with a fixed input width must get what the layer before it gives."""
        width = self.n_in
        for i, layer in enumerate(self.layers):
            wants = getattr(layer, "n_in", None)
            if width is not None and wants is not None and not isinstance(layer, Embedding):
                if wants != width:
                    what = "the input" if i == 0 else f"layer {i - 1} ({self.layers[i - 1]!r})"
                    raise ValueError(
                        f"layer {i} ({layer!r}) takes {wants} inputs but {what} gives {width}: "
                        f"expected n_in={width}"
                    )
            if width is not None:
                width = layer.output_width(width)
            elif getattr(layer, "n_out", None) is not None:
                width = layer.n_out

    # -- parameter storage -------------------------------------------------------------------
    def _consolidate(self):
        names, arrays, owners = [], [], []
        k = 0
        for layer in self.layers:
            if not layer.params:
                continue
            k += 1
            for local, arr in layer.params.items():
                names.append(f"{local}{k}")
                arrays.append(arr)
                owners.append((layer, local))
        dtypes = {a.dtype for a in arrays}
        if len(dtypes) > 1:
            raise ValueError(f"all layers must share one dtype, got {sorted(map(str, dtypes))}")
        self.dtype = dtypes.pop() if dtypes else np.dtype(np.float32)
        total = sum(a.size for a in arrays)
        self.flat_params = np.empty(total, dtype=self.dtype)
        self.flat_grads = np.zeros(total, dtype=self.dtype)
        params, grads = ParamDict(), {}
        per_layer: dict[int, tuple[dict, dict]] = {}
        offset = 0
        for name, arr, (layer, local) in zip(names, arrays, owners, strict=True):
            p = self.flat_params[offset : offset + arr.size].reshape(arr.shape)
            g = self.flat_grads[offset : offset + arr.size].reshape(arr.shape)
            p[...] = arr
            offset += arr.size
            dict.__setitem__(params, name, p)
            grads[name] = g
            lp, lg = per_layer.setdefault(id(layer), ({}, {}))
            lp[local], lg[local] = p, g
        for layer in self.layers:
            if id(layer) in per_layer:
                layer._bind(*per_layer[id(layer)])
        self.params = params
        self.grads = grads
        self.weight_keys = [
            name
            for name, (layer, local) in zip(names, owners, strict=True)
            if local in layer.weight_names
        ]

    def __getstate__(self):
        # Scratch arrays of the training step are not part of the model.
        state = dict(self.__dict__)
        state.pop("_l2_scratch", None)
        state.pop("_output", None)
        return state

    def __setstate__(self, state):
        # Pickle stores each parameter view as an array of its own: gather them into one flat
        # buffer again so that params stay views of flat_params (what the optimizers update).
        self.__dict__.update(state)
        self._consolidate()

    # -- computation -------------------------------------------------------------------------
    @property
    def output_activation(self) -> str | None:
        last = self.layers[-1]
        return last.name if isinstance(last, ActivationLayer) else None

    @property
    def n_out(self) -> int:
        width = self.n_in
        for layer in self.layers:
            width = layer.output_width(width)
        return width

    def _check_X(self, X, finite: bool = True):
        if self.layers and isinstance(self.layers[0], Embedding):
            return self._check_ids(X)
        return check_array(X, n_features=self.n_in, dtype=self.dtype, finite=finite)

    def _check_ids(self, X) -> np.ndarray:
        """Word ids for a network that starts with an Embedding: ``(n_samples, context)``
        integers (their range is the Embedding's to check)."""
        try:
            arr = np.asarray(X)
        except Exception as exc:  # ragged lists and the like
            raise ValueError(f"X could not be read as an array: {exc}") from None
        if arr.dtype.kind not in "iu":
            raise TypeError(f"X has dtype {arr.dtype}: expected integer word ids")
        if arr.ndim != 2:
            raise ValueError(f"X has shape {arr.shape}: expected 2-D (n_samples, context)")
        if arr.shape[0] == 0:
            raise ValueError(f"X is empty (shape {arr.shape}): expected at least one sample")
        if self.n_in is not None and arr.shape[1] != self.n_in:
            raise ValueError(
                f"X has {arr.shape[1]} ids per sample (shape {arr.shape}): expected {self.n_in}"
            )
        return arr

    def forward(self, X, training: bool = False) -> np.ndarray:
        """Outputs after the output activation, shape ``(n_samples, n_out)``."""
        layers = self.layers
        if not (layers and type(layers[0]) is Dense):
            A = self._check_X(X)
            for layer in layers:
                A = layer.forward(A, training)
            return A
        # NaN or infinity in X is refused as always, but checked on the first layer's output,
        # which is 784 / 100 times smaller for 784-100-10: every z_k = sum_j W_kj x_j + b_k
        # takes every x_j of its row, and a non-finite x_j makes it NaN or infinite (inf * 0 is
        # NaN). Only when the output is not finite is X itself searched, for the error message
        # (an overflow from finite inputs passes, as before). A separate pass over a large X
        # cost 11% of inference for 784-100-10 (docs/performance.md). NumPy's warnings for such
        # a product (inf * 0) would only precede the error.
        Xc = self._check_X(X, finite=False)
        with np.errstate(over="ignore", invalid="ignore"):
            A = layers[0].forward(Xc, training)
        if not all_finite(A):
            check_finite(Xc)
        for layer in layers[1:]:
            A = layer.forward(A, training)
        return A

    __call__ = forward

    def _forward_unchecked(self, A, training, stop=None):
        for layer in self.layers[:stop]:
            A = layer.forward(A, training)
        return A

    def _use_workspace(self, on: bool) -> None:
        """Switch the reusable per-layer buffers of the training step on (fresh, empty) or off
        (released). :func:`backprop.fit` turns them on for the run and off at its end."""
        for layer in self.layers:
            layer._ws = {} if on else None

    def backward(self, delta: np.ndarray, start: int | None = None) -> None:
        """Run the delta recursion from the output (or from layer ``start - 1``) to the input,
        filling ``grads``."""
        layers = self.layers if start is None else self.layers[:start]
        for layer in reversed(layers):
            delta = layer.backward(delta)
            if delta is None:
                break

    def _output_loss_delta(self, Z, Yc, loss, training):
        """The last layer's forward, the loss and the delta that starts the backward pass.

        Returns ``(value, delta, stop)``: the backward pass runs through ``layers[:stop]``.
        With a fused pair (softmax + cross-entropy, ...) ``delta = dC/dZ`` already contains the
        output activation's derivative, so the pass starts below it.
        """
        last = self.layers[-1]
        fused = self._fuses_output(loss)
        if (
            fused
            and last._ws is not None
            and type(loss) is CrossEntropy
            and Z.ndim == 2
            and self.flat_params.size >= _kernels.MIN_SIZE
        ):
            # In the training workspace of a network big enough to use the compiled optimizer
            # updates, the softmax output and its cross-entropy are one compiled call too.
            softmax_xent = _kernels.kernel("softmax_xent")
            if softmax_xent is not None:
                n = Z.shape[0]
                A = last._buffer("a", n, Z.shape[1:], Z.dtype)
                delta = last._buffer("delta", n, Z.shape[1:], Z.dtype)
                try:
                    value = softmax_xent(Z, Yc, A, delta, Z.dtype.type(1.0 / n))
                except TypeError:  # arrays of a type it was not compiled for: the NumPy path
                    value = None
                if value is not None:
                    last._z, last._a = Z, A
                    self._output = A
                    return value, delta, len(self.layers) - 1
        A = self._output = last._train_forward(Z, training)
        if fused:
            value, delta = loss.fused(Z, A, Yc)
            return value, delta, len(self.layers) - 1
        return loss.value(A, Yc), loss.grad(A, Yc), len(self.layers)

    def _add_l2_grad(self, lam: float, n: int) -> float:
        """Add the gradient ``lam / n * W`` of :func:`~backprop.losses.l2_penalty` to the weight
        gradients in place and return the penalty ``lam / (2n) sum ||W||^2``.

        The same gradient, bit for bit, as adding ``l2_penalty``'s arrays, without a new array
        per weight and step (one scratch vector is kept); the squares are summed by ``np.dot``
        (a BLAS call, 3x faster than ``einsum`` here)."""
        value = 0.0
        c = self.dtype.type(lam / n)
        scratch = None
        for k in self.weight_keys:
            W = self.params[k]
            w = W.reshape(-1)
            value += float(np.dot(w, w))
            add_scaled = _kernels.get("add_scaled", W)  # one pass instead of two, same bits
            if add_scaled is not None:
                try:
                    add_scaled(w, self.grads[k].reshape(-1), c)
                    continue
                except TypeError:  # arrays of a type it was not compiled for: NumPy does it
                    pass
            if scratch is None:
                scratch = getattr(self, "_l2_scratch", None)
                if (
                    scratch is None
                    or scratch.size < self.flat_params.size
                    or scratch.dtype != c.dtype
                ):
                    scratch = self._l2_scratch = np.empty(self.flat_params.size, dtype=self.dtype)
            tmp = scratch[: W.size].reshape(W.shape)
            np.multiply(W, c, out=tmp)
            self.grads[k] += tmp
        return lam / (2.0 * n) * value

    def _loss_grad(self, Xc, Yc, loss, l2, regularizers, training=True):
        """Forward + backward on checked arrays; fills ``flat_grads`` and returns the loss."""
        layers = self.layers
        A = Xc
        for layer in layers[:-1]:
            A = layer._train_forward(A, training)
        value, delta, stop = self._output_loss_delta(A, Yc, loss, training)
        for layer in reversed(layers[:stop]):
            delta = layer._train_backward(delta)
            if delta is None:
                break
        if l2:
            value += self._add_l2_grad(l2, Xc.shape[0])
        for r in regularizers:
            reg, g = r.value_and_grad(self.params)
            value += reg
            for k, v in g.items():
                self.grads[k] += v
        return value

    def _fuses_output(self, loss) -> bool:
        """Whether ``loss`` is computed together with the output activation, from the logits
        (softmax + cross-entropy, sigmoid + binary cross-entropy, ...)."""
        last = self.layers[-1]
        return (
            loss.fused_with is not None
            and isinstance(last, ActivationLayer)
            and last.name == loss.fused_with
        )

    def _check_loss(self, loss) -> None:
        """Cross-entropy needs the output it is the negative log-likelihood of: a softmax over
        two or more units; binary cross-entropy a sigmoid. Other pairs train to nonsense
        (a sigmoid under cross-entropy drives every output to 1) without an error."""
        out = self.output_activation
        if type(loss) is CrossEntropy and not (out == "softmax" and self.n_out >= 2):
            got = f"a {out} output" if out else "no output activation"
            raise ValueError(
                f"loss 'cross_entropy' needs a softmax output over 2 or more units, not {got} "
                f"of {self.n_out} unit(s): expected output='softmax', or "
                "loss='binary_cross_entropy' for sigmoid outputs"
            )
        if type(loss) is BinaryCrossEntropy and out != "sigmoid":
            raise ValueError(
                f"loss 'binary_cross_entropy' needs sigmoid outputs, not "
                f"{out or 'no output activation'}: expected output='sigmoid', or "
                "loss='cross_entropy' for a softmax output"
            )

    def default_loss(self) -> str:
        return default_loss_for(self.output_activation or "identity")

    def check_targets(self, Y, n, loss):
        is_clf = loss.classification
        binary = loss.name == "binary_cross_entropy"
        return check_targets(
            Y, n=n, n_outputs=self.n_out, classification=is_clf, binary=binary, dtype=self.dtype
        )

    def loss_and_grad(
        self, X, Y, loss=None, l2: float = 0.0, regularizers: Sequence = (), training: bool = True
    ):
        """Loss of the batch and its gradient with respect to every parameter.

        Parameters
        ----------
        X : array (n_samples, n_in)
        Y : array (n_samples, n_out), or (n_samples,) of class labels / single outputs
        loss : str or Loss, optional
            Defaults to the output's natural loss (softmax -> cross_entropy,
            sigmoid -> binary_cross_entropy, otherwise mse).
        l2 : float
            Adds ``l2 / (2 n) * sum W^2`` (weights, not biases).
        regularizers : sequence
            Extra penalties with ``value_and_grad(params)``, e.g. :class:`SynapticPlasticity`.
        training : bool
            Whether dropout is active.

        Returns
        -------
        loss : float
        grads : dict
            Same keys and shapes as ``params`` (copies).
        """
        loss = get_loss(loss if loss is not None else self.default_loss())
        self._check_loss(loss)
        l2 = check_nonneg_float(l2, "l2")
        Xc = self._check_X(X)
        Yc = self.check_targets(Y, len(Xc), loss)
        value = self._loss_grad(Xc, Yc, loss, l2, regularizers, training)
        return value, {k: v.copy() for k, v in self.grads.items()}

    def to_config(self) -> dict:
        return {
            "type": "Sequential",
            "n_in": self.n_in,
            "dtype": str(self.dtype),
            "layers": [layer.to_config() for layer in self.layers],
        }

    def __repr__(self):
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"{type(self).__name__}([{inner}])"


class MLP(Sequential):
    """A multilayer perceptron: ``Dense -> activation`` repeated, then ``Dense -> output``.

    Parameters
    ----------
    sizes : sequence of int
        Widths including input and output, e.g. ``[784, 100, 10]``.
    activation : str or list of str, default "relu"
        Hidden activation, or one per hidden layer.
    output : str, default "identity"
        Output activation: ``identity``, ``sigmoid``, ``softmax``, ``tanh``, ...
    init : str or dict, optional
        Initialiser (see :mod:`backprop.init`); defaults to He for ReLU, Glorot otherwise.
    dtype : "float32" (default) or "float64"
    seed : int or Generator, optional
        Seeds the network's one Generator, used for initialisation, dropout and shuffling.
    dropout : float or list of float, default 0.0
        Dropout probability after each hidden activation.

    Examples
    --------
    >>> net = MLP([2, 2, 1], activation="sigmoid", output="sigmoid", seed=0)
    >>> net.params["W1"].shape
    (2, 2)
    """

    def __init__(
        self,
        sizes,
        activation="relu",
        output="identity",
        init=None,
        dtype="float32",
        seed=None,
        dropout=0.0,
    ):
        try:
            sizes = list(sizes) if not isinstance(sizes, (str, bytes)) else None
        except TypeError:  # None, a number, ...
            raise TypeError(
                f"sizes={sizes!r} is invalid: expected a list of at least two positive integers "
                "(input width, hidden widths..., output width)"
            ) from None
        if (
            not sizes
            or len(sizes) < 2
            or any(
                isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in sizes
            )
        ):
            raise ValueError(
                f"sizes={sizes!r} is invalid: expected a list of at least two positive integers "
                "(input width, hidden widths..., output width)"
            )
        n_hidden = len(sizes) - 2
        if isinstance(activation, (str, dict, Activation)):
            get_activation(activation)  # validate the name even without hidden layers
            acts = [activation] * n_hidden
        elif isinstance(activation, (list, tuple)):
            acts = list(activation)
        else:
            raise TypeError(
                f"activation={activation!r} is invalid: expected a name such as 'relu' or a "
                "list of names, one per hidden layer"
            )
        if len(acts) != n_hidden:
            raise ValueError(
                f"activation has {len(acts)} entries: expected one per hidden layer ({n_hidden})"
            )
        drops = _per_hidden_dropout(dropout, n_hidden)
        dt = as_dtype(dtype)
        self.rng = as_rng(seed)
        act_objs = [get_activation(a) for a in acts]
        out_obj = get_activation(output)
        layers: list[Layer] = []
        for i in range(len(sizes) - 1):
            act = act_objs[i] if i < n_hidden else out_obj
            layer_init = init if init is not None else default_init_for(act.name)
            layers.append(Dense(sizes[i], sizes[i + 1], init=layer_init, rng=self.rng, dtype=dt))
            layers.append(ActivationLayer(act))
            if i < n_hidden and drops[i]:
                layers.append(Dropout(drops[i], rng=self.rng))
        self.sizes = [int(s) for s in sizes]
        self.activation = [a.name for a in act_objs]
        self.output = out_obj.name
        self.init = init
        self.dropout = [float(d) for d in drops]
        super().__init__(layers, n_in=self.sizes[0])

    def set_dropout(self, dropout) -> None:
        """Change the dropout rate after each hidden activation (a float, or one per hidden
        layer), keeping the weights: Dropout layers hold no parameters, so they are added,
        changed or removed without touching ``params``."""
        n_hidden = len(self.sizes) - 2
        drops = _per_hidden_dropout(dropout, n_hidden)
        kept = [layer for layer in self.layers if not isinstance(layer, Dropout)]
        layers, hidden = [], 0
        for layer in kept:
            layers.append(layer)
            if isinstance(layer, ActivationLayer) and hidden < n_hidden:
                if drops[hidden]:
                    layers.append(Dropout(drops[hidden], rng=self.rng))
                hidden += 1
        self.layers = layers
        self.dropout = [float(d) for d in drops]

    def to_config(self) -> dict:
        return {
            "type": "MLP",
            "sizes": self.sizes,
            "activation": [
                _activation_spec(layer.activation)
                for layer in self.layers
                if isinstance(layer, ActivationLayer)
            ][:-1],
            "output": _activation_spec(self.layers[-1].activation),
            "init": self.init,
            "dtype": str(self.dtype),
            "dropout": self.dropout,
        }

    def __repr__(self):
        return (
            f"MLP({self.sizes}, activation={self.activation}, output={self.output!r}, "
            f"dtype={str(self.dtype)!r})"
        )


def _layer_from_config(cfg: dict, dtype, rng) -> Layer:
    kind = cfg.get("type")
    if kind == "Dense":
        return Dense(
            cfg["n_in"], cfg["n_out"], init=cfg.get("init", "glorot_uniform"), rng=rng, dtype=dtype
        )
    if kind == "Maxout":
        return Maxout(
            cfg["n_in"],
            cfg["n_out"],
            cfg.get("k", 2),
            init=cfg.get("init", "glorot_uniform"),
            rng=rng,
            dtype=dtype,
        )
    if kind == "Embedding":
        return Embedding(cfg["n_vocab"], cfg["dim"], rng=rng, dtype=dtype)
    if kind == "Activation":
        return ActivationLayer(cfg["activation"])
    if kind == "Dropout":
        return Dropout(cfg["p"], rng=rng)
    raise ValueError(f"unknown layer type {kind!r} in model config")


def from_config(config: dict, seed=None) -> Sequential:
    """Rebuild an (untrained, freshly initialised) network from ``net.to_config()``.

    Model files use it, then copy the stored weights in.
    """
    if not isinstance(config, dict) or config.get("type") not in ("MLP", "Sequential"):
        raise ValueError("model config must be a dict with type 'MLP' or 'Sequential'")
    if config["type"] == "MLP":
        kwargs = {
            k: config[k]
            for k in ("sizes", "activation", "output", "init", "dtype", "dropout")
            if k in config
        }
        return MLP(seed=seed, **kwargs)
    dtype = config.get("dtype", "float32")
    rng = as_rng(seed)
    layers = [_layer_from_config(c, dtype, rng) for c in config.get("layers", [])]
    net = Sequential(layers, n_in=config.get("n_in"))
    net.rng = rng
    return net
