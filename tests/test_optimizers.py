"""Tests of backprop.optimizers: written formulas, torch.optim reference values, convergence on a
parabola and on Rosenbrock, checkpoints, validation and the in-place, allocation-free update."""

import json
import math
import tracemalloc

import numpy as np
import pytest

from backprop.optimizers import (
    FULL_BATCH,
    OPTIMIZERS,
    SGD,
    AdaGrad,
    Adam,
    Momentum,
    Nesterov,
    Optimizer,
    RAdam,
    RMSprop,
    from_config,
    get_optimizer,
    minimize_lbfgs,
)
from backprop.schedules import constant, cosine, inverse_sqrt

DTYPES = [np.float32, np.float64]


# --------------------------------------------------------------------------- written formulas
# The update rules exactly as the docstrings write them, in plain float64 NumPy (no in-place
# tricks, no folded bias corrections), one update at a time.


def formula_step(name, hp, w, g, st, t, lr):
    """One update of the documented formula; ``t`` is the 1-based update number."""
    if name == "sgd":
        mu = hp.get("momentum", 0.0)
        if mu == 0.0:
            return w - lr * g
        st["v"] = mu * st.get("v", 0.0) - lr * g
        if hp.get("nesterov", False):
            return w + mu * st["v"] - lr * g
        return w + st["v"]
    if name == "adagrad":
        eps = hp.get("eps", 1e-8)
        st["G"] = st.get("G", 0.0) + g**2
        return w - lr * g / (np.sqrt(st["G"]) + eps)
    if name == "rmsprop":
        alpha, eps = hp.get("alpha", 0.99), hp.get("eps", 1e-8)
        st["s"] = alpha * st.get("s", 0.0) + (1 - alpha) * g**2
        return w - lr * g / (np.sqrt(st["s"]) + eps)
    b1, b2, eps = hp.get("beta1", 0.9), hp.get("beta2", 0.999), hp.get("eps", 1e-8)
    st["m"] = b1 * st.get("m", 0.0) + (1 - b1) * g
    st["v"] = b2 * st.get("v", 0.0) + (1 - b2) * g**2
    mhat = st["m"] / (1 - b1**t)
    if name == "adam":
        vhat = st["v"] / (1 - b2**t)
        return w - lr * mhat / (np.sqrt(vhat) + eps)
    assert name == "radam"
    rho_inf = 2 / (1 - b2) - 1
    rho_t = rho_inf - 2 * t * b2**t / (1 - b2**t)
    if rho_t > 5:
        r = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        return w - lr * r * mhat * math.sqrt(1 - b2**t) / (np.sqrt(st["v"]) + eps)
    return w - lr * mhat


FORMULA_CASES = [
    ("sgd", {}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.7, "nesterov": True}),
    ("adagrad", {}),
    ("adagrad", {"eps": 1e-3}),
    ("rmsprop", {}),
    ("rmsprop", {"alpha": 0.9, "eps": 1e-6}),
    ("adam", {}),
    ("adam", {"beta1": 0.5, "beta2": 0.9, "eps": 1e-3}),
    ("radam", {}),
    ("radam", {"beta1": 0.8, "beta2": 0.99}),
    ("radam", {"eps": 0.1}),  # a large eps shows it is added to sqrt(v), not to sqrt(vhat)
]
N_STEPS = 8  # RAdam (beta2 = 0.999 or 0.99) switches to the rectified step at t = 6


def _case_id(case):
    name, hp = case
    return name + "".join(f"-{k}={v}" for k, v in hp.items())


def _make(name, hp, lr):
    cls = {"sgd": SGD, "adagrad": AdaGrad, "rmsprop": RMSprop, "adam": Adam, "radam": RAdam}[name]
    return cls(lr=lr, **hp)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lr", [0.05, inverse_sqrt(0.1)], ids=["const", "schedule"])
