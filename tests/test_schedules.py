"""Tests of backprop.schedules: formulas, composition, JSON round trips, validation."""

import json
import math

import pytest

from backprop import schedules
from backprop.schedules import (
    SCHEDULES,
    Schedule,
    constant,
    cosine,
    exponential,
    from_config,
    get_schedule,
    inverse_sqrt,
    join,
    linear,
    step_decay,
    warmup,
)

STEPS = [0, 1, 2, 3, 7, 10, 99, 100, 101, 250, 1000, 12345]


# --------------------------------------------------------------------------- values vs formulas


@pytest.mark.parametrize(
    ("sched", "formula"),
    [
        (constant(0.3), lambda t: 0.3),
        (inverse_sqrt(0.5), lambda t: 0.5 / math.sqrt(t + 1)),
        (step_decay(0.2), lambda t: 0.2 * 0.1 ** (t // 1000)),
        (step_decay(0.2, gamma=0.5, every=7), lambda t: 0.2 * 0.5 ** (t // 7)),
        (linear(0.4, total_steps=100), lambda t: 0.4 * (1 - min(t, 100) / 100)),
        (
            linear(0.4, total_steps=250, end_lr=0.1),
            lambda t: 0.4 + (0.1 - 0.4) * min(t, 250) / 250,
        ),
        (exponential(0.1, k=0.01), lambda t: 0.1 * math.exp(-0.01 * t)),
        (exponential(0.1, k=0.0), lambda t: 0.1),
        (
            cosine(0.1, total_steps=250),
            lambda t: 0.1 * (1 + math.cos(math.pi * min(t, 250) / 250)) / 2,
        ),
        (
            cosine(0.1, total_steps=100, min_lr=0.01),
            lambda t: 0.01 + 0.09 * (1 + math.cos(math.pi * min(t, 100) / 100)) / 2,
        ),
    ],
    ids=repr,
)
def test_values_match_formula(sched, formula):
    for t in STEPS:
        assert sched(t) == pytest.approx(formula(t), rel=1e-12, abs=1e-15), t
        assert isinstance(sched(t), float)


def test_landmark_values():
    # the notes' formulas at the points where they are easy to read off
    assert inverse_sqrt(1.0)(3) == 0.5
    assert linear(1.0, 10)(5) == 0.5
    assert linear(1.0, 10)(10) == 0.0
    assert linear(1.0, 10, end_lr=0.2)(50) == 0.2
    assert cosine(1.0, 10)(5) == pytest.approx(0.5)
    assert cosine(1.0, 10)(0) == 1.0
    assert cosine(1.0, 10, min_lr=0.3)(10) == 0.3
    assert cosine(1.0, 10, min_lr=0.3)(11) == 0.3
    assert exponential(2.0, k=math.log(2))(4) == pytest.approx(0.125)
    assert step_decay(1.0, gamma=0.5, every=3)(2) == 1.0
    assert step_decay(1.0, gamma=0.5, every=3)(3) == 0.5
    assert exponential(1.0, k=1.0)(10**6) == 0.0  # underflows quietly


def test_schedules_are_pure():
    s = cosine(0.1, 50)
    first = [s(t) for t in range(60)]
    assert [s(t) for t in reversed(range(60))] == first[::-1]


def test_numpy_integer_steps():
    np = pytest.importorskip("numpy")
    assert cosine(1.0, 10)(np.int64(5)) == cosine(1.0, 10)(5)


# --------------------------------------------------------------------------- composition


def test_warmup_then_cosine():
    s = warmup(10, cosine(0.1, total_steps=90))
    for t in range(10):
        assert s(t) == pytest.approx(0.1 * t / 10)
    for t in range(10, 120):
        expected = 0.1 * (1 + math.cos(math.pi * min(t - 10, 90) / 90)) / 2
        assert s(t) == pytest.approx(expected, abs=1e-15)
    assert s(9) < s(10) == 0.1  # continuous at the end of warm-up, peak reached there


def test_warmup_start_lr_and_zero_steps():
    s = warmup(4, constant(1.0), start_lr=0.2)
    assert [s(t) for t in range(6)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0])
    assert warmup(0, linear(1.0, 10))(3) == linear(1.0, 10)(3)
    assert warmup(2, 0.5)(5) == 0.5  # a number means a constant schedule


def test_get_schedule_warmup_cosine_total_includes_warmup():
    s = get_schedule("warmup+cosine", 0.1, warmup_steps=10, total_steps=110, min_lr=0.01)
    assert s == warmup(10, cosine(0.1, total_steps=100, min_lr=0.01))
    assert s(0) == 0.0
    assert s(5) == pytest.approx(0.05)
    assert s(10) == 0.1
    assert s(60) == pytest.approx(0.01 + 0.09 / 2)
    assert s(110) == 0.01
    assert s(10_000) == 0.01


def test_get_schedule_warmup_linear_start_lr():
    s = get_schedule("Warmup+Linear", 1.0, warmup_steps=2, total_steps=6, start_lr=0.5)
    assert [s(t) for t in range(8)] == pytest.approx([0.5, 0.75, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0])


def test_join_restarts_each_piece():
    s = join([constant(1.0), linear(0.5, total_steps=10), exponential(0.2, k=0.1)], [100, 150])
    assert s(0) == s(99) == 1.0
    assert s(100) == 0.5
    assert s(105) == pytest.approx(0.25)
    assert s(149) == linear(0.5, 10)(49) == 0.0
    assert s(150) == 0.2
    assert s(160) == pytest.approx(0.2 * math.exp(-1.0))


def test_join_single_piece_and_nested():
    assert join([inverse_sqrt(1.0)], [])(3) == 0.5
    inner = join([constant(2.0), constant(3.0)], [5])
    s = join([constant(1.0), inner], [10])
    assert [s(t) for t in (9, 10, 14, 15, 100)] == [1.0, 2.0, 2.0, 3.0, 3.0]


# --------------------------------------------------------------------------- registry


@pytest.mark.parametrize(
    ("name", "kwargs", "expected"),
    [
        ("constant", {}, constant(0.1)),
        ("inverse_sqrt", {}, inverse_sqrt(0.1)),
        ("invscaling", {}, inverse_sqrt(0.1)),
        ("step", {"gamma": 0.5, "every": 100}, step_decay(0.1, 0.5, 100)),
        ("step_decay", {}, step_decay(0.1)),
        ("linear", {"total_steps": 50}, linear(0.1, 50)),
        ("exponential", {"k": 0.01}, exponential(0.1, 0.01)),
        ("cosine", {"total_steps": 50, "min_lr": 0.001}, cosine(0.1, 50, 0.001)),
        ("COSINE", {"total_steps": 50}, cosine(0.1, 50)),
    ],
)
def test_get_schedule_names(name, kwargs, expected):
    assert get_schedule(name, 0.1, **kwargs) == expected


def test_get_schedule_ignores_total_steps_where_unused():
    # total_steps is the run length, which the training loop always knows
    assert get_schedule("constant", 0.1, total_steps=1000) == constant(0.1)
    assert get_schedule("warmup+exponential", 0.1, warmup_steps=5, k=0.1, total_steps=9) == warmup(
        5, exponential(0.1, 0.1)
    )


def test_get_schedule_passes_instances_through():
    s = cosine(0.1, 10)
    assert get_schedule(s) is s
    with pytest.raises(TypeError):
        get_schedule(s, 0.1)


def test_registry_factories_take_lr_first():
    for name, factory in SCHEDULES.items():
        kwargs = {"k": 0.1} if name == "exponential" else {}
        if name in ("linear", "cosine"):
            kwargs = {"total_steps": 10}
        sched = factory(0.25, **kwargs)
        assert isinstance(sched, Schedule)
        assert sched(0) == 0.25


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown schedule 'poly'") as err:
        get_schedule("poly", 0.1)
    for name in ("constant", "cosine", "exponential", "inverse_sqrt", "linear", "step", "warmup+"):
        assert name in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="warmup\\+poly"):
        get_schedule("warmup+poly", 0.1, warmup_steps=3)
    with pytest.raises(ValueError):
        get_schedule(None, 0.1)


def test_get_schedule_argument_errors():
    with pytest.raises(TypeError, match="min_lr"):
        get_schedule("linear", 0.1, total_steps=10, min_lr=0.0)
    with pytest.raises(TypeError, match="warmup_steps"):
        get_schedule("warmup+cosine", 0.1, total_steps=10)
    with pytest.raises(TypeError, match="lr"):
        get_schedule("cosine", total_steps=10)
    with pytest.raises(ValueError, match="total_steps=10"):
        get_schedule("warmup+cosine", 0.1, warmup_steps=10, total_steps=10)
    with pytest.raises(TypeError, match="total_steps"):
        get_schedule("cosine", 0.1)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("make", "exc", "fragment"),
    [
        (lambda: constant(0.0), ValueError, "lr=0.0"),
        (lambda: constant(-1.0), ValueError, "lr=-1.0"),
        (lambda: constant(float("nan")), ValueError, "lr=nan"),
        (lambda: constant(float("inf")), ValueError, "lr=inf"),
        (lambda: constant("0.1"), TypeError, "lr='0.1'"),
        (lambda: constant(True), TypeError, "lr=True"),
        (lambda: inverse_sqrt(-0.1), ValueError, "lr=-0.1"),
        (lambda: step_decay(0.1, gamma=0.0), ValueError, "gamma=0.0"),
        (lambda: step_decay(0.1, gamma=1.5), ValueError, "gamma=1.5"),
        (lambda: step_decay(0.1, every=0), ValueError, "every=0"),
        (lambda: step_decay(0.1, every=2.5), TypeError, "every=2.5"),
        (lambda: linear(0.1, total_steps=0), ValueError, "total_steps=0"),
        (lambda: linear(0.1, 10, end_lr=-0.1), ValueError, "end_lr=-0.1"),
        (lambda: linear(0.1, 10, end_lr=0.2), ValueError, "end_lr=0.2"),
        (lambda: exponential(0.1, k=-1.0), ValueError, "k=-1.0"),
        (lambda: cosine(0.1, total_steps=-5), ValueError, "total_steps=-5"),
        (lambda: cosine(0.1, 10, min_lr=1.0), ValueError, "min_lr=1.0"),
        (lambda: warmup(-1, constant(0.1)), ValueError, "warmup_steps=-1"),
        (lambda: warmup(5, "cosine"), TypeError, "then='cosine'"),
        (lambda: warmup(5, constant(0.1), start_lr=-1.0), ValueError, "start_lr=-1.0"),
        (lambda: join([], []), ValueError, "schedules=[]"),
        (lambda: join([constant(0.1)], [5]), ValueError, "boundaries=[5]"),
        (lambda: join([constant(0.1)] * 3, [5, 5]), ValueError, "strictly increasing"),
        (lambda: join([constant(0.1)] * 2, [0]), ValueError, "boundaries[0]=0"),
        (lambda: join(constant(0.1), []), TypeError, "schedules="),
    ],
)
def test_bad_arguments_raise_one_line(make, exc, fragment):
    with pytest.raises(exc) as err:
        make()
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_bad_step_raises(bad):
    with pytest.raises(ValueError, match="step="):
        cosine(0.1, 10)(bad)


# --------------------------------------------------------------------------- description


ALL = [
    constant(0.1),
    inverse_sqrt(0.2),
    step_decay(0.3, gamma=0.5, every=20),
    linear(0.4, 100, end_lr=0.01),
    exponential(0.5, 0.002),
    cosine(0.6, 300, min_lr=0.06),
    warmup(10, cosine(0.1, 90), start_lr=0.001),
    join([warmup(5, constant(1.0)), step_decay(0.5, 0.1, 10)], [50]),
]


@pytest.mark.parametrize("sched", ALL, ids=repr)
def test_config_round_trip_through_json(sched):
    cfg = json.loads(json.dumps(sched.to_config()))
    back = from_config(cfg)
    assert back == sched
    assert hash(back) == hash(sched)
    assert [back(t) for t in STEPS] == [sched(t) for t in STEPS]


@pytest.mark.parametrize("sched", ALL, ids=repr)
def test_repr_is_readable_and_rebuilds(sched):
    text = repr(sched)
    assert "object at" not in text
    assert eval(text, vars(schedules)) == sched  # the repr is a call of the public factories


def test_config_content():
    assert cosine(0.1, 10).to_config() == {
        "name": "cosine",
        "lr": 0.1,
        "total_steps": 10,
        "min_lr": 0.0,
    }
    assert constant(0.1) != constant(0.2)
    assert constant(0.1) != linear(0.1, 10)


@pytest.mark.parametrize(
    "cfg",
    [
        {"name": "poly", "lr": 0.1},
        {"lr": 0.1},
        {"name": "cosine", "lr": 0.1},
        {"name": "cosine", "lr": 0.1, "total_steps": 10, "min_lr": 0.0, "extra": 1},
        {"name": "constant", "lr": -0.1},
    ],
)
def test_from_config_rejects_bad_configs(cfg):
    with pytest.raises(ValueError):
        from_config(cfg)


def test_from_config_rejects_non_dict():
    with pytest.raises(TypeError):
        from_config("cosine")


@pytest.mark.parametrize("name", ["warmup+constant", "warmup+step", "warmup+exponential"])
def test_a_warm_up_longer_than_the_run_is_refused_for_every_schedule(name):
    # warmup+cosine refused it; the schedules that do not use total_steps accepted it.
    with pytest.raises(ValueError, match="total_steps=10 is invalid: expected more than"):
        get_schedule(name, 0.1, warmup_steps=20, total_steps=10)


def test_optimizer_step_wants_dicts():
    import numpy as np

    from backprop.optimizers import Adam

    with pytest.raises(TypeError, match="params is a ndarray: expected a dict of arrays"):
        Adam().step(np.zeros(3), np.zeros(3))


@pytest.mark.parametrize("bad", [float("nan"), -0.1, "0.1"])
def test_a_custom_schedule_giving_a_bad_rate_is_stopped(bad):
    import numpy as np

    from backprop.optimizers import SGD
    from backprop.schedules import Schedule

    class Bad(Schedule):
        name = "bad"

        def _value(self, t):
            return 0.1 if t < 2 else bad

    opt = SGD(lr=Bad())
    w, g = {"w": np.ones(3)}, {"w": np.ones(3)}
    opt.step(w, g)
    opt.step(w, g)
    with pytest.raises((TypeError, ValueError), match=r"the schedule gave lr=.* at step 2"):
        opt.step(w, g)
    np.testing.assert_allclose(w["w"], 0.8)  # the bad step changed nothing
