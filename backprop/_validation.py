"""Input checks shared by the core, the estimators and the CLI.

Every check raises a one-line ``ValueError``/``TypeError`` that names the value and what was
expected, so a user never sees a NumPy traceback from deep inside a matrix product.
"""

from __future__ import annotations

import argparse

import numpy as np

FLOAT_DTYPES = {"float32": np.float32, "float64": np.float64}


def as_dtype(dtype) -> np.dtype:
    """Resolve ``"float32"``/``"float64"`` (or the NumPy types) to a dtype; others are refused."""
    if dtype is None:  # np.dtype(None) is float64: a silent choice the caller did not make
        raise ValueError("dtype=None is not supported: expected 'float32' or 'float64'")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(
            f"dtype={dtype!r} is not supported: expected 'float32' or 'float64'"
        ) from None
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype={dtype!r} is not supported: expected 'float32' or 'float64'")
    return dt


def all_finite(arr: np.ndarray) -> bool:
    """Whether every element of a float array is finite, in one fast pass without temporaries.

    The sum of the elements is finite only if every element is (NaN and infinity propagate
    through a sum), and summing is much cheaper than ``np.isfinite(arr).all()``, which also
    allocates a boolean array as large as the data. Only when the sum is not finite (which a
    harmless overflow can also cause) are the elements checked, chunk by chunk.
    """
    flat = arr.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.add.reduce(flat)
    if np.isfinite(total):
        return True
    step = 1 << 20
    return all(np.isfinite(flat[i : i + step]).all() for i in range(0, flat.size, step))


def check_array(
    X, *, n_features: int | None, dtype, name: str = "X", finite: bool = True
) -> np.ndarray:
    """Return ``X`` as a C-contiguous 2-D array of ``dtype`` after checking it.

    Refuses: non-numeric data, ``ndim != 2``, zero samples, a width different from
    ``n_features``, and (unless ``finite=False``, for a caller that checks later with
    :func:`check_finite`) NaN or infinity.
    """
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be read as an array: {exc}") from None
    if arr.dtype.kind not in "biuf":  # not: object, strings, complex, dates, time spans
        raise TypeError(f"{name} has dtype {arr.dtype}: expected real numbers")
    if arr.ndim != 2:
        hint = " (use X.reshape(-1, 1) for a single feature)" if arr.ndim == 1 else ""
        raise ValueError(
            f"{name} has shape {arr.shape}: expected 2-D (n_samples, n_features){hint}"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}): expected at least one sample")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"{name} has {arr.shape[1]} features (shape {arr.shape}): expected {n_features}"
        )
    original = arr
    with np.errstate(over="ignore"):  # an overflow is reported below, by name
        arr = np.ascontiguousarray(arr, dtype=dtype)
    if finite:
        if arr is not original and original.dtype.kind == "f" and not all_finite(arr):
            bad = np.argwhere(~np.isfinite(arr))[0]
            v = original[tuple(bad)]
            if np.isfinite(v):
                raise ValueError(
                    f"{name} has {float(v)!r} at row {bad[0]}, column {bad[1]}, beyond the "
                    f"range of {np.dtype(dtype).name}: expected values within "
                    f"+-{np.finfo(dtype).max:.3g}"
                )
        check_finite(arr, name)
    return arr


def check_finite(arr: np.ndarray, name: str = "X") -> None:
    """Raise a one-line ``ValueError`` naming the first NaN or infinity of a 2-D ``arr``."""
    if not all_finite(arr):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(
            f"{name} contains NaN or infinity (first at row {bad[0]}, column {bad[1]}): "
            "expected finite numbers"
        )


