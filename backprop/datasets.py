"""Data sets: the IDX format, MNIST and Fashion-MNIST, scikit-learn's digits, XOR, the notes'
curve, the user's own tables, and the scalers stored with a model.

Conventions
-----------
- Samples in rows: ``X`` has shape ``(n_samples, n_features)``; images are flattened row by row
  (``Dataset.image_shape`` tells how to fold them back).
- Loaders return the data as the source holds it. MNIST and Fashion-MNIST come back as raw
  ``uint8`` pixels 0..255 (a quarter of the memory of float32, and the model's dtype is not the
  data set's to choose); :func:`as_float`, :class:`Scale` or :class:`Standardizer` turn them into
  float32 or float64. Class labels are ``int64`` indices ``0 .. K-1`` (``uint8`` arithmetic wraps
  silently, ``int64`` is NumPy's index type); ``Dataset.classes[k]`` names class ``k``.
- Generators and tables return floating ``X`` in the requested ``dtype`` (float32 by default).
- Randomness comes from one :class:`numpy.random.Generator`: every ``seed`` argument takes
  ``None``, an ``int`` or a ``Generator``.
- Bad files raise :class:`DataError` (a :class:`ValueError`) with a one-line message naming the
  file and what is wrong. Nothing is ever unpickled (``np.load(..., allow_pickle=False)``).

Where MNIST and Fashion-MNIST are looked for, in order: the ``data_dir`` argument,
``$BACKPROP_DATA``, for Fashion-MNIST Debian's ``/usr/share/datasets/fashion-mnist``
(``apt-get install dataset-fashion-mnist``), the cache directory (``cache_dir``,
``$BACKPROP_CACHE`` or ``~/.cache/backprop``), and last a download from the mirrors in
:data:`MNIST_MIRRORS` / :data:`FASHION_MNIST_MIRRORS` (``$BACKPROP_MNIST_MIRROR`` /
``$BACKPROP_FASHION_MNIST_MIRROR`` override them) into the cache. Every file is checked against
the SHA-256 of its uncompressed canonical content.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import http.client
import io
import logging
import math
import os
import re
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ._validation import as_rng, first_line
from .callbacks import atomic_write_bytes

__all__ = [
    "DataError",
    "Dataset",
    "Table",
    "Standardizer",
    "Scale",
    "scaler_from_config",
    "as_float",
    "read_idx",
    "write_idx",
    "load_mnist",
    "load_fashion_mnist",
    "load_digits",
    "make_xor",
    "make_curve",
    "load_table",
    "load_dataset",
    "train_test_split",
    "encode_labels",
    "DATASET_NAMES",
    "MNIST_MIRRORS",
    "FASHION_MNIST_MIRRORS",
    "FASHION_MNIST_SYSTEM_DIRS",
    "FASHION_MNIST_CLASSES",
    "DOWNLOAD_TIMEOUT",
]

log = logging.getLogger(__name__)


class DataError(ValueError):
    """A data file is missing, truncated, corrupt or not in the expected format."""


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _float_dtype(dtype: Any) -> np.dtype:
    """Resolve ``dtype`` and check that it is float32 or float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype={dtype!r} is not a dtype; expected float32 or float64") from exc
    if dt not in _FLOAT_DTYPES:
        raise TypeError(f"dtype={dt} is not supported; expected float32 or float64")
    return dt


def _rng(seed: Any) -> np.random.Generator:
    """One Generator from ``None``, an int or a Generator (returned as is)."""
    return as_rng(seed)


# --------------------------------------------------------------------------------------------
# IDX format
# --------------------------------------------------------------------------------------------

# Third byte of the magic number -> element type (stored big-endian in the file).
_IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.newbyteorder("="): code for code, dt in _IDX_TYPES.items()}
# The most dimensions a NumPy array can have.
_MAX_NDIM = 64 if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else 32


def _read_file_bytes(path: Path) -> bytearray:
    """The content of ``path``, gunzipped when it starts with the gzip magic bytes 1f 8b.

    Returned as a ``bytearray``, so that :func:`_parse_idx` can use it as the array's memory
    instead of copying it (the training images are 47 MB)."""
    try:
        with open(path, "rb") as fh:
            raw = bytearray(os.fstat(fh.fileno()).st_size)
            n = fh.readinto(raw)
            del raw[n:]  # a file that shrank while being read
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            return _gunzip(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: bad gzip stream ({exc})") from exc
    return raw


_MAX_DEFLATE_RATIO = 1032
"""Deflate's largest possible expansion (a run of one byte), output bytes per input byte."""


def _gunzip(raw: bytearray) -> bytearray:
    """Decompress a gzip file into one buffer of the size its trailer announces.

    ``gzip.decompress`` grows its output as it goes and returns immutable bytes (which
    ``_parse_idx`` would then copy): about three times the data at the peak, against once here.
    zlib checks the CRC-32 and the length of the trailer. Files of several gzip members, or whose
    trailer does not give the size, take the plain route, and so do files whose trailer cannot be
    right: deflate expands at most 1032-fold, and in a truncated file the last four bytes are
    compressed data, which could announce up to 4 GiB.
    """
    size = int.from_bytes(raw[-4:], "little") if len(raw) >= 18 else 0
    if size > _MAX_DEFLATE_RATIO * len(raw):
        size = 0
    d = zlib.decompressobj(wbits=31)  # 16 + 15: a gzip header and trailer around deflate data
    view = memoryview(raw)
    step = 1 << 22

    def pieces():  # at most `step` bytes of output at a time
        for start in range(0, len(raw), step):
            yield d.decompress(view[start : start + step], step)
            while d.unconsumed_tail:
                yield d.decompress(d.unconsumed_tail, step)
        yield d.flush()

    out = bytearray(size)
    pos = 0
    for chunk in pieces():
        if pos + len(chunk) > size:  # more than the trailer said: let gzip sort it out
            return bytearray(gzip.decompress(bytes(raw)))
        out[pos : pos + len(chunk)] = chunk
        pos += len(chunk)
    if not d.eof:
        raise EOFError("compressed file ended before the end-of-stream marker was reached")
    if d.unused_data or pos != size:  # more members, or a size beyond 4 GiB
        return bytearray(gzip.decompress(bytes(raw)))
    return out


def _parse_idx(data: bytes | bytearray, path: Any) -> np.ndarray:
    """Parse IDX bytes into a native-endian, writable array; check header and exact length."""
    if len(data) < 4:
        raise DataError(f"{path}: {len(data)} bytes is too short for an IDX header (4 bytes)")
    if data[0] != 0 or data[1] != 0:
        raise DataError(
            f"{path}: bad IDX magic number 0x{data[:4].hex()}; expected 0x0000 followed by "
            "the type code and the number of dimensions"
        )
    code, ndim = data[2], data[3]
    if code not in _IDX_TYPES:
        known = ", ".join(f"0x{c:02x}" for c in _IDX_TYPES)
        raise DataError(f"{path}: unknown IDX data type code 0x{code:02x}; expected one of {known}")
    if not 1 <= ndim <= _MAX_NDIM:
        raise DataError(
            f"{path}: IDX header gives {ndim} dimensions; expected 1..{_MAX_NDIM} (NumPy's limit)"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"{path}: truncated IDX header: {len(data)} bytes, expected {header} for {ndim} "
            "dimensions"
        )
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dt = _IDX_TYPES[code]
    expected = header + math.prod(shape) * dt.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "trailing bytes"
        raise DataError(
            f"{path}: length mismatch ({what}): {len(data)} bytes, expected {expected} for "
            f"shape {shape} of {dt.newbyteorder('=').name}"
        )
    flat = np.frombuffer(data, dtype=dt, offset=header)
    native = dt.newbyteorder("=")
    if isinstance(data, bytearray) and flat.flags.aligned:  # our own writable memory: no copy
        if not dt.isnative:
            flat.byteswap(inplace=True)
        return flat.view(native).reshape(shape)
    # astype to native byte order always copies, so the result is writable.
    return flat.astype(native, copy=True).reshape(shape)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a NumPy array.

    The IDX format (LeCun's MNIST files) is a 4-byte magic number ``0x00 0x00 TYPE NDIM``,
    ``NDIM`` big-endian uint32 dimensions, then the elements, big-endian, in C order.
    Type codes: ``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32,
    ``0x0E`` float64. A gzip file is recognised by its first two bytes ``1f 8b``, whatever its
    name.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    numpy.ndarray
        Shape as in the header (MNIST images: ``(60000, 28, 28)``), the header's type in native
        byte order; a fresh writable array.

    Raises
    ------
    DataError
        A bad gzip stream (truncated or corrupt), a wrong magic number, an unknown type code,
        or a file whose length is not exactly ``4 + 4 NDIM + prod(dims) * itemsize``.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "a-idx2-ubyte.gz")
    >>> write_idx(p, np.arange(6, dtype=np.uint8).reshape(2, 3))
    >>> read_idx(p)
    array([[0, 1, 2],
           [3, 4, 5]], dtype=uint8)
    """
    return _parse_idx(_read_file_bytes(Path(path)), path)


def write_idx(path: str | os.PathLike, array: Any, *, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file, atomically (temporary file, then rename).

    Parameters
    ----------
    path : str or os.PathLike
        Destination.
    array : array_like
        At least 1-D, dtype uint8, int8, int16, int32, float32 or float64; each dimension
        below 2**32 and at most 255 dimensions.
    compress : bool, optional
        gzip the file; default: when ``path`` ends in ``.gz``.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte")
    >>> write_idx(p, np.array([7, 2, 1], dtype=np.uint8))
    >>> open(p, "rb").read()[:8].hex()
    '0000080100000003'
    """
    a = np.asarray(array)
    native = a.dtype.newbyteorder("=")
    if native not in _IDX_CODES:
        names = "uint8, int8, int16, int32, float32, float64"
        raise TypeError(f"array dtype {a.dtype} cannot be written as IDX; expected one of {names}")
    if not 1 <= a.ndim <= 255:
        raise ValueError(
            f"array with {a.ndim} dimensions cannot be written as IDX; expected 1..255"
        )
    if any(d >= 2**32 for d in a.shape):
        raise ValueError(f"array shape {a.shape} has a dimension >= 2**32; IDX cannot hold it")
    code = _IDX_CODES[native]
    body = io.BytesIO()
    body.write(bytes([0, 0, code, a.ndim]))
    body.write(np.asarray(a.shape, dtype=">u4").tobytes())
    body.write(np.ascontiguousarray(a, dtype=_IDX_TYPES[code]).tobytes())
    data = body.getvalue()
    path = Path(path)
    if compress is None:
        compress = path.name.endswith(".gz")
    if compress:
        data = gzip.compress(data, mtime=0)
    atomic_write_bytes(path, data)


# --------------------------------------------------------------------------------------------
# MNIST and Fashion-MNIST
# --------------------------------------------------------------------------------------------

#: Base URLs tried in order for MNIST; ``$BACKPROP_MNIST_MIRROR`` (one or more URLs separated by
#: spaces or commas) replaces this list.
MNIST_MIRRORS: list[str] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]
#: Base URLs tried in order for Fashion-MNIST; ``$BACKPROP_FASHION_MNIST_MIRROR`` replaces it.
FASHION_MNIST_MIRRORS: list[str] = [
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
]
#: Directories where a system package installs Fashion-MNIST (Debian: dataset-fashion-mnist).
FASHION_MNIST_SYSTEM_DIRS: list[str] = ["/usr/share/datasets/fashion-mnist"]
#: Seconds a download may wait on the network before the next mirror is tried.
DOWNLOAD_TIMEOUT: float = 30.0

