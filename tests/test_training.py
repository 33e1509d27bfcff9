import numpy as np
import pytest

from backprop import MLP, Callback, TrainingDiverged, evaluate, fit, gradcheck
from backprop.schedules import step_decay


def _blobs(rng, n=120, d=4, k=3, scale=3.0):
    centers = rng.normal(size=(k, d)) * scale
    y = rng.integers(0, k, n)
    return centers[y] + rng.normal(size=(n, d)), y


def test_batch_gd_equals_hand_written_loop(rng):
    X, y = _blobs(rng, n=40)
    net = MLP([4, 5, 3], activation="tanh", output="softmax", dtype="float64", seed=0)
    ref = MLP([4, 5, 3], activation="tanh", output="softmax", dtype="float64", seed=0)
    fit(net, X, y, optimizer="sgd", lr=0.3, epochs=5, batch_size=len(X), l2=0.01)
    for _ in range(5):  # theta <- theta - eta * grad l(theta; D), the notes' batch GD
        _, g = ref.loss_and_grad(X, y, l2=0.01)
        for k in ref.params:
            ref.params[k] -= 0.3 * g[k]
    np.testing.assert_allclose(net.flat_params, ref.flat_params, rtol=1e-12)


def test_minibatch_without_shuffle_equals_hand_written_loop(rng):
    X, y = _blobs(rng, n=30)
    net = MLP([4, 3], output="softmax", dtype="float64", seed=0)
    ref = MLP([4, 3], output="softmax", dtype="float64", seed=0)
    hist = fit(net, X, y, optimizer="sgd", lr=0.1, epochs=2, batch_size=7, shuffle=False)
    for _ in range(2):
        for s in range(0, 30, 7):  # last batch has 2 samples
            _, g = ref.loss_and_grad(X[s : s + 7], y[s : s + 7])
            for k in ref.params:
                ref.params[k] -= 0.1 * g[k]
    np.testing.assert_allclose(net.flat_params, ref.flat_params, rtol=1e-12)
    assert hist.n_steps == 2 * 5


@pytest.mark.parametrize("batch_size,steps", [(1, 30), (30, 1), (8, 4), (1000, 1)])
def test_updates_per_epoch(batch_size, steps, rng):
    X, y = _blobs(rng, n=30)
    net = MLP([4, 3], output="softmax", seed=0)
    hist = fit(net, X, y, epochs=3, batch_size=batch_size)
    assert hist.n_steps == 3 * steps