@pytest.mark.parametrize("case", FORMULA_CASES, ids=_case_id)
def test_matches_written_formula(case, lr, dtype):
    name, hp = case
    rng = np.random.default_rng(7)
    shapes = {"W": (3, 4), "b": (3,)}
    params = {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
    grads_seq = [
        {
            k: (rng.standard_normal(s) * rng.uniform(0.1, 3.0)).astype(dtype)
            for k, s in shapes.items()
        }
        for _ in range(N_STEPS)
    ]
    ref_w = {k: p.astype(np.float64) for k, p in params.items()}
    ref_state = {k: {} for k in shapes}
    opt = _make(name, hp, lr)
    lr_of = lr if callable(lr) else (lambda t: lr)
    for t, grads in enumerate(grads_seq, start=1):
        assert opt.current_lr() == lr_of(t - 1)
        opt.step(params, grads)
        assert opt.t == t
        for k in shapes:
            g64 = grads[k].astype(np.float64)
            ref_w[k] = formula_step(name, hp, ref_w[k], g64, ref_state[k], t, lr_of(t - 1))
            assert params[k].dtype == dtype
            if dtype == np.float64:
                np.testing.assert_allclose(params[k], ref_w[k], rtol=1e-12, atol=1e-14)
            else:  # float32 rounding, accumulated over at most 8 updates of O(1) weights
                np.testing.assert_allclose(params[k], ref_w[k], rtol=1e-5, atol=1e-5)
    for arr in opt.state_dict()["state"].values():
        assert arr.dtype == dtype


def test_radam_cases_cover_both_branches():
    for b2 in (0.999, 0.99):
        rho_inf = 2 / (1 - b2) - 1
        rho = [rho_inf - 2 * t * b2**t / (1 - b2**t) for t in range(1, N_STEPS + 1)]
        assert rho[0] <= 5 < rho[-1]


# --------------------------------------------------------------------------- torch.optim reference
# Trajectories printed by `bench/make_optimizer_reference.py` with torch 2.13.0 (CPU build),
# float64: the quadratic f(w) = sum(C (w - TARGET)^2) / 2, gradient C (w - TARGET), from W0,
# 12 updates of each optimizer. torch is not imported here (nor anywhere at run time).

W0 = [0.5, -1.5, 2.0, 0.1]
C = [1.0, 10.0, 0.1, 3.0]
TARGET = [1.0, -2.0, 0.5, 0.0]

TORCH_CASES = {
    # name: (our optimizer, the torch.optim call that produced the numbers)
    "momentum": (lambda: SGD(lr=0.05, momentum=0.9), "SGD(lr=0.05, momentum=0.9)"),
    "nesterov": (
        lambda: SGD(lr=0.05, momentum=0.9, nesterov=True),
        "SGD(lr=0.05, momentum=0.9, nesterov=True)",
    ),
    "adagrad": (lambda: AdaGrad(lr=0.5, eps=1e-8), "Adagrad(lr=0.5, eps=1e-8)"),
    "rmsprop": (lambda: RMSprop(lr=0.05, alpha=0.9, eps=1e-8), "RMSprop(lr=0.05, alpha=0.9)"),
    "adam": (
        lambda: Adam(lr=0.1, beta1=0.85, beta2=0.99, eps=1e-8),
        "Adam(lr=0.1, betas=(0.85, 0.99), eps=1e-8)",
    ),
    "radam": (lambda: RAdam(lr=0.1), "RAdam(lr=0.1)"),
}

TORCH_REFERENCE = {
    "momentum": [
        [0.525, -1.75, 1.9925, 0.085],
        [0.57125, -2.1, 1.9782875, 0.05875],
        [0.6343125000000001, -2.365, 1.9581048125, 0.026312499999999985],
        [0.709353125, -2.4210000000000003, 1.9326498696875, -0.006828125000000023],
        [0.79142203125, -2.2609, 1.9025771718078126, -0.035630468750000026],
        [0.8757129453125, -1.9863599999999997, 1.8684988578570547, -0.05620800781250003],
        [0.9577891207031249, -1.7460939999999996, 1.8309858810120874, -0.06629659179687503],
        [1.0337682225195313, -1.6568075999999998, 1.7905692724465563, -0.06543182861328127],
        [1.1004610030283204, -1.7480460400000002, 1.7477414783753455, -0.0548387674560547],
        [1.1554614553348146, -1.9561376160000004, 1.7029577563193792, -0.03707919729614258],
        [1.1971887896439186, -2.1653512264000003, 1.6566376176874125, -0.01553370455780028],
        [1.2248839510399163, -2.27096786256, 1.6091663048302054, 0.0061872945903778285],
    ],
    "nesterov": [
        [0.5475, -1.975, 1.98575, 0.0715],
        [0.6107375, -2.20125, 1.965560375, 0.03897249999999999],
        [0.6842686875, -2.2024375, 1.9401527639374998, 0.008243087499999989],
        [0.7629244184375, -2.101753125, 1.9101994844113435, -0.01650137618750001],
        [0.8420288474671875, -2.00556859375, 1.8763253251736138, -0.03295568448031251],
        [0.917561691914211, -1.9595012578125, 1.839109388950359, -0.04059987765226719],
        [0.9862641893207055, -1.959020327734375, 1.7990869711176822, -0.04035770378097245],
        [1.045691615137223, -1.9792937453320312, 1.756751461092932, -0.0341187852022861],
        [1.0942174834534844, -1.998769910584961, 1.7125562545603035, -0.02422819470924813],
        [1.1309962266912135, -2.008149229656299, 1.6669166658375332, -0.01302766377568686],
        [1.1558922408249113, -2.0082953084102515, 1.6202118308071045, -0.0025051080451594598],
        [1.1693837208679774, -2.0042133896444043, 1.5727865918833202, 0.0059204132954679195],
    ],
    "adagrad": [
        [0.9999999900000002, -1.999999999, 1.5000000333333312, -0.39999998333333386],
        [0.9999999999999998, -2.0, 1.222649944204945, 0.08507126162886319],
        [1.0, -2.0, 1.0366129664512687, -0.01596459992566962],
        [1.0, -2.0, 0.9034575952730208, 0.0029823226261216883],
        [1.0, -2.0, 0.8052919157979642, -0.0005570344742256753],
        [1.0, -2.0, 0.7318174161746062, 0.00010404162163502669],
        [1.0, -2.0, 0.6763701108283809, -1.9432651722831192e-05],
        [1.0, -2.0, 0.6343343299583747, 3.6295853956717314e-06],
        [1.0, -2.0, 0.6023827319906235, -6.779255003005786e-07],
        [1.0, -2.0, 0.5780596945316449, 1.2662134482413914e-07],
        [1.0, -2.0, 0.5595278163418379, -2.365003965474118e-08],
        [1.0, -2.0, 0.5454011679980003, 4.417299282736688e-09],
    ],
    "rmsprop": [
        [0.6581138730084196, -1.658113882008419, 1.8418861503249073, -0.058113866341754083],
        [0.7505646833311981, -1.750564695229528, 1.7334104386382043, 0.024478165928790152],
        [0.8154097091498689, -1.8154097219950904, 1.6458829545051872, -0.011244117012625891],
        [0.8635875434743546, -1.8635875562194735, 1.5705285509348215, 0.005950053707841418],
        [0.9001024098742234, -1.900102421858732, 1.5033519820406782, -0.0036231656967929526],
        [0.9278519513989232, -1.9278519622011274, 1.4421572237705655, 0.0025169471284674644],
        [0.9487912427379201, -1.9487912521167834, 1.3855947820956407, -0.001977388206792113],
        [0.9643809881257127, -1.9643809959869092, 1.3327720918247064, 0.0017434584800583809],
        [0.9757814786210466, -1.9757814849876054, 1.2830675843479158, -0.0017138357503591116],
        [0.9839414552400075, -1.9839414602223895, 1.2360319154199153, 0.00186763353018368],
        [0.9896410486062932, -1.9896410523723018, 1.191331168485037, -0.002244957076072172],
        [0.9935154249418273, -1.9935154276886133, 1.1487121335001609, 0.0029630897273259077],
    ],
    "adam": [
        [0.599999998, -1.5999999998, 1.9000000066666662, 3.3333332205565114e-09],
        [0.698547346206259, -1.6985473499253405, 1.8003215841573514, -0.06514125367256102],
        [0.7940922595757679, -1.7940922652570208, 1.7012113354611589, -0.06915982785940639],
        [0.8844891874613079, -1.8844891949982914, 1.6029412498867885, -0.040397891317245194],
        [0.9669561789923758, -1.966956188037483, 1.5058092811565333, -0.0008310357521161479],
        [1.0382730281730461, -2.0382730380707152, 1.4101394201495414, 0.03249989172793793],
        [1.0953464723394228, -2.095346482157711, 1.3162810726473813, 0.046929859851083784],
        [1.136021917945496, -2.1360219266420994, 1.2246075194897172, 0.04078014902356177],
        [1.1596953068969915, -2.1596953135439176, 1.1355132130542624, 0.020657485937651102],
        [1.1673469746740786, -2.1673469786138515, 1.0494096594348215, -0.004121493731752118],
        [1.1610968127965282, -2.1610968136835127, 0.9667196616843216, -0.023930387426075794],
        [1.143663184266797, -2.143663182038356, 0.8878697679681558, -0.031834037241888706],
    ],
    "radam": [
        [0.55, -2.0, 1.985, 0.07],
        [0.5973684210526317, -2.236842105263158, 1.970078947368421, 0.04473684210526316],
        [0.6421149737813169, -2.2988929889298895, 1.9552391726548843, 0.02384346475043697],
        [0.6842566849552428, -2.25598781775608, 1.9404829637997332, 0.006945533144286305],
        [0.7238179024490511, -2.1610490829129407, 1.9258125597398628, -0.006334838045057748],
        [0.7262611179279472, -2.1600601926029634, 1.9232387525991514, -0.007933842559500357],
        [0.7293181431107142, -2.1586216300112637, 1.919977880961255, -0.009601840535262333],
        [0.7328994099752717, -2.1567402935652287, 1.9161219190765328, -0.011198190116426941],
        [0.7369442598696402, -2.1544291554919544, 1.911734395083813, -0.012624533622996238],
        [0.7414072751501066, -2.1517047557625983, 1.9068630322896905, -0.01380813573579039],
        [0.7462521206899149, -2.1485857608732344, 1.9015455550945237, -0.01469520867287128],
        [0.7514482687128314, -2.1450921668338467, 1.8958128602552158, -0.015247967666458518],
    ],
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(TORCH_CASES))
def test_matches_torch_reference(name, dtype):
    make, _ = TORCH_CASES[name]
    opt = make()
    c = np.array(C, dtype=dtype)
    target = np.array(TARGET, dtype=dtype)
    w = np.array(W0, dtype=dtype)
    g = np.empty_like(w)
    for t, expected in enumerate(TORCH_REFERENCE[name], start=1):
        np.multiply(c, w - target, out=g)
        opt.step({"w": w}, {"w": g})
        assert w.dtype == dtype
        if dtype == np.float64:  # same formula, different order of roundings
            np.testing.assert_allclose(w, expected, rtol=1e-12, atol=1e-13, err_msg=f"t={t}")
        else:  # float32: ~1e-7 per rounding, amplified a little by momentum over 12 steps
            np.testing.assert_allclose(w, expected, rtol=2e-5, atol=2e-5, err_msg=f"t={t}")


# --------------------------------------------------------------------------- convergence
# As optax's tests do: every optimizer must reach the minimum of a parabola and of the Rosenbrock
# function, in float32 and in float64, with a learning rate (and step count) suited to it.


def parabola_grad(w):
    # f(w) = sum((w - [1, -1, 1])^2), minimum 0 at [1, -1, 1]
    return 2 * (w - np.array([1.0, -1.0, 1.0], dtype=w.dtype))


def rosenbrock_grad(w):
    # f(x, y) = (1 - x)^2 + 100 (y - x^2)^2, minimum 0 at (1, 1) at the end of a curved valley
    x, y = w[0], w[1]
    return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)], dtype=w.dtype)


