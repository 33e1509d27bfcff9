"""Tests for backprop.datasets: IDX files, MNIST / Fashion-MNIST search and download, the small
data sets, the user's tables, the dispatcher and the scalers."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gzip
import hashlib
import http.server
import json
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from backprop import datasets as ds
from backprop.datasets import (
    DataError,
    Dataset,
    Scale,
    Standardizer,
    as_float,
    encode_labels,
    load_dataset,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    load_table,
    make_curve,
    make_xor,
    read_idx,
    scaler_from_config,
    train_test_split,
    write_idx,
)

MNIST_DIR = Path(__file__).resolve().parents[2] / "shared/data/mnist"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
PARTS = {
    "train-images": "train-images-idx3-ubyte",
    "train-labels": "train-labels-idx1-ubyte",
    "t10k-images": "t10k-images-idx3-ubyte",
    "t10k-labels": "t10k-labels-idx1-ubyte",
}

needs_mnist = pytest.mark.skipif(
    not (MNIST_DIR / "t10k-labels-idx1-ubyte.gz").is_file(),
    reason=f"MNIST files not found in {MNIST_DIR} (the shared/ data folder beside the repo)",
)
needs_fashion = pytest.mark.skipif(
    not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"Fashion-MNIST not installed in {FASHION_DIR} "
    "(apt-get install -y dataset-fashion-mnist)",
)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test sees the user's data, cache or mirror settings, nor an HTTP proxy."""
    for var in ("BACKPROP_DATA", "BACKPROP_MNIST_MIRROR", "BACKPROP_FASHION_MNIST_MIRROR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("BACKPROP_CACHE", str(tmp_path / "default-cache"))
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg
    return msg


# --------------------------------------------------------------------------------------------
# IDX
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, dtype, suffix):
    rng = np.random.default_rng(0)
    a = (rng.normal(size=(3, 4, 5)) * 50).astype(dtype)
    p = tmp_path / f"a-idx3{suffix}"
    write_idx(p, a)
    b = read_idx(p)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative
    np.testing.assert_array_equal(a, b)
    assert b.flags.writeable
    assert (p.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    assert [f.name for f in tmp_path.iterdir()] == [p.name]  # no temporary file left


def test_idx_header_is_big_endian(tmp_path):
    p = tmp_path / "x"
    write_idx(p, np.array([[258, -2]], dtype=np.int16))
    assert p.read_bytes() == bytes.fromhex("00000b0200000001000000020102fffe")
    write_idx(p, np.array([1.5], dtype=np.float32))
    assert p.read_bytes() == bytes.fromhex("00000d01000000013fc00000")


def test_gzip_detected_by_magic_not_by_name(tmp_path):
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    gz_without_suffix = tmp_path / "plain-name"
    write_idx(gz_without_suffix, a, compress=True)
    raw_with_suffix = tmp_path / "raw.gz"
    write_idx(raw_with_suffix, a, compress=False)
    np.testing.assert_array_equal(read_idx(gz_without_suffix), a)
    np.testing.assert_array_equal(read_idx(raw_with_suffix), a)


@needs_mnist
def test_read_real_mnist_labels():
    y = read_idx(MNIST_DIR / "t10k-labels-idx1-ubyte.gz")
    assert y.shape == (10000,) and y.dtype == np.uint8
    assert y[:5].tolist() == [7, 2, 1, 0, 4]
    assert np.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _idx_bytes(a):
    return bytes([0, 0, 8, a.ndim]) + np.asarray(a.shape, ">u4").tobytes() + a.tobytes()


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"\x00\x00", "too short"),
        (b"\x01\x00\x08\x01" + bytes(5), "magic"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "type code 0x07"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"\x00\x00\x08\xff" + b"\x00\x00\x00\x01" * 255 + b"\x05", "255 dimensions"),
        (b"\x00\x00\x08\x02\x00\x00\x00\x02", "truncated IDX header"),
        (_idx_bytes(np.zeros((2, 3), np.uint8))[:-1], "length mismatch (truncated)"),
        (_idx_bytes(np.zeros((2, 3), np.uint8)) + b"\x00", "length mismatch (trailing bytes)"),
    ],
)
def test_idx_format_errors(tmp_path, data, expected):
    for name, payload in (("bad-raw", data), ("bad.gz", gzip.compress(data))):
        p = tmp_path / name
        p.write_bytes(payload)
        with pytest.raises(DataError) as e:
            read_idx(p)
        msg = one_line(e)
        assert str(p) in msg and expected in msg


