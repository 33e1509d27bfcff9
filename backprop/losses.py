"""Loss functions and regularisers.

Every data loss is averaged over the ``n`` samples of the batch, and its gradient already carries
that ``1/n``, so ``backward`` starts from ``dC/dA`` of the *batch* loss.

========================  =============================================  ==================
name                      value for one sample                           fused output
========================  =============================================  ==================
``squared_error``         ``C0 = sum_k (a_k - y_k)^2`` (the notes' C0)   identity
``half_squared_error``    ``1/2 sum_k (a_k - y_k)^2`` (lecture's ``l``)  identity
``mse``                   ``1/K sum_k (a_k - y_k)^2``                    identity
``cross_entropy``         ``-sum_k y_k log a_k``, ``a = softmax(z)``     softmax
``binary_cross_entropy``  ``-sum_k [y log a + (1-y) log(1-a)]``          sigmoid
========================  =============================================  ==================

When a loss meets its *fused* output activation, value and output delta are computed from the
logits ``z``: cross-entropy as ``logsumexp(z) - z_y`` and binary cross-entropy as
``log(1 + e^z) - y z`` (never ``log(0)``), and the output delta ``dC/dz`` collapses to
``(a - y) / n`` (times 2 or ``2/K`` for the squared errors), because the derivative of the
activation cancels against the derivative of the loss.

Regularisers: :func:`l2_penalty` (the lecture's ``l_reg = lam/(2n) sum W^2``) and
:class:`SynapticPlasticity` (seed 003: ``lam sum_i b_i (theta'_i - theta_i)^2``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = [
    "Loss",
    "SquaredError",
    "HalfSquaredError",
    "MSE",
    "CrossEntropy",
    "BinaryCrossEntropy",
    "LOSSES",
    "get_loss",
    "default_loss_for",
    "SynapticPlasticity",
    "l2_penalty",
]


def _logsumexp(z: np.ndarray) -> np.ndarray:
    m = z.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]


class Loss:
    """A data loss ``C(A, Y)`` averaged over the batch.

    Subclasses implement ``value`` and ``grad`` (``dC/dA``); where ``fused_with`` names the output
    activation, ``fused`` gives value and ``dC/dZ`` straight from the logits.
    """

    name = "loss"
    fused_with: str | None = None
    classification = False

    def value(self, A: np.ndarray, Y: np.ndarray) -> float:
        raise NotImplementedError

    def grad(self, A: np.ndarray, Y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def fused(self, Z: np.ndarray, A: np.ndarray, Y: np.ndarray) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SquaredError(Loss):
    """The notes' ``C0 = sum_k (a_k - y_k)^2``, batch-averaged; ``dC/da = 2 (a - y) / n``."""

    name = "squared_error"
    fused_with = "identity"
    scale = 1.0  # value = scale * sum_k (a-y)^2, averaged over samples

    def _factor(self, A):
        return self.scale

    def value(self, A, Y):
        d = A - Y
        return float(self._factor(A) * np.einsum("ij,ij->", d, d) / A.shape[0])

    def grad(self, A, Y):
        d = A - Y
        d *= A.dtype.type(2.0 * self._factor(A) / A.shape[0])
        return d

    def fused(self, Z, A, Y):
        # identity output: a = z, so dC/dz = dC/da.
        d = A - Y
        value = float(self._factor(A) * np.einsum("ij,ij->", d, d) / A.shape[0])
        d *= A.dtype.type(2.0 * self._factor(A) / A.shape[0])
        return value, d


class HalfSquaredError(SquaredError):
    """``1/2 sum_k (a_k - y_k)^2``, averaged over the batch: ``dC/da = (a - y) / n``."""

    name = "half_squared_error"
    scale = 0.5


class MSE(SquaredError):
    """Mean over samples *and* outputs: ``1/(nK) sum (a - y)^2``; ``dC/da = 2 (a - y) / (nK)``."""

    name = "mse"

    def _factor(self, A):
        return 1.0 / A.shape[1]


