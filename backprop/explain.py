"""The chain rule narrated: every number of a forward pass, a backward pass and an update.

:func:`explain` takes a small network, one input (or a handful of inputs) and its target, and
records, in the notation of the lecture notes,

1. the forward pass: each ``z(l) = W(l) a(l-1) + b(l)`` written out with its numbers, then
   ``a(l) = f(z(l))``;
2. the loss;
3. the backward pass: each ``dC/da``, ``da/dz`` and ``delta(l) = dC/dz(l)``, and every weight and
   bias gradient as the product of its chain-rule factors ``dC/da × da/dz × dz/dw``;
4. the update ``theta <- theta - eta dC/dtheta``, the next forward pass and the new loss.

The result, an :class:`Explanation`, is a structured object (every quantity addressable:
``ex["z1"]``, ``ex["dW2"]``, ``ex.steps[0].samples[0].layers[1].delta``) that renders as aligned
terminal text (:meth:`Explanation.text`, coloured by :meth:`Explanation.print` on a terminal),
as Markdown with LaTeX formulas (:meth:`Explanation.markdown`) and as JSON
(:meth:`Explanation.to_json`).

The numbers are the engine's: the activations and losses are those of :mod:`backprop.activations`
and :mod:`backprop.losses`, computed one sample at a time in float64 (explain works on a float64
copy and never changes the network it is given), and every step is checked against the engine's
batched backward pass (``net.loss_and_grad``) and against central finite differences
(:func:`backprop.gradcheck`); the check is part of the explanation.

With no arguments, :func:`explain` explains the worked example of the notes (seed 000) and lists
where the numbers printed in the notes do not follow from the loss the notes state
(:func:`notes_discrepancies`).
"""

from __future__ import annotations

import json
import math
import numbers
import re
from dataclasses import dataclass, field

import numpy as np

from .activations import get_activation
from .gradcheck import gradcheck
from .layers import MLP, ActivationLayer, Dense, Dropout, Sequential, from_config
from .losses import get_loss

__all__ = [
    "explain",
    "Explanation",
    "Step",
    "SampleTrace",
    "LayerTrace",
    "notes_discrepancies",
    "worked_example",
    "seed000_network",
    "SEED000_X",
    "SEED000_Y",
    "SEED000_PARAMS",
    "SEED000_LR",
    "SEED000_NOTES",
]

# --------------------------------------------------------------------------------------------
# The worked example of the notes (seed 000)
# --------------------------------------------------------------------------------------------

SEED000_X = np.array([[2.0, 3.0, -1.0]])
SEED000_Y = np.array([[1.0]])
SEED000_PARAMS = {
    "W1": [[0.2, -0.5, 0.1], [-0.3, 0.4, 0.2]],
    "b1": [0.3, -0.1],
    "W2": [[0.5, 0.2]],
    "b2": [0.1],
}
SEED000_LR = 0.1

# What the notes print (seed 000), rounded as they round.
SEED000_NOTES = {
    "z1": [-0.9, 0.3],
    "a1": [0.29, 0.57],
    "z2": 0.359,
    "a2": 0.589,
    "dC/da2": -0.822,
    "sigma'(z2)": 0.242,
    "dW2": [-0.0287, -0.0572],
    "db2": -0.199,
    "W2_new": [0.50287, 0.20572],
    "b2_new": 0.1199,
    "a2_new": 0.595,
    "C_old": 0.168921,
    "C_new": 0.164025,
}

# Where each printed number of the notes sits in an explanation (step 1 unless "new:" / "update:").
_NOTES_KEYS = {
    "z1[1]": SEED000_NOTES["z1"][0],
    "z1[2]": SEED000_NOTES["z1"][1],
    "a1[1]": SEED000_NOTES["a1"][0],
    "a1[2]": SEED000_NOTES["a1"][1],
    "z2[1]": SEED000_NOTES["z2"],
    "a2[1]": SEED000_NOTES["a2"],
    "C": SEED000_NOTES["C_old"],
    "dC/da2[1]": SEED000_NOTES["dC/da2"],
    "da2/dz2[1]": SEED000_NOTES["sigma'(z2)"],
    "dC/dW2[1,1]": SEED000_NOTES["dW2"][0],
    "dC/dW2[1,2]": SEED000_NOTES["dW2"][1],
    "dC/db2[1]": SEED000_NOTES["db2"],
    "update:W2[1,1]": SEED000_NOTES["W2_new"][0],
    "update:W2[1,2]": SEED000_NOTES["W2_new"][1],
    "update:b2[1]": SEED000_NOTES["b2_new"],
    "new:a2[1]": SEED000_NOTES["a2_new"],
    "new:C": SEED000_NOTES["C_new"],
}


def seed000_network(dtype="float64") -> MLP:
    """The 3-2-1 sigmoid network of the notes' worked example (seed 000), weights set.

    ``W1 = [[0.2, -0.5, 0.1], [-0.3, 0.4, 0.2]]``, ``b1 = [0.3, -0.1]``, ``W2 = [[0.5, 0.2]]``,
    ``b2 = [0.1]``; sigmoid hidden and output units. The input is :data:`SEED000_X`
    (``[2, 3, -1]``) and the target :data:`SEED000_Y` (``1``).

    Examples
    --------
    >>> net = seed000_network()
    >>> net.forward(SEED000_X).round(4)
    array([[0.5889]])
    """
    net = MLP([3, 2, 1], activation="sigmoid", output="sigmoid", dtype=dtype)
    for k, v in SEED000_PARAMS.items():
        net.params[k] = v
    return net


def worked_example() -> dict:
    """Every number of the notes' worked example (seed 000), computed exactly.

    Returns a dict with the forward numbers (``z1``, ``a1``, ``z2``, ``a2``), the output factors
    (``"dC/da2"``, ``"sigma'(z2)"``), the loss ``C0 = (a - y)^2`` and its gradients
    (``grads_C0``), the loss ``1/2 (a - y)^2`` and its gradients (``half``, ``grads_half``), the
    parameters after one full gradient-descent step with learning rate 0.1 (``params_after``),
    the new output and loss (``a2_new``, ``C0_new``), the same after updating the output layer
    only, as the notes do (``a2_new_output_only``, ``C0_new_output_only``), and
    ``discrepancies`` (:func:`notes_discrepancies`).
    """
    ex = explain()
    s = ex.steps[0].samples[0]
    l1, l2 = s.layers
    res: dict = {
        "z1": l1.z.copy(),
        "a1": l1.a.copy(),
        "z2": float(l2.z[0]),
        "a2": float(l2.a[0]),
    }
    res["dC/da2"] = float(l2.dC_da[0])
    res["sigma'(z2)"] = float(l2.da_dz[0])
    res["C0"] = ex.steps[0].loss
    res["grads_C0"] = {k: v.copy() for k, v in ex.steps[0].grads.items()}
    net = seed000_network()
    res["half"], res["grads_half"] = net.loss_and_grad(
        SEED000_X, SEED000_Y, loss="half_squared_error"
    )
    res["params_after"] = {k: v.copy() for k, v in ex.steps[0].new_params.items()}
    res["a2_new"] = float(ex.after[0].output[0])
    res["C0_new"] = ex.loss_after
    # The notes update only the output layer; reproduce that too, exactly.
    for k in ("W2", "b2"):
        net.params[k] = net.params[k] - SEED000_LR * res["grads_C0"][k]
    res["a2_new_output_only"] = float(net.forward(SEED000_X)[0, 0])
    res["C0_new_output_only"] = (res["a2_new_output_only"] - 1.0) ** 2
    res["discrepancies"] = notes_discrepancies(res)
    return res


def notes_discrepancies(res: dict | None = None) -> list[str]:
    """Which of the numbers printed in the notes (seed 000) do not follow from their own loss
    ``C0 = (a - y)^2``: one sentence each, with the loss they do correspond to and the correct
    values.

    Parameters
    ----------
    res : dict, optional
        The output of :func:`worked_example` (computed when omitted).

    Examples
    --------
    >>> notes_discrepancies()[0][:8]
    'dC0/dW2:'
    """
    if res is None:
        res = worked_example()
    N = SEED000_NOTES
    out = []
    g, h = res["grads_C0"], res["grads_half"]
    notes_dw = np.array(N["dW2"])
    if not np.allclose(notes_dw, g["W2"][0], atol=6e-4) and np.allclose(
        notes_dw, h["W2"][0], atol=6e-4
    ):
        out.append(
            f"dC0/dW2: the notes print {N['dW2']}, which is the gradient of 1/2 (a - y)^2 "
            f"({np.round(h['W2'][0], 5).tolist()}); for C0 = (a - y)^2 it is "
            f"{np.round(g['W2'][0], 5).tolist()} (the factor 2 of dC0/da = -0.822 was dropped)."
        )
        product = N["dC/da2"] * N["sigma'(z2)"] * 0.289
        out.append(
            f"The notes' own product does not give their result: (-0.822) × 0.242 × 0.289 = "
            f"{product:.4f}, not -0.0287; the factors printed are those of C0, the result is "
            "that of 1/2 (a - y)^2."
        )
    if np.isclose(N["db2"], g["b2"][0], atol=6e-4):
        out.append(
            f"dC0/db2 = {N['db2']:g} in the notes matches C0 ({g['b2'][0]:.5f}), so the notes "
            "mix the two losses: weights from 1/2 (a - y)^2, bias from (a - y)^2."
        )
    w2_from_notes = np.array(SEED000_PARAMS["W2"][0]) - SEED000_LR * notes_dw
    out.append(
        f"The update W2 <- W2 - 0.1 dW2 inherits the halved gradient: the notes get "
        f"{N['W2_new']}, exact C0 gives {np.round(res['params_after']['W2'][0], 5).tolist()} "
        f"(check: {np.round(w2_from_notes, 5).tolist()} from the notes' own dW2)."
    )
    out.append(
        "The notes update only the output layer; backpropagation also updates W1 and b1. "
        f"Output after the update: notes {N['a2_new']}, output layer only (exact C0 gradients) "
        f"{res['a2_new_output_only']:.4f}, all layers {res['a2_new']:.4f}."
    )
    out.append(
        f"The losses use rounded outputs: C_old = (0.589 - 1)^2 = 0.168921 vs exact "
        f"{res['C0']:.6f}; C_new = (0.595 - 1)^2 = 0.164025 vs exact (all layers) "
        f"{res['C0_new']:.6f}."
    )
    return out


