import pickle
import warnings

import numpy as np
import pytest
from scipy import sparse
from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris, make_blobs, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import backprop
from backprop import gradcheck
from backprop.estimators import (
    MLPClassifier,
    MLPRegressor,
    _EstimatorNet,
    _SampleLoss,
    _WeightedL2,
    load_estimator,
)
from backprop.io import ModelFileError
from backprop.schedules import cosine

# --------------------------------------------------------------------------------------------
# scikit-learn's own estimator checks
# --------------------------------------------------------------------------------------------

_F32_ROUNDING = (
    "float32 rounding: weighted and repeated samples give the same objective, but summed in "
    "another order; Adam amplifies the 1e-7 differences past the check's rtol=1e-7 (the check "
    "passes with dtype='float64')"
)


def _expected_failures(est):
    if np.dtype(est.dtype) == np.float32:
        return {
            "check_sample_weight_equivalence_on_dense_data": _F32_ROUNDING,
            "check_sample_weight_equivalence_on_sparse_data": _F32_ROUNDING,
        }
    return {}


@parametrize_with_checks(
    [
        MLPClassifier(),
        MLPRegressor(),
        MLPClassifier(dtype="float64"),
        MLPRegressor(dtype="float64"),
    ],
    expected_failed_checks=_expected_failures,
)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16.0, y[:600]


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _quiet_fit(est, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kw)


def _relu(z):
    return np.maximum(z, 0)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------------------------
# fitted attributes and the forward pass in scikit-learn's layout
# --------------------------------------------------------------------------------------------


def test_coefs_are_n_in_by_n_out_views_of_the_engine_weights(iris):
    X, y = iris
    clf = _quiet_fit(MLPClassifier((7, 5), max_iter=5, random_state=0), X, y)
    assert [c.shape for c in clf.coefs_] == [(4, 7), (7, 5), (5, 3)]
    assert [b.shape for b in clf.intercepts_] == [(7,), (5,), (3,)]
    assert clf.net_.params["W1"].shape == (7, 4)  # the notes' (n_out, n_in)
    for i, (c, b) in enumerate(zip(clf.coefs_, clf.intercepts_, strict=True), start=1):
        assert np.shares_memory(c, clf.net_.flat_params)
        np.testing.assert_array_equal(c, clf.net_.params[f"W{i}"].T)
        np.testing.assert_array_equal(b, clf.net_.params[f"b{i}"])
    assert clf.n_layers_ == 4 and clf.n_outputs_ == 3 and clf.out_activation_ == "softmax"
    assert clf.n_features_in_ == 4 and clf.t_ == 5 * len(X) and clf.n_iter_ == 5
    assert len(clf.loss_curve_) == 5 and clf.best_loss_ == min(clf.loss_curve_)
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None


def test_predict_proba_is_sklearns_forward_pass_on_coefs(iris):
    X, y = iris
    clf = _quiet_fit(MLPClassifier((6,), max_iter=20, random_state=1, dtype="float64"), X, y)
    C, B = clf.coefs_, clf.intercepts_
    expected = _softmax(_relu(X @ C[0] + B[0]) @ C[1] + B[1])
    np.testing.assert_allclose(clf.predict_proba(X), expected, rtol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[expected.argmax(1)])


def test_editing_and_assigning_coefs_changes_the_model(iris):
    X, y = iris
    clf = _quiet_fit(MLPClassifier((6,), max_iter=3, random_state=0), X, y)
    clf.coefs_[1][:] = 0  # in place, as users of scikit-learn's MLP do
    clf.intercepts_[1][:] = [0, 5, 0]
    assert (clf.predict(X) == 1).all()
    new = [np.ones((4, 6)), np.zeros((6, 3))]
    clf.coefs_ = new
    np.testing.assert_array_equal(clf.net_.params["W1"], np.ones((6, 4)))
    with pytest.raises(ValueError, match="shape"):
        clf.coefs_ = [np.ones((6, 4)), np.zeros((6, 3))]
    with pytest.raises(ValueError, match="expected 2"):
        clf.intercepts_ = [np.zeros(6)]
    with pytest.raises(AttributeError):
        _ = MLPClassifier().coefs_


def test_assigning_one_layer_of_coefs_or_intercepts_changes_the_model(iris):
    # scikit-learn's coefs_ is a list of arrays: ``clf.coefs_[i] = W`` replaces a layer
    X, y = iris
    clf = _quiet_fit(MLPClassifier((6,), max_iter=3, random_state=0), X, y)
    clf.coefs_[1] = np.zeros((6, 3))
    clf.intercepts_[-1] = np.array([0.0, 5.0, 0.0])
    np.testing.assert_array_equal(clf.net_.params["W2"], np.zeros((3, 6)))
    np.testing.assert_array_equal(clf.net_.params["b2"], [0, 5, 0])
    assert (clf.predict(X) == 1).all()
    clf.coefs_[0:1] = [np.ones((4, 6))]
    np.testing.assert_array_equal(clf.net_.params["W1"], np.ones((6, 4)))
    with pytest.raises(ValueError, match="shape"):
        clf.coefs_[0] = np.ones((6, 4))
    with pytest.raises(IndexError):
        clf.intercepts_[2] = np.zeros(3)
    # a copy or a pickle of the list is a plain list of arrays, detached from the model
    copied = pickle.loads(pickle.dumps(clf.coefs_))
    assert type(copied) is list and len(copied) == 2
    np.testing.assert_array_equal(copied[0], np.ones((4, 6)))


