"""``backprop explain``: the chain rule of a small network, number by number.

Registered by :mod:`backprop.cli` through :func:`register`; see :func:`backprop.explain.explain`
for what is shown. Examples::

    backprop explain                                   # the notes' worked example (seed 000)
    backprop explain --layer 2 --format markdown       # its output layer, as Markdown + LaTeX
    backprop explain --W1 "0.2,-0.5,0.1; -0.3,0.4,0.2" --b1=0.3,-0.1 --W2 0.5,0.2 --b2 0.1 \\
        --x=2,3,-1 --y 1 --loss squared_error --steps 3
    backprop explain --sizes 2,3,2 --activation tanh --output softmax --seed 0 --x 0.5,1 --y 1
    backprop explain --model model.safetensors --x 0.1,0.7 --y 1 --format json
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

import numpy as np

from ._validation import int_arg_at_least

MAX_LAYERS = 9

EPILOG = """\
Matrices are written row by row: "0.2,-0.5,0.1; -0.3,0.4,0.2" (rows separated by ';') or as JSON
"[[0.2, -0.5, 0.1], [-0.3, 0.4, 0.2]]". A value starting with '-' needs '=': --b1=-0.1,0.3.
--W1 ... --W9 and --b1 ... --b9 set the parameters of layers 1 to 9 (the sizes follow from the W
shapes); parameters not given are drawn from --seed, biases start at 0. Without any network
option the notes' worked example (seed 000) is explained, with the places where the notes'
numbers do not follow from their loss.

examples:
  backprop explain
  backprop explain --layer 2 --unit 1 --format markdown
  backprop explain --W1 "0.2,-0.5,0.1; -0.3,0.4,0.2" --b1=0.3,-0.1 --W2 0.5,0.2 --b2 0.1 \\
      --x=2,3,-1 --y 1 --loss squared_error --steps 3
  backprop explain --sizes 2,3,2 --activation tanh --output softmax --seed 0 --x 0.5,1 --y 1
  backprop explain --model model.safetensors --x 0.1,0.7 --y 1 --format json
"""


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``explain`` subcommand to an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "explain",
        help="show every number of a forward pass, backward pass and update",
        description=textwrap.fill(
            "Explain one (or --steps N) gradient-descent iteration of a small network in the "
            "notation of the lecture notes: each z = W a + b with its numbers, a = f(z), the "
            "loss, each delta, every weight and bias gradient as the product of its chain-rule "
            "factors dC/da × da/dz × dz/dw, the update and the new loss. The gradients are "
            "checked against the engine and against finite differences.",
            width=96,
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    net = p.add_argument_group("network (default: the notes' worked example, seed 000)")
    net.add_argument("--model", metavar="PATH", help="a model file saved by backprop")
    net.add_argument("--sizes", metavar="N,N,...", help="layer widths, input first, e.g. 3,2,1")
    net.add_argument(
        "--activation",
        default="sigmoid",
        metavar="NAME[,NAME...]",
        help="hidden activation(s) of a network built here (default: sigmoid, as in the notes)",
    )
    net.add_argument(
        "--output", default="sigmoid", metavar="NAME", help="output activation (default: sigmoid)"
    )
    net.add_argument(
        "--seed", type=int, default=0, help="seed for parameters not given (default 0)"
    )
    for l in range(1, MAX_LAYERS + 1):
        shown = l == 1
        net.add_argument(
            f"--W{l}",
            metavar="MATRIX",
            help="weights of layer 1, shape (n_out, n_in); likewise --W2 ... --W9"
            if shown
            else argparse.SUPPRESS,
        )
        net.add_argument(
            f"--b{l}",
            metavar="VECTOR",
            help="biases of layer 1; likewise --b2 ... --b9" if shown else argparse.SUPPRESS,
        )
    data = p.add_argument_group("input, target and training")
    data.add_argument("--x", metavar="VALUES", help="the input, e.g. 2,3,-1 (';' between samples)")
    data.add_argument(
        "--y",
        metavar="VALUES",
        help="the target: values, or a class index (from 0) for cross-entropy",
    )
    data.add_argument("--loss", help="loss name (default: the network's natural loss)")
    data.add_argument("--lr", type=float, default=None, help="learning rate (default 0.1)")
    data.add_argument(
        "--steps", type=int_arg_at_least(1), default=1, help="iterations to explain (default 1)"
    )
    data.add_argument("--l2", type=float, default=0.0, help="L2 strength lambda (default 0)")
    view = p.add_argument_group("view")
    view.add_argument("--layer", type=int, help="show only layer L (1 = first hidden layer)")
    view.add_argument("--unit", type=int, help="show only unit I of --layer (from 1)")
    view.add_argument(
        "--format",
        choices=("text", "markdown", "json"),
        default="text",
        help="terminal text (default), Markdown with LaTeX, or JSON with every number",
    )
    view.add_argument("--digits", type=int, default=4, help="significant digits (default 4)")
    view.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the text: auto (when stdout is a terminal), always, never",
    )
    view.add_argument(
        "--max-width",
        type=int,
        default=16,
        help="largest layer width accepted (default 16)",
    )
    p.set_defaults(func=handler)
    return p


def _parse_matrix(text: str, what: str) -> np.ndarray:
    """``"1,2; 3,4"`` or JSON ``"[[1, 2], [3, 4]]"`` -> float64 array (1-D for one row)."""
    s = str(text).strip()
    if not s:
        raise ValueError(f"{what} is empty: expected numbers such as 0.2,-0.5")
    if s.startswith("["):
        try:
            arr = np.array(json.loads(s), dtype=np.float64)
        except (json.JSONDecodeError, TypeError, ValueError):
            raise ValueError(
                f"{what}={text!r} is not a valid JSON matrix: expected e.g. [[0.2, -0.5]]"
            ) from None
        if arr.ndim > 2:
            raise ValueError(f"{what} has {arr.ndim} dimensions: expected a vector or a matrix")
        return arr
    rows = []
    for row in s.split(";"):
        items = [v for v in row.replace(",", " ").split() if v]
        try:
            rows.append([float(v) for v in items])
        except ValueError:
            bad = next(v for v in items if not _is_float(v))
            raise ValueError(f"{what} value {bad!r} is not a number") from None
    if len({len(r) for r in rows}) != 1 or not rows[0]:
        raise ValueError(
            f"{what}={text!r} has rows of different lengths (or an empty row): expected a "
            "matrix like '0.2,-0.5; 0.3,0.1'"
        )
    arr = np.array(rows, dtype=np.float64)
    return arr[0] if len(rows) == 1 else arr


def _is_float(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(v) for v in str(text).replace(",", " ").split()]
    except ValueError:
        raise ValueError(f"{what}={text!r} is invalid: expected integers such as 3,2,1") from None


def _given_params(args) -> dict[str, np.ndarray]:
    out = {}
    for l in range(1, MAX_LAYERS + 1):
        for kind in ("W", "b"):
            v = getattr(args, f"{kind}{l}", None)
            if v is not None:
                out[f"{kind}{l}"] = _parse_matrix(v, f"--{kind}{l}")
    return out


def build_network(args):
    """The network the options describe, or None for the notes' worked example."""
    from .layers import MLP

    given = _given_params(args)
    if args.model is not None:
        if given or args.sizes is not None:
            raise ValueError("give --model or the network options (--sizes, --W1, ...), not both")
        from .io import load

        return load(args.model)
    if not given and args.sizes is None:
        return None
    n_weights = max((int(k[1:]) for k in given if k.startswith("W")), default=0)
    if args.sizes is not None:
        sizes = _ints(args.sizes, "--sizes")
    else:
        if "W1" not in given:
            raise ValueError(
                "the layer sizes follow from --W1, --W2, ...: give --W1 (or give --sizes)"
            )
        sizes = []
        for l in range(1, n_weights + 1):
            if f"W{l}" not in given:
                raise ValueError(
                    f"--W{l} is missing: the sizes follow from --W1 ... --W{n_weights}"
                )
            W = np.atleast_2d(given[f"W{l}"])
            if l == 1:
                sizes.append(W.shape[1])
            elif W.shape[1] != sizes[-1]:
                raise ValueError(
                    f"--W{l} has {W.shape[1]} columns: expected {sizes[-1]} (the rows of "
                    f"--W{l - 1})"
                )
            sizes.append(W.shape[0])
    n_hidden = len(sizes) - 2
    acts = [a.strip() for a in str(args.activation).split(",") if a.strip()]
    if len(acts) == 1:
        acts = acts * max(n_hidden, 0)
    net = MLP(
        sizes, activation=acts or "sigmoid", output=args.output, dtype="float64", seed=args.seed
    )
    for k, v in given.items():
        if k not in net.params:
            raise ValueError(f"--{k} is given but the network has only layers 1..{len(sizes) - 1}")
        want = net.params[k].shape
        arr = v.reshape(want) if v.size == int(np.prod(want)) and v.ndim <= 1 else v
        if arr.shape != want:
            raise ValueError(f"--{k} has shape {v.shape}: expected {want}")
        net.params[k] = arr
    return net


