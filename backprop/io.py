"""Model files: the weights in safetensors, everything else as JSON in the same file.

A model file is a plain `safetensors <https://github.com/huggingface/safetensors>`_ file:

- one tensor per parameter, named as in ``net.params`` (``W1, b1, W2, b2, ...``; ``W`` of shape
  ``(n_out, n_in)``), in the network's dtype (``F32`` or ``F64``), bit for bit;
- the header's ``__metadata__`` (a map of strings) holds ``format`` (``"backprop"``),
  ``format_version`` and, each as a JSON string: ``config`` (``net.to_config()``: the
  architecture and the dtype), ``classes`` (the label of each class index), ``preprocessing``
  (the input/target scalers of :mod:`backprop.datasets`), ``training`` (the settings and results
  of the run), ``history`` (:class:`backprop.callbacks.History` as a dict) and ``extra`` (a free
  JSON dict for other tools: the estimator's hyperparameters, a language model's vocabulary).

Any safetensors reader (PyTorch, JAX, Rust) can read the weights; nothing is ever unpickled and
loading never executes code. Before a single weight is read, :func:`load` checks the header: its
size (at most :data:`MAX_HEADER_BYTES`), its JSON, every tensor's dtype, shape and byte range
(contiguous, non-overlapping, covering the data exactly), the architecture in ``config`` and
that it asks for exactly the tensors present (so a hand-crafted file cannot make it allocate a
huge network). Then every value must be finite. Any failure raises :class:`ModelFileError` (a
``ValueError``) with a one-line message naming the file.

Writes go through a temporary file in the same directory and a rename, so an interrupted save
leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import struct
from typing import Any

import numpy as np

from ._validation import first_line
from .callbacks import History, atomic_write_bytes

__all__ = [
    "ModelFileError",
    "save",
    "load",
    "read_metadata",
    "normalize_preprocessing",
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_HEADER_BYTES",
    "METADATA_KEYS",
    "MODEL_TYPES",
]

#: Value of the ``format`` metadata entry of every backprop model file.
FORMAT = "backprop"
#: Version of the layout described above; files with a higher version are refused.
FORMAT_VERSION = 1
#: Largest header (JSON) accepted, in bytes. Real headers are a few kB (a long History or a
#: language model's vocabulary may reach a few MB); a larger one is refused before being read.
MAX_HEADER_BYTES = 64 * 1024 * 1024
#: The JSON entries of the metadata, in the order they are written.
METADATA_KEYS = ("config", "classes", "preprocessing", "training", "history", "extra")

#: Architectures defined outside :mod:`backprop.layers`: config ``type`` -> module name. The
#: module provides ``expected_shapes(config) -> (dtype name, {tensor: shape}, n_outputs)``
#: (a ``ValueError`` for a bad config; nothing allocated) and ``from_config(config)``; it is
#: imported only when a file names that type.
MODEL_TYPES = {"NeuralLM": "backprop.lm"}

_DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}
_DTYPE_NAMES = {"float32": "F32", "float64": "F64"}
_MAX_DEPTH = 64  # nesting of JSON values in the metadata


class ModelFileError(ValueError):
    """A model file is missing, truncated, corrupt, hostile or not a backprop model."""


# --------------------------------------------------------------------------------------------
# JSON helpers
# --------------------------------------------------------------------------------------------


def _to_jsonable(value: Any, where: str) -> Any:
    """Plain JSON values from NumPy scalars/arrays, tuples, Histories and scalers."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        # JSON has no NaN or infinity (Python would write the non-standard NaN, which other
        # readers refuse): a non-finite number, such as the R^2 of a constant target or the loss
        # of a diverged epoch, is stored as null.
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return _to_jsonable(value.tolist(), where)
    if isinstance(value, History):
        return _to_jsonable(value.to_dict(), where)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where} has the key {k!r}: expected string keys (JSON)")
            out[k] = _to_jsonable(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if hasattr(value, "to_config"):
        return _to_jsonable(value.to_config(), where)
    raise TypeError(
        f"{where} holds a {type(value).__name__}: expected JSON values "
        "(dict, list, str, number, bool, None)"
    )


def _depth_ok(value: Any, depth: int = 0) -> bool:
    if depth > _MAX_DEPTH:
        return False
    if isinstance(value, dict):
        return all(_depth_ok(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return all(_depth_ok(v, depth + 1) for v in value)
    return True


def normalize_preprocessing(preprocessing: Any) -> dict | None:
    """Bring ``preprocessing`` to the stored form ``{"input": cfg or None, "target": cfg or None}``.

    Accepted: None; a fitted scaler of :mod:`backprop.datasets` (``Standardizer``, ``Scale``) or
    its ``to_config()`` dict -- both meaning the input scaler; or a dict with the keys
    ``"input"`` and/or ``"target"``, each a scaler, a config or None.

    Examples
    --------
    >>> from backprop.datasets import Scale
    >>> normalize_preprocessing(Scale(255.0))
    {'input': {'type': 'scale', 'factor': 255.0}, 'target': None}
    """
    if preprocessing is None:
        return None
    if hasattr(preprocessing, "to_config"):
        return {"input": _to_jsonable(preprocessing, "preprocessing"), "target": None}
    if not isinstance(preprocessing, dict):
        raise TypeError(
            f"preprocessing is a {type(preprocessing).__name__}: expected None, a scaler, a "
            "scaler config or a dict with keys 'input'/'target'"
        )
    if "type" in preprocessing:
        return {"input": _to_jsonable(preprocessing, "preprocessing"), "target": None}
    unknown = sorted(set(preprocessing) - {"input", "target"})
    if unknown:
        raise ValueError(
            f"preprocessing has the key {unknown[0]!r}: expected only 'input' and 'target'"
        )
    out = {}
    for key in ("input", "target"):
        v = preprocessing.get(key)
        out[key] = None if v is None else _to_jsonable(v, f"preprocessing[{key!r}]")
        if out[key] is not None and not (isinstance(out[key], dict) and "type" in out[key]):
            raise ValueError(
                f"preprocessing[{key!r}] is {out[key]!r}: expected a scaler config with a 'type'"
            )
    return out


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------


def save(
    net,
    path,
    *,
    classes=None,
    preprocessing=None,
    training=None,
    history=None,
    extra=None,
) -> str:
    """Write ``net`` and what is needed to use it to a safetensors file, atomically.

    Parameters
    ----------
    net : Sequential or MLP
        Its parameters (``net.params``) become the tensors, ``net.to_config()`` the
        architecture.
    path : str or os.PathLike
        Destination (conventionally ``*.safetensors``). Written to a temporary file in the same
        directory, then renamed over ``path``.
    classes : list, optional
        ``classes[k]`` is the label of class index ``k`` (ints or strings).
    preprocessing : scaler, dict or None
        See :func:`normalize_preprocessing`; ``predict``/``evaluate`` apply it to raw input.
    training : dict, optional
        Settings and results of the run (free JSON).
    history : History or dict, optional
        The training history (:meth:`History.to_dict`).
    extra : dict, optional
        Free JSON for other tools.

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    TypeError
        A metadata value that is not JSON (the message names it), or a ``net`` without
        ``to_config``/``params``.
    ValueError
        What :func:`load` would refuse: NaN or infinite parameters, metadata nested deeper
        than 64 levels or a header over :data:`MAX_HEADER_BYTES`. Nothing is written then.
        (A non-finite *number* in the metadata is stored as null: JSON has no NaN.)

    Examples
    --------
    >>> net = MLP([2, 3, 1], seed=0)  # doctest: +SKIP
    >>> save(net, "xor.safetensors", classes=[0, 1], training={"epochs": 10})  # doctest: +SKIP
    >>> load("xor.safetensors").params["W1"].shape  # doctest: +SKIP
    (3, 2)
    """
    from safetensors.numpy import save as st_save

    if not hasattr(net, "to_config") or not hasattr(net, "params"):
        raise TypeError(f"net is a {type(net).__name__}: expected a backprop network")
    config = _to_jsonable(net.to_config(), "net.to_config()")
    if classes is not None:
        if isinstance(classes, (str, bytes)) or not hasattr(classes, "__iter__"):
            raise TypeError(
                f"classes={classes!r} is not a sequence of labels: expected e.g. [0, 1, 2] or "
                "['cat', 'dog']"
            )
        classes = _to_jsonable(list(classes), "classes")
        if any(isinstance(c, (dict, list)) for c in classes):
            raise TypeError("classes holds a list or dict: expected labels (int, str, ...)")
        if len({json.dumps(c) for c in classes}) != len(classes):
            raise ValueError(f"classes={classes!r} has duplicates: expected distinct labels")
    for name, value in (("training", training), ("extra", extra)):
        if value is not None and not isinstance(value, dict):
            raise TypeError(f"{name} is a {type(value).__name__}: expected a dict or None")
    if history is not None and not isinstance(history, (History, dict)):
        raise TypeError(f"history is a {type(history).__name__}: expected a History or a dict")
    values = {
        "config": config,
        "classes": classes,
        "preprocessing": normalize_preprocessing(preprocessing),
        "training": _to_jsonable(training, "training") if training is not None else None,
        "history": _to_jsonable(history, "history") if history is not None else None,
        "extra": _to_jsonable(extra, "extra") if extra is not None else None,
    }
    # What load() would refuse is refused here, before the file (and any good one it would
    # replace) is touched.
    for key in METADATA_KEYS:
        if not _depth_ok(values[key]):
            raise ValueError(
                f"{key} is nested more than {_MAX_DEPTH} levels deep: expected at most "
                f"{_MAX_DEPTH} (model files refuse deeper metadata)"
            )
    n_out = getattr(net, "n_out", None)
    if classes is not None and not _classes_fit(len(classes), n_out):  # as load checks it
        raise ValueError(
            f"classes has {len(classes)} labels for a network with {n_out} outputs: expected "
            f"{n_out}" + (" (or 2 for one sigmoid output)" if n_out == 1 else "")
        )
    problem = _preprocessing_problem(values["preprocessing"], net)
    if problem:
        raise ValueError(f"preprocessing: {problem}")
    for name, arr in net.params.items():
        if not np.isfinite(arr).all():
            raise ValueError(
                f"parameter {name!r} holds NaN or infinite values: expected finite weights "
                "(a model file must load back; was the training diverging?)"
            )
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION)}
    for key in METADATA_KEYS:
        metadata[key] = json.dumps(values[key], separators=(",", ":"), allow_nan=False)
    tensors = {name: np.ascontiguousarray(arr) for name, arr in net.params.items()}
    blob = st_save(tensors, metadata=metadata)
    header = int.from_bytes(blob[:8], "little")
    if header > MAX_HEADER_BYTES:
        raise ValueError(
            f"the metadata makes a header of {header} bytes: expected at most "
            f"{MAX_HEADER_BYTES} (model files refuse larger headers; keep large data in "
            "separate files)"
        )
    atomic_write_bytes(path, blob)
    return os.fspath(path)


# --------------------------------------------------------------------------------------------
# Reading and checking
# --------------------------------------------------------------------------------------------


def _positive_int(value, what: str, path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or value > 2**40:
        raise ModelFileError(f"{path}: {what}={value!r} in the architecture is not a valid size")
    return value


def _expected_shapes(config: Any, path) -> tuple[str, dict[str, tuple[int, ...]], int | None]:
    """The dtype name, ``{tensor name: shape}`` the architecture asks for and its output width,
    computed from the config alone (nothing allocated)."""
    if isinstance(config, dict) and config.get("type") in MODEL_TYPES:
        try:
            return importlib.import_module(MODEL_TYPES[config["type"]]).expected_shapes(config)
        except ValueError as exc:
            raise ModelFileError(f"{path}: {exc}") from None
    if not isinstance(config, dict) or config.get("type") not in ("MLP", "Sequential"):
        raise ModelFileError(
            f"{path}: the architecture (config) is not a dict of type 'MLP' or 'Sequential'"
        )
    dtype = config.get("dtype", "float32")
    if dtype not in _DTYPE_NAMES:
        raise ModelFileError(f"{path}: dtype {dtype!r} in the architecture is not supported")
    shapes: dict[str, tuple[int, ...]] = {}
    if config["type"] == "MLP":
        sizes = config.get("sizes")
        if not isinstance(sizes, list) or len(sizes) < 2:
            raise ModelFileError(f"{path}: the MLP's sizes are not a list of >= 2 widths")
        sizes = [_positive_int(s, "size", path) for s in sizes]
        for k in range(1, len(sizes)):
            shapes[f"W{k}"] = (sizes[k], sizes[k - 1])
            shapes[f"b{k}"] = (sizes[k],)
        return dtype, shapes, sizes[-1]
    layers = config.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ModelFileError(f"{path}: the Sequential's layers are not a non-empty list")
    k = 0
    n_out_last = None
    for layer in layers:
        kind = layer.get("type") if isinstance(layer, dict) else None
        if kind in ("Dense", "Maxout"):
            k += 1
            n_in = _positive_int(layer.get("n_in"), "n_in", path)
            n_out = _positive_int(layer.get("n_out"), "n_out", path)
            rows = n_out * (_positive_int(layer.get("k", 2), "k", path) if kind == "Maxout" else 1)
            shapes[f"W{k}"] = (rows, n_in)
            shapes[f"b{k}"] = (rows,)
            n_out_last = n_out
        elif kind == "Embedding":
            k += 1
            shapes[f"E{k}"] = (
                _positive_int(layer.get("n_vocab"), "n_vocab", path),
                _positive_int(layer.get("dim"), "dim", path),
            )
        elif kind not in ("Activation", "Dropout"):
            raise ModelFileError(f"{path}: unknown layer type {kind!r} in the architecture")
    return dtype, shapes, n_out_last


def _read_header(path) -> tuple[dict, dict, int, int]:
    """Parse and check the header: returns (metadata strings, tensor entries, header length,
    file size)."""
    p = os.fspath(path)
    try:
        size = os.stat(p).st_size
    except FileNotFoundError:
        raise ModelFileError(f"{p}: no such model file") from None
    except OSError as exc:
        raise ModelFileError(f"{p}: cannot read the model file ({exc.strerror})") from None
    if os.path.isdir(p):
        raise ModelFileError(f"{p}: is a directory, not a model file")
    if size < 8:
        raise ModelFileError(
            f"{p}: truncated or not a model file ({size} bytes; a safetensors file starts with "
            "an 8-byte header length)"
        )
    try:
        fh = open(p, "rb")  # noqa: SIM115 - closed by the with below
    except OSError as exc:  # stat works on a file we may not read
        raise ModelFileError(f"{p}: cannot read the model file ({exc.strerror})") from None
    with fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        if n > MAX_HEADER_BYTES:
            raise ModelFileError(
                f"{p}: header of {n} bytes is over the limit of {MAX_HEADER_BYTES} bytes: "
                "corrupt or not a model file"
            )
        if 8 + n > size:
            raise ModelFileError(
                f"{p}: truncated or not a model file (header of {n} bytes, but the file has "
                f"{size} bytes)"
            )
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ModelFileError(f"{p}: corrupt or not a model file (the header is not JSON)") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{p}: corrupt model file (the header is not a JSON object)")
    meta = header.pop("__metadata__", None)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(
            f"{p}: not a backprop model file (no '__metadata__' with format={FORMAT!r})"
        )
    if not all(isinstance(v, str) for v in meta.values()):
        raise ModelFileError(f"{p}: corrupt model file (metadata values must be strings)")
    data_len = size - 8 - n
    spans = []
    for name, entry in header.items():
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise ModelFileError(f"{p}: corrupt model file (bad entry for tensor {name!r})")
        dt, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dt not in _DTYPES:
            raise ModelFileError(
                f"{p}: tensor {name!r} has dtype {dt!r}: expected F32 or F64 (float32/float64)"
            )
        if not isinstance(shape, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**40 for s in shape
        ):
            raise ModelFileError(f"{p}: corrupt model file (bad shape for tensor {name!r})")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]
        ):
            raise ModelFileError(f"{p}: corrupt model file (bad offsets for tensor {name!r})")
        if offsets[1] - offsets[0] != math.prod(shape) * _DTYPES[dt].itemsize:
            raise ModelFileError(
                f"{p}: corrupt model file (tensor {name!r} of shape {tuple(shape)} does not "
                "fill its byte range)"
            )
        spans.append((offsets[0], offsets[1], name))
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        if begin != pos:
            raise ModelFileError(
                f"{p}: corrupt model file (tensor {name!r} overlaps another or leaves a gap)"
            )
        pos = end
    if pos != data_len:
        what = "truncated" if pos > data_len else "corrupt"
        raise ModelFileError(
            f"{p}: {what} model file (the tensors need {pos} bytes of data, the file has "
            f"{data_len})"
        )
    return meta, header, n, size