@pytest.mark.parametrize("activation,factor", [("relu", 6.0), ("tanh", 6.0), ("logistic", 2.0)])
def test_initialisation_is_sklearns_glorot_uniform(activation, factor):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 300)), rng.integers(0, 2, 20)
    clf = MLPClassifier((200,), activation, max_iter=1, learning_rate_init=1e-12)
    clf.set_params(solver="sgd", momentum=0.0, random_state=0, dtype="float64")
    _quiet_fit(clf, X, y)
    for W, b, (fan_in, fan_out) in zip(
        clf.coefs_, clf.intercepts_, [(300, 200), (200, 1)], strict=True
    ):
        r = np.sqrt(factor / (fan_in + fan_out))
        assert np.abs(W).max() <= r and np.abs(W).max() > 0.98 * r
        assert np.abs(b).max() <= r and (b.size == 1 or b.std() > 0)  # biases are drawn too
        if W.size > 1000:
            assert abs(W.std() - r / np.sqrt(3)) < 0.02 * r  # the std of U(-r, r)


def test_dtype_float32_by_default_and_float64_on_request(iris):
    X, y = iris
    clf = _quiet_fit(MLPClassifier((5,), max_iter=2, random_state=0), X, y)
    assert clf.net_.dtype == np.float32 and clf.coefs_[0].dtype == np.float32
    assert clf.predict_proba(X).dtype == np.float32
    reg = _quiet_fit(
        MLPRegressor(hidden_layer_sizes=(5,), max_iter=2, random_state=0, dtype=np.float64),
        X,
        X[:, 0],
    )
    assert reg.coefs_[0].dtype == np.float64 and reg.predict(X).dtype == np.float64
    with pytest.raises(ValueError, match="dtype"):
        MLPClassifier(dtype="float16").fit(X, y)


def test_same_random_state_same_model_and_different_seed_differs(iris):
    X, y = iris
    a, b, c = (
        _quiet_fit(MLPClassifier((5,), max_iter=4, random_state=s, dropout=0.1), X, y)
        for s in (3, 3, 4)
    )
    np.testing.assert_array_equal(a.net_.flat_params, b.net_.flat_params)
    assert not np.array_equal(a.net_.flat_params, c.net_.flat_params)


# --------------------------------------------------------------------------------------------
# the objective: loss_curve_, alpha, sample weights
# --------------------------------------------------------------------------------------------


def _frozen_fit(est, X, y, **kw):
    """One full-batch epoch with a negligible step: loss_curve_[0] is the loss at coefs_."""
    est.set_params(
        solver="sgd", momentum=0.0, learning_rate_init=1e-300, batch_size=len(X), max_iter=1
    )
    est.set_params(shuffle=False, dtype="float64", random_state=0)
    return _quiet_fit(est, X, y, **kw)


def test_loss_curve_is_sklearns_log_loss_plus_alpha_term(iris):
    X, y = iris
    clf = _frozen_fit(MLPClassifier((6,), alpha=0.3), X, y)
    C, B = clf.coefs_, clf.intercepts_
    P = _softmax(_relu(X @ C[0] + B[0]) @ C[1] + B[1])
    data = -np.mean(np.log(P[np.arange(len(y)), y]))
    l2 = 0.3 / (2 * len(X)) * sum((c**2).sum() for c in C)
    assert clf.loss_curve_[0] == pytest.approx(data + l2, rel=1e-12)


def test_weighted_loss_is_sklearns_average_with_alpha_over_weight_sum(iris):
    X, y = iris
    s = np.linspace(0.0, 3.0, len(y))
    clf = _frozen_fit(MLPClassifier((6,), alpha=0.3), X, y, sample_weight=s)
    C, B = clf.coefs_, clf.intercepts_
    P = _softmax(_relu(X @ C[0] + B[0]) @ C[1] + B[1])
    data = -np.sum(s * np.log(P[np.arange(len(y)), y])) / s.sum()
    l2 = 0.3 / (2 * s.sum()) * sum((c**2).sum() for c in C)
    assert clf.loss_curve_[0] == pytest.approx(data + l2, rel=1e-12)


def test_regression_loss_is_half_squared_error(iris):
    X, _ = iris
    Y = np.c_[X[:, 0], -X[:, 1]]
    reg = _frozen_fit(MLPRegressor(hidden_layer_sizes=(4,), alpha=0.0), X[:, 2:], Y)
    C, B = reg.coefs_, reg.intercepts_
    pred = _relu(X[:, 2:] @ C[0] + B[0]) @ C[1] + B[1]
    expected = 0.5 * np.mean(np.sum((pred - Y) ** 2, axis=1))
    assert reg.loss_curve_[0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "kind,output,n_out",
    [
        ("log_loss", "softmax", 3),
        ("binary_log_loss", "sigmoid", 1),
        ("binary_log_loss", "sigmoid", 3),
        ("squared_error", "identity", 2),
        ("poisson", "identity", 2),
    ],
)
@pytest.mark.parametrize("weighted", [False, True])
def test_per_sample_losses_pass_the_gradient_check(kind, output, n_out, weighted, rng):
    net = _EstimatorNet([3, 4, n_out], activation="tanh", output=output, dtype="float64", seed=0)
    X = rng.normal(size=(9, 3))
    if kind == "log_loss":
        Y = np.eye(n_out)[rng.integers(0, n_out, 9)]
    elif kind == "binary_log_loss":
        Y = rng.integers(0, 2, (9, n_out)).astype(float)
    elif kind == "poisson":
        Y = rng.poisson(2.0, (9, n_out)).astype(float)
    else:
        Y = rng.normal(size=(9, n_out))
    loss = _SampleLoss(kind, weighted=weighted)
    regs = ()
    if weighted:
        Y = np.c_[Y, rng.uniform(0, 2, 9)]
        regs = (_WeightedL2(0.7, net.weight_keys, loss),)
    assert gradcheck(net, X, Y, loss=loss, regularizers=regs) < 1e-6
    # value() from the outputs agrees with the fused value from the logits
    fused = net._loss_grad(X, Y, loss, 0.0, (), False)
    assert loss.value(net.forward(X), Y) == pytest.approx(fused, rel=1e-9)


