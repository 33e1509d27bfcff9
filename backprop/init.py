"""Weight initialisation. Every initialiser draws from the caller's ``numpy.random.Generator``.

=====================  ==========================================================
name                   distribution of each ``W[i, j]`` (``W`` is ``(n_out, n_in)``)
=====================  ==========================================================
``normal``             ``N(0, sigma)`` as in the notes (``sigma=0.01`` by default)
``glorot_uniform``     ``U(-r, r)``, ``r = sqrt(6 / (n_in + n_out))`` (Glorot & Bengio 2010)
``glorot_normal``      ``N(0, sqrt(2 / (n_in + n_out)))``
``he_normal``          ``N(0, sqrt(2 / n_in))`` (He et al. 2015, for ReLU)
``he_uniform``         ``U(-r, r)``, ``r = sqrt(6 / n_in)``
=====================  ==========================================================

``xavier_*`` are aliases of ``glorot_*``. Biases start at zero. The draw happens in float64 and is
cast once to the requested dtype, so float32 and float64 networks from the same seed start from
the same numbers (up to rounding).
"""

from __future__ import annotations

import numpy as np

from ._validation import check_positive_int

__all__ = ["INITIALIZERS", "initialize", "default_init_for"]


def _normal(rng, shape, n_in, n_out, sigma=0.01):
    return rng.normal(0.0, sigma, size=shape)


def _glorot_uniform(rng, shape, n_in, n_out):
    r = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-r, r, size=shape)


def _glorot_normal(rng, shape, n_in, n_out):
    return rng.normal(0.0, np.sqrt(2.0 / (n_in + n_out)), size=shape)


def _he_normal(rng, shape, n_in, n_out):
    return rng.normal(0.0, np.sqrt(2.0 / n_in), size=shape)


def _he_uniform(rng, shape, n_in, n_out):
    r = np.sqrt(6.0 / n_in)
    return rng.uniform(-r, r, size=shape)


INITIALIZERS = {
    "normal": _normal,
    "glorot_uniform": _glorot_uniform,
    "xavier_uniform": _glorot_uniform,
    "glorot_normal": _glorot_normal,
    "xavier_normal": _glorot_normal,
    "he_normal": _he_normal,
    "he_uniform": _he_uniform,
}


def default_init_for(activation: str) -> str:
    """He for the ReLU family, Glorot uniform otherwise (sigmoid, tanh, identity)."""
    return "he_normal" if activation in ("relu", "leaky_relu") else "glorot_uniform"


def initialize(
    spec, rng: np.random.Generator, shape: tuple[int, ...], n_in: int, n_out: int, dtype
) -> np.ndarray:
    """Draw an initial weight array.

    Parameters
    ----------
    spec : str or dict
        An initialiser name (table above), or ``{"name": "normal", "sigma": 0.1}``.
    rng : numpy.random.Generator
    shape : tuple
        Shape of the array (``(n_out, n_in)`` for a dense layer).
    n_in, n_out : int
        Fan-in and fan-out used by the scaled initialisers.
    dtype : numpy dtype

    Examples
    --------
    >>> W = initialize("he_normal", np.random.default_rng(0), (3, 2), 2, 3, np.float32)
    """
    kwargs = {}
    if isinstance(spec, dict):
        kwargs = dict(spec)
        spec = kwargs.pop("name", None)
    if not isinstance(spec, str) or spec not in INITIALIZERS:
        raise ValueError(
            f"unknown init {spec!r}: expected one of {', '.join(sorted(INITIALIZERS))}"
        )
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng is a {type(rng).__name__}: expected a numpy.random.Generator")
    check_positive_int(n_in, "n_in")
    check_positive_int(n_out, "n_out")
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise ValueError(f"dtype={dtype!r} is invalid: expected a floating-point dtype")
    if spec == "normal":
        unknown = sorted(set(kwargs) - {"sigma"})
        if unknown:
            raise ValueError(f"init 'normal' takes only sigma, got {unknown}")
        try:
            sigma = float(kwargs.get("sigma", 0.01))
        except (TypeError, ValueError):
            raise ValueError(
                f"init sigma={kwargs.get('sigma')!r} is invalid: expected a finite number > 0"
            ) from None
        if not np.isfinite(sigma) or sigma <= 0:
            raise ValueError(f"init sigma={sigma!r} is invalid: expected a finite number > 0")
        kwargs["sigma"] = sigma
    elif kwargs:
        raise ValueError(f"init {spec!r} takes no options, got {sorted(kwargs)}")
    return INITIALIZERS[spec](rng, shape, n_in, n_out, **kwargs).astype(dt)
