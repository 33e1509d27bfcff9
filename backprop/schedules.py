"""Learning-rate schedules: pure functions of the optimizer step.

A schedule is a small callable object ``sched(t) -> float`` where ``t = 0, 1, 2, ...`` counts the
optimizer updates already done (so ``sched(0)`` is the rate of the very first update). It holds no
state, so the same schedule gives the same value for the same step every time, and schedules can
be composed (:func:`warmup`, :func:`join`).

The lecture notes (seed 003, "Learning Rate") list the decays implemented here:

=================  ====================================  ===========================
notes' name        formula                               factory
=================  ====================================  ===========================
"step decay"       ``eta / sqrt(t + 1)``                 :func:`inverse_sqrt`
linear decay       ``eta (1 - t / T)``                   :func:`linear`
exponential decay  ``eta e^{-k t}``                      :func:`exponential`
cosine decay       ``eta (1 + cos(pi t / T)) / 2``       :func:`cosine`
warm up            increase, then decrease               :func:`warmup`
=================  ====================================  ===========================

plus :func:`constant`, the classic "multiply by gamma every k steps" :func:`step_decay`, and
piecewise :func:`join`. Every schedule is JSON-describable: ``sched.to_config()`` gives a dict of
plain numbers and :func:`from_config` rebuilds an equal schedule, so model files can store the
training settings.

Steps, not epochs: every length here (``total_steps``, ``every``, ``warmup_steps``) counts
optimizer updates. The training loop converts epochs to steps (``epochs * batches_per_epoch``).

Examples
--------
>>> sched = warmup(100, cosine(0.1, total_steps=900))
>>> sched(0), sched(50), sched(100), sched(1000)
(0.0, 0.05, 0.1, 0.0)
>>> from_config(sched.to_config()) == sched
True
"""

from __future__ import annotations

import bisect
import json
import math
import numbers
from collections.abc import Callable, Sequence

__all__ = [
    "Schedule",
    "constant",
    "inverse_sqrt",
    "step_decay",
    "linear",
    "exponential",
    "cosine",
    "warmup",
    "join",
    "SCHEDULES",
    "get_schedule",
    "from_config",
]


# --------------------------------------------------------------------------- validation helpers


def _rate(value, what: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float after checking it is a finite number > 0 (or >= 0)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what}={value!r} is invalid: expected a real number")
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{what}={value!r} is invalid: expected a finite number {bound}")
    return v


def _steps(value, what: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an int after checking it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what}={value!r} is invalid: expected an integer number of steps")
    v = int(value)
    if v < minimum:
        raise ValueError(f"{what}={value!r} is invalid: expected an integer >= {minimum}")
    return v


def _check_step(t) -> int:
    if isinstance(t, bool) or not isinstance(t, numbers.Integral) or t < 0:
        raise ValueError(f"step={t!r} is invalid: expected an integer >= 0")
    return int(t)


# --------------------------------------------------------------------------- the schedule classes


class Schedule:
    """Base class: a pure function ``t -> learning rate`` with a JSON description.

    Subclasses set ``name`` (the key used by :func:`from_config`), store their arguments as
    attributes listed in ``_fields``, and implement ``_value(t)`` for an integer ``t >= 0``.
    """

    name: str = "schedule"
    _fields: tuple[str, ...] = ()

    def __call__(self, step: int) -> float:
        """Learning rate for update number ``step`` (0-based), as a Python float."""
        return self._value(_check_step(step))

    def _value(self, t: int) -> float:
        raise NotImplementedError

    def to_config(self) -> dict:
        """JSON-able description: ``{"name": ..., <argument>: <value>, ...}``."""
        cfg: dict = {"name": self.name}
        for f in self._fields:
            v = getattr(self, f)
            if isinstance(v, Schedule):
                v = v.to_config()
            elif isinstance(v, tuple) and v and isinstance(v[0], Schedule):
                v = [s.to_config() for s in v]
            elif isinstance(v, tuple):
                v = list(v)
            cfg[f] = v
        return cfg

    def __repr__(self) -> str:
        args = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{self.name}({args})"

    def __eq__(self, other) -> bool:
        if not isinstance(other, Schedule):
            return NotImplemented
        return self.to_config() == other.to_config()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_config(), sort_keys=True))


class _Constant(Schedule):
    name = "constant"
    _fields = ("lr",)

    def __init__(self, lr: float):
        self.lr = _rate(lr, "lr")

    def _value(self, t: int) -> float:
        return self.lr


