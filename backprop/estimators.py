"""scikit-learn compatible estimators: :class:`MLPClassifier` and :class:`MLPRegressor`.

Drop-in replacements for ``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor``: the same
constructor parameters with the same meanings and defaults, the same fitted attributes
(``coefs_`` as ``(n_in, n_out)`` arrays, ``loss_curve_``, ``n_iter_``, ``classes_``, ...), the
same methods, warnings and errors. Changing the import is all it takes::

    from backprop import MLPClassifier  # was: from sklearn.neural_network import MLPClassifier

The estimators only assemble the engine: an :class:`~backprop.layers.MLP` (which keeps the
notes' ``W`` of shape ``(n_out, n_in)``; ``coefs_[i]`` is a transposed *view* of it),
:func:`backprop.fit` with an optimizer of :mod:`backprop.optimizers`, and scikit-learn's
stopping rules written as a :class:`~backprop.callbacks.Callback`.

scikit-learn semantics kept
---------------------------
- Objective: the mean loss of the batch plus ``alpha / (2 n) sum_l ||W_l||^2`` (``n`` the
  batch size; with ``sample_weight``: ``sum_i s_i l_i / S + alpha / (2 S) sum ||W||^2`` with
  ``S = sum_i s_i`` over the batch). Log-loss with a softmax output (multiclass), binary
  log-loss with a logistic output (binary and multilabel), half squared error with an identity
  output (regression), half Poisson deviance with a log link (``loss="poisson"``).
- ``loss_curve_`` holds the per-epoch mean of the batch losses; ``best_loss_``, ``tol`` and
  ``n_iter_no_change``: training stops when the loss has not improved by ``tol`` for more than
  ``n_iter_no_change`` epochs (with ``early_stopping=True``: the validation score, accuracy or
  R^2, on a ``validation_fraction`` split, and the best weights are restored).
- ``learning_rate="invscaling"``: ``lr = learning_rate_init / (t + 1)^power_t`` after each epoch
  (``t`` the samples seen); ``"adaptive"`` divides the rate by 5 when the rule above fires
  (stopping once it falls under 1e-6). As in scikit-learn both apply to ``solver="sgd"`` (and
  here also to the added step solvers), not to ``"adam"``.
- Initial weights and biases ``U(-r, r)``, ``r = sqrt(6 / (fan_in + fan_out))`` (factor 2
  instead of 6 for a logistic hidden layer), as scikit-learn draws them.
- ``ConvergenceWarning`` when ``max_iter`` ends training; ``NotFittedError`` before ``fit``;
  parameter errors name the parameter (scikit-learn's own validation).

Added (what scikit-learn's users asked for)
--------------------------------------------
``dropout`` (a rate, or one per hidden layer), ``class_weight`` (classifier), one activation per
hidden layer (``activation=["relu", "tanh"]``) and ``"leaky_relu"``, the solvers ``"momentum"``,
``"rmsprop"``, ``"adagrad"`` and ``"radam"``, the schedules ``"cosine"``, ``"exponential"``,
``"linear"``, ``"step_decay"``, ``"inverse_sqrt"`` and ``"warmup+<name>"`` (or any
:class:`~backprop.schedules.Schedule`), ``dtype`` (float32 by default), the validation loss in
``history_.val_loss`` / ``validation_loss_curve_``, :meth:`save` / :meth:`load` to safetensors
model files, and :meth:`from_sklearn` / :meth:`to_sklearn`.
"""

from __future__ import annotations

import copy
import math
import numbers
import operator
import warnings

import numpy as np
from scipy import sparse
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from . import io as _io
from .activations import get_activation
from .callbacks import Callback, History, TrainingDiverged
from .layers import MLP
from .losses import BinaryCrossEntropy, CrossEntropy, HalfSquaredError, Loss
from .optimizers import SGD, AdaGrad, Adam, RAdam, RMSprop, minimize_lbfgs
from .schedules import Schedule, get_schedule
from .schedules import from_config as _schedule_from_config
from .training import fit as _fit_net

__all__ = ["MLPClassifier", "MLPRegressor", "load_estimator"]

_SK_ACTIVATIONS = ("identity", "logistic", "tanh", "relu")
_ACTIVATIONS = _SK_ACTIVATIONS + ("sigmoid", "leaky_relu", "linear")
_SK_SOLVERS = ("lbfgs", "sgd", "adam")
_STEP_SOLVERS = ("sgd", "adam", "momentum", "rmsprop", "adagrad", "radam")
_SOLVERS = _SK_SOLVERS + ("momentum", "rmsprop", "adagrad", "radam")
_SK_LR = ("constant", "invscaling", "adaptive")
_DECAYS = ("cosine", "exponential", "linear", "step_decay", "inverse_sqrt")
_LR_NAMES = _SK_LR + _DECAYS + tuple(f"warmup+{n}" for n in ("constant",) + _DECAYS)
# The engine's names of the output activations, and scikit-learn's.
_SK_OUT = {"softmax": "softmax", "sigmoid": "logistic", "identity": "identity"}


# --------------------------------------------------------------------------------------------
# Losses with scikit-learn's conventions, per sample, optionally weighted
# --------------------------------------------------------------------------------------------


class _SampleLoss(Loss):
    """A data loss computed per sample, for sample weights and the Poisson deviance.

    With ``weighted=True`` the last column of ``Y`` holds the sample weights ``s`` and the batch
    loss is ``sum_i s_i l_i / S`` with ``S = sum_i s_i`` (scikit-learn's ``np.average``); its
    gradient is ``s_i (a_i - y_i) / S`` for every fused output (softmax + log-loss, sigmoid +
    binary log-loss, identity + half squared error, log link + half Poisson deviance).
    ``denominator`` keeps ``S`` of the last batch for :class:`_WeightedL2`. A batch whose weights
    are all zero contributes nothing and its L2 term is divided by the batch size.
    """

    prepared_targets = True  # the estimator builds Y itself: _EstimatorNet skips the checks

    def __init__(self, kind: str, weighted: bool):
        self.kind = kind
        self.name = kind
        self.weighted = weighted
        self.fused_with = (
            "softmax"
            if kind == "log_loss"
            else ("sigmoid" if kind == "binary_log_loss" else "identity")
        )
        self.classification = False  # no accuracy on Y's weight column
        self.denominator = 1.0

    def _split(self, Y):
        if not self.weighted:
            return Y, None
        return Y[:, :-1], Y[:, -1]

    def _per_sample(self, Z, A, T):
        """Loss of each sample (n,) and ``dl/dz`` (n, k) from the logits ``Z``."""
        if self.kind == "log_loss":
            m = Z.max(axis=1, keepdims=True)
            lse = (m + np.log(np.exp(Z - m).sum(axis=1, keepdims=True)))[:, 0]
            return lse - np.einsum("ij,ij->i", T, Z), A - T
        if self.kind == "binary_log_loss":
            return (np.logaddexp(0, Z) - T * Z).sum(axis=1), A - T
        if self.kind == "squared_error":
            d = A - T
            return 0.5 * np.einsum("ij,ij->i", d, d), d
        # poisson, log link: mean mu = exp(z); l = mu - y z + y log y - y (half deviance)
        mu = np.exp(Z)
        ylogy = np.where(T > 0, T * np.log(np.where(T > 0, T, 1)), 0)
        return (mu - T * Z + ylogy - T).sum(axis=1), mu - T

    def _reduce(self, losses, delta, s):
        n = len(losses)
        dt = delta.dtype.type
        if s is None:
            self.denominator = float(n)
            delta *= dt(1.0 / n)
            return float(losses.sum() / n), delta
        S = float(s.sum(dtype=np.float64))
        if S <= 0:
            self.denominator = float(n)
            delta[...] = 0
            return 0.0, delta
        self.denominator = S
        delta *= (s * dt(1.0 / S))[:, None]
        return float(np.dot(losses.astype(np.float64), s) / S), delta

    def fused(self, Z, A, Y):
        T, s = self._split(Y)
        losses, delta = self._per_sample(Z, A, T)
        return self._reduce(losses, delta, s)

    def value(self, A, Y):
        T, s = self._split(Y)
        if self.kind in ("squared_error", "poisson"):  # identity output: A is Z
            losses = self._per_sample(A, A, T)[0]
        else:
            eps = float(np.finfo(A.dtype).eps)
            P = np.clip(A, eps, 1 - eps)
            if self.kind == "log_loss":
                losses = -np.einsum("ij,ij->i", T, np.log(P))
            else:
                losses = -(T * np.log(P) + (1 - T) * np.log1p(-P)).sum(axis=1)
        if s is None:
            return float(losses.mean())
        S = float(s.sum(dtype=np.float64))
        return float(np.dot(losses.astype(np.float64), s) / S) if S > 0 else 0.0

    def grad(self, A, Y):
        # Only reached if the output activation is not the fused one (never in the estimators).
        T, s = self._split(Y)
        if self.kind in ("squared_error", "poisson"):
            g = self._per_sample(A, A, T)[1]
        else:
            eps = float(np.finfo(A.dtype).eps)
            P = np.clip(A, eps, 1 - eps)
            g = -T / P if self.kind == "log_loss" else (P - T) / (P * (1 - P))
        return self._reduce(np.zeros(len(A)), g, s)[1]


