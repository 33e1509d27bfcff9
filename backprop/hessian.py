"""Critical points of a network's loss: the Hessian and the second-order test of the notes.

At a critical point ``theta0`` (``grad L(theta0) = 0``) the Taylor series of the notes (seed 003,
"Critical Point") reduces to

    L(theta) ~ L(theta0) + 1/2 (theta - theta0)^T H (theta - theta0),

so the Hessian ``H = grad^2 L(theta0)`` decides: positive definite -> local minimum, negative
definite -> local maximum, indefinite -> saddle point.

:func:`hessian` computes ``H`` by central finite differences of the *analytic* gradient
(backpropagation), one column per parameter::

    H[:, i] = (g(theta + h e_i) - g(theta - h e_i)) / (2 h),     then H <- (H + H^T) / 2.

Differencing the exact gradient (rather than the loss twice) keeps the error small: O(h^2) from
truncation plus about ``1e-16 |g| / h`` from rounding, about 1e-10 in float64 with the default
``h = 1e-5``. The asymmetry ``max |H - H^T|`` before symmetrising measures that error.

:func:`classify_critical_point` applies the test with explicit tolerances and is honest about
what it cannot decide: eigenvalues within ``tol`` of zero make the test inconclusive, and the
verdict says "degenerate minimum" (no negative eigenvalue, some zero ones), "degenerate maximum"
or "degenerate". Network symmetries produce such zero eigenvalues: in a network with a linear
hidden layer, ``(W1, b1, W2) -> (A W1, A b1, W2 A^-1)`` leaves the function unchanged for every
invertible ``A``, so the loss is exactly flat along those directions (see
:func:`symmetric_minimum` and :func:`rescaling_direction`). ReLU networks have the same
rescaling symmetry unit by unit.

Demonstrations used by the tests and the figures: :func:`constructed_saddle` (all-zero weights
of a tanh network: an exact saddle with known eigenvalues), :func:`trained_minimum` (a tanh
network trained with L-BFGS and polished by Newton steps: a strict minimum),
:func:`symmetric_minimum` (a linear hidden layer: a degenerate minimum).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._validation import check_nonneg_float
from .losses import get_loss

__all__ = [
    "hessian",
    "hessian_of",
    "parameter_names",
    "CriticalPoint",
    "classify_critical_point",
    "newton_polish",
    "constructed_saddle",
    "trained_minimum",
    "symmetric_minimum",
    "rescaling_direction",
]

VERDICTS = (
    "minimum",
    "maximum",
    "saddle",
    "degenerate minimum",
    "degenerate maximum",
    "degenerate",
    "not critical",
)


def hessian_of(
    grad: Callable[[np.ndarray], np.ndarray], theta, h: float = 1e-5, *, return_asymmetry=False
):
    """Hessian of a function from its gradient, by central differences (symmetrised).

    Parameters
    ----------
    grad : callable
        ``grad(theta) -> array (P,)``, the exact gradient at a point ``theta`` of shape ``(P,)``.
    theta : array_like (P,)
        The point (copied, float64).
    h : float, default 1e-5
        Finite-difference step.
    return_asymmetry : bool
        Also return ``max |H - H^T|`` before symmetrising (an estimate of the error).

    Returns
    -------
    H : ndarray (P, P)
        ``H[:, i] = (grad(theta + h e_i) - grad(theta - h e_i)) / (2h)``, then ``(H + H^T)/2``.

    Examples
    --------
    >>> hessian_of(lambda t: np.array([2 * t[0], -2 * t[1]]), [0.0, 0.0]).round(6)
    array([[ 2.,  0.],
           [ 0., -2.]])
    """
    th = np.array(theta, dtype=np.float64, copy=True).reshape(-1)
    h = float(h)
    if not np.isfinite(h) or h <= 0:
        raise ValueError(f"h={h!r} is invalid: expected a finite step > 0")
    P = th.size
    H = np.empty((P, P), dtype=np.float64)
    for i in range(P):
        old = th[i]
        th[i] = old + h
        gp = np.array(grad(th), dtype=np.float64).reshape(-1)
        th[i] = old - h
        gm = np.array(grad(th), dtype=np.float64).reshape(-1)
        th[i] = old
        if gp.shape != (P,):
            raise ValueError(f"grad returned shape {gp.shape}: expected ({P},)")
        H[:, i] = (gp - gm) / (2.0 * h)
    asym = float(np.max(np.abs(H - H.T))) if P else 0.0
    H = (H + H.T) / 2.0
    return (H, asym) if return_asymmetry else H


def _loss_fns(net, X, Y, loss, l2, regularizers):
    l2 = check_nonneg_float(l2, "l2")
    if np.dtype(net.dtype) != np.float64:
        raise ValueError(
            f"the network has dtype {net.dtype}: the Hessian needs float64 (float32 rounding, "
            "about 1e-7 / h, swamps the differences); build it with dtype='float64'"
        )
    loss_obj = get_loss(loss if loss is not None else net.default_loss())
    Xc = net._check_X(X)
    Yc = net.check_targets(Y, len(Xc), loss_obj)
    theta = net.flat_params

    def value_and_grad(t):
        theta[...] = t
        v = net._loss_grad(Xc, Yc, loss_obj, l2, regularizers, False)
        return v, net.flat_grads.copy()

    return theta, value_and_grad


def hessian(
    net,
    X,
    Y,
    loss=None,
    l2: float = 0.0,
    regularizers=(),
    h: float = 1e-5,
    *,
    max_params: int = 3000,
    return_asymmetry: bool = False,
):
    """Hessian of a network's loss with respect to all its parameters, at the current point.

    Central finite differences of the backpropagated gradient (see the module docstring),
    symmetrised; dropout is off. The parameter order is that of ``net.flat_params``
    (names: :func:`parameter_names`). The network's parameters are restored afterwards.

    Parameters
    ----------
    net : Sequential or MLP, float64
    X : array (n_samples, n_in)
    Y : array (n_samples, n_out) or labels
    loss : str, optional
        Defaults to the network's natural loss.
    l2 : float, default 0.0
        L2 strength (adds ``l2 / n`` on the diagonal of the weights).
    regularizers : sequence
        As for :meth:`Sequential.loss_and_grad`.
    h : float, default 1e-5
    max_params : int, default 3000
        Refuse larger networks (``H`` has ``P^2`` entries and costs ``2 P`` backward passes).
    return_asymmetry : bool
        Also return ``max |H - H^T|`` before symmetrising.

    Returns
    -------
    H : ndarray (P, P), float64

    Examples
    --------
    >>> net, X, Y = constructed_saddle()
    >>> H = hessian(net, X, Y, loss="squared_error")
    >>> classify_critical_point(H).verdict
    'saddle'
    """
    P = net.flat_params.size
    if P > max_params:
        raise ValueError(
            f"the network has {P} parameters: the Hessian is computed for at most "
            f"max_params={max_params} ({P}^2 entries, {2 * P} backward passes)"
        )
    theta, vg = _loss_fns(net, X, Y, loss, l2, regularizers)
    saved = theta.copy()
    try:
        return hessian_of(lambda t: vg(t)[1], saved, h, return_asymmetry=return_asymmetry)
    finally:
        theta[...] = saved


def parameter_names(net) -> list[str]:
    """Names of the entries of ``net.flat_params``: ``W1[1,2]``, ``b1[1]``, ... (1-based)."""
    names = []
    for key, arr in net.params.items():
        for idx in np.ndindex(arr.shape):
            names.append(f"{key}[{','.join(str(i + 1) for i in idx)}]")
    return names


@dataclass
class CriticalPoint:
    """The second-order test at a point.

    Attributes
    ----------
    verdict : str
        ``"minimum"`` (all eigenvalues > tol), ``"maximum"`` (all < -tol), ``"saddle"`` (some of
        each sign), ``"degenerate minimum"`` (none negative, some within tol of zero: a minimum
        to second order, decided by higher-order terms or a symmetry), ``"degenerate maximum"``,
        ``"degenerate"`` (all within tol of zero) or ``"not critical"`` (the gradient is not
        zero: the point is no critical point, whatever the Hessian).
    eigenvalues : ndarray
        Ascending.
    eigenvectors : ndarray (P, P)
        Columns, matching ``eigenvalues``.
    tol : float
        Eigenvalues with ``|lambda| <= tol`` count as zero.
    grad_norm : float or None
        ``||grad||`` when a gradient was given.
    n_positive, n_negative, n_zero : int
    """

    verdict: str
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    tol: float
    grad_norm: float | None
    n_positive: int
    n_negative: int
    n_zero: int

    def __str__(self) -> str:
        lo, hi = self.eigenvalues[0], self.eigenvalues[-1]
        g = "" if self.grad_norm is None else f"; |grad| = {self.grad_norm:.1e}"
        return (
            f"{self.verdict}: {self.n_negative} negative, {self.n_zero} zero "
            f"(|lambda| <= {self.tol:.1e}), {self.n_positive} positive eigenvalue(s), from "
            f"{lo:.3g} to {hi:.3g}{g}"
        )


def classify_critical_point(
    H, grad=None, tol: float | None = None, grad_tol: float = 1e-6
) -> CriticalPoint:
    """The notes' test: positive definite -> minimum, negative definite -> maximum,
    indefinite -> saddle; with explicit tolerances and degenerate cases.

    Parameters
    ----------
    H : array (P, P)
        Symmetric Hessian (symmetrised here anyway).
    grad : array, optional
        The gradient at the point; when its norm exceeds ``grad_tol`` the verdict is
        ``"not critical"`` (the eigenvalues are still reported).
    tol : float, optional
        Eigenvalues with ``|lambda| <= tol`` count as zero. Default
        ``1e-6 * max(1, max |lambda|)``: far above the finite-difference error of
        :func:`hessian` (about 1e-10) and far below the curvature of a genuine direction.
    grad_tol : float, default 1e-6

    Returns
    -------
    CriticalPoint

    Examples
    --------
    >>> classify_critical_point(np.diag([2.0, -2.0])).verdict
    'saddle'
    >>> classify_critical_point(np.diag([2.0, 0.0])).verdict
    'degenerate minimum'
    """
    H = np.asarray(H, dtype=np.float64)
    if H.ndim != 2 or H.shape[0] != H.shape[1] or H.size == 0:
        raise ValueError(f"H has shape {H.shape}: expected a non-empty square matrix (P, P)")
    if not np.all(np.isfinite(H)):
        raise ValueError("H contains NaN or infinity: expected finite numbers")
    w, V = np.linalg.eigh((H + H.T) / 2.0)
    if tol is None:
        tol = 1e-6 * max(1.0, float(np.max(np.abs(w))))
    tol = float(tol)
    if not np.isfinite(tol) or tol < 0:
        raise ValueError(f"tol={tol!r} is invalid: expected a finite number >= 0")
    pos = int(np.sum(w > tol))
    neg = int(np.sum(w < -tol))
    zero = w.size - pos - neg
    gnorm = None
    if grad is not None:
        g = (
            np.concatenate([np.ravel(v) for v in grad.values()])
            if isinstance(grad, dict)
            else (np.ravel(np.asarray(grad, dtype=np.float64)))
        )
        if g.size != H.shape[0] or not np.all(np.isfinite(g)):
            raise ValueError(
                f"grad has {g.size} values"
                + ("" if g.size != H.shape[0] else ", not all finite")
                + f": expected {H.shape[0]} finite numbers (one per row of H)"
            )
        gnorm = float(np.linalg.norm(g))
    if gnorm is not None and gnorm > grad_tol:
        verdict = "not critical"
    elif pos and neg:
        verdict = "saddle"
    elif neg == 0 and zero == 0:
        verdict = "minimum"
    elif pos == 0 and zero == 0:
        verdict = "maximum"
    elif neg == 0 and pos:
        verdict = "degenerate minimum"
    elif pos == 0 and neg:
        verdict = "degenerate maximum"
    else:
        verdict = "degenerate"
    return CriticalPoint(verdict, w, V, tol, gnorm, pos, neg, zero)


def newton_polish(
    net, X, Y, loss=None, l2: float = 0.0, *, max_iter: int = 20, grad_tol: float = 1e-12
) -> float:
    """Refine a (nearly) converged minimum with Newton steps; returns the final ``|grad|``.

    L-BFGS stops when the loss no longer decreases by a relative 1e-9 or so, often with
    ``|g|`` around 1e-5; near a minimum Newton's method converges quadratically. The step is
    ``-sum_k (v_k^T g / lambda_k) v_k`` over the eigenpairs of ``H`` with ``lambda_k > tol``
    (the pseudo-inverse: flat directions of a degenerate minimum are left alone). It is taken
    taken only while no eigenvalue is below ``-max(tol, 10 |g|)`` (Newton would otherwise head
    for a saddle) and kept only if it lowers ``|g|``. ``tol`` is that of
    :func:`classify_critical_point`. The ``10 |g|``: near a degenerate minimum, the Hessian at a
    point ``|g|`` away from it has eigenvalues of about ``-|g|`` (0.8 |g| in
    :func:`symmetric_minimum`), which are no saddle; a plain ``-tol`` stopped there.
    """
    theta, vg = _loss_fns(net, X, Y, loss, l2, ())
    g = vg(theta.copy())[1]
    for _ in range(max_iter):
        gn = float(np.linalg.norm(g))
        if gn <= grad_tol:
            break
        start = theta.copy()
        w, V = np.linalg.eigh(hessian_of(lambda t: vg(t)[1], start))
        tol = 1e-6 * max(1.0, float(np.max(np.abs(w))))
        if w[0] < -max(tol, 10.0 * gn):  # clearly indefinite: a saddle nearby, no step
            vg(start)
            break
        keep = w > tol
        trial = start - V[:, keep] @ ((V[:, keep].T @ g) / w[keep])
        g_new = vg(trial)[1]
        if np.linalg.norm(g_new) >= gn:
            vg(start)
            break
        g = g_new
    return float(np.linalg.norm(vg(theta.copy())[1]))


# -- demonstrations ----------------------------------------------------------------------------


def _one_thread():
    """Tiny problems run several times faster on one BLAS thread (SciPy's L-BFGS-B otherwise
    pays thread start-up on every iteration)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def constructed_saddle(n: int = 21, slope: float = 0.8, hidden: int = 2):
    """A network sitting exactly on a saddle point of its loss.

    A 1-``hidden``-1 network (tanh hidden, identity output, float64) with all weights and hidden
    biases zero and the output bias ``b2 = mean(y)``, on ``x`` evenly spaced in ``[-1, 1]`` and
    ``y = slope * x``, loss ``squared_error``. Every gradient vanishes (the hidden outputs
    ``tanh(0) = 0`` carry nothing and ``W2 = 0`` blocks the way back), and the Hessian is known in
    closed form: for each hidden unit the pair ``(W1_i, W2_i)`` has the block
    ``[[0, c], [c, 0]]`` with ``c = 2 mean((b2 - y) x) = -2 slope var(x)``, eigenvalues ``+-|c|``;
    ``d^2C/db2^2 = 2``; the hidden biases are flat. Indefinite: a saddle.

    Returns
    -------
    net, X, Y
        ``X`` of shape ``(n, 1)``, ``Y`` of shape ``(n, 1)``.
    """
    from .layers import MLP

    X = np.linspace(-1.0, 1.0, int(n)).reshape(-1, 1)
    Y = slope * X
    net = MLP([1, int(hidden), 1], activation="tanh", output="identity", dtype="float64")
    net.flat_params[...] = 0.0
    net.params["b2"] = [float(Y.mean())]
    return net, X, Y