def test_zero_weight_samples_are_ignored(iris):
    X, y = iris
    rng = np.random.default_rng(0)
    junk_X, junk_y = rng.normal(size=(30, 4)) * 5, rng.integers(0, 3, 30)
    kw = dict(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=30, random_state=0)
    a = _quiet_fit(MLPClassifier(dtype="float64", **kw), X, y)
    b = _quiet_fit(
        MLPClassifier(dtype="float64", **kw),
        np.r_[X, junk_X],
        np.r_[y, junk_y],
        sample_weight=np.r_[np.ones(len(y)), np.zeros(30)],
    )
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-6, atol=1e-9)


def test_ones_as_weights_take_the_unweighted_path_exactly(iris):
    X, y = iris
    a = _quiet_fit(MLPClassifier((5,), max_iter=5, random_state=0), X, y)
    b = _quiet_fit(MLPClassifier((5,), max_iter=5, random_state=0), X, y, np.ones(len(y)))
    np.testing.assert_array_equal(a.net_.flat_params, b.net_.flat_params)


def test_negative_or_all_zero_weights_are_refused(iris):
    X, y = iris
    with pytest.raises(ValueError, match="(?i)negative"):
        MLPClassifier().fit(X, y, sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match="zero"):
        MLPClassifier().fit(X, y, sample_weight=np.zeros(len(y)))


def test_class_weight_equals_the_matching_sample_weights(iris):
    X, y = iris
    keep = np.r_[0:50, 50:70, 100:150]  # unbalanced: 50 / 20 / 50
    X, y = X[keep], y[keep]
    kw = dict(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=20, random_state=0)
    kw["dtype"] = "float64"
    balanced = _quiet_fit(MLPClassifier(class_weight="balanced", **kw), X, y)
    counts = np.bincount(y)
    sw = (len(y) / (3 * counts))[y]
    by_hand = _quiet_fit(MLPClassifier(**kw), X, y, sample_weight=sw)
    np.testing.assert_allclose(balanced.predict_proba(X), by_hand.predict_proba(X), rtol=1e-9)
    as_dict = _quiet_fit(MLPClassifier(class_weight={1: 4.0}, **kw), X, y, sample_weight=sw)
    both = _quiet_fit(MLPClassifier(**kw), X, y, sample_weight=sw * np.where(y == 1, 4.0, 1.0))
    np.testing.assert_allclose(as_dict.predict_proba(X), both.predict_proba(X), rtol=1e-9)


def test_class_weight_shifts_the_decisions():
    X, y = make_blobs(300, centers=[[0, 0], [1, 1]], cluster_std=1.0, random_state=0)
    kw = dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=100, random_state=0)
    plain = _quiet_fit(MLPClassifier(**kw), X, y)
    heavy = _quiet_fit(MLPClassifier(class_weight={1: 20.0}, **kw), X, y)
    assert (heavy.predict(X) == 1).mean() > (plain.predict(X) == 1).mean() + 0.15


def test_class_weight_errors(iris):
    X, y = iris
    with pytest.raises(ValueError, match="not classes"):
        MLPClassifier(class_weight={7: 2.0}).fit(X, y)
    Xm, Ym = make_multilabel_classification(40, n_classes=3, random_state=0)
    with pytest.raises(ValueError, match="multilabel"):
        MLPClassifier(class_weight={0: 2.0}).fit(Xm, Ym)
    with pytest.raises(ValueError, match="balanced"):
        MLPClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])


@pytest.mark.parametrize("weight", [-1.0, np.nan, np.inf])
def test_a_negative_or_non_finite_class_weight_is_refused(weight, iris):
    # a negative weight trained the class's loss upward; NaN and inf ended in "diverged"
    X, y = iris
    with pytest.raises(ValueError, match=rf"class_weight\[1\]={weight}.*expected a finite"):
        MLPClassifier(class_weight={1: weight}).fit(X, y)


def test_class_weights_that_zero_every_sample_are_refused(iris):
    X, y = iris
    with pytest.raises(ValueError, match="zero"):
        MLPClassifier(class_weight={0: 0.0, 1: 0.0, 2: 0.0}).fit(X, y)


def test_balanced_class_weight_is_refused_by_every_partial_fit_call(iris):
    # "balanced" would be the class frequencies of one batch: refused after fit too
    X, y = iris
    fitted = _quiet_fit(MLPClassifier((4,), max_iter=2, class_weight="balanced"), X, y)
    before = fitted.net_.flat_params.copy()
    with pytest.raises(ValueError, match="class_weight='balanced' is not supported"):
        fitted.partial_fit(X[:60], y[:60])
    np.testing.assert_array_equal(fitted.net_.flat_params, before)
    clf = MLPClassifier((4,)).partial_fit(X, y, classes=[0, 1, 2])
    clf.set_params(class_weight="balanced")
    with pytest.raises(ValueError, match="class_weight='balanced' is not supported"):
        clf.partial_fit(X, y)


