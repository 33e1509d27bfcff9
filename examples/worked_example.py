"""The worked example of the lecture notes (seed 000), recomputed exactly.

A 3-2-1 sigmoid network, input x = [2, 3, -1], target y = 1:

    W1 = [[0.2, -0.5, 0.1], [-0.3, 0.4, 0.2]], b1 = [0.3, -0.1], W2 = [0.5, 0.2], b2 = 0.1.

The script prints every forward number, the exact gradients of C0 = (a - y)^2 and of
1/2 (a - y)^2, one gradient-descent update with learning rate 0.1, the second forward pass and the
new loss; then it compares with the numbers printed in the notes and says which of them do not
follow from the loss the notes state.

Run: python examples/worked_example.py
"""

from __future__ import annotations

import numpy as np

from backprop import MLP

X = np.array([[2.0, 3.0, -1.0]])
Y = np.array([[1.0]])
PARAMS = {
    "W1": [[0.2, -0.5, 0.1], [-0.3, 0.4, 0.2]],
    "b1": [0.3, -0.1],
    "W2": [[0.5, 0.2]],
    "b2": [0.1],
}
LR = 0.1

# What the notes print (seed 000), rounded as they round.
NOTES = {
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


def build() -> MLP:
    net = MLP([3, 2, 1], activation="sigmoid", output="sigmoid", dtype="float64")
    for k, v in PARAMS.items():
        net.params[k] = v
    return net


def forward_numbers(net: MLP) -> dict:
    out = net.forward(X)
    dense1, act1, dense2 = net.layers[0], net.layers[1], net.layers[2]
    return {
        "z1": act1._z[0].copy(),
        "a1": act1._a[0].copy(),
        "z2": float(net.layers[3]._z[0, 0]),
        "a2": float(out[0, 0]),
        "_dense": (dense1, dense2),
    }


def run() -> dict:
    """Compute every number of the example; returns them in a dict (used by the tests)."""
    net = build()
    fwd = forward_numbers(net)
    a2 = fwd["a2"]
    res = {k: v for k, v in fwd.items() if not k.startswith("_")}
    res["dC/da2"] = 2 * (a2 - 1.0)
    res["sigma'(z2)"] = a2 * (1 - a2)
    res["C0"], res["grads_C0"] = net.loss_and_grad(X, Y, loss="squared_error")
    res["half"], res["grads_half"] = net.loss_and_grad(X, Y, loss="half_squared_error")

    # Full backpropagation step on C0: every layer is updated.
    for k, g in res["grads_C0"].items():
        net.params[k] -= LR * g
    res["params_after"] = {k: v.copy() for k, v in net.params.items()}
    res["a2_new"] = float(net.forward(X)[0, 0])
    res["C0_new"] = (res["a2_new"] - 1.0) ** 2

    # The notes update only the output layer; reproduce that too, exactly.
    out_only = build()
    for k in ("W2", "b2"):
        out_only.params[k] -= LR * res["grads_C0"][k]
    res["a2_new_output_only"] = float(out_only.forward(X)[0, 0])
    res["C0_new_output_only"] = (res["a2_new_output_only"] - 1.0) ** 2
    res["discrepancies"] = discrepancies(res)
    return res


def discrepancies(res: dict) -> list[str]:
    """Which of the notes' numbers do not follow from their own loss C0 = (a - y)^2."""
    out = []
    g, h = res["grads_C0"], res["grads_half"]
    notes_dw = np.array(NOTES["dW2"])
    if not np.allclose(notes_dw, g["W2"][0], atol=6e-4) and np.allclose(
        notes_dw, h["W2"][0], atol=6e-4
    ):
        out.append(
            f"dC0/dW2: the notes print {NOTES['dW2']}, which is the gradient of 1/2 (a - y)^2 "
            f"({np.round(h['W2'][0], 5).tolist()}); for C0 = (a - y)^2 it is "
            f"{np.round(g['W2'][0], 5).tolist()} (the factor 2 of dC0/da = -0.822 was dropped)."
        )
    if np.isclose(NOTES["db2"], g["b2"][0], atol=6e-4):
        out.append(
            f"dC0/db2 = {g['b2'][0]:.5f} in the notes matches C0, so the notes mix the two losses: "
            "weights from 1/2 (a - y)^2, bias from (a - y)^2."
        )
    w2_from_notes = np.array(PARAMS["W2"][0]) - LR * notes_dw
    out.append(
        f"The update W2 <- W2 - 0.1 dW2 inherits the halved gradient: the notes get "
        f"{NOTES['W2_new']}, exact C0 gives {np.round(res['params_after']['W2'][0], 5).tolist()} "
        f"(check: {np.round(w2_from_notes, 5).tolist()} from the notes' own dW2)."
    )
    out.append(
        "The notes update only the output layer; backpropagation also updates W1 and b1. "
        f"Output after the update: notes {NOTES['a2_new']}, output layer only (exact C0 gradients) "
        f"{res['a2_new_output_only']:.4f}, all layers {res['a2_new']:.4f}."
    )
    out.append(
        f"The losses use rounded outputs: C_old = (0.589 - 1)^2 = 0.168921 vs exact "
        f"{res['C0']:.6f}; C_new = (0.595 - 1)^2 = 0.164025 vs exact (all layers) "
        f"{res['C0_new']:.6f}."
    )
    return out


def main() -> None:
    res = run()
    np.set_printoptions(precision=5, suppress=True)
    print("Worked example of seed 000: a 3-2-1 sigmoid network, x = [2, 3, -1], y = 1\n")
    print("Forward pass")
    print(f"  z1 = W1 x + b1 = {res['z1']}      (notes: {NOTES['z1']})")
    print(f"  a1 = sigma(z1) = {res['a1']}      (notes: {NOTES['a1']})")
    print(f"  z2 = W2 a1 + b2 = {res['z2']:.5f}      (notes: {NOTES['z2']})")
    print(f"  a2 = sigma(z2) = {res['a2']:.5f}      (notes: {NOTES['a2']})")
    print(f"\nLoss C0 = (a2 - y)^2 = {res['C0']:.6f};  1/2 (a2 - y)^2 = {res['half']:.6f}")
    print("\nChain rule at the output")
    print(f"  dC0/da2 = 2 (a2 - y) = {res['dC/da2']:.5f}")
    dadz = res["sigma'(z2)"]
    print(f"  da2/dz2 = a2 (1 - a2) = {dadz:.5f}")
    print("\nExact gradients        C0 = (a - y)^2          1/2 (a - y)^2")
    for k in ("W2", "b2", "W1", "b1"):
        a = np.round(res["grads_C0"][k].ravel(), 5).tolist()
        b = np.round(res["grads_half"][k].ravel(), 5).tolist()
        print(f"  d/d{k:<3} {a!s:<40} {b}")
    print(f"\nUpdate with learning rate {LR} (all layers, loss C0)")
    for k, v in res["params_after"].items():
        print(f"  {k} = {np.round(v.ravel(), 5).tolist()}")
    print(
        f"\nSecond forward pass: a2 = {res['a2_new']:.5f}, C0 = {res['C0_new']:.6f} "
        f"(was {res['C0']:.6f})"
    )
    print(
        f"Output layer only, as the notes do: a2 = {res['a2_new_output_only']:.5f}, "
        f"C0 = {res['C0_new_output_only']:.6f}"
    )
    print("\nWhere the notes' numbers do not follow from their loss C0 = (a - y)^2:")
    for line in res["discrepancies"]:
        print(f"  - {line}")


if __name__ == "__main__":
    main()
