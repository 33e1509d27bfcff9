"""The training loop: epochs of shuffled mini-batches, stopping rules, a non-finite guard.

One step, in the order of the notes (seed 002, "training a network by gradient descent"):

1. take the next mini-batch ``B`` of a fresh permutation of the data (one contiguous shuffled
   copy per epoch, then plain slices);
2. forward pass and loss ``l(theta; B)``;
3. backward pass: the delta recursion fills the gradient;
4. the optimizer updates the parameters with the scheduled learning rate.

``batch_size=n`` is batch gradient descent, ``batch_size=1`` stochastic gradient descent, anything
between is mini-batch gradient descent. The notes' stopping rules are all available: a maximum
number of epochs or of updates, the loss below a threshold, the change of the loss below
``tol``; and early stopping on validation data.
"""

from __future__ import annotations

import math
import numbers
import sys
import time
from collections.abc import Sequence

import numpy as np

from . import _kernels
from ._validation import as_rng, check_nonneg_float, check_positive_int
from .callbacks import Callback, EarlyStopping, History, TrainingDiverged
from .losses import get_loss
from .optimizers import FULL_BATCH, get_optimizer, minimize_lbfgs

__all__ = ["fit", "Trainer", "evaluate"]


def _accuracy(A: np.ndarray, Y: np.ndarray, binary: bool = False) -> float:
    """The share of rows predicted right: one output or several sigmoids (``binary``), every
    output on the side of 0.5 of its target; a softmax, the largest output at the class."""
    if A.shape[1] == 1 or binary:
        return float(np.mean(((A >= 0.5) == (Y >= 0.5)).all(axis=1)))
    return float(np.mean(A.argmax(axis=1) == Y.argmax(axis=1)))


def evaluate(net, X, Y, loss=None, batch_size: int = 4096) -> dict:
    """Loss (and accuracy for classification losses) of ``net`` on ``(X, Y)``, dropout off."""
    loss = get_loss(loss if loss is not None else net.default_loss())
    batch_size = check_positive_int(batch_size, "batch_size")
    net._check_loss(loss)
    Xc = net._check_X(X)
    Yc = net.check_targets(Y, len(Xc), loss)
    return _evaluate_checked(net, Xc, Yc, loss, batch_size)


def _evaluate_checked(net, Xc, Yc, loss, batch_size=4096):
    total = 0.0
    correct = 0.0
    n = len(Xc)
    # With the output activation that the loss fuses with (softmax + cross-entropy, sigmoid +
    # binary cross-entropy) the loss is computed from the logits, exactly as training computes
    # it: the same number on the same data, with no clipping of log(a) at a tiny a.
    fused = net._fuses_output(loss)
    last = net.layers[-1]
    binary = loss.name == "binary_cross_entropy"
    for s in range(0, n, batch_size):
        Yb = Yc[s : s + batch_size]
        if fused:
            Z = net._forward_unchecked(Xc[s : s + batch_size], False, stop=-1)
            A = last.forward(Z, False)
            value = loss.fused(Z, A, Yb)[0]
        else:
            A = net._forward_unchecked(Xc[s : s + batch_size], False)
            value = loss.value(A, Yb)
        m = len(A)
        total += value * m
        if loss.classification:
            correct += _accuracy(A, Yb, binary) * m
    out = {"loss": total / n}
    if loss.classification:
        out["accuracy"] = correct / n
    return out


class Trainer:
    """Holds the state of one training run; :func:`fit` is the usual way to make and run one."""

    def __init__(self, net, optimizer, loss, history, callbacks):
        self.net = net
        self.optimizer = optimizer
        self.loss = loss
        self.history = history
        self.callbacks = list(callbacks)
        self.stop_training = False
        self.epoch = 0