def test_same_seed_gives_bit_identical_training(rng):
    X, y = _blobs(rng)
    runs = []
    for seed in (7, 7, 8):
        net = MLP([4, 8, 3], output="softmax", seed=seed, dropout=0.2)
        fit(net, X, y, epochs=3, batch_size=16)
        runs.append(net.flat_params.copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_reshuffles_every_epoch(rng):
    X, y = _blobs(rng, n=32)
    seen = []

    class Spy(Callback):
        def on_batch_end(self, trainer, step, batch_loss, batch_size):
            seen.append(batch_loss)

    net = MLP([4, 3], output="softmax", dtype="float64", seed=0)
    fit(net, X, y, optimizer="sgd", lr=0.0 + 1e-12, epochs=2, batch_size=8, callbacks=[Spy()])
    # With a negligible learning rate the weights barely move, so different batch losses in
    # epoch 2 mean different batches: the data was reshuffled.
    first, second = np.array(seen[:4]), np.array(seen[4:])
    assert not np.allclose(np.sort(first), np.sort(second))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_learns_and_keeps_dtype(dtype, rng):
    X, y = _blobs(rng)
    net = MLP([4, 16, 3], output="softmax", dtype=dtype, seed=0)
    hist = fit(
        net, X, y, optimizer="adam", lr=0.01, epochs=40, batch_size=16, validation_data=(X, y)
    )
    assert hist.loss[-1] < hist.loss[0] / 3
    assert hist.val_accuracy[-1] > 0.9
    assert net.flat_params.dtype == np.dtype(dtype)
    assert net.forward(X).dtype == np.dtype(dtype)
    assert len(hist.val_loss) == len(hist.loss) == len(hist.accuracy) == 40


def test_stopping_rules(rng):
    X, y = _blobs(rng)
    net = MLP([4, 8, 3], output="softmax", seed=0)
    h = fit(net, X, y, epochs=50, batch_size=10, max_iter=25)
    assert h.n_steps == 25 and "max_iter" in h.stop_reason

    net = MLP([4, 8, 3], output="softmax", seed=0)
    h = fit(net, X, y, lr=0.05, epochs=500, batch_size=10, loss_threshold=0.05)
    assert h.loss[-1] < 0.05 and h.epochs < 500 and "below" in h.stop_reason

    net = MLP([4, 8, 3], output="softmax", seed=0)
    h = fit(net, X, y, lr=0.05, epochs=500, batch_size=len(X), tol=1e-3, n_iter_no_change=2)
    assert h.epochs < 500 and "tol" in h.stop_reason
    assert abs(h.loss[-1] - h.loss[-2]) < 1e-3 and abs(h.loss[-2] - h.loss[-3]) < 1e-3


def test_early_stopping_restores_best_weights(rng):
    # Few noisy samples and a large network: the validation loss turns up soon.
    X = rng.normal(size=(20, 4))
    y = rng.integers(0, 3, 20)
    Xv = rng.normal(size=(50, 4))
    yv = rng.integers(0, 3, 50)
    snapshots = {}

    class Snap(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            snapshots[epoch] = trainer.net.flat_params.copy()

    net = MLP([4, 64, 3], output="softmax", seed=0)
    h = fit(
        net,
        X,
        y,
        lr=0.01,
        epochs=300,
        batch_size=5,
        validation_data=(Xv, yv),
        early_stopping=True,
        patience=5,
        callbacks=[Snap()],
    )
    best = int(np.argmin(h.val_loss)) + 1
    assert h.best_epoch == best
    assert h.epochs == best + 5 < 300
    np.testing.assert_array_equal(net.flat_params, snapshots[best])
    assert evaluate(net, Xv, yv)["loss"] == pytest.approx(min(h.val_loss), rel=1e-5)


def test_divergence_stops_with_message_and_keeps_finite_weights(rng):
    X = rng.normal(size=(64, 3)) * 10
    y = rng.normal(size=(64, 1)) * 10
    net = MLP([3, 16, 1], activation="relu", dtype="float32", seed=0)
    with pytest.raises(TrainingDiverged, match=r"epoch \d+.*learning rate \(1e\+06\)") as exc:
        fit(net, X, y, optimizer="sgd", lr=1e6, epochs=50, batch_size=8)
    assert np.isfinite(net.flat_params).all()
    assert "\n" not in str(exc.value)
    assert exc.value.history.stop_reason == str(exc.value)


def test_ctrl_c_stops_cleanly(rng):
    X, y = _blobs(rng)

    class Interrupt(Callback):
        def on_batch_end(self, trainer, step, batch_loss, batch_size):
            if trainer.epoch == 3:
                raise KeyboardInterrupt

    net = MLP([4, 8, 3], output="softmax", seed=0)
    h = fit(
        net,
        X,
        y,
        epochs=10,
        batch_size=16,
        validation_data=(X, y),
        early_stopping=True,
        callbacks=[Interrupt()],
    )
    assert h.interrupted and h.epochs == 2 and "interrupted" in h.stop_reason
    assert h.best_epoch in (1, 2)
    assert np.isfinite(net.flat_params).all()


def test_schedule_drives_learning_rate(rng):
    X, y = _blobs(rng, n=40)
    net = MLP([4, 3], output="softmax", seed=0)
    h = fit(
        net,
        X,
        y,
        optimizer="sgd",
        schedule=step_decay(0.1, gamma=0.5, every=4),
        epochs=4,
        batch_size=10,
    )
    # 4 steps per epoch; the lr of the last step of each epoch
    np.testing.assert_allclose(h.lr, [0.1, 0.05, 0.025, 0.0125])


def test_lbfgs_full_batch(rng):
    X = rng.uniform(-1, 1, size=(50, 1))
    y = np.sin(3 * X)
    net = MLP([1, 10, 1], activation="tanh", dtype="float64", seed=0)
    h = fit(net, X, y, optimizer="lbfgs", epochs=300)
    assert h.loss[-1] < 1e-3
    assert np.mean((net.forward(X) - y) ** 2) < 1e-3


def test_lbfgs_respects_max_iter(rng):
    X = rng.uniform(-1, 1, size=(50, 1))
    y = np.sin(3 * X)
    net = MLP([1, 10, 1], activation="tanh", dtype="float64", seed=0)
    h = fit(net, X, y, optimizer="lbfgs", epochs=50, max_iter=3)
    assert h.n_steps == 3 and h.epochs == 3


def test_ctrl_c_during_lbfgs_stops_cleanly_with_the_last_accepted_iterate(rng):
    """Ctrl-C used to escape fit from inside SciPy's L-BFGS: no History, and the command line
    saved nothing. Now the weights are those of the last accepted iteration."""
    X = rng.uniform(-1, 1, size=(50, 1))
    y = np.sin(3 * X)
    seen = []

    class Interrupt(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            seen.append(trainer.net.flat_params.copy())
            if epoch == 4:
                raise KeyboardInterrupt

    net = MLP([1, 10, 1], activation="tanh", dtype="float64", seed=0)
    h = fit(net, X, y, optimizer="lbfgs", epochs=100, callbacks=[Interrupt()])
    assert h.interrupted and "interrupted during iteration" in h.stop_reason
    assert len(h.loss) == 4
    np.testing.assert_array_equal(net.flat_params, seen[-1])


def test_lbfgs_calls_every_callback_hook_once_per_iteration(rng):
    """L-BFGS called only on_train_begin/on_epoch_end/on_train_end: a callback counting epochs
    or updates saw none."""
    X = rng.uniform(-1, 1, size=(40, 1))
    y = np.sin(3 * X)
    calls = []

    class Log(Callback):
        def on_epoch_begin(self, trainer, epoch):
            calls.append(("begin", epoch))

        def on_batch_end(self, trainer, step, batch_loss, batch_size):
            calls.append(("batch", step, batch_size, batch_loss))

        def on_epoch_end(self, trainer, epoch, logs):
            calls.append(("end", epoch, logs["loss"]))

    net = MLP([1, 8, 1], activation="tanh", dtype="float64", seed=0)
    h = fit(net, X, y, optimizer="lbfgs", epochs=3, callbacks=[Log()])
    assert [c[:2] for c in calls] == [
        ("begin", 1), ("batch", 1), ("end", 1),
        ("begin", 2), ("batch", 2), ("end", 2),
        ("begin", 3), ("batch", 3), ("end", 3),
    ]  # fmt: skip
    assert all(c[2] == 40 for c in calls if c[0] == "batch")
    assert (
        [c[3] for c in calls if c[0] == "batch"] == h.loss == [c[2] for c in calls if c[0] == "end"]
    )


def test_lbfgs_on_a_non_finite_loss_raises_training_diverged_and_keeps_the_weights(rng):
    """A loss that is NaN from the start made SciPy stop with 'ABNORMAL' and fit returned an
    empty history, with NumPy's overflow warnings printed; the mini-batch loop raises."""
    X = (rng.standard_normal((30, 3)) * 1e20).astype(np.float32)
    y = (rng.standard_normal((30, 1)) * 1e20).astype(np.float32)
    net = MLP([3, 4, 1], seed=0)
    before = net.flat_params.copy()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings either
        with pytest.raises(TrainingDiverged, match=r"^training diverged in epoch 1: the loss is n"):
            fit(net, X, y, optimizer="lbfgs", epochs=5)
    np.testing.assert_array_equal(net.flat_params, before)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(batch_size=0), "batch_size=0"),
        (dict(epochs=0), "epochs=0"),
        (dict(l2=-1), "l2=-1"),
        (dict(optimizer="adamw"), "adamw"),
        (dict(loss="hinge"), "hinge"),
        (dict(lr=-0.1), "lr"),
        (dict(validation_data=np.zeros(3)), "validation_data"),
        (dict(early_stopping=True, monitor="val_loss"), "validation_data"),
    ],
)
def test_bad_arguments(kwargs, match, rng):
    X, y = _blobs(rng, n=10)
    net = MLP([4, 3], output="softmax", seed=0)
    with pytest.raises((ValueError, TypeError), match=match):
        fit(net, X, y, **kwargs)