class _WeightedL2:
    """scikit-learn's L2 term with sample weights: ``alpha / (2 S) sum ||W||^2`` where ``S`` is
    the weight sum of the current batch (read from the loss, which runs first)."""

    def __init__(self, alpha: float, weight_keys, loss: _SampleLoss):
        self.alpha = float(alpha)
        self.weight_keys = list(weight_keys)
        self.loss = loss

    def value_and_grad(self, params):
        S = self.loss.denominator
        value = 0.0
        grads = {}
        for k in self.weight_keys:
            W = params[k]
            value += float(np.einsum("ij,ij->", W, W))
            grads[k] = W * W.dtype.type(self.alpha / S)
        return self.alpha / (2.0 * S) * value, grads


class _EstimatorNet(MLP):
    """An :class:`MLP` that accepts targets the estimator already checked and encoded (with the
    sample weights as an extra column for a :class:`_SampleLoss`)."""

    def check_targets(self, Y, n, loss):
        if getattr(loss, "prepared_targets", False):
            return np.ascontiguousarray(Y, dtype=self.dtype)
        return super().check_targets(Y, n, loss)


# --------------------------------------------------------------------------------------------
# scikit-learn's stopping and learning-rate rules, as a callback of backprop.fit
# --------------------------------------------------------------------------------------------


class _SklearnRules(Callback):
    """After each epoch: record ``loss_curve_`` / ``n_iter_`` / ``t_``, score the validation
    split, apply ``invscaling`` / ``adaptive`` and scikit-learn's ``tol`` /
    ``n_iter_no_change`` stopping rule."""

    def __init__(self, est, n_train, val, lr_rule):
        self.est = est
        self.n_train = n_train
        self.val = val  # (X_val, Y_val prepared, y_val raw, sw_val) or None
        self.lr_rule = lr_rule  # None, "invscaling" or "adaptive"
        self.converged = False

    def on_epoch_end(self, trainer, epoch, logs):
        est = self.est
        est.n_iter_ += 1
        est.t_ += self.n_train
        est.loss_ = float(logs["loss"])
        est.loss_curve_.append(est.loss_)
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")
        if self.val is not None:
            score = self._validate(trainer)
            est.validation_scores_.append(score)
            if est.verbose:
                print(f"Validation score: {score:f}")
            if score < est.best_validation_score_ + est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                est._best_flat = trainer.net.flat_params.copy()
        else:
            if est.loss_ > est.best_loss_ - est.tol:
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if est.loss_ < est.best_loss_:
                est.best_loss_ = est.loss_
        opt = trainer.optimizer
        if self.lr_rule == "invscaling":
            opt.lr = float(est.learning_rate_init) / (est.t_ + 1) ** est.power_t
        if est._no_improvement_count > est.n_iter_no_change:
            what = "Validation score" if self.val is not None else "Training loss"
            msg = (
                f"{what} did not improve more than tol={est.tol:f} for "
                f"{est.n_iter_no_change} consecutive epochs."
            )
            if self.lr_rule == "adaptive" and opt.lr > 1e-6:
                opt.lr = opt.lr / 5.0
                est._no_improvement_count = 0
                if est.verbose:
                    print(f"{msg} Setting learning rate to {opt.lr:f}")
            else:
                if est.verbose:
                    print(f"{msg} Stopping.")
                self.converged = True
                trainer.stop_training = True
                trainer.history.stop_reason = msg

    def _validate(self, trainer):
        est = self.est
        Xv, Yv, yv, swv = self.val
        A = trainer.net._forward_unchecked(Xv, False)
        trainer.history.val_loss.append(trainer.loss.value(A, Yv))
        if not np.isfinite(A).all():
            score = np.nan
        else:
            score = float(est._score_outputs(A, yv, swv))
        if _is_clf(est):
            trainer.history.val_accuracy.append(score)
        return score


def _is_clf(est) -> bool:
    return isinstance(est, ClassifierMixin)


# --------------------------------------------------------------------------------------------
# The shared base class
# --------------------------------------------------------------------------------------------


def _check_solver_is_stochastic(est) -> bool:
    if est.solver not in _STEP_SOLVERS:
        raise AttributeError(
            f"partial_fit is only available for stochastic optimizers. {est.solver} is not "
            "stochastic."
        )
    return True


def _copied(scores):
    """A converted model's own list of validation scores (training one then leaves the
    other's alone); None stays None."""
    return None if scores is None else list(scores)


def _scaled(value, scale: float):
    """A loss figure converted between scikit-learn's units and ours (None stays None)."""
    return None if value is None else float(value) * scale


