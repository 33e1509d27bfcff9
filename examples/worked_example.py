"""The worked example of the lecture notes (seed 000), recomputed exactly.

A 3-2-1 sigmoid network, input x = [2, 3, -1], target y = 1:

    W1 = [[0.2, -0.5, 0.1], [-0.3, 0.4, 0.2]], b1 = [0.3, -0.1], W2 = [0.5, 0.2], b2 = 0.1.

The script prints every forward number, the exact gradients of C0 = (a - y)^2 and of
1/2 (a - y)^2, one gradient-descent update with learning rate 0.1, the second forward pass and the
new loss; then it compares with the numbers printed in the notes and says which of them do not
follow from the loss the notes state. `backprop explain` (no arguments) shows the same example
number by number.

Run: python examples/worked_example.py
"""

from __future__ import annotations

import numpy as np

from backprop.explain import SEED000_LR as LR
from backprop.explain import SEED000_NOTES as NOTES
from backprop.explain import SEED000_PARAMS as PARAMS
from backprop.explain import SEED000_X as X
from backprop.explain import SEED000_Y as Y
from backprop.explain import notes_discrepancies as discrepancies
from backprop.explain import seed000_network as build
from backprop.explain import worked_example as run

# The numbers and the list of discrepancies live in backprop.explain (`backprop explain` with no
# arguments prints them too); this script prints them side by side.
__all__ = ["LR", "NOTES", "PARAMS", "X", "Y", "build", "discrepancies", "main", "run"]


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