def trained_minimum(seed: int = 0, l2: float = 0.01, hidden: int = 2, n: int = 30):
    """A tanh network trained to a strict minimum of its (L2-regularised) loss.

    A 1-``hidden``-1 tanh network fitted to the notes' curve ``y = x + 0.3 sin(2 pi x) + eps``
    (``n`` points) with squared error and L2 strength ``l2`` by full-batch L-BFGS
    (:func:`backprop.fit` with ``optimizer="lbfgs"``), then polished by :func:`newton_polish`
    (L-BFGS alone stops with ``|grad|`` around 1e-5, too far from the critical point for a clean
    test).
    The L2 term removes the flat directions of saturated units, so the Hessian is positive
    definite. Not from every start: L2 may switch a hidden unit off (its outgoing weight goes
    to zero, and its bias, which L2 leaves alone, becomes a flat direction), or L-BFGS may stop
    near a saddle. The data come from ``seed``; the network is initialised from ``seed``, and
    if the point reached is not a strict minimum, from ``seed + 1``, ``seed + 2``, ... (at most
    20 tries), so that the result is what this function promises.

    Returns
    -------
    net, X, Y, l2
    """
    from .datasets import make_curve
    from .layers import MLP
    from .training import fit

    X, Y = make_curve(n, seed=seed, dtype="float64")
    for k in range(20):
        net = MLP(
            [1, hidden, 1], activation="tanh", output="identity", dtype="float64", seed=seed + k
        )
        with _one_thread():
            fit(net, X, Y, loss="squared_error", optimizer="lbfgs", epochs=2000, tol=1e-10, l2=l2)
            newton_polish(net, X, Y, loss="squared_error", l2=l2)
        if _verdict(net, X, Y, l2) == "minimum":
            break
    return net, X, Y, l2