def test_idx_bad_gzip_streams(tmp_path):
    good = gzip.compress(_idx_bytes(np.arange(1000, dtype=np.uint16).astype(np.uint8)))
    truncated = tmp_path / "truncated.gz"
    truncated.write_bytes(good[: len(good) // 2])
    corrupt = tmp_path / "corrupt.gz"
    bad = bytearray(good)
    bad[-6] ^= 0xFF  # inside the CRC-32 / length trailer
    corrupt.write_bytes(bytes(bad))
    garbage = tmp_path / "garbage.gz"
    garbage.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 4)
    for p in (truncated, corrupt, garbage):
        with pytest.raises(DataError) as e:
            read_idx(p)
        msg = one_line(e)
        assert str(p) in msg and "bad gzip stream" in msg
    with pytest.raises(DataError, match="no such file"):
        read_idx(tmp_path / "missing")


def test_truncated_gzip_is_refused_without_believing_its_last_bytes(tmp_path):
    """In a truncated file the last four bytes are compressed data, not the trailer's size: here
    they announce almost 4 GiB. The reader must not allocate that to find out (it did: 3.5 GB
    for a 90 KB file)."""
    import tracemalloc

    data = gzip.compress(_idx_bytes(np.random.default_rng(0).integers(0, 255, 200_000, np.uint8)))
    p = tmp_path / "truncated.gz"
    p.write_bytes(data[: len(data) // 2] + b"\xf0\xff\xff\xff")
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as e:
            read_idx(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "bad gzip stream" in one_line(e)
    assert peak < 20 * 2**20, peak


def test_gzip_reading_in_one_buffer_handles_every_shape_of_stream(tmp_path):
    """The IDX reader decompresses into one buffer of the trailer's size: streams of many chunks
    (zeros compress 1000:1, so one compressed chunk expands past the output step), several gzip
    members, and a trailer whose size is wrong all give the right array or a clear error."""
    rng = np.random.default_rng(1)
    big = np.zeros((300, 100, 300), np.uint8)  # 9 MB of zeros: about 9 KB compressed
    big[::7, 3, ::5] = rng.integers(1, 255, big[::7, 3, ::5].shape, dtype=np.uint8)
    data = _idx_bytes(big)
    p = tmp_path / "big.gz"
    p.write_bytes(gzip.compress(data))
    out = read_idx(p)
    np.testing.assert_array_equal(out, big)
    assert out.flags.writeable and out.flags.aligned
    members = tmp_path / "members.gz"
    members.write_bytes(gzip.compress(data[:1000]) + gzip.compress(data[1000:]))
    np.testing.assert_array_equal(read_idx(members), big)
    for size in (len(data) - 1, len(data) + 1, 0):
        bad = tmp_path / f"size{size}.gz"
        bad.write_bytes(gzip.compress(data)[:-4] + (size % 2**32).to_bytes(4, "little"))
        with pytest.raises(DataError) as e:
            read_idx(bad)
        assert "bad gzip stream" in one_line(e)


def test_write_idx_rejects_what_idx_cannot_hold(tmp_path):
    with pytest.raises(TypeError, match="bool"):
        write_idx(tmp_path / "b", np.zeros(3, dtype=bool))
    with pytest.raises(TypeError, match="int64"):
        write_idx(tmp_path / "b", np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="0 dimensions"):
        write_idx(tmp_path / "b", np.uint8(3))
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# MNIST / Fashion-MNIST: search order, checks, downloads
# --------------------------------------------------------------------------------------------


def make_fake_set(directory: Path, n_train=3, n_test=2, *, gz=True, value=0) -> Path:
    """Four small valid IDX files (not the real data: load them with verify=False)."""
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = np.full((n, 28, 28), value, dtype=np.uint8)
        images[:, 0, 0] = np.arange(n)
        write_idx(directory / (PARTS[f"{split}-images"] + suffix), images)
        write_idx(directory / (PARTS[f"{split}-labels"] + suffix), np.arange(n, dtype=np.uint8))
    return directory


def test_fake_set_loads_flattened_with_int64_labels(tmp_path):
    d = make_fake_set(tmp_path / "d", value=7)
    (X, y), (Xt, yt) = load_mnist(d, download=False, verify=False)
    assert X.shape == (3, 784) and X.dtype == np.uint8 and Xt.shape == (2, 784)
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 2] and yt.tolist() == [0, 1]
    assert X[:, 0].tolist() == [0, 1, 2] and (X[:, 1:] == 7).all()


def test_images_of_another_size_are_refused_even_unverified(tmp_path):
    d = make_fake_set(tmp_path / "d")
    write_idx(d / (PARTS["train-images"] + ".gz"), np.zeros((3, 10, 10), np.uint8))
    with pytest.raises(
        DataError, match=r"images of shape \(3, 10, 10\).*expected uint8 \(n, 28, 28\)"
    ):
        load_mnist(d, download=False, verify=False)


def test_search_order_data_dir_then_env_then_cache(tmp_path, monkeypatch):
    arg = make_fake_set(tmp_path / "arg", n_train=1)
    env = make_fake_set(tmp_path / "env" / "mnist", n_train=2).parent  # subdirectory layout
    cache = make_fake_set(tmp_path / "cache" / "mnist", n_train=3).parent
    kw = {"download": False, "verify": False, "cache_dir": cache}
    monkeypatch.setenv("BACKPROP_DATA", str(env))
    assert len(load_mnist(arg, **kw)[0][0]) == 1
    assert len(load_mnist(**kw)[0][0]) == 2
    monkeypatch.delenv("BACKPROP_DATA")
    assert len(load_mnist(**kw)[0][0]) == 3
    # BACKPROP_DATA may also hold the files itself; BACKPROP_CACHE is the default cache.
    monkeypatch.setenv("BACKPROP_DATA", str(arg))
    assert len(load_mnist(download=False, verify=False)[0][0]) == 1
    monkeypatch.delenv("BACKPROP_DATA")
    monkeypatch.setenv("BACKPROP_CACHE", str(cache))
    assert len(load_mnist(download=False, verify=False)[0][0]) == 3


def test_an_incomplete_directory_is_skipped(tmp_path, monkeypatch):
    partial = make_fake_set(tmp_path / "partial", n_train=1)
    (partial / "t10k-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setenv("BACKPROP_DATA", str(make_fake_set(tmp_path / "env", n_train=2)))
    assert len(load_mnist(partial, download=False, verify=False)[0][0]) == 2


def test_raw_gzip_and_dotted_names_mix(tmp_path):
    d = make_fake_set(tmp_path / "d", gz=True)
    gz = d / "t10k-labels-idx1-ubyte.gz"
    (d / "t10k-labels-idx1-ubyte").write_bytes(gzip.decompress(gz.read_bytes()))
    gz.unlink()
    (d / "train-images-idx3-ubyte.gz").rename(d / "train-images.idx3-ubyte.gz")
    (X, _), (_, yt) = load_mnist(d, download=False, verify=False)
    assert X.shape == (3, 784) and yt.tolist() == [0, 1]


def test_not_found_message_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setattr(ds, "FASHION_MNIST_SYSTEM_DIRS", [str(tmp_path / "no-system")])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as e:
        load_mnist(empty, download=False, cache_dir=tmp_path / "c")
    msg = one_line(e)
    for part in (str(empty), "train-images-idx3-ubyte", "BACKPROP_DATA", str(tmp_path / "c")):
        assert part in msg
    assert "download=False" in msg and "to fix" in msg
    with pytest.raises(DataError) as e:
        load_fashion_mnist(download=False, cache_dir=tmp_path / "c")
    msg = one_line(e)
    assert "apt-get install dataset-fashion-mnist" in msg and "no-system" in msg


def test_checksum_of_local_files_is_verified(tmp_path):
    d = make_fake_set(tmp_path / "d")
    with pytest.raises(DataError) as e:
        load_mnist(d, download=False)
    msg = one_line(e)
    assert "checksum mismatch" in msg and ds._MNIST.sha256["train-images"] in msg
    raw = gzip.decompress((d / "train-images-idx3-ubyte.gz").read_bytes())
    assert hashlib.sha256(raw).hexdigest() in msg
    assert "verify=False" in msg
    assert (d / "train-images-idx3-ubyte.gz").exists()  # the user's file is never deleted


def test_structure_checks_without_verification(tmp_path):
    d = make_fake_set(tmp_path / "d")
    write_idx(d / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 2], dtype=np.uint8))
    with pytest.raises(DataError, match="3 labels for 2 images"):
        load_mnist(d, download=False, verify=False)
    write_idx(d / "t10k-labels-idx1-ubyte.gz", np.array([0, 10], dtype=np.uint8))
    with pytest.raises(DataError, match="label 10 found; expected 0..9"):
        load_mnist(d, download=False, verify=False)
    write_idx(d / "t10k-labels-idx1-ubyte.gz", np.array([0, 1], dtype=np.int32))
    with pytest.raises(DataError, match="expected uint8"):
        load_mnist(d, download=False, verify=False)


@pytest.fixture(scope="module")
def mnist():
    if not (MNIST_DIR / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip(f"MNIST files not found in {MNIST_DIR}")
    return load_mnist(MNIST_DIR, download=False, cache_dir="/nonexistent")


def test_real_mnist_matches_its_provenance(mnist):
    (X, y), (Xt, yt) = mnist
    assert X.shape == (60000, 784) and X.dtype == np.uint8
    assert Xt.shape == (10000, 784) and y.dtype == yt.dtype == np.int64
    assert y[:5].tolist() == [5, 0, 4, 1, 9]
    assert np.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert round(float(X.mean(dtype=np.float64)), 4) == 33.3184


# ---- downloads from a local HTTP server ----


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def http_server(directory: Path):
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def silent_server():
    """Accepts connections (in the kernel's backlog) and never answers."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    try:
        yield f"http://127.0.0.1:{s.getsockname()[1]}/mnist/"
    finally:
        s.close()


def no_temp_files(directory: Path) -> bool:
    return not [p for p in directory.iterdir() if p.name.startswith(".")]


@needs_mnist
def test_download_verifies_and_caches(tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    (served / "empty").mkdir()
    for name in PARTS.values():
        shutil.copy(MNIST_DIR / f"{name}.gz", served / f"{name}.gz")
    cache = tmp_path / "cache"
    with http_server(served) as url:
        # A mirror without the files (404), then the good one.
        monkeypatch.setattr(ds, "MNIST_MIRRORS", [url + "empty/", url])
        (X, y), (Xt, yt) = load_mnist(cache_dir=cache)
    assert X.shape == (60000, 784) and yt[:3].tolist() == [7, 2, 1]
    files = sorted(p.name for p in (cache / "mnist").iterdir())
    assert files == sorted(f"{n}.gz" for n in PARTS.values())
    for name in PARTS.values():
        assert (cache / "mnist" / f"{name}.gz").read_bytes() == (served / f"{name}.gz").read_bytes()
    # Next time the cache is used without the network.
    monkeypatch.setattr(ds, "MNIST_MIRRORS", [])
    (X2, _), _ = load_mnist(cache_dir=cache)
    np.testing.assert_array_equal(X, X2)


@needs_mnist
def test_corrupted_download_is_rejected_and_deleted(tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    labels = read_idx(MNIST_DIR / "train-labels-idx1-ubyte.gz")
    labels[0] = (labels[0] + 1) % 10  # a valid file with one wrong label
    write_idx(served / "train-labels-idx1-ubyte.gz", labels)
    (served / "t10k-images-idx3-ubyte.gz").write_bytes(
        (MNIST_DIR / "t10k-images-idx3-ubyte.gz").read_bytes()[:5000]  # cut short
    )
    cache = tmp_path / "cache" / "mnist"
    cache.mkdir(parents=True)
    (cache / "train-images-idx3-ubyte.gz").symlink_to(MNIST_DIR / "train-images-idx3-ubyte.gz")
    monkeypatch.setattr(ds, "MNIST_MIRRORS", ["http://127.0.0.1:9/unused/"])
    with http_server(served) as url:
        monkeypatch.setenv("BACKPROP_MNIST_MIRROR", url)  # the variable wins over the list
        with pytest.raises(DataError) as e:
            load_mnist(cache_dir=cache.parent)
        msg = one_line(e)
        expected = ds._MNIST.sha256["train-labels"]
        got = hashlib.sha256(_idx_bytes(labels)).hexdigest()
        assert "checksum mismatch" in msg and "train-labels-idx1-ubyte.gz" in msg
        assert expected in msg and got in msg and "deleted" in msg
        assert not (cache / "train-labels-idx1-ubyte.gz").exists() and no_temp_files(cache)

        # With the good labels in place, the truncated images are caught next.
        shutil.copy(MNIST_DIR / "train-labels-idx1-ubyte.gz", served)
        with pytest.raises(DataError) as e:
            load_mnist(cache_dir=cache.parent)
        msg = one_line(e)
        assert "t10k-images-idx3-ubyte.gz" in msg and "not a valid gzip" in msg
        assert (cache / "train-labels-idx1-ubyte.gz").is_file()  # the good one was kept
        assert not (cache / "t10k-images-idx3-ubyte.gz").exists() and no_temp_files(cache)


def _fake_spec_serving(directory: Path):
    """A fake set in ``directory`` (gzip) and the data set description whose checksums match."""
    make_fake_set(directory)
    sha = {
        part: hashlib.sha256(gzip.decompress((directory / f"{name}.gz").read_bytes())).hexdigest()
        for part, name in PARTS.items()
    }
    return dataclasses.replace(ds._MNIST, sha256=sha)


class _CutShortHandler(http.server.BaseHTTPRequestHandler):
    """Announces the whole file in Content-Length, sends half of it and closes the connection."""

    directory: Path

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = (self.directory / self.path.rsplit("/", 1)[-1]).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.close_connection = True


def test_a_transfer_cut_short_is_a_network_failure_and_the_next_mirror_is_tried(
    tmp_path, monkeypatch
):
    served = tmp_path / "served"
    monkeypatch.setattr(ds, "_MNIST", _fake_spec_serving(served))
    handler = type("H", (_CutShortHandler,), {"directory": served})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cut = f"http://127.0.0.1:{server.server_address[1]}/"
    cache = tmp_path / "cache"
    try:
        with http_server(served) as good:
            monkeypatch.setenv("BACKPROP_MNIST_MIRROR", f"{cut} {good}")
            (X, y), (Xt, yt) = load_mnist(cache_dir=cache, timeout=5)
        assert X.shape == (3, 784) and y.tolist() == [0, 1, 2] and yt.tolist() == [0, 1]
        assert no_temp_files(cache / "mnist")
        monkeypatch.setenv("BACKPROP_MNIST_MIRROR", cut)
        with pytest.raises(DataError) as e:
            load_mnist(cache_dir=tmp_path / "c2", timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    msg = one_line(e)
    assert "could not be downloaded" in msg and "cut short" in msg and cut in msg
    assert not (tmp_path / "c2" / "mnist").exists()


def test_unreachable_mirrors_give_a_clear_error(tmp_path, monkeypatch):
    with silent_server() as silent:
        monkeypatch.setenv("BACKPROP_MNIST_MIRROR", f"{silent} http://127.0.0.1:9/closed/")
        with pytest.raises(DataError) as e:
            load_mnist(cache_dir=tmp_path / "c", timeout=0.3)
    msg = one_line(e)
    assert "could not be downloaded" in msg and "timed out" in msg and "127.0.0.1:9" in msg
    assert "BACKPROP_DATA" in msg
    assert not (tmp_path / "c" / "mnist").exists()  # nothing left behind


def test_corrupt_cached_file_is_deleted(tmp_path):
    cache = make_fake_set(tmp_path / "cache" / "mnist").parent
    with pytest.raises(DataError) as e:
        load_mnist(download=False, cache_dir=cache)
    assert "cached file was deleted" in one_line(e)
    assert not (cache / "mnist" / "train-images-idx3-ubyte.gz").exists()


def test_unreadable_cached_file_is_deleted_like_a_wrong_one(tmp_path):
    cache = make_fake_set(tmp_path / "cache" / "mnist")
    gz = cache / "t10k-labels-idx1-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:-10])  # cut short: not a valid gzip stream
    with pytest.raises(DataError) as e:
        load_mnist(download=False, cache_dir=cache.parent, verify=False)
    msg = one_line(e)
    assert str(gz) in msg and "bad gzip stream" in msg
    assert "cached file was deleted" in msg and not gz.exists()
    with pytest.raises(DataError, match="not found"):  # so the next run downloads it anew
        load_mnist(download=False, cache_dir=cache.parent, verify=False)
    # A user's own directory is never touched.
    d = make_fake_set(tmp_path / "d")
    own = d / "t10k-labels-idx1-ubyte.gz"
    own.write_bytes(own.read_bytes()[:-10])
    with pytest.raises(DataError, match="bad gzip stream"):
        load_mnist(d, download=False, verify=False)
    assert own.exists()


@needs_fashion
def test_fashion_mnist_from_the_debian_package(tmp_path):
    (X, y), (Xt, yt) = load_fashion_mnist(download=False, cache_dir=tmp_path)  # verified
    assert X.shape == (60000, 784) and Xt.shape == (10000, 784) and X.dtype == np.uint8
    assert y[:5].tolist() == [9, 0, 0, 3, 0]
    assert np.bincount(y).tolist() == [6000] * 10 and np.bincount(yt).tolist() == [1000] * 10


@needs_fashion
def test_load_dataset_fashion_mnist(tmp_path):
    d = load_dataset("fashion_mnist", download=False, cache_dir=tmp_path)
    assert d.name == "fashion-mnist" and d.classes[9] == "Ankle boot"
    assert d.image_shape == (28, 28) and d.value_range == (0.0, 255.0)


# --------------------------------------------------------------------------------------------
# digits, XOR, curve
# --------------------------------------------------------------------------------------------


def test_load_digits():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert X.min() == 0 and X.max() == 16 and y.dtype == np.int64
    assert sorted(set(y.tolist())) == list(range(10))
    X64, _ = load_digits(dtype=np.float64)
    assert X64.dtype == np.float64 and np.array_equal(X64, X)
    with pytest.raises(TypeError, match="float32 or float64"):
        load_digits(dtype=np.int32)


def test_load_dataset_digits_is_a_stratified_deterministic_split():
    d = load_dataset("digits")
    assert d.task == "classification" and d.classes == list(range(10))
    assert d.image_shape == (8, 8) and d.value_range == (0.0, 16.0)
    assert len(d.X_train) + len(d.X_test) == 1797
    counts = np.bincount(np.concatenate([d.y_train, d.y_test]))
    np.testing.assert_allclose(np.bincount(d.y_test) / counts, 0.2, atol=0.01)
    again = load_dataset("digits")
    np.testing.assert_array_equal(d.X_test, again.X_test)
    other = load_dataset("digits", seed=1)
    assert not np.array_equal(d.X_test, other.X_test)


def test_make_xor_default_and_sampled():
    X, y = make_xor()
    assert X.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]] and y.tolist() == [0, 1, 1, 0]
    assert X.dtype == np.float32 and y.dtype == np.int64
    X, y = make_xor(10, noise=0.1, seed=3, dtype=np.float64)
    assert X.shape == (10, 2) and X.dtype == np.float64
    corners = np.rint(X).astype(int)
    np.testing.assert_array_equal(y, corners[:, 0] ^ corners[:, 1])
    assert sorted(np.bincount(corners[:, 0] * 2 + corners[:, 1]).tolist()) == [2, 2, 3, 3]
    assert not np.array_equal(X, np.rint(X))  # noise was added
    np.testing.assert_array_equal(make_xor(10, 0.1, seed=3, dtype=np.float64)[0], X)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n="):
            make_xor(bad)
    with pytest.raises(ValueError, match="noise"):
        make_xor(noise=-1)


def test_make_curve_follows_the_notes():
    X, y = make_curve(500, seed=0, dtype=np.float64)
    assert X.shape == (500, 1) and y.shape == (500,)
    x = X[:, 0]
    assert 0 <= x.min() and x.max() <= 1
    eps = y - (x + 0.3 * np.sin(2 * np.pi * x))
    assert np.abs(eps).max() <= 0.1 and np.abs(eps).max() > 0.09
    assert abs(eps.mean()) < 0.01
    X32, y32 = make_curve(500, seed=0)
    assert X32.dtype == y32.dtype == np.float32
    np.testing.assert_allclose(y32, y, rtol=1e-6)
    X0, y0 = make_curve(50, seed=1, noise=0.0, dtype=np.float64)
    np.testing.assert_allclose(y0, X0[:, 0] + 0.3 * np.sin(2 * np.pi * X0[:, 0]))
    rng = np.random.default_rng(5)
    a, b = make_curve(5, rng)[0], make_curve(5, rng)[0]
    assert not np.array_equal(a, b)  # one Generator, consumed in turn
    with pytest.raises(TypeError, match="seed"):
        make_curve(5, seed="x")


def test_load_dataset_curve_and_xor():
    c = load_dataset("curve", n=30, n_test=20)
    assert c.task == "regression" and c.classes is None and c.X_train.shape == (30, 1)
    assert c.X_test.shape == (20, 1) and not np.array_equal(c.X_train[:20], c.X_test)
    x = load_dataset("XOR")
    assert x.X_test is None and x.classes == [0, 1] and x.n_classes == 2
    with pytest.raises(TypeError, match="unexpected keyword 'label_column'"):
        load_dataset("xor", label_column=0)
    with pytest.raises(ValueError, match="unknown data set 'nope'"):
        load_dataset("nope")


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_csv_with_header_names_and_word_labels(tmp_path):
    p = write(tmp_path, "t.csv", "# comment\nlen, width ,species\n1.5,2,cat\n\n3,4e0,dog\n")
    t = load_table(p, "species")
    assert t.X.dtype == np.float32 and t.X.tolist() == [[1.5, 2.0], [3.0, 4.0]]
    assert t.y.tolist() == ["cat", "dog"] and t.feature_names == ["len", "width"]
    assert t.label_name == "species"
    q = write(tmp_path, "n.csv", "len,width,size\n1.5,2,7\n3,4e0,8\n")
    t0 = load_table(q, 0, dtype=np.float64)
    assert t0.X.dtype == np.float64 and t0.y.dtype == np.float64 and t0.y.tolist() == [1.5, 3.0]
    assert t0.feature_names == ["width", "size"] and t0.label_name == "len"
    assert t0.X.tolist() == [[2, 7], [4, 8]]


def test_csv_without_header_and_other_delimiters(tmp_path):
    for name, text in (
        ("a.csv", "1,2,0\n3,4,1\n"),
        ("b.csv", "1;2;0\n3;4;1\n"),
        ("c.tsv", "1\t2\t0\n3\t4\t1\n"),
        ("d.txt", "1  2 0\n 3 4   1\n"),
    ):
        t = load_table(write(tmp_path, name, text))
        assert t.X.tolist() == [[1, 2], [3, 4]] and t.y.tolist() == [0, 1], name
        assert t.y.dtype == np.int64 and t.feature_names is None
    # Word labels in a file without header: the first row is data.
    t = load_table(write(tmp_path, "e.csv", "1,2,cat\n3,4,dog\n"))
    assert t.X.shape == (2, 2) and t.y.tolist() == ["cat", "dog"]
    t = load_table(write(tmp_path, "f.csv", "1|2\n3|4\n"), label_column=None)
    assert t.X.shape == (2, 2) and t.y is None
    t = load_table(write(tmp_path, "g.csv", "1 2\n3 4\n"), delimiter=" ")
    assert t.y.tolist() == [2, 4]


def test_csv_with_a_delimiter_ending_every_line(tmp_path):
    """Spreadsheet exports often end each line with the delimiter: that is not an empty last
    column (the label column by default)."""
    t = load_table(write(tmp_path, "h.csv", "a,b,label,\r\n1,2,cat,\r\n3,4,dog,\r\n"))
    assert t.X.tolist() == [[1, 2], [3, 4]] and t.y.tolist() == ["cat", "dog"]
    assert t.feature_names == ["a", "b"] and t.label_name == "label"
    t = load_table(write(tmp_path, "n.csv", "1;2;0;\n3;4;1;\n"))
    assert t.X.tolist() == [[1, 2], [3, 4]] and t.y.tolist() == [0, 1]
    # A label missing on one line only is still an error.
    with pytest.raises(DataError, match="line 2, column 3: empty label"):
        load_table(write(tmp_path, "m.csv", "1,2,0,\n3,4,,\n"), label_column=2)


@pytest.mark.parametrize(
    "text, kw, expected",
    [
        ("a,b,y\n1,x,0\n", {}, "line 2, column 2 ('b'): 'x' is not a number"),
        ("1,2,0\n3,,1\n", {}, "line 2, column 2: empty cell"),
        ("1,2,0\n3,nan,1\n", {}, "line 2, column 2: 'nan' is not finite"),
        ("1,2,0\n3,4\n", {}, "line 2 has 2 cells; expected 3"),
        ("# only a comment\n\n", {}, "empty"),
        ("a,b,y\n", {}, "header but no data rows"),
        ("a,b,y\n1,2,3\n", {"label_column": "z"}, "label column 'z' not found"),
        ("1,2,3\n", {"label_column": "z"}, "no header"),
        ("1,2,3\n", {"label_column": 3}, "label column 3 does not exist"),
        ("1\n2\n", {}, "only the label column"),
        ("1,2,0\n3,4,\n", {}, "line 2, column 3: empty label"),
    ],
)
def test_csv_errors_name_the_place(tmp_path, text, kw, expected):
    p = write(tmp_path, "bad.csv", text)
    with pytest.raises(DataError) as e:
        load_table(p, **kw)
    msg = one_line(e)
    assert str(p) in msg and expected in msg


def test_table_file_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_table(tmp_path / "missing.csv")
    with pytest.raises(DataError, match="empty"):
        load_table(write(tmp_path, "empty.csv", ""))
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(DataError, match="not a UTF-8 text file"):
        load_table(tmp_path / "bin.csv")
    with pytest.raises(TypeError, match="label_column"):
        load_table(write(tmp_path, "ok.csv", "1,2\n"), label_column=1.0)


def test_npy_tables(tmp_path):
    a = np.array([[1.0, 2.0, 0.0], [3.0, 4.0, 1.0]])
    np.save(tmp_path / "a.npy", a)
    t = load_table(tmp_path / "a.npy")
    assert t.X.dtype == np.float32 and t.X.tolist() == [[1, 2], [3, 4]]
    assert t.y.dtype == np.int64 and t.y.tolist() == [0, 1]
    t = load_table(tmp_path / "a.npy", label_column=0)
    assert t.y.dtype == np.int64 and t.y.tolist() == [1, 3]
    np.save(tmp_path / "r.npy", np.array([[1.0, 0.5], [2.0, 1.5]]))
    assert load_table(tmp_path / "r.npy").y.dtype == np.float32
    np.save(tmp_path / "one.npy", np.arange(3.0))
    with pytest.raises(DataError, match=r"shape \(3,\); expected 2-D"):
        load_table(tmp_path / "one.npy")
    np.save(tmp_path / "obj.npy", np.array([[1, "a"]], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="not a readable .npy file"):
        load_table(tmp_path / "obj.npy")  # never unpickled
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan, 0.0]]))
    with pytest.raises(DataError, match="non-finite"):
        load_table(tmp_path / "nan.npy")
    with pytest.raises(DataError, match="is a name but the file has no header"):
        load_table(tmp_path / "a.npy", label_column="y")


def test_npz_tables(tmp_path):
    np.savez(tmp_path / "a.npz", X=np.ones((4, 2, 3), np.uint8), y=np.array([0, 1, 0, 1]))
    t = load_table(tmp_path / "a.npz")
    assert t.X.shape == (4, 6) and t.image_shape == (2, 3) and t.y.dtype == np.int64
    np.savez(tmp_path / "b.npz", data=np.ones((2, 2)), target=np.array([0.5, 1.0]))
    t = load_table(tmp_path / "b.npz", dtype=np.float64)
    assert t.X.dtype == t.y.dtype == np.float64 and t.image_shape is None
    np.savez(tmp_path / "c.npz", X=np.ones((2, 2)), y=np.array(["a", "b"]))
    assert load_table(tmp_path / "c.npz").y.tolist() == ["a", "b"]
    np.savez(tmp_path / "d.npz", features=np.ones((2, 2)))
    with pytest.raises(DataError, match="expected 'X' and 'y'"):
        load_table(tmp_path / "d.npz")
    np.savez(tmp_path / "e.npz", X=np.ones((3, 2)), y=np.zeros(2))
    with pytest.raises(DataError, match="2 labels for 3 samples"):
        load_table(tmp_path / "e.npz")


def test_npz_word_labels_stored_as_bytes(tmp_path):
    np.savez(tmp_path / "b.npz", X=np.ones((2, 2)), y=np.array([b"cat", "café".encode()]))
    assert load_table(tmp_path / "b.npz").y.tolist() == ["cat", "café"]
    np.savez(tmp_path / "l.npz", X=np.ones((2, 2)), y=np.array([b"cat", "café".encode("latin-1")]))
    with pytest.raises(DataError) as e:
        load_table(tmp_path / "l.npz")
    msg = one_line(e)
    assert str(tmp_path / "l.npz") in msg and "UTF-8" in msg


def test_arrays_without_feature_columns_are_refused(tmp_path):
    np.savez(tmp_path / "a.npz", X=np.zeros((3, 0)), y=np.zeros(3))
    np.savez(tmp_path / "b.npz", X=np.zeros((3, 4, 0)), y=np.zeros(3))
    np.save(tmp_path / "c.npy", np.zeros((3, 0)))
    for name, kw in (("a.npz", {}), ("b.npz", {}), ("c.npy", {"label_column": None})):
        with pytest.raises(DataError) as e:
            load_table(tmp_path / name, **kw)
        msg = one_line(e)
        assert str(tmp_path / name) in msg and "feature" in msg, name


def test_load_dataset_from_a_table(tmp_path):
    rng = np.random.default_rng(0)
    rows = [
        f"{a:.3f},{b:.3f},{'big' if i % 3 else 'small'}"
        for i, (a, b) in enumerate(rng.normal(size=(30, 2)))
    ]
    p = write(tmp_path, "t.csv", "a,b,size\n" + "\n".join(rows) + "\n")
    d = load_dataset(p, test_size=0.3)
    assert d.task == "classification" and d.classes == ["big", "small"]
    assert d.feature_names == ["a", "b"] and d.name == "t.csv"
    assert len(d.X_train) == 21 and len(d.X_test) == 9
    assert np.bincount(d.y_test).tolist() == [6, 3]  # stratified: 20 big, 10 small
    np.testing.assert_array_equal(d.X_test, load_dataset(p, test_size=0.3).X_test)
    with pytest.raises(DataError, match="not numbers"):
        load_dataset(p, task="regression")
    # A separate test file keeps both files whole.
    q = write(tmp_path, "test.csv", "a,b,size\n0,0,small\n")
    d = load_dataset(str(p), test_path=q)
    assert len(d.X_train) == 30 and d.y_test.tolist() == [1]
    with pytest.raises(TypeError, match="unexpected keyword 'n'"):
        load_dataset(p, n=3)
    reg = write(tmp_path, "reg.csv", "0.1,0.25\n0.2,0.5\n0.3,0.75\n0.4,1.5\n0.5,2.5\n")
    r = load_dataset(reg, dtype=np.float64)
    assert r.task == "regression" and r.classes is None and r.y_train.dtype == np.float64
    assert len(r.X_train) == 4 and len(r.X_test) == 1
    c = load_dataset(reg, label_column=0, task="classification", dtype=np.float64)
    assert c.classes == [0.1, 0.2, 0.3, 0.4, 0.5]


def test_load_dataset_of_an_npz_without_labels_says_so(tmp_path):
    np.savez(tmp_path / "x.npz", X=np.ones((5, 2)))
    assert load_table(tmp_path / "x.npz").y is None  # fine for predict
    with pytest.raises(DataError) as e:
        load_dataset(tmp_path / "x.npz")
    msg = one_line(e)
    assert str(tmp_path / "x.npz") in msg and "no labels" in msg and "'y'" in msg


def test_a_test_file_with_word_labels_for_a_regression_is_a_data_error(tmp_path):
    train = write(tmp_path, "train.csv", "a,y\n1,0.5\n2,1.5\n3,2.5\n")
    test = write(tmp_path, "test.csv", "a,y\n1,cat\n2,dog\n")
    with pytest.raises(DataError) as e:
        load_dataset(train, test_path=test)
    msg = one_line(e)
    assert str(test) in msg and "'cat'" in msg and "not numbers" in msg


# --------------------------------------------------------------------------------------------
# Labels, splits, Dataset
# --------------------------------------------------------------------------------------------


def test_encode_labels_and_split():
    idx, classes = encode_labels(np.array([3, 7, 3, 5]))
    assert idx.tolist() == [0, 2, 0, 1] and classes == [3, 5, 7]
    assert all(type(c) is int for c in classes)  # JSON-able
    X = np.arange(40).reshape(20, 2)
    y = np.array([0] * 15 + [1] * 5)
    Xtr, Xte, ytr, yte = train_test_split(X, y, 0.2, seed=4)
    assert np.bincount(yte).tolist() == [3, 1] and len(Xtr) == 16
    assert sorted(np.concatenate([Xtr[:, 0], Xte[:, 0]]).tolist()) == X[:, 0].tolist()
    assert np.all(np.diff(Xte[:, 0]) > 0)  # original order kept
    _, Xte2, _, _ = train_test_split(X, y, 0.2, seed=4)
    np.testing.assert_array_equal(Xte, Xte2)
    _, Xte3, _, _ = train_test_split(X, y.astype(float), 0.25, seed=0, stratify=False)
    assert len(Xte3) == 5
    with pytest.raises(ValueError, match="test_size"):
        train_test_split(X, y, 1.0)
    with pytest.raises(ValueError, match="1 samples cannot be split"):
        train_test_split(X[:1], y[:1], 0.5)
    # Tiny classes: still round(test_size * n) test samples, from the largest remainders,
    # preferring classes that keep a training sample.
    y3 = np.array([0, 0, 0, 1, 1, 1, 2])
    _, _, ytr, yte = train_test_split(np.zeros((7, 1)), y3, 0.3, seed=0)
    assert len(yte) == 2 and 2 not in yte.tolist() and sorted(ytr.tolist()).count(2) == 1


def test_dataset_validates_itself():
    X, y = np.zeros((4, 2)), np.zeros(4, dtype=np.int64)
    with pytest.raises(ValueError, match="y_train has 3 rows"):
        Dataset("d", "classification", X, y[:3], classes=[0])
    with pytest.raises(ValueError, match="both be given"):
        Dataset("d", "classification", X, y, X_test=X, classes=[0])
    with pytest.raises(ValueError, match="needs classes"):
        Dataset("d", "classification", X, y)
    with pytest.raises(ValueError, match="task="):
        Dataset("d", "clustering", X, y)
    with pytest.raises(ValueError, match="image_shape"):
        Dataset("d", "regression", X, y.astype(float), image_shape=(3, 3))
    d = Dataset("d", "regression", X, y.astype(float), X, y.astype(float))
    assert d.summary() == "d: regression, 4 training / 4 test samples, 2 features"


# --------------------------------------------------------------------------------------------
# Scalers
# --------------------------------------------------------------------------------------------


def test_standardizer_statistics_and_dtypes():
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(200, 3))
    X[:, 2] = 5.0  # constant feature
    s = Standardizer().fit(X)
    np.testing.assert_allclose(s.mean_, X.mean(0))
    np.testing.assert_allclose(s.std_[:2], X[:, :2].std(0))
    assert s.std_[2] == 1.0
    Z = s.transform(X)
    assert Z.dtype == np.float64
    np.testing.assert_allclose(Z[:, :2].mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(Z[:, :2].std(0), 1, atol=1e-12)
    assert np.all(Z[:, 2] == 0)
    new = X[:1].copy()
    new[0, 2] = 6.0
    assert s.transform(new)[0, 2] == 1.0  # only centred, not blown up
    X32 = X.astype(np.float32)
    Z32 = Standardizer().fit_transform(X32)
    assert Z32.dtype == np.float32
    np.testing.assert_allclose(Z32, Z, atol=1e-5)
    assert s.transform(X32).dtype == np.float32
    assert s.transform(X, dtype=np.float32).dtype == np.float32
    assert (
        Standardizer()
        .fit(np.array([[0, 255], [255, 0]], np.uint8))
        .transform(np.array([[0, 0]], np.uint8))
        .dtype
        == np.float32
    )
    X_copy = X.copy()
    np.testing.assert_allclose(s.inverse_transform(s.transform(X)), X)
    np.testing.assert_array_equal(X, X_copy)  # input untouched


def test_standardizer_config_round_trip_is_exact():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 4)).astype(np.float32)
    s = Standardizer().fit(X)
    cfg = json.loads(json.dumps(s.to_config()))
    assert cfg["type"] == "standardizer" and len(cfg["mean"]) == 4
    s2 = scaler_from_config(cfg)
    assert isinstance(s2, Standardizer)
    np.testing.assert_array_equal(s2.transform(X), s.transform(X))


def test_standardizer_errors():
    s = Standardizer()
    with pytest.raises(ValueError, match="not fitted"):
        s.transform(np.zeros((1, 2)))
    s.fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="3 features; expected 2"):
        s.transform(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="NaN or inf"):
        Standardizer().fit(np.array([[1.0], [np.nan]]))
    with pytest.raises(ValueError, match="expected 2-D"):
        s.transform(np.zeros(2))
    with pytest.raises(ValueError, match="not a Standardizer config"):
        Standardizer.from_config({"type": "scale", "factor": 2.0})
    with pytest.raises(ValueError, match="std <= 0"):
        Standardizer.from_config({"type": "standardizer", "mean": [0.0], "std": [0.0]})
    with pytest.raises(ValueError, match="expected two equal 1-D lists"):
        Standardizer.from_config({"type": "standardizer", "mean": [0.0], "std": [1.0, 1.0]})


def test_scale_and_as_float():
    X = np.array([[0, 51, 255]], dtype=np.uint8)
    expected = X.astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(as_float(X), expected)
    np.testing.assert_array_equal(Scale(255).transform(X), expected)
    assert as_float(X, np.float64).dtype == np.float64
    f = np.ones((2, 2), np.float32)
    assert as_float(f) is f  # already float32: no copy
    with pytest.raises(TypeError, match="int32"):
        as_float(np.ones(2, np.int32))
    s = Scale().fit(X)
    assert s.factor_ == 255.0
    s = Scale().fit(np.array([[-4.0, 2.0]]))
    assert s.factor_ == 4.0
    assert s.transform(np.array([[2.0, -4.0]])).tolist() == [[0.5, -1.0]]
    assert s.transform(np.array([[2.0]], np.float32)).dtype == np.float32
    assert s.inverse_transform(np.array([[0.5, -1.0]])).tolist() == [[2.0, -4.0]]
    assert Scale().fit(np.zeros((2, 2))).factor_ == 1.0
    # The most negative integer has no positive counterpart in its type: np.abs wraps it.
    assert Scale().fit(np.array([[-128, 5]], np.int8)).factor_ == 128.0
    assert Scale().fit(np.array([[-(2**63), 5]], np.int64)).factor_ == 2.0**63
    cfg = json.loads(json.dumps(Scale(16).to_config()))
    assert cfg == {"type": "scale", "factor": 16.0}
    assert scaler_from_config(cfg).transform(np.array([[8.0]])).tolist() == [[0.5]]
    assert scaler_from_config(None) is None
    with pytest.raises(ValueError, match="unknown type 'minmax'"):
        scaler_from_config({"type": "minmax"})
    for bad in (0, -1.0, float("inf"), True):
        with pytest.raises(ValueError, match="factor="):
            Scale(bad)
    with pytest.raises(ValueError, match="no factor"):
        Scale().transform(X)


def test_mnist_pipeline_dtypes(tmp_path):
    d = make_fake_set(tmp_path / "d", value=255)
    (X, _), _ = load_mnist(d, download=False, verify=False)
    s = Scale().fit(X)
    Z = s.transform(X)
    assert Z.dtype == np.float32 and Z.max() == 1.0 and X.dtype == np.uint8
    m = load_dataset("mnist", data_dir=d, download=False, verify=False, seed=3, dtype="float64")
    assert m.X_train.dtype == np.uint8 and m.classes == list(range(10))
    assert m.summary() == (
        "mnist: classification, 3 training / 2 test samples, 784 features, 10 classes, images 28x28"
    )
    assert Scale(m.value_range[1]).transform(m.X_test).max() == 1.0


def test_damaged_or_misnamed_npy_and_npz_files_give_data_errors(tmp_path):
    X = np.arange(12.0).reshape(4, 3)
    np.save(tmp_path / "a.npy", X)
    np.savez(tmp_path / "b.npz", X=X, y=np.arange(4))
    cases = {
        "npz-named.npy": ((tmp_path / "b.npz").read_bytes(), "an .npz archive, not an .npy"),
        "npy-named.npz": ((tmp_path / "a.npy").read_bytes(), "an .npy array, not an .npz"),
        "cut.npz": ((tmp_path / "b.npz").read_bytes()[:100], "not a readable .npz file"),
        "cut.npy": ((tmp_path / "a.npy").read_bytes()[:90], "not a readable .npy file"),
    }
    for name, (payload, expected) in cases.items():
        p = tmp_path / name
        p.write_bytes(payload)
        with pytest.raises(DataError) as e:
            load_table(p)
        assert str(p) in one_line(e) and expected in one_line(e)
    huge = tmp_path / "huge.npy"  # a header announcing 10**12 rows
    raw = (tmp_path / "a.npy").read_bytes()
    huge.write_bytes(raw.replace(b"(4, 3)", b"(1000000000000, 3)".ljust(6)))
    with pytest.raises(DataError, match=r"huge.npy: .*(too large|not a readable)"):
        load_table(huge)
    np.savez(tmp_path / "scalar.npz", X=X, y=np.int64(3))
    with pytest.raises(DataError, match="y holds a single value for 4 samples"):
        load_table(tmp_path / "scalar.npz")
    np.savez(tmp_path / "words2d.npz", X=X, y=np.array([["a", "b"]] * 4))
    with pytest.raises(DataError, match="holds words; expected one word label per sample"):
        load_table(tmp_path / "words2d.npz")


def test_labels_too_large_for_int64_are_not_corrupted(tmp_path):
    np.save(tmp_path / "f.npy", np.array([[1.0, 1e20], [2.0, 3.0]]))
    y = load_table(tmp_path / "f.npy").y
    assert y.dtype.kind == "f" and y[0] == np.float32(1e20)  # a target value, not a wrapped int
    np.savez(tmp_path / "f.npz", X=np.ones((2, 1)), y=np.array([1e20, 3.0]))
    assert load_table(tmp_path / "f.npz").y[0] == np.float32(1e20)
    np.savez(tmp_path / "u.npz", X=np.ones((2, 1)), y=np.array([2**63, 1], dtype=np.uint64))
    with pytest.raises(DataError, match="larger than 2\\*\\*63 - 1"):
        load_table(tmp_path / "u.npz")
    np.save(tmp_path / "ok.npy", np.array([[1.0, 2.0], [2.0, 0.0]]))
    assert load_table(tmp_path / "ok.npy").y.dtype == np.int64  # whole numbers: class labels


def test_csv_quote_left_open_names_its_line(tmp_path):
    p = tmp_path / "q.csv"
    p.write_text('a,b,c\n1,2,"cat\n3,4,5\n6,7,8\n')
    with pytest.raises(DataError) as e:
        load_table(p)
    assert f"{p}: line 2:" in one_line(e)  # was: zip() argument 2 is shorter than argument 1
    q = tmp_path / "ok.csv"
    q.write_text('a,b,label\n1,2,"x, y"\n3,4,z\n')
    assert list(load_table(q).y) == ["x, y", "z"]


def test_a_file_where_the_download_cache_should_be_is_a_data_error(tmp_path, monkeypatch):
    monkeypatch.delenv("BACKPROP_DATA", raising=False)
    blocker = tmp_path / "cache"
    blocker.write_text("not a directory")
    with pytest.raises(DataError, match="cannot use the download cache .*cache"):
        load_mnist(cache_dir=blocker, download=True)


def test_train_test_split_takes_lists_and_explains_2d_labels():
    X = [[float(i)] for i in range(10)]
    y = [0] * 5 + [1] * 5
    X_tr, X_te, y_tr, y_te = ds.train_test_split(X, y, 0.4, seed=0)
    assert X_te.shape == (4, 1) and sorted(y_te.tolist()) == [0, 0, 1, 1]
    with pytest.raises(ValueError, match=r"cannot stratify the split: expected 1-D class labels"):
        ds.train_test_split(np.zeros((10, 2)), np.eye(2)[np.array(y)])
    assert (
        len(ds.train_test_split(np.zeros((10, 2)), np.eye(2)[np.array(y)], stratify=False)[1]) == 2
    )
    with pytest.raises(ValueError, match="seed=-1 is invalid"):
        ds.train_test_split(X, y, seed=-1)


def test_a_table_value_beyond_float32_is_refused_not_made_infinite(tmp_path):
    p = tmp_path / "big.csv"
    p.write_text("a,b,y\n1,1e300,0\n2,3,1\n")
    with pytest.raises(DataError, match=r"row 1, column 2 is beyond the range of float32"):
        load_table(p)
    assert load_table(p, dtype=np.float64).X[0, 1] == 1e300