class CrossEntropy(Loss):
    """Categorical cross-entropy ``-sum_k y_k log a_k`` with a softmax output.

    Fused with softmax it is computed from the logits as ``logsumexp(z) - sum_k y_k z_k`` and the
    output delta is ``(softmax(z) - y) / n``: the softmax Jacobian times ``-y/a`` collapses to
    ``a - y`` when the targets sum to one.
    """

    name = "cross_entropy"
    fused_with = "softmax"
    classification = True
    eps = 1e-12

    def value(self, A, Y):
        eps = max(self.eps, float(np.finfo(A.dtype).tiny))
        return float(-np.einsum("ij,ij->", Y, np.log(np.clip(A, eps, None))) / A.shape[0])

    def grad(self, A, Y):
        eps = max(self.eps, float(np.finfo(A.dtype).tiny))
        return -Y / (np.clip(A, eps, None) * A.dtype.type(A.shape[0]))

    def fused(self, Z, A, Y):
        n = Z.shape[0]
        # sum_i logsumexp(z_i) = sum_i m_i + sum_i log sum_k exp(z_ik - m_i), m_i = max_k z_ik
        m = np.maximum.reduce(Z, axis=1, keepdims=True)
        e = np.subtract(Z, m)
        np.exp(e, out=e)
        # (adding m_i to its own row's log before summing keeps the value smooth to rounding,
        # which finite-difference gradient checks notice)
        lse = np.add.reduce(m[:, 0] + np.log(np.add.reduce(e, axis=1)))
        value = float((lse - np.einsum("ij,ij->", Y, Z)) / n)
        delta = np.subtract(A, Y)
        delta *= Z.dtype.type(1.0 / n)
        return value, delta


class BinaryCrossEntropy(Loss):
    """Binary cross-entropy ``-sum_k [y log a + (1 - y) log(1 - a)]`` with sigmoid outputs.

    Fused with sigmoid: value ``sum_k log(1 + e^z) - y z`` (``np.logaddexp``, no overflow) and
    delta ``(sigmoid(z) - y) / n``.
    """

    name = "binary_cross_entropy"
    fused_with = "sigmoid"
    classification = True
    eps = 1e-12

    def _clip(self, A):
        eps = max(self.eps, float(np.finfo(A.dtype).eps))
        return np.clip(A, eps, 1 - eps)

    def value(self, A, Y):
        Ac = self._clip(A)
        s = np.einsum("ij,ij->", Y, np.log(Ac)) + np.einsum("ij,ij->", 1 - Y, np.log1p(-Ac))
        return float(-s / A.shape[0])

    def grad(self, A, Y):
        Ac = self._clip(A)
        return (Ac - Y) / (Ac * (1 - Ac) * A.dtype.type(A.shape[0]))

    def fused(self, Z, A, Y):
        n = Z.shape[0]
        value = float((np.logaddexp(0, Z).sum() - np.einsum("ij,ij->", Y, Z)) / n)
        delta = A - Y
        delta *= Z.dtype.type(1.0 / n)
        return value, delta


LOSSES: dict[str, type[Loss]] = {
    "squared_error": SquaredError,
    "half_squared_error": HalfSquaredError,
    "mse": MSE,
    "cross_entropy": CrossEntropy,
    "log_loss": CrossEntropy,
    "binary_cross_entropy": BinaryCrossEntropy,
}

_DEFAULT_FOR_OUTPUT = {
    "softmax": "cross_entropy",
    "sigmoid": "binary_cross_entropy",
}


def get_loss(spec: str | Loss) -> Loss:
    """Resolve a loss by name (see the module table) or pass an instance through."""
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, str):
        spec = spec.strip()
    if not isinstance(spec, str) or spec.lower() not in LOSSES:
        raise ValueError(f"unknown loss {spec!r}: expected one of {', '.join(sorted(LOSSES))}")
    return LOSSES[spec.lower()]()