def _verdict(net, X, Y, l2: float = 0.0) -> str:
    H = hessian(net, X, Y, loss="squared_error", l2=l2)
    g = net.loss_and_grad(X, Y, loss="squared_error", l2=l2, training=False)[1]
    return classify_critical_point(H, g).verdict


def symmetric_minimum(seed: int = 0, n: int = 30):
    """A minimum with flat directions from a symmetry: a 1-2-1 network with a *linear* hidden
    layer, fitted to noisy data on a line.

    The network computes ``W2 (W1 x + b1) + b2``, a line with slope ``W2 W1`` and intercept
    ``W2 b1 + b2``; any invertible ``A`` in ``(W1, b1, W2) -> (A W1, A b1, W2 A^-1)`` leaves it
    unchanged, and so does moving ``b2`` against ``W2 b1``. Of the 7 parameters only 2
    combinations matter, so the Hessian at the minimum has 2 positive and 5 zero eigenvalues: a
    degenerate minimum, flat along the symmetry directions (e.g. :func:`rescaling_direction`).
    Trained by L-BFGS, then polished by pseudo-inverse Newton steps (:func:`newton_polish`).
    The data and the initialisation come from ``seed``; should the point reached not test as a
    degenerate minimum, the network is initialised again from ``seed + 1``, ``seed + 2``, ...
    (at most 20 tries).

    Returns
    -------
    net, X, Y
    """
    from .layers import MLP
    from .training import fit

    rng = np.random.default_rng(seed)
    X = np.linspace(-1.0, 1.0, int(n)).reshape(-1, 1)
    Y = 0.7 * X - 0.2 + 0.1 * rng.normal(size=X.shape)
    for k in range(20):
        net = MLP(
            [1, 2, 1], activation="identity", output="identity", dtype="float64", seed=seed + k
        )
        with _one_thread():
            fit(net, X, Y, loss="squared_error", optimizer="lbfgs", epochs=2000, tol=1e-12)
            newton_polish(net, X, Y, loss="squared_error")
        if _verdict(net, X, Y) == "degenerate minimum":
            break
    return net, X, Y