def descend(opt, grad_fn, w0, steps, dtype):
    w = np.array(w0, dtype=dtype)
    g = np.empty_like(w)
    for _ in range(steps):
        g[...] = grad_fn(w)
        opt.step({"w": w}, {"w": g})
    return w


PARABOLA = {  # name: (lr, steps)
    "sgd": (0.1, 500),
    "momentum": (0.02, 1000),
    "nesterov": (0.02, 1000),
    "adagrad": (1.0, 2000),
    "rmsprop": (cosine(0.05, 2000), 2000),
    "adam": (0.1, 2000),
    "radam": (0.1, 2000),
}

ROSENBROCK = {  # name: (lr, steps); the fixed-step adaptive methods need a decay to settle
    "sgd": (1.5e-3, 20000),  # lr < 2 / lambda_max(H(1, 1)) ~ 2e-3, slow along the valley
    "momentum": (1e-3, 5000),
    "nesterov": (1e-3, 5000),
    "adagrad": (1.0, 20000),
    "rmsprop": (cosine(3e-3, 10000), 10000),
    "adam": (1e-2, 5000),
    "radam": (cosine(1e-2, 15000), 15000),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_reaches_minimum_of_parabola(name, dtype):
    lr, steps = PARABOLA[name]
    w = descend(get_optimizer(name, lr=lr), parabola_grad, [-1.0, 10.0, 1.0], steps, dtype)
    assert w.dtype == dtype
    # A strongly convex quadratic: every method gets to within a few float32 ulps of the exact
    # minimum (measured: <= 4e-6 in float32, <= 1e-14 in float64); 1e-4 leaves a wide margin.
    np.testing.assert_allclose(w, [1.0, -1.0, 1.0], atol=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_reaches_minimum_of_rosenbrock(name, dtype):
    lr, steps = ROSENBROCK[name]
    w = descend(get_optimizer(name, lr=lr), rosenbrock_grad, [-1.5, 2.0], steps, dtype)
    assert w.dtype == dtype
    # The valley floor is nearly flat (the Hessian at (1, 1) has eigenvalues ~0.4 and ~1000), so
    # in float32 the rounding of the 400 x (y - x^2) term (~5e-5) alone moves the point reached
    # along the valley by ~1e-4; measured errors are <= 6e-5. A 1e-3 box is 2500 times smaller
    # than the starting distance and still excludes any other point of the valley.
    np.testing.assert_allclose(w, [1.0, 1.0], atol=1e-3)


# --------------------------------------------------------------------------- L-BFGS


def rosenbrock_fun(x):
    assert x.dtype == np.float64 and x.shape == (2,)
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2, rosenbrock_grad(x)


def test_lbfgs_minimizes_rosenbrock():
    res = minimize_lbfgs(rosenbrock_fun, np.array([-1.5, 2.0], dtype=np.float32), tol=1e-8)
    assert res.success
    assert res.x.dtype == np.float64
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=1e-5)
    assert res.fun < 1e-10
    assert res.nit < 200  # far fewer iterations than the first-order methods need


def test_lbfgs_respects_limits_and_calls_back():
    seen = []
    res = minimize_lbfgs(
        rosenbrock_fun, [-1.5, 2.0], max_iter=3, callback=lambda xk: seen.append(xk)
    )
    assert res.nit == 3 and not res.success
    assert len(seen) == 3
    res = minimize_lbfgs(rosenbrock_fun, [-1.5, 2.0], max_fun=5)
    assert res.nfev <= 7 and not res.success  # L-BFGS-B may finish its current line search


def test_lbfgs_is_full_batch_only():
    assert "lbfgs" in FULL_BATCH
    assert "lbfgs" not in OPTIMIZERS
    with pytest.raises(ValueError, match="full-batch.*minimize_lbfgs"):
        get_optimizer("lbfgs")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"x0": np.zeros((2, 2))}, "shape (2, 2)"),
        ({"x0": []}, "shape (0,)"),
        ({"x0": [np.nan, 1.0]}, "NaN"),
        ({"tol": 0.0}, "tol=0.0"),
        ({"max_iter": 0}, "max_iter=0"),
        ({"max_fun": -1}, "max_fun=-1"),
    ],
)
def test_lbfgs_rejects_bad_arguments(kwargs, fragment):
    args = {"x0": [0.0, 0.0], **kwargs}
    with pytest.raises(ValueError) as err:
        minimize_lbfgs(rosenbrock_fun, **args)
    assert fragment in str(err.value)


