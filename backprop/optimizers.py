"""Gradient-descent optimizers: a little state per parameter plus an in-place update rule.

Every optimizer here follows one interface, which the training loop relies on::

    opt = Adam(lr=0.001)                       # or a Schedule: Adam(lr=cosine(0.001, 5000))
    opt.step({"flat": theta}, {"flat": grad})  # updates theta IN PLACE, then opt.t += 1

- ``t`` counts the updates done so far; :meth:`Optimizer.current_lr` is the learning rate of the
  next update (``lr(t)`` for a schedule, see :mod:`backprop.schedules`).
- State arrays (velocity, moments) are created on the first :meth:`~Optimizer.step`, one set per
  parameter name, with the parameter's dtype: a float32 model trains in float32 all the way
  (scalar hyperparameters are cast to the parameter dtype, nothing is upcast to float64).
- An update is a handful of NumPy ufunc calls writing into the state arrays and one preallocated
  scratch buffer (``out=``), so after the first step no array is allocated. The fastest way to
  use it is the one the training loop takes: ONE flat contiguous parameter vector and its flat
  gradient.
- :meth:`~Optimizer.state_dict` / :meth:`~Optimizer.load_state_dict` save and restore ``t``, the
  hyperparameters and the state arrays, so a run restored from a checkpoint continues exactly.
- Weight decay is not done here: the loss adds the L2 penalty (and so its gradient).

The rules, in increasing complexity (``g`` the gradient, ``eta`` the learning rate; seed 003 of the
lecture notes gives momentum, AdaGrad, RMSprop, Adam and RAdam):

=========  ===================================================================================
SGD        ``w -= eta g``; with momentum ``v = mu v - eta g; w += v`` (Nesterov:
           ``w += mu v - eta g``)
AdaGrad    ``G += g^2; w -= eta g / (sqrt(G) + eps)``
RMSprop    ``s = alpha s + (1 - alpha) g^2; w -= eta g / (sqrt(s) + eps)``
Adam       moving averages of ``g`` and ``g^2`` with bias correction
RAdam      Adam whose adaptive step is switched on (and rectified) once its variance is defined
=========  ===================================================================================

L-BFGS is not a step optimizer: :func:`minimize_lbfgs` runs SciPy's L-BFGS-B on a full-batch
``fun(x) -> (loss, grad)``; the names of such methods are in :data:`FULL_BATCH`.

Names map to classes through :data:`OPTIMIZERS`, shared by the CLI and the estimators;
:func:`get_optimizer` resolves a name, a config dict or an instance.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping

import numpy as np

from . import _kernels
from .schedules import Schedule
from .schedules import from_config as _schedule_from_config

__all__ = [
    "Optimizer",
    "SGD",
    "Momentum",
    "Nesterov",
    "AdaGrad",
    "RMSprop",
    "Adam",
    "RAdam",
    "OPTIMIZERS",
    "FULL_BATCH",
    "get_optimizer",
    "from_config",
    "minimize_lbfgs",
]


# --------------------------------------------------------------------------- validation helpers


def _real(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what}={value!r} is invalid: expected a real number")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{what}={value!r} is invalid: expected a finite number")
    return v


def _positive(value, what: str) -> float:
    v = _real(value, what)
    if v <= 0:
        raise ValueError(f"{what}={value!r} is invalid: expected a finite number > 0")
    return v


def _fraction(value, what: str) -> float:
    """A decay factor in ``[0, 1)``."""
    v = _real(value, what)
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{what}={value!r} is invalid: expected 0 <= {what} < 1")
    return v


def _int(value, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{what}={value!r} is invalid: expected an integer >= {minimum}")
    return int(value)


# --------------------------------------------------------------------------- base class


def _kernel(name: str, p: np.ndarray, g: np.ndarray):
    """The compiled update for a large contiguous parameter (see :mod:`backprop._kernels`)."""
    if p.size < _kernels.MIN_SIZE or not g.flags.c_contiguous or not g.flags.writeable:
        return None  # (the kernels take writable arrays; step() has checked shapes and dtypes)
    return _kernels.get(name, p)


def _flat(*arrays):
    return [a if a.ndim == 1 else a.reshape(-1) for a in arrays]


class Optimizer:
    """Base class: learning rate (number or schedule), update counter ``t`` and per-parameter state.

    Subclasses set ``name``, ``_hyper`` (hyperparameter attribute names after ``lr``), ``slots``
    (names of the state arrays per parameter) and implement

    - ``_coefficients(lr, t) -> tuple[float, ...]``: the scalars of update number ``t`` (1-based),
      computed once per step in Python floats;
    - ``_update(p, g, bufs, *coefs)``: the in-place update of one parameter ``p`` from its
      gradient ``g``; ``bufs`` holds the slot arrays followed by one scratch array, all of
      ``p``'s shape and dtype, and ``coefs`` are already cast to ``p.dtype``.

    Attributes
    ----------
    t : int
        Number of updates done so far (0 for a new or reset optimizer).
    lr : float or Schedule
        The learning rate, a positive number or a :class:`~backprop.schedules.Schedule` of ``t``.
    """

    name: str = "optimizer"
    _hyper: tuple[str, ...] = ()
    slots: tuple[str, ...] = ()

    def __init__(self, lr: float | Schedule = 0.01):
        self.lr = lr
        self.t = 0
        self._state: dict[str, tuple[np.ndarray, ...]] = {}

    # -- learning rate -------------------------------------------------------------------------

    @property
    def lr(self) -> float | Schedule:
        return self._lr

    @lr.setter
    def lr(self, value) -> None:
        if isinstance(value, dict):
            value = _schedule_from_config(value)
        if isinstance(value, Schedule):
            self._lr, self._scheduled = value, True
        else:
            self._lr, self._scheduled = _positive(value, "lr"), False

    def current_lr(self) -> float:
        """Learning rate of the next update: ``lr(t)`` for a schedule, else ``lr``."""
        if not self._scheduled:
            return self._lr
        lr = self._lr(self.t)
        # a custom schedule is the user's code: a NaN, negative (gradient ascent) or non-number
        # rate is stopped here, by name, before it reaches the weights
        if isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating, np.integer)):
            raise TypeError(f"the schedule gave lr={lr!r} at step {self.t}: expected a number")
        if not (lr >= 0 and math.isfinite(lr)):
            raise ValueError(
                f"the schedule gave lr={lr!r} at step {self.t}: expected a finite number >= 0"
            )
        return lr

    # -- the update ----------------------------------------------------------------------------

    def _coefficients(self, lr: float, t: int) -> tuple[float, ...]:
        raise NotImplementedError

    def _update(self, p: np.ndarray, g: np.ndarray, bufs: tuple[np.ndarray, ...], *coefs):
        raise NotImplementedError

    def _new_state(self, key: str, p) -> tuple[np.ndarray, ...]:
        if not isinstance(p, np.ndarray) or not np.issubdtype(p.dtype, np.floating):
            raise TypeError(
                f"parameter {key!r} is invalid: expected a floating-point numpy array, "
                f"got {type(p).__name__} of dtype {getattr(p, 'dtype', None)}"
            )
        if not p.flags.writeable:
            raise ValueError(f"parameter {key!r} is read-only: expected a writeable array")
        bufs = tuple(np.zeros_like(p) for _ in self.slots) + (np.empty_like(p),)
        self._state[key] = bufs
        return bufs

    def step(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
        """Update every ``params[k]`` in place from ``grads[k]``; then ``t += 1``.

        Parameters
        ----------
        params : mapping str -> ndarray
            Floating-point arrays, updated in place (usually one flat vector ``{"flat": theta}``).
        grads : mapping str -> ndarray
            ``dC/dparams[k]`` for every key of ``params``, same shape and dtype.

        Raises
        ------
        ValueError, TypeError
            A gradient is missing or has another shape or dtype than its parameter, or the
            optimizer's state was made for a parameter of another shape or dtype. Nothing is
            updated then.
        """
        for what, m in (("params", params), ("grads", grads)):
            if not isinstance(m, Mapping):
                raise TypeError(
                    f"{what} is a {type(m).__name__}: expected a dict of arrays, e.g. "
                    "{'flat': theta} (and the gradients under the same keys)"
                )
        coefs = self._coefficients(self.current_lr(), self.t + 1)
        work = []
        state = self._state
        for key, p in params.items():
            bufs = state.get(key)
            if bufs is None:
                bufs = self._new_state(key, p)
            g = grads.get(key)
            if g is None:
                raise ValueError(f"grads has no entry for parameter {key!r}")
            ref = bufs[0]
            if ref.shape != p.shape or ref.dtype != p.dtype:
                raise ValueError(
                    f"optimizer state for {key!r} has shape {ref.shape} and dtype {ref.dtype} "
                    f"but the parameter has shape {p.shape} and dtype {p.dtype}: call reset()"
                )
            if getattr(g, "shape", None) != p.shape or getattr(g, "dtype", None) != p.dtype:
                raise ValueError(
                    f"gradient for {key!r} is invalid: expected shape {p.shape} and dtype "
                    f"{p.dtype}, got shape {getattr(g, 'shape', None)} and dtype "
                    f"{getattr(g, 'dtype', type(g).__name__)}"
                )
            work.append((p, g, bufs))
        for p, g, bufs in work:
            cast = p.dtype.type
            self._update(p, g, bufs, *[cast(c) for c in coefs])
        self.t += 1

    def reset(self) -> None:
        """Forget all state arrays and set ``t`` back to 0 (hyperparameters are kept)."""
        self.t = 0
        self._state = {}

    # -- description and checkpoints -----------------------------------------------------------

    def _hyper_config(self) -> dict:
        lr = self._lr.to_config() if self._scheduled else self._lr
        return {"lr": lr, **{h: getattr(self, h) for h in self._hyper}}

    def to_config(self) -> dict:
        """JSON-able description ``{"name": ..., "lr": float or schedule config, <hyper>: ...}``.

        :func:`from_config` (or ``get_optimizer(**config)``) rebuilds an equal optimizer.
        """
        return {"name": self.name, **self._hyper_config()}

    def state_dict(self) -> dict:
        """Everything needed to continue a run: ``{"name", "t", "hyper", "state"}``.

        ``state`` maps ``f"{slot}.{param_key}"`` (for example ``"m.flat"``, ``"v.flat"``) to a
        copy of that state array; ``hyper`` is :meth:`to_config` without the name.
        """
        state = {}
        for key, bufs in self._state.items():
            for slot, arr in zip(self.slots, bufs, strict=False):
                state[f"{slot}.{key}"] = arr.copy()
        return {"name": self.name, "t": self.t, "hyper": self._hyper_config(), "state": state}

    def load_state_dict(self, d: Mapping) -> None:
        """Restore ``t``, the hyperparameters and the state arrays saved by :meth:`state_dict`.

        The arrays are copied. Their shapes and dtypes are checked against the parameters at the
        next :meth:`step`. Raises ``ValueError`` (and changes nothing) for a malformed dict.
        """
        if not isinstance(d, Mapping) or "t" not in d or "state" not in d:
            raise ValueError("optimizer state is invalid: expected a dict with keys t and state")
        name = d.get("name", self.name)
        if name != self.name:
            raise ValueError(f"optimizer state is for {name!r}: expected {self.name!r}")
        t = _int(d["t"], "t", 0)
        if "hyper" in d:
            if not isinstance(d["hyper"], Mapping):
                raise ValueError(
                    f"optimizer state hyper={d['hyper']!r} is invalid: expected a dict"
                )
            try:
                fresh = type(self)(**d["hyper"])
            except TypeError as exc:  # an unknown hyperparameter name
                raise ValueError(f"optimizer state hyper is invalid: {exc}") from None
        else:
            fresh = self
        slots = fresh.slots
        if not isinstance(d["state"], Mapping):
            raise ValueError(
                f"optimizer state 'state' is a {type(d['state']).__name__}: expected a dict of "
                "arrays"
            )
        grouped: dict[str, dict[str, np.ndarray]] = {}
        for full_key, arr in dict(d["state"]).items():
            slot, sep, key = str(full_key).partition(".")
            if not sep or slot not in slots:
                raise ValueError(
                    f"optimizer state key {full_key!r} is invalid: expected '<slot>.<param>' "
                    f"with slot in {list(slots)}"
                )
            a = np.array(arr, copy=True)
            if not np.issubdtype(a.dtype, np.floating):
                raise ValueError(
                    f"optimizer state {full_key!r} has dtype {a.dtype}: expected float"
                )
            if not np.all(np.isfinite(a)):
                raise ValueError(f"optimizer state {full_key!r} holds NaN or infinity")
            squares = slot in ("s", "G") or (slot == "v" and "m" in slots)  # not momentum's v
            if squares and a.size and a.min() < 0:  # mean squares: their sqrt would be NaN
                raise ValueError(f"optimizer state {full_key!r} holds negative values")
            grouped.setdefault(key, {})[slot] = a
        new_state = {}
        for key, arrays in grouped.items():
            if set(arrays) != set(slots):
                raise ValueError(
                    f"optimizer state for {key!r} has slots {sorted(arrays)}: "
                    f"expected {list(slots)}"
                )
            first = arrays[slots[0]]
            if any(a.shape != first.shape or a.dtype != first.dtype for a in arrays.values()):
                raise ValueError(f"optimizer state for {key!r} mixes shapes or dtypes")
            new_state[key] = tuple(arrays[s] for s in slots) + (np.empty_like(first),)
        if fresh is not self:
            self._lr, self._scheduled = fresh._lr, fresh._scheduled
            for h in self._hyper:
                setattr(self, h, getattr(fresh, h))
            self.slots = fresh.slots  # SGD's slots depend on its momentum
        self.t = t
        self._state = new_state

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in [("lr", self._lr)] + self._hyper_items())
        return f"{type(self).__name__}({args})"

    def _hyper_items(self) -> list[tuple[str, object]]:
        return [(h, getattr(self, h)) for h in self._hyper]


# --------------------------------------------------------------------------- SGD and momentum


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum.

    Plain (``momentum = 0``)::

        w <- w - eta g

    Momentum, as in the notes (seed 003) and Sutskever et al. 2013, with velocity ``v_0 = 0``::

        v_{t+1} = mu v_t - eta g_t
        w_{t+1} = w_t + v_{t+1}

    Nesterov momentum in the form of scikit-learn and Sutskever et al. (the gradient is the one
    at the current weights)::

        v_{t+1} = mu v_t - eta g_t
        w_{t+1} = w_t + mu v_{t+1} - eta g_t

    With a constant learning rate these are exactly ``torch.optim.SGD(momentum=mu,
    nesterov=...)`` (whose buffer is ``-v / eta``); with a schedule, the velocity here keeps the
    rates it was built with, as in scikit-learn.

    Parameters
    ----------
    lr : float or Schedule, default 0.01
        ``eta``.
    momentum : float, default 0.0
        ``mu``, ``0 <= mu < 1``.
    nesterov : bool, default False
        Use Nesterov momentum (needs ``momentum > 0``).

    State: ``"v"`` (the velocity) when ``momentum > 0``; none otherwise.

    Examples
    --------
    >>> w = np.array([1.0, 2.0])
    >>> opt = SGD(lr=0.1, momentum=0.5)
    >>> for _ in range(2):
    ...     opt.step({"w": w}, {"w": np.array([1.0, -1.0])})
    >>> w  # v1 = -0.1 g, v2 = 0.5 v1 - 0.1 g = -0.15 g
    array([0.75, 2.25])
    """

    name = "sgd"
    _hyper = ("momentum", "nesterov")

    def __init__(
        self, lr: float | Schedule = 0.01, momentum: float = 0.0, nesterov: bool = False
    ) -> None:
        super().__init__(lr)
        self.momentum = _fraction(momentum, "momentum")
        if not isinstance(nesterov, bool | np.bool_):
            raise TypeError(f"nesterov={nesterov!r} is invalid: expected True or False")
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("nesterov=True is invalid with momentum=0: expected momentum > 0")
        self.slots = ("v",) if self.momentum > 0 else ()

    def _coefficients(self, lr: float, t: int) -> tuple[float, ...]:
        return (lr, self.momentum)

    def _update(self, p, g, bufs, lr, mu):
        name = "sgd" if len(bufs) == 1 else ("nesterov" if self.nesterov else "momentum")
        kernel = _kernel(name, p, g)
        if kernel is not None:  # one compiled pass, the same arithmetic as below
            kernel(*_flat(p, g, *bufs[:-1]), lr, *((mu,) if len(bufs) > 1 else ()))
            return
        if len(bufs) == 1:  # plain SGD: w -= eta g
            (tmp,) = bufs
            np.multiply(g, lr, out=tmp)
            np.subtract(p, tmp, out=p)
            return
        v, tmp = bufs
        np.multiply(v, mu, out=v)
        np.multiply(g, lr, out=tmp)  # tmp = eta g
        np.subtract(v, tmp, out=v)  # v = mu v - eta g
        if self.nesterov:
            np.subtract(p, tmp, out=p)  # w -= eta g
            np.multiply(v, mu, out=tmp)
            np.add(p, tmp, out=p)  # w += mu v
        else:
            np.add(p, v, out=p)


