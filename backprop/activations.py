"""Activation functions: value and local derivative, in numerically stable forms.

Each activation is a small stateless object with

- ``forward(z) -> a``: the value ``a = f(z)``, same shape and dtype as ``z``;
- ``backward(z, a, grad_a) -> grad_z``: the chain rule's local step ``dC/dz = dC/da * f'(z)``
  (for softmax, the Jacobian-vector product, since each output depends on every input).

``backward`` receives both ``z`` and ``a`` so each derivative can use whichever is cheaper and
more accurate (sigmoid: ``a (1 - a)``; tanh: ``1 - a^2``; ReLU: ``z > 0``).

Names map to classes through :data:`ACTIVATIONS`; :func:`get_activation` resolves a name.
"""

from __future__ import annotations

import inspect

import numpy as np

__all__ = [
    "Activation",
    "Sigmoid",
    "Tanh",
    "ReLU",
    "LeakyReLU",
    "Identity",
    "Softmax",
    "ACTIVATIONS",
    "get_activation",
    "softmax",
    "log_softmax",
]


_EXPIT = []


def _expit():
    """``scipy.special.expit``, imported on first use: importing ``scipy.special`` takes about
    0.2 s, half of ``import backprop``, and most networks never use a sigmoid."""
    if not _EXPIT:
        from scipy.special import expit  # noqa: PLC0415 - deferred on purpose

        _EXPIT.append(expit)
    return _EXPIT[0]


def _float(z: np.ndarray) -> np.ndarray:
    """``z`` itself when it holds floats, else as float64 (integer logits, ...)."""
    return z if z.dtype.kind == "f" else z.astype(np.float64)


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax ``exp(z_i - max z) / sum_j exp(z_j - max z)``.

    Shifting by the row maximum leaves the value unchanged and keeps every exponent <= 0,
    so nothing overflows even at ``|z| = 1000``.
    """
    z = _float(z)
    e = z - z.max(axis=-1, keepdims=True)
    np.exp(e, out=e)
    e /= e.sum(axis=-1, keepdims=True)
    return e


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise ``log softmax(z) = z - logsumexp(z)``, computed with the max shift."""
    m = z.max(axis=-1, keepdims=True)
    s = z - m
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


