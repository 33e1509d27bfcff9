import numpy as np
import pytest

from backprop import MLP, ActivationLayer, Dense, Dropout, Embedding, Maxout, Sequential, gradcheck
from backprop.gradcheck import numerical_grad, relative_error


def test_mlp_parameter_names_shapes_and_notation():
    net = MLP([784, 100, 10], output="softmax", seed=0)
    assert list(net.params) == ["W1", "b1", "W2", "b2"]
    assert net.params["W1"].shape == (100, 784)  # (n_out, n_in), as in the notes
    assert net.params["b1"].shape == (100,)
    assert net.params["W2"].shape == (10, 100)
    assert net.n_params == 784 * 100 + 100 + 100 * 10 + 10
    assert all(v.dtype == np.float32 for v in net.params.values())


def test_forward_is_z_equals_W_a_plus_b(rng):
    net = MLP([3, 4, 2], activation="sigmoid", output="identity", dtype="float64", seed=0)
    X = rng.normal(size=(5, 3))
    W1, b1, W2, b2 = (net.params[k] for k in ("W1", "b1", "W2", "b2"))
    a1 = 1 / (1 + np.exp(-(X @ W1.T + b1)))
    np.testing.assert_allclose(net.forward(X), a1 @ W2.T + b2)
    # per sample, in the notes' column form z = W a + b
    x = X[0]
    a = 1 / (1 + np.exp(-(W1 @ x + b1)))
    np.testing.assert_allclose(net.forward(X[:1])[0], W2 @ a + b2)


def test_editing_params_in_place_edits_the_model(rng):
    net = MLP([2, 3, 1], dtype="float64", seed=0)
    X = rng.normal(size=(4, 2))
    before = net.forward(X).copy()
    net.params["b2"] += 1.0
    np.testing.assert_allclose(net.forward(X), before + 1.0)
    net.params["W2"] = np.zeros((1, 3))  # assignment copies into the model's storage
    np.testing.assert_allclose(net.forward(X), np.full((4, 1), net.params["b2"][0]))
    assert net.layers[2].params["W"] is not None
    with pytest.raises(ValueError, match="shape"):
        net.params["W2"] = np.zeros((3, 1))


def test_params_are_views_of_one_flat_vector():
    net = MLP([3, 4, 2], seed=0)
    net.flat_params[:] = 0.5
    assert all((v == 0.5).all() for v in net.params.values())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_seed_same_weights(dtype):
    a = MLP([5, 7, 3], seed=42, dtype=dtype)
    b = MLP([5, 7, 3], seed=42, dtype=dtype)
    c = MLP([5, 7, 3], seed=43, dtype=dtype)
    np.testing.assert_array_equal(a.flat_params, b.flat_params)
    assert not np.array_equal(a.flat_params, c.flat_params)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_kept_end_to_end(dtype, rng):
    net = MLP([3, 4, 2], output="softmax", dtype=dtype, seed=0)
    X = rng.normal(size=(5, 3))  # float64 input is converted once to the model's dtype
    out = net.forward(X)
    _, grads = net.loss_and_grad(X, [0, 1, 1, 0, 1])
    assert out.dtype == np.dtype(dtype)
    assert all(g.dtype == np.dtype(dtype) for g in grads.values())


def test_per_layer_activations():
    net = MLP([2, 3, 3, 1], activation=["tanh", "relu"], seed=0)
    names = [layer.name for layer in net.layers if isinstance(layer, ActivationLayer)]
    assert names == ["tanh", "relu", "identity"]
    with pytest.raises(ValueError, match="one per hidden layer"):
        MLP([2, 3, 3, 1], activation=["tanh"])


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu", "leaky_relu", "identity"])
def test_deep_network_gradcheck(act, rng):
    net = MLP([4, 5, 3, 3], activation=act, output="softmax", dtype="float64", seed=1)
    X = rng.normal(size=(6, 4))
    assert gradcheck(net, X, rng.integers(0, 3, 6), l2=0.1) < 1e-6


def test_maxout_gradcheck(rng):
    net = Sequential(
        [Maxout(3, 4, k=3, rng=0, dtype="float64"), Dense(4, 2, rng=1, dtype="float64")]
    )
    X = rng.normal(size=(7, 3))
    Y = rng.normal(size=(7, 2))
    assert gradcheck(net, X, Y, loss="mse") < 1e-6
    assert list(net.params) == ["W1", "b1", "W2", "b2"]
    assert net.params["W1"].shape == (12, 3)