# --------------------------------------------------------------------------------------------
# scikit-learn's stopping rules, learning-rate rules and warnings
# --------------------------------------------------------------------------------------------


def test_convergence_warning_at_max_iter(iris):
    X, y = iris
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\)"):
        MLPClassifier((5,), max_iter=3, random_state=0).fit(X, y)


def test_tol_rule_stops_after_n_iter_no_change_without_warning(iris):
    X, y = iris
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = MLPClassifier((5,), tol=10.0, n_iter_no_change=3, max_iter=50, random_state=0)
        clf.fit(X, y)
    # epoch 1 improves on inf; epochs 2..5 do not improve by tol: count 4 > 3 stops
    assert clf.n_iter_ == 5
    assert "did not improve" in clf.history_.stop_reason


def test_early_stopping_scores_validation_and_restores_the_best_weights(digits):
    X, y = digits
    clf = MLPClassifier(
        (20,), early_stopping=True, n_iter_no_change=2, tol=0.0, max_iter=100, random_state=0
    )
    _quiet_fit(clf, X, y)
    assert len(clf.validation_scores_) == clf.n_iter_ == len(clf.loss_curve_)
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_loss_ is None
    assert len(clf.validation_loss_curve_) == clf.n_iter_ == len(clf.history_.val_loss)
    assert clf.history_.val_accuracy == clf.validation_scores_
    assert all(v > 0 for v in clf.validation_loss_curve_)
    np.testing.assert_array_equal(clf.net_.flat_params, clf._best_flat)
    with pytest.raises(ValueError, match="early_stopping"):
        clf.partial_fit(X, y)


def test_early_stopping_regressor_scores_r2(iris):
    X, _ = iris
    reg = MLPRegressor(hidden_layer_sizes=(10,), early_stopping=True, max_iter=30, random_state=0)
    _quiet_fit(reg, X[:, 1:], X[:, 0])
    assert np.isfinite(reg.best_validation_score_) and reg.best_validation_score_ <= 1.0
    assert reg.best_validation_score_ == max(reg.validation_scores_)


def test_invscaling_sets_the_rate_after_each_epoch_from_samples_seen(iris):
    X, y = iris
    clf = MLPClassifier((5,), solver="sgd", learning_rate="invscaling", power_t=0.25)
    clf.set_params(learning_rate_init=0.1, max_iter=4, random_state=0)
    _quiet_fit(clf, X, y)
    n = len(X)
    expected = [0.1] + [0.1 / (e * n + 1) ** 0.25 for e in (1, 2, 3)]
    np.testing.assert_allclose(clf.history_.lr, expected, rtol=1e-12)


def test_adaptive_divides_the_rate_by_5_then_stops(iris):
    X, y = iris
    clf = MLPClassifier((5,), solver="sgd", learning_rate="adaptive", tol=100.0)
    clf.set_params(n_iter_no_change=1, learning_rate_init=1e-4, max_iter=50, random_state=0)
    _quiet_fit(clf, X, y)
    lr = clf.history_.lr
    # two non-improving epochs (count 2 > 1) per division: 1e-4, 2e-5, 4e-6, 8e-7 <= 1e-6 stops
    assert lr[:2] == [1e-4, 1e-4]
    np.testing.assert_allclose(sorted(set(lr), reverse=True), [1e-4, 2e-5, 4e-6, 8e-7])
    assert clf.n_iter_ < 50


def test_adam_ignores_sklearn_rate_rules_as_sklearn_does(iris):
    X, y = iris
    clf = MLPClassifier((5,), learning_rate="invscaling", max_iter=3, random_state=0)
    assert _quiet_fit(clf, X, y).history_.lr == [0.001] * 3


@pytest.mark.parametrize("solver", ["adam", "sgd", "rmsprop"])
def test_cosine_and_warmup_schedules_per_update(solver, iris):
    X, y = iris
    clf = MLPClassifier((5,), solver=solver, learning_rate="warmup+cosine", batch_size=50)
    clf.set_params(learning_rate_init=0.01, max_iter=6, random_state=0)
    _quiet_fit(clf, X, y)
    lr = clf.history_.lr  # rate of the last update of each epoch (3 updates per epoch)
    assert lr[0] == pytest.approx(0.01 * 2 / 3)  # warm-up over the first epoch
    assert lr[1] < 0.01 and all(a > b for a, b in zip(lr[1:], lr[2:], strict=False))
    assert lr[-1] < 0.01 * 0.02  # cosine nearly 0 at the last update of max_iter epochs


def test_schedule_instance_and_schedule_kwargs(iris):
    X, y = iris
    clf = MLPClassifier((5,), learning_rate=cosine(0.05, 10), max_iter=2, batch_size=len(X))
    assert _quiet_fit(clf, X, y).history_.lr == pytest.approx([cosine(0.05, 10)(t) for t in (0, 1)])
    clf = MLPClassifier((5,), learning_rate="exponential", schedule_kwargs={"k": 0.5})
    clf.set_params(max_iter=2, batch_size=len(X), learning_rate_init=0.1)
    assert _quiet_fit(clf, X, y).history_.lr == pytest.approx([0.1, 0.1 * np.exp(-0.5)])
    with pytest.raises(ValueError, match="schedule_kwargs"):
        MLPClassifier(schedule_kwargs={"k": 1.0}).fit(X, y)
    with pytest.raises(ValueError, match="schedule_kwargs"):
        MLPClassifier(learning_rate="cosine", schedule_kwargs={"bogus": 1}).fit(X, y)