class Momentum(SGD):
    """:class:`SGD` with ``momentum=0.9`` by default (registry name ``"momentum"``)."""

    name = "momentum"

    def __init__(
        self, lr: float | Schedule = 0.01, momentum: float = 0.9, nesterov: bool = False
    ) -> None:
        super().__init__(lr, momentum, nesterov)


class Nesterov(SGD):
    """:class:`SGD` with Nesterov momentum, ``momentum=0.9`` by default (name ``"nesterov"``)."""

    name = "nesterov"

    def __init__(
        self, lr: float | Schedule = 0.01, momentum: float = 0.9, nesterov: bool = True
    ) -> None:
        super().__init__(lr, momentum, nesterov)


# --------------------------------------------------------------------------- adaptive rates


class AdaGrad(Optimizer):
    """AdaGrad (Duchi, Hazan & Singer 2011): per-weight rates shrinking with the summed squares.

    ::

        G_t = G_{t-1} + g_t^2          (G_0 = 0)
        w_t = w_{t-1} - eta g_t / (sqrt(G_t) + eps)

    the notes' ``w_{t+1} = w_t - eta g_t / sqrt(sum_i g_i^2)`` (seed 003) with ``eps`` against a
    zero division; ``torch.optim.Adagrad(lr, eps=eps)`` computes the same.

    Parameters
    ----------
    lr : float or Schedule, default 0.01
    eps : float, default 1e-8

    State: ``"G"``.

    Examples
    --------
    >>> w = np.array([1.0, 1.0])
    >>> AdaGrad(lr=0.5).step({"w": w}, {"w": np.array([2.0, -4.0])})
    >>> w.round(6)  # the first step is eta sign(g)
    array([0.5, 1.5])
    """

    name = "adagrad"
    _hyper = ("eps",)
    slots = ("G",)

    def __init__(self, lr: float | Schedule = 0.01, eps: float = 1e-8) -> None:
        super().__init__(lr)
        self.eps = _positive(eps, "eps")

    def _coefficients(self, lr: float, t: int) -> tuple[float, ...]:
        return (lr, self.eps)

    def _update(self, p, g, bufs, lr, eps):
        G, tmp = bufs
        kernel = _kernel("adagrad", p, g)
        if kernel is not None:
            kernel(*_flat(p, g, G), lr, eps)
            return
        np.multiply(g, g, out=tmp)
        np.add(G, tmp, out=G)  # G += g^2
        np.sqrt(G, out=tmp)
        np.add(tmp, eps, out=tmp)
        np.divide(g, tmp, out=tmp)
        np.multiply(tmp, lr, out=tmp)
        np.subtract(p, tmp, out=p)  # w -= eta g / (sqrt(G) + eps)


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e), in PyTorch's definition.

    ::

        s_t = alpha s_{t-1} + (1 - alpha) g_t^2      (s_0 = 0)
        w_t = w_{t-1} - eta g_t / (sqrt(s_t) + eps)

    equal to ``torch.optim.RMSprop(lr, alpha, eps)`` (no momentum, not centered).

    Parameters
    ----------
    lr : float or Schedule, default 0.001
    alpha : float, default 0.99
        Decay of the running mean of ``g^2``, ``0 <= alpha < 1``.
    eps : float, default 1e-8

    State: ``"s"``.

    Examples
    --------
    >>> w = np.array([1.0])
    >>> RMSprop(lr=0.01, alpha=0.75).step({"w": w}, {"w": np.array([3.0])})
    >>> w.round(8)  # s = 0.25 * 9, step = 0.01 * 3 / 1.5
    array([0.98])
    """

    name = "rmsprop"
    _hyper = ("alpha", "eps")
    slots = ("s",)

    def __init__(self, lr: float | Schedule = 0.001, alpha: float = 0.99, eps: float = 1e-8):
        super().__init__(lr)
        self.alpha = _fraction(alpha, "alpha")
        self.eps = _positive(eps, "eps")

    def _coefficients(self, lr: float, t: int) -> tuple[float, ...]:
        return (lr, self.alpha, 1.0 - self.alpha, self.eps)

    def _update(self, p, g, bufs, lr, alpha, one_minus_alpha, eps):
        s, tmp = bufs
        kernel = _kernel("rmsprop", p, g)
        if kernel is not None:
            kernel(*_flat(p, g, s), lr, alpha, one_minus_alpha, eps)
            return
        np.multiply(s, alpha, out=s)
        np.multiply(g, g, out=tmp)
        np.multiply(tmp, one_minus_alpha, out=tmp)
        np.add(s, tmp, out=s)  # s = alpha s + (1 - alpha) g^2
        np.sqrt(s, out=tmp)
        np.add(tmp, eps, out=tmp)
        np.divide(g, tmp, out=tmp)
        np.multiply(tmp, lr, out=tmp)
        np.subtract(p, tmp, out=p)  # w -= eta g / (sqrt(s) + eps)


def _moments(g, m, v, tmp, one_minus_beta1, beta2, one_minus_beta2) -> None:
    """Adam's moving averages, in place: ``m += (1-b1)(g - m)``, ``v = b2 v + (1-b2) g^2``."""
    np.subtract(g, m, out=tmp)
    np.multiply(tmp, one_minus_beta1, out=tmp)
    np.add(m, tmp, out=m)  # m = b1 m + (1 - b1) g
    np.multiply(v, beta2, out=v)
    np.multiply(g, g, out=tmp)
    np.multiply(tmp, one_minus_beta2, out=tmp)
    np.add(v, tmp, out=v)  # v = b2 v + (1 - b2) g^2


