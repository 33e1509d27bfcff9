"""Gradient checking: backprop against central finite differences.

For every parameter ``theta_i`` the numerical derivative is

    (C(theta + h e_i) - C(theta - h e_i)) / (2 h),

whose error is O(h^2). Compared with the analytic gradient ``g_i`` through the relative error
``|g_i - num_i| / max(|g_i|, |num_i|, floor)``; the floor keeps exact zeros (dead ReLUs) from
turning rounding noise into a large relative error. Use float64: in float32 the rounding error of
the loss, about 1e-7 / h, swamps the comparison.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

__all__ = ["gradcheck", "numerical_grad", "relative_error"]


def relative_error(analytic: np.ndarray, numeric: np.ndarray, floor: float = 1e-6) -> float:
    """Worst ``|a - n| / max(|a|, |n|, floor)`` over all elements."""
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    if a.size == 0:
        return 0.0
    denom = np.maximum(np.maximum(np.abs(a), np.abs(n)), floor)
    return float(np.max(np.abs(a - n) / denom))


def numerical_grad(
    f: Callable[[], float], params: Mapping[str, np.ndarray], h: float = 1e-6, keys=None
) -> dict[str, np.ndarray]:
    """Central differences of ``f()`` with respect to each array in ``params`` (edited in place
    and restored)."""
    out = {}
    for k in keys if keys is not None else params:
        p = params[k]
        # order="A" keeps a column-major (e.g. transposed) parameter a view: a copy would be
        # edited instead of the parameter and every derivative would read 0.
        g = np.zeros_like(p, dtype=np.float64)
        flat = p.reshape(-1, order="A")
        gflat = g.reshape(-1, order="A")
        if p.size and not np.shares_memory(flat, p):
            raise ValueError(
                f"parameter {k!r} is not contiguous: expected an array that can be edited "
                "in place through a flat view"
            )
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + h
            fp = f()
            flat[i] = old - h
            fm = f()
            flat[i] = old
            gflat[i] = (fp - fm) / (2 * h)
        out[k] = g
    return out


def gradcheck(
    net,
    X,
    Y,
    loss=None,
    l2: float = 0.0,
    regularizers=(),
    h: float = 1e-6,
    floor: float = 1e-6,
    return_details: bool = False,
):
    """Check ``net.loss_and_grad`` against central finite differences.

    Dropout is switched off (``training=False``) so that the loss is a deterministic function
    of the parameters.

    Parameters
    ----------
    net : Sequential or MLP
        Preferably float64.
    X, Y : arrays
        A small batch.
    loss, l2, regularizers :
        As for :meth:`Sequential.loss_and_grad`.
    h : float
        Finite-difference step.
    floor : float
        Smallest denominator of the relative error (see :func:`relative_error`).
    return_details : bool
        Also return ``{name: (analytic, numeric)}``.

    Returns
    -------
    float
        The worst relative error over all parameters: about 1e-7 or less in float64 for a
        correct backward pass, unless some gradients are tiny next to the loss. A central
        difference carries a rounding error of about ``1e-16 |C| / h`` (1e-10 |C| for the
        default ``h``), so beside a loss of 100 a correct gradient of 1e-6 can show a relative
        error of 1e-2; pass a larger ``floor`` there (``1e-5 |C|``, as ``explain`` does).

    Examples
    --------
    >>> import numpy as np
    >>> from backprop import MLP
    >>> net = MLP([3, 4, 2], activation="tanh", output="softmax", dtype="float64", seed=0)
    >>> X = np.random.default_rng(0).normal(size=(5, 3))
    >>> bool(gradcheck(net, X, [0, 1, 1, 0, 1]) < 1e-6)
    True
    """
    if getattr(net, "dtype", None) != np.float64:
        raise ValueError(
            f"the network has dtype {getattr(net, 'dtype', None)}: gradcheck needs float64 "
            "(in float32 a central difference with h = 1e-6 is mostly rounding); build it with "
            "dtype='float64'"
        )
    for value, name in ((h, "h"), (floor, "floor")):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
            raise TypeError(f"{name}={value!r} is invalid: expected a positive number")
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name}={value!r} is invalid: expected a finite number > 0")
    if not net.params:
        raise ValueError("the network has no parameters: nothing to check")
    _, analytic = net.loss_and_grad(
        X, Y, loss=loss, l2=l2, regularizers=regularizers, training=False
    )

    def f():
        return net.loss_and_grad(X, Y, loss=loss, l2=l2, regularizers=regularizers, training=False)[
            0
        ]

    if set(analytic) != set(net.params):  # a parameter without a gradient is a wrong gradient
        missing = sorted(set(net.params) - set(analytic))
        extra = sorted(set(analytic) - set(net.params))
        raise ValueError(
            f"loss_and_grad returned gradients for {sorted(analytic)}: expected one for every "
            f"parameter {sorted(net.params)} (missing {missing}, unknown {extra})"
        )
    numeric = numerical_grad(f, net.params, h=h)
    worst = max(relative_error(analytic[k], numeric[k], floor) for k in analytic)
    if return_details:
        return worst, {k: (analytic[k], numeric[k]) for k in analytic}
    return worst
