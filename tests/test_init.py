import numpy as np
import pytest

from backprop import MLP
from backprop.init import INITIALIZERS, initialize


@pytest.mark.parametrize(
    "name,std",
    [
        ("glorot_uniform", np.sqrt(2 / (300 + 200))),  # U(-r, r) has std r / sqrt(3)
        ("glorot_normal", np.sqrt(2 / (300 + 200))),
        ("he_normal", np.sqrt(2 / 300)),
        ("he_uniform", np.sqrt(2 / 300)),
    ],
)
def test_scaled_initialisers_have_the_documented_spread(name, std):
    W = initialize(name, np.random.default_rng(0), (200, 300), 300, 200, np.float64)
    assert W.shape == (200, 300)
    assert abs(W.mean()) < 0.05 * std
    assert W.std() == pytest.approx(std, rel=0.02)
    if name.endswith("uniform"):
        assert np.abs(W).max() <= std * np.sqrt(3) + 1e-12


def test_normal_sigma_as_in_the_notes():
    W = initialize(
        {"name": "normal", "sigma": 0.5}, np.random.default_rng(0), (300, 300), 300, 300, np.float32
    )
    assert W.dtype == np.float32
    assert W.std() == pytest.approx(0.5, rel=0.02)
    with pytest.raises(ValueError, match="sigma"):
        initialize(
            {"name": "normal", "sigma": -1}, np.random.default_rng(0), (2, 2), 2, 2, np.float32
        )


def test_aliases_and_unknown():
    assert INITIALIZERS["xavier_uniform"] is INITIALIZERS["glorot_uniform"]
    with pytest.raises(ValueError, match="unknown init 'zeros'"):
        initialize("zeros", np.random.default_rng(0), (2, 2), 2, 2, np.float32)


def test_biases_start_at_zero_and_defaults_follow_activation():
    relu = MLP([50, 400, 1], activation="relu", seed=0)
    tanh = MLP([50, 400, 1], activation="tanh", seed=0)
    assert not relu.params["b1"].any()
    assert relu.params["W1"].std() == pytest.approx(np.sqrt(2 / 50), rel=0.03)  # He
    assert tanh.params["W1"].std() == pytest.approx(np.sqrt(2 / 450), rel=0.03)  # Glorot


def test_float32_and_float64_start_from_the_same_numbers():
    a = MLP([5, 6, 2], seed=3, dtype="float32")
    b = MLP([5, 6, 2], seed=3, dtype="float64")
    np.testing.assert_array_equal(a.flat_params, b.flat_params.astype(np.float32))


def test_one_generator_drives_everything():
    rng = np.random.default_rng(11)
    a = MLP([3, 4, 2], seed=rng)
    b = MLP([3, 4, 2], seed=rng)  # the same Generator continues: different weights
    assert not np.array_equal(a.flat_params, b.flat_params)
    c = MLP([3, 4, 2], seed=np.random.default_rng(11))
    np.testing.assert_array_equal(a.flat_params, c.flat_params)


@pytest.mark.parametrize(
    "args, error, match",
    [
        (
            ("he_normal", None, (3, 2), 2, 3, np.float32),
            TypeError,
            "expected a numpy.random.Generator",
        ),
        (("he_normal", "rng", (3, 0), 0, 3, np.float32), ValueError, r"n_in=0 is invalid"),
        (("he_normal", "rng", (3, 2), 2, 3, int), ValueError, "expected a floating-point dtype"),
        (
            ({"name": "normal", "sgima": 0.1}, "rng", (3, 2), 2, 3, np.float32),
            ValueError,
            "takes only sigma",
        ),
        (
            ({"name": "normal", "sigma": "a"}, "rng", (3, 2), 2, 3, np.float32),
            ValueError,
            "sigma='a'",
        ),
    ],
)
def test_initialize_names_a_bad_argument(args, error, match):
    args = tuple(np.random.default_rng(0) if a == "rng" else a for a in args)
    with pytest.raises(error, match=match):
        initialize(*args)