# --------------------------------------------------------------------------------------------
# The structured record
# --------------------------------------------------------------------------------------------


@dataclass
class LayerTrace:
    """One layer ``l`` of one sample: forward numbers and (after the backward pass) its factors.

    Attributes
    ----------
    layer : int
        ``l``, counted from 1 (the first hidden layer), as in the notes and in ``W1, b1, ...``.
    activation : str
    W : ndarray (n_out, n_in)
    b : ndarray (n_out,)
    a_in : ndarray (n_in,)
        ``a(l-1)`` (``x`` for ``l = 1``).
    z : ndarray (n_out,)
        ``z(l) = W a_in + b``.
    a : ndarray (n_out,)
        ``a(l) = f(z(l))``.
    dC_da : ndarray (n_out,) or None
        ``dC/da(l)`` of this sample's loss (None where it is not finite, e.g. cross-entropy at
        an output of exactly 0).
    da_dz : ndarray (n_out,) or None
        ``f'(z(l))`` for elementwise activations; None for softmax (see ``jacobian``).
    jacobian : ndarray (n_out, n_out) or None
        ``da/dz = diag(a) - a a^T`` for softmax.
    mode : str
        How ``delta`` follows: ``"elementwise"`` (``dC/da * f'(z)``), ``"jacobian"`` (softmax:
        ``J^T dC/da``) or ``"fused"`` (output activation fused with its loss: ``delta = a - y``
        times the loss's constant).
    delta : ndarray (n_out,)
        ``dC/dz(l)``.
    dW : ndarray (n_out, n_in)
        This sample's ``dC/dW(l) = delta a_in^T``.
    db : ndarray (n_out,)
        This sample's ``dC/db(l) = delta``.
    """

    layer: int
    activation: str
    W: np.ndarray
    b: np.ndarray
    a_in: np.ndarray
    z: np.ndarray
    a: np.ndarray
    dC_da: np.ndarray | None = None
    da_dz: np.ndarray | None = None
    jacobian: np.ndarray | None = None
    mode: str = "elementwise"
    delta: np.ndarray | None = None
    dW: np.ndarray | None = None
    db: np.ndarray | None = None

    def to_dict(self) -> dict:
        out = {"layer": self.layer, "activation": self.activation, "mode": self.mode}
        for k in ("W", "b", "a_in", "z", "a", "dC_da", "da_dz", "jacobian", "delta", "dW", "db"):
            v = getattr(self, k)
            out[k] = None if v is None else np.asarray(v).tolist()
        return out


@dataclass
class SampleTrace:
    """Forward (and backward) pass of one sample: ``x``, ``y``, one :class:`LayerTrace` per layer,
    the output and this sample's loss ``C_x`` (without any L2 term)."""

    x: np.ndarray
    y: np.ndarray
    layers: list[LayerTrace]
    loss: float

    @property
    def output(self) -> np.ndarray:
        return self.layers[-1].a

    def to_dict(self) -> dict:
        return {
            "x": self.x.tolist(),
            "y": self.y.tolist(),
            "output": self.output.tolist(),
            "loss": self.loss,
            "layers": [lt.to_dict() for lt in self.layers],
        }


@dataclass
class Step:
    """One iteration: forward, loss, backward and update for the whole (small) batch.

    Attributes
    ----------
    number : int
        1-based.
    params : dict
        Parameters before the update (``W1, b1, ...``).
    samples : list of SampleTrace
    data_loss : float
        Mean of the samples' losses.
    l2_value : float
        ``l2 / (2n) sum W^2`` (0 without L2).
    loss : float
        ``data_loss + l2_value``: the loss the engine reports.
    grads : dict
        ``dC/dtheta`` of the batch: the mean of the per-sample gradients plus ``l2 / n W``.
    lr : float
    new_params : dict
        ``params - lr * grads``.
    check : dict
        ``engine_max_abs_diff`` (largest difference to ``net.loss_and_grad``),
        ``engine_loss_diff`` and ``gradcheck_rel_error`` (worst relative error against central
        finite differences); empty when the check was switched off.
    """

    number: int
    params: dict
    samples: list[SampleTrace]
    data_loss: float
    l2_value: float
    loss: float
    grads: dict
    lr: float
    new_params: dict
    check: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "step": self.number,
            "params": {k: v.tolist() for k, v in self.params.items()},
            "samples": [s.to_dict() for s in self.samples],
            "data_loss": self.data_loss,
            "l2_value": self.l2_value,
            "loss": self.loss,
            "grads": {k: v.tolist() for k, v in self.grads.items()},
            "lr": self.lr,
            "new_params": {k: v.tolist() for k, v in self.new_params.items()},
            "check": dict(self.check),
        }


_KEY = re.compile(r"^(z|a|delta|dC/da|da/dz|dW|db|W|b)(\d+)(_new)?$")


