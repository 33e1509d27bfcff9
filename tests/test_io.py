"""Model files: bit-exact round trips, metadata, atomic writes, and refusal of bad files."""

import json
import os
import struct

import numpy as np
import pytest

import backprop
from backprop import MLP, History, fit
from backprop.datasets import Scale, Standardizer, scaler_from_config
from backprop.io import (
    MAX_HEADER_BYTES,
    ModelFileError,
    load,
    normalize_preprocessing,
    read_metadata,
    save,
)
from backprop.layers import ActivationLayer, Dense, Dropout, Embedding, Maxout, Sequential


def _trained(dtype="float32", seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    net = MLP([3, 5, 4, 3], activation="tanh", output="softmax", dtype=dtype, seed=seed)
    hist = fit(net, X, y, epochs=3, batch_size=8, lr=0.01)
    return net, X, hist


def _header(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw, n


def _write_with_header(path, header, data):
    hb = json.dumps(header).encode()
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(hb)) + hb + data)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_is_bit_exact(tmp_path, dtype):
    net, X, hist = _trained(dtype)
    p = tmp_path / "m.safetensors"
    assert save(net, p, classes=[0, 1, 2], history=hist) == str(p)
    back = load(p)
    assert back.dtype == np.dtype(dtype)
    assert back.to_config() == net.to_config()
    for k, v in net.params.items():
        assert back.params[k].dtype == v.dtype
        assert back.params[k].tobytes() == v.tobytes()
    np.testing.assert_array_equal(back.forward(X), net.forward(X))
    assert back.metadata["classes"] == [0, 1, 2]
    assert History.from_dict(back.metadata["history"]).loss == hist.loss


def test_metadata_round_trip(tmp_path):
    net, X, hist = _trained()
    std = Standardizer().fit(X)
    p = tmp_path / "m.safetensors"
    save(
        net,
        p,
        classes=np.array(["cat", "dog", "eel"]),
        preprocessing={"input": std, "target": Scale(2.0)},
        training={"epochs": np.int64(3), "lr": np.float32(0.5), "hidden": (5, 4)},
        extra={"vocab": ["a", "b"], "nested": {"k": [1, 2.5, None, True]}},
    )
    m = load(p).metadata
    assert m["format_version"] == 1
    assert m["classes"] == ["cat", "dog", "eel"]
    assert m["training"] == {"epochs": 3, "lr": 0.5, "hidden": [5, 4]}
    assert m["extra"] == {"vocab": ["a", "b"], "nested": {"k": [1, 2.5, None, True]}}
    back = scaler_from_config(m["preprocessing"]["input"])
    np.testing.assert_array_equal(back.mean_, std.mean_)  # float64 through JSON, exactly
    np.testing.assert_array_equal(back.std_, std.std_)
    assert m["preprocessing"]["target"] == {"type": "scale", "factor": 2.0}
    assert m["history"] is None


def test_read_metadata_does_not_need_tensors(tmp_path):
    net, _, _ = _trained("float64")
    p = tmp_path / "m.safetensors"
    save(net, p, classes=[0, 1, 2])
    m = read_metadata(p)
    assert m["config"]["sizes"] == [3, 5, 4, 3]
    assert list(m["tensors"]) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert m["tensors"]["W1"] == {"dtype": "float64", "shape": [5, 3]}
    assert m["n_params"] == net.n_params
    assert m["file_size"] == os.path.getsize(p)


def test_sequential_with_embedding_maxout_and_dropout(tmp_path):
    layers = [
        Embedding(7, 3, rng=0, dtype="float64"),
        Maxout(6, 4, k=3, rng=1, dtype="float64"),
        Dropout(0.2),
        Dense(4, 7, rng=2, dtype="float64"),
        ActivationLayer("softmax"),
    ]
    net = Sequential(layers)
    p = tmp_path / "lm.safetensors"
    save(net, p, extra={"vocab": list("abcdefg")})
    back = load(p)
    ids = np.array([[0, 1], [5, 6]])
    np.testing.assert_array_equal(back.forward(ids), net.forward(ids))
    assert back.metadata["extra"]["vocab"] == list("abcdefg")
    assert list(read_metadata(p)["tensors"]) == ["E1", "W2", "b2", "W3", "b3"]