def test_atomic_write_gives_normal_file_mode(tmp_path):
    import os

    from backprop.callbacks import atomic_write_bytes

    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"abc")
    umask = os.umask(0)
    os.umask(umask)
    assert target.read_bytes() == b"abc"
    assert (target.stat().st_mode & 0o777) == (0o666 & ~umask)
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]  # no temporary left behind


def test_learning_rate_with_an_optimizer_instance_is_a_clear_error():
    from backprop.optimizers import Adam
    from backprop.schedules import constant

    net = MLP([2, 3, 1], seed=0, dtype="float64")
    X = np.random.default_rng(0).random((8, 2))
    y = X.sum(axis=1)
    before = net.flat_params.copy()
    with pytest.raises(ValueError, match=r"lr=0\.1 was given with the optimizer instance Adam"):
        fit(net, X, y, optimizer=Adam(lr=0.01), lr=0.1, epochs=1)
    with pytest.raises(ValueError, match="schedule was given with the optimizer instance"):
        fit(net, X, y, optimizer=Adam(lr=0.01), schedule=constant(0.1), epochs=1)
    np.testing.assert_array_equal(net.flat_params, before)  # nothing trained
    fit(net, X, y, optimizer=Adam(lr=0.01), epochs=1)  # the instance alone is fine