@dataclass
class Explanation:
    """The record of :func:`explain`: every number, addressable, plus renderers.

    Attributes
    ----------
    sizes : list of int
        Layer widths, input first.
    activations : list of str
        One per layer ``l = 1 .. L``.
    loss_name : str
    fused : bool
        Whether the output activation is fused with the loss (delta = a - y).
    lr, l2 : float
    X, Y : ndarray (n, n_in), (n, n_out)
        The inputs and targets (float64).
    steps : list of Step
    after : list of SampleTrace
        Forward pass with the parameters after the last update.
    loss_after : float
        The loss there.
    notes : list of str
        For the notes' worked example: where the notes' numbers do not follow from their loss.
    notes_values : dict
        For the notes' worked example: the notes' printed numbers by symbol (shown next to ours).
    title : str
    layer, unit : int or None
        The view used by the renderers (1-based; None shows everything).
    digits : int
        Significant digits of the rendered numbers.
    dropout : bool
        Whether the network has dropout (switched off here).

    Examples
    --------
    >>> ex = explain()
    >>> np.round(ex["z1"], 4).tolist(), round(float(ex["a2"][0]), 4)
    ([-0.9, 0.3], 0.5889)
    >>> print(ex.text())  # doctest: +SKIP
    """

    sizes: list[int]
    activations: list[str]
    loss_name: str
    fused: bool
    lr: float
    l2: float
    X: np.ndarray
    Y: np.ndarray
    steps: list[Step]
    after: list[SampleTrace]
    loss_after: float
    notes: list[str] = field(default_factory=list)
    notes_values: dict = field(default_factory=dict)
    title: str = ""
    layer: int | None = None
    unit: int | None = None
    digits: int = 4
    dropout: bool = False
    _acts: list = field(default_factory=list, repr=False)  # the activation objects, by layer

    # -- addressing ------------------------------------------------------------------------
    def __getitem__(self, key: str):
        """Quantities of step 1, sample 1 by name.

        ``"z1"``, ``"a1"``, ``"delta2"``, ``"dC/da2"``, ``"da/dz2"`` (per sample), ``"dW1"``,
        ``"db1"`` (batch gradients), ``"W1"``, ``"b1"`` (before), ``"W1_new"``, ``"b1_new"``
        (after the update), ``"loss"``, ``"loss_new"``, ``"output"``, ``"output_new"``, ``"x"``,
        ``"y"``. Other steps and samples: ``ex.steps[k].samples[s].layers[l - 1]``.
        """
        step = self.steps[0]
        sample = step.samples[0]
        simple = {
            "loss": lambda: step.loss,
            "loss_new": lambda: self.loss_after,
            "output": lambda: sample.output,
            "output_new": lambda: self.after[0].output,
            "x": lambda: sample.x,
            "y": lambda: sample.y,
        }
        if key in simple:
            return simple[key]()
        m = _KEY.match(key) if isinstance(key, str) else None
        if m is None or not 1 <= int(m.group(2)) <= len(self.activations):
            raise KeyError(
                f"unknown quantity {key!r}: expected e.g. z1, a1, delta1, dC/da1, da/dz1, dW1, "
                f"db1, W1, b1, W1_new, b1_new (layers 1..{len(self.activations)}), loss, "
                "loss_new, output, output_new, x, y"
            )
        what, l = m.group(1) + (m.group(3) or ""), int(m.group(2))
        if m.group(3) and m.group(1) not in ("W", "b"):
            raise KeyError(f"unknown quantity {key!r}: only W<l>_new and b<l>_new have '_new'")
        lt = sample.layers[l - 1]
        table = {
            "z": lambda: lt.z,
            "a": lambda: lt.a,
            "delta": lambda: lt.delta,
            "dC/da": lambda: lt.dC_da,
            "da/dz": lambda: lt.da_dz if lt.da_dz is not None else lt.jacobian,
            "dW": lambda: step.grads[f"W{l}"],
            "db": lambda: step.grads[f"b{l}"],
            "W": lambda: step.params[f"W{l}"],
            "b": lambda: step.params[f"b{l}"],
            "W_new": lambda: step.new_params[f"W{l}"],
            "b_new": lambda: step.new_params[f"b{l}"],
        }
        return table[what]()

    # -- output formats --------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Everything as plain lists and numbers (JSON-able)."""
        return {
            "title": self.title,
            "network": {"sizes": self.sizes, "activations": self.activations},
            "loss": self.loss_name,
            "fused": self.fused,
            "lr": self.lr,
            "l2": self.l2,
            "dtype": "float64",
            "x": self.X.tolist(),
            "y": self.Y.tolist(),
            "steps": [s.to_dict() for s in self.steps],
            "after": {
                "samples": [s.to_dict() for s in self.after],
                "loss": self.loss_after,
            },
            "notes": list(self.notes),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as a JSON string."""
        from .callbacks import json_safe  # noqa: PLC0415

        # standard JSON: a diverged run's NaN and infinity are written as null
        return json.dumps(json_safe(self.to_dict()), indent=indent, allow_nan=False)

    def _doc(self, layer=None, unit=None, digits=None):
        layer = self.layer if layer is None else layer
        unit = self.unit if unit is None else unit
        _check_view(layer, unit, self.sizes)
        return _Document(self, layer, unit, self.digits if digits is None else digits).build()

    def text(self, *, layer: int | None = None, unit: int | None = None, digits=None) -> str:
        """Aligned plain text (the terminal output without colour)."""
        return "\n".join(_plain(line) for line in _render_text(self._doc(layer, unit, digits)))

    def markdown(self, *, layer: int | None = None, unit: int | None = None, digits=None) -> str:
        """Markdown with LaTeX formulas (``$$ ... $$`` blocks), e.g. for a notebook or a report."""
        return _render_markdown(self._doc(layer, unit, digits))

    def print(self, file=None, *, color: bool | None = None, **view) -> None:
        """Print the text; coloured (through rich) when ``file`` is a terminal or ``color=True``."""
        import sys

        file = sys.stdout if file is None else file
        if color is None:
            color = bool(getattr(file, "isatty", lambda: False)())
        lines = _render_text(self._doc(view.get("layer"), view.get("unit"), view.get("digits")))
        if not color:
            file.write("\n".join(_plain(line) for line in lines) + "\n")
            return
        from rich.console import Console
        from rich.text import Text

        console = Console(
            file=file, highlight=False, markup=False, soft_wrap=True, force_terminal=True
        )
        for line in lines:
            console.print(Text.assemble(*[(t, s or "") for t, s in line]))

    def _repr_markdown_(self) -> str:  # Jupyter shows the Markdown (with LaTeX)
        return self.markdown()

    def __str__(self) -> str:
        return self.text()


# --------------------------------------------------------------------------------------------
# The computation
# --------------------------------------------------------------------------------------------

MAX_SAMPLES = 8


def _structure(net) -> tuple[list[int], list, bool]:
    """Widths, activations per Dense layer (the network's own objects, so that a leaky ReLU
    keeps its slope), and whether there is dropout."""
    if not isinstance(net, Sequential):
        raise TypeError(f"net is a {type(net).__name__}: expected a backprop MLP or Sequential")
    sizes: list[int] = []
    acts: list = []
    dropout = False
    for layer in net.layers:
        if isinstance(layer, Dense):
            if not sizes:
                sizes.append(layer.n_in)
            sizes.append(layer.n_out)
            acts.append(None)
        elif isinstance(layer, ActivationLayer):
            if not acts or acts[-1] is not None:
                raise ValueError(
                    f"explain needs each activation to follow a Dense layer; found "
                    f"{layer!r} without one"
                )
            acts[-1] = layer.activation
        elif isinstance(layer, Dropout):
            dropout = True
        else:
            raise ValueError(
                f"explain supports Dense, activation and dropout layers: the network has "
                f"{type(layer).__name__}"
            )
    if not acts:
        raise ValueError("explain needs a network with at least one Dense layer")
    return sizes, [a or get_activation("identity") for a in acts], dropout


def _as_float64_net(net) -> Sequential:
    # the layer-by-layer config: an MLP's own config names its activations only, which loses a
    # leaky ReLU's slope
    cfg = Sequential.to_config(net)
    cfg["dtype"] = "float64"
    clone = from_config(cfg)
    clone.set_params({k: np.asarray(v, dtype=np.float64) for k, v in net.params.items()})
    return clone


def _loss_terms(loss, act, z, a, y):
    """Per-sample loss value and the output's dC/da, da/dz (or Jacobian), mode and delta."""
    Z, A, Y = z[None].copy(), a[None].copy(), y[None]
    fused = loss.fused_with is not None and loss.fused_with == act.name
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        try:
            g = loss.grad(A.copy(), Y)[0]
        except (FloatingPointError, ZeroDivisionError):  # pragma: no cover - defensive
            g = None
    if g is not None and not np.all(np.isfinite(g)):
        g = None
    if fused:
        value, delta = loss.fused(Z, A.copy(), Y)
        delta = np.asarray(delta)[0]
        da_dz, jac = _local_derivative(act, z, a)
        mode = "elementwise" if act.name == "identity" else "fused"
        return float(value), g, da_dz, jac, mode, delta
    value = loss.value(A, Y)
    if g is None:
        raise ValueError(
            f"the loss {loss.name} has no finite derivative at the output {a.tolist()} "
            "(an output of exactly 0 or 1): explain cannot continue"
        )
    da_dz, jac = _local_derivative(act, z, a)
    if jac is not None:
        delta = act.backward(Z, A, g[None].copy())[0]
        return float(value), g, None, jac, "jacobian", delta
    return float(value), g, da_dz, None, "elementwise", g * da_dz


def _local_derivative(act, z, a):
    """``f'(z)`` (elementwise) or the softmax Jacobian ``diag(a) - a a^T``."""
    if act.name == "softmax":
        return None, np.diag(a) - np.outer(a, a)
    return act.backward(z[None].copy(), a[None].copy(), np.ones((1, z.size)))[0], None


def _trace(acts, params, x, y, loss, backward=True) -> SampleTrace:
    layers = []
    a = x
    for l, act in enumerate(acts, 1):
        W, b = params[f"W{l}"], params[f"b{l}"]
        z = W @ a + b
        a_out = act.forward(z[None].copy())[0]
        layers.append(LayerTrace(l, act.name, W, b, a, z, a_out))
        a = a_out
    last = layers[-1]
    value, g, da_dz, jac, mode, delta = _loss_terms(loss, acts[-1], last.z, last.a, y)
    if not backward:
        return SampleTrace(x, y, layers, value)
    last.dC_da, last.da_dz, last.jacobian, last.mode, last.delta = g, da_dz, jac, mode, delta
    for l in range(len(layers), 0, -1):
        lt = layers[l - 1]
        if l < len(layers):
            nxt = layers[l]
            lt.dC_da = nxt.W.T @ nxt.delta  # dC/da(l) = W(l+1)^T delta(l+1)
            lt.da_dz, lt.jacobian = _local_derivative(acts[l - 1], lt.z, lt.a)
            if lt.jacobian is not None:
                lt.mode = "jacobian"
                lt.delta = lt.jacobian.T @ lt.dC_da
            else:
                lt.delta = lt.dC_da * lt.da_dz
        lt.dW = np.outer(lt.delta, lt.a_in)  # dz/dW[i,j] = a_in[j]
        lt.db = lt.delta.copy()  # dz/db[i] = 1
    return SampleTrace(x, y, layers, value)


def _l2_value_and_grads(params, n_layers, l2, n):
    if not l2:
        return 0.0, {}
    value = sum(float((params[f"W{l}"] ** 2).sum()) for l in range(1, n_layers + 1))
    return l2 / (2.0 * n) * value, {
        f"W{l}": params[f"W{l}"] * (l2 / n) for l in range(1, n_layers + 1)
    }


def _check_positive(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what}={value!r} is invalid: expected a finite number > 0")
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{what}={value!r} is invalid: expected a finite number > 0")
    return v


def _check_int(value, what, lo, hi=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what}={value!r} is invalid: expected an integer >= {lo}")
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{what}={value!r} is invalid: expected an integer {rng}")
    return int(value)


def _check_view(layer, unit, sizes):
    n_layers = len(sizes) - 1
    if layer is not None:
        _check_int(layer, "layer", 1, n_layers)
    if unit is not None:
        if layer is None:
            raise ValueError(f"unit={unit!r} needs a layer: expected layer in [1, {n_layers}] too")
        _check_int(unit, "unit", 1, sizes[layer])


def explain(
    net=None,
    x=None,
    y=None,
    *,
    loss=None,
    lr: float | None = None,
    steps: int = 1,
    l2: float = 0.0,
    layer: int | None = None,
    unit: int | None = None,
    digits: int = 4,
    max_width: int = 16,
    check: bool = True,
) -> Explanation:
    """Explain forward pass, loss, backward pass and gradient-descent update, number by number.

    For every layer ``l = 1 .. L`` (``a(0) = x``)::

        z(l) = W(l) a(l-1) + b(l),          a(l) = f(z(l))
        delta(L) = dC/da(L) * f'(z(L))      (or a - y for a fused output/loss pair)
        delta(l) = (W(l+1)^T delta(l+1)) * f'(z(l))
        dC/dW(l)[i,j] = dC/da(l)[i] × da(l)/dz(l)[i] × dz(l)[i]/dW(l)[i,j]
                      = delta(l)[i] × a(l-1)[j],      dC/db(l)[i] = delta(l)[i]
        theta <- theta - lr * dC/dtheta

    Parameters
    ----------
    net : MLP or Sequential, optional
        A small network of Dense and activation layers (dropout is switched off). Default: the
        notes' worked example (:func:`seed000_network`). Not modified: explain works on a
        float64 copy.
    x : array (n_in,) or (n, n_in), optional
        One input, or up to 8 inputs (then the batch gradient is the mean of the per-sample
        gradients, as in the engine). Default (with the notes' network): ``[2, 3, -1]``.
    y : array
        The target(s): values ``(n_out,)`` / ``(n, n_out)``, or class labels for cross-entropy.
        Default (with the notes' network): ``1``.
    loss : str or Loss, optional
        Default: the notes' ``squared_error`` ``C0 = (a - y)^2`` for their network, else the
        network's natural loss.
    lr : float, default 0.1
        Learning rate ``eta``.
    steps : int, default 1
        Number of gradient-descent iterations to explain.
    l2 : float, default 0.0
        L2 strength: ``l2 / (2n) sum W^2`` is added to the loss, ``l2 / n W`` to ``dC/dW``.
    layer, unit : int, optional
        Narrow the rendered view to layer ``l`` (1-based) and unit ``i`` of it (1-based); the
        structured record always holds everything.
    digits : int, default 4
        Significant digits shown (the computation is exact float64).
    max_width : int, default 16
        Largest layer width accepted (the explanation grows with the square of the width).
    check : bool, default True
        Compare every step with the engine's ``loss_and_grad`` and with :func:`gradcheck`.

    Returns
    -------
    Explanation

    Raises
    ------
    ValueError, TypeError
        A network with other layers or wider than ``max_width``, inputs or targets of the wrong
        shape, a bad ``lr``/``steps``/``layer``/``unit``.

    Examples
    --------
    >>> ex = explain()                          # the notes' worked example (seed 000)
    >>> ex["a1"].round(4).tolist()
    [0.2891, 0.5744]
    >>> net = MLP([2, 3, 2], activation="tanh", output="softmax", dtype="float64", seed=0)
    >>> ex = explain(net, [0.5, -1.0], 1, lr=0.5, steps=2)
    >>> print(ex.text(layer=2))                 # doctest: +SKIP
    """
    is_notes = net is None
    if net is None:
        if (x is None) != (y is None):
            raise ValueError("give both x and y (or neither, for the notes' worked example)")
        net = seed000_network()
        if x is None:
            x, y = SEED000_X, SEED000_Y
        if loss is None:
            loss = "squared_error"
    elif x is None or y is None:
        raise ValueError("explain(net, x, y) needs an input x and a target y for the network")
    sizes, acts, dropout = _structure(net)
    act_names = [a.name for a in acts]
    max_width = _check_int(max_width, "max_width", 1)
    widest = max(sizes)
    if widest > max_width:
        raise ValueError(
            f"explain is for small networks: a layer of the network has {widest} units, more "
            f"than max_width={max_width} (raise max_width to explain it anyway)"
        )
    lr = SEED000_LR if lr is None else _check_positive(lr, "lr")
    steps = _check_int(steps, "steps", 1, 1000)
    digits = _check_int(digits, "digits", 1, 17)
    try:
        l2 = float(l2)
    except (TypeError, ValueError):
        raise TypeError(f"l2={l2!r} is invalid: expected a number >= 0") from None
    if not math.isfinite(l2) or l2 < 0:
        raise ValueError(f"l2={l2!r} is invalid: expected a finite number >= 0")
    _check_view(layer, unit, sizes)

    engine = _as_float64_net(net)
    loss_obj = get_loss(loss if loss is not None else engine.default_loss())
    x_arr = np.asarray(x)
    X = engine._check_X(x_arr[None] if x_arr.ndim == 1 else x_arr)
    if len(X) > MAX_SAMPLES:
        raise ValueError(
            f"x has {len(X)} samples: explain takes at most {MAX_SAMPLES} (one is usual)"
        )
    y_arr = np.asarray(y)
    if len(X) == 1:  # one sample: a scalar target or label, or one target vector
        if y_arr.ndim == 0:
            y_arr = y_arr.reshape(1)
        elif y_arr.ndim == 1 and y_arr.size == sizes[-1] > 1:
            y_arr = y_arr.reshape(1, -1)
    elif y_arr.ndim == 2 and y_arr.shape[1] == 1 and sizes[-1] > 1:
        y_arr = y_arr[:, 0]  # one class label per sample ("--y 0;2")
    Y = engine.check_targets(y_arr, len(X), loss_obj)
    n = len(X)

    fused = loss_obj.fused_with is not None and loss_obj.fused_with == act_names[-1]
    params = {k: v.copy() for k, v in engine.params.items()}
    n_layers = len(acts)
    step_list = []
    errstate = np.errstate(over="ignore", invalid="ignore", divide="ignore")
    errstate.__enter__()  # a diverging run is reported once, below, not by NumPy's warnings
    for k in range(1, steps + 1):
        samples = [_trace(acts, params, X[i], Y[i], loss_obj) for i in range(n)]
        data_loss = float(np.mean([s.loss for s in samples]))
        if not math.isfinite(data_loss) or not all(np.isfinite(v).all() for v in params.values()):
            if k == 1:
                errstate.__exit__(None, None, None)
                raise ValueError(
                    f"the loss of the first step is {data_loss}: expected a finite number "
                    "(are the inputs or the weights very large?)"
                )
            break  # the previous update diverged: the explanation ends after it
        l2_value, l2_grads = _l2_value_and_grads(params, n_layers, l2, n)
        grads = {}
        for l in range(1, n_layers + 1):
            grads[f"W{l}"] = np.mean([s.layers[l - 1].dW for s in samples], axis=0)
            grads[f"b{l}"] = np.mean([s.layers[l - 1].db for s in samples], axis=0)
            if f"W{l}" in l2_grads:
                grads[f"W{l}"] = grads[f"W{l}"] + l2_grads[f"W{l}"]
        new_params = {key: params[key] - lr * grads[key] for key in params}
        step = Step(
            k,
            params,
            samples,
            data_loss,
            l2_value,
            data_loss + l2_value,
            grads,
            lr,
            new_params,
        )
        if check:
            step.check = _engine_check(engine, params, X, Y, loss_obj, l2, step)
        step_list.append(step)
        params = new_params
    after = [_trace(acts, params, X[i], Y[i], loss_obj, backward=False) for i in range(n)]
    l2_after, _ = _l2_value_and_grads(params, n_layers, l2, n)
    loss_after = float(np.mean([s.loss for s in after])) + l2_after
    errstate.__exit__(None, None, None)

    notes_default = (
        is_notes
        and x is SEED000_X
        and loss_obj.name == "squared_error"
        and lr == SEED000_LR
        and l2 == 0
    )
    act_desc = ", ".join(act_names)
    widths = "-".join(str(s) for s in sizes)
    if notes_default:
        title = "The worked example of the lecture notes (seed 000)"
    else:
        title = f"A {widths} network ({act_desc}), loss {loss_obj.name}"
    ex = Explanation(
        sizes=sizes,
        activations=act_names,
        loss_name=loss_obj.name,
        fused=fused,
        lr=lr,
        l2=l2,
        X=X,
        Y=Y,
        steps=step_list,
        after=after,
        loss_after=loss_after,
        title=title,
        layer=layer,
        unit=unit,
        digits=digits,
        dropout=dropout,
        _acts=acts,
    )
    if notes_default:
        ex.notes = notes_discrepancies(_res_from(ex))
        ex.notes_values = dict(_NOTES_KEYS)
    return ex


def _res_from(ex: Explanation) -> dict:
    """The numbers :func:`notes_discrepancies` needs, from an explanation of seed 000."""
    net = seed000_network()
    half, grads_half = net.loss_and_grad(SEED000_X, SEED000_Y, loss="half_squared_error")
    step = ex.steps[0]
    for k in ("W2", "b2"):
        net.params[k] = net.params[k] - SEED000_LR * step.grads[k]
    a_out = float(net.forward(SEED000_X)[0, 0])
    # the notes make one update: compare with the forward pass after the first step
    after_one = ex.steps[1] if len(ex.steps) > 1 else None
    return {
        "grads_C0": step.grads,
        "grads_half": grads_half,
        "params_after": step.new_params,
        "a2_new": float((after_one.samples if after_one else ex.after)[0].output[0]),
        "a2_new_output_only": a_out,
        "C0": step.loss,
        "C0_new": after_one.loss if after_one else ex.loss_after,
    }


def _engine_check(engine, params, X, Y, loss_obj, l2, step) -> dict:
    """Compare a step with the engine's batched backward pass and with finite differences."""
    engine.set_params(params)
    value, grads = engine.loss_and_grad(X, Y, loss=loss_obj, l2=l2, training=False)
    diff = max(float(np.max(np.abs(grads[k] - step.grads[k]))) for k in grads)
    # A central difference of float64 carries a rounding error of about 1e-10 of the loss (at
    # most 3.3e-10 measured); a floor of 1e-5 of the loss keeps that below 1e-4 relative error
    # for a gradient as small as the error itself (a saturated unit next to a large loss).
    floor = max(1e-6, 1e-5 * abs(float(value))) if math.isfinite(value) else 1e-6
    rel = gradcheck(engine, X, Y, loss=loss_obj, l2=l2, floor=floor)
    return {
        "engine_max_abs_diff": diff,
        "engine_loss_diff": abs(float(value) - step.loss),
        "gradcheck_rel_error": float(rel),
    }


# --------------------------------------------------------------------------------------------
# Rendering: one document, two writers (text and Markdown/LaTeX)
# --------------------------------------------------------------------------------------------


class _M:
    """A piece of mathematics in two spellings: plain text ``t`` and LaTeX ``l``."""

    __slots__ = ("t", "l")

    def __init__(self, t: str, l: str | None = None):
        self.t = t
        self.l = t if l is None else l

    def __add__(self, other):
        o = _m(other)
        return _M(self.t + o.t, self.l + o.l)

    def __radd__(self, other):
        o = _m(other)
        return _M(o.t + self.t, o.l + self.l)


def _m(v) -> _M:
    return v if isinstance(v, _M) else _M(str(v))


def _join(items, t_sep: str, l_sep: str | None = None) -> _M:
    items = [_m(i) for i in items]
    return _M(
        t_sep.join(i.t for i in items), (t_sep if l_sep is None else l_sep).join(i.l for i in items)
    )


TIMES = _M(" × ", r" \times ")


def _fmt(v: float, digits: int) -> str:
    v = float(v)
    if v == 0:
        return "0"
    if not math.isfinite(v):
        return str(v)
    s = f"{v:.{digits}g}"
    if "e" in s:
        mant, exp = s.split("e")
        return f"{mant}e{int(exp)}"
    return s


def _num(v: float, digits: int, paren: bool = False) -> _M:
    s = _fmt(v, digits)
    if "e" in s:
        mant, exp = s.split("e")
        lat = rf"{mant} \times 10^{{{exp}}}"
    else:
        lat = s
    if paren and (s.startswith("-") or "e" in s):
        return _M(f"({s})", f"({lat})")
    return _M(s, lat)


def _idx(*ix) -> tuple[str, str]:
    t = ",".join(str(i) for i in ix)
    lat = "".join(str(i) for i in ix) if all(i < 10 for i in ix) else ",".join(map(str, ix))
    return t, lat


def _sym(base: str, l: int | None, *ix) -> _M:
    """``z1[2]`` / ``z^{(1)}_{2}``; layer 0 activations are ``x[j]`` / ``x_{j}``."""
    lat_base = {"delta": r"\delta"}.get(base, base)
    if base == "a" and l == 0:
        base, lat_base, l = "x", "x", None
    t_ix, l_ix = _idx(*ix) if ix else ("", "")
    t = f"{base}{'' if l is None else l}" + (f"[{t_ix}]" if ix else "")
    lat = lat_base + ("" if l is None else f"^{{({l})}}") + (f"_{{{l_ix}}}" if ix else "")
    return _M(t, lat)


def _d(num: _M, den: _M) -> _M:
    return _M(f"d{num.t}/d{den.t}", rf"\frac{{\partial {num.l}}}{{\partial {den.l}}}")


C = _M("C", "C")

_ACT_TEX = {
    "sigmoid": r"\sigma",
    "tanh": r"\tanh",
    "relu": r"\operatorname{relu}",
    "leaky_relu": r"\operatorname{leaky\_relu}",
    "identity": r"\operatorname{id}",
    "softmax": r"\operatorname{softmax}",
}


def _fname(name: str) -> _M:
    return _M(name, _ACT_TEX.get(name, rf"\operatorname{{{name}}}"))


@dataclass
class _Row:
    lhs: _M
    mid: _M | None
    res: _M
    note: tuple[str, bool] | None = None  # (notes' value, agrees?)
    arrow: bool = False  # "<-" instead of "=" (updates)


class _Document:
    """Builds a list of blocks from an Explanation: ("h", level, text), ("p", _M|str),
    ("rows", [_Row]), ("list", [str], style), ("table", header, rows)."""

    def __init__(self, ex: Explanation, layer, unit, digits):
        self.ex = ex
        self.layer = layer
        self.unit = unit
        self.dg = digits
        self.blocks: list = []

    def n(self, v, paren=False) -> _M:
        return _num(v, self.dg, paren)

    def show_layer(self, l) -> bool:
        return self.layer is None or self.layer == l

    def units(self, l, size) -> range:
        if self.layer == l and self.unit is not None:
            return range(self.unit - 1, self.unit)
        return range(size)

    def note(self, key: str, value: float, step: int):
        if step != 1 or key not in self.ex.notes_values:
            return None
        printed = self.ex.notes_values[key]
        decimals = len(repr(float(printed)).split(".")[1]) if "." in repr(float(printed)) else 0
        ok = abs(float(value) - printed) <= 0.6 * 10.0 ** (-decimals) + 1e-12
        return (repr(printed), ok)

    # -- the document -------------------------------------------------------------------
    def build(self) -> list:
        ex = self.ex
        b = self.blocks
        b.append(("h", 0, f"backprop explain: {ex.title}"))
        b.append(("p", self._intro()))
        if ex.layer is not None or self.layer is not None:
            where = f"layer {self.layer}" + (f", unit {self.unit}" if self.unit else "")
            b.append(("p", f"View narrowed to {where}; the loss is that of the whole network."))
        for step in ex.steps:
            self._step(step)
        self._after()
        if len(ex.steps) > 1:
            self._summary()
        self._checks()
        if ex.notes:
            b.append(("h", 1, "Where the notes' numbers do not follow from their own loss"))
            b.append(("p", "The notes state C0 = (a - y)^2. Against it:"))
            b.append(("list", list(ex.notes), "warn"))
        return b

    def _intro(self) -> str:
        ex = self.ex
        dg = self.dg
        vec = "; ".join("[" + ", ".join(_fmt(v, dg) for v in row) + "]" for row in ex.X)
        tgt = "; ".join("[" + ", ".join(_fmt(v, dg) for v in row) + "]" for row in ex.Y)
        n = len(ex.X)
        parts = [
            f"Network {'-'.join(map(str, ex.sizes))}, activations "
            f"{', '.join(f'layer {i}: {a}' for i, a in enumerate(ex.activations, 1))}; "
            f"loss {ex.loss_name}{f' + L2 (lambda = {_fmt(ex.l2, dg)})' if ex.l2 else ''}; "
            f"learning rate eta = {_fmt(ex.lr, dg)}; {len(ex.steps)} step(s).",
            f"Input{'s' if n > 1 else ''} x = {vec}; target{'s' if n > 1 else ''} y = {tgt}.",
            "Notation of the notes: z(l) = W(l) a(l-1) + b(l), a(l) = f(z(l)), a(0) = x; "
            "W(l)[i,j] joins unit j of layer l-1 to unit i of layer l; indices count from 1.",
            f"Numbers are shown to {dg} significant digits; every result is computed from the "
            "unrounded values (float64).",
        ]
        if n > 1:
            parts.append(
                f"The loss of the batch is the mean of the {n} samples' losses C_x, so its "
                "gradient is the mean of their gradients (each sample is explained in turn)."
            )
        if ex.dropout:
            parts.append("The network has dropout; it is switched off here (inference mode).")
        return "\n".join(parts)

    def _step(self, step: Step):
        ex = self.ex
        b = self.blocks
        b.append(("h", 1, f"Step {step.number} of {len(ex.steps)}"))
        if step.number > 1:
            b.append(
                ("p", f"Its forward pass uses the parameters updated in step {step.number - 1}.")
            )
        multi = len(step.samples) > 1
        for si, sample in enumerate(step.samples, 1):
            if multi:
                b.append(("h", 2, f"Sample {si} of {len(step.samples)}"))
            self._forward(sample, step.number, "1. Forward pass")
            self._loss(sample, step.number, "2. Loss", multi)
            self._backward(sample, step.number, multi)
        if multi or ex.l2:
            self._batch(step)
        self._update(step)

    def _forward(self, sample: SampleTrace, stepno: int, title: str, prefix: str = ""):
        b = self.blocks
        b.append(("h", 2, title))
        for lt in sample.layers:
            l = lt.layer
            if not self.show_layer(l):
                continue
            prev = "x" if l == 1 else f"a{l - 1}"
            b.append(
                ("h", 3, f"layer {l}: z{l} = W{l} {prev} + b{l},  a{l} = {lt.activation}(z{l})")
            )
            rows = []
            for i in self.units(l, lt.z.size):
                terms = [
                    self.n(lt.W[i, j], paren=True) + "(" + self.n(lt.a_in[j]) + ")"
                    for j in range(lt.a_in.size)
                ]
                terms.append(self.n(lt.b[i], paren=True))
                key = f"z{l}[{i + 1}]"
                rows.append(
                    _Row(
                        _sym("z", l, i + 1),
                        _join(terms, " + "),
                        self.n(lt.z[i]),
                        self.note(prefix + key, lt.z[i], stepno),
                    )
                )
            if lt.activation == "softmax":
                den_t = " + ".join(f"exp({_fmt(v, self.dg)})" for v in lt.z)
                den_l = " + ".join(f"e^{{{_num(v, self.dg).l}}}" for v in lt.z)
                for i in self.units(l, lt.z.size):
                    zi = _num(lt.z[i], self.dg)
                    mid = _M(f"exp({zi.t}) / ({den_t})", rf"\frac{{e^{{{zi.l}}}}}{{{den_l}}}")
                    rows.append(
                        _Row(
                            _sym("a", l, i + 1),
                            mid,
                            self.n(lt.a[i]),
                            self.note(prefix + f"a{l}[{i + 1}]", lt.a[i], stepno),
                        )
                    )
            else:
                for i in self.units(l, lt.z.size):
                    mid = _fname(lt.activation) + "(" + self.n(lt.z[i]) + ")"
                    rows.append(
                        _Row(
                            _sym("a", l, i + 1),
                            mid,
                            self.n(lt.a[i]),
                            self.note(prefix + f"a{l}[{i + 1}]", lt.a[i], stepno),
                        )
                    )
            b.append(("rows", rows))
        out = ", ".join(_fmt(v, self.dg) for v in sample.output)
        b.append(("p", f"Output a{len(sample.layers)} = [{out}]."))

    def _loss_formula(self, L: int) -> _M:
        name = self.ex.loss_name
        a = _M(f"a{L}[k]", rf"a^{{({L})}}_k")
        forms = {
            "squared_error": _M(f"sum_k ({a.t} - y[k])^2", rf"\sum_k ({a.l} - y_k)^2"),
            "half_squared_error": _M(
                f"1/2 sum_k ({a.t} - y[k])^2", rf"\frac{{1}}{{2}} \sum_k ({a.l} - y_k)^2"
            ),
            "mse": _M(f"1/K sum_k ({a.t} - y[k])^2", rf"\frac{{1}}{{K}} \sum_k ({a.l} - y_k)^2"),
            "cross_entropy": _M(f"-sum_k y[k] log {a.t}", rf"-\sum_k y_k \log {a.l}"),
            "binary_cross_entropy": _M(
                f"-sum_k [y[k] log {a.t} + (1 - y[k]) log(1 - {a.t})]",
                rf"-\sum_k \left[y_k \log {a.l} + (1 - y_k) \log(1 - {a.l})\right]",
            ),
        }
        return forms.get(name, _M(f"{name}(a{L}, y)", rf"\operatorname{{{name}}}(a^{{({L})}}, y)"))

    def _loss_terms(self, a, y) -> _M:
        name = self.ex.loss_name
        n = self.n
        if name in ("squared_error", "half_squared_error", "mse"):
            sq = _join(
                [
                    _M("(") + n(ak) + " - " + n(yk, True) + _M(")^2", ")^{2}")
                    for ak, yk in zip(a, y, strict=True)
                ],
                " + ",
            )
            if name == "squared_error":
                return sq
            k = 2 if name == "half_squared_error" else len(a)
            inner = sq if len(a) == 1 else _M("[") + sq + "]"
            return _M(f"1/{k} ", rf"\frac{{1}}{{{k}}}") + inner
        if name == "cross_entropy":
            if set(np.unique(y)) <= {0.0, 1.0} and float(np.sum(y)) == 1.0:
                k = int(np.argmax(y))
                return _M("-log ", r"-\log ") + n(a[k])
            terms = [
                n(yk, True) + _M(" log ", r" \log ") + n(ak)
                for ak, yk in zip(a, y, strict=True)
                if yk
            ]
            return _M("-(", "-(") + _join(terms or [_M("0")], " + ") + ")"
        if name == "binary_cross_entropy":
            terms = []
            for ak, yk in zip(a, y, strict=True):
                terms.append(
                    n(yk, True)
                    + _M(" log ", r" \log ")
                    + n(ak)
                    + " + "
                    + n(1 - yk, True)
                    + _M(" log(1 - ", r" \log(1 - ")
                    + n(ak)
                    + ")"
                )
            if len(terms) == 1:
                return _M("-[") + terms[0] + "]"
            return _M("-(") + _join([_M("[") + t + "]" for t in terms], " + ") + ")"
        return _M("")

    def _loss(self, sample: SampleTrace, stepno: int, title: str, multi: bool, prefix=""):
        b = self.blocks
        L = len(sample.layers)
        Cx = _M("C_x", "C_x") if multi else C
        b.append(("h", 2, title + f": {Cx.t} = {self._loss_formula(L).t}"))
        terms = self._loss_terms(sample.output, sample.y)
        rows = [
            _Row(
                Cx,
                terms if terms.t else None,
                self.n(sample.loss),
                None if multi else self.note(prefix + "C", sample.loss, stepno),
            )
        ]
        b.append(("rows", rows))

    def _derivative_text(self, lt: LayerTrace, i: int):
        """(symbolic f'(z), substituted f'(z)) for unit i of an elementwise layer."""
        n = self.n
        l = lt.layer
        a, z = lt.a[i], lt.z[i]
        ai = _sym("a", l, i + 1)
        zi = _sym("z", l, i + 1)
        act = lt.activation
        if act == "sigmoid":
            return (ai + "(1 - " + ai + ")", n(a) + "(1 - " + n(a) + ")")
        if act == "tanh":
            return (
                _M(f"1 - {ai.t}^2", rf"1 - ({ai.l})^2"),
                _M("1 - ") + n(a, True) + _M("^2", "^{2}"),
            )
        if act in ("relu", "leaky_relu"):
            obj = self.ex._acts[l - 1] if len(self.ex._acts) >= l else get_activation(act)
            other = "0" if act == "relu" else _fmt(obj.alpha, self.dg)
            sym = _M(
                f"(1 if {zi.t} > 0 else {other})",
                rf"\begin{{cases}}1 & {zi.l} > 0\\ {other} & \text{{else}}\end{{cases}}",
            )
            cmp = _M(" > 0", " > 0") if z > 0 else _M(" <= 0", r" \le 0")
            return (sym, _M("z = ") + n(z) + cmp)
        if act == "identity":
            return (_M("1"), None)
        return (_M(f"{act}'({zi.t})", rf"{act}'({zi.l})"), None)

    def _dC_da_output(self, lt: LayerTrace, y, i):
        """(symbolic, substituted) dC/da for the output unit i (per sample)."""
        n = self.n
        L = lt.layer
        ai = _sym("a", L, i + 1)
        yi = _M(f"y[{i + 1}]", f"y_{{{i + 1}}}")
        a, yv = lt.a[i], y[i]
        name = self.ex.loss_name
        K = lt.a.size
        if name == "squared_error":
            return _M("2(") + ai + " - " + yi + ")", _M("2(") + n(a) + " - " + n(yv, True) + ")"
        if name == "half_squared_error":
            return ai + " - " + yi, n(a) + " - " + n(yv, True)
        if name == "mse":
            return (
                _M(f"2/{K} (", rf"\frac{{2}}{{{K}}}(") + ai + " - " + yi + ")",
                _M(f"2/{K} (", rf"\frac{{2}}{{{K}}}(") + n(a) + " - " + n(yv, True) + ")",
            )
        if name == "cross_entropy":
            return (
                _M(f"-{yi.t} / {ai.t}", rf"-\frac{{{yi.l}}}{{{ai.l}}}"),
                _M(
                    f"-{_fmt(yv, self.dg)} / {_fmt(a, self.dg)}",
                    rf"-\frac{{{n(yv).l}}}{{{n(a).l}}}",
                ),
            )
        if name == "binary_cross_entropy":
            return (
                _M(
                    f"({ai.t} - {yi.t}) / ({ai.t}(1 - {ai.t}))",
                    rf"\frac{{{ai.l} - {yi.l}}}{{{ai.l}(1 - {ai.l})}}",
                ),
                _M(
                    f"({n(a).t} - {n(yv, True).t}) / ({n(a).t}(1 - {n(a).t}))",
                    rf"\frac{{{n(a).l} - {n(yv, True).l}}}{{{n(a).l}(1 - {n(a).l})}}",
                ),
            )
        return _M(f"d{name}/d{ai.t}", rf"\partial\,\mathrm{{{name}}}/\partial {ai.l}"), None

    def _backward(self, sample: SampleTrace, stepno: int, multi: bool):
        b = self.blocks
        L = len(sample.layers)
        sub = "_x" if multi else ""
        b.append(
            (
                "h",
                2,
                "3. Backward pass (chain rule, from the output to the input)"
                + (" for this sample's loss C_x" if multi else ""),
            )
        )
        Csym = _M("C_x", "C_x") if multi else C
        for lt in reversed(sample.layers):
            l = lt.layer
            if not self.show_layer(l):
                continue
            self._backward_layer(lt, sample, stepno, l == L, Csym, sub)

    def _backward_layer(self, lt: LayerTrace, sample, stepno, is_out, Csym, sub):
        b = self.blocks
        n = self.n
        l = lt.layer
        prev = "x" if l == 1 else f"a{l - 1}"
        rows: list[_Row] = []
        units = list(self.units(l, lt.z.size))
        dC = lambda i: _d(Csym, _sym("a", l, i + 1))  # noqa: E731
        dadz = lambda i: _d(_sym("a", l, i + 1), _sym("z", l, i + 1))  # noqa: E731
        if is_out:
            desc = f"layer {l} (output, {lt.activation}) with loss {self.ex.loss_name}"
            if lt.mode == "fused":
                why = {
                    "softmax": "fused: the softmax Jacobian times dC/da = -y/a collapses to "
                    "a - y because the targets sum to 1, so the engine computes the loss from "
                    "z and never forms the Jacobian",
                    "sigmoid": "fused: dC/da = (a - y)/(a(1 - a)) and da/dz = a(1 - a) cancel, "
                    "so delta = a - y (computed from z, without dividing by a(1 - a))",
                }.get(lt.activation, "fused: delta = a - y")
                b.append(("h", 3, f"{desc}: {why}"))
                for i in units:
                    rows.append(
                        _Row(
                            _sym("delta", l, i + 1),
                            _M(
                                f"a{l}[{i + 1}] - y[{i + 1}] = ",
                                rf"a^{{({l})}}_{{{i + 1}}} - y_{{{i + 1}}} = ",
                            )
                            + n(lt.a[i])
                            + " - "
                            + n(sample.y[i], True),
                            n(lt.delta[i]),
                        )
                    )
                    if lt.dC_da is not None and lt.da_dz is not None:
                        rows.append(
                            _Row(
                                dC(i) + TIMES + dadz(i),
                                n(lt.dC_da[i], True) + TIMES + n(lt.da_dz[i], True),
                                n(lt.dC_da[i] * lt.da_dz[i]),
                            )
                        )
            else:
                kind = (
                    "a Jacobian product, since each softmax output depends on every z"
                    if lt.mode == "jacobian"
                    else "not fused, so delta = dC/da × da/dz"
                )
                if lt.activation == "identity":
                    kind = "identity output: da/dz = 1, so delta = dC/da"
                b.append(("h", 3, f"{desc}: {kind}"))
                for i in units:
                    if lt.dC_da is None:  # not finite: the updates diverged
                        rows.append(_Row(dC(i), "not a finite number (diverged)", "nan"))
                        continue
                    sym, subst = self._dC_da_output(lt, sample.y, i)
                    mid = sym + " = " + subst if subst is not None else sym
                    rows.append(
                        _Row(
                            dC(i),
                            mid,
                            n(lt.dC_da[i]),
                            self.note(f"dC/da{l}[{i + 1}]", lt.dC_da[i], stepno),
                        )
                    )
        else:
            b.append(
                (
                    "h",
                    3,
                    f"layer {l} (hidden, {lt.activation}): dC/da{l}[j] = sum_i "
                    f"W{l + 1}[i,j] delta{l + 1}[i]",
                )
            )
            nxt = sample.layers[l]
            for j in units:
                terms = [
                    n(nxt.W[i, j], True) + "(" + n(nxt.delta[i]) + ")"
                    for i in range(nxt.delta.size)
                ]
                rows.append(_Row(dC(j), _join(terms, " + "), n(lt.dC_da[j])))
        if lt.mode == "elementwise":
            for i in units:
                sym, subst = self._derivative_text(lt, i)
                mid = sym if subst is None else sym + " = " + subst
                rows.append(
                    _Row(
                        dadz(i),
                        mid,
                        n(lt.da_dz[i]),
                        self.note(f"da{l}/dz{l}[{i + 1}]", lt.da_dz[i], stepno),
                    )
                )
            for i in units:
                rows.append(
                    _Row(
                        _sym("delta", l, i + 1),
                        dC(i)
                        + TIMES
                        + dadz(i)
                        + " = "
                        + n(lt.dC_da[i], True)
                        + TIMES
                        + n(lt.da_dz[i], True),
                        n(lt.delta[i]),
                    )
                )
        elif lt.mode == "jacobian":
            s = float(lt.dC_da @ lt.a)
            rows.append(
                _Row(
                    _M("s", "s"),
                    _M(
                        f"sum_k dC{sub}/da{l}[k] a{l}[k] = ",
                        rf"\sum_k \frac{{\partial C{sub}}}{{\partial a^{{({l})}}_k}}"
                        rf" a^{{({l})}}_k = ",
                    )
                    + _join(
                        [
                            n(g, True) + "(" + n(a) + ")"
                            for g, a in zip(lt.dC_da, lt.a, strict=True)
                        ],
                        " + ",
                    ),
                    n(s),
                )
            )
            for i in units:
                rows.append(
                    _Row(
                        _sym("delta", l, i + 1),
                        _M(
                            f"sum_k dC{sub}/da{l}[k] da{l}[k]/dz{l}[{i + 1}] = a{l}[{i + 1}]"
                            f"(dC{sub}/da{l}[{i + 1}] - s) = ",
                            rf"a^{{({l})}}_{{{i + 1}}}\left(\frac{{\partial C{sub}}}"
                            rf"{{\partial a^{{({l})}}_{{{i + 1}}}}} - s\right) = ",
                        )
                        + n(lt.a[i])
                        + "("
                        + n(lt.dC_da[i])
                        + " - "
                        + n(s, True)
                        + ")",
                        n(lt.delta[i]),
                    )
                )
        b.append(("rows", rows))
        # weight and bias gradients as products of their chain-rule factors
        chain = (
            f"dC{sub}/dW{l}[i,j] = dC{sub}/da{l}[i] × da{l}/dz{l}[i] × dz{l}[i]/dW{l}[i,j]"
            f", with dz{l}[i]/dW{l}[i,j] = {prev}[j] and dz{l}[i]/db{l}[i] = 1"
        )
        if lt.mode != "elementwise":
            chain = (
                f"dC{sub}/dW{l}[i,j] = delta{l}[i] × dz{l}[i]/dW{l}[i,j] = delta{l}[i] × "
                f"{prev}[j]  (delta{l}[i] = dC{sub}/dz{l}[i] stands for dC/da × da/dz)"
            )
        b.append(("p", chain))
        rows = []
        Wsym = lambda i, j: _d(Csym, _sym("W", l, i + 1, j + 1))  # noqa: E731
        bsym = lambda i: _d(Csym, _sym("b", l, i + 1))  # noqa: E731
        for i in units:
            if lt.mode == "elementwise":
                head = [n(lt.dC_da[i], True), n(lt.da_dz[i], True)]
            else:
                head = [n(lt.delta[i], True)]
            for j in range(lt.a_in.size):
                rows.append(
                    _Row(
                        Wsym(i, j),
                        _join(head + [n(lt.a_in[j], True)], TIMES.t, TIMES.l),
                        n(lt.dW[i, j]),
                        self.note(f"dC/dW{l}[{i + 1},{j + 1}]", lt.dW[i, j], stepno)
                        if not sub
                        else None,
                    )
                )
            rows.append(
                _Row(
                    bsym(i),
                    _join(head + ["1"], TIMES.t, TIMES.l),
                    n(lt.db[i]),
                    self.note(f"dC/db{l}[{i + 1}]", lt.db[i], stepno) if not sub else None,
                )
            )
        b.append(("rows", rows))

    def _batch(self, step: Step):
        b = self.blocks
        n = self.n
        ex = self.ex
        ns = len(step.samples)
        head = (
            "Batch gradient: dC/dtheta = (1/n) sum_x dC_x/dtheta"
            if ns > 1
            else "With the L2 term: dC/dtheta = dC_x/dtheta"
        )
        if ex.l2:
            head += f" + (lambda/n) W for weights, lambda = {_fmt(ex.l2, self.dg)}, n = {ns}"
        b.append(("h", 2, head))
        rows = []
        for lt0 in step.samples[0].layers:
            l = lt0.layer
            if not self.show_layer(l):
                continue
            for i in self.units(l, lt0.z.size):
                for j in list(range(lt0.a_in.size)) + [None]:
                    key = f"W{l}" if j is not None else f"b{l}"
                    vals = [
                        s.layers[l - 1].dW[i, j] if j is not None else s.layers[l - 1].db[i]
                        for s in step.samples
                    ]
                    mid = (
                        _M("(") + _join([n(v, True) for v in vals], " + ") + f")/{ns}"
                        if ns > 1
                        else n(vals[0], True)
                    )
                    if ex.l2 and j is not None:
                        w = step.params[key][i, j]
                        mid = (
                            mid
                            + _M(
                                f" + {_fmt(ex.l2, self.dg)}/{ns} × ",
                                rf" + \frac{{{_fmt(ex.l2, self.dg)}}}{{{ns}}} \times ",
                            )
                            + n(w, True)
                        )
                    g = step.grads[key][i, j] if j is not None else step.grads[key][i]
                    sym = _sym("W", l, i + 1, j + 1) if j is not None else _sym("b", l, i + 1)
                    rows.append(_Row(_d(C, sym), mid, n(g)))
        b.append(("rows", rows))
        if ex.l2:
            b.append(
                (
                    "p",
                    f"Loss of the batch: mean of the samples' losses "
                    f"{_fmt(step.data_loss, self.dg)} + L2 term (lambda/2n) sum W^2 = "
                    f"{_fmt(step.l2_value, self.dg)}, total C = {_fmt(step.loss, self.dg)}.",
                )
            )
        elif ns > 1:
            b.append(
                (
                    "p",
                    f"Loss of the batch: C = mean of the samples' losses = "
                    f"{_fmt(step.loss, self.dg)}.",
                )
            )

    def _update(self, step: Step):
        b = self.blocks
        n = self.n
        lr = self.ex.lr
        b.append(
            ("h", 2, f"4. Update: theta <- theta - eta dC/dtheta with eta = {_fmt(lr, self.dg)}")
        )
        rows = []
        for lt in step.samples[0].layers:
            l = lt.layer
            if not self.show_layer(l):
                continue
            for i in self.units(l, lt.z.size):
                for j in range(lt.a_in.size):
                    key = f"W{l}[{i + 1},{j + 1}]"
                    rows.append(
                        _Row(
                            _sym("W", l, i + 1, j + 1),
                            n(step.params[f"W{l}"][i, j])
                            + " - "
                            + n(lr)
                            + "("
                            + n(step.grads[f"W{l}"][i, j])
                            + ")",
                            n(step.new_params[f"W{l}"][i, j]),
                            self.note("update:" + key, step.new_params[f"W{l}"][i, j], step.number),
                            arrow=True,
                        )
                    )
                key = f"b{l}[{i + 1}]"
                rows.append(
                    _Row(
                        _sym("b", l, i + 1),
                        n(step.params[f"b{l}"][i])
                        + " - "
                        + n(lr)
                        + "("
                        + n(step.grads[f"b{l}"][i])
                        + ")",
                        n(step.new_params[f"b{l}"][i]),
                        self.note("update:" + key, step.new_params[f"b{l}"][i], step.number),
                        arrow=True,
                    )
                )
        b.append(("rows", rows))

    def _after(self):
        ex = self.ex
        b = self.blocks
        b.append(("h", 1, "After the last update"))
        multi = len(ex.after) > 1
        for si, sample in enumerate(ex.after, 1):
            if multi:
                b.append(("h", 2, f"Sample {si} of {len(ex.after)}"))
            k = 1 if len(ex.steps) == 1 else 0  # the notes show one step only
            self._forward(sample, k, "Forward pass with the updated parameters", prefix="new:")
            self._loss(sample, k, "New loss", multi, prefix="new:")
        before = ex.steps[-1].loss if len(ex.steps) == 1 else ex.steps[0].loss
        change = ex.loss_after - before
        if not math.isfinite(change):
            b.append(
                (
                    "p",
                    f"The loss is no longer a finite number: {_fmt(before, self.dg)} -> "
                    f"{_fmt(ex.loss_after, self.dg)}. The updates diverged: the learning rate "
                    "is too high for this network and data.",
                )
            )
            return
        verdict = "down" if change < 0 else "up" if change > 0 else "unchanged"
        b.append(
            (
                "p",
                f"The loss went {verdict}: {_fmt(before, self.dg)} -> "
                f"{_fmt(ex.loss_after, self.dg)} (change {_fmt(change, self.dg)})"
                + (f" over {len(ex.steps)} steps." if len(ex.steps) > 1 else "."),
            )
        )

    def _summary(self):
        ex = self.ex
        rows = [
            [str(s.number), _fmt(s.loss, self.dg), _fmt(nxt, self.dg)]
            for s, nxt in zip(
                ex.steps, [t.loss for t in ex.steps[1:]] + [ex.loss_after], strict=True
            )
        ]
        self.blocks.append(("h", 1, "Loss per step"))
        self.blocks.append(("table", ["step", "loss before", "loss after"], rows))

    def _checks(self):
        ex = self.ex
        checks = [s.check for s in ex.steps if s.check]
        if not checks:
            return
        diffs = [c["engine_max_abs_diff"] for c in checks]
        rels = [c["gradcheck_rel_error"] for c in checks]
        self.blocks.append(("h", 1, "Check"))
        if not all(math.isfinite(v) for v in diffs + rels):  # max() would skip a NaN
            self.blocks.append(
                (
                    "p",
                    "The gradients could not be checked: some numbers are no longer finite "
                    "(the updates diverged).",
                )
            )
            return
        diff, rel = max(diffs), max(rels)
        # Central differences of float64 agree to about 1e-7 relative error where the loss is
        # smooth; a large error means a kink between the two probes (a ReLU at z = 0, say),
        # where the derivative the formulas use is one-sided: say so instead of claiming it.
        tol = 1e-4  # explain computes in float64
        if diff > 1e-6 or rel > tol:
            self.blocks.append(
                (
                    "p",
                    f"Warning: the gradients above differ from the engine's batched backward pass "
                    f"by up to {diff:.1e} and from central finite differences by a relative "
                    f"error of {rel:.1e} (expected below {tol:g}). Where a unit sits exactly at "
                    "a kink (ReLU at z = 0) the two probes of a finite difference straddle it "
                    "and the derivative is one-sided; otherwise this is a bug.",
                )
            )
            return
        self.blocks.append(
            (
                "p",
                f"Every gradient above equals the engine's batched backward pass "
                f"(net.loss_and_grad; largest difference {diff:.1e}) and central finite "
                f"differences (gradcheck; worst relative error {rel:.1e}).",
            )
        )


# -- writers ---------------------------------------------------------------------------------

_STYLE = {
    "h0": "bold",
    "h1": "bold underline",
    "h2": "bold",
    "h3": "bold dim",
    "res": "cyan",
    "ok": "green",
    "bad": "bold red",
    "warn": "yellow",
}


def _plain(line) -> str:
    return "".join(t for t, _ in line)


def _render_text(blocks) -> list[list[tuple[str, str | None]]]:
    out: list[list[tuple[str, str | None]]] = []
    indent = {0: "", 1: "", 2: "  ", 3: "    "}
    cur = 0
    for block in blocks:
        kind = block[0]
        if kind == "h":
            level, text = block[1], block[2]
            if level <= 1 and out:
                out.append([])
            cur = level
            out.append([(indent[level] + text, _STYLE[f"h{level}"])])
        elif kind == "p":
            text = block[1].t if isinstance(block[1], _M) else block[1]
            for part in text.split("\n"):
                out.append([(indent.get(cur + 1, "      ")[:-2] + part, None)])
        elif kind == "list":
            for item in block[1]:
                out.append([("  - " + item, _STYLE.get(block[2]))])
        elif kind == "table":
            header, rows = block[1], block[2]
            widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header))]
            out.append(
                [
                    (
                        "  " + "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)),
                        "bold",
                    )
                ]
            )
            for r in rows:
                out.append(
                    [
                        (
                            "  "
                            + "  ".join(str(v).rjust(w) for v, w in zip(r, widths, strict=True)),
                            None,
                        )
                    ]
                )
        elif kind == "rows":
            rows = block[1]
            if not rows:
                continue
            pad = indent.get(cur + 1, "      ")
            w1 = max(len(r.lhs.t) for r in rows)
            w2 = max((len(r.mid.t) for r in rows if r.mid is not None), default=0)
            w3 = max(len(r.res.t) for r in rows)
            for r in rows:
                eq = " <- " if r.arrow else " = "
                if r.mid is not None:
                    left = f"{r.lhs.t.ljust(w1)}{eq}{r.mid.t.ljust(w2)} = "
                elif w2:
                    left = r.lhs.t.ljust(w1) + " " * (len(eq) + w2) + eq
                else:
                    left = r.lhs.t.ljust(w1) + eq
                line = [(pad + left, None), (r.res.t, _STYLE["res"])]
                if r.note is not None:
                    printed, ok = r.note
                    gap = " " * (w3 - len(r.res.t) + 3)
                    msg = (
                        f"{gap}(notes: {printed})"
                        if ok
                        else f"{gap}(notes: {printed}, does not follow)"
                    )
                    line.append((msg, _STYLE["ok" if ok else "bad"]))
                out.append(line)
    return out