def check_targets(Y, *, n: int, n_outputs: int, classification: bool, binary: bool, dtype):
    """Turn targets into a float array of shape ``(n, n_outputs)``.

    Classification (softmax + cross-entropy) accepts integer class labels ``(n,)`` in
    ``[0, n_outputs)`` -- turned into one-hot rows -- or one-hot / probability rows.
    Binary outputs accept values in ``[0, 1]``. Regression accepts ``(n,)`` when there is one
    output.
    """
    try:
        arr = np.asarray(Y)
    except Exception as exc:
        raise ValueError(f"y could not be read as an array: {exc}") from None
    if arr.dtype.kind not in "biuf":  # not: object, strings, complex, dates, time spans
        raise TypeError(f"y has dtype {arr.dtype}: expected real numbers")
    if arr.shape[:1] != (n,):
        raise ValueError(
            f"y has {arr.shape[0] if arr.ndim else 0} rows: expected {n} (one per sample in X)"
        )
    if classification and not binary and arr.ndim == 1:
        if np.issubdtype(arr.dtype, np.floating):
            if not np.isfinite(arr).all() or np.any(arr != np.round(arr)):
                raise ValueError(
                    "y has non-integer class labels: expected integers in [0, n_classes)"
                )
            big = np.flatnonzero(np.abs(arr) >= n_outputs)  # before int64 could wrap it
            if big.size:
                raise ValueError(
                    f"class label {arr[big[0]]:g} is out of range: expected integers in "
                    f"[0, {n_outputs - 1}]"
                )
        if arr.dtype.kind == "u" and arr.size and int(arr.max()) >= n_outputs:
            raise ValueError(
                f"class label {int(arr.max())} is out of range: expected integers in "
                f"[0, {n_outputs - 1}]"
            )
        labels = arr.astype(np.int64)
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= n_outputs:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"class label {bad} is out of range: expected integers in [0, {n_outputs - 1}]"
            )
        onehot = np.zeros((n, n_outputs), dtype=dtype)
        onehot[np.arange(n), labels] = 1
        return onehot
    if arr.ndim == 1:
        if n_outputs != 1:
            raise ValueError(
                f"y has shape {arr.shape}: expected ({n}, {n_outputs}) for {n_outputs} outputs"
            )
        arr = arr.reshape(n, 1)
    if arr.ndim != 2 or arr.shape[1] != n_outputs:
        raise ValueError(f"y has shape {arr.shape}: expected ({n}, {n_outputs})")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if not np.isfinite(arr).all():
        raise ValueError("y contains NaN or infinity: expected finite numbers")
    if classification and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(
            f"y has values in [{arr.min():g}, {arr.max():g}]: expected probabilities in [0, 1]"
        )
    if classification and not binary and n_outputs > 1:
        # Softmax cross-entropy, logsumexp(z) - y . z, and its delta a - y are the loss and
        # gradient of -sum y log a only for rows that sum to 1 (a distribution over classes).
        sums = arr.sum(axis=1, dtype=np.float64)
        bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-3)
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"y row {i} sums to {sums[i]:g}: expected one-hot or probability rows that sum "
                "to 1 (or integer class labels)"
            )
    return arr


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}={value!r} is invalid: expected an integer >= {minimum}")
    if value < minimum:
        raise ValueError(f"{name}={value!r} is invalid: expected an integer >= {minimum}")
    return int(value)


def check_nonneg_float(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}={value!r} is invalid: expected a number >= 0") from None
    if not np.isfinite(v) or v < 0:
        raise ValueError(f"{name}={value!r} is invalid: expected a finite number >= 0")
    return v


def as_rng(seed, name: str = "seed") -> np.random.Generator:
    """A Generator from ``seed``: None (fresh entropy), a non-negative int or a Generator
    (returned as is); anything else is a one-line error naming ``name``."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(
                f"{name}={seed!r} is invalid: expected None, an integer >= 0 or a Generator"
            )
        if seed < 0:
            raise ValueError(f"{name}={seed!r} is invalid: expected an integer >= 0")
    return np.random.default_rng(seed)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none), for
    one-line errors that quote a library's own message."""
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def int_arg_at_least(lo: int):
    """An argparse ``type``: an integer ``>= lo``, else a usage error naming the text given."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"{text!r} is invalid: expected an integer >= {lo}")
        return v

    return parse