@pytest.mark.parametrize("solver", ["adam", "sgd", "momentum", "rmsprop", "adagrad", "radam"])
def test_every_step_solver_learns_iris(solver, iris):
    X, y = iris
    lr = {"adagrad": 0.1, "sgd": 0.05, "momentum": 0.05}.get(solver, 0.01)
    clf = MLPClassifier((16,), solver=solver, learning_rate_init=lr, max_iter=60)
    clf.set_params(batch_size=32, random_state=0)
    assert _quiet_fit(clf, X, y).score(X, y) > 0.9


def test_lbfgs_learns_and_warns_when_it_runs_out(iris):
    X, y = iris
    clf = _quiet_fit(MLPClassifier((8,), solver="lbfgs", max_iter=200, random_state=0), X, y)
    assert clf.score(X, y) > 0.95
    assert clf.n_iter_ == len(clf.loss_curve_) and clf.t_ == 0
    assert clf.loss_ == pytest.approx(clf.loss_curve_[-1])
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        MLPClassifier((8,), solver="lbfgs", max_iter=2, random_state=0).fit(X, y)
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")


def test_divergence_is_a_value_error():
    X = np.random.default_rng(0).normal(size=(40, 3)) * 1e6
    reg = MLPRegressor(
        hidden_layer_sizes=(5,), solver="sgd", learning_rate_init=10.0, max_iter=20, random_state=0
    )
    with pytest.raises(ValueError, match="non-finite"):
        reg.fit(X, X[:, 0] * 1e6)


def test_verbose_prints_sklearns_lines(iris, capsys):
    X, y = iris
    _quiet_fit(MLPClassifier((5,), max_iter=2, verbose=True, random_state=0), X, y)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Iteration 1, loss = ") and out[1].startswith("Iteration 2, ")


# --------------------------------------------------------------------------------------------
# parameters, errors, the added features
# --------------------------------------------------------------------------------------------


def test_errors_as_sklearn_users_expect(iris):
    X, y = iris
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(X)
    with pytest.raises(ValueError, match="'solver' parameter"):
        MLPClassifier(solver="newton").fit(X, y)
    with pytest.raises(ValueError, match="'alpha' parameter"):
        MLPRegressor(alpha=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be > 0"):
        MLPClassifier(hidden_layer_sizes=(5, 0)).fit(X, y)
    with pytest.raises(ValueError, match=r"hidden_layer_sizes=.*2\.5.*expected whole numbers"):
        MLPClassifier(hidden_layer_sizes=(5, 2.5)).fit(X, y)  # not "must be > 0"
    with pytest.raises(ValueError, match="Unknown label type"):
        MLPClassifier().fit(X, X[:, 0])
    clf = _quiet_fit(MLPClassifier((5,), max_iter=1), X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :3])


def test_activation_per_hidden_layer_and_leaky_relu(iris):
    X, y = iris
    clf = MLPClassifier((8, 6), activation=["leaky_relu", "tanh"], max_iter=40, batch_size=16)
    clf.set_params(learning_rate_init=0.01, random_state=0)
    _quiet_fit(clf, X, y)
    assert clf.net_.activation == ["leaky_relu", "tanh"]
    assert clf.score(X, y) > 0.8
    with pytest.raises(ValueError, match="one per hidden layer"):
        MLPClassifier((8, 6), activation=["relu"]).fit(X, y)
    with pytest.raises(ValueError, match="cannot be expressed in scikit-learn"):
        clf.to_sklearn()


def test_dropout_trains_and_predicts_deterministically(iris):
    X, y = iris
    clf = MLPClassifier((32,), dropout=0.3, max_iter=60, batch_size=16, random_state=0)
    _quiet_fit(clf, X, y)
    assert [type(layer).__name__ for layer in clf.net_.layers].count("Dropout") == 1
    np.testing.assert_array_equal(clf.predict_proba(X), clf.predict_proba(X))
    assert clf.score(X, y) > 0.9
    with pytest.raises(ValueError, match="dropout needs a stochastic solver"):
        MLPClassifier(dropout=0.2, solver="lbfgs").fit(X, y)
    with pytest.raises(ValueError, match="one per hidden layer"):
        MLPClassifier((4, 4), dropout=[0.1]).fit(X, y)


def test_binary_probabilities_keep_the_small_one_and_log_proba_is_their_log():
    X, y = make_blobs(60, centers=2, random_state=0)
    clf = _quiet_fit(MLPClassifier((5,), max_iter=60, random_state=0), X, y)
    far = np.concatenate([X * s for s in (5, 10, 20, 50, 100, 200)]).astype(np.float32)
    z = clf.net_._forward_unchecked(far, False, stop=-1)[:, 0]
    far = far[(np.abs(z) > 20) & (np.abs(z) < 80)]  # p rounds to 1 in float32, 1 - p does not
    z = clf.net_._forward_unchecked(far, False, stop=-1)[:, 0]
    P = clf.predict_proba(far)
    assert len(far) > 10 and (P.max(axis=1) == 1).all()
    assert (P.min(axis=1) > 0).all()  # sigmoid(-|z|), not 1 - 1 = 0
    np.testing.assert_allclose(P.min(axis=1), 1 / (1 + np.exp(np.abs(z.astype(float)))), rtol=1e-5)
    np.testing.assert_array_equal(clf.predict_log_proba(far), np.log(P))