def _check_betas(beta1, beta2) -> tuple[float, float]:
    return _fraction(beta1, "beta1"), _fraction(beta2, "beta2")


class _AdamFamily(Optimizer):
    """What Adam and RAdam share: the hyperparameters, the moments ``m`` and ``v`` and the
    update ``w -= step_size * m / (sqrt(v) + eps)``, or ``w -= step_size * m`` when
    ``_coefficients`` returns a negative ``eps`` (RAdam's un-adapted first steps)."""

    _hyper = ("beta1", "beta2", "eps")
    slots = ("m", "v")

    def __init__(
        self,
        lr: float | Schedule = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(lr)
        self.beta1, self.beta2 = _check_betas(beta1, beta2)
        self.eps = _positive(eps, "eps")

    def _update(self, p, g, bufs, one_minus_b1, b2, one_minus_b2, step_size, eps):
        m, v, tmp = bufs
        kernel = _kernel("adam" if eps >= 0 else "radam_plain", p, g)
        if kernel is not None:  # one compiled pass, the same arithmetic as below
            args = (one_minus_b1, b2, one_minus_b2, step_size) + ((eps,) if eps >= 0 else ())
            kernel(*_flat(p, g, m, v), *args)
            return
        _moments(g, m, v, tmp, one_minus_b1, b2, one_minus_b2)
        if eps < 0:
            np.multiply(m, step_size, out=tmp)
        else:
            np.sqrt(v, out=tmp)
            np.add(tmp, eps, out=tmp)
            np.divide(m, tmp, out=tmp)
            np.multiply(tmp, step_size, out=tmp)
        np.subtract(p, tmp, out=p)


class Adam(_AdamFamily):
    """Adam (Kingma & Ba 2015, Algorithm 1), as ``torch.optim.Adam``.

    With ``m_0 = v_0 = 0`` and the update number ``t = 1, 2, ...``::

        m_t   = beta1 m_{t-1} + (1 - beta1) g_t
        v_t   = beta2 v_{t-1} + (1 - beta2) g_t^2
        mhat  = m_t / (1 - beta1^t)
        vhat  = v_t / (1 - beta2^t)
        w_t   = w_{t-1} - eta mhat / (sqrt(vhat) + eps)

    The code folds both bias corrections into two scalars, which is the same number in exact
    arithmetic and saves two passes over the parameters::

        w_t = w_{t-1} - [eta sqrt(1 - beta2^t) / (1 - beta1^t)] m_t
                        / (sqrt(v_t) + eps sqrt(1 - beta2^t))

    (scikit-learn's Adam uses plain ``eps`` in that denominator, which differs slightly.)

    Parameters
    ----------
    lr : float or Schedule, default 0.001
    beta1, beta2 : float, default 0.9, 0.999
        Decays of the first and second moment, each in ``[0, 1)``.
    eps : float, default 1e-8

    State: ``"m"``, ``"v"``.

    Examples
    --------
    >>> w = np.array([1.0, -2.0], dtype=np.float32)
    >>> opt = Adam(lr=0.1)
    >>> opt.step({"w": w}, {"w": 2 * w})  # the gradient of sum(w^2)
    >>> w.round(6)  # the first step moves every weight by eta against the sign of its gradient
    array([ 0.9, -1.9], dtype=float32)
    """

    name = "adam"

    def _coefficients(self, lr: float, t: int) -> tuple[float, ...]:
        b1, b2 = self.beta1, self.beta2
        sqrt_bc2 = math.sqrt(1.0 - b2**t)
        step_size = lr * sqrt_bc2 / (1.0 - b1**t)
        return (1.0 - b1, b2, 1.0 - b2, step_size, self.eps * sqrt_bc2)  # eps_hat


class RAdam(_AdamFamily):
    """Rectified Adam (Liu et al. 2020), as ``torch.optim.RAdam`` with its defaults.

    ``m_t``, ``v_t`` as in :class:`Adam`; then, with ``rho_inf = 2 / (1 - beta2) - 1`` and
    ``rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)``::

        mhat = m_t / (1 - beta1^t)
        if rho_t > 5:   # the variance of the adaptive rate is defined: rectified Adam step
            r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
            w_t = w_{t-1} - eta r_t mhat sqrt(1 - beta2^t) / (sqrt(v_t) + eps)
        else:           # the first few steps: momentum SGD without the adaptive rate
            w_t = w_{t-1} - eta mhat

    Note that ``eps`` is added to ``sqrt(v_t)``, not to ``sqrt(vhat)`` as in Adam (PyTorch's
    choice). With ``beta2 = 0.999`` the first 5 updates are un-adapted.

    Parameters
    ----------
    lr : float or Schedule, default 0.001
    beta1, beta2 : float, default 0.9, 0.999
    eps : float, default 1e-8

    State: ``"m"``, ``"v"``.

    Examples
    --------
    >>> w = np.array([1.0])
    >>> RAdam(lr=0.1).step({"w": w}, {"w": np.array([5.0])})
    >>> w  # the first step is eta mhat = eta g
    array([0.5])
    """

    name = "radam"

    def _coefficients(self, lr: float, t: int) -> tuple[float, ...]:
        b1, b2 = self.beta1, self.beta2
        bc1 = 1.0 - b1**t
        bc2 = 1.0 - b2**t
        rho_inf = 2.0 / (1.0 - b2) - 1.0
        rho_t = rho_inf - 2.0 * t * b2**t / bc2
        if rho_t > 5.0:
            num = (rho_t - 4.0) * (rho_t - 2.0) * rho_inf
            rect = math.sqrt(num / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
            step_size = lr * rect * math.sqrt(bc2) / bc1
            eps = self.eps
        else:
            step_size = lr / bc1
            eps = -1.0  # marks the un-adapted step
        return (1.0 - b1, b2, 1.0 - b2, step_size, eps)


# --------------------------------------------------------------------------- registry


OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam, RAdam)
}
"""Registry ``name -> class`` of the step optimizers, shared by the CLI and the estimators."""