def _parse_metadata(meta: dict, tensors: dict, path) -> dict:
    p = os.fspath(path)
    version = meta.get("format_version", "")
    if (
        not (isinstance(version, str) and version.isascii() and version.isdigit())
        or len(version) > 9
    ):
        raise ModelFileError(f"{p}: corrupt model file (format_version {version!r})")
    if int(version) > FORMAT_VERSION:
        raise ModelFileError(
            f"{p}: written in model format {version}, newer than this backprop reads "
            f"({FORMAT_VERSION}): upgrade backprop"
        )
    out: dict[str, Any] = {"format_version": int(version)}
    for key in METADATA_KEYS:
        text = meta.get(key, "null")
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            raise ModelFileError(
                f"{p}: corrupt model file (metadata {key!r} is not valid JSON)"
            ) from None
        if not _depth_ok(value):
            raise ModelFileError(f"{p}: corrupt model file (metadata {key!r} is nested too deep)")
        out[key] = value
    for key in ("training", "history", "extra", "preprocessing"):
        if out[key] is not None and not isinstance(out[key], dict):
            raise ModelFileError(f"{p}: corrupt model file (metadata {key!r} is not an object)")
    if out["classes"] is not None and not isinstance(out["classes"], list):
        raise ModelFileError(f"{p}: corrupt model file (metadata 'classes' is not a list)")
    dtype, shapes, n_out = _expected_shapes(out["config"], p)
    missing = [k for k in shapes if k not in tensors]
    if missing:
        raise ModelFileError(
            f"{p}: the tensor {missing[0]!r} that the architecture needs is missing"
        )
    unexpected = [k for k in tensors if k not in shapes]
    if unexpected:
        raise ModelFileError(
            f"{p}: unexpected tensor {unexpected[0]!r}: the architecture has {', '.join(shapes)}"
        )
    for name, shape in shapes.items():
        entry = tensors[name]
        if tuple(entry["shape"]) != shape:
            raise ModelFileError(
                f"{p}: tensor {name!r} has shape {tuple(entry['shape'])}: the architecture "
                f"expects {shape}"
            )
        if entry["dtype"] != _DTYPE_NAMES[dtype]:
            raise ModelFileError(
                f"{p}: tensor {name!r} has dtype {entry['dtype']}: the architecture is {dtype}"
            )
    if out["classes"] is not None:
        n = len(out["classes"])
        if not _classes_fit(n, n_out):
            raise ModelFileError(
                f"{p}: {n} classes for a network with {n_out} outputs: corrupt metadata"
            )
    return out