def rescaling_direction(net, unit: int) -> np.ndarray:
    """Tangent of the rescaling ``(W1_i, b1_i, W2[:, i]) -> (c W1_i, c b1_i, W2[:, i] / c)`` of
    hidden unit ``i`` (1-based) at ``c = 1``, as a flat vector in the order of
    ``net.flat_params``: ``(W1_i, b1_i, -W2[:, i])`` and zeros elsewhere.

    For a linear or ReLU hidden layer the network's function, and so its loss, is constant along
    this curve: ``H v = 0`` at a critical point.
    """
    names = list(net.params)
    if not {"W1", "b1", "W2"} <= set(names):
        raise ValueError("rescaling_direction needs a network with W1, b1 and W2")
    n_hidden = net.params["W1"].shape[0]
    if isinstance(unit, bool) or not isinstance(unit, (int, np.integer)):
        raise TypeError(f"unit={unit!r} is invalid: expected an integer in [1, {n_hidden}]")
    if not 1 <= unit <= n_hidden:
        raise ValueError(f"unit={unit!r} is invalid: expected an integer in [1, {n_hidden}]")
    i = unit - 1
    parts = {k: np.zeros_like(v) for k, v in net.params.items()}
    parts["W1"][i] = net.params["W1"][i]
    parts["b1"][i] = net.params["b1"][i]
    parts["W2"][:, i] = -net.params["W2"][:, i]
    return np.concatenate([parts[k].ravel() for k in names]).astype(np.float64)