def test_maxout_takes_the_max_piece():
    layer = Maxout(1, 1, k=3, rng=0, dtype="float64")
    layer.params["W"][:, 0] = [1.0, -1.0, 0.0]
    out = layer.forward(np.array([[2.0], [-3.0], [0.5]]))
    np.testing.assert_allclose(out[:, 0], [2.0, 3.0, 0.5])


def test_dropout_gradcheck_with_fixed_mask(rng):
    drop = Dropout(0.4)
    net = Sequential(
        [
            Dense(3, 6, rng=0, dtype="float64"),
            ActivationLayer("tanh"),
            drop,
            Dense(6, 2, rng=1, dtype="float64"),
        ]
    )
    X, Y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))

    def loss():
        drop.rng = np.random.default_rng(7)  # the same mask at every evaluation
        return net.loss_and_grad(X, Y, loss="mse", training=True)

    _, analytic = loss()
    numeric = numerical_grad(lambda: loss()[0], net.params)
    assert max(relative_error(analytic[k], numeric[k]) for k in analytic) < 1e-6


def test_dropout_is_inverted_and_off_at_inference(rng):
    drop = Dropout(0.25, rng=0)
    X = np.ones((2000, 50))
    out = drop.forward(X, training=True)
    kept = out != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(out[kept], 1 / 0.75)
    assert abs(out.mean() - 1.0) < 0.02  # expectation preserved
    assert drop.forward(X, training=False) is X


def test_embedding_lookup_and_repeated_word_gradient(rng):
    emb = Embedding(6, 3, init={"name": "normal", "sigma": 1.0}, rng=0, dtype="float64")
    net = Sequential(
        [
            emb,
            Dense(6, 4, rng=1, dtype="float64"),
            ActivationLayer("tanh"),
            Dense(4, 6, rng=2, dtype="float64"),
            ActivationLayer("softmax"),
        ],
        n_in=2,
    )
    idx = np.array([[1, 1], [2, 1], [5, 0]])  # word 1 three times
    out = emb.forward(idx)
    np.testing.assert_array_equal(out[1], np.concatenate([emb.params["E"][2], emb.params["E"][1]]))
    onehot = np.eye(6)[idx]  # one-hot times E is the same lookup
    np.testing.assert_allclose(out, (onehot @ emb.params["E"]).reshape(3, 6))
    assert gradcheck(net, idx, [0, 3, 5]) < 1e-6
    assert list(net.params)[:1] == ["E1"]


def test_embedding_rejects_bad_ids():
    emb = Embedding(4, 2, rng=0)
    with pytest.raises(ValueError, match="word id 4 is out of range"):
        emb.forward(np.array([[0, 4]]))
    with pytest.raises(TypeError, match="integer"):
        emb.forward(np.array([[0.5]]))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(sizes=[3]), "at least two"),
        (dict(sizes=[3, 0, 1]), "positive"),
        (dict(sizes=[3, 1], activation="relux"), "unknown activation"),
        (dict(sizes=[3, 1], output="nope"), "unknown activation"),
        (dict(sizes=[3, 1], dtype="int32"), "float32"),
        (dict(sizes=[3, 1], init="zeros"), "unknown init"),
        (dict(sizes=[3, 2, 1], dropout=1.0), "dropout"),
    ],
)
def test_bad_construction_is_one_line_error(kwargs, match):
    with pytest.raises(ValueError, match=match) as exc:
        MLP(**kwargs)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(
    "X,y,match",
    [
        (np.zeros((4, 2)), [0, 1, 0, 1], "has 2 features"),
        (np.zeros(3), [0, 1, 0], "expected 2-D"),
        (np.zeros((0, 3)), [], "empty"),
        (np.array([[0, np.nan, 0]] * 4), [0, 1, 0, 1], "NaN"),
        (np.zeros((4, 3)), [0, 1, 0, 7], "class label 7 is out of range"),
        (np.zeros((4, 3)), [0, 1, 0, -1], "class label -1"),
        (np.zeros((2, 3)), [0, 1e30], r"class label 1e\+30 is out of range"),  # was: wrapped
        (np.zeros((4, 3)), [0, 1, 0], "rows"),
        (np.zeros((4, 3)), [0, 1, np.inf, 0], "non-integer"),
        (np.zeros((2, 3)), np.zeros((2, 3)), r"y row 0 sums to 0: expected one-hot"),
        (np.zeros((2, 3)), [[1, 0, 0], [1, 1, 0]], r"y row 1 sums to 2"),
        ([["a", "b", "c"]], [0], "expected real numbers"),
        (np.ones((2, 3), dtype=complex), [0, 1], "complex128: expected real numbers"),
        (np.ones((2, 3), dtype="m8[s]"), [0, 1], "expected real numbers"),
        (np.full((2, 3), 1e39), [0, 1], r"1e\+39 at row 0, column 0, beyond the range of float32"),
    ],
)
def test_bad_data_is_one_line_error(X, y, match):
    net = MLP([3, 4, 3], output="softmax", seed=0)
    with pytest.raises((ValueError, TypeError), match=match) as exc:
        net.loss_and_grad(X, y)
    assert "\n" not in str(exc.value)