class _BaseMLP(BaseEstimator):
    """Shared machinery of :class:`MLPClassifier` and :class:`MLPRegressor` (not for direct
    use)."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(numbers.Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(_ACTIVATIONS)), list, tuple],
        "solver": [StrOptions(set(_SOLVERS))],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions(set(_LR_NAMES)), Schedule],
        "learning_rate_init": [Interval(numbers.Real, 0, None, closed="neither")],
        "power_t": [Interval(numbers.Real, 0, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state", np.random.Generator],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(numbers.Real, 0, 1, closed="left")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "beta_1": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta_2": [Interval(numbers.Real, 0, 1, closed="left")],
        "epsilon": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_iter_no_change": [
            Interval(numbers.Integral, 1, None, closed="left"),
            Options(numbers.Real, {np.inf}),
        ],
        "max_fun": [Interval(numbers.Integral, 1, None, closed="left")],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left"), list, tuple],
        "dtype": [StrOptions({"float32", "float64"}), type, np.dtype],
        "schedule_kwargs": [dict, None],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dropout=0.0,
        dtype="float32",
        schedule_kwargs=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.dtype = dtype
        self.schedule_kwargs = schedule_kwargs

    # -- the weights as scikit-learn shows them ------------------------------------------------

    @property
    def coefs_(self) -> list[np.ndarray]:
        """``coefs_[i]`` of shape ``(n_in, n_out)``: a transposed view of the engine's ``W``
        (editing it in place edits the model; assigning a list, or one layer
        ``coefs_[i] = W``, copies it in)."""
        net = self._fitted_net("coefs_")
        return _LayerList(
            [net.params[f"W{i}"].T for i in range(1, len(net.sizes))],
            lambda i, v: net.params.__setitem__(f"W{i + 1}", np.asarray(v).T),
        )

    @coefs_.setter
    def coefs_(self, values):
        net = self._fitted_net("coefs_")
        self._assign("coefs_", values, lambda i: (f"W{i}", lambda a: np.asarray(a).T), net)

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """``intercepts_[i]`` of shape ``(n_out,)``: views of the engine's ``b``."""
        net = self._fitted_net("intercepts_")
        return _LayerList(
            [net.params[f"b{i}"] for i in range(1, len(net.sizes))],
            lambda i, v: net.params.__setitem__(f"b{i + 1}", np.asarray(v)),
        )

    @intercepts_.setter
    def intercepts_(self, values):
        net = self._fitted_net("intercepts_")
        self._assign("intercepts_", values, lambda i: (f"b{i}", np.asarray), net)

    def _fitted_net(self, what):
        net = self.__dict__.get("net_")
        if net is None:
            raise AttributeError(f"{type(self).__name__} has no attribute {what!r} before fit")
        return net

    @staticmethod
    def _assign(what, values, key_of, net):
        values = list(values)
        n_layers = len(net.sizes) - 1
        if len(values) != n_layers:
            raise ValueError(f"{what} has {len(values)} arrays: expected {n_layers}")
        for i, v in enumerate(values, start=1):
            key, convert = key_of(i)
            net.params[key] = convert(v)

    def __sklearn_is_fitted__(self):
        return "net_" in self.__dict__

    # -- parameters -> engine pieces ----------------------------------------------------------

    def _hidden_sizes(self) -> list[int]:
        h = self.hidden_layer_sizes
        sizes = [h] if not hasattr(h, "__iter__") else list(h)
        for s in sizes:
            if isinstance(s, bool) or not isinstance(s, numbers.Integral):
                raise ValueError(
                    f"hidden_layer_sizes={h!r} has the width {s!r}: expected whole numbers > 0"
                )
        if any(s <= 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return [int(s) for s in sizes]

    def _hidden_activations(self, n_hidden: int) -> list[str]:
        act = self.activation
        acts = [act] * n_hidden if isinstance(act, str) else list(act)
        if not isinstance(act, str) and len(acts) != n_hidden:
            raise ValueError(
                f"activation has {len(acts)} entries: expected one per hidden layer "
                f"({n_hidden}) or a single name"
            )
        for a in acts:
            if a not in _ACTIVATIONS:
                raise ValueError(
                    f"activation {a!r} is invalid: expected one of {', '.join(_ACTIVATIONS)}"
                )
        return acts

    def _dropouts(self, n_hidden: int) -> list[float]:
        d = self.dropout
        drops = [d] * n_hidden if isinstance(d, numbers.Real) else list(d)
        if len(drops) != n_hidden:
            raise ValueError(
                f"dropout has {len(drops)} entries: expected one per hidden layer ({n_hidden}) "
                "or a single rate"
            )
        for p in drops:
            if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p < 1:
                raise ValueError(f"dropout rate {p!r} is invalid: expected 0 <= rate < 1")
        return [float(p) for p in drops]

    def _np_dtype(self) -> np.dtype:
        try:
            dt = np.dtype(self.dtype)
        except TypeError:
            dt = None
        if dt not in (np.float32, np.float64):
            raise ValueError(f"dtype={self.dtype!r} is invalid: expected 'float32' or 'float64'")
        return dt

    def _make_rng(self) -> np.random.Generator:
        rs = self.random_state
        if isinstance(rs, np.random.Generator):
            return rs
        if isinstance(rs, np.random.RandomState):
            return np.random.default_rng(rs.randint(np.iinfo(np.int32).max))
        return np.random.default_rng(rs)

    def _learning_rate(self, steps_per_epoch: int):
        """The optimizer's ``lr``: a number, or a Schedule of the update count."""
        lr = self.learning_rate
        kwargs = dict(self.schedule_kwargs or {})
        if isinstance(lr, Schedule):
            if kwargs:
                raise ValueError("schedule_kwargs is invalid with a Schedule: give its arguments")
            return lr
        if lr in _SK_LR:
            if kwargs:
                raise ValueError(
                    f"schedule_kwargs is only used with the schedules {', '.join(_LR_NAMES[3:])}"
                    f", not with learning_rate={lr!r}"
                )
            return float(self.learning_rate_init)
        total = self.max_iter * steps_per_epoch
        kwargs.setdefault("total_steps", total)
        if lr.startswith("warmup+"):
            kwargs.setdefault("warmup_steps", min(steps_per_epoch, kwargs["total_steps"] - 1))
        if lr.endswith("exponential"):
            kwargs.setdefault("k", math.log(100.0) / total)  # 1% of the rate at the end
        try:
            return get_schedule(lr, float(self.learning_rate_init), **kwargs)
        except TypeError as exc:
            raise ValueError(
                f"schedule_kwargs={self.schedule_kwargs!r} is invalid: {exc}"
            ) from None

    def _lr_rule(self):
        """scikit-learn's per-epoch rate rules apply to every step solver but Adam (as there)."""
        if self.learning_rate in ("invscaling", "adaptive") and self.solver != "adam":
            return self.learning_rate
        return None

    def _make_optimizer(self, steps_per_epoch: int):
        lr = self._learning_rate(steps_per_epoch)
        s = self.solver
        if s == "sgd":
            nesterov = bool(self.nesterovs_momentum) and self.momentum > 0
            return SGD(lr, momentum=float(self.momentum), nesterov=nesterov)
        if s == "momentum":
            return SGD(lr, momentum=float(self.momentum), nesterov=False)
        if s == "adam":
            return Adam(lr, beta1=self.beta_1, beta2=self.beta_2, eps=self.epsilon)
        if s == "radam":
            return RAdam(lr, beta1=self.beta_1, beta2=self.beta_2, eps=self.epsilon)
        if s == "rmsprop":
            return RMSprop(lr, eps=self.epsilon)
        return AdaGrad(lr, eps=self.epsilon)

    # -- input ---------------------------------------------------------------------------------

    def _as_dense(self, X, dtype):
        if sparse.issparse(X):
            X = X.toarray()
        return np.ascontiguousarray(X, dtype=dtype)

    def _validate_X(self, X):
        check_is_fitted(self)
        X = validate_data(
            self, X, accept_sparse=["csr", "csc"], dtype=self.net_.dtype.type, reset=False
        )
        return self._as_dense(X, self.net_.dtype)

    def _check_weights(self, sample_weight, X, y):
        sw = None
        if sample_weight is not None:
            sw = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        sw = self._apply_class_weight(sw, y)
        if sw is not None and np.all(sw == 1.0):
            return None  # exactly the unweighted objective: take the engine's fast path
        return sw

    def _apply_class_weight(self, sw, y):
        return sw

    def _objective(self, Y, sw):
        """(loss, l2, regularizers, targets) for backprop.fit / the engine's _loss_grad."""
        kind = self._loss_kind()
        if sw is None and kind != "poisson":
            loss = {
                "log_loss": CrossEntropy,
                "binary_log_loss": BinaryCrossEntropy,
                "squared_error": HalfSquaredError,
            }[kind]()
            return loss, float(self.alpha), (), Y
        if sw is None:
            return _SampleLoss(kind, weighted=False), float(self.alpha), (), Y
        loss = _SampleLoss(kind, weighted=True)
        regs = (_WeightedL2(self.alpha, self.net_.weight_keys, loss),) if self.alpha else ()
        return loss, 0.0, regs, _with_weights(Y, sw)

    # -- fitting -------------------------------------------------------------------------------

    def _initialize(self, n_features: int, n_outputs: int):
        hidden = self._hidden_sizes()
        acts = self._hidden_activations(len(hidden))
        drops = self._dropouts(len(hidden))
        dt = self._np_dtype()
        rng = self._make_rng()
        sizes = [n_features, *hidden, n_outputs]
        net = _EstimatorNet(
            sizes,
            activation=acts,
            output=self._output_activation(),
            init="glorot_uniform",
            dtype=dt,
            seed=rng,
            dropout=drops,
        )
        # scikit-learn's initialisation: W and b ~ U(-r, r), r = sqrt(factor / (fan_in + fan_out))
        for i in range(1, len(sizes)):
            act = acts[i - 1] if i - 1 < len(acts) else (acts[-1] if acts else self.activation)
            factor = 2.0 if act in ("logistic", "sigmoid") else 6.0
            fan_in, fan_out = sizes[i - 1], sizes[i]
            r = math.sqrt(factor / (fan_in + fan_out))
            net.params[f"W{i}"] = rng.uniform(-r, r, (fan_out, fan_in)).astype(dt)
            net.params[f"b{i}"] = rng.uniform(-r, r, fan_out).astype(dt)
        self.net_ = net
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(sizes)
        self.out_activation_ = "exp" if self._loss_kind() == "poisson" else _SK_OUT[net.output]
        self.loss_curve_ = []
        self.history_ = History()
        self._no_improvement_count = 0
        self._optimizer = None
        self._best_flat = net.flat_params.copy()
        if self.early_stopping:
            self.validation_scores_ = []
            self.validation_loss_curve_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.validation_loss_curve_ = None
            self.best_validation_score_ = None

    def _check_compatible(self, n_outputs: int):
        """warm_start / partial_fit continue the same network: refuse a changed architecture."""
        net = self.net_
        hidden = self._hidden_sizes()
        want = [net.sizes[0], *hidden, n_outputs]
        if want != net.sizes:
            raise ValueError(
                f"the network has layer sizes {net.sizes} but the data and "
                f"hidden_layer_sizes ask for {want}: fit with warm_start=False to start afresh"
            )
        if net.dtype != self._np_dtype():
            raise ValueError(
                f"the network is {net.dtype} but dtype={self.dtype!r}: fit with "
                "warm_start=False to change it"
            )
        # the engine's names ("logistic" is its sigmoid, "linear" its identity)
        acts = [get_activation(a).name for a in self._hidden_activations(len(hidden))]
        if net.activation != acts:
            raise ValueError(
                f"the network has activations {net.activation}: fit with warm_start=False to "
                "change activation"
            )
        out = "exp" if self._loss_kind() == "poisson" else _SK_OUT[self._output_activation()]
        if self.out_activation_ != out:
            raise ValueError(
                f"the network has out_activation_={self.out_activation_!r} but "
                f"loss={self._loss_kind()!r} needs {out!r}: fit with warm_start=False to change "
                "loss"
            )
        drops = self._dropouts(len(hidden))
        if net.dropout != [float(d) for d in drops]:  # a training setting: applied, not refused
            net.set_dropout(drops)

    def _fit(self, X, y, sample_weight=None, incremental=False):
        self._validate_params()
        self._hidden_sizes()
        first_pass = "net_" not in self.__dict__ or (not self.warm_start and not incremental)
        X, Y, y_raw = self._validate_input(X, y, incremental, reset=first_pass)
        sw = self._check_weights(sample_weight, X, y_raw)
        X = self._as_dense(X, self._np_dtype())
        if first_pass:
            self._initialize(X.shape[1], Y.shape[1])
        else:
            self._check_compatible(Y.shape[1])
        Y = Y.astype(self.net_.dtype, copy=False)
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, Y, sw)
        else:
            self._fit_stochastic(X, Y, y_raw, sw, incremental)
        return self

    def _fit_stochastic(self, X, Y, y_raw, sw, incremental):
        net = self.net_
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        self.n_iter_ = 0  # counts the epochs of this call, as in scikit-learn
        if self.early_stopping and self.validation_scores_ is None:  # switched on by warm start
            self.validation_scores_, self.validation_loss_curve_ = [], []
            self.best_validation_score_ = -np.inf
        elif not self.early_stopping and self.best_loss_ is None:
            self.best_loss_ = np.inf
        val = None
        if self.early_stopping:
            stratify = y_raw if (_is_clf(self) and self.n_outputs_ == 1) else None
            seed = int(net.rng.integers(np.iinfo(np.int32).max))
            arrays = [X, Y, y_raw] + ([sw] if sw is not None else [])
            parts = train_test_split(
                *arrays, random_state=seed, test_size=self.validation_fraction, stratify=stratify
            )
            X, Xv, Y, Yv, y_raw, yv = parts[:6]
            sw, swv = (parts[6], parts[7]) if sw is not None else (None, None)
            if Xv.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' or the "
                    "size of your dataset."
                )
            val = (Xv, Yv, yv, swv)
        n = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. It is going to "
                    "be clipped",
                    stacklevel=4,
                )
            batch_size = int(np.clip(self.batch_size, 1, n))
        if not incremental or self._optimizer is None:
            self._optimizer = self._make_optimizer(-(-n // batch_size))
        loss, l2, regs, Yt = self._objective(Y, sw)
        if val is not None and sw is not None:
            # the validation loss is weighted like the training loss: weights in Y's last column
            Xv, Yv, yv, swv = val
            val = (Xv, _with_weights(Yv, swv), yv, swv)
        rules = _SklearnRules(self, n, val, self._lr_rule())
        try:
            hist = _fit_net(
                net,
                X,
                Yt,
                loss=loss,
                optimizer=self._optimizer,
                epochs=1 if incremental else self.max_iter,
                batch_size=batch_size,
                shuffle=self.shuffle,
                l2=l2,
                regularizers=regs,
                callbacks=[rules],
            )
        except TrainingDiverged as exc:
            self._merge_history(exc.history)
            raise ValueError(
                f"Solver produced non-finite parameter weights ({exc}). The input data may "
                "contain large values and need to be preprocessed."
            ) from None
        if hist.interrupted:
            warnings.warn("Training interrupted by user.", stacklevel=4)
        self._merge_history(hist)
        if self.early_stopping:
            np.copyto(net.flat_params, self._best_flat)
        if not incremental and not rules.converged and self.n_iter_ == self.max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=4,
            )

    def _merge_history(self, hist: History):
        h = self.history_
        for k in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_time"):
            getattr(h, k).extend(getattr(hist, k))
        h.n_steps += hist.n_steps
        h.stop_reason = hist.stop_reason
        h.interrupted = hist.interrupted
        if self.validation_loss_curve_ is not None:
            self.validation_loss_curve_.extend(hist.val_loss)

    def _fit_lbfgs(self, X, Y, sw):
        net = self.net_
        if any(net.dropout):
            raise ValueError(
                "dropout needs a stochastic solver: solver='lbfgs' minimises one fixed "
                "full-batch objective"
            )
        loss, l2, regs, Yt = self._objective(Y, sw)
        theta = net.flat_params

        def fun(x):
            theta[...] = x
            value = net._loss_grad(X, Yt, loss, l2, regs, True)
            return value, net.flat_grads.astype(np.float64)

        curve = []

        def callback(intermediate_result):
            curve.append(float(intermediate_result.fun))
            if self.verbose:
                print(f"Iteration {len(curve)}, loss = {curve[-1]:.8f}")

        res = minimize_lbfgs(
            fun,
            theta,
            max_iter=self.max_iter,
            max_fun=self.max_fun,
            tol=max(float(self.tol), 1e-300),
            callback=callback,
        )
        theta[...] = res.x
        if not np.isfinite(theta).all():
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain "
                "large values and need to be preprocessed."
            )
        self.n_iter_ = min(int(res.nit), self.max_iter)
        self.loss_ = float(res.fun)
        self.loss_curve_.extend(curve)
        self.history_.loss.extend(curve)
        self.history_.n_steps += int(res.nit)
        self.history_.stop_reason = f"L-BFGS: {res.message}"
        if curve:
            self.best_loss_ = min(self.best_loss_ or np.inf, min(curve))
        if res.status != 0:
            warnings.warn(
                f"lbfgs failed to converge after {self.n_iter_} iteration(s) "
                f"(status={res.status}): {res.message}. Increase the number of iterations "
                f"(max_iter={self.max_iter}) or max_fun={self.max_fun}, or scale the data.",
                ConvergenceWarning,
                stacklevel=4,
            )

    # -- public API ----------------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Train the network on ``(X, y)`` (from scratch unless ``warm_start=True``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Sparse input is made dense (in ``dtype``).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (a label-indicator matrix for multilabel) or target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights ``s``: the batch loss is ``sum_i s_i l_i / sum_i s_i``.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _forward(self, X, logits=False):
        X = self._validate_X(X)
        net = self.net_
        return net._forward_unchecked(X, False, stop=-1 if logits else None)

    # -- model files ---------------------------------------------------------------------------

    def _params_json(self) -> dict:
        out = {}
        for k, v in self.get_params().items():
            if k == "random_state":
                v = v if isinstance(v, numbers.Integral) else None
            elif k == "learning_rate" and isinstance(v, Schedule):
                v = {"schedule": v.to_config()}
            elif k == "class_weight" and isinstance(v, dict):
                v = {"pairs": [[_jsonable(c), float(w)] for c, w in v.items()]}
            elif k == "dtype":
                v = np.dtype(v).name
            elif k == "n_iter_no_change" and v == np.inf:
                v = "inf"
            elif isinstance(v, tuple):
                v = list(v)
            out[k] = _jsonable(v)
        return out

    @staticmethod
    def _params_from_json(d: dict) -> dict:
        out = dict(d)
        lr = out.get("learning_rate")
        if isinstance(lr, dict):
            out["learning_rate"] = _schedule_from_config(lr["schedule"])
        cw = out.get("class_weight")
        if isinstance(cw, dict):
            out["class_weight"] = {_label(c): w for c, w in cw["pairs"]}
        if out.get("n_iter_no_change") == "inf":
            out["n_iter_no_change"] = np.inf
        if isinstance(out.get("hidden_layer_sizes"), list):
            out["hidden_layer_sizes"] = tuple(out["hidden_layer_sizes"])
        return out

    _FITTED_JSON = (
        "n_iter_",
        "t_",
        "loss_",
        "loss_curve_",
        "best_loss_",
        "validation_scores_",
        "validation_loss_curve_",
        "best_validation_score_",
        "n_features_in_",
        "n_outputs_",
        "n_layers_",
        "out_activation_",
    )

    def save(self, path) -> str:
        """Write the fitted model to a safetensors file (no pickle; atomic).

        The weights go in as the engine's tensors ``W1, b1, ...`` (``(n_out, n_in)``); the
        estimator's parameters and fitted attributes as JSON (``extra["estimator"]``), so
        :meth:`load` gives back an estimator that predicts identically and can go on training
        (``warm_start``/``partial_fit``; the optimizer's moments start afresh).

        Parameters
        ----------
        path : str or os.PathLike

        Returns
        -------
        str
            ``path``.

        Examples
        --------
        >>> clf = MLPClassifier(max_iter=50).fit(X, y)  # doctest: +SKIP
        >>> clf.save("clf.safetensors")  # doctest: +SKIP
        >>> MLPClassifier.load("clf.safetensors").predict(X)  # doctest: +SKIP
        """
        check_is_fitted(self)
        fitted = {}
        for k in self._FITTED_JSON:
            if k in self.__dict__:
                v = self.__dict__[k]
                if isinstance(v, float) and not math.isfinite(v):
                    v = str(v)
                elif isinstance(v, list):
                    v = [float(x) for x in v]
                fitted[k] = _jsonable(v)
        if "feature_names_in_" in self.__dict__:
            fitted["feature_names_in_"] = [str(f) for f in self.feature_names_in_]
        est = {"class": type(self).__name__, "params": self._params_json(), "fitted": fitted}
        classes = None
        if _is_clf(self):
            est["y_type"] = self._label_binarizer.y_type_
            est["classes_dtype"] = self.classes_.dtype.str  # JSON keeps values, not types
            classes = [_jsonable(c) for c in self.classes_]
        return _io.save(
            self.net_,
            path,
            classes=classes,
            training={"estimator": type(self).__name__, "solver": self.solver},
            history=self.history_,
            extra={"estimator": est},
        )

    @classmethod
    def load(cls, path):
        """Read an estimator written by :meth:`save`.

        Parameters
        ----------
        path : str or os.PathLike

        Returns
        -------
        MLPClassifier or MLPRegressor
            Fitted, with the saved parameters; ``cls`` must match the saved class.

        Raises
        ------
        backprop.io.ModelFileError
            A corrupt file, or one that holds no estimator (e.g. written by ``backprop
            train``) or an estimator of the other class.
        """
        net = _io.load(path)
        meta = net.metadata
        est = (meta.get("extra") or {}).get("estimator")
        if not isinstance(est, dict) or "class" not in est:
            raise _io.ModelFileError(f"{path}: the model file holds no scikit-learn estimator")
        if est["class"] != cls.__name__:
            raise _io.ModelFileError(
                f"{path}: the model file holds an {est['class']}: expected {cls.__name__}"
            )
        self = cls(**cls._params_from_json(est["params"]))
        cfg = net.to_config()
        new = _EstimatorNet(
            cfg["sizes"],
            activation=cfg["activation"],
            output=cfg["output"],
            init="glorot_uniform",
            dtype=cfg["dtype"],
            seed=self._make_rng(),
            dropout=cfg["dropout"],
        )
        np.copyto(new.flat_params, net.flat_params)
        self.net_ = new
        for k, v in est["fitted"].items():
            if isinstance(v, str) and v in ("inf", "-inf", "nan"):
                v = float(v)
            if k == "feature_names_in_":
                v = np.asarray(v, dtype=object)
            setattr(self, k, v)
        self.history_ = History.from_dict(meta.get("history") or {})
        self.validation_loss_curve_ = est["fitted"].get("validation_loss_curve_")
        self._no_improvement_count = 0
        self._optimizer = None
        self._best_flat = new.flat_params.copy()
        if _is_clf(self):
            labels = np.asarray([_label(c) for c in meta["classes"]])
            dt = None  # uint8 labels stay uint8 (a file without or with a bad entry: as read)
            if isinstance(est.get("classes_dtype"), str):
                try:
                    dt = np.dtype(est["classes_dtype"])
                except (TypeError, ValueError):
                    dt = None
            if dt is not None and dt.kind in "biuf" and labels.dtype.kind in "biuf":
                labels = labels.astype(dt)
            self._set_classes(labels, est["y_type"])
        return self

    # -- conversion from and to scikit-learn ---------------------------------------------------

    @classmethod
    def from_sklearn(cls, model, dtype=None):
        """An estimator of this class holding the weights of a fitted scikit-learn MLP.

        Parameters
        ----------
        model : sklearn.neural_network.MLPClassifier or MLPRegressor
            Fitted. ``coefs_[i]`` ``(n_in, n_out)`` become the engine's ``W = coefs_[i].T``.
        dtype : "float32" or "float64", optional
            Defaults to the dtype of ``model.coefs_``.

        Returns
        -------
        MLPClassifier or MLPRegressor
            Fitted; predicts what ``model`` predicts (up to the rounding of ``dtype``).

        Examples
        --------
        >>> from sklearn.neural_network import MLPClassifier as SkMLP  # doctest: +SKIP
        >>> clf = MLPClassifier.from_sklearn(SkMLP(max_iter=300).fit(X, y))  # doctest: +SKIP
        """
        from sklearn.neural_network import MLPClassifier as SkC
        from sklearn.neural_network import MLPRegressor as SkR

        want = SkC if cls is MLPClassifier else SkR
        if not isinstance(model, want):
            raise TypeError(
                f"model is a {type(model).__name__}: expected a fitted "
                f"sklearn.neural_network.{want.__name__}"
            )
        check_is_fitted(model)
        params = {k: v for k, v in model.get_params().items() if k in cls().get_params()}
        dt = np.dtype(dtype if dtype is not None else model.coefs_[0].dtype)
        params["dtype"] = dt.name
        self = cls(**params)
        hidden = self._hidden_sizes()
        acts = self._hidden_activations(len(hidden))
        out = {"softmax": "softmax", "logistic": "sigmoid"}.get(model.out_activation_, "identity")
        sizes = [model.coefs_[0].shape[0], *hidden, model.n_outputs_]
        net = _EstimatorNet(
            sizes,
            activation=acts,
            output=out,
            init="glorot_uniform",
            dtype=dt,
            seed=self._make_rng(),
        )
        for i, (W, b) in enumerate(zip(model.coefs_, model.intercepts_, strict=True), start=1):
            net.params[f"W{i}"] = np.asarray(W).T
            net.params[f"b{i}"] = b
        self.net_ = net
        self.n_outputs_ = model.n_outputs_
        self.n_layers_ = model.n_layers_
        self.out_activation_ = model.out_activation_
        self.n_features_in_ = model.n_features_in_
        if hasattr(model, "feature_names_in_"):
            self.feature_names_in_ = model.feature_names_in_
        self.n_iter_ = model.n_iter_
        self.t_ = getattr(model, "t_", 0)
        # A regressor's squared error is summed over the outputs here and averaged by
        # scikit-learn: its numbers, in this estimator's units, so that a warm start compares
        # like with like (it stopped at once, every epoch looking no better than the copy).
        scale = float(model.n_outputs_) if not _is_clf(self) else 1.0
        self.loss_ = _scaled(getattr(model, "loss_", None), scale)
        self.loss_curve_ = [_scaled(v, scale) for v in getattr(model, "loss_curve_", [])]
        self.best_loss_ = _scaled(getattr(model, "best_loss_", None), scale)
        self.validation_scores_ = _copied(getattr(model, "validation_scores_", None))
        self.best_validation_score_ = getattr(model, "best_validation_score_", None)
        self.validation_loss_curve_ = [] if self.validation_scores_ is not None else None
        self.history_ = History(loss=list(self.loss_curve_))
        self._no_improvement_count = 0
        self._optimizer = None
        self._best_flat = net.flat_params.copy()
        if cls is MLPClassifier:
            y_type = (
                "multiclass"
                if model.out_activation_ == "softmax"
                else ("binary" if model.n_outputs_ == 1 else "multilabel-indicator")
            )
            self._set_classes(np.asarray(model.classes_), y_type)
        return self

    def to_sklearn(self):
        """The fitted model as a scikit-learn MLP (``coefs_`` transposed to ``(n_in, n_out)``).

        Parameters that scikit-learn does not have (``dropout``, ``dtype``, ...) are dropped;
        the added solvers and schedules become scikit-learn's defaults (``"adam"``,
        ``"constant"``): they only matter for further training.

        Returns
        -------
        sklearn.neural_network.MLPClassifier or MLPRegressor

        Raises
        ------
        ValueError
            The network cannot be expressed in scikit-learn: several different hidden
            activations, or one scikit-learn lacks (``leaky_relu``).
        """
        from sklearn.neural_network import MLPClassifier as SkC
        from sklearn.neural_network import MLPRegressor as SkR

        check_is_fitted(self)
        net = self.net_
        names = {"sigmoid": "logistic", "linear": "identity"}
        acts = {names.get(a, a) for a in net.activation}
        if len(acts) > 1 or not acts <= set(_SK_ACTIVATIONS):
            raise ValueError(
                f"activation={net.activation!r} cannot be expressed in scikit-learn: it takes "
                f"one hidden activation among {', '.join(_SK_ACTIVATIONS)}"
            )
        target = SkC if _is_clf(self) else SkR
        sk_names = set(target().get_params())
        params = {k: v for k, v in self.get_params().items() if k in sk_names}
        if acts:
            params["activation"] = acts.pop()
        elif params["activation"] not in _SK_ACTIVATIONS:
            params["activation"] = names.get(params["activation"], "relu")
        if params["solver"] not in _SK_SOLVERS:
            params["solver"] = "adam"
        if params["learning_rate"] not in _SK_LR:
            params["learning_rate"] = "constant"
        if not isinstance(params.get("random_state"), (numbers.Integral, type(None))):
            params["random_state"] = None
        params["momentum"] = float(params["momentum"])
        model = target(**params)
        model.coefs_ = [c.copy() for c in self.coefs_]
        model.intercepts_ = [b.copy() for b in self.intercepts_]
        model.n_outputs_ = self.n_outputs_
        model.n_layers_ = self.n_layers_
        model.out_activation_ = self.out_activation_
        model.n_features_in_ = self.n_features_in_
        if "feature_names_in_" in self.__dict__:
            model.feature_names_in_ = self.feature_names_in_
        model.n_iter_ = self.n_iter_
        model.t_ = self.t_
        model.validation_scores_ = _copied(self.__dict__.get("validation_scores_"))
        model.best_validation_score_ = self.__dict__.get("best_validation_score_")
        # back to scikit-learn's units: its squared error is averaged over the outputs
        scale = 1.0 if _is_clf(self) else 1.0 / float(self.n_outputs_)
        model.loss_ = _scaled(self.__dict__.get("loss_"), scale)
        model.best_loss_ = _scaled(self.__dict__.get("best_loss_"), scale)
        model.loss_curve_ = [_scaled(v, scale) for v in self.loss_curve_]
        # The state scikit-learn's _initialize sets on a first fit, which a warm start or
        # partial_fit of the converted model reads (and does not set again).
        model._no_improvement_count = 0
        model._best_coefs = [c.copy() for c in model.coefs_]
        model._best_intercepts = [b.copy() for b in model.intercepts_]
        if _is_clf(self):
            model.classes_ = self.classes_
            model._label_binarizer = copy.deepcopy(self._label_binarizer)
        return model

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class _LayerList(list):
    """What ``coefs_`` / ``intercepts_`` return: a list of views of the network's arrays where
    assigning an item (``clf.coefs_[0] = W``, as with scikit-learn's list) copies ``W`` into the
    network (shape checked). A copy or a pickle of it is a plain list."""

    def __init__(self, arrays, write):
        super().__init__(arrays)
        self._write = write  # write(i, array): copy array into layer i

    def __setitem__(self, index, value):
        n = len(self)
        if isinstance(index, slice):
            indices = range(n)[index]
            values = list(value)
            if len(values) != len(indices):
                raise ValueError(
                    f"{len(values)} arrays for {len(indices)} layers: expected one each"
                )
        else:
            i = operator.index(index)
            if not -n <= i < n:
                raise IndexError(f"layer index {index} is out of range: expected -{n} to {n - 1}")
            indices, values = [i % n], [value]
        for i, v in zip(indices, values, strict=True):
            self._write(i, v)  # the views in the list see the new values

    def __reduce__(self):
        return (list, (list(self),))