def read_metadata(path) -> dict:
    """Read and check a model file's header without building the network (for ``info``).

    Returns
    -------
    dict
        ``format_version``, ``config``, ``classes``, ``preprocessing``, ``training``,
        ``history``, ``extra`` (as stored; absent entries are None), plus ``tensors``
        (``{name: {"dtype": "float32", "shape": [...]}}`` in the order of ``net.params``),
        ``n_params`` and ``file_size`` (bytes).

    Raises
    ------
    ModelFileError
        As :func:`load`, except that the tensor values are not read.

    Examples
    --------
    >>> read_metadata("model.safetensors")["config"]["sizes"]  # doctest: +SKIP
    [64, 100, 10]
    """
    meta, tensors, _, size = _read_header(path)
    out = _parse_metadata(meta, tensors, path)
    _, shapes, _ = _expected_shapes(out["config"], path)  # the network's order, W1, b1, ...
    out["tensors"] = {
        k: {"dtype": _DTYPES[tensors[k]["dtype"]].name, "shape": tensors[k]["shape"]}
        for k in shapes
    }
    out["n_params"] = int(sum(math.prod(t["shape"]) for t in tensors.values()))
    out["file_size"] = int(size)
    return out


def load(path):
    """Load a network saved by :func:`save`; never executes code from the file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Sequential, MLP or a type of :data:`MODEL_TYPES` (``backprop.lm.NeuralLM``)
        Rebuilt with :func:`backprop.layers.from_config` and the stored weights copied in, bit
        for bit, in the stored dtype. ``net.metadata`` is a dict with ``format_version``,
        ``config``, ``classes``, ``preprocessing``, ``training``, ``history`` and ``extra``.

    Raises
    ------
    ModelFileError
        No such file; truncated; header over :data:`MAX_HEADER_BYTES`; header or metadata not
        JSON; not a backprop file; a tensor missing, unexpected, or of the wrong shape or dtype
        for the architecture; byte ranges that overlap or do not match the file; a NaN or
        infinite weight. The message is one line and names the file.

    Examples
    --------
    >>> net = load("model.safetensors")  # doctest: +SKIP
    >>> net.metadata["classes"]  # doctest: +SKIP
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    """
    from safetensors.numpy import load as st_load

    from .layers import from_config

    p = os.fspath(path)
    meta, tensors, _, _ = _read_header(p)
    metadata = _parse_metadata(meta, tensors, p)
    try:
        with open(p, "rb") as fh:
            data = fh.read()
    except OSError as exc:  # removed or made unreadable since the header was read
        raise ModelFileError(f"{p}: cannot read the model file ({exc.strerror})") from None
    try:
        arrays = st_load(data)
    except Exception as exc:  # the Rust parser's own checks; should not trigger after ours
        msg = first_line(exc)
        raise ModelFileError(f"{p}: corrupt model file ({msg})") from None
    try:
        cfg = metadata["config"]
        if cfg.get("type") in MODEL_TYPES:
            net = importlib.import_module(MODEL_TYPES[cfg["type"]]).from_config(cfg)
        else:
            net = from_config(cfg)
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelFileError(f"{p}: invalid architecture in the model file ({exc})") from None
    if set(arrays) != set(net.params):
        raise ModelFileError(
            f"{p}: the tensors {sorted(arrays)} do not match the architecture's "
            f"{sorted(net.params)}"
        )
    for name, target in net.params.items():
        arr = arrays[name]
        if arr.shape != target.shape or arr.dtype.newbyteorder("=") != target.dtype:
            raise ModelFileError(
                f"{p}: tensor {name!r} has shape {arr.shape} and dtype {arr.dtype}: expected "
                f"{target.shape} and {target.dtype}"
            )
        if not np.isfinite(arr).all():
            raise ModelFileError(f"{p}: tensor {name!r} holds NaN or infinite values")
        target[...] = arr
    problem = _preprocessing_problem(metadata.get("preprocessing"), net)
    if problem:
        raise ModelFileError(f"{p}: {problem}")
    net.metadata = metadata
    return net