def fit(
    net,
    X,
    Y,
    *,
    loss=None,
    optimizer="adam",
    lr: float | None = None,
    schedule=None,
    epochs: int = 10,
    batch_size: int = 32,
    shuffle: bool = True,
    l2: float = 0.0,
    regularizers: Sequence = (),
    validation_data=None,
    early_stopping: bool = False,
    patience: int = 10,
    min_delta: float = 0.0,
    monitor: str | None = None,
    max_iter: int | None = None,
    loss_threshold: float | None = None,
    tol: float | None = None,
    n_iter_no_change: int = 1,
    callbacks: Sequence[Callback] = (),
    seed=None,
) -> History:
    """Train ``net`` on ``(X, Y)`` by mini-batch gradient descent and return a :class:`History`.

    Parameters
    ----------
    net : Sequential or MLP
        Trained in place.
    X : array (n_samples, n_in)
    Y : array (n_samples, n_out) or (n_samples,)
        Class labels are accepted for cross-entropy.
    loss : str or Loss, optional
        Defaults to the output's natural loss.
    optimizer : str or Optimizer, default "adam"
        ``sgd``, ``momentum``, ``nesterov``, ``adagrad``, ``rmsprop``, ``adam``, ``radam``, or
        ``lbfgs`` (full batch, through SciPy).
    lr : float, optional
        Learning rate (the optimizer's default when omitted).
    schedule : Schedule, optional
        A function ``step -> learning rate`` from :mod:`backprop.schedules`; replaces ``lr``.
    epochs : int, default 10
        Maximum number of passes over the data (for ``lbfgs``: maximum iterations).
    batch_size : int, default 32
        1 gives stochastic GD, ``len(X)`` batch GD. Clipped to ``len(X)``.
    shuffle : bool, default True
        Reshuffle before every epoch.
    l2 : float
        ``l2 / (2 n) sum W^2`` added to the loss (``n`` the batch size).
    regularizers : sequence
        Extra penalties, e.g. :class:`backprop.losses.SynapticPlasticity`.
    validation_data : (X_val, Y_val), optional
        Evaluated at the end of every epoch.
    early_stopping : bool
        Stop when ``monitor`` (``val_loss`` by default, else ``loss``) has not improved by
        ``min_delta`` for ``patience`` epochs, and restore the best weights.
    max_iter : int, optional
        Stop after this many updates.
    loss_threshold : float, optional
        Stop when the epoch loss falls below it.
    tol : float, optional
        Stop when the epoch loss changes by less than ``tol`` for ``n_iter_no_change`` epochs
        in a row (the notes' ``|l - l0| < epsilon``). With ``optimizer="lbfgs"`` it is SciPy's
        gradient tolerance instead (stop when the largest gradient component is ``<= tol``;
        default 1e-9), as scikit-learn's ``solver="lbfgs"`` uses it.
    callbacks : sequence of Callback
    seed : int or Generator, optional
        Generator for shuffling; defaults to the network's own Generator (so one seed fixes
        everything).

    Returns
    -------
    History

    Raises
    ------
    TrainingDiverged
        When the loss or the weights become non-finite; the weights of the end of the previous
        epoch are restored (with early stopping: those of its best epoch), and the message
        says which.

    Examples
    --------
    >>> import numpy as np
    >>> from backprop import MLP
    >>> X, y = np.array([[0, 0], [0, 1], [1, 0], [1, 1]]), np.array([0, 1, 1, 0])  # XOR
    >>> net = MLP([2, 2, 1], activation="tanh", output="sigmoid", seed=1)
    >>> hist = fit(net, X, y, optimizer="adam", lr=0.05, epochs=500, batch_size=4)
    >>> bool(hist.loss[-1] < 0.01)
    True
    """
    if not hasattr(net, "_check_loss"):
        raise TypeError(
            f"net is a {type(net).__name__}: expected a backprop network (MLP, Sequential)"
        )
    loss = get_loss(loss if loss is not None else net.default_loss())
    net._check_loss(loss)
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    l2 = check_nonneg_float(l2, "l2")
    if max_iter is not None:
        max_iter = check_positive_int(max_iter, "max_iter")
    if tol is not None:
        tol = check_nonneg_float(tol, "tol")
    n_iter_no_change = check_positive_int(n_iter_no_change, "n_iter_no_change")
    if loss_threshold is not None:
        if isinstance(loss_threshold, bool) or not isinstance(loss_threshold, numbers.Real):
            raise TypeError(f"loss_threshold={loss_threshold!r} is invalid: expected a number")
        if math.isnan(loss_threshold):
            raise ValueError("loss_threshold=nan is invalid: expected a number")
    Xc = net._check_X(X)
    Yc = net.check_targets(Y, len(Xc), loss)
    val = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("validation_data must be a pair (X_val, Y_val)")
        try:
            Xv = net._check_X(validation_data[0])
            val = (Xv, net.check_targets(validation_data[1], len(Xv), loss))
        except (ValueError, TypeError) as exc:  # say which X and y the message is about
            raise type(exc)(f"validation_data: {exc}") from None

    rng = getattr(net, "rng", None) if seed is None else as_rng(seed)
    if rng is None:
        rng = np.random.default_rng()
    opt_kwargs = {}
    if schedule is not None:
        opt_kwargs["lr"] = schedule
    elif lr is not None:
        opt_kwargs["lr"] = lr
    opt_name = optimizer if isinstance(optimizer, str) else None
    history = History()
    cbs = _checked_list(callbacks, "callbacks", lambda c: isinstance(c, Callback), "a Callback")
    regularizers = _checked_list(
        regularizers,
        "regularizers",
        lambda r: callable(getattr(r, "value_and_grad", None)),
        "an object with value_and_grad(params), e.g. SynapticPlasticity",
    )
    if isinstance(schedule, str):
        raise TypeError(
            f"schedule={schedule!r} is a name: expected a schedule object, e.g. "
            "backprop.schedules.cosine(lr, total_steps=...) or get_schedule(name, lr, ...)"
        )
    if monitor is not None and not isinstance(monitor, str):
        raise TypeError(f"monitor={monitor!r} is invalid: expected 'val_loss', 'loss', ... ")
    if early_stopping:
        mon = monitor or ("val_loss" if val is not None else "loss")
        if mon.startswith("val_") and val is None:
            raise ValueError(f"early stopping on {mon!r} needs validation_data")
        if mon.endswith("accuracy") and not loss.classification:
            raise ValueError(
                f"early stopping on {mon!r} needs a classification loss, not {loss.name!r}: "
                "expected monitor='val_loss' or 'loss'"
            )
        cbs.append(EarlyStopping(monitor=mon, patience=patience, min_delta=min_delta))

    if opt_name is not None and opt_name.lower() in FULL_BATCH:
        if opt_kwargs:  # L-BFGS chooses its own steps (line search): nothing would use them
            given = "schedule" if schedule is not None else f"lr={lr!r}"
            raise ValueError(
                f"{given} was given with optimizer={opt_name!r}, which takes no learning rate "
                "(its line search chooses each step): expected neither"
            )
        trainer = Trainer(net, opt_name, loss, history, cbs)
        # Full batch: the products are n_samples wide; small ones run on one BLAS thread, and
        # so does SciPy's own BLAS, which L-BFGS loads (imported first, so the limit covers it).
        import scipy.optimize  # noqa: F401, PLC0415

        blas_limit = _small_product_blas_limit(net, len(Xc))
        # One L-BFGS iteration is one update: `max_iter` caps them like `epochs` does.
        iters = epochs if max_iter is None else min(epochs, max_iter)
        try:
            return _fit_lbfgs(trainer, Xc, Yc, val, l2, regularizers, iters, loss_threshold, tol)
        finally:
            if blas_limit is not None:
                blas_limit.__exit__(None, None, None)

    if opt_kwargs and not isinstance(optimizer, (str, dict)):
        given = "schedule" if schedule is not None else f"lr={lr!r}"
        raise ValueError(
            f"{given} was given with the optimizer instance {optimizer!r}: expected the learning "
            "rate or schedule on the instance itself (e.g. Adam(lr=...)), or the optimizer by "
            "name (optimizer='adam')"
        )
    opt = get_optimizer(optimizer, **opt_kwargs)
    trainer = Trainer(net, opt, loss, history, cbs)
    n = len(Xc)
    bs = min(batch_size, n)
    last_good = net.flat_params.copy()
    params = {"flat": net.flat_params}
    grads = {"flat": net.flat_grads}
    classification = loss.classification
    # Each batch is gathered from the data into one reused buffer (rows of a fresh permutation,
    # copied by np.take, or for large data by a compiled kernel that reads eight rows at once,
    # 2x faster: _kernels.row_gatherer): the same batches as slicing a shuffled copy of the
    # data, without the copy, which would double the memory and cost more than the epoch's
    # arithmetic (page faults).
    # Small targets (class labels as one-hot rows) are shuffled once per epoch instead, into one
    # reused array: one gather per epoch instead of one per step.
    xbuf = np.empty((bs, *Xc.shape[1:]), dtype=Xc.dtype) if shuffle else None
    gather = _kernels.row_gatherer(Xc) if shuffle else None
    y_once = shuffle and Yc.nbytes <= max(Xc.nbytes // 8, 1 << 20)
    ybuf = np.empty((n if y_once else bs, *Yc.shape[1:]), dtype=Yc.dtype) if shuffle else None
    if classification:
        # Training accuracy: the prediction of each sample as it was trained, compared with
        # its label once per epoch (one argmax per batch instead of four array operations).
        # Several sigmoid outputs (multi-label): a row is right when all its outputs are.
        single = net.n_out == 1
        multi = not single and loss.name == "binary_cross_entropy"
        if single:
            labels = Yc[:, 0] >= 0.5
        else:
            labels = Yc >= 0.5 if multi else Yc.argmax(axis=1)
        preds = np.empty(labels.shape, dtype=bool if single or multi else np.intp)
    loss_grad = net._loss_grad
    net._use_workspace(True)
    for cb in cbs:
        cb.on_train_begin(trainer)
    # Overflow in a diverging run is detected below (non-finite loss or weights) and reported
    # once, clearly; NumPy's own overflow warnings would only add noise.
    errstate = np.errstate(over="ignore", invalid="ignore", divide="ignore")
    errstate.__enter__()
    blas_limit = _small_product_blas_limit(net, bs)
    try:
        for epoch in range(1, epochs + 1):
            trainer.epoch = epoch
            for cb in cbs:
                cb.on_epoch_begin(trainer, epoch)
            t0 = time.perf_counter()
            order = rng.permutation(n) if shuffle else None
            if y_once:
                np.take(Yc, order, axis=0, out=ybuf, mode="clip")
            total = 0.0
            seen = 0
            for start in range(0, n, bs):
                stop = min(start + bs, n)
                m = stop - start
                if shuffle:
                    idx = order[start:stop]
                    xb = gather(idx, xbuf if m == bs else xbuf[:m])
                    if y_once:
                        yb = ybuf[start:stop]
                    else:
                        yb = np.take(Yc, idx, axis=0, out=ybuf[:m], mode="clip")
                else:
                    xb, yb = Xc[start:stop], Yc[start:stop]
                value = loss_grad(xb, yb, loss, l2, regularizers, True)
                if not math.isfinite(value):
                    _diverged(trainer, last_good, epoch, f"the loss became {value}")
                if classification:
                    out = net._output
                    if single:
                        np.greater_equal(out[:, 0], 0.5, out=preds[start:stop])
                    elif multi:
                        np.greater_equal(out, 0.5, out=preds[start:stop])
                    else:
                        np.argmax(out, axis=1, out=preds[start:stop])
                lr_now = opt.current_lr()
                opt.step(params, grads)
                total += value * m
                seen += m
                history.n_steps += 1
                for cb in cbs:
                    cb.on_batch_end(trainer, history.n_steps, value, m)
                if max_iter is not None and history.n_steps >= max_iter:
                    trainer.stop_training = True
                    history.stop_reason = f"reached max_iter={max_iter} updates"
                    break
            elapsed = time.perf_counter() - t0
            if not np.isfinite(net.flat_params).all():
                _diverged(trainer, last_good, epoch, "the weights became non-finite")
            np.copyto(last_good, net.flat_params)
            epoch_loss = total / seen
            history.loss.append(epoch_loss)
            history.lr.append(float(lr_now))
            history.epoch_time.append(elapsed)
            logs = {"loss": epoch_loss}
            if classification:
                truth = labels[order[:seen]] if shuffle else labels[:seen]
                hits = preds[:seen] == truth
                acc = np.count_nonzero(hits.all(axis=1) if multi else hits) / seen
                history.accuracy.append(acc)
                logs["accuracy"] = acc
            if val is not None:
                ev = _evaluate_checked(net, val[0], val[1], loss)
                history.val_loss.append(ev["loss"])
                logs["val_loss"] = ev["loss"]
                if "accuracy" in ev:
                    history.val_accuracy.append(ev["accuracy"])
                    logs["val_accuracy"] = ev["accuracy"]
            for cb in cbs:
                cb.on_epoch_end(trainer, epoch, logs)
            if loss_threshold is not None and epoch_loss < loss_threshold:
                trainer.stop_training = True
                history.stop_reason = f"loss {epoch_loss:.6g} fell below {loss_threshold:g}"
            if tol is not None and len(history.loss) > n_iter_no_change:
                recent = history.loss[-(n_iter_no_change + 1) :]
                if all(abs(b - a) < tol for a, b in zip(recent, recent[1:], strict=False)):
                    trainer.stop_training = True
                    history.stop_reason = (
                        f"loss changed by less than tol={tol:g} for {n_iter_no_change} epoch(s)"
                    )
            if trainer.stop_training:
                break
        else:
            history.stop_reason = history.stop_reason or f"reached epochs={epochs}"
    except KeyboardInterrupt:
        history.interrupted = True
        history.stop_reason = f"interrupted during epoch {trainer.epoch}"
        if not np.isfinite(net.flat_params).all():
            np.copyto(net.flat_params, last_good)
    finally:
        errstate.__exit__(None, None, None)
        if blas_limit is not None:
            blas_limit.__exit__(None, None, None)
        net._use_workspace(False)
    for cb in cbs:
        cb.on_train_end(trainer)
    return history


SMALL_PRODUCT = 4_000_000
"""Steps whose largest matrix product has fewer multiply-adds than this (batch x n_in x n_out)
run with one BLAS thread: splitting such a product between threads costs more in synchronisation
than it saves, and the idle thread slows the rest of the step. Measured on 784-100-10 with two
threads (docs/performance.md): batch 16, 0.65 s per epoch with one BLAS thread against 0.75 s
with two; batch 32, 0.44 s against 0.78 s; batch 64 (5 million multiply-adds) about equal. Set
to 0 to keep the BLAS's own thread count."""

_controller = []


def _checked_list(value, name: str, ok, what: str) -> list:
    """``value`` as a list whose every item passes ``ok``, or a one-line TypeError."""
    if value is None:
        return []
    if ok(value):  # one item where a sequence is expected
        raise TypeError(f"{name} is a single {type(value).__name__}: expected a list of them")
    try:
        items = list(value)
    except TypeError:
        raise TypeError(f"{name} is a {type(value).__name__}: expected a list of {what}") from None
    for i, item in enumerate(items):
        if not ok(item):
            raise TypeError(f"{name}[{i}] is a {type(item).__name__}: expected {what}")
    return items


def _small_product_blas_limit(net, batch_size):
    """Enter a one-thread BLAS limit for the training loop when its products are small (see
    :data:`SMALL_PRODUCT`) and return it (to be exited), else None."""
    widths = [
        layer.n_in * layer.n_out
        for layer in net.layers
        if hasattr(layer, "n_in") and hasattr(layer, "n_out") and layer.params
    ]
    if not widths or batch_size * max(widths) >= SMALL_PRODUCT:
        return None
    try:
        # The controller knows the BLAS libraries loaded when it was made: SciPy brings its own
        # OpenBLAS, so it is made again once scipy.linalg has been imported.
        key = "scipy.linalg" in sys.modules
        if not _controller or _controller[0][0] != key:
            from threadpoolctl import ThreadpoolController

            _controller[:] = [(key, ThreadpoolController())]
        limit = _controller[0][1].limit(limits=1, user_api="blas")
    except Exception:  # threadpoolctl missing or unable to read the BLAS: leave it alone
        return None
    limit.__enter__()
    return limit


def _diverged(trainer, last_good, epoch, what):
    np.copyto(trainer.net.flat_params, last_good)
    opt = trainer.optimizer
    lr = opt.current_lr() if hasattr(opt, "current_lr") else None
    hint = f". The learning rate ({lr:g}) is probably too high" if lr is not None else ""
    for cb in trainer.callbacks:  # early stopping may put back its best epoch's weights
        cb.on_train_end(trainer)
    best = next(
        (
            cb.best_epoch
            for cb in trainer.callbacks
            if isinstance(cb, EarlyStopping) and cb.restore_best and cb.best_epoch is not None
        ),
        None,
    )
    if best is not None:
        restored = f"those of the best epoch ({best}, early stopping)"
    elif epoch > 1:
        restored = f"those of the end of epoch {epoch - 1}"
    else:
        restored = "the initial ones"
    msg = (
        f"training diverged in epoch {epoch}: {what}{hint}; the weights were restored to "
        f"{restored}."
    )
    trainer.history.stop_reason = msg
    raise TrainingDiverged(msg, trainer.history)


def _fit_lbfgs(trainer, Xc, Yc, val, l2, regularizers, max_iter, loss_threshold, tol):
    """Full-batch L-BFGS through SciPy; one 'epoch' in the History per iteration."""
    net, loss, history = trainer.net, trainer.loss, trainer.history
    theta = net.flat_params

    begin = [True]  # an iteration begins with its first evaluation (SciPy may stop before)

    def fun(x):
        if begin[0]:
            begin[0] = False
            for cb in trainer.callbacks:
                cb.on_epoch_begin(trainer, trainer.epoch + 1)
        theta[...] = x
        value = net._loss_grad(Xc, Yc, loss, l2, regularizers, True)
        return value, net.flat_grads.astype(np.float64)

    t0 = [time.perf_counter()]
    accepted = theta.copy()  # the last accepted iterate (fun also visits line-search trials)

    def callback(xk):
        theta[...] = xk
        np.copyto(accepted, theta)
        ev = _evaluate_checked(net, Xc, Yc, loss)
        history.loss.append(ev["loss"] + _reg_value(net, l2, len(Xc), regularizers))
        if "accuracy" in ev:
            history.accuracy.append(ev["accuracy"])
        history.lr.append(float("nan"))
        now = time.perf_counter()
        history.epoch_time.append(now - t0[0])
        t0[0] = now
        trainer.epoch += 1
        for cb in trainer.callbacks:  # one full-batch update per iteration
            cb.on_batch_end(trainer, trainer.epoch, history.loss[-1], len(Xc))
        logs = {"loss": history.loss[-1]}
        if val is not None:
            ev = _evaluate_checked(net, val[0], val[1], loss)
            history.val_loss.append(ev["loss"])
            logs["val_loss"] = ev["loss"]
            if "accuracy" in ev:
                history.val_accuracy.append(ev["accuracy"])
                logs["val_accuracy"] = ev["accuracy"]
        for cb in trainer.callbacks:
            cb.on_epoch_end(trainer, trainer.epoch, logs)
        if loss_threshold is not None and history.loss[-1] < loss_threshold:
            raise StopIteration
        if trainer.stop_training:
            raise StopIteration
        begin[0] = True

    for cb in trainer.callbacks:
        cb.on_train_begin(trainer)
    try:
        # A non-finite loss is reported once below, as in the mini-batch loop.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            res = minimize_lbfgs(
                fun,
                theta.astype(np.float64),
                max_iter=max_iter,
                tol=tol if tol is not None else 1e-9,
                callback=callback,
            )
    except KeyboardInterrupt:
        # Ctrl-C: keep the last accepted iterate (not a line-search trial point), as the
        # mini-batch loop keeps its weights, and return the history so far.
        np.copyto(theta, accepted)
        history.n_steps = trainer.epoch
        history.interrupted = True
        history.stop_reason = f"interrupted during iteration {trainer.epoch + 1}"
    else:
        if not (np.isfinite(res.fun) and np.isfinite(res.x).all()):
            # SciPy stops at a NaN or infinite loss (the first one, or one its line search
            # cannot back away from): keep the last accepted iterate, as the mini-batch loop does.
            history.n_steps = trainer.epoch
            _diverged(trainer, accepted, trainer.epoch + 1, f"the loss is {float(res.fun)}")
        theta[...] = res.x
        history.n_steps = int(getattr(res, "nit", trainer.epoch))
        history.stop_reason = history.stop_reason or f"L-BFGS: {res.message}"
    for cb in trainer.callbacks:
        cb.on_train_end(trainer)
    return history


def _reg_value(net, l2, n, regularizers):
    from .losses import l2_penalty

    value = l2_penalty(net.params, net.weight_keys, l2, n)[0] if l2 else 0.0
    for r in regularizers:
        value += r.value_and_grad(net.params)[0]
    return value