def _targets(text: str | None):
    if text is None:
        return None
    arr = _parse_matrix(text, "--y")
    if arr.ndim == 1 and arr.size == 1:
        v = float(arr[0])
        return np.array(int(v)) if v.is_integer() else np.array(v)
    return arr


def _preprocess(net, x, y):
    """Apply a model file's stored preprocessing to --x (and --y for scaled regression
    targets): the network was trained on the transformed values."""
    pre = (getattr(net, "metadata", None) or {}).get("preprocessing") or {}
    if not pre.get("input") and not pre.get("target"):
        return x, y
    from .datasets import scaler_from_config

    if pre.get("input"):
        scaler = scaler_from_config(pre["input"])
        x = scaler.transform(np.atleast_2d(x), dtype=np.float64)
        print(f"note: --x transformed by the model's preprocessing ({scaler!r})", file=sys.stderr)
    # Only regression models store a target scaling: --y is a target value then, even when it
    # is written as a whole number (which _targets reads as a class label).
    if pre.get("target") and y is not None:
        scaler = scaler_from_config(pre["target"])
        n = np.atleast_2d(x).shape[0]
        y = scaler.transform(np.asarray(y, dtype=np.float64).reshape(n, -1), dtype=np.float64)
        print(f"note: --y transformed by the model's target scaling ({scaler!r})", file=sys.stderr)
    return x, y


def handler(args) -> int:
    from .explain import explain

    net = build_network(args)
    x = None if args.x is None else _parse_matrix(args.x, "--x")
    y = _targets(args.y)
    if net is not None and (x is None or y is None):
        raise ValueError("explaining a given network needs --x (the input) and --y (the target)")
    x, y = _preprocess(net, x, y)
    ex = explain(
        net,
        x,
        y,
        loss=args.loss,
        lr=args.lr,
        steps=args.steps,
        l2=args.l2,
        layer=args.layer,
        unit=args.unit,
        digits=args.digits,
        max_width=args.max_width,
    )
    out = sys.stdout
    if args.format == "json":
        out.write(ex.to_json() + "\n")
    elif args.format == "markdown":
        out.write(ex.markdown())
    else:
        color = {"always": True, "never": False}.get(args.color)
        ex.print(out, color=color)
    return 0
