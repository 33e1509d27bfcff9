"""``backprop figures``: regenerate the lecture's figures (docs/gallery.md) as PNG files.

Registered by :mod:`backprop.cli` through :func:`register`; the figures are those of
:data:`backprop.figures.FIGURES`. Examples::

    backprop figures                                   # all of them into docs/img/gallery
    backprop figures --out /tmp/fig --only xor_boundary gd_parabola
    backprop figures --quick                           # tiny budgets, seconds (for tests)
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``figures`` subcommand to an argparse ``subparsers`` object."""
    from .figures import FIGURES  # light: matplotlib is imported only when drawing

    p = subparsers.add_parser(
        "figures",
        help="regenerate the lecture's figures (PNG) of docs/gallery.md",
        description=(
            "Recompute and draw the figures that reproduce the lecture's claims: "
            + ", ".join(FIGURES)
            + ". Each is a PNG (xor_boundary also an animated GIF); figures.json in the same "
            "folder records the measured numbers."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  backprop figures\n  backprop figures --out /tmp/fig --only "
        "xor_boundary gd_parabola\n  backprop figures --quick",
    )
    p.add_argument(
        "--out",
        default="docs/img/gallery",
        metavar="DIR",
        help="output folder (default: docs/img/gallery, created if missing)",
    )
    p.add_argument(
        "--only",
        nargs="+",
        choices=list(FIGURES),
        metavar="NAME",
        help=f"draw only these figures (of: {', '.join(FIGURES)})",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny training budgets: every figure in seconds, numbers not meaningful",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=handler)
    return p


def handler(args) -> int:
    from .figures import make_figures

    def log(line: str) -> None:
        print(line, file=sys.stdout, flush=True)

    results = make_figures(args.out, args.only, quick=args.quick, seed=args.seed, log=log)
    total = sum(r.seconds for r in results)
    print(f"{len(results)} figure(s) written to {args.out} in {total:.1f} s")
    return 0