# --------------------------------------------------------------------------- checkpoints


ALL_OPTIMIZERS = [
    lambda: SGD(lr=0.05),
    lambda: Momentum(lr=0.05),
    lambda: Nesterov(lr=cosine(0.05, 20)),
    lambda: AdaGrad(lr=0.1),
    lambda: RMSprop(lr=0.01, alpha=0.9),
    lambda: Adam(lr=0.01, beta1=0.8),
    lambda: RAdam(lr=inverse_sqrt(0.01)),
]


@pytest.mark.parametrize("make", ALL_OPTIMIZERS, ids=lambda m: m().name)
@pytest.mark.parametrize("dtype", DTYPES)
def test_state_dict_round_trip_continues_identically(make, dtype):
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(10).astype(dtype) for _ in range(10)]
    w = rng.standard_normal(10).astype(dtype)
    opt = make()
    for g in grads[:5]:
        opt.step({"w": w}, {"w": g})
    saved = opt.state_dict()
    w_saved = w.copy()
    json.dumps({"t": saved["t"], "hyper": saved["hyper"]})  # the non-array part is JSON
    for g in grads[5:]:
        opt.step({"w": w}, {"w": g})
    # a fresh optimizer of the same class with other hyperparameters takes everything from the dict
    other = type(opt)(lr=0.5)
    other.load_state_dict(saved)
    assert other.t == 5 and other.to_config() == opt.to_config()
    w2 = w_saved.copy()
    for g in grads[5:]:
        other.step({"w": w2}, {"w": g})
    np.testing.assert_array_equal(w2, w)
    assert other.t == opt.t == 10


