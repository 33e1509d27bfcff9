"""What the training loop records and who it asks whether to go on.

:class:`History` holds the per-epoch figures; :class:`Callback` subclasses are called at the start
and end of training, after every batch and after every epoch; :class:`EarlyStopping` watches a
validation figure and restores the best weights.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
import tempfile
from dataclasses import asdict, dataclass, field

import numpy as np

from ._validation import check_nonneg_float, check_positive_int

__all__ = ["History", "Callback", "EarlyStopping", "TrainingDiverged", "atomic_write_bytes"]


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename,
    so a crash never leaves a half-written file.

    An existing file keeps its permissions; a symbolic link keeps pointing where it did (the
    file it points to is replaced); errors name ``path``, never the temporary file.
    """
    path = os.fspath(path)
    target = os.path.realpath(path)
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a file", path)
    directory = os.path.dirname(target)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:  # a new file: the mode a plain open() would give (0666 & ~umask)
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    base = os.path.basename(target)
    try:  # a short temporary name: a long file name plus a prefix could exceed NAME_MAX
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{base[:32]}.", suffix=".tmp")
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror, path) from None
    try:
        os.fchmod(fd, mode)  # mkstemp creates the file 0600
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno is not None:
            raise type(exc)(exc.errno, exc.strerror, path) from None
        raise


def json_safe(value):
    """``value`` with every non-finite float replaced by None, for standard JSON (which has no
    NaN or infinity; Python would write the non-standard ``NaN`` that strict readers refuse)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


_FLOAT_LISTS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_time")


@dataclass
class History:
    """Per-epoch record of a training run.

    Attributes
    ----------
    loss : list of float
        Mean training loss of each epoch (the average of its batch losses, regulariser included).
    accuracy : list of float
        Training accuracy of each epoch (classification only; measured on the batches as they
        were trained, as Keras does).
    val_loss, val_accuracy : list of float
        On the validation data, at the end of each epoch, with dropout off.
    lr : list of float
        Learning rate used by the last step of each epoch.
    epoch_time : list of float
        Wall-clock seconds of each epoch (training only).
    n_steps : int
        Optimizer updates done.
    best_epoch : int or None
        Epoch (1-based) whose weights were kept by early stopping.
    stop_reason : str
        Why training stopped.
    interrupted : bool
        True when Ctrl-C stopped it.
    """

    loss: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    epoch_time: list = field(default_factory=list)
    n_steps: int = 0
    best_epoch: int | None = None
    stop_reason: str = ""
    interrupted: bool = False

    @property
    def epochs(self) -> int:
        return len(self.loss)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> History:
        if not isinstance(d, dict):
            raise TypeError(f"a history is a dict of per-epoch lists: got a {type(d).__name__}")
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        for k in _FLOAT_LISTS:  # JSON's null (a NaN when saved, e.g. L-BFGS's lr) back to NaN
            if isinstance(known.get(k), list):
                known[k] = [math.nan if v is None else v for v in known[k]]
        return cls(**known)

    def save_json(self, path) -> None:
        """Standard JSON: NaN and infinity (no JSON number) are written as null."""
        text = json.dumps(json_safe(self.to_dict()), indent=1, allow_nan=False)
        atomic_write_bytes(path, text.encode())

    @classmethod
    def load_json(cls, path) -> History:
        with open(path, encoding="utf-8") as fh:
            try:
                data = json.load(fh)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: not a training history (bad JSON: {exc})") from None
        if not isinstance(data, dict) or "loss" not in data:
            raise ValueError(f"{path}: not a training history (no 'loss' list)")
        return cls.from_dict(data)


class TrainingDiverged(RuntimeError):
    """Raised when the loss or the weights become NaN or infinite.

    The model keeps the last finite weights (those at the end of the previous epoch);
    ``history`` holds what was recorded up to then.
    """

    def __init__(self, message: str, history: History):
        super().__init__(message)
        self.history = history


class Callback:
    """Hooks called by :func:`backprop.fit`. ``trainer`` exposes ``net``, ``history``,
    ``optimizer``, ``epoch`` and a ``stop_training`` flag a callback may set."""

    def on_train_begin(self, trainer) -> None:
        pass

    def on_epoch_begin(self, trainer, epoch: int) -> None:
        pass

    def on_batch_end(self, trainer, step: int, batch_loss: float, batch_size: int) -> None:
        pass

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        pass

    def on_train_end(self, trainer) -> None:
        pass


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs, and
    restore the weights of the best epoch.

    Parameters
    ----------
    monitor : str, default "val_loss"
        A key of the epoch logs: ``val_loss``, ``val_accuracy``, ``loss`` or ``accuracy``.
        Losses are minimised, accuracies maximised.
    patience : int, default 10
    min_delta : float, default 0.0
    restore_best : bool, default True
    """

    def __init__(self, monitor="val_loss", patience=10, min_delta=0.0, restore_best=True):
        if monitor not in ("val_loss", "val_accuracy", "loss", "accuracy"):
            raise ValueError(
                f"monitor={monitor!r} is invalid: expected val_loss, val_accuracy, loss or accuracy"
            )
        self.monitor = monitor
        self.patience = check_positive_int(patience, "patience")
        self.min_delta = check_nonneg_float(min_delta, "min_delta")
        self.restore_best = restore_best
        self.mode = "max" if monitor.endswith("accuracy") else "min"
        self.best = None
        self.best_epoch = None
        self.best_params = None
        self.wait = 0

    def _improved(self, value):
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_train_begin(self, trainer):
        self.best = self.best_epoch = self.best_params = None
        self.wait = 0

    def on_epoch_end(self, trainer, epoch, logs):
        value = logs.get(self.monitor)
        if value is None or not math.isfinite(value):
            return
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            self.best_params = trainer.net.flat_params.copy()
        else:
            self.wait += 1
            if self.wait >= self.patience:
                trainer.stop_training = True
                trainer.history.stop_reason = (
                    f"early stopping: {self.monitor} did not improve for {self.patience} epochs "
                    f"(best {self.best:.6g} at epoch {self.best_epoch})"
                )

    def on_train_end(self, trainer):
        if self.restore_best and self.best_params is not None:
            np.copyto(trainer.net.flat_params, self.best_params)
            trainer.history.best_epoch = self.best_epoch