def test_binary_multilabel_and_multioutput_shapes():
    Xb, yb = make_blobs(60, centers=2, random_state=0)
    labels = np.array(["no", "yes"])[yb]
    clf = _quiet_fit(MLPClassifier((5,), max_iter=20, random_state=0), Xb, labels)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 1
    assert clf.predict_proba(Xb).shape == (60, 2) and set(clf.predict(Xb)) <= {"no", "yes"}
    np.testing.assert_allclose(clf.predict_proba(Xb).sum(1), 1, rtol=1e-6)
    Xm, Ym = make_multilabel_classification(50, n_classes=4, random_state=0)
    ml = _quiet_fit(MLPClassifier((8,), max_iter=20, random_state=0), Xm, Ym)
    assert ml.predict(Xm).shape == (50, 4) and ml.predict_proba(Xm).shape == (50, 4)
    np.testing.assert_array_equal(ml.classes_, np.arange(4))
    reg = _quiet_fit(
        MLPRegressor(hidden_layer_sizes=(5,), max_iter=5, random_state=0), Xm, Ym * 1.5
    )
    assert reg.predict(Xm).shape == (50, 4) and reg.n_outputs_ == 4


def test_poisson_regressor_predicts_positive_means():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (300, 2))
    y = rng.poisson(np.exp(1.0 + X[:, 0] - X[:, 1]))
    reg = MLPRegressor("poisson", (10,), learning_rate_init=0.01, max_iter=200, random_state=0)
    _quiet_fit(reg, X, y)
    assert reg.out_activation_ == "exp" and (reg.predict(X) > 0).all()
    assert reg.score(X, y) > 0.4
    with pytest.raises(ValueError, match=r"-2\.5.*expects y >= 0"):  # names the value
        MLPRegressor("poisson").fit(X, np.r_[-np.ones(299), -2.5])


def test_sparse_input_is_the_same_as_dense(iris):
    X, y = iris
    kw = dict(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    a = _quiet_fit(MLPClassifier(**kw), X, y)
    b = _quiet_fit(MLPClassifier(**kw), sparse.csr_matrix(X), y)
    np.testing.assert_array_equal(a.net_.flat_params, b.net_.flat_params)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(sparse.csc_matrix(X)))


def test_feature_names_are_kept():
    pd = pytest.importorskip("pandas")
    X, y = make_blobs(40, n_features=3, random_state=0)
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    clf = _quiet_fit(MLPClassifier((4,), max_iter=2), df, y)
    assert list(clf.feature_names_in_) == ["a", "b", "c"]


# --------------------------------------------------------------------------------------------
# partial_fit and warm_start
# --------------------------------------------------------------------------------------------


def test_partial_fit_one_epoch_per_call_and_keeps_the_optimizer(digits):
    X, y = digits
    clf = MLPClassifier((20,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:300], y[:300], classes=np.arange(10))
    opt = clf._optimizer
    for _ in range(9):
        clf.partial_fit(X, y)
    assert clf._optimizer is opt and opt.t == 2 + 9 * 3  # 300 then 9 x 600 samples, batch 200
    assert clf.n_iter_ == 1 and clf.t_ == 300 + 9 * 600 and len(clf.loss_curve_) == 10
    assert clf.loss_curve_[-1] < clf.loss_curve_[1]
    with pytest.raises(ValueError, match="not in `self.classes_`"):
        clf.partial_fit(X[:5], np.array([0, 1, 2, 3, 11]))
    with pytest.raises(ValueError, match="not the same"):
        clf.partial_fit(X, y, classes=[0, 1])


def test_partial_fit_regressor_and_feature_check(iris):
    X, _ = iris
    reg = MLPRegressor(hidden_layer_sizes=(5,), random_state=0)
    for _ in range(3):
        reg.partial_fit(X[:, 1:], X[:, 0])
    assert reg.n_iter_ == 1 and len(reg.loss_curve_) == 3
    with pytest.raises(ValueError, match="features"):
        reg.partial_fit(X, X[:, 0])


def test_warm_start_continues_and_refuses_a_changed_network(iris):
    X, y = iris
    clf = _quiet_fit(MLPClassifier((5,), max_iter=3, warm_start=True, random_state=0), X, y)
    before = clf.net_.flat_params.copy()
    _quiet_fit(clf, X, y)
    assert len(clf.loss_curve_) == 6 and clf.n_iter_ == 3
    assert not np.array_equal(before, clf.net_.flat_params)
    clf.set_params(hidden_layer_sizes=(6,))
    with pytest.raises(ValueError, match="warm_start=False"):
        clf.fit(X, y)
    clf.set_params(hidden_layer_sizes=(5,))
    with pytest.raises(ValueError, match="same classes"):
        clf.fit(X[:100], y[:100])