def test_mlp_keeps_a_leaky_relu_slope_through_save_and_load(tmp_path):
    net = MLP(
        [3, 4, 2],
        activation={"name": "leaky_relu", "alpha": 0.3},
        output={"name": "leaky_relu", "alpha": 0.2},
        seed=0,
    )
    p = tmp_path / "leaky.safetensors"
    save(net, p)
    back = load(p)
    X = -np.arange(1.0, 7.0).reshape(2, 3)  # negative inputs: the slope matters
    np.testing.assert_array_equal(back.forward(X), net.forward(X))
    assert back.layers[1].activation.alpha == 0.3
    assert back.layers[-1].activation.alpha == 0.2
    assert back.activation == ["leaky_relu"]


def test_preprocessing_forms():
    s = Scale(255.0)
    assert normalize_preprocessing(None) is None
    assert normalize_preprocessing(s) == {"input": s.to_config(), "target": None}
    assert normalize_preprocessing(s.to_config()) == {"input": s.to_config(), "target": None}
    assert normalize_preprocessing({"target": s}) == {"input": None, "target": s.to_config()}
    with pytest.raises(ValueError, match="'scaler'"):
        normalize_preprocessing({"scaler": s})
    with pytest.raises(TypeError, match="expected None, a scaler"):
        normalize_preprocessing(3)