class Activation:
    """Base class: ``a = f(z)`` and the local derivative step of backprop."""

    name = "activation"

    def forward(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
        """Return ``dC/dz`` given ``dC/da`` (may overwrite ``grad_a``)."""
        raise NotImplementedError

    def derivative(self, z: np.ndarray) -> np.ndarray:
        """Elementwise ``f'(z)`` (not defined for softmax, whose Jacobian is a matrix)."""
        a = self.forward(z)
        return self.backward(z, a, np.ones_like(z))

    # The training step's variants (see backprop.layers.Layer): the same numbers as forward and
    # backward, written into buffers. ``buffer(key, rows, shape, dtype, zero=False)`` hands out
    # the layer's reusable scratch arrays. The defaults fall back to forward/backward.
    def _forward_into(self, z: np.ndarray, out: np.ndarray, buffer) -> np.ndarray:
        return self.forward(z)

    def _backward_inplace(self, z, a, grad_a, buffer) -> np.ndarray:
        return self.backward(z, a, grad_a)

    def to_config(self) -> dict:
        return {"name": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Sigmoid(Activation):
    """Logistic sigmoid ``1 / (1 + e^-z)``; ``f'(z) = a (1 - a)``.

    Uses ``scipy.special.expit``, which never overflows (a naive ``1 / (1 + exp(-z))`` warns
    at ``z = -1000``).
    """

    name = "sigmoid"

    def forward(self, z):
        return _expit()(z)

    def backward(self, z, a, grad_a):
        return grad_a * a * (1 - a)

    def _forward_into(self, z, out, buffer):
        return _expit()(z, out=out)

    def _backward_inplace(self, z, a, grad_a, buffer):
        tmp = buffer("tmp", a.shape[0], a.shape[1:], a.dtype)
        np.subtract(1, a, out=tmp)
        grad_a *= a
        grad_a *= tmp  # (grad_a * a) * (1 - a), as backward
        return grad_a


class Tanh(Activation):
    """Hyperbolic tangent; ``f'(z) = 1 - a^2``."""

    name = "tanh"

    def forward(self, z):
        return np.tanh(z)

    def backward(self, z, a, grad_a):
        return grad_a * (1 - a * a)

    def _forward_into(self, z, out, buffer):
        return np.tanh(z, out=out)

    def _backward_inplace(self, z, a, grad_a, buffer):
        tmp = buffer("tmp", a.shape[0], a.shape[1:], a.dtype)
        np.multiply(a, a, out=tmp)
        np.subtract(1, tmp, out=tmp)
        grad_a *= tmp
        return grad_a


class ReLU(Activation):
    """Rectified linear unit ``max(0, z)``; ``f'(z) = 1 if z > 0 else 0`` (0 at z = 0)."""

    name = "relu"

    def forward(self, z):
        return np.maximum(z, 0)

    def backward(self, z, a, grad_a):
        grad_a *= z > 0
        return grad_a

    def _forward_into(self, z, out, buffer):
        # max(z, zeros) with a zeros array of z's shape: NumPy's SIMD loop for two arrays is
        # about 2.5x faster than broadcasting the scalar 0 (measured in docs/performance.md).
        zeros = buffer("zeros", z.shape[0], z.shape[1:], z.dtype, zero=True)
        return np.maximum(z, zeros, out=out)

    def _backward_inplace(self, z, a, grad_a, buffer):
        mask = buffer("mask", z.shape[0], z.shape[1:], np.bool_)
        np.greater(z, 0, out=mask)
        grad_a *= mask
        return grad_a


class LeakyReLU(Activation):
    """Leaky ReLU ``z if z > 0 else alpha z``; ``f'(z) = 1 or alpha``."""

    name = "leaky_relu"

    def __init__(self, alpha: float = 0.01):
        try:
            alpha = float(alpha)
        except (TypeError, ValueError):
            raise TypeError(
                f"leaky_relu alpha={alpha!r} is invalid: expected a number, 0 <= alpha < 1"
            ) from None
        if not (0 <= alpha < 1):
            raise ValueError(f"leaky_relu alpha={alpha!r} is invalid: expected 0 <= alpha < 1")
        self.alpha = alpha

    def forward(self, z):
        z = _float(z)
        return np.where(z > 0, z, z * z.dtype.type(self.alpha))

    def backward(self, z, a, grad_a):
        grad_a = _float(grad_a)
        return np.where(z > 0, grad_a, grad_a * grad_a.dtype.type(self.alpha))

    def to_config(self):
        return {"name": self.name, "alpha": self.alpha}

    def __repr__(self):
        return f"LeakyReLU(alpha={self.alpha})"


class Identity(Activation):
    """Identity ``f(z) = z``, the usual output for regression; ``f'(z) = 1``."""

    name = "identity"

    def forward(self, z):
        return z

    def backward(self, z, a, grad_a):
        return grad_a


class Softmax(Activation):
    """Row-wise softmax; backward is the Jacobian-vector product ``a * (g - sum(g * a))``.

    With cross-entropy the pair is fused in :mod:`backprop.losses` and this Jacobian is never
    formed: the output delta is simply ``a - y``.
    """

    name = "softmax"

    def forward(self, z):
        return softmax(z)

    def _forward_into(self, z, out, buffer):
        np.subtract(z, np.maximum.reduce(z, axis=-1, keepdims=True), out=out)
        np.exp(out, out=out)
        np.divide(out, np.add.reduce(out, axis=-1, keepdims=True), out=out)
        return out

    def backward(self, z, a, grad_a):
        s = (grad_a * a).sum(axis=-1, keepdims=True)
        return a * (grad_a - s)

    def derivative(self, z):
        raise ValueError(
            "softmax has no elementwise derivative: use backward() (a Jacobian product)"
        )


ACTIVATIONS: dict[str, type[Activation]] = {
    "sigmoid": Sigmoid,
    "logistic": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "identity": Identity,
    "linear": Identity,
    "softmax": Softmax,
}


def get_activation(spec: str | dict | Activation) -> Activation:
    """Resolve an activation from a name (``"relu"``), a config dict or an instance.

    Examples
    --------
    >>> get_activation("tanh").forward(np.zeros(2))
    array([0., 0.])
    """
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, dict):
        spec = dict(spec)
        name = spec.pop("name", None)
        cls = ACTIVATIONS.get(name) if isinstance(name, str) else None
        if cls is None:
            raise ValueError(
                f"unknown activation {name!r}: expected one of {', '.join(sorted(ACTIVATIONS))}"
            )
        allowed = [k for k in inspect.signature(cls).parameters if k != "self"]
        unknown = sorted(k for k in spec if k not in allowed)
        if unknown:
            raise ValueError(
                f"activation {name!r} has no option {unknown[0]!r}: expected "
                + (f"one of {', '.join(allowed)}" if allowed else "no options besides 'name'")
            )
        return cls(**spec)
    if isinstance(spec, str):
        spec = spec.strip()
    if not isinstance(spec, str) or spec.lower() not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {spec!r}: expected one of {', '.join(sorted(ACTIVATIONS))}"
        )
    return ACTIVATIONS[spec.lower()]()
