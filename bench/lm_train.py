"""The neural language model on Brown, measured as Bengio et al. (2003) did, with the Kneser-Ney
baselines computed in the same run on the same streams.

Two parts:

``speed``: tokens per second of one training step (scores, fused softmax + cross-entropy,
backward, Adam) and of evaluation, at the Brown configuration (|V| = 14,116), on random batches;
``--torch`` adds the same model written in PyTorch (CPU, float32, same threads) as a peer.

``run`` (the default): train with a recipe under a wall-clock budget, then print the validation
and test perplexity, the throughput, modified Kneser-Ney n = 3 and 5 on the same streams, and the
mixture of the neural model with the trigram model (the paper's "mix" column; weight fitted on
validation). ``--model FILE`` skips training and measures a saved model.

    .venv/bin/python bench/lm_train.py speed [--torch] [--batch-size 256]
    .venv/bin/python bench/lm_train.py run --recipe 30min --out /tmp/brown30.safetensors
    .venv/bin/python bench/lm_train.py run --recipe 10min
    .venv/bin/python bench/lm_train.py run --model /tmp/brown30.safetensors

Bengio et al. (2003), Table 1, Brown test perplexity: Kneser-Ney back-off trigram 323, best
n-gram (class-based) 312, neural network alone 268-276 (their best MLP1/MLP9), neural network
mixed with a trigram 252.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "data" / "brown" / "brown.zip"

#: Training recipes for Brown (the architecture and a wall-clock budget for the whole run).
RECIPES = {
    "30min": {
        "order": 5,
        "dim": 30,
        "hidden": 100,
        "direct": True,
        "dropout": 0.1,
        "batch_size": 256,
        "lr": 2e-3,
        "epochs": 20,
        "patience": 2,
        "minutes": 28.0,
        "anneal": True,
    },
    "10min": {
        "order": 5,
        "dim": 30,
        "hidden": 100,
        "direct": True,
        "dropout": 0.0,
        "batch_size": 256,
        "lr": 2e-3,
        "epochs": 20,
        "patience": 2,
        "minutes": 9.0,
        "anneal": True,
    },
}


def _brown(path, lower=False):
    from backprop.lm_data import load_brown_lm

    if path is None:
        try:
            return load_brown_lm(lower=lower)
        except FileNotFoundError:
            path = SHARED
    return load_brown_lm(path, lower=lower)


# --------------------------------------------------------------------------------------------
# speed
# --------------------------------------------------------------------------------------------


def speed(args) -> None:
    import backprop.lm as L
    from backprop.lm import NeuralLM
    from backprop.optimizers import get_optimizer

    V, B, steps = 14116, args.batch_size, args.steps
    rng = np.random.default_rng(0)
    C = rng.integers(3, V, size=(B * steps, args.order - 1))
    t = rng.integers(3, V, size=B * steps)
    print(
        f"|V| = {V:,}, n = {args.order}, m = {args.dim}, h = {args.hidden}, direct "
        f"{'on' if not args.no_direct else 'off'}, batch {B}, {os.cpu_count()} CPUs"
    )
    for threads in sorted({1, L.N_THREADS}):
        L.N_THREADS = threads
        lm = NeuralLM(V, args.order, args.dim, args.hidden, direct=not args.no_direct, seed=0)
        opt = get_optimizer("adam", lr=1e-3)
        times, cpu = [], []
        blas = L._single_blas()  # what train_lm does: BLAS limited once for the whole loop
        blas.__enter__()
        for i in range(steps):
            sl = slice(i * B, (i + 1) * B)
            t0, c0 = time.perf_counter(), time.process_time()
            lm._loss_grad(C[sl], t[sl])
            opt.step({"flat": lm.flat_params}, {"flat": lm.flat_grads})
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        t0, c0 = time.perf_counter(), time.process_time()
        lm.log_prob(C, t)
        ev = len(t) / (time.perf_counter() - t0)
        ev_cpu = len(t) / (time.process_time() - c0)
        blas.__exit__(None, None, None)
        med = float(np.median(times[1:]))
        med_cpu = float(np.median(cpu[1:]))
        print(
            f"backprop (NumPy), {threads} thread(s): train {B / med:8,.0f} tokens/s "
            f"(median step {1e3 * med:.0f} ms; {B / med_cpu:,.0f} tokens per CPU-second), "
            f"eval {ev:8,.0f} tokens/s ({ev_cpu:,.0f} per CPU-second)"
        )
    if args.torch:
        _torch_speed(args, C, t)


def _torch_speed(args, C, t) -> None:
    try:
        import torch
    except ImportError:
        print("torch is not installed: no PyTorch peer")
        return
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    V, B = 14116, args.batch_size
    c = (args.order - 1) * args.dim
    emb = torch.nn.Embedding(V, args.dim)
    hid = torch.nn.Linear(c, args.hidden)
    out_h = torch.nn.Linear(args.hidden, V)
    out_x = None if args.no_direct else torch.nn.Linear(c, V, bias=False)
    params = [*emb.parameters(), *hid.parameters(), *out_h.parameters()]
    if out_x is not None:
        params += list(out_x.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    Ct, tt = torch.from_numpy(C), torch.from_numpy(t)
    times, cpu = [], []
    for i in range(args.steps):
        sl = slice(i * B, (i + 1) * B)
        t0, c0 = time.perf_counter(), time.process_time()
        x = emb(Ct[sl]).reshape(B, c)
        y = out_h(torch.tanh(hid(x)))
        if out_x is not None:
            y = y + out_x(x)
        loss = torch.nn.functional.cross_entropy(y, tt[sl])
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    med = float(np.median(times[1:]))
    med_cpu = float(np.median(cpu[1:]))
    with torch.no_grad():
        t0 = time.perf_counter()
        for i in range(args.steps):
            sl = slice(i * B, (i + 1) * B)
            x = emb(Ct[sl]).reshape(B, c)
            y = out_h(torch.tanh(hid(x)))
            if out_x is not None:
                y = y + out_x(x)
            torch.log_softmax(y, 1)
        ev = args.steps * B / (time.perf_counter() - t0)
    print(
        f"PyTorch {torch.__version__} (CPU, {torch.get_num_threads()} threads): train "
        f"{B / med:8,.0f} tokens/s (median step {1e3 * med:.0f} ms; {B / med_cpu:,.0f} tokens per "
        f"CPU-second), eval {ev:8,.0f} tokens/s"
    )


# --------------------------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------------------------


def run(args) -> None:
    from backprop.lm import NeuralLM, load_lm, mix_log_probs, mixture_weight, save_lm, train_lm
    from backprop.lm_data import EOS_ID, ngram_arrays
    from backprop.ngram import KneserNeyLM

    t_all = time.perf_counter()
    data = _brown(args.path)
    vocab, train, valid, test = data
    print(
        f"Brown: train {len(train):,} / valid {len(valid):,} / test {len(test):,} tokens, "
        f"|V| = {len(vocab):,}"
    )
    info = {}
    if args.model:
        model, mvocab = load_lm(args.model)
        if mvocab != vocab:
            raise SystemExit(f"{args.model}: its vocabulary is not this protocol's")
        res = (model.metadata.get("training") or {}).get("results") or {}
        info["train_tokens_per_s"] = res.get("train_tokens_per_s")
        info["wall_minutes"] = (res.get("wall_seconds") or 0) / 60 or None
        print(f"model {args.model}: {model!r}")
    else:
        r = dict(RECIPES[args.recipe])
        if args.minutes is not None:
            r["minutes"] = args.minutes
        print(f"recipe {args.recipe}: {r}")
        model = NeuralLM(
            len(vocab),
            r["order"],
            r["dim"],
            r["hidden"],
            direct=r["direct"],
            dropout=r["dropout"],
            seed=args.seed,
        )
        model.init_output_bias(vocab.counts)

        epochs_seen = []

        def progress(ev):
            if ev["event"] == "epoch":
                epochs_seen.append(ev)
                print(
                    f"  epoch {ev['epoch']}{' (partial)' if ev.get('partial') else ''}: "
                    f"train ppl {ev['train_ppl']:.1f}, valid ppl {ev['valid_ppl']:.1f}"
                    f"{' *' if ev.get('best') else ''}, {ev['tokens_per_s']:,.0f} tokens/s, "
                    f"eval {ev['eval_tokens_per_s']:,.0f} tokens/s, {ev['seconds']:.0f} s",
                    flush=True,
                )
            elif ev["event"] == "stop":
                print(f"  stopped: {ev['reason']}", flush=True)

        budget = 60.0 * r["minutes"] - (time.perf_counter() - t_all)
        t0, c0 = time.perf_counter(), time.process_time()
        hist = train_lm(
            model,
            train,
            valid,
            lr=r["lr"],
            epochs=r["epochs"],
            batch_size=r["batch_size"],
            patience=r["patience"],
            max_seconds=budget,
            anneal=r["anneal"],
            progress=progress,
        )
        info["train_seconds"] = time.perf_counter() - t0
        info["cpu_seconds"] = time.process_time() - c0
        tok = sum(e["tokens_per_s"] * e["seconds"] for e in epochs_seen)
        info["train_tokens_per_s"] = tok / max(sum(e["seconds"] for e in epochs_seen), 1e-9)
        if args.out:
            save_lm(
                model,
                args.out,
                vocab,
                training={
                    "recipe": r,
                    "results": {
                        "train_seconds": info["train_seconds"],
                        "train_tokens_per_s": info["train_tokens_per_s"],
                        "wall_seconds": time.perf_counter() - t_all,
                    },
                },
                history=hist,
            )
            print(f"wrote {args.out}")
    t0 = time.perf_counter()
    Cv, tv = ngram_arrays(valid, model.order)
    lp_valid = model.log_prob(Cv, tv)
    Ct, tt = ngram_arrays(test, model.order)
    lp_test = model.log_prob(Ct, tt)
    ev_speed = (len(tv) + len(tt)) / (time.perf_counter() - t0)
    if not args.model:
        info["wall_minutes"] = (time.perf_counter() - t_all) / 60
    words = tt != EOS_ID

    def ppl(lp):
        return float(np.exp(-np.mean(lp)))

    rows = [
        (
            f"neural LM ({'from ' + os.path.basename(args.model) if args.model else 'this run'})",
            ppl(lp_valid),
            ppl(lp_test),
            ppl(lp_test[words]),
        ),
    ]
    kn_test = {}
    for n in (3, 5):
        kn = KneserNeyLM(n, modified=True).fit(train, vocab)
        Cn, tn = ngram_arrays(valid, n)
        kv = kn.log_prob(Cn, tn)
        Cn, tn = ngram_arrays(test, n)
        kt = kn.log_prob(Cn, tn)
        kn_test[n] = (kv, kt)
        rows.append((f"modified Kneser-Ney n={n}", ppl(kv), ppl(kt), ppl(kt[words])))
    for n in (3, 5):
        kv, kt = kn_test[n]
        w = mixture_weight(lp_valid, kv)
        mv, mt = mix_log_probs(lp_valid, kv, w), mix_log_probs(lp_test, kt, w)
        rows.append((f"mixture {w:.2f} neural + KN n={n}", ppl(mv), ppl(mt), ppl(mt[words])))
    print()
    print(f"{'model':34s} {'valid':>8s} {'test':>8s} {'test words':>10s}")
    for name, v, te, tw in rows:
        print(f"{name:34s} {v:8.1f} {te:8.1f} {tw:10.1f}")
    print()
    if info.get("train_tokens_per_s"):
        print(f"training: {info['train_tokens_per_s']:,.0f} tokens/s", end="")
        if info.get("wall_minutes"):
            print(f", whole run {info['wall_minutes']:.1f} min wall clock", end="")
        print()
    print(f"evaluation: {ev_speed:,.0f} tokens/s (valid + test)")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
    if info.get("cpu_seconds"):
        print(f"CPU time of the training: {info['cpu_seconds'] / 60:.1f} min (all threads)")
    print("Bengio et al. 2003 (Brown test): KN back-off trigram 323, class-based 312,")
    print("neural alone 268-276, neural + trigram 252 (their copy: |V| = 16,383).")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what")
    sp = sub.add_parser("speed", help="tokens/s of a training step and of evaluation")
    sp.add_argument("--order", type=int, default=5)
    sp.add_argument("--dim", type=int, default=30)
    sp.add_argument("--hidden", type=int, default=100)
    sp.add_argument("--no-direct", action="store_true")
    sp.add_argument("--batch-size", type=int, default=256)
    sp.add_argument("--steps", type=int, default=20)
    sp.add_argument("--torch", action="store_true", help="also time the same model in PyTorch")
    rp = sub.add_parser("run", help="train with a recipe and measure (default)")
    rp.add_argument("--recipe", choices=sorted(RECIPES), default="30min")
    rp.add_argument("--minutes", type=float, default=None, help="override the recipe's budget")
    rp.add_argument("--model", default=None, help="measure this saved model instead")
    rp.add_argument("--out", default=None, help="save the trained model here")
    rp.add_argument("--path", default=None, help="brown.zip (default: search, then ../shared)")
    rp.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv if argv is not None else (sys.argv[1:] or ["run"]))
    if args.what == "speed":
        speed(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
