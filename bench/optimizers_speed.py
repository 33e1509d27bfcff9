"""Time one optimizer step on a flat parameter vector, as the training loop calls it.

    .venv/bin/python bench/optimizers_speed.py [--n 79510] [--dtype float32] [--torch]

The default size is the parameter count of the notes' MNIST network 784-100-10. For each
optimizer it prints the median time of one ``step({"flat": theta}, {"flat": grad})`` and the
time of 470 steps (one MNIST epoch at batch size 128). ``--torch`` adds torch.optim on the same
vector (single tensor, foreach=False, on the CPU) as a peer, when torch is installed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from backprop.optimizers import OPTIMIZERS, get_optimizer


def median_step_seconds(step, repeats: int = 7, number: int = 200) -> float:
    step()  # the first step allocates the state
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            step()
        times.append((time.perf_counter() - t0) / number)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=784 * 100 + 100 + 100 * 10 + 10)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--torch", action="store_true", help="time torch.optim as a peer")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    theta = rng.standard_normal(args.n).astype(args.dtype)
    grad = (rng.standard_normal(args.n) * 1e-3).astype(args.dtype)
    params, grads = {"flat": theta}, {"flat": grad}
    print(f"n = {args.n} {args.dtype} parameters, one step (median), and x470 steps")
    for name in OPTIMIZERS:
        opt = get_optimizer(name, lr=1e-4)
        s = median_step_seconds(lambda opt=opt: opt.step(params, grads))
        print(f"  backprop {name:9s} {s * 1e6:8.1f} us   {s * 470 * 1e3:6.1f} ms/epoch")
    if args.torch:
        import torch

        torch.set_num_threads(1)
        peers = {
            "sgd": lambda p: torch.optim.SGD(p, lr=1e-4, foreach=False),
            "momentum": lambda p: torch.optim.SGD(p, lr=1e-4, momentum=0.9, foreach=False),
            "adagrad": lambda p: torch.optim.Adagrad(p, lr=1e-4, foreach=False),
            "rmsprop": lambda p: torch.optim.RMSprop(p, lr=1e-4, foreach=False),
            "adam": lambda p: torch.optim.Adam(p, lr=1e-4, foreach=False),
            "radam": lambda p: torch.optim.RAdam(p, lr=1e-4, foreach=False),
        }
        w = torch.from_numpy(theta.copy()).requires_grad_(True)
        w.grad = torch.from_numpy(grad.copy())
        for name, make in peers.items():
            opt = make([w])
            s = median_step_seconds(opt.step)
            print(f"  torch    {name:9s} {s * 1e6:8.1f} us   {s * 470 * 1e3:6.1f} ms/epoch")


if __name__ == "__main__":
    main()