def test_lbfgs_on_a_tiny_problem_runs_with_one_blas_thread_and_restores_it(blas_threads_seen_by):
    from backprop import training

    seen = blas_threads_seen_by(training, "_fit_lbfgs")
    before = seen.now()
    net = MLP([2, 4, 1], activation="tanh", output="sigmoid", seed=0, dtype="float64")
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    fit(net, X, [0, 1, 1, 0], optimizer="lbfgs", epochs=5)
    assert seen == [{1}]
    assert seen.now() == before


def test_history_json_is_standard_json_with_nan_as_null(tmp_path):
    import json

    from backprop.callbacks import History

    h = History(loss=[1.0, 0.5], lr=[float("nan"), float("nan")], epoch_time=[0.1, float("inf")])
    p = tmp_path / "h.json"
    h.save_json(p)
    text = p.read_text()
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard {c}"))
    assert data["lr"] == [None, None]
    back = History.load_json(p)
    assert back.loss == [1.0, 0.5] and np.isnan(back.lr).all() and np.isnan(back.epoch_time[1])


@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
def test_evaluate_gives_the_loss_that_training_minimises(output):
    # evaluate clipped log(a) at a tiny a while training used the exact logits form: 15.9
    # against 40 for a confidently wrong sigmoid output, so val_loss and loss disagreed.
    n_out = 1 if output == "sigmoid" else 3
    net = MLP([2, 4, n_out], output=output, seed=0)
    X = np.random.default_rng(0).normal(size=(32, 2)).astype(np.float32) * 40
    y = np.arange(32) % (2 if output == "sigmoid" else 3)
    value, _ = net.loss_and_grad(X, y)
    ev = evaluate(net, X, y)
    assert ev["loss"] == pytest.approx(value, rel=1e-6)