def _classes_fit(n_classes: int, n_out: int | None) -> bool:
    """Whether ``n_classes`` labels fit ``n_out`` outputs: one each, or two for one sigmoid
    (unknown widths pass)."""
    return n_out is None or n_classes == n_out or (n_classes == 2 and n_out == 1)


def _preprocessing_problem(pre: dict | None, net) -> str | None:
    """What is wrong with stored scalers for ``net``, or None: each must rebuild, and a
    per-column one must fit the network's widths (``predict`` applies them)."""
    from .datasets import scaler_from_config  # noqa: PLC0415 - datasets is the heavier module

    if not pre:
        return None
    widths = {"input": getattr(net, "n_in", None), "target": getattr(net, "n_out", None)}
    for key in ("input", "target"):
        cfg = pre.get(key)
        if cfg is None:
            continue
        try:
            scaler = scaler_from_config(cfg)
        except (ValueError, TypeError, KeyError) as exc:
            msg = first_line(exc)
            return f"invalid {key} preprocessing ({msg})"
        columns = getattr(scaler, "mean_", None)
        if columns is not None and widths[key] is not None and len(columns) != widths[key]:
            return (
                f"the {key} preprocessing scales {len(columns)} columns but the network has "
                f"{widths[key]} {key}s"
            )
    return None