def _render_markdown(blocks) -> str:
    out: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            level, text = block[1], block[2]
            out.append("")
            out.append("#" * (level + 1) + " " + text)
            out.append("")
        elif kind == "p":
            text = block[1].t if isinstance(block[1], _M) else block[1]
            out.append(text.replace("\n", "  \n"))
            out.append("")
        elif kind == "list":
            for item in block[1]:
                out.append(f"- {item}")
            out.append("")
        elif kind == "table":
            header, rows = block[1], block[2]
            out.append("| " + " | ".join(header) + " |")
            out.append("|" + "---|" * len(header))
            for r in rows:
                out.append("| " + " | ".join(map(str, r)) + " |")
            out.append("")
        elif kind == "rows":
            rows = block[1]
            if not rows:
                continue
            out.append("$$")
            out.append(r"\begin{aligned}")
            for k, r in enumerate(rows):
                eq = r"&\leftarrow " if r.arrow else "&= "
                body = f"{r.lhs.l} {eq}"
                if r.mid is not None and r.mid.l:
                    body += f"{r.mid.l} = "
                body += r.res.l
                if r.note is not None:
                    printed, ok = r.note
                    word = "notes" if ok else r"notes,\ does\ not\ follow"
                    body += (
                        rf" && \text{{({word}: {printed})}}"
                        if ok
                        else (rf" && \color{{red}}{{\text{{(notes: {printed}, does not follow)}}}}")
                    )
                out.append(body + (r" \\" if k < len(rows) - 1 else ""))
            out.append(r"\end{aligned}")
            out.append("$$")
            out.append("")
    text = "\n".join(out).strip()
    return re.sub(r"\n{3,}", "\n\n", text) + "\n"