FULL_BATCH: frozenset[str] = frozenset({"lbfgs"})
"""Names of methods that need the full batch (not step optimizers): see :func:`minimize_lbfgs`."""


def _valid_names() -> str:
    return ", ".join(sorted(OPTIMIZERS))


def get_optimizer(name_or_instance: str | dict | Optimizer, **kwargs) -> Optimizer:
    """Resolve an optimizer from a name (``"adam"``), a config dict or an instance.

    Parameters
    ----------
    name_or_instance : str, dict or Optimizer
        A registry name from :data:`OPTIMIZERS` (case-insensitive), a :meth:`Optimizer.to_config`
        dict, or an instance (returned as is).
    **kwargs
        Hyperparameters for the class (``lr``, ``momentum``, ``beta1``, ...).

    Raises
    ------
    ValueError
        Unknown name (the message lists the valid ones), a full-batch method such as
        ``"lbfgs"``, or an unknown or invalid hyperparameter.

    Examples
    --------
    >>> get_optimizer("momentum", lr=0.1)
    Momentum(lr=0.1, momentum=0.9, nesterov=False)
    """
    if isinstance(name_or_instance, Optimizer):
        if kwargs:
            raise TypeError("get_optimizer() takes no hyperparameters with an Optimizer instance")
        return name_or_instance
    if isinstance(name_or_instance, dict):
        return from_config({**name_or_instance, **kwargs})
    key = name_or_instance.strip().lower() if isinstance(name_or_instance, str) else None
    if key in FULL_BATCH:
        raise ValueError(
            f"optimizer {name_or_instance!r} is a full-batch method, not a step optimizer: "
            "use minimize_lbfgs"
        )
    cls = OPTIMIZERS.get(key)
    if cls is None:
        raise ValueError(
            f"unknown optimizer {name_or_instance!r}: expected one of {_valid_names()}"
        )
    unknown = sorted(set(kwargs) - {"lr", *cls._hyper})
    if unknown:
        raise ValueError(
            f"unknown hyperparameter(s) {', '.join(unknown)} for optimizer {cls.name!r}: "
            f"expected some of {', '.join(('lr',) + cls._hyper)}"
        )
    return cls(**kwargs)