def test_bad_targets_for_regression():
    net = MLP([2, 2], seed=0)
    with pytest.raises(ValueError, match="NaN"):
        net.loss_and_grad(np.zeros((2, 2)), [[0.0, np.nan], [0, 0]])
    with pytest.raises(ValueError, match=r"expected \(2, 2\)"):
        net.loss_and_grad(np.zeros((2, 2)), [0.0, 1.0])


def test_pickle_keeps_params_as_views_of_the_flat_vector():
    # Regression: ParamDict refused the keys pickle re-inserts, and unpickled params were
    # separate arrays, so an optimizer step on flat_params no longer reached the layers.
    import pickle

    net = MLP([3, 4, 2], output="softmax", seed=0, dropout=0.25)
    X = np.linspace(-1, 1, 15, dtype=np.float32).reshape(5, 3)
    copy = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(copy.forward(X), net.forward(X))
    for k in copy.params:
        assert np.shares_memory(copy.params[k], copy.flat_params)
        assert np.shares_memory(copy.grads[k], copy.flat_grads)
    assert np.shares_memory(copy.layers[0].params["W"], copy.flat_params)
    assert copy.layers[2].rng is copy.rng  # dropout still draws from the network's Generator
    copy.flat_params[:] = 0
    np.testing.assert_array_equal(copy.forward(X), np.full((5, 2), 0.5, np.float32))
    assert np.abs(net.flat_params).sum() > 0  # the original is untouched


# --------------------------------------------------------------------------- training fast path
# During fit the layers write into buffers they reuse from step to step (Layer._train_forward /
# _train_backward), stored feature-major. The numbers must be those of the plain path (up to the
# rounding of a different summation order inside the BLAS), and nothing a user can hold
# (net.forward's result) may ever be such a buffer.