class _InverseSqrt(Schedule):
    name = "inverse_sqrt"
    _fields = ("lr",)

    def __init__(self, lr: float):
        self.lr = _rate(lr, "lr")

    def _value(self, t: int) -> float:
        return self.lr / math.sqrt(t + 1)


class _StepDecay(Schedule):
    name = "step_decay"
    _fields = ("lr", "gamma", "every")

    def __init__(self, lr: float, gamma: float, every: int):
        self.lr = _rate(lr, "lr")
        self.gamma = _rate(gamma, "gamma")
        if self.gamma > 1:
            raise ValueError(f"gamma={gamma!r} is invalid: expected 0 < gamma <= 1")
        self.every = _steps(every, "every")

    def _value(self, t: int) -> float:
        return self.lr * self.gamma ** (t // self.every)


class _Linear(Schedule):
    name = "linear"
    _fields = ("lr", "total_steps", "end_lr")

    def __init__(self, lr: float, total_steps: int, end_lr: float):
        self.lr = _rate(lr, "lr")
        self.total_steps = _steps(total_steps, "total_steps")
        self.end_lr = _rate(end_lr, "end_lr", allow_zero=True)
        if self.end_lr > self.lr:
            raise ValueError(f"end_lr={end_lr!r} is invalid: expected 0 <= end_lr <= lr={lr!r}")

    def _value(self, t: int) -> float:
        if t >= self.total_steps:
            return self.end_lr
        return self.lr + (self.end_lr - self.lr) * (t / self.total_steps)


class _Exponential(Schedule):
    name = "exponential"
    _fields = ("lr", "k")

    def __init__(self, lr: float, k: float):
        self.lr = _rate(lr, "lr")
        self.k = _rate(k, "k", allow_zero=True)

    def _value(self, t: int) -> float:
        return self.lr * math.exp(-self.k * t)  # math.exp underflows quietly to 0.0


class _Cosine(Schedule):
    name = "cosine"
    _fields = ("lr", "total_steps", "min_lr")

    def __init__(self, lr: float, total_steps: int, min_lr: float):
        self.lr = _rate(lr, "lr")
        self.total_steps = _steps(total_steps, "total_steps")
        self.min_lr = _rate(min_lr, "min_lr", allow_zero=True)
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr={min_lr!r} is invalid: expected 0 <= min_lr <= lr={lr!r}")

    def _value(self, t: int) -> float:
        if t >= self.total_steps:
            return self.min_lr
        cos = math.cos(math.pi * t / self.total_steps)
        return self.min_lr + (self.lr - self.min_lr) * (1.0 + cos) / 2.0


def _as_schedule(value, what: str) -> Schedule:
    if isinstance(value, Schedule):
        return value
    if isinstance(value, dict):
        return from_config(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return _Constant(value)
    raise TypeError(f"{what}={value!r} is invalid: expected a Schedule, a config dict or a number")


class _Warmup(Schedule):
    name = "warmup"
    _fields = ("warmup_steps", "then", "start_lr")

    def __init__(self, warmup_steps: int, then: Schedule, start_lr: float):
        self.warmup_steps = _steps(warmup_steps, "warmup_steps", minimum=0)
        self.then = _as_schedule(then, "then")
        self.start_lr = _rate(start_lr, "start_lr", allow_zero=True)

    def _value(self, t: int) -> float:
        if t >= self.warmup_steps:
            return self.then._value(t - self.warmup_steps)
        peak = self.then._value(0)
        return self.start_lr + (peak - self.start_lr) * (t / self.warmup_steps)


class _Join(Schedule):
    name = "join"
    _fields = ("schedules", "boundaries")

    def __init__(self, schedules: Sequence[Schedule], boundaries: Sequence[int]):
        if isinstance(schedules, Schedule | str | dict) or not isinstance(schedules, Sequence):
            raise TypeError(f"schedules={schedules!r} is invalid: expected a list of schedules")
        if len(schedules) == 0:
            raise ValueError("schedules=[] is invalid: expected at least one schedule")
        self.schedules = tuple(_as_schedule(s, f"schedules[{i}]") for i, s in enumerate(schedules))
        if isinstance(boundaries, str) or not isinstance(boundaries, Sequence):
            raise TypeError(f"boundaries={boundaries!r} is invalid: expected a list of steps")
        self.boundaries = tuple(_steps(b, f"boundaries[{i}]") for i, b in enumerate(boundaries))
        if len(self.boundaries) != len(self.schedules) - 1:
            raise ValueError(
                f"boundaries={list(boundaries)!r} is invalid: expected "
                f"{len(self.schedules) - 1} boundaries for {len(self.schedules)} schedules"
            )
        if any(a >= b for a, b in zip(self.boundaries, self.boundaries[1:], strict=False)):
            raise ValueError(
                f"boundaries={list(boundaries)!r} is invalid: expected strictly increasing steps"
            )

    def _value(self, t: int) -> float:
        i = bisect.bisect_right(self.boundaries, t)
        start = self.boundaries[i - 1] if i > 0 else 0
        return self.schedules[i]._value(t - start)

    def __repr__(self) -> str:
        return f"join({list(self.schedules)!r}, boundaries={list(self.boundaries)!r})"


# --------------------------------------------------------------------------- public factories


def constant(lr: float) -> Schedule:
    """Constant rate ``eta_t = lr``.

    Parameters
    ----------
    lr : float
        The learning rate, finite and > 0.

    Examples
    --------
    >>> constant(0.1)(5000)
    0.1
    """
    return _Constant(lr)


def inverse_sqrt(lr: float) -> Schedule:
    """Inverse square-root decay ``eta_t = lr / sqrt(t + 1)``.

    The lecture notes (seed 003) call this "step decay" (阶梯衰减); scikit-learn's
    ``learning_rate="invscaling"`` with ``power_t=0.5`` is the same curve.

    Parameters
    ----------
    lr : float
        Rate of the first update (``t = 0``), finite and > 0.

    Examples
    --------
    >>> inverse_sqrt(0.1)(3)
    0.05
    """
    return _InverseSqrt(lr)


def step_decay(lr: float, gamma: float = 0.1, every: int = 1000) -> Schedule:
    """Piecewise-constant decay ``eta_t = lr * gamma ** (t // every)``.

    "Multiply the rate by ``gamma`` every ``every`` steps". ``every`` counts optimizer updates,
    not epochs: to decay every ``k`` epochs pass ``every = k * batches_per_epoch``.

    Parameters
    ----------
    lr : float
        Initial rate, finite and > 0.
    gamma : float, default 0.1
        Factor, ``0 < gamma <= 1``.
    every : int, default 1000
        Steps between two decays, >= 1.

    Examples
    --------
    >>> step_decay(1.0, gamma=0.5, every=10)(25)
    0.25
    """
    return _StepDecay(lr, gamma, every)


def linear(lr: float, total_steps: int, end_lr: float = 0.0) -> Schedule:
    """Linear decay from ``lr`` to ``end_lr`` over ``total_steps``, then constant.

    ``eta_t = lr + (end_lr - lr) * min(t, T) / T``; with the default ``end_lr = 0`` this is the
    notes' ``eta (1 - t / T)``, held at ``end_lr`` from ``t = T`` on.

    Parameters
    ----------
    lr : float
        Initial rate, finite and > 0.
    total_steps : int
        ``T``, the number of steps of the decay, >= 1.
    end_lr : float, default 0.0
        Final rate, ``0 <= end_lr <= lr``.

    Examples
    --------
    >>> linear(1.0, total_steps=4)(1), linear(1.0, 4, end_lr=0.5)(2), linear(1.0, 4)(9)
    (0.75, 0.75, 0.0)
    """
    return _Linear(lr, total_steps, end_lr)


def exponential(lr: float, k: float) -> Schedule:
    """Exponential decay ``eta_t = lr * exp(-k t)`` (the notes' ``eta e^{-kt}``).

    Parameters
    ----------
    lr : float
        Initial rate, finite and > 0.
    k : float
        Decay constant per step, finite and >= 0 (``k = 0`` is a constant rate).

    Examples
    --------
    >>> round(exponential(1.0, k=math.log(2))(3), 12)
    0.125
    """
    return _Exponential(lr, k)


def cosine(lr: float, total_steps: int, min_lr: float = 0.0) -> Schedule:
    """Cosine decay ``eta_t = min_lr + (lr - min_lr) (1 + cos(pi t / T)) / 2``, then constant.

    With ``min_lr = 0`` this is the notes' ``eta (1 + cos(pi t / T)) / 2``; from ``t = T`` on the
    rate stays at ``min_lr``.

    Parameters
    ----------
    lr : float
        Initial (peak) rate, finite and > 0.
    total_steps : int
        ``T``, the length of the half cosine wave in steps, >= 1.
    min_lr : float, default 0.0
        Final rate, ``0 <= min_lr <= lr``.

    Examples
    --------
    >>> cosine(1.0, total_steps=10)(5), cosine(1.0, 10, min_lr=0.2)(10)
    (0.5, 0.2)
    """
    return _Cosine(lr, total_steps, min_lr)


def warmup(warmup_steps: int, then: Schedule, start_lr: float = 0.0) -> Schedule:
    """Linear warm-up from ``start_lr`` to ``then(0)``, followed by ``then`` restarted.

    ``eta_t = start_lr + (then(0) - start_lr) * t / W`` for ``t < W`` and ``then(t - W)`` after,
    where ``W = warmup_steps``. The rate is continuous at ``t = W``.

    Parameters
    ----------
    warmup_steps : int
        ``W`` >= 0 (0: no warm-up, just ``then``).
    then : Schedule, dict or float
        The schedule after the warm-up (a config dict or a number, meaning :func:`constant`, are
        accepted too).
    start_lr : float, default 0.0
        Rate of the first update, finite and >= 0.

    Examples
    --------
    >>> s = warmup(4, constant(1.0))
    >>> [s(t) for t in range(6)]
    [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    """
    return _Warmup(warmup_steps, then, start_lr)


def join(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
    """Piecewise schedule: ``schedules[i]`` between ``boundaries[i-1]`` and ``boundaries[i]``.

    Each piece is restarted at its boundary: for ``b_{i-1} <= t < b_i`` the rate is
    ``schedules[i](t - b_{i-1})`` (with ``b_{-1} = 0``); the last piece runs forever.

    Parameters
    ----------
    schedules : sequence of Schedule
        ``n >= 1`` schedules.
    boundaries : sequence of int
        ``n - 1`` strictly increasing steps >= 1.

    Examples
    --------
    >>> s = join([constant(1.0), linear(0.5, total_steps=10)], boundaries=[100])
    >>> s(99), s(100), s(105)
    (1.0, 0.5, 0.25)
    """
    return _Join(schedules, boundaries)


SCHEDULES: dict[str, Callable[..., Schedule]] = {
    "constant": constant,
    "inverse_sqrt": inverse_sqrt,
    "invscaling": inverse_sqrt,
    "step": step_decay,
    "step_decay": step_decay,
    "linear": linear,
    "exponential": exponential,
    "cosine": cosine,
}
"""Registry ``name -> factory(lr, ...)`` shared by :func:`get_schedule`, the CLI and the estimators.

``"invscaling"`` (scikit-learn's name) is an alias of ``"inverse_sqrt"``, ``"step_decay"`` of
``"step"``. Combinators (:func:`warmup`, :func:`join`) are not in it: ``get_schedule`` builds a
warm-up from a ``"warmup+<name>"`` string, and :func:`from_config` rebuilds both.
"""

_CLASSES: dict[str, type[Schedule]] = {
    c.name: c
    for c in (_Constant, _InverseSqrt, _StepDecay, _Linear, _Exponential, _Cosine, _Warmup, _Join)
}

# The argument names each registry factory accepts after ``lr``.
_ARGS: dict[str, tuple[str, ...]] = {
    "constant": (),
    "inverse_sqrt": (),
    "step_decay": ("gamma", "every"),
    "linear": ("total_steps", "end_lr"),
    "exponential": ("k",),
    "cosine": ("total_steps", "min_lr"),
}
_ALIASES = {"invscaling": "inverse_sqrt", "step": "step_decay"}


def _valid_names() -> str:
    return f"{', '.join(sorted(SCHEDULES))} (each also as 'warmup+<name>')"


def get_schedule(name: str | Schedule, lr: float | None = None, **kwargs) -> Schedule:
    """Build a schedule from its registry name, as the CLI and the estimators do.

    Parameters
    ----------
    name : str or Schedule
        One of :data:`SCHEDULES` (``"constant"``, ``"inverse_sqrt"``/``"invscaling"``, ``"step"``,
        ``"linear"``, ``"exponential"``, ``"cosine"``), or ``"warmup+<name>"`` for a linear
        warm-up followed by that schedule. A :class:`Schedule` is returned unchanged.
    lr : float
        Peak learning rate, finite and > 0 (required for a name).
    **kwargs
        Arguments of the factory (``gamma``, ``every``, ``total_steps``, ``end_lr``, ``k``,
        ``min_lr``); for ``"warmup+..."`` also ``warmup_steps`` (required) and ``start_lr``.
        ``total_steps`` is the length of the whole run: schedules that do not use it ignore it,
        and after a warm-up the decay lasts ``total_steps - warmup_steps`` steps (as in optax's
        ``warmup_cosine_decay_schedule``). Any other unknown argument raises ``TypeError``.

    Returns
    -------
    Schedule

    Raises
    ------
    ValueError
        Unknown name (the message lists the valid ones) or invalid argument value.

    Examples
    --------
    >>> s = get_schedule("warmup+cosine", 0.1, warmup_steps=10, total_steps=110)
    >>> s(0), s(10), s(60), s(110)
    (0.0, 0.1, 0.05, 0.0)
    """
    if isinstance(name, Schedule):
        if lr is not None or kwargs:
            raise TypeError(f"get_schedule({name!r}) takes no lr or arguments with a Schedule")
        return name
    if not isinstance(name, str):
        raise ValueError(f"unknown schedule {name!r}: expected one of {_valid_names()}")
    key = name.strip().lower()
    warm = key.startswith("warmup+")
    stem = key[len("warmup+") :] if warm else key
    base = _ALIASES.get(stem, stem)
    if base not in _ARGS:
        raise ValueError(f"unknown schedule {name!r}: expected one of {_valid_names()}")
    if lr is None:
        raise TypeError(f"get_schedule({name!r}) needs a learning rate lr")
    kwargs = dict(kwargs)
    warm_args = {}
    if warm:
        if "warmup_steps" not in kwargs:
            raise TypeError(f"schedule {name!r} needs warmup_steps")
        warm_args["warmup_steps"] = _steps(kwargs.pop("warmup_steps"), "warmup_steps", minimum=0)
        if "start_lr" in kwargs:
            warm_args["start_lr"] = kwargs.pop("start_lr")
    accepted = _ARGS[base]
    if "total_steps" in kwargs:
        total = _steps(kwargs["total_steps"], "total_steps")
        if warm and total <= warm_args["warmup_steps"]:  # for every schedule after a warm-up
            raise ValueError(
                f"total_steps={total!r} is invalid: expected more than "
                f"warmup_steps={warm_args['warmup_steps']!r}"
            )
        if "total_steps" not in accepted:
            del kwargs["total_steps"]
        elif warm:
            kwargs["total_steps"] = total - warm_args["warmup_steps"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        extra = ["warmup_steps", "start_lr"] if warm else []
        raise TypeError(
            f"schedule {name!r} got unexpected argument(s) {', '.join(unknown)}: "
            f"expected some of {', '.join(dict.fromkeys(['total_steps', *accepted, *extra]))}"
        )
    sched = SCHEDULES[base](lr, **kwargs)
    if not warm:
        return sched
    return _Warmup(warm_args["warmup_steps"], sched, warm_args.get("start_lr", 0.0))


def from_config(config: dict) -> Schedule:
    """Rebuild a schedule from ``Schedule.to_config()``.

    Examples
    --------
    >>> from_config({"name": "cosine", "lr": 0.1, "total_steps": 100, "min_lr": 0.0})
    cosine(lr=0.1, total_steps=100, min_lr=0.0)
    """
    if not isinstance(config, dict):
        raise TypeError(f"schedule config {config!r} is invalid: expected a dict")
    cfg = dict(config)
    name = cfg.pop("name", None)
    cls = _CLASSES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(
            f"unknown schedule {name!r} in config: expected one of {', '.join(sorted(_CLASSES))}"
        )
    missing = [f for f in cls._fields if f not in cfg]
    unknown = sorted(set(cfg) - set(cls._fields))
    if missing or unknown:
        raise ValueError(
            f"schedule config {config!r} is invalid: expected exactly the keys "
            f"{', '.join(('name',) + cls._fields)}"
        )
    if cls is _Warmup:
        cfg["then"] = _as_schedule(cfg["then"], "then")
    if cls is _Join:
        cfg["schedules"] = [_as_schedule(s, "schedules[i]") for s in cfg["schedules"]]
    return cls(**cfg)