def test_save_refuses_non_json_metadata(tmp_path):
    net, _, _ = _trained()
    with pytest.raises(TypeError, match=r"training\['f'\] holds a builtin_function_or_method"):
        save(net, tmp_path / "m.safetensors", training={"f": len})
    with pytest.raises(ValueError, match="duplicates"):
        save(net, tmp_path / "m.safetensors", classes=[1, 1, 2])
    with pytest.raises(TypeError, match="expected a backprop network"):
        save(object(), tmp_path / "m.safetensors")
    assert not os.listdir(tmp_path)


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    net, _, _ = _trained()
    p = tmp_path / "m.safetensors"
    save(net, p, classes=[0, 1, 2])
    before = p.read_bytes()

    def boom(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    net.params["W1"] = np.zeros_like(net.params["W1"])
    with pytest.raises(OSError, match="disk full"):
        save(net, p, classes=[0, 1, 2])
    assert p.read_bytes() == before  # the old model survives
    assert os.listdir(tmp_path) == ["m.safetensors"]  # no temporary file left


# -- refusing bad files ----------------------------------------------------------------------


@pytest.fixture
def model_file(tmp_path):
    net, _, _ = _trained()
    p = tmp_path / "m.safetensors"
    save(net, p, classes=[0, 1, 2])
    return p


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        load(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("keep", [0, 5, 8, 20, -1])
def test_truncated_file(model_file, keep):
    raw = model_file.read_bytes()
    model_file.write_bytes(raw[:keep] if keep >= 0 else raw[:-3])
    with pytest.raises(ModelFileError, match="truncated") as exc:
        load(model_file)
    assert str(model_file) in str(exc.value) and "\n" not in str(exc.value)


def test_huge_header_is_refused_before_reading(model_file):
    raw = model_file.read_bytes()
    model_file.write_bytes(struct.pack("<Q", MAX_HEADER_BYTES + 1) + raw[8:])
    with pytest.raises(ModelFileError, match="over the limit"):
        load(model_file)
    model_file.write_bytes(struct.pack("<Q", 2**63) + raw[8:])
    with pytest.raises(ModelFileError, match="over the limit"):
        read_metadata(model_file)


def test_bad_json_header(model_file):
    header, raw, n = _header(model_file)
    bad = raw[:8] + b"{" + raw[9 : 8 + n].replace(b'"', b"'", 3) + raw[8 + n :]
    model_file.write_bytes(bad)
    with pytest.raises(ModelFileError, match="header is not JSON"):
        load(model_file)


def test_random_bytes(tmp_path):
    p = tmp_path / "noise.safetensors"
    p.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(ModelFileError):
        load(p)


def test_plain_safetensors_file_is_not_a_model(tmp_path):
    from safetensors.numpy import save_file

    p = tmp_path / "other.safetensors"
    save_file({"x": np.zeros(3, np.float32)}, str(p))
    with pytest.raises(ModelFileError, match="not a backprop model file"):
        load(p)


def _tamper(path, edit):
    header, raw, n = _header(path)
    data = raw[8 + n :]
    data = edit(header, data)
    _write_with_header(path, header, data)


def test_missing_tensor(model_file):
    def edit(h, data):
        begin, end = h["b3"]["data_offsets"]
        del h["b3"]
        return data[:begin] + data[end:]  # b3 is the last tensor

    _tamper(model_file, edit)
    with pytest.raises(ModelFileError, match="'b3' that the architecture needs is missing"):
        load(model_file)


def test_extra_tensor(model_file):
    def edit(h, data):
        h["evil"] = {"dtype": "F32", "shape": [1], "data_offsets": [len(data), len(data) + 4]}
        return data + b"\0\0\0\0"

    _tamper(model_file, edit)
    with pytest.raises(ModelFileError, match="unexpected tensor 'evil'"):
        load(model_file)


def test_wrong_shape_for_architecture(model_file):
    def edit(h, data):
        h["W1"]["shape"] = [3, 5]  # same bytes, transposed shape
        return data

    _tamper(model_file, edit)
    with pytest.raises(ModelFileError, match=r"'W1' has shape \(3, 5\): the architecture expects"):
        load(model_file)


def test_hostile_architecture_is_refused_without_allocating(model_file):
    def edit(h, data):
        meta = h["__metadata__"]
        cfg = json.loads(meta["config"])
        cfg["sizes"] = [3, 10**9, 10**9, 3]
        meta["config"] = json.dumps(cfg)
        return data

    _tamper(model_file, edit)
    with pytest.raises(ModelFileError, match="architecture expects"):
        load(model_file)


def test_overlapping_offsets(model_file):
    def edit(h, data):
        h["b1"]["data_offsets"] = list(h["W1"]["data_offsets"][:1]) + [
            h["W1"]["data_offsets"][0] + 20
        ]
        return data

    _tamper(model_file, edit)
    with pytest.raises(ModelFileError, match="corrupt"):
        load(model_file)


def test_unsupported_tensor_dtype(model_file):
    def edit(h, data):
        h["b3"]["dtype"] = "I32"
        return data

    _tamper(model_file, edit)
    with pytest.raises(ModelFileError, match="expected F32 or F64"):
        load(model_file)


def test_bad_metadata_json(model_file):
    def edit(h, data):
        h["__metadata__"]["training"] = "{not json"
        return data

    _tamper(model_file, edit)
    with pytest.raises(ModelFileError, match="metadata 'training' is not valid JSON"):
        load(model_file)


def test_newer_format_version(model_file):
    def edit(h, data):
        h["__metadata__"]["format_version"] = "99"
        return data

    _tamper(model_file, edit)
    with pytest.raises(ModelFileError, match="upgrade backprop"):
        load(model_file)


def test_unknown_layer_type(model_file):
    def edit(h, data):
        h["__metadata__"]["config"] = json.dumps(
            {"type": "Sequential", "layers": [{"type": "Lambda", "code": "import os"}]}
        )
        return data

    _tamper(model_file, edit)
    with pytest.raises(ModelFileError, match="unknown layer type 'Lambda'"):
        load(model_file)


def test_classes_must_match_outputs(model_file):
    def edit(h, data):
        h["__metadata__"]["classes"] = json.dumps([0, 1, 2, 3, 4])
        return data

    _tamper(model_file, edit)
    with pytest.raises(ModelFileError, match="5 classes for a network with 3 outputs"):
        read_metadata(model_file)


def test_non_finite_weights(model_file):
    header, raw, n = _header(model_file)
    begin = header["W2"]["data_offsets"][0]
    data = bytearray(raw[8 + n :])
    data[begin : begin + 4] = np.array([np.nan], np.float32).tobytes()
    model_file.write_bytes(raw[: 8 + n] + bytes(data))
    with pytest.raises(ModelFileError, match="'W2' holds NaN"):
        load(model_file)


def test_reexported_from_package():
    assert backprop.save is save and backprop.load is load
    assert "save" in backprop.__all__ and "load" in backprop.__all__


def test_save_refuses_what_load_would_refuse_and_keeps_the_old_file(tmp_path):
    net, _, _ = _trained()
    path = tmp_path / "m.safetensors"
    save(net, path)
    good = path.read_bytes()
    bad = MLP([3, 5, 4, 3], activation="tanh", output="softmax", seed=1)
    bad.params["W1"][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"parameter 'W1' holds NaN or infinite values"):
        save(bad, path)
    deep: dict = {}
    node = deep
    for _ in range(70):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(ValueError, match=r"extra is nested more than 64 levels"):
        save(net, path, extra=deep)
    with pytest.raises(ValueError, match=rf"expected at most {MAX_HEADER_BYTES}"):
        save(net, path, extra={"vocab": "x" * (MAX_HEADER_BYTES + 1)})
    assert path.read_bytes() == good  # nothing was written over the good file
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]  # and no temporary file is left
    np.testing.assert_array_equal(load(path).params["W1"], net.params["W1"])


def test_non_finite_numbers_in_metadata_are_stored_as_json_null(tmp_path):
    net, _, _ = _trained()
    path = tmp_path / "m.safetensors"
    save(net, path, training={"r2": float("nan"), "best": np.float32(np.inf), "ok": 0.5})
    header, _, _ = _header(path)
    raw = header["__metadata__"]["training"]
    assert "NaN" not in raw and "Infinity" not in raw
    assert json.loads(raw) == {"r2": None, "best": None, "ok": 0.5}
    assert read_metadata(path)["training"] == {"r2": None, "best": None, "ok": 0.5}


def test_layers_that_do_not_fit_together_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"layer 2 \(Dense\(5, 1\)\) takes 5 inputs but layer 1"):
        Sequential([Dense(2, 3, rng=0), ActivationLayer("tanh"), Dense(5, 1, rng=0)])
    # A hand-made file with such an architecture (and tensors of matching shapes) is refused
    # on loading, naming the file, instead of failing later inside a product.
    net = Sequential([Dense(2, 3, rng=0), ActivationLayer("tanh"), Dense(3, 1, rng=0)])
    path = tmp_path / "m.safetensors"
    save(net, path)
    header, raw, n = _header(path)
    meta = header["__metadata__"]
    cfg = json.loads(meta["config"])
    cfg["layers"][2]["n_in"] = 5
    meta["config"] = json.dumps(cfg)
    header["W2"]["shape"] = [1, 5]
    data = bytearray(raw[8 + n :])
    start, end = header["W2"]["data_offsets"]
    extra = 5 * 4 - (end - start)
    data[end:end] = bytes(extra)
    for name, entry in header.items():
        if name != "__metadata__" and entry["data_offsets"][0] >= end:
            entry["data_offsets"] = [o + extra for o in entry["data_offsets"]]
    header["W2"]["data_offsets"] = [start, end + extra]
    _write_with_header(path, header, bytes(data))
    with pytest.raises(ModelFileError, match="invalid architecture.*takes 5 inputs"):
        load(path)


