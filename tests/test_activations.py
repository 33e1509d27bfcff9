import warnings

import numpy as np
import pytest

from backprop.activations import ACTIVATIONS, get_activation, log_softmax, softmax

ELEMENTWISE = ["sigmoid", "tanh", "relu", "leaky_relu", "identity"]


def test_values_match_definitions():
    z = np.array([[-2.0, -0.5, 0.0, 0.5, 2.0]])
    np.testing.assert_allclose(get_activation("sigmoid").forward(z), 1 / (1 + np.exp(-z)))
    np.testing.assert_allclose(get_activation("tanh").forward(z), np.tanh(z))
    np.testing.assert_allclose(get_activation("relu").forward(z), [[0, 0, 0, 0.5, 2]])
    np.testing.assert_allclose(
        get_activation("leaky_relu").forward(z), [[-0.02, -0.005, 0, 0.5, 2]]
    )
    np.testing.assert_allclose(get_activation("identity").forward(z), z)
    e = np.exp(z)
    np.testing.assert_allclose(softmax(z), e / e.sum())
    np.testing.assert_allclose(log_softmax(z), np.log(e / e.sum()))


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_derivative_matches_central_difference(name):
    act = get_activation(name)
    z = np.linspace(-3, 3, 41) + 0.013  # avoid the kink of ReLU at exactly 0
    h = 1e-6
    num = (act.forward(z + h) - act.forward(z - h)) / (2 * h)
    np.testing.assert_allclose(act.derivative(z), num, rtol=1e-6, atol=1e-8)


def test_softmax_backward_is_jacobian_product(rng):
    act = get_activation("softmax")
    z = rng.normal(size=(3, 4))
    g = rng.normal(size=(3, 4))
    a = act.forward(z)
    got = act.backward(z, a, g.copy())
    for i in range(3):
        J = np.diag(a[i]) - np.outer(a[i], a[i])
        np.testing.assert_allclose(got[i], J @ g[i], rtol=1e-12)


@pytest.mark.parametrize("name", [*ELEMENTWISE, "softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_at_extremes(name, dtype):
    act = get_activation(name)
    z = np.array([[-1000.0, 1000.0, 0.0], [1000.0, 1000.0, -1000.0]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = act.forward(z)
        g = act.backward(z, a, np.ones_like(z))
    assert a.dtype == dtype and g.dtype == dtype
    assert np.isfinite(a).all() and np.isfinite(g).all()
    if name == "sigmoid":
        np.testing.assert_array_equal(a[0], [0.0, 1.0, 0.5])
    if name == "softmax":
        np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-6)
        np.testing.assert_allclose(a[1], [0.5, 0.5, 0.0], atol=1e-7)


def test_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="unknown activation 'relux'.*relu"):
        get_activation("relux")


def test_registry_has_all_notes_activations():
    assert {"sigmoid", "tanh", "relu", "leaky_relu", "identity", "softmax"} <= set(ACTIVATIONS)


def test_leaky_relu_alpha_validated():
    with pytest.raises(ValueError, match="alpha"):
        get_activation({"name": "leaky_relu", "alpha": 2})


@pytest.mark.parametrize("name", [*ELEMENTWISE, "softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_buffered_variants_equal_forward_and_backward(name, dtype, rng):
    # The training step's in-place variants must give exactly forward's and backward's numbers.
    act = get_activation(name)
    store = {}

    def buffer(key, rows, shape, dt, zero=False):
        if key not in store:
            store[key] = (np.zeros if zero else np.empty)((rows, *shape), dtype=dt)
        return store[key]

    z = rng.normal(size=(6, 4)).astype(dtype)
    z[0, 0] = 0.0
    out = np.empty_like(z)
    a = act._forward_into(z, out, buffer)
    np.testing.assert_array_equal(a, act.forward(z))
    assert a.dtype == dtype
    g = rng.normal(size=z.shape).astype(dtype)
    expected = act.backward(z, act.forward(z), g.copy())
    np.testing.assert_array_equal(act._backward_inplace(z, a, g.copy(), buffer), expected)


def test_integer_arrays_give_the_values_of_their_floats():
    z = np.array([[-10, -1, 0, 3]])
    zf = z.astype(np.float64)
    for name in ELEMENTWISE + ["softmax"]:
        act = get_activation(name)
        np.testing.assert_allclose(act.forward(z), act.forward(zf), err_msg=name)
        if name != "softmax":
            np.testing.assert_allclose(act.derivative(z), act.derivative(zf), err_msg=name)
    np.testing.assert_allclose(get_activation("leaky_relu").forward(z), [[-0.1, -0.01, 0, 3]])
    np.testing.assert_allclose(softmax(z), softmax(zf))
    np.testing.assert_allclose(log_softmax(z), log_softmax(zf))


def test_activation_config_with_an_unknown_option_is_named():
    with pytest.raises(ValueError, match=r"'relu' has no option 'alpha'"):
        get_activation({"name": "relu", "alpha": 0.1})
    with pytest.raises(ValueError, match=r"'leaky_relu' has no option 'slope': expected one of "):
        get_activation({"name": "leaky_relu", "slope": 0.1})
    assert get_activation({"name": "leaky_relu", "alpha": 0.2}).alpha == 0.2