def test_state_dict_content_and_copies():
    w = np.ones(3, dtype=np.float32)
    opt = Adam()
    opt.step({"flat": w}, {"flat": np.full(3, 2.0, dtype=np.float32)})
    sd = opt.state_dict()
    assert sd["t"] == 1
    assert sd["hyper"] == {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    assert set(sd["state"]) == {"m.flat", "v.flat"}
    np.testing.assert_allclose(sd["state"]["m.flat"], 0.2, rtol=1e-6)
    np.testing.assert_allclose(sd["state"]["v.flat"], 0.004, rtol=1e-6)
    sd["state"]["m.flat"][:] = 99.0  # a copy: the optimizer is not affected
    assert opt.state_dict()["state"]["m.flat"][0] != 99.0
    assert SGD().state_dict()["state"] == {}
    w = np.ones(2)
    plain = SGD(lr=0.1)
    plain.step({"w": w}, {"w": w.copy()})
    assert plain.state_dict()["state"] == {}  # plain SGD keeps no velocity


def test_load_state_dict_checks():
    opt = Adam()
    with pytest.raises(ValueError, match="'sgd'"):
        opt.load_state_dict({"name": "sgd", "t": 0, "state": {}})
    with pytest.raises(ValueError, match="slot"):
        opt.load_state_dict({"t": 1, "state": {"q.flat": np.zeros(2)}})
    with pytest.raises(ValueError, match="slots"):
        opt.load_state_dict({"t": 1, "state": {"m.flat": np.zeros(2)}})
    with pytest.raises(ValueError, match="t=-1"):
        opt.load_state_dict({"t": -1, "state": {}})
    with pytest.raises(ValueError, match="beta1=2.0"):
        opt.load_state_dict({"t": 0, "hyper": {"beta1": 2.0}, "state": {}})
    assert opt.t == 0 and opt.beta1 == 0.9  # nothing changed by the failed loads
    # a state restored for another shape is refused at the next step, without any update
    opt.load_state_dict({"t": 2, "state": {"m.flat": np.zeros(2), "v.flat": np.zeros(2)}})
    w = np.ones(3)
    with pytest.raises(ValueError, match="call reset"):
        opt.step({"flat": w}, {"flat": w.copy()})
    assert opt.t == 2 and np.all(w == 1.0)
    opt.reset()
    opt.step({"flat": w}, {"flat": w.copy()})
    assert opt.t == 1


# ------------------------------------------------------------------------- in place, no allocation


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_step_is_in_place_without_new_arrays(name, dtype):
    rng = np.random.default_rng(0)
    theta = rng.standard_normal(50_000).astype(dtype)
    grad = rng.standard_normal(50_000).astype(dtype)
    params, grads = {"flat": theta}, {"flat": grad}
    opt = get_optimizer(name, lr=1e-3)
    opt.step(params, grads)  # the first step creates the state
    before = theta.copy()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(3):
            opt.step(params, grads)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # no temporary array of the parameter's size (and no float64 copy of a float32 one)
    assert peak - base < theta.nbytes // 20
    assert params["flat"] is theta and not np.array_equal(theta, before)
    assert theta.dtype == dtype


# --------------------------------------------------------------------------- API and validation


def test_registry_and_defaults():
    assert set(OPTIMIZERS) == {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "radam"}
    assert all(issubclass(c, Optimizer) and OPTIMIZERS[n].name == n for n, c in OPTIMIZERS.items())
    assert get_optimizer("momentum").to_config() == {
        "name": "momentum",
        "lr": 0.01,
        "momentum": 0.9,
        "nesterov": False,
    }
    nest = get_optimizer("NESTEROV")
    assert isinstance(nest, SGD) and nest.nesterov and nest.momentum == 0.9
    assert SGD().lr == 0.01 and SGD().momentum == 0.0
    assert AdaGrad().lr == 0.01 and AdaGrad().eps == 1e-8
    assert RMSprop().lr == 0.001 and RMSprop().alpha == 0.99
    assert Adam().lr == 0.001 and (Adam().beta1, Adam().beta2) == (0.9, 0.999)
    assert RAdam().lr == 0.001
    inst = Adam()
    assert get_optimizer(inst) is inst
    with pytest.raises(TypeError):
        get_optimizer(inst, lr=0.1)


@pytest.mark.parametrize("make", ALL_OPTIMIZERS, ids=lambda m: m().name)
def test_config_round_trip(make):
    opt = make()
    cfg = json.loads(json.dumps(opt.to_config()))
    back = from_config(cfg)
    assert type(back) is type(opt)
    assert back.to_config() == opt.to_config()
    assert get_optimizer(cfg).to_config() == cfg
    assert repr(back) == repr(opt) and "object at" not in repr(opt)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown optimizer 'adamw'") as err:
        get_optimizer("adamw")
    for name in OPTIMIZERS:
        assert name in str(err.value)
    with pytest.raises(ValueError, match="unknown optimizer"):
        get_optimizer(3)
    with pytest.raises(ValueError, match="name"):
        from_config({"lr": 0.1})


@pytest.mark.parametrize(
    ("make", "exc", "fragment"),
    [
        (lambda: SGD(lr=0.0), ValueError, "lr=0.0"),
        (lambda: SGD(lr=-0.1), ValueError, "lr=-0.1"),
        (lambda: Adam(lr=float("nan")), ValueError, "lr=nan"),
        (lambda: Adam(lr="fast"), TypeError, "lr='fast'"),
        (lambda: SGD(momentum=1.0), ValueError, "momentum=1.0"),
        (lambda: SGD(momentum=-0.5), ValueError, "momentum=-0.5"),
        (lambda: SGD(nesterov=True), ValueError, "nesterov=True"),
        (lambda: SGD(momentum=0.9, nesterov="yes"), TypeError, "nesterov='yes'"),
        (lambda: AdaGrad(eps=0.0), ValueError, "eps=0.0"),
        (lambda: RMSprop(alpha=1.0), ValueError, "alpha=1.0"),
        (lambda: Adam(beta1=1.0), ValueError, "beta1=1.0"),
        (lambda: Adam(beta2=-0.1), ValueError, "beta2=-0.1"),
        (lambda: RAdam(eps=-1e-8), ValueError, "eps=-1e-08"),
        (lambda: get_optimizer("adam", momentum=0.9), ValueError, "momentum"),
        (lambda: get_optimizer("sgd", beta1=0.9), ValueError, "beta1"),
    ],
)
def test_bad_hyperparameters_raise_one_line(make, exc, fragment):
    with pytest.raises(exc) as err:
        make()
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_schedule_drives_current_lr():
    opt = Adam(lr=cosine(0.1, total_steps=4))
    w = np.ones(2)
    seen = []
    for _ in range(6):
        seen.append(opt.current_lr())
        opt.step({"w": w}, {"w": w.copy()})
    assert seen == pytest.approx(
        [
            0.1,
            0.1 * (1 + math.cos(math.pi / 4)) / 2,
            0.05,
            0.1 * (1 + math.cos(3 * math.pi / 4)) / 2,
            0,
            0,
        ]
    )
    cfg_opt = SGD(lr={"name": "constant", "lr": 0.3})  # a schedule config is accepted too
    assert cfg_opt.lr == constant(0.3) and cfg_opt.current_lr() == 0.3
    opt.lr = 0.2  # the rate can be changed between steps (e.g. reduce on plateau)
    assert opt.current_lr() == 0.2
    with pytest.raises(ValueError):
        opt.lr = 0.0


def test_bad_gradients_leave_everything_unchanged():
    w = np.ones(3, dtype=np.float32)
    b = np.ones(2, dtype=np.float32)
    opt = Adam(lr=0.1)
    good = np.ones(3, dtype=np.float32)
    bad_cases = [
        ({"w": good}, "no entry for parameter 'b'"),
        ({"w": good, "b": np.ones(3, dtype=np.float32)}, "shape (2,)"),
        ({"w": good, "b": np.ones(2, dtype=np.float64)}, "dtype float32"),
        ({"w": good, "b": [1.0, 1.0]}, "gradient for 'b'"),
    ]
    for grads, fragment in bad_cases:
        with pytest.raises(ValueError) as err:
            opt.step({"w": w, "b": b}, grads)
        assert fragment in str(err.value) and "\n" not in str(err.value)
    assert opt.t == 0 and np.all(w == 1.0) and np.all(b == 1.0)


def test_bad_parameters_raise():
    opt = SGD()
    with pytest.raises(TypeError, match="'w'"):
        opt.step({"w": np.ones(3, dtype=np.int64)}, {"w": np.ones(3, dtype=np.int64)})
    with pytest.raises(TypeError, match="'w'"):
        SGD().step({"w": [1.0, 2.0]}, {"w": np.ones(2)})
    ro = np.ones(2)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        SGD().step({"w": ro}, {"w": np.ones(2)})


def test_views_and_multidimensional_parameters_update_in_place():
    flat = np.zeros(10)
    W, b = flat[:6].reshape(2, 3), flat[6:]  # views into one flat vector, as layers use
    opt = SGD(lr=0.5)
    opt.step({"W": W, "b": b}, {"W": np.ones((2, 3)), "b": np.full(4, 2.0)})
    np.testing.assert_array_equal(flat, [-0.5] * 6 + [-1.0] * 4)


def test_reset_forgets_state():
    w = np.ones(2)
    opt = Momentum(lr=0.1)
    opt.step({"w": w}, {"w": np.ones(2)})
    opt.reset()
    assert opt.t == 0 and opt.state_dict()["state"] == {}
    w[:] = 1.0
    opt.step({"w": w}, {"w": np.ones(2)})
    np.testing.assert_allclose(w, 0.9)  # a first step again: v = -lr g


def test_load_state_dict_refuses_states_that_would_poison_the_weights():
    from backprop.optimizers import Adam

    p, g = {"flat": np.ones(4)}, {"flat": np.full(4, 0.5)}
    opt = Adam(lr=0.1)
    opt.step(p, g)
    good = opt.state_dict()
    for change, match in [
        (lambda d: d["state"].__setitem__("v.flat", -np.ones(4)), "negative values"),
        (lambda d: d["state"].__setitem__("m.flat", np.full(4, np.nan)), "NaN or infinity"),
        (lambda d: d.__setitem__("hyper", {"lr": 0.1, "bogus": 1}), "hyper is invalid"),
        (lambda d: d.__setitem__("hyper", None), "expected a dict"),
        (lambda d: d.__setitem__("state", [1, 2]), "expected a dict of arrays"),
    ]:
        d = {**good, "state": dict(good["state"]), "hyper": dict(good.get("hyper", {}))}
        change(d)
        with pytest.raises(ValueError, match=match):
            Adam(lr=0.1).load_state_dict(d)


def test_load_state_dict_keeps_a_negative_momentum_velocity():
    from backprop.optimizers import SGD

    p, g = {"flat": np.ones(3)}, {"flat": np.full(3, 0.5)}
    opt = SGD(lr=0.1, momentum=0.9)
    opt.step(p, g)  # the velocity is negative now
    state = opt.state_dict()
    assert (state["state"]["v.flat"] < 0).all()
    SGD(lr=0.1, momentum=0.9).load_state_dict(state)