def test_bad_validation_data_says_it_is_the_validation_data(rng):
    X, y = _blobs(rng)
    net = MLP([4, 8, 3], output="softmax", seed=0)
    with pytest.raises(ValueError, match=r"^validation_data: X has 3 features"):
        fit(net, X, y, epochs=1, validation_data=(X[:, :3], y))
    with pytest.raises(ValueError, match=r"^validation_data: y has 5 rows"):
        fit(net, X, y, epochs=1, validation_data=(X, y[:5]))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(early_stopping=True, patience=2.7), TypeError, "patience=2.7"),
        (dict(early_stopping=True, patience=True), TypeError, "patience=True"),
        (dict(early_stopping=True, min_delta=-1), ValueError, "min_delta=-1"),
        (dict(early_stopping=True, min_delta=float("nan")), ValueError, "min_delta=nan"),
        (dict(loss_threshold="a"), TypeError, "loss_threshold='a'"),
        (dict(loss_threshold=float("nan")), ValueError, "loss_threshold=nan"),
    ],
)
def test_stopping_rule_arguments_are_checked(rng, kwargs, error, match):
    X, y = _blobs(rng)
    net = MLP([4, 8, 3], output="softmax", seed=0)
    with pytest.raises(error, match=match):
        fit(net, X, y, epochs=2, validation_data=(X, y), **kwargs)


def test_early_stopping_on_accuracy_needs_a_classification_loss(rng):
    X = rng.normal(size=(30, 2))
    net = MLP([2, 3, 1], seed=0)
    with pytest.raises(ValueError, match="'val_accuracy' needs a classification loss"):
        fit(
            net,
            X,
            X[:, :1],
            epochs=2,
            validation_data=(X, X[:, :1]),
            early_stopping=True,
            monitor="val_accuracy",
        )
    fit(net, X, X[:, :1], epochs=2, loss_threshold=np.float32(0.0))  # a NumPy number is fine


def test_divergence_message_says_which_weights_were_restored(rng):
    X, y = _blobs(rng)
    seen = {}

    class Blow(Callback):  # make epoch 4 diverge, after early stopping saw epochs 1-3
        def on_epoch_end(self, trainer, epoch, logs):
            seen[epoch] = trainer.net.flat_params.copy()
            if epoch == 3:
                trainer.optimizer.lr = 1e12

    net = MLP([4, 8, 3], output="softmax", seed=0)
    with pytest.raises(TrainingDiverged) as exc:
        fit(
            net,
            X,
            y,
            optimizer="sgd",
            lr=0.1,
            epochs=20,
            batch_size=8,
            validation_data=(X, y),
            early_stopping=True,
            patience=50,
            callbacks=[Blow()],
        )
    best = exc.value.history.best_epoch
    assert f"restored to those of the best epoch ({best}, early stopping)" in str(exc.value)
    np.testing.assert_array_equal(net.flat_params, seen[best])
    net = MLP([4, 8, 3], output="softmax", seed=0)
    with pytest.raises(TrainingDiverged, match="restored to the initial ones"):
        fit(net, X, y, optimizer="sgd", lr=1e12, epochs=3, batch_size=8)


def test_lbfgs_refuses_a_learning_rate_it_would_ignore(rng):
    X = rng.uniform(-1, 1, size=(20, 1))
    net = MLP([1, 4, 1], seed=0)
    with pytest.raises(ValueError, match="lr=0.1 was given with optimizer='lbfgs'"):
        fit(net, X, X, optimizer="lbfgs", lr=0.1, epochs=2)