def from_config(config: Mapping) -> Optimizer:
    """Rebuild an optimizer from :meth:`Optimizer.to_config` (a fresh one: ``t = 0``, no state).

    Examples
    --------
    >>> from_config(Adam(lr=0.01).to_config())
    Adam(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-08)
    """
    if not isinstance(config, Mapping) or "name" not in config:
        raise ValueError(f"optimizer config {config!r} is invalid: expected a dict with a name")
    cfg = dict(config)
    return get_optimizer(cfg.pop("name"), **cfg)


# --------------------------------------------------------------------------- L-BFGS


def minimize_lbfgs(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    *,
    max_iter: int = 200,
    max_fun: int = 15000,
    tol: float = 1e-4,
    callback: Callable | None = None,
):
    """Minimise ``fun`` with L-BFGS (SciPy's ``minimize(method="L-BFGS-B", jac=True)``).

    L-BFGS builds a quasi-Newton model of the Hessian from the last few gradient differences and
    does a line search along it, so it needs the loss of the whole training set (full batch), not
    mini-batches; scikit-learn's ``MLPClassifier(solver="lbfgs")`` (seed 001) runs it the same way.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> (loss, grad)`` for a flat float64 vector ``x`` of shape ``(n,)``; ``grad`` has
        shape ``(n,)``.
    x0 : array_like, shape (n,)
        Starting point; copied to float64.
    max_iter : int, default 200
        Maximum number of iterations.
    max_fun : int, default 15000
        Maximum number of calls of ``fun``.
    tol : float, default 1e-4
        Stop when the largest gradient component is ``<= tol`` (SciPy's ``gtol``, as
        scikit-learn uses ``tol``).
    callback : callable, optional
        Passed to SciPy: ``callback(xk)`` after each iteration (or
        ``callback(intermediate_result)`` when that is its parameter name).

    Returns
    -------
    scipy.optimize.OptimizeResult
        ``x`` (float64, shape ``(n,)``), ``fun``, ``jac``, ``nit``, ``nfev``, ``success``,
        ``message``.

    Examples
    --------
    >>> res = minimize_lbfgs(lambda x: ((x - 3.0) @ (x - 3.0), 2 * (x - 3.0)), np.zeros(2))
    >>> res.x.round(6)
    array([3., 3.])
    """
    from scipy.optimize import minimize  # SciPy stays out of the NumPy-only import path

    x = np.array(x0, dtype=np.float64, copy=True)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"x0 has shape {x.shape}: expected a non-empty flat vector (n,)")
    if not np.all(np.isfinite(x)):
        raise ValueError("x0 contains NaN or inf: expected finite values")
    max_iter = _int(max_iter, "max_iter", 1)
    max_fun = _int(max_fun, "max_fun", 1)
    tol = _positive(tol, "tol")
    return minimize(
        fun,
        x,
        method="L-BFGS-B",
        jac=True,
        callback=callback,
        options={"maxiter": max_iter, "maxfun": max_fun, "gtol": tol},
    )