@pytest.mark.parametrize("first,then", [("squared_error", "poisson"), ("poisson", "squared_error")])
def test_continued_training_refuses_a_changed_regression_loss(first, then, iris):
    # the output (identity or exp of the log-mean) was built for the first loss: training on
    # with the other one would leave predict applying the wrong output
    X, _ = iris
    y = np.exp(X[:, 0] / 2)
    reg = MLPRegressor(loss=first, hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    reg = _quiet_fit(reg, X, y)
    before = reg.net_.flat_params.copy()
    reg.set_params(loss=then, warm_start=True)
    with pytest.raises(ValueError, match=f"loss='{then}'.*warm_start=False"):
        reg.fit(X, y)
    with pytest.raises(ValueError, match=f"loss='{then}'.*warm_start=False"):
        reg.partial_fit(X, y)
    np.testing.assert_array_equal(reg.net_.flat_params, before)


# --------------------------------------------------------------------------------------------
# scikit-learn tooling, pickling, model files
# --------------------------------------------------------------------------------------------


def test_pipeline_gridsearch_cross_val_score_and_clone(iris):
    X, y = iris
    pipe = make_pipeline(
        StandardScaler(), MLPClassifier((8,), max_iter=30, batch_size=10, random_state=0)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(pipe, X, y, cv=3, n_jobs=2)  # joblib pickles the estimator
        grid = GridSearchCV(
            MLPClassifier(max_iter=20, random_state=0),
            {"hidden_layer_sizes": [(4,), (8,)], "solver": ["adam", "rmsprop"]},
            cv=2,
        ).fit(X, y)
    assert scores.mean() > 0.7
    assert grid.best_params_["hidden_layer_sizes"] in [(4,), (8,)]
    twin = clone(MLPClassifier((3, 2), activation=["relu", "tanh"], class_weight={0: 2.0}))
    assert twin.get_params()["activation"] == ["relu", "tanh"] and not hasattr(twin, "net_")


def test_pickle_round_trip_predicts_the_same_and_keeps_training(iris):
    X, y = iris
    clf = _quiet_fit(MLPClassifier((5,), max_iter=3, warm_start=True, random_state=0), X, y)
    copy = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(copy.predict_proba(X), clf.predict_proba(X))
    assert np.shares_memory(copy.coefs_[0], copy.net_.flat_params)
    _quiet_fit(copy, X, y)  # the optimizer updates the unpickled network's weights
    assert not np.array_equal(copy.predict_proba(X), clf.predict_proba(X))


def test_save_and_load_round_trip(tmp_path, iris):
    X, y = iris
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = MLPClassifier((6,), max_iter=4, early_stopping=True, class_weight={"setosa": 2.0})
    clf.set_params(learning_rate=cosine(0.01, 100), random_state=0, n_iter_no_change=np.inf)
    _quiet_fit(clf, X, labels)
    path = clf.save(tmp_path / "clf.safetensors")
    back = MLPClassifier.load(path)
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))
    assert back.get_params() == clf.get_params()
    for k in ("n_iter_", "t_", "loss_curve_", "validation_scores_", "best_validation_score_"):
        assert getattr(back, k) == getattr(clf, k), k
    assert back.history_.val_loss == clf.history_.val_loss and back.best_loss_ is None
    np.testing.assert_array_equal(back.classes_, clf.classes_)
    assert load_estimator(path).score(X, labels) == clf.score(X, labels)
    _quiet_fit(back.set_params(warm_start=True, early_stopping=False), X, labels)  # trains on
    reg = _quiet_fit(
        MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, dtype="float64", random_state=0), X, X
    )
    reg.save(tmp_path / "reg.safetensors")
    np.testing.assert_array_equal(
        load_estimator(tmp_path / "reg.safetensors").predict(X), reg.predict(X)
    )
    with pytest.raises(ModelFileError, match="MLPRegressor"):
        MLPClassifier.load(tmp_path / "reg.safetensors")
    backprop.save(backprop.MLP([4, 3], output="softmax"), tmp_path / "plain.safetensors")
    with pytest.raises(ModelFileError, match="no scikit-learn estimator"):
        load_estimator(tmp_path / "plain.safetensors")


def test_save_and_load_multilabel(tmp_path):
    Xm, Ym = make_multilabel_classification(40, n_classes=3, random_state=0)
    ml = _quiet_fit(MLPClassifier((6,), max_iter=3, random_state=0), Xm, Ym)
    ml.save(tmp_path / "ml.safetensors")
    back = MLPClassifier.load(tmp_path / "ml.safetensors")
    np.testing.assert_array_equal(back.predict(Xm), ml.predict(Xm))


# --------------------------------------------------------------------------------------------
# conversion from and to scikit-learn
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["multiclass", "binary", "multilabel", "regression"])
def test_from_and_to_sklearn_predict_the_same(kind, iris):
    X, y = iris
    if kind == "multilabel":
        X, y = make_multilabel_classification(60, n_features=4, n_classes=3, random_state=0)
    elif kind == "binary":
        y = np.where(y == 0, "a", "b")
    elif kind == "regression":
        X, y = X[:, 1:], X[:, 0]
    Sk, Ours = (
        (SkMLPRegressor, MLPRegressor)
        if kind == "regression"
        else (
            SkMLPClassifier,
            MLPClassifier,
        )
    )
    sk = _quiet_fit(Sk(hidden_layer_sizes=(7,), activation="tanh", max_iter=30), X, y)
    ours = Ours.from_sklearn(sk)
    assert ours.net_.dtype == np.float64 and ours.activation == "tanh"
    np.testing.assert_array_equal(ours.predict(X), sk.predict(X))
    for a, b in zip(ours.coefs_, sk.coefs_, strict=True):
        np.testing.assert_array_equal(a, b)
    back = ours.to_sklearn()
    np.testing.assert_array_equal(back.predict(X), sk.predict(X))
    if kind != "regression":
        np.testing.assert_allclose(ours.predict_proba(X), sk.predict_proba(X), rtol=1e-12)
        np.testing.assert_allclose(back.predict_proba(X), sk.predict_proba(X), rtol=1e-12)
    else:
        np.testing.assert_allclose(ours.predict(X), sk.predict(X), rtol=1e-12)
    # our own fit converts to scikit-learn too, float32 weights and all
    mine = _quiet_fit(Ours(hidden_layer_sizes=(5,), max_iter=5, random_state=0), X, y)
    # (scikit-learn computes float64 X times float32 coefs in float64: equal up to rounding)
    if kind == "regression":
        np.testing.assert_allclose(mine.to_sklearn().predict(X), mine.predict(X), rtol=1e-5)
    else:
        np.testing.assert_array_equal(mine.to_sklearn().predict(X), mine.predict(X))
    with pytest.raises(TypeError, match="expected a fitted"):
        MLPClassifier.from_sklearn(SkMLPRegressor())