FAST_PATH_NETS = [
    lambda dt: MLP([5, 7, 6, 3], activation="relu", output="softmax", dtype=dt, seed=1),
    lambda dt: MLP([5, 7, 3], activation="tanh", output="sigmoid", dtype=dt, seed=2),
    lambda dt: MLP([5, 6, 6, 2], activation=["sigmoid", "leaky_relu"], dtype=dt, seed=3),
    lambda dt: MLP([5, 8, 3], output="softmax", dropout=0.3, dtype=dt, seed=4),
    lambda dt: Sequential(
        [Maxout(5, 4, 2, rng=0, dtype=dt), ActivationLayer("relu"), Dense(4, 2, rng=1, dtype=dt)]
    ),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("make", FAST_PATH_NETS, ids=lambda f: "")
def test_workspace_gives_the_same_loss_and_gradients(make, dtype, rng):
    from backprop.losses import get_loss

    plain, fast = make(dtype), make(dtype)
    X = rng.normal(size=(9, 5))
    loss = get_loss(plain.default_loss())
    fast._use_workspace(True)
    # batch sizes 9, 4, 9: the buffers grow, are viewed for a smaller batch, are reused
    for rows in (9, 4, 9):
        Xc = plain._check_X(X[:rows])
        Y = (
            rng.integers(0, plain.n_out, rows)
            if loss.classification
            else rng.normal(size=(rows, plain.n_out))
        )
        if loss.name == "binary_cross_entropy":
            Y = rng.integers(0, 2, (rows, plain.n_out))
        Yc = plain.check_targets(Y, rows, loss)
        v_plain = plain._loss_grad(Xc, Yc, loss, 0.01, (), True)
        g_plain = plain.flat_grads.copy()
        v_fast = fast._loss_grad(Xc, Yc, loss, 0.01, (), True)
        eps = float(np.finfo(dtype).eps)
        assert v_fast == pytest.approx(v_plain, rel=20 * eps)
        scale = np.abs(g_plain).max()
        np.testing.assert_allclose(fast.flat_grads, g_plain, rtol=20 * eps, atol=20 * eps * scale)
    assert any(layer._ws for layer in fast.layers)
    fast._use_workspace(False)
    assert all(layer._ws is None for layer in fast.layers)


def test_workspace_buffers_are_reused_and_forward_stays_fresh(rng):
    from backprop.losses import get_loss

    net = MLP([4, 6, 3], output="softmax", seed=0)
    X = rng.normal(size=(8, 4)).astype(np.float32)
    Y = net.check_targets(rng.integers(0, 3, 8), 8, get_loss("cross_entropy"))
    before = net.forward(X)
    keep = before.copy()
    net._use_workspace(True)
    net._loss_grad(X, Y, get_loss("cross_entropy"), 0.0, (), True)
    z_buf = net.layers[0]._ws[("z", 8)]
    assert z_buf.shape == (8, 6) and z_buf.T.flags.c_contiguous  # feature-major
    out1 = net.forward(X)
    net.params["b2"] += 1.0
    net._loss_grad(X, Y, get_loss("cross_entropy"), 0.0, (), True)
    assert net.layers[0]._ws[("z", 8)] is z_buf  # the same buffer, step after step
    out2 = net.forward(X)
    np.testing.assert_array_equal(before, keep)  # results handed out never change
    assert out1 is not out2 and not np.shares_memory(out2, z_buf)
    assert not any(np.shares_memory(out2, b) for la in net.layers for b in la._ws.values())
    net._use_workspace(False)


def test_fit_turns_the_workspace_off_again(rng):
    from backprop import fit

    net = MLP([4, 6, 3], output="softmax", seed=0)
    X, y = rng.normal(size=(20, 4)), rng.integers(0, 3, 20)
    fit(net, X, y, epochs=2, batch_size=8)
    assert all(layer._ws is None for layer in net.layers)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_in_place_l2_gradient_equals_l2_penalty(dtype, rng):
    from backprop.losses import l2_penalty

    net = MLP([6, 5, 3], output="softmax", dtype=dtype, seed=0)
    ref = MLP([6, 5, 3], output="softmax", dtype=dtype, seed=0)
    net.flat_grads[:] = rng.normal(size=net.flat_grads.size)
    ref.flat_grads[:] = net.flat_grads
    reg, g = l2_penalty(ref.params, ref.weight_keys, 0.3, 7)
    for k, v in g.items():
        ref.grads[k] += v
    value = net._add_l2_grad(0.3, 7)
    np.testing.assert_array_equal(net.flat_grads, ref.flat_grads)  # bit for bit
    assert value == pytest.approx(reg, rel=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [3, 5000])  # a tiny product and one BLAS splits between threads
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_forward_refuses_non_finite_X_even_where_relu_would_hide_it(dtype, n, bad):
    # forward checks finiteness on the first layer's output instead of on X. With every weight
    # of column 1 negative, an x = +inf there makes every z = -inf and the ReLU output 0, so
    # the network's output would be finite: the check must still catch it, and name the entry.
    net = MLP([4, 6, 3], output="softmax", seed=0, dtype=dtype)
    net.params["W1"][:, 1] = -np.abs(net.params["W1"][:, 1]) - 0.1
    net.params["W1"][0, 2] = 0.0  # inf * 0 is NaN: still refused
    X = np.ones((n, 4), dtype=dtype)
    X[n - 1, 1] = bad
    with pytest.raises(ValueError, match=rf"NaN or infinity \(first at row {n - 1}, column 1\)"):
        net.forward(X)
    X[n - 1, 1] = 1.0
    X[n // 2, 2] = bad
    with pytest.raises(ValueError, match=rf"first at row {n // 2}, column 2"):
        net.forward(X)
    X[n // 2, 2] = 1.0
    assert np.isfinite(net.forward(X)).all()


def test_forward_passes_finite_X_whose_products_overflow():
    # Finite inputs large enough to overflow float32 in z are the caller's business, as before
    # the check moved: the outputs are returned (here NaN from inf - inf in softmax), no error.
    net = MLP([2, 3, 2], output="softmax", seed=0)
    net.params["W1"][...] = 1.0
    X = np.full((2, 2), 3e38, dtype=np.float32)
    with np.errstate(all="ignore"):
        out = net.forward(X)
    assert out.shape == (2, 2)
    assert not np.isfinite(out).all()


def test_forward_checks_X_up_front_when_the_first_layer_is_not_dense():
    net = Sequential([ActivationLayer("relu"), Dense(3, 2, rng=0)])
    X = np.ones((2, 3), dtype=np.float32)
    X[1, 0] = -np.inf  # the ReLU would turn it into 0
    with pytest.raises(ValueError, match=r"first at row 1, column 0"):
        net.forward(X)


def test_a_network_starting_with_an_embedding_checks_its_ids():
    net = Sequential([Embedding(10, 2, rng=0), ActivationLayer("tanh"), Dense(6, 4, rng=0)])
    assert net.n_in == 3  # context inferred from the Dense after it: 6 / 2
    ids = np.array([[1, 2, 3], [4, 5, 6]])
    for bad, error, match in [
        (ids[:, :2], ValueError, r"X has 2 ids per sample \(shape \(2, 2\)\): expected 3"),
        (ids.astype(float), TypeError, "expected integer word ids"),
        (ids[0], ValueError, r"expected 2-D \(n_samples, context\)"),
        (np.zeros((0, 3), int), ValueError, "X is empty"),
    ]:
        with pytest.raises(error, match=match):
            net.forward(bad)
    assert net.forward(ids.tolist()).shape == (2, 4)  # a list of lists is fine
    with pytest.raises(ValueError, match="not a multiple of the embedding dimension 2"):
        Sequential([Embedding(10, 2, rng=0), Dense(5, 4, rng=0)])


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: Dense(0, 3), ValueError, r"n_in=0 is invalid: expected an integer >= 1"),
        (lambda: Dense(2.5, 3), TypeError, r"n_in=2.5 is invalid"),
        (lambda: Dense(True, 3), TypeError, r"n_in=True is invalid"),
        (lambda: Maxout(3, 0), ValueError, r"n_out=0 is invalid"),
        (lambda: Embedding(0, 3), ValueError, r"n_vocab=0 is invalid"),
        (lambda: MLP([2, 3, 1], dtype=None), ValueError, r"dtype=None is not supported"),
        (lambda: MLP([2, 3, 1], seed="abc"), TypeError, r"seed='abc' is invalid"),
        (lambda: MLP([2, 3, 1], seed=-1), ValueError, r"seed=-1 is invalid"),
        (lambda: Dense(2, 3, rng="x"), TypeError, r"rng='x' is invalid"),
        (lambda: Sequential(None), TypeError, r"layers=None is invalid: expected a list of"),
        (
            lambda: Sequential([Dense(2, 3), "relu"]),
            TypeError,
            r"layers\[1\] is a str: expected a layer .*ActivationLayer\('relu'\)",
        ),
        (lambda: Dropout(None), TypeError, r"dropout p=None is invalid: expected a number"),
        (lambda: Dropout("half"), TypeError, r"dropout p='half' is invalid"),
        (lambda: MLP([2, 3, 1], dropout=[None]), TypeError, r"dropout p=None is invalid"),
        (
            lambda: MLP([2, 3, 1], activation={"name": "leaky_relu", "alpha": None}),
            TypeError,
            r"leaky_relu alpha=None is invalid: expected a number",
        ),
        (
            lambda: ActivationLayer({"name": "leaky_relu", "alpha": [0.1]}),
            TypeError,
            r"leaky_relu alpha=\[0.1\] is invalid",
        ),
    ],
)
def test_constructors_refuse_bad_sizes_dtypes_and_seeds(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sizes=None), r"sizes=None is invalid"),
        (dict(sizes=[3, 4, 2], activation=None), r"activation=None is invalid"),
        (dict(sizes=[3, 4, 2], activation=5), r"activation=5 is invalid"),
        (dict(sizes=[3, 4, 2], dropout=None), r"dropout=None is invalid"),
    ],
)
def test_mlp_arguments_of_the_wrong_type_are_named(kwargs, match):
    with pytest.raises(TypeError, match=match):  # was: 'NoneType' object is not iterable
        MLP(**kwargs)