#: Fashion-MNIST's class names, label 0 .. 9.
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

_IDX_PARTS = ("train-images", "train-labels", "t10k-images", "t10k-labels")


@dataclass(frozen=True)
class _IdxSet:
    """What identifies one IDX data set on disk and on the network."""

    name: str  # shown in messages
    key: str  # cache subdirectory and data-set name
    subdirs: tuple[str, ...]  # subdirectories tried inside a data directory
    sha256: dict[str, str]  # part -> SHA-256 of the uncompressed file
    n_train: int
    n_test: int
    mirrors_attr: str
    mirror_env: str
    system_dirs_attr: str | None
    hint: str


# SHA-256 of the UNCOMPRESSED canonical files. MNIST: computed from the byte-identical copies of
# LeCun's distribution in shared/data/mnist (see its PROVENANCE.md). Fashion-MNIST: computed from
# Debian's dataset-fashion-mnist files; Debian recompressed the .gz (so their md5 differs from
# Zalando's published gzip md5s) but the uncompressed content equals the raw hashes published
# alongside the upstream archives.
_MNIST = _IdxSet(
    name="MNIST",
    key="mnist",
    subdirs=("mnist", "MNIST/raw", "MNIST"),
    sha256={
        "train-images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    n_train=60000,
    n_test=10000,
    mirrors_attr="MNIST_MIRRORS",
    mirror_env="BACKPROP_MNIST_MIRROR",
    system_dirs_attr=None,
    hint="pass data_dir=, or set BACKPROP_DATA to a directory holding the four IDX files "
    "(or a 'mnist' folder with them), or allow download=True with network access",
)
_FASHION = _IdxSet(
    name="Fashion-MNIST",
    key="fashion-mnist",
    subdirs=("fashion-mnist", "FashionMNIST/raw", "fashion_mnist", "FashionMNIST"),
    sha256={
        "train-images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
    n_train=60000,
    n_test=10000,
    mirrors_attr="FASHION_MNIST_MIRRORS",
    mirror_env="BACKPROP_FASHION_MNIST_MIRROR",
    system_dirs_attr="FASHION_MNIST_SYSTEM_DIRS",
    hint="install Debian's package (apt-get install dataset-fashion-mnist), or pass data_dir=, "
    "or set BACKPROP_DATA to a directory holding the four IDX files (or a 'fashion-mnist' "
    "folder with them), or allow download=True with network access",
)


def _canonical_name(part: str) -> str:
    return f"{part}-idx{3 if part.endswith('images') else 1}-ubyte"


def _candidate_names(part: str) -> list[str]:
    """File names accepted for one part: raw, gzip, and the dotted variant some copies use."""
    name = _canonical_name(part)
    dotted = name.replace("-idx", ".idx")
    return [name, name + ".gz", dotted, dotted + ".gz"]


def _find_parts(directory: Path) -> tuple[dict[str, Path], list[str]]:
    """Map each part to its file in ``directory``; also the parts that are missing."""
    found, missing = {}, []
    for part in _IDX_PARTS:
        for name in _candidate_names(part):
            p = directory / name
            if p.is_file():
                found[part] = p
                break
        else:
            missing.append(part)
    return found, missing


def _cache_root(cache_dir: str | os.PathLike | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("BACKPROP_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "backprop"


def _mirrors(spec: _IdxSet) -> list[str]:
    env = os.environ.get(spec.mirror_env, "").strip()
    if env:
        return [u for u in re.split(r"[\s,]+", env) if u]
    return list(globals()[spec.mirrors_attr])


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _download_part(
    spec: _IdxSet, part: str, target_dir: Path, timeout: float, attempts: list[str]
) -> tuple[Path, bytes] | None:
    """Download one ``.gz`` part into ``target_dir``; None when no mirror could be reached.

    The body is streamed to a temporary file in ``target_dir``, its uncompressed content is
    checked against the known SHA-256, and only then is it renamed to its final name.
    Returns the final path and the verified uncompressed content.
    """
    gz_name = _canonical_name(part) + ".gz"
    final = target_dir / gz_name
    expected = spec.sha256[part]
    for base in _mirrors(spec):
        url = base if base.endswith("/") else base + "/"
        url += gz_name
        fd, tmp_name = tempfile.mkstemp(prefix=f".{gz_name}.", suffix=".part", dir=target_dir)
        tmp = Path(tmp_name)
        try:
            try:
                log.info("downloading %s", url)
                with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as r:
                    announced, received = r.headers.get("Content-Length", ""), 0
                    while chunk := r.read(1 << 20):
                        out.write(chunk)
                        received += len(chunk)
                # read(n) returns b"" when the server closes early instead of raising
                if announced.strip().isdigit() and received < int(announced):
                    raise OSError(f"transfer cut short: {received} of {announced} bytes")
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", None) or exc
                attempts.append(f"{url}: {reason}")
                tmp.unlink(missing_ok=True)
                continue
            try:
                data = _read_file_bytes(tmp)
            except DataError as exc:
                raise DataError(
                    f"downloaded {final} from {url} is not a valid gzip file "
                    f"({str(exc).split(': ', 1)[-1]}); the bad download was deleted"
                ) from None
            got = _sha256(data)
            if got != expected:
                raise DataError(
                    f"checksum mismatch for downloaded {final} from {url}: expected SHA-256 "
                    f"{expected} of the uncompressed content, got {got}; the bad download was "
                    "deleted"
                )
            os.chmod(tmp, 0o644)  # mkstemp creates 0600
            os.replace(tmp, final)
            return final, data
        finally:
            tmp.unlink(missing_ok=True)
    return None


def _load_idx_set(
    spec: _IdxSet,
    data_dir: str | os.PathLike | None,
    download: bool,
    cache_dir: str | os.PathLike | None,
    verify: bool,
    timeout: float | None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    looked: list[str] = []
    cache = _cache_root(cache_dir) / spec.key
    # (what it is, directory, try the data set's subdirectories inside it too)
    groups: list[tuple[str, Path, bool]] = []
    if data_dir is not None:
        groups.append(("data_dir", Path(data_dir).expanduser(), True))
    env = os.environ.get("BACKPROP_DATA")
    if env:
        groups.append(("$BACKPROP_DATA", Path(env).expanduser(), True))
    else:
        looked.append("$BACKPROP_DATA (not set)")
    if spec.system_dirs_attr:
        groups += [("system", Path(d), False) for d in globals()[spec.system_dirs_attr]]
    groups.append(("cache", cache, False))

    files: dict[str, Path] | None = None
    verified: dict[str, bytes] = {}
    from_cache = False
    for label, base, with_subdirs in groups:
        if not base.is_dir():
            looked.append(f"{label} {base} (no such directory)")
            continue
        dirs = [base] + ([base / s for s in spec.subdirs] if with_subdirs else [])
        for d in dirs:
            if d is not base and not d.is_dir():
                continue
            found, missing = _find_parts(d)
            if not missing:
                files, from_cache = found, label == "cache"
                break
            if d is base or found:
                names = ", ".join(_canonical_name(m) for m in missing)
                looked.append(f"{label} {d} (missing {names}[.gz])")
        if files is not None:
            break

    if files is None:
        if not download:
            raise DataError(
                f"{spec.name} not found; looked in: {'; '.join(looked)}; download=False, so "
                f"nothing was downloaded; to fix: {spec.hint}"
            )
        try:
            cache.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file in the way, no permission, ...
            raise DataError(
                f"{spec.name} not found; cannot use the download cache {cache} ({exc.strerror}); "
                f"to fix: pass cache_dir= a writable directory, or {spec.hint}"
            ) from None
        found, missing = _find_parts(cache)
        attempts: list[str] = []
        t = DOWNLOAD_TIMEOUT if timeout is None else float(timeout)
        for part in missing:
            got = _download_part(spec, part, cache, t, attempts)
            if got is None:
                with contextlib.suppress(OSError):
                    cache.rmdir()  # only if empty: leave nothing behind after a failure
                raise DataError(
                    f"{spec.name} not found and could not be downloaded; looked in: "
                    f"{'; '.join(looked)}; tried: {'; '.join(attempts)}; to fix: {spec.hint}"
                )
            found[part], verified[part] = got
        files, from_cache = found, True

    arrays = {}
    for part in _IDX_PARTS:
        path = files[part]
        if part in verified:  # just downloaded and checked
            arrays[part] = _parse_idx(verified.pop(part), path)
            continue
        try:
            data = _read_file_bytes(path)
        except DataError as exc:
            if not from_cache:
                raise
            path.unlink(missing_ok=True)  # ours, and no run could read it
            raise DataError(
                f"{exc}; the bad cached file was deleted; run again to download it anew"
            ) from None
        if verify:
            got = _sha256(data)
            expected = spec.sha256[part]
            if got != expected:
                note = "pass verify=False to load a modified copy"
                if from_cache:
                    path.unlink(missing_ok=True)
                    note = "the bad cached file was deleted; run again to download it anew"
                raise DataError(
                    f"checksum mismatch for {path}: expected SHA-256 {expected} of the "
                    f"uncompressed {spec.name} file, got {got}; {note}"
                )
        arrays[part] = _parse_idx(data, path)

    out = []
    for split in ("train", "t10k"):
        images, labels = arrays[f"{split}-images"], arrays[f"{split}-labels"]
        ipath, lpath = files[f"{split}-images"], files[f"{split}-labels"]
        if images.ndim != 3 or images.dtype != np.uint8 or images.shape[1:] != (28, 28):
            raise DataError(
                f"{ipath}: images of shape {images.shape} and type {images.dtype}; "
                "expected uint8 (n, 28, 28)"
            )
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise DataError(
                f"{lpath}: labels of shape {labels.shape} and type {labels.dtype}; "
                "expected uint8 (n,)"
            )
        if len(labels) != len(images):
            raise DataError(
                f"{lpath}: {len(labels)} labels for {len(images)} images in {ipath}; "
                "expected one label per image"
            )
        if labels.size and labels.max() > 9:
            raise DataError(f"{lpath}: label {int(labels.max())} found; expected 0..9")
        out.append((images.reshape(len(images), -1), labels.astype(np.int64)))
    return out[0], out[1]


_LOADER_DOC = """Load {name}: ``(X_train, y_train), (X_test, y_test)``.

    Parameters
    ----------
    data_dir : str or os.PathLike, optional
        A directory holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each raw or ``.gz``
        (also accepted: a ``{key}`` subdirectory of it).
    download : bool, default True
        Download the files into the cache when they are found nowhere else.
    cache_dir : str or os.PathLike, optional
        Cache directory; default ``$BACKPROP_CACHE``, else ``~/.cache/backprop``. Files go to
        its ``{key}`` subdirectory.
    verify : bool, default True
        Check the SHA-256 of each file's uncompressed content against the canonical value
        (about 0.1 s); ``False`` lets a modified copy load.
    timeout : float, optional
        Seconds a download may wait on the network; default :data:`DOWNLOAD_TIMEOUT`.

    Search order: ``data_dir``, ``$BACKPROP_DATA`` (the directory itself, then ``{key}``
    inside it){system}, the cache, then a download from the mirrors. A downloaded file is
    written to a temporary file, checked, then renamed; a checksum mismatch deletes it and
    raises :class:`DataError` naming the file, the expected and the computed hash.

    Returns
    -------
    (X_train, y_train), (X_test, y_test)
        ``X``: uint8 pixels 0..255 of shape ``(n, 784)`` (28x28 images flattened row by row;
        {n_train} training and {n_test} test samples); ``y``: int64 labels 0..9{labels}.
        Use :func:`as_float` or :class:`Scale` for floats in [0, 1].

    Raises
    ------
    DataError
        Nothing found and no download possible (the message says where it looked and how to
        fix it), a corrupt or truncated file, or a checksum mismatch.

    Examples
    --------
    >>> (X, y), (X_test, y_test) = {func}(download=False)  # doctest: +SKIP
    >>> X.shape, X.dtype, y[:5]  # doctest: +SKIP
    ((60000, 784), dtype('uint8'), array({first}))
    """


def load_mnist(
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    cache_dir: str | os.PathLike | None = None,
    verify: bool = True,
    timeout: float | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    return _load_idx_set(_MNIST, data_dir, download, cache_dir, verify, timeout)


def load_fashion_mnist(
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
    cache_dir: str | os.PathLike | None = None,
    verify: bool = True,
    timeout: float | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    return _load_idx_set(_FASHION, data_dir, download, cache_dir, verify, timeout)


load_mnist.__doc__ = _LOADER_DOC.format(
    name="MNIST (LeCun, Cortes and Burges), the handwritten digits",
    key="mnist",
    system="",
    n_train="60,000",
    n_test="10,000",
    labels="",
    func="load_mnist",
    first="[5, 0, 4, 1, 9]",
)
load_fashion_mnist.__doc__ = _LOADER_DOC.format(
    name="Fashion-MNIST (Xiao, Rasul and Vollgraf 2017), Zalando's article images",
    key="fashion-mnist",
    system=", Debian's ``/usr/share/datasets/fashion-mnist`` "
    "(``apt-get install dataset-fashion-mnist``)",
    n_train="60,000",
    n_test="10,000",
    labels=" (names in :data:`FASHION_MNIST_CLASSES`)",
    func="load_fashion_mnist",
    first="[9, 0, 0, 3, 0]",
)


# --------------------------------------------------------------------------------------------
# Small data sets
# --------------------------------------------------------------------------------------------


def load_digits(*, dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 handwritten digits (UCI optdigits test part), no download.

    Parameters
    ----------
    dtype : float32 or float64, default float32
        Type of ``X``; the values are small integers, exact in either.

    Returns
    -------
    X : ndarray of shape (1797, 64)
        Pixel counts 0..16, 8x8 images flattened row by row.
    y : ndarray of shape (1797,), int64
        Labels 0..9.

    Examples
    --------
    >>> X, y = load_digits()
    >>> X.shape, X.dtype, float(X.max()), y[:5]
    ((1797, 64), dtype('float32'), 16.0, array([0, 1, 2, 3, 4]))
    """
    dt = _float_dtype(dtype)
    from sklearn.datasets import load_digits as _sk_load_digits  # slow import, so here

    bunch = _sk_load_digits()
    return bunch.data.astype(dt), bunch.target.astype(np.int64)


_XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
_XOR_Y = np.array([0, 1, 1, 0], dtype=np.int64)


def make_xor(
    n: int | None = None, noise: float = 0.0, seed: Any = None, *, dtype: Any = np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """The XOR problem: ``y = x1 XOR x2`` on the corners of the unit square.

    Parameters
    ----------
    n : int, optional
        Number of samples. Default: the 4 corners ``(0,0), (0,1), (1,0), (1,1)`` in that order.
        Otherwise the corners repeated as evenly as possible (each ``n // 4`` or one more
        time), in a random order.
    noise : float, default 0.0
        Standard deviation of Gaussian noise added to each coordinate (the label stays the
        corner's).
    seed : None, int or numpy.random.Generator
        Source of the order and the noise.
    dtype : float32 or float64, default float32
        Type of ``X``.

    Returns
    -------
    X : ndarray of shape (n, 2)
    y : ndarray of shape (n,), int64, values 0 and 1

    Examples
    --------
    >>> X, y = make_xor()
    >>> X.tolist(), y.tolist()
    ([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], [0, 1, 1, 0])
    """
    dt = _float_dtype(dtype)
    if not (isinstance(noise, (int, float, np.number)) and math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise={noise!r} is not valid; expected a finite number >= 0")
    rng = _rng(seed)
    if n is None:
        idx = np.arange(4)
    else:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n={n!r} is not valid; expected None or an int >= 1")
        idx = rng.permutation(np.arange(int(n)) % 4)
    X = _XOR_X[idx]
    if noise > 0:
        X = X + rng.normal(0.0, float(noise), size=X.shape)
    return X.astype(dt), _XOR_Y[idx].copy()


def make_curve(
    n: int = 100, seed: Any = None, *, noise: float = 0.1, dtype: Any = np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """The notes' curve-fitting example: ``y = x + 0.3 sin(2 pi x) + eps``.

    ``x`` is uniform on [0, 1] and ``eps`` uniform on [-noise, noise] (the notes: [-0.1, 0.1]).
    The draws are made in float64 and then cast, so one seed gives the same data in float32
    and float64 up to rounding.

    Parameters
    ----------
    n : int, default 100
        Number of samples.
    seed : None, int or numpy.random.Generator
        Source of ``x`` and ``eps``.
    noise : float, default 0.1
        Half-width of the uniform noise.
    dtype : float32 or float64, default float32

    Returns
    -------
    X : ndarray of shape (n, 1)
        The inputs ``x``, in the order drawn.
    y : ndarray of shape (n,)
        The noisy targets.

    Examples
    --------
    >>> X, y = make_curve(5, seed=0)
    >>> X.shape, y.shape, X.dtype
    ((5, 1), (5,), dtype('float32'))
    """
    dt = _float_dtype(dtype)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n={n!r} is not valid; expected an int >= 1")
    if not (isinstance(noise, (int, float, np.number)) and math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise={noise!r} is not valid; expected a finite number >= 0")
    rng = _rng(seed)
    x = rng.uniform(0.0, 1.0, size=int(n))
    eps = rng.uniform(-float(noise), float(noise), size=int(n))
    y = x + 0.3 * np.sin(2.0 * np.pi * x) + eps
    return x.reshape(-1, 1).astype(dt), y.astype(dt)


# --------------------------------------------------------------------------------------------
# The user's own tables
# --------------------------------------------------------------------------------------------


class Table(NamedTuple):
    """A table read by :func:`load_table`.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features)
        Features, floating.
    y : ndarray of shape (n_samples,) or (n_samples, n_targets), or None
        Labels as found: int64 when every value is an integer, floating when numeric, str when
        any label is not a number; None when no label column was asked for.
    feature_names : list of str or None
        From the CSV header; None without one.
    label_name : str or None
        Name of the label column, when the file names it.
    image_shape : tuple of int or None
        For an NPZ whose ``X`` holds images ``(n, h, w)``: ``(h, w)`` (``X`` is flattened).
    """

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list[str] | None
    label_name: str | None
    image_shape: tuple[int, ...] | None


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity|nan)$")


def _is_number(s: str) -> bool:
    return bool(_NUMBER.match(s.strip().lower()))


def _labels_from_values(values: list, source: str) -> np.ndarray:
    """Labels as int64 if all integers, float64 if all numeric, else str."""
    if all(_is_number(v) for v in values):
        y = np.array([float(v) for v in values])
        if not np.all(np.isfinite(y)):
            bad = int(np.flatnonzero(~np.isfinite(y))[0])
            raise DataError(f"{source}: label {values[bad]!r} of sample {bad + 1} is not finite")
        if np.all(y == np.round(y)) and np.all(np.abs(y) < 2**53):
            return y.astype(np.int64)
        return y
    return np.array([v.strip() for v in values], dtype=str)


def _sniff_delimiter(line: str) -> str | None:
    for d in (",", ";", "\t", "|"):
        if d in line:
            return d
    return None  # whitespace


def _is_header(rows: list[tuple[int, list[str]]]) -> bool:
    """The first row is a header when one of its cells is not a number where the next row's
    is (a column of class names is not a header); a lone row is one when any cell is text."""
    first = rows[0][1]
    if len(rows) == 1:
        return not all(_is_number(c) for c in first)
    second = rows[1][1]
    return any(not _is_number(a) and _is_number(b) for a, b in zip(first, second, strict=True))


def _split_lines(text: str, delimiter: str | None, path) -> list[tuple[int, list[str]]]:
    """Non-blank, non-comment lines split into cells, with their 1-based line numbers.

    One sample per line: each line is parsed on its own, so a quote left open is an error that
    names its line (the csv module would read on into the next lines).
    """
    lines = [
        (i, line)
        for i, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if delimiter is None or delimiter == " ":
        return [(i, line.split()) for i, line in lines]
    out = []
    for i, line in lines:
        try:
            cells = next(
                csv.reader([line], delimiter=delimiter, skipinitialspace=True, strict=True)
            )
        except csv.Error as exc:
            raise DataError(f"{path}: line {i}: {exc} (a quote left open?)") from None
        out.append((i, [c.strip() for c in cells]))
    return out


def _resolve_column(label_column: int | str, names: list[str] | None, n_cols: int, src) -> int:
    if isinstance(label_column, str):
        if names is None:
            raise DataError(
                f"{src}: label_column={label_column!r} is a name but the file has no header; "
                f"expected an index in [-{n_cols}, {n_cols - 1}]"
            )
        if label_column not in names:
            raise DataError(
                f"{src}: label column {label_column!r} not found; the columns are "
                f"{', '.join(repr(n) for n in names)}"
            )
        return names.index(label_column)
    if isinstance(label_column, bool) or not isinstance(label_column, (int, np.integer)):
        raise TypeError(
            f"label_column={label_column!r} is not valid; expected an int index, a column "
            "name or None"
        )
    if not -n_cols <= label_column < n_cols:
        raise DataError(
            f"{src}: label column {label_column} does not exist; the file has {n_cols} "
            f"columns (expected an index in [-{n_cols}, {n_cols - 1}])"
        )
    return int(label_column) % n_cols


def _read_csv(path: Path, label_column, delimiter, dt: np.dtype) -> Table:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})"
        ) from None
    if delimiter is None:
        first = next(
            (ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), ""
        )
        delimiter = _sniff_delimiter(first)
    rows = _split_lines(text, delimiter, path)
    if not rows:
        raise DataError(f"{path}: the file is empty; expected rows of numbers")
    if all(len(cells) > 1 and cells[-1] == "" for _, cells in rows):
        rows = [(i, cells[:-1]) for i, cells in rows]  # a delimiter ending every line
    n_cols = len(rows[0][1])
    for lineno, cells in rows:
        if len(cells) != n_cols:
            raise DataError(
                f"{path}: line {lineno} has {len(cells)} cells; expected {n_cols} like the "
                "first row (ragged rows)"
            )
    names = None
    if _is_header(rows):
        names = rows[0][1]
        rows = rows[1:]
        if not rows:
            raise DataError(f"{path}: a header but no data rows")
    col = None if label_column is None else _resolve_column(label_column, names, n_cols, path)
    feat_cols = [j for j in range(n_cols) if j != col]
    if not feat_cols:
        raise DataError(f"{path}: only the label column; expected at least one feature column")
    X = np.empty((len(rows), len(feat_cols)), dtype=np.float64)
    for r, (lineno, cells) in enumerate(rows):
        for k, j in enumerate(feat_cols):
            cell = cells[j]
            if not _is_number(cell):
                name = f" ({names[j]!r})" if names else ""
                what = "empty cell" if not cell else f"{cell!r} is not a number"
                raise DataError(f"{path}: line {lineno}, column {j + 1}{name}: {what}")
            v = float(cell)
            if not math.isfinite(v):
                name = f" ({names[j]!r})" if names else ""
                raise DataError(
                    f"{path}: line {lineno}, column {j + 1}{name}: {cell!r} is not finite; "
                    "expected a finite number"
                )
            X[r, k] = v
    y = None
    if col is not None:
        values = [cells[col] for _, cells in rows]
        for (lineno, _), v in zip(rows, values, strict=True):
            if not v:
                raise DataError(f"{path}: line {lineno}, column {col + 1}: empty label")
        y = _labels_from_values(values, str(path))
        if y.dtype.kind == "f":
            y = y.astype(dt)
    return Table(
        X.astype(dt),
        y,
        [names[j] for j in feat_cols] if names else None,
        names[col] if names and col is not None else None,
        None,
    )


def _check_numeric(a: np.ndarray, what: str) -> None:
    if a.dtype.kind not in "biuf":
        raise DataError(f"{what} has dtype {a.dtype}; expected numbers")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        bad = np.argwhere(~np.isfinite(a))[0]
        raise DataError(f"{what} holds a non-finite value at index {tuple(int(i) for i in bad)}")


def _numeric_labels(y: np.ndarray, dt: np.dtype, where: str) -> np.ndarray:
    """Labels from a numeric column: whole numbers (exactly representable, so below 2**53 in
    magnitude) become int64 class labels, anything else stays a float target."""
    if y.dtype.kind == "f":
        if y.ndim == 1 and np.all(y == np.round(y)) and np.all(np.abs(y) < 2**53):
            return y.astype(np.int64)
        return y.astype(dt)
    if y.dtype.kind == "u" and y.size and int(y.max()) > np.iinfo(np.int64).max:
        raise DataError(
            f"{where}: label {int(y.max())} is larger than 2**63 - 1; expected int64 labels"
        )
    return y.astype(np.int64)


def _np_load(path: Path, kind: str):
    """``np.load`` without pickles, every failure a DataError naming the file."""
    try:
        return np.load(path, allow_pickle=False)
    except MemoryError:
        raise DataError(
            f"{path}: the .{kind} header announces an array too large to load"
        ) from None
    except Exception as exc:  # ValueError, OSError, EOFError, BadZipFile, ...
        msg = first_line(exc)
        raise DataError(f"{path}: not a readable .{kind} file ({msg})") from None


def _load_npy(path: Path, label_column, dt: np.dtype) -> Table:
    a = _np_load(path, "npy")
    if not isinstance(a, np.ndarray):  # np.load gave an .npz archive
        a.close()
        raise DataError(f"{path}: an .npz archive, not an .npy array; rename it to .npz")
    if a.ndim != 2:
        raise DataError(f"{path}: array of shape {a.shape}; expected 2-D (samples, columns)")
    if a.shape[0] == 0:
        raise DataError(f"{path}: the array has no rows; expected at least one sample")
    if a.shape[1] == 0:
        raise DataError(f"{path}: the array has no columns; expected at least one feature column")
    _check_numeric(a, str(path))
    if label_column is None:
        return Table(a.astype(dt), None, None, None, None)
    col = _resolve_column(label_column, None, a.shape[1], path)
    X = np.delete(a, col, axis=1)
    if X.shape[1] == 0:
        raise DataError(f"{path}: only the label column; expected at least one feature column")
    y = _numeric_labels(a[:, col], dt, str(path))
    return Table(X.astype(dt), y, None, None, None)


def _load_npz(path: Path, dt: np.dtype) -> Table:
    z = _np_load(path, "npz")
    if isinstance(z, np.ndarray):
        raise DataError(f"{path}: an .npy array, not an .npz archive; rename it to .npy")
    try:
        with z:
            keys = set(z.files)
            for xk, yk in (("X", "y"), ("data", "target")):
                if xk in keys:
                    X = z[xk]
                    y = z[yk] if yk in keys else None
                    break
            else:
                raise DataError(
                    f"{path}: arrays {sorted(keys)}; expected 'X' and 'y' or 'data' and 'target'"
                )
    except DataError:
        raise
    except MemoryError:
        raise DataError(f"{path}: an array of the archive is too large to load") from None
    except Exception as exc:  # a damaged member: ValueError, BadZipFile, zlib.error, ...
        msg = first_line(exc)
        raise DataError(f"{path}: not a readable .npz file ({msg})") from None
    if X.ndim < 2 or X.shape[0] == 0 or X[0].size == 0:
        raise DataError(
            f"{path}: {xk} of shape {X.shape}; expected (samples, features...) with at least "
            "one sample and one feature"
        )
    _check_numeric(X, f"{path}: {xk}")
    image_shape = tuple(int(s) for s in X.shape[1:]) if X.ndim > 2 else None
    X = X.reshape(len(X), -1)
    if y is not None:
        if y.ndim == 0 or len(y) != len(X):
            got = "a single value" if y.ndim == 0 else f"{len(y)} labels"
            raise DataError(f"{path}: {yk} holds {got} for {len(X)} samples; expected one each")
        if y.dtype.kind in "US":
            if y.ndim != 1:
                raise DataError(
                    f"{path}: {yk} of shape {y.shape} holds words; expected one word label "
                    "per sample (shape (n,))"
                )
            if y.dtype.kind == "S":
                try:
                    y = np.char.decode(y, "utf-8")
                except UnicodeDecodeError as exc:
                    raise DataError(
                        f"{path}: {yk} holds bytes that are not UTF-8 text ({exc.reason}); "
                        "expected word labels as str or UTF-8 bytes"
                    ) from None
            y = y.astype(str)
        else:
            _check_numeric(y, f"{path}: {yk}")
            y = _numeric_labels(y, dt, f"{path}: {yk}")
    return Table(X.astype(dt), y, None, None, image_shape)


def load_table(
    path: str | os.PathLike,
    label_column: int | str | None = -1,
    delimiter: str | None = None,
    *,
    dtype: Any = np.float32,
) -> Table:
    """Read the user's own data: CSV (or other delimited text), NPY or NPZ.

    - **CSV / text** (any suffix but ``.npy``/``.npz``): one sample per line; blank lines and
      lines starting with ``#`` are skipped. The delimiter is guessed from the first line
      (``,`` then ``;``, tab, ``|``, else whitespace) unless given; a delimiter ending every
      line (spreadsheet exports) adds no column. A first row with any cell that is not a
      number is a header. Feature cells must be finite numbers; labels may be numbers or
      words (class names).
    - **NPY**: a 2-D numeric array; ``label_column`` picks the label column.
    - **NPZ**: arrays ``X`` and ``y`` (or ``data`` and ``target``); ``label_column`` is
      ignored. An ``X`` of images ``(n, h, w)`` is flattened and ``image_shape`` set.

    Parameters
    ----------
    path : str or os.PathLike
    label_column : int, str or None, default -1
        Index (negative counts from the end) or header name of the label column; None: no
        labels (``y`` is None), e.g. for data to predict.
    delimiter : str, optional
        Cell separator for text files; default: guessed.
    dtype : float32 or float64, default float32
        Type of ``X`` (and of ``y`` when the labels are non-integer numbers).

    Returns
    -------
    Table
        ``(X, y, feature_names, label_name, image_shape)``.

    Raises
    ------
    DataError
        Empty file, ragged rows, a non-numeric or non-finite feature cell (the message names
        the line and the column), a missing label column, or an unreadable NPY/NPZ.

    Examples
    --------
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> _ = open(p, "w").write("a,b,label\\n1,2,cat\\n3,4,dog\\n")
    >>> t = load_table(p, "label")
    >>> t.X.tolist(), t.y.tolist(), t.feature_names
    ([[1.0, 2.0], [3.0, 4.0]], ['cat', 'dog'], ['a', 'b'])
    """
    dt = _float_dtype(dtype)
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise DataError(f"{p}: the file is empty; expected a table")
    suffix = p.suffix.lower()
    with np.errstate(over="ignore"):  # an overflowing cast is reported below, by position
        if suffix == ".npy":
            table = _load_npy(p, label_column, dt)
        elif suffix == ".npz":
            table = _load_npz(p, dt)
        else:
            table = _read_csv(p, label_column, delimiter, dt)
    for what, arr in (("feature", table.X), ("label", table.y)):
        # finite in the file but not in dt (1e300 in float32): say so, do not train on inf
        if arr is not None and arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            bad = np.argwhere(~np.isfinite(arr.reshape(len(arr), -1)))[0]
            raise DataError(
                f"{p}: a {what} value at row {bad[0] + 1}, column {bad[1] + 1} is beyond the "
                f"range of {dt.name}: expected values within +-{np.finfo(dt).max:.3g} "
                "(or dtype=float64)"
            )
    return table


# --------------------------------------------------------------------------------------------
# Labels and splits
# --------------------------------------------------------------------------------------------


def encode_labels(y: Any) -> tuple[np.ndarray, list]:
    """Class labels -> indices ``0 .. K-1`` and the sorted list of classes.

    Parameters
    ----------
    y : array_like of shape (n,)
        Labels of any sortable kind (ints, strings).

    Returns
    -------
    indices : ndarray of shape (n,), int64
        ``classes[indices[i]] == y[i]``.
    classes : list
        Sorted distinct labels as plain Python values (JSON-able).

    Examples
    --------
    >>> encode_labels(["dog", "cat", "dog"])
    (array([1, 0, 1]), ['cat', 'dog'])
    """
    a = np.asarray(y)
    if a.ndim != 1:
        raise ValueError(f"labels of shape {a.shape}; expected a 1-D array")
    classes, idx = np.unique(a, return_inverse=True)
    return idx.astype(np.int64).reshape(-1), classes.tolist()


def train_test_split(
    X: np.ndarray,
    y: np.ndarray,
    test_size: float = 0.2,
    seed: Any = 0,
    *,
    stratify: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic split into training and test samples, stratified by class.

    The test part has ``n_test = round(test_size * n)`` samples (at least 1, at most
    ``n - 1``). With ``stratify``, class ``c`` of ``n_c`` samples gives
    ``floor(test_size * n_c)`` of them, and the samples still missing go one each to the
    classes with the largest remainders (first to classes that keep a training sample; ties
    broken at random), so the class proportions are kept. Within a class the samples are
    chosen at random. Both parts keep the original order.

    Parameters
    ----------
    X : ndarray of shape (n, ...)
    y : ndarray of shape (n, ...)
    test_size : float, default 0.2
        Fraction in (0, 1).
    seed : None, int or numpy.random.Generator, default 0
        The same seed gives the same split.
    stratify : bool, default True
        Use for class labels (``y`` 1-D); set False for regression targets.

    Returns
    -------
    X_train, X_test, y_train, y_test

    Examples
    --------
    >>> X = np.arange(10).reshape(10, 1); y = np.array([0] * 5 + [1] * 5)
    >>> _, _, y_tr, y_te = train_test_split(X, y, 0.4, seed=0)
    >>> np.bincount(y_te).tolist()
    [2, 2]
    """
    if not (isinstance(test_size, (int, float, np.floating)) and 0 < test_size < 1):
        raise ValueError(f"test_size={test_size!r} is not valid; expected a fraction in (0, 1)")
    X, y = np.asarray(X), np.asarray(y)  # lists too
    if X.ndim == 0 or y.ndim == 0:
        raise ValueError("X and y must hold one row per sample; got a single value")
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} samples and y {len(y)}; expected the same number")
    n = len(y)
    if n < 2:
        raise ValueError(f"{n} samples cannot be split; expected at least 2")
    rng = _rng(seed)
    n_test = min(max(int(math.floor(test_size * n + 0.5)), 1), n - 1)
    if stratify:
        if y.ndim != 1:
            raise ValueError(
                f"y of shape {y.shape} cannot stratify the split: expected 1-D class labels, or "
                "stratify=False (for one-hot rows, stratify by y.argmax(axis=1) yourself)"
            )
        _, inv = np.unique(y, return_inverse=True)
        inv = inv.reshape(-1)
        counts = np.bincount(inv)
        exact = test_size * counts
        quota = np.floor(exact).astype(np.int64)
        rest = n_test - int(quota.sum())
        if rest > 0:
            keeps_one = counts - quota >= 2
            # lexsort: last key first -> keeps a training sample, largest remainder, random.
            order = np.lexsort((rng.random(len(counts)), -(exact - quota), ~keeps_one))
            quota[order[:rest]] += 1
        test = [rng.permutation(np.flatnonzero(inv == c))[:q] for c, q in enumerate(quota)]
        test_idx = np.sort(np.concatenate(test))
    else:
        test_idx = np.sort(rng.permutation(n)[:n_test])
    mask = np.zeros(n, dtype=bool)
    mask[test_idx] = True
    return X[~mask], X[mask], y[~mask], y[mask]


# --------------------------------------------------------------------------------------------
# Dataset and the dispatcher
# --------------------------------------------------------------------------------------------

_TASKS = ("classification", "regression")


@dataclass
class Dataset:
    """A data set ready for training: arrays plus what the CLI, the model file and plots need.

    Attributes
    ----------
    name : str
        ``"mnist"``, ``"digits"``, ... or the file's name.
    task : {"classification", "regression"}
    X_train : ndarray of shape (n_train, n_features)
        Raw features (``uint8`` pixels for MNIST, floating otherwise).
    y_train : ndarray
        Classification: int64 class indices of shape ``(n_train,)``. Regression: floating
        targets ``(n_train,)`` or ``(n_train, n_targets)``.
    X_test, y_test : ndarray or None
        None when the source has no test set (XOR).
    classes : list or None
        Classification: ``classes[k]`` is the label of class index ``k`` (JSON-able).
    feature_names : list of str or None
    image_shape : tuple of int or None
        ``(rows, cols)`` when each sample is an image flattened row by row, e.g. ``(28, 28)``.
    value_range : tuple of float or None
        The range the raw features can take when known (``(0, 255)`` for MNIST, ``(0, 16)`` for
        digits): ``Scale(value_range[1])`` maps them to [0, 1].

    Examples
    --------
    >>> ds = load_dataset("xor")
    >>> ds.summary()
    'xor: classification, 4 training samples, 2 features, 2 classes'
    """

    name: str
    task: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    classes: list | None = None
    feature_names: list[str] | None = None
    image_shape: tuple[int, ...] | None = None
    value_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.task not in _TASKS:
            raise ValueError(f"task={self.task!r} is not valid; expected one of {_TASKS}")
        if self.X_train.ndim != 2:
            raise ValueError(f"X_train of shape {self.X_train.shape}; expected 2-D")
        if (self.X_test is None) != (self.y_test is None):
            raise ValueError("X_test and y_test must both be given or both be None")
        for X, y, part in (
            (self.X_train, self.y_train, "train"),
            (self.X_test, self.y_test, "test"),
        ):
            if X is None:
                continue
            if X.ndim != 2 or X.shape[1] != self.X_train.shape[1]:
                raise ValueError(
                    f"X_{part} of shape {X.shape}; expected (n, {self.X_train.shape[1]})"
                )
            if len(y) != len(X):
                raise ValueError(f"y_{part} has {len(y)} rows for {len(X)} samples")
        if self.task == "classification" and self.classes is None:
            raise ValueError("a classification Dataset needs classes")
        if self.image_shape is not None and math.prod(self.image_shape) != self.n_features:
            raise ValueError(
                f"image_shape {self.image_shape} does not match {self.n_features} features"
            )

    @property
    def n_features(self) -> int:
        """Number of input features (columns of ``X``)."""
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int | None:
        """Number of classes, or None for regression."""
        return None if self.classes is None else len(self.classes)

    def summary(self) -> str:
        """One line describing the data set."""
        parts = [f"{self.name}: {self.task}", f"{len(self.X_train)} training"]
        if self.X_test is not None:
            parts[-1] += f" / {len(self.X_test)} test"
        parts[-1] += " samples"
        parts.append(f"{self.n_features} feature{'s' if self.n_features != 1 else ''}")
        if self.classes is not None:
            parts.append(f"{len(self.classes)} classes")
        if self.image_shape is not None:
            parts.append("images " + "x".join(str(s) for s in self.image_shape))
        return ", ".join(parts)


#: Built-in data set names accepted by :func:`load_dataset`.
DATASET_NAMES = ("digits", "mnist", "fashion-mnist", "xor", "curve")
_ALIASES = {"fashion_mnist": "fashion-mnist", "fashion": "fashion-mnist"}

_ACCEPTED_KW = {
    "digits": {"dtype", "test_size", "seed"},
    # seed and dtype are accepted everywhere so a caller can pass them whatever the source;
    # MNIST has nothing random and keeps its raw uint8 pixels.
    "mnist": {"data_dir", "download", "cache_dir", "verify", "timeout", "seed", "dtype"},
    "fashion-mnist": {"data_dir", "download", "cache_dir", "verify", "timeout", "seed", "dtype"},
    "xor": {"n", "noise", "seed", "dtype"},
    "curve": {"n", "n_test", "noise", "seed", "dtype"},
    "table": {"label_column", "delimiter", "dtype", "test_size", "seed", "task", "test_path"},
}


def _check_kw(source: str, kw: dict) -> None:
    extra = sorted(set(kw) - _ACCEPTED_KW[source])
    if extra:
        accepted = ", ".join(sorted(_ACCEPTED_KW[source]))
        raise TypeError(
            f"load_dataset({source!r}) got unexpected keyword {extra[0]!r}; accepted: {accepted}"
        )


def _table_task(y: np.ndarray, task: str | None, path) -> str:
    if task is not None:
        if task not in _TASKS:
            raise ValueError(f"task={task!r} is not valid; expected one of {_TASKS}")
        if task == "regression" and y.dtype.kind not in "iuf":
            raise DataError(
                f"{path}: labels like {str(y.flat[0])!r} are not numbers; cannot regress them"
            )
        return task
    return "classification" if y.dtype.kind in "iuU" and y.ndim == 1 else "regression"


def _check_has_labels(t: Table, path) -> None:
    if t.y is None:  # an .npz with X (or data) alone
        raise DataError(
            f"{path}: no labels; expected an array 'y' (or 'target') beside the features"
        )


def _dataset_from_table(path: Path, kw: dict) -> Dataset:
    dtype = _float_dtype(kw.get("dtype", np.float32))
    label_column = kw.get("label_column", -1)
    if label_column is None:
        raise ValueError("label_column=None gives no labels; load_dataset needs a label column")
    t = load_table(path, label_column, kw.get("delimiter"), dtype=dtype)
    _check_has_labels(t, path)
    task = _table_task(t.y, kw.get("task"), path)
    test_path = kw.get("test_path")
    if task == "regression":
        y = t.y.astype(dtype)
    else:
        y = t.y
    if test_path is not None:
        tt = load_table(test_path, label_column, kw.get("delimiter"), dtype=dtype)
        _check_has_labels(tt, test_path)
        _table_task(tt.y, task, test_path)  # regression targets must be numbers here too
        if tt.X.shape[1] != t.X.shape[1]:
            raise DataError(
                f"{test_path}: {tt.X.shape[1]} features; expected {t.X.shape[1]} like {path}"
            )
        X_tr, X_te, y_tr = t.X, tt.X, y
        y_te = tt.y.astype(dtype) if task == "regression" else tt.y
    else:
        X_tr, X_te, y_tr, y_te = train_test_split(
            t.X,
            y,
            kw.get("test_size", 0.2),
            kw.get("seed", 0),
            stratify=task == "classification",
        )
    classes = None
    if task == "classification":
        if (y_tr.dtype.kind == "U") != (y_te.dtype.kind == "U"):
            raise DataError(
                f"{test_path}: labels like {y_te[0]!r}; expected labels like {y_tr[0]!r} as in "
                f"{path}"
            )
        _, classes = encode_labels(np.concatenate([y_tr, y_te]))
        lookup = {c: i for i, c in enumerate(classes)}
        y_tr = np.array([lookup[v] for v in y_tr.tolist()], dtype=np.int64)
        y_te = np.array([lookup[v] for v in y_te.tolist()], dtype=np.int64)
    return Dataset(
        name=path.name,
        task=task,
        X_train=X_tr,
        y_train=y_tr,
        X_test=X_te,
        y_test=y_te,
        classes=classes,
        feature_names=t.feature_names,
        image_shape=t.image_shape,
    )


def load_dataset(name_or_path: str | os.PathLike, **kw: Any) -> Dataset:
    """Load a built-in data set by name, or the user's table from a path (used by the CLI).

    ============== ============================================ =================================
    name           content                                      keywords
    ============== ============================================ =================================
    digits         scikit-learn's 8x8 digits, stratified split  dtype, test_size=0.2, seed=0
    mnist          MNIST 60,000 / 10,000, uint8                 data_dir, download, cache_dir,
                                                                verify, timeout (seed, dtype:
                                                                accepted, unused)
    fashion-mnist  Fashion-MNIST 60,000 / 10,000, uint8         as mnist
    xor            the 4 XOR points (no test set)               n, noise, seed=0, dtype
    curve          ``y = x + 0.3 sin(2 pi x) + eps``            n=100, n_test=100, noise, seed=0,
                                                                dtype
    a path         CSV/NPY/NPZ via :func:`load_table`; without  label_column, delimiter, dtype,
                   ``test_path``, a deterministic split         task, test_size=0.2, seed=0,
                   (stratified for classification)             test_path
    ============== ============================================ =================================

    A name wins over a file of the same name; write ``./xor`` for the file. For a table, the
    task is classification when the labels are integers or words, regression otherwise
    (``task=`` overrides); class labels become indices into ``Dataset.classes``.

    Parameters
    ----------
    name_or_path : str or os.PathLike
    **kw
        As in the table; an unknown keyword raises TypeError. ``dtype`` (float32 or float64,
        default float32) is the type of floating features and regression targets.

    Returns
    -------
    Dataset

    Examples
    --------
    >>> ds = load_dataset("digits")
    >>> ds.summary()
    'digits: classification, 1438 training / 359 test samples, 64 features, 10 classes, images 8x8'
    """
    if isinstance(name_or_path, str):
        key = name_or_path.strip().lower()
        key = _ALIASES.get(key, key)
    else:
        key = None
    if key in DATASET_NAMES:
        _check_kw(key, kw)
        if key == "digits":
            X, y = load_digits(dtype=kw.get("dtype", np.float32))
            X_tr, X_te, y_tr, y_te = train_test_split(
                X, y, kw.get("test_size", 0.2), kw.get("seed", 0)
            )
            return Dataset(
                "digits",
                "classification",
                X_tr,
                y_tr,
                X_te,
                y_te,
                classes=list(range(10)),
                image_shape=(8, 8),
                value_range=(0.0, 16.0),
            )
        if key in ("mnist", "fashion-mnist"):
            loader = load_mnist if key == "mnist" else load_fashion_mnist
            kw.pop("seed", None)
            _float_dtype(kw.pop("dtype", np.float32))
            (X_tr, y_tr), (X_te, y_te) = loader(**kw)
            classes = list(range(10)) if key == "mnist" else list(FASHION_MNIST_CLASSES)
            return Dataset(
                key,
                "classification",
                X_tr,
                y_tr,
                X_te,
                y_te,
                classes=classes,
                image_shape=(28, 28),
                value_range=(0.0, 255.0),
            )
        if key == "xor":
            kw.setdefault("seed", 0)
            X, y = make_xor(**kw)
            return Dataset(
                "xor", "classification", X, y, classes=[0, 1], feature_names=["x1", "x2"]
            )
        # curve: the training and test samples come from one Generator, one after the other.
        rng = _rng(kw.get("seed", 0))
        dtype, noise = kw.get("dtype", np.float32), kw.get("noise", 0.1)
        X_tr, y_tr = make_curve(kw.get("n", 100), rng, noise=noise, dtype=dtype)
        X_te, y_te = make_curve(kw.get("n_test", 100), rng, noise=noise, dtype=dtype)
        return Dataset("curve", "regression", X_tr, y_tr, X_te, y_te, feature_names=["x"])
    path = Path(name_or_path)
    if not path.is_file():
        raise ValueError(
            f"unknown data set {str(name_or_path)!r}; expected one of "
            f"{', '.join(DATASET_NAMES)} or the path of a .csv, .npy or .npz file"
        )
    _check_kw("table", kw)
    return _dataset_from_table(path, kw)


# --------------------------------------------------------------------------------------------
# Scalers (stored with the model as JSON)
# --------------------------------------------------------------------------------------------


def as_float(X: Any, dtype: Any = np.float32) -> np.ndarray:
    """Images to floats in [0, 1]: unsigned integers are divided by their type's maximum.

    ``uint8`` pixels become ``X / 255``; ``uint16`` ``X / 65535``. Floating and boolean input
    is only cast to ``dtype`` (no copy when it already has it).

    Parameters
    ----------
    X : array_like
    dtype : float32 or float64, default float32

    Returns
    -------
    ndarray of ``dtype``, same shape as ``X``.

    Examples
    --------
    >>> as_float(np.array([[0, 51, 255]], dtype=np.uint8)).tolist()
    [[0.0, 0.20000000298023224, 1.0]]
    """
    dt = _float_dtype(dtype)
    a = np.asarray(X)
    if a.dtype.kind == "u":
        out = a.astype(dt)
        out /= dt.type(np.iinfo(a.dtype).max)
        return out
    if a.dtype.kind in "fb":
        return a.astype(dt, copy=False)
    raise TypeError(
        f"as_float got dtype {a.dtype}; expected unsigned-integer images or floating data"
    )


def _check_matrix(X: Any, what: str, n_features: int | None = None) -> np.ndarray:
    a = np.asarray(X)
    if a.ndim != 2:
        raise ValueError(f"{what}: X of shape {a.shape}; expected 2-D (n_samples, n_features)")
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{what}: X of dtype {a.dtype}; expected numbers")
    if n_features is not None and a.shape[1] != n_features:
        raise ValueError(f"{what}: X has {a.shape[1]} features; expected {n_features}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ValueError(f"{what}: X holds NaN or inf; expected finite values")
    return a


def _out_dtype(a: np.ndarray, dtype: Any) -> np.dtype:
    if dtype is not None:
        return _float_dtype(dtype)
    return a.dtype if a.dtype in _FLOAT_DTYPES else np.dtype(np.float32)


class Standardizer:
    """Per-feature standardisation ``x' = (x - mean) / std``, fitted on the training data.

    ``std`` is the population standard deviation (``ddof=0``). A feature whose std is below
    ``min_std`` (a constant feature, such as MNIST's border pixels) gets ``std = 1``: it is only
    centred, so it neither divides by zero nor blows up on new data.

    Statistics are accumulated in float64 (in blocks of rows, so no float64 copy of the data
    is made) and stored as float64; :meth:`transform` returns the input's float dtype
    (float32 stays float32, float64 stays float64; other input gives float32 unless ``dtype``
    is given).

    Parameters
    ----------
    min_std : float, default 1e-8
        The std floor below which a feature counts as constant.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,), float64
    std_ : ndarray of shape (n_features,), float64, every value >= min_std

    Examples
    --------
    >>> s = Standardizer().fit(np.array([[1.0, 5.0], [3.0, 5.0]], dtype=np.float32))
    >>> s.transform(np.array([[3.0, 6.0]], dtype=np.float32))
    array([[1., 1.]], dtype=float32)
    >>> Standardizer.from_config(s.to_config()).std_.tolist()
    [1.0, 1.0]
    """

    kind = "standardizer"

    def __init__(self, min_std: float = 1e-8) -> None:
        self.min_std = min_std
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None

    def fit(self, X: Any) -> Standardizer:
        """Compute ``mean_`` and ``std_`` of each column of ``X`` (n_samples, n_features)."""
        ok = isinstance(self.min_std, (int, float, np.integer, np.floating)) and not isinstance(
            self.min_std, bool
        )
        if not (ok and np.isfinite(self.min_std) and self.min_std > 0):
            raise ValueError(f"min_std={self.min_std!r} is not valid; expected a number > 0")
        a = _check_matrix(X, "Standardizer.fit")
        if len(a) == 0:
            raise ValueError("Standardizer.fit: X has 0 samples; expected at least 1")
        mean = np.add.reduce(a, axis=0, dtype=np.float64) / len(a)
        ss = np.zeros(a.shape[1], dtype=np.float64)
        step = max(1, (1 << 22) // max(1, a.shape[1]))  # about 32 MB of float64 per block
        for i in range(0, len(a), step):
            d = a[i : i + step].astype(np.float64) - mean
            ss += np.einsum("ij,ij->j", d, d)
        std = np.sqrt(ss / len(a))
        self.mean_ = mean
        self.std_ = np.where(std < self.min_std, 1.0, std)
        return self

    def _fitted(self) -> None:
        if self.mean_ is None or self.std_ is None:
            raise ValueError("this Standardizer is not fitted; call fit(X) first")

    def transform(self, X: Any, dtype: Any = None) -> np.ndarray:
        """``(X - mean_) / std_`` in ``dtype`` (default: X's float dtype, else float32)."""
        self._fitted()
        a = _check_matrix(X, "Standardizer.transform", len(self.mean_))
        dt = _out_dtype(a, dtype)
        out = a.astype(dt)  # always a copy: the caller's array is never changed
        out -= self.mean_.astype(dt)
        out /= self.std_.astype(dt)
        return out

    def fit_transform(self, X: Any, dtype: Any = None) -> np.ndarray:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X, dtype)

    def inverse_transform(self, X: Any, dtype: Any = None) -> np.ndarray:
        """``X * std_ + mean_``: back to the original units."""
        self._fitted()
        a = _check_matrix(X, "Standardizer.inverse_transform", len(self.mean_))
        dt = _out_dtype(a, dtype)
        out = a.astype(dt)
        out *= self.std_.astype(dt)
        out += self.mean_.astype(dt)
        return out

    def to_config(self) -> dict:
        """JSON-able ``{"type": "standardizer", "min_std", "mean": [...], "std": [...]}``.

        Floats are written with full float64 precision, so :meth:`from_config` gives back the
        same numbers bit for bit.
        """
        self._fitted()
        return {
            "type": self.kind,
            "min_std": float(self.min_std),
            "mean": self.mean_.tolist(),
            "std": self.std_.tolist(),
        }

    @classmethod
    def from_config(cls, config: dict) -> Standardizer:
        """Rebuild a fitted Standardizer from :meth:`to_config`'s dict."""
        if not isinstance(config, dict) or config.get("type") != cls.kind:
            raise ValueError(
                f"config {_short(config)} is not a Standardizer config; expected type={cls.kind!r}"
            )
        try:
            mean = np.asarray(config["mean"], dtype=np.float64)
            std = np.asarray(config["std"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"Standardizer config lacks valid 'mean' and 'std' ({exc})") from None
        if mean.ndim != 1 or mean.shape != std.shape:
            raise ValueError(
                f"Standardizer config has mean of shape {mean.shape} and std of shape "
                f"{std.shape}; expected two equal 1-D lists"
            )
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            raise ValueError("Standardizer config has non-finite mean or std <= 0")
        s = cls(min_std=float(config.get("min_std", 1e-8)))
        s.mean_, s.std_ = mean, std
        return s

    def __repr__(self) -> str:
        n = "unfitted" if self.mean_ is None else f"n_features={len(self.mean_)}"
        return f"Standardizer({n}, min_std={self.min_std})"


class Scale:
    """Divide every value by one constant: ``x' = x / factor`` (``Scale(255)`` for pixels).

    Like a min-max scaler with the minimum fixed at 0 and one factor for all features, so an
    image keeps its relative intensities.

    Parameters
    ----------
    factor : float, optional
        The divisor. If None, :meth:`fit` sets it: for unsigned-integer data the type's maximum
        (255 for uint8), otherwise the largest absolute value in ``X`` (1 if that is 0).

    Attributes
    ----------
    factor_ : float
        The divisor in use.

    Examples
    --------
    >>> s = Scale(255.0)
    >>> s.transform(np.array([[0, 255]], dtype=np.uint8))
    array([[0., 1.]], dtype=float32)
    >>> Scale.from_config(s.to_config()).factor_
    255.0
    """

    kind = "scale"

    def __init__(self, factor: float | None = None) -> None:
        if factor is not None:
            self._check_factor(factor)
        self.factor = factor
        self.factor_: float | None = None if factor is None else float(factor)

    @staticmethod
    def _check_factor(factor: Any) -> None:
        ok = isinstance(factor, (int, float, np.number)) and not isinstance(factor, bool)
        if not (ok and math.isfinite(factor) and factor > 0):
            raise ValueError(f"factor={factor!r} is not valid; expected a finite number > 0")

    def fit(self, X: Any) -> Scale:
        """Set ``factor_`` (only when no ``factor`` was given)."""
        a = _check_matrix(X, "Scale.fit")
        if self.factor is not None:
            self.factor_ = float(self.factor)
        elif a.dtype.kind == "u":
            self.factor_ = float(np.iinfo(a.dtype).max)
        else:
            # not np.abs: it wraps the most negative integer (-128 in int8) to itself
            m = max(abs(float(a.max())), abs(float(a.min()))) if a.size else 0.0
            self.factor_ = m if m > 0 else 1.0
        return self

    def _fitted(self) -> None:
        if self.factor_ is None:
            raise ValueError("this Scale has no factor; give one or call fit(X) first")

    def transform(self, X: Any, dtype: Any = None) -> np.ndarray:
        """``X / factor_`` in ``dtype`` (default: X's float dtype, else float32)."""
        self._fitted()
        a = _check_matrix(X, "Scale.transform")
        dt = _out_dtype(a, dtype)
        out = a.astype(dt)
        out /= dt.type(self.factor_)
        return out

    def fit_transform(self, X: Any, dtype: Any = None) -> np.ndarray:
        """``fit(X)`` then ``transform(X)``."""
        return self.fit(X).transform(X, dtype)

    def inverse_transform(self, X: Any, dtype: Any = None) -> np.ndarray:
        """``X * factor_``."""
        self._fitted()
        a = _check_matrix(X, "Scale.inverse_transform")
        dt = _out_dtype(a, dtype)
        out = a.astype(dt)
        out *= dt.type(self.factor_)
        return out

    def to_config(self) -> dict:
        """JSON-able ``{"type": "scale", "factor": float}``."""
        self._fitted()
        return {"type": self.kind, "factor": float(self.factor_)}

    @classmethod
    def from_config(cls, config: dict) -> Scale:
        """Rebuild from :meth:`to_config`'s dict."""
        if not isinstance(config, dict) or config.get("type") != cls.kind:
            raise ValueError(
                f"config {_short(config)} is not a Scale config; expected type={cls.kind!r}"
            )
        if "factor" not in config:
            raise ValueError("Scale config lacks 'factor'")
        return cls(config["factor"])

    def __repr__(self) -> str:
        return f"Scale(factor={self.factor_})"


_SCALERS = {Standardizer.kind: Standardizer, Scale.kind: Scale}


def _short(obj: Any) -> str:
    s = repr(obj)
    return s if len(s) <= 60 else s[:57] + "..."


def scaler_from_config(config: dict | None) -> Standardizer | Scale | None:
    """Rebuild whichever scaler ``config`` describes (its ``"type"``); None gives None.

    Examples
    --------
    >>> scaler_from_config({"type": "scale", "factor": 16.0})
    Scale(factor=16.0)
    """
    if config is None:
        return None
    kind = config.get("type") if isinstance(config, dict) else None
    if kind not in _SCALERS:
        raise ValueError(
            f"scaler config {_short(config)} has unknown type {kind!r}; expected one of "
            f"{sorted(_SCALERS)}"
        )
    return _SCALERS[kind].from_config(config)