@pytest.mark.parametrize(
    "pre, match",
    [
        ({"input": {"type": "scale", "factor": -1}}, "invalid input preprocessing"),
        ({"input": {"type": "nope"}}, "unknown type 'nope'"),
        ("standardizer-3", "scales 3 columns but the network has 2 inputs"),
        ("target-2", "scales 2 columns but the network has 1 targets"),
    ],
)
def test_preprocessing_that_cannot_apply_is_refused_by_save_and_load(tmp_path, pre, match):
    rng = np.random.default_rng(0)
    if pre == "standardizer-3":
        pre = Standardizer().fit(rng.normal(size=(10, 3)))
    elif pre == "target-2":
        pre = {"target": Standardizer().fit(rng.normal(size=(10, 2)))}
    net = MLP([2, 3, 1], seed=0)
    path = tmp_path / "m.safetensors"
    with pytest.raises(ValueError, match=match):
        save(net, path, preprocessing=pre)
    assert not path.exists()
    save(net, path)  # then hand-edit the stored preprocessing
    header, raw, n = _header(path)
    header["__metadata__"]["preprocessing"] = json.dumps(normalize_preprocessing(pre))
    _write_with_header(path, header, raw[8 + n :])
    with pytest.raises(ModelFileError, match=match):
        load(path)