# --------------------------------------------------------------------------------------------
# parity with scikit-learn's MLP (the full table: bench/sklearn_parity.py)
# --------------------------------------------------------------------------------------------


def test_accuracy_on_par_with_sklearn_on_digits():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    tr, te = slice(0, 1200), slice(1200, None)
    kw = dict(hidden_layer_sizes=(50,), max_iter=40, random_state=0)
    sk = _quiet_fit(SkMLPClassifier(**kw), X[tr], y[tr]).score(X[te], y[te])
    ours = _quiet_fit(MLPClassifier(**kw), X[tr], y[tr]).score(X[te], y[te])
    assert ours >= sk - 0.02, (ours, sk)


@pytest.mark.parametrize("activation", ["logistic", "linear"])
def test_continued_training_accepts_scikit_learn_activation_names(activation):
    # The engine calls them sigmoid and identity; comparing the names refused every
    # partial_fit after the first and every warm start.
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(activation=activation, random_state=0)
        clf.partial_fit(X, y, classes=[0, 1, 2])
        clf.partial_fit(X, y)
        clf.set_params(warm_start=True, max_iter=3).fit(X, y)
    assert len(clf.loss_curve_) == 5  # 1 + 1 + 3 epochs


def test_warm_start_applies_a_changed_dropout():
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(max_iter=5, warm_start=True, random_state=0).fit(X, y)
        w = clf.coefs_[0].copy()
        clf.set_params(dropout=0.5, max_iter=1)
        assert clf.net_.dropout == [0.0]
        clf.fit(X, y)
        assert clf.net_.dropout == [0.5]  # it was silently left at 0
        assert not np.array_equal(clf.coefs_[0], w)  # the same weights, trained on
        clf.set_params(dropout=0.0, solver="lbfgs", max_iter=2).fit(X, y)  # refused before
    assert clf.net_.dropout == [0.0]


def test_a_converted_model_keeps_training_in_scikit_learn():
    X, y = load_iris(return_X_y=True)
    Xs = StandardScaler().fit_transform(X)
    clf = MLPClassifier(random_state=0, max_iter=2000).fit(Xs, y)  # converges
    sk = clf.to_sklearn()
    sk.partial_fit(Xs, y)  # AttributeError: no attribute '_no_improvement_count'
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.to_sklearn().set_params(warm_start=True, max_iter=5).fit(Xs, y)


def test_conversions_copy_the_validation_scores_so_training_one_leaves_the_other():
    X, y = load_iris(return_X_y=True)
    Xs = StandardScaler().fit_transform(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = SkMLPClassifier(max_iter=4, early_stopping=True, random_state=0).fit(Xs, y)
        ours = MLPClassifier.from_sklearn(sk).set_params(warm_start=True, max_iter=3)
        ours.fit(Xs, y)
        assert len(sk.validation_scores_) == 4 and len(ours.validation_scores_) == 7
        back = ours.to_sklearn().set_params(warm_start=True, max_iter=2)
        back.fit(Xs, y)
        assert len(ours.validation_scores_) == 7 and len(back.validation_scores_) == 9


def test_conversions_keep_a_multi_output_regressors_loss_in_each_librarys_units():
    X, y = load_iris(return_X_y=True)
    Y = np.c_[X[:, 0], y]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = SkMLPRegressor(hidden_layer_sizes=(8,), solver="sgd", max_iter=5, random_state=0)
        sk.fit(X, Y)
        ours = MLPRegressor.from_sklearn(sk, dtype="float64")
        # backprop sums the squared error over the 2 outputs; scikit-learn averages them
        np.testing.assert_allclose(ours.loss_curve_, 2 * np.array(sk.loss_curve_))
        np.testing.assert_allclose(ours.to_sklearn().loss_curve_, sk.loss_curve_)
        assert ours.to_sklearn().best_loss_ == pytest.approx(sk.best_loss_)
        # a warm start compares like with like: it used to stop at once ("did not improve")
        ours.set_params(warm_start=True, max_iter=30, n_iter_no_change=10).fit(X, Y)
    assert ours.loss_curve_[-1] < 2 * sk.loss_curve_[-1]
    assert len(ours.loss_curve_) > len(sk.loss_curve_) + 11


def test_save_and_load_keep_the_labels_dtype(tmp_path):
    X, y = load_iris(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(max_iter=5, random_state=0).fit(X, y.astype(np.uint8))
    clf.save(tmp_path / "m.safetensors")
    back = MLPClassifier.load(tmp_path / "m.safetensors")
    assert back.classes_.dtype == np.uint8 and back.predict(X).dtype == np.uint8
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))
