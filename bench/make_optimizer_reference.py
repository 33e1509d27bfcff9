"""Print torch.optim reference trajectories for tests/test_optimizers.py.

Run once (torch is a benchmark/test-oracle peer only, never a runtime dependency)::

    .venv/bin/pip install torch==2.13.0      # CPU build
    .venv/bin/python bench/make_optimizer_reference.py

The problem is the quadratic ``f(w) = sum(c (w - target)^2) / 2`` with gradient
``g = c (w - target)``, computed exactly the same way (elementwise, float64) in the test, started at
``W0``; each optimizer takes ``STEPS`` updates and every iterate is printed with 17 digits.
"""

import torch

W0 = [0.5, -1.5, 2.0, 0.1]
C = [1.0, 10.0, 0.1, 3.0]
TARGET = [1.0, -2.0, 0.5, 0.0]
STEPS = 12

CASES = {
    "momentum": (torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    "nesterov": (torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    "adagrad": (torch.optim.Adagrad, {"lr": 0.5, "eps": 1e-8}),
    "rmsprop": (torch.optim.RMSprop, {"lr": 0.05, "alpha": 0.9, "eps": 1e-8}),
    "adam": (torch.optim.Adam, {"lr": 0.1, "betas": (0.85, 0.99), "eps": 1e-8}),
    "radam": (torch.optim.RAdam, {"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8}),
}


def main() -> None:
    c = torch.tensor(C, dtype=torch.float64)
    target = torch.tensor(TARGET, dtype=torch.float64)
    print(f"# torch {torch.__version__}")
    print("TORCH_REFERENCE = {")
    for name, (cls, kwargs) in CASES.items():
        w = torch.tensor(W0, dtype=torch.float64, requires_grad=True)
        opt = cls([w], **kwargs)
        rows = []
        for _ in range(STEPS):
            opt.zero_grad()
            w.grad = c * (w.detach() - target)
            opt.step()
            rows.append([float(x) for x in w.detach()])
        print(f"    {name!r}: [")
        for r in rows:
            print("        [" + ", ".join(repr(x) for x in r) + "],")
        print("    ],")
    print("}")


if __name__ == "__main__":
    main()