def test_atomic_write_names_the_target_keeps_links_and_permissions(tmp_path):
    from backprop.callbacks import atomic_write_bytes

    with pytest.raises(FileNotFoundError) as exc:
        atomic_write_bytes(tmp_path / "missing" / "m.safetensors", b"x")
    assert exc.value.filename == str(tmp_path / "missing" / "m.safetensors")
    with pytest.raises(IsADirectoryError):
        atomic_write_bytes(tmp_path, b"x")
    long_name = tmp_path / ("m" * 240 + ".safetensors")  # 252 characters: a valid name
    atomic_write_bytes(long_name, b"long")
    assert long_name.read_bytes() == b"long"
    private = tmp_path / "private.bin"
    private.write_bytes(b"old")
    private.chmod(0o600)
    atomic_write_bytes(private, b"new")
    assert private.read_bytes() == b"new" and (private.stat().st_mode & 0o777) == 0o600
    real = tmp_path / "real.bin"
    real.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    atomic_write_bytes(link, b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("version", ["²", "1" * 5000, "-1", ""])
def test_odd_format_versions_are_model_file_errors(model_file, version):
    header, raw, n = _header(model_file)
    header["__metadata__"]["format_version"] = version
    _write_with_header(model_file, header, raw[8 + n :])
    with pytest.raises(ModelFileError, match=r"corrupt model file \(format_version"):
        load(model_file)


def test_unreadable_model_file_is_a_model_file_error(model_file, monkeypatch):
    real_open = open

    def refusing_open(path, *args, **kwargs):
        if os.fspath(path) == os.fspath(model_file):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", refusing_open)
    with pytest.raises(ModelFileError, match="cannot read the model file \\(Permission denied\\)"):
        load(model_file)


def test_save_refuses_classes_that_do_not_fit_the_outputs(tmp_path):
    net = MLP([3, 4, 2], output="softmax", seed=0)
    path = tmp_path / "m.safetensors"
    with pytest.raises(ValueError, match="classes has 3 labels for a network with 2 outputs"):
        save(net, path, classes=["x", "y", "z"])
    with pytest.raises(TypeError, match="not a sequence of labels"):
        save(net, path, classes="xy")
    with pytest.raises(TypeError, match="not a sequence of labels"):
        save(net, path, classes=3)
    assert not path.exists()
    save(MLP([3, 4, 1], output="sigmoid", seed=0), path, classes=["no", "yes"])  # fine
    assert load(path).metadata["classes"] == ["no", "yes"]