@pytest.mark.parametrize(
    "output, loss, match",
    [
        ("sigmoid", "cross_entropy", "needs a softmax output over 2 or more units, not a sigmoid"),
        ("identity", "cross_entropy", "not a identity output"),
        ("softmax", "binary_cross_entropy", "needs sigmoid outputs, not softmax"),
    ],
)
def test_a_loss_and_an_output_that_do_not_belong_together_are_refused(rng, output, loss, match):
    # A sigmoid under cross-entropy trained every output to 1 without a word.
    net = MLP([4, 5, 1 if output == "sigmoid" else 3], output=output, seed=0)
    X = rng.normal(size=(6, 4))
    Y = np.ones((6, net.n_out)) / net.n_out
    with pytest.raises(ValueError, match=match):
        fit(net, X, Y, loss=loss, epochs=1)
    with pytest.raises(ValueError, match=match):
        net.loss_and_grad(X, Y, loss=loss)
    with pytest.raises(ValueError, match=match):
        evaluate(net, X, Y, loss=loss)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(callbacks=[None]), r"callbacks\[0\] is a NoneType: expected a Callback"),
        (dict(callbacks="x"), r"callbacks\[0\] is a str"),
        (dict(regularizers=[{}]), r"regularizers\[0\] is a dict"),
        (dict(schedule="cosine"), r"schedule='cosine' is a name"),
        (dict(early_stopping=True, monitor=1), r"monitor=1 is invalid"),
    ],
)
def test_fit_checks_its_callbacks_regularizers_schedule_and_monitor(rng, kwargs, match):
    X, y = _blobs(rng)
    net = MLP([4, 8, 3], output="softmax", seed=0)
    with pytest.raises(TypeError, match=match):
        fit(net, X, y, epochs=1, **kwargs)


def test_a_single_callback_is_not_taken_for_a_list(rng):
    from backprop.callbacks import EarlyStopping

    X, y = _blobs(rng)
    with pytest.raises(TypeError, match="callbacks is a single EarlyStopping: expected a list"):
        fit(MLP([4, 8, 3], output="softmax", seed=0), X, y, callbacks=EarlyStopping())


def test_evaluate_batch_size_and_gradcheck_arguments_are_checked(rng):
    X, y = _blobs(rng)
    net = MLP([4, 8, 3], output="softmax", seed=0)
    for bad in (0, -1, 2.5):
        with pytest.raises((TypeError, ValueError), match="batch_size"):
            evaluate(net, X, y, batch_size=bad)
    with pytest.raises(ValueError, match="gradcheck needs float64"):
        gradcheck(net, X[:3], y[:3])
    net64 = MLP([4, 3, 3], output="softmax", seed=0, dtype="float64")
    with pytest.raises(ValueError, match="h=0 is invalid"):
        gradcheck(net64, X[:3], y[:3], h=0)


def test_small_api_edges_are_one_line_errors_or_work():
    from backprop.callbacks import History
    from backprop.datasets import Standardizer
    from backprop.losses import SynapticPlasticity

    assert Standardizer(min_std=np.float32(1e-8)).fit(np.ones((3, 2))).std_.tolist() == [1, 1]
    with pytest.raises(TypeError, match="plasticity anchor is a NoneType"):
        SynapticPlasticity(None)
    with pytest.raises(TypeError, match="a history is a dict of per-epoch lists"):
        History.from_dict(None)


def test_accuracy_of_several_sigmoid_outputs_counts_rows_with_every_label_right(rng):
    # Multi-label targets: a row is right when every output is on the right side of 0.5 (as
    # scikit-learn's accuracy_score), not when the largest output sits where the largest target
    # does, which is meaningless for rows with several labels or none.
    X = rng.normal(size=(200, 4))
    Y = (X[:, :3] > 0).astype(float)
    net = MLP([4, 16, 3], output="sigmoid", seed=0)
    hist = fit(net, X, Y, epochs=3, lr=0.01, validation_data=(X, Y))
    A = net.forward(X)
    expected = float(np.mean(((A >= 0.5) == (Y >= 0.5)).all(axis=1)))
    assert evaluate(net, X, Y)["accuracy"] == pytest.approx(expected)
    assert hist.val_accuracy[-1] == pytest.approx(expected)
    fit(net, X, Y, epochs=200, lr=0.01)
    A = net.forward(X)
    assert ((A >= 0.5) == (Y >= 0.5)).all()  # every label of every row right
    assert evaluate(net, X, Y)["accuracy"] == 1.0
    hist = fit(net, X, Y, epochs=1, lr=1e-6, batch_size=200, shuffle=False)
    assert hist.accuracy == [1.0]