def _with_weights(Y, sw):
    """``[Y | sw]``: the targets with the sample weights as one more column (for _SampleLoss)."""
    Yw = np.empty((Y.shape[0], Y.shape[1] + 1), dtype=Y.dtype)
    Yw[:, :-1] = Y
    Yw[:, -1] = sw
    return Yw


def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def _label(v):
    return tuple(v) if isinstance(v, list) else v


# --------------------------------------------------------------------------------------------
# The classifier
# --------------------------------------------------------------------------------------------


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multilayer perceptron classifier, a drop-in replacement for scikit-learn's.

    Trains with error backpropagation on the engine of :mod:`backprop`: log-loss with a softmax
    output for several classes, binary log-loss with a logistic output for two classes and for
    multilabel targets (a label-indicator matrix), plus ``alpha / (2 n) sum ||W||^2``.

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(100,)
        Width of each hidden layer.
    activation : str or list of str, default="relu"
        Hidden activation: ``"identity"``, ``"logistic"``, ``"tanh"``, ``"relu"`` (as
        scikit-learn), or ``"leaky_relu"``; a list gives one per hidden layer.
    solver : str, default="adam"
        ``"adam"``, ``"sgd"`` (with ``momentum``, Nesterov by default), ``"lbfgs"`` (full batch,
        SciPy), or ``"momentum"`` (classical momentum), ``"rmsprop"``, ``"adagrad"``,
        ``"radam"``.
    alpha : float, default=1e-4
        L2 strength: ``alpha / (2 n) sum_l ||W_l||^2`` with ``n`` the batch size.
    batch_size : int or "auto", default="auto"
        ``"auto"`` is ``min(200, n_samples)``.
    learning_rate : str or Schedule, default="constant"
        ``"constant"``; ``"invscaling"``: ``learning_rate_init / (t + 1)^power_t`` after each
        epoch (``t`` samples seen); ``"adaptive"``: divide by 5 when the loss stalls (both for
        every solver but ``"adam"``, as in scikit-learn). Per-update schedules for every solver:
        ``"cosine"``, ``"exponential"``, ``"linear"``, ``"step_decay"``, ``"inverse_sqrt"``,
        ``"warmup+<one of these or constant>"`` (see ``schedule_kwargs``), or a
        :class:`backprop.schedules.Schedule`.
    learning_rate_init : float, default=0.001
    power_t : float, default=0.5
    max_iter : int, default=200
        Epochs (stochastic solvers) or iterations (``"lbfgs"``).
    shuffle : bool, default=True
    random_state : int, RandomState, Generator or None, default=None
        Seeds the one Generator used for initialisation, shuffling, dropout and the validation
        split.
    tol : float, default=1e-4
    verbose : bool, default=False
    warm_start : bool, default=False
    momentum : float in [0, 1), default=0.9
    nesterovs_momentum : bool, default=True
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` (stratified), stop on its accuracy, restore the best
        weights.
    validation_fraction : float, default=0.1
    beta_1, beta_2, epsilon : float, default=0.9, 0.999, 1e-8
        Adam's (and RAdam's) decays and epsilon; ``epsilon`` also for RMSprop and AdaGrad.
    n_iter_no_change : int, default=10
    max_fun : int, default=15000
        Most loss evaluations for ``"lbfgs"``.
    class_weight : dict, "balanced" or None, default=None
        Multiplies each sample's weight by the weight of its class (``"balanced"``:
        ``n_samples / (n_classes * count(class))``).
    dropout : float or list of float, default=0.0
        Inverted-dropout rate after each hidden layer during training.
    dtype : "float32" or "float64", default="float32"
        Type of the weights and of every computation.
    schedule_kwargs : dict, optional
        Arguments of a named schedule (:func:`backprop.schedules.get_schedule`):
        ``total_steps`` defaults to ``max_iter`` epochs of updates, ``warmup_steps`` to one
        epoch, ``k`` of ``"exponential"`` to a decay to 1 % of the rate over the run.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coefs_ : list of ndarray, ``coefs_[i]`` of shape (n_in, n_out)
        Transposed views of the engine's ``W`` (shape ``(n_out, n_in)``).
    intercepts_ : list of ndarray
    loss_ : float
    loss_curve_ : list of float
        Mean batch loss of each epoch (L-BFGS: of each iteration).
    best_loss_ : float or None
    validation_scores_ : list of float or None
    validation_loss_curve_ : list of float or None
        Log-loss on the validation split per epoch (``early_stopping=True``).
    best_validation_score_ : float or None
    n_iter_ : int
    t_ : int
        Training samples seen.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
    n_layers_ : int
    n_outputs_ : int
    out_activation_ : str
        ``"softmax"`` or ``"logistic"``.
    net_ : backprop.layers.MLP
        The trained network.
    history_ : backprop.callbacks.History
        Loss, accuracy, validation loss and accuracy, learning rate and time per epoch.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier((20,), max_iter=2000, random_state=0).fit(X / 8, y)
    >>> clf.coefs_[0].shape  # (n_in, n_out), as in scikit-learn
    (4, 20)
    >>> clf.net_.params["W1"].shape  # the engine keeps the notes' (n_out, n_in)
    (20, 4)
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        class_weight=None,
        dropout=0.0,
        dtype="float32",
        schedule_kwargs=None,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            dropout=dropout,
            dtype=dtype,
            schedule_kwargs=schedule_kwargs,
        )
        self.class_weight = class_weight

    def _loss_kind(self) -> str:
        return "log_loss" if self._label_binarizer.y_type_ == "multiclass" else "binary_log_loss"

    def _output_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "sigmoid"

    def _set_classes(self, classes, y_type):
        lb = LabelBinarizer()
        if y_type == "multilabel-indicator":
            lb.fit(np.eye(max(len(classes), 2), dtype=int)[:, : len(classes)])
        else:
            lb.fit(classes)
        self._label_binarizer = lb
        self.classes_ = lb.classes_

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            dtype=self._np_dtype().type,
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if "classes_" not in self.__dict__ or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {classes}."
                )
        Y = self._label_binarizer.transform(y).astype(self._np_dtype())
        return X, Y, y

    def _apply_class_weight(self, sw, y):
        cw = self.class_weight
        if cw is None:
            return sw
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            raise ValueError("class_weight is not supported for multilabel targets")
        classes = self.classes_
        if isinstance(cw, str):  # "balanced"
            present = np.unique(y)
            weights = np.ones(len(classes))
            bal = compute_class_weight("balanced", classes=present, y=y)
            weights[np.searchsorted(classes, present)] = bal
        else:
            unknown = [c for c in cw if c not in set(classes.tolist())]
            if unknown:
                raise ValueError(
                    f"class_weight has labels {unknown} that are not classes: expected some of "
                    f"{classes.tolist()}"
                )
            weights = np.array([float(cw.get(c, 1.0)) for c in classes.tolist()])
            for c, w in zip(classes.tolist(), weights, strict=True):
                if not (math.isfinite(w) and w >= 0):
                    raise ValueError(
                        f"class_weight[{c!r}]={w} is invalid: expected a finite weight >= 0"
                    )
        per_sample = weights[np.searchsorted(classes, y)]
        sw = per_sample if sw is None else sw * per_sample
        if not np.any(sw):
            raise ValueError(
                f"class_weight={cw!r} gives every sample the weight zero: expected at least "
                "one non-zero weight"
            )
        return sw

    def _score_outputs(self, A, y, sample_weight):
        return accuracy_score(y, self._labels(A), sample_weight=sample_weight)

    def _labels(self, A):
        if self.n_outputs_ == 1:
            A = A.ravel()
        return self._label_binarizer.inverse_transform(A)

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes) for multilabel
        """
        return self._labels(self._forward(X))

    def predict_proba(self, X):
        """Probability of each class, in the order of ``classes_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Softmax outputs; for two classes ``[1 - p, p]`` computed as
            ``[sigmoid(-z), sigmoid(z)]`` (so ``1 - p`` keeps its digits where ``p`` rounds to
            1); for multilabel the sigmoid of each label, kept strictly inside (0, 1). In the
            model's ``dtype``.
        """
        check_is_fitted(self)
        if self.n_outputs_ == 1:
            z = self._forward(X, logits=True)[:, 0]
            return np.stack([expit(-z), expit(z)], axis=1)
        P = self._forward(X)
        if self.out_activation_ == "logistic":  # multilabel: a probability of 0 or 1 is a lie
            dt = P.dtype
            np.clip(P, np.finfo(dt).tiny, np.nextafter(dt.type(1), dt.type(0)), out=P)
        return P

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba` (``-inf`` where a probability underflows to 0,
        as scikit-learn).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        P = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(P, out=P)

    @available_if(_check_solver_is_stochastic)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch of training on ``(X, y)``, continuing from the current weights.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
        sample_weight : array-like of shape (n_samples,), default=None
        classes : array of shape (n_classes,), default=None
            All the classes; required on the first call (``np.unique(y_all)``).

        Returns
        -------
        self
        """
        first = "classes_" not in self.__dict__
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if isinstance(self.class_weight, str) and self.class_weight == "balanced":
            raise ValueError(
                "class_weight='balanced' is not supported for partial_fit: give a dict"
            )
        if classes is not None:
            wanted = unique_labels(classes)
            if not first and not np.array_equal(self.classes_, wanted):
                raise ValueError(
                    f"`classes={classes!r}` is not the same as on last call to partial_fit, "
                    f"was: {self.classes_!r}"
                )
            if first:
                self._label_binarizer = LabelBinarizer()
                if type_of_target(y).startswith("multilabel"):
                    self._label_binarizer.fit(y)
                else:
                    self._label_binarizer.fit(classes)
                self.classes_ = self._label_binarizer.classes_
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


# --------------------------------------------------------------------------------------------
# The regressor
# --------------------------------------------------------------------------------------------


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multilayer perceptron regressor, a drop-in replacement for scikit-learn's.

    Minimises the half squared error ``1/2 sum_k (a_k - y_k)^2`` (mean over samples) with an
    identity output, or the half Poisson deviance with a log link (``loss="poisson"``), plus
    ``alpha / (2 n) sum ||W||^2``.

    Parameters
    ----------
    loss : {"squared_error", "poisson"}, default="squared_error"
    hidden_layer_sizes, activation, solver, ... :
        As :class:`MLPClassifier` (there is no ``class_weight``); ``early_stopping`` scores R^2.

    Attributes
    ----------
    As :class:`MLPClassifier` without ``classes_``; ``out_activation_`` is ``"identity"``
    (``"exp"`` for Poisson). ``loss_curve_`` is ``1/2`` the mean over samples of the squared
    error summed over the outputs: the function whose gradient is followed (scikit-learn reports
    the mean over outputs instead; the same for one output).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.linspace(0, 1, 50).reshape(-1, 1)
    >>> reg = MLPRegressor(hidden_layer_sizes=(20,), activation="tanh", solver="lbfgs")
    >>> reg.fit(X, np.sin(3 * X).ravel()).predict(X[:2]).shape
    (2,)
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dropout=0.0,
        dtype="float32",
        schedule_kwargs=None,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            dropout=dropout,
            dtype=dtype,
            schedule_kwargs=schedule_kwargs,
        )
        self.loss = loss

    def _loss_kind(self) -> str:
        return self.loss

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = self.loss == "poisson"
        return tags

    def _output_activation(self) -> str:
        return "identity"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=True,
            dtype=self._np_dtype().type,
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError(
                f"y has the negative value {float(np.min(y))!r}: loss='poisson' expects y >= 0"
            )
        Y = np.asarray(y, dtype=self._np_dtype())
        if Y.ndim == 1:
            Y = Y.reshape(-1, 1)
        return X, Y, y

    def _score_outputs(self, A, y, sample_weight):
        pred = self._outputs(A)
        return r2_score(y, pred, sample_weight=sample_weight)

    def _outputs(self, A):
        if self.out_activation_ == "exp":
            A = np.exp(A)
        return A.ravel() if A.shape[1] == 1 else A

    def predict(self, X):
        """Predicted values.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
            In the model's ``dtype``.
        """
        return self._outputs(self._forward(X))

    @available_if(_check_solver_is_stochastic)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch of training on ``(X, y)``, continuing from the current weights.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)


def load_estimator(path):
    """Load an :class:`MLPClassifier` or :class:`MLPRegressor` saved with ``save``, whichever
    the file holds.

    Examples
    --------
    >>> est = load_estimator("model.safetensors")  # doctest: +SKIP
    """
    meta = _io.read_metadata(path)
    est = (meta.get("extra") or {}).get("estimator") or {}
    cls = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}.get(est.get("class"))
    if cls is None:
        raise _io.ModelFileError(f"{path}: the model file holds no scikit-learn estimator")
    return cls.load(path)