def default_loss_for(output: str) -> str:
    """The loss that pairs naturally with an output activation (softmax -> cross_entropy, ...)."""
    return _DEFAULT_FOR_OUTPUT.get(output, "mse")


def l2_penalty(
    params: Mapping[str, np.ndarray], weight_keys, lam: float, n: int
) -> tuple[float, dict[str, np.ndarray]]:
    """The lecture's ``l_reg = lam / (2n) sum_l ||W_l||^2`` over weights (not biases).

    Returns the value and the gradient ``lam / n * W`` for each weight key.
    """
    value = 0.0
    grads = {}
    for k in weight_keys:
        W = params[k]
        value += float(np.einsum("ij,ij->", W, W)) if W.ndim == 2 else float((W * W).sum())
        grads[k] = W * W.dtype.type(lam / n)
    return lam / (2.0 * n) * value, grads


class SynapticPlasticity:
    """Selective synaptic plasticity (seed 003): ``lam * sum_i b_i (theta'_i - theta_i)^2``.

    Keeps the parameters close to an *anchor* ``theta'`` (e.g. the weights learned on an earlier
    task), each parameter weighted by its importance ``b_i >= 0`` (e.g. a Fisher-information
    estimate, as in elastic weight consolidation). The gradient is
    ``2 lam b_i (theta_i - theta'_i)``. Unlike the data losses it is not divided by ``n``.

    Parameters
    ----------
    anchor : mapping name -> array
        ``theta'``, copied at construction.
    importance : mapping name -> array, optional
        ``b`` with the same shapes as ``anchor``; ones when omitted.
    lam : float
        Strength ``lam >= 0``.

    Examples
    --------
    >>> import numpy as np
    >>> from backprop import MLP
    >>> net = MLP([2, 3, 1], seed=0)
    >>> keep = SynapticPlasticity(net.params, lam=10.0)  # anchored to the weights now
    >>> X, y = np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([[1.0], [0.0]])
    >>> loss, grads = net.loss_and_grad(X, y, regularizers=[keep])  # no pull yet: theta = theta'
    >>> loss == net.loss_and_grad(X, y)[0]
    True
    """

    def __init__(self, anchor: Mapping[str, np.ndarray], importance=None, lam: float = 1.0):
        lam = float(lam)
        if not np.isfinite(lam) or lam < 0:
            raise ValueError(f"plasticity lam={lam!r} is invalid: expected a finite number >= 0")
        if not isinstance(anchor, Mapping):
            raise TypeError(
                f"plasticity anchor is a {type(anchor).__name__}: expected the parameters to "
                "stay close to, a dict such as net.params"
            )
        self.anchor = {k: np.array(v, copy=True) for k, v in anchor.items()}
        if importance is None:
            importance = {k: np.ones_like(v) for k, v in self.anchor.items()}
        self.importance = {}
        for k, v in self.anchor.items():
            if k not in importance:
                raise ValueError(f"plasticity importance has no entry for parameter {k!r}")
            b = np.asarray(importance[k], dtype=v.dtype)
            if b.shape != v.shape:
                raise ValueError(
                    f"plasticity importance[{k!r}] has shape {b.shape}: expected {v.shape}"
                )
            if not np.all(np.isfinite(b)) or np.any(b < 0):
                raise ValueError(f"plasticity importance[{k!r}] must be finite and >= 0")
            self.importance[k] = b
        self.lam = lam

    def value_and_grad(self, params: Mapping[str, np.ndarray]) -> tuple[float, dict]:
        value = 0.0
        grads = {}
        for k, anchor in self.anchor.items():
            if k not in params:
                raise ValueError(f"plasticity anchor has parameter {k!r} that the model lacks")
            theta = params[k]
            if theta.shape != anchor.shape:
                raise ValueError(
                    f"plasticity anchor[{k!r}] has shape {anchor.shape}: model has {theta.shape}"
                )
            diff = theta - anchor
            bd = self.importance[k] * diff
            value += float((bd * diff).sum())
            grads[k] = bd * theta.dtype.type(2.0 * self.lam)
        return self.lam * value, grads
