"""``backprop lm ...``: train, evaluate and use the neural language model (:mod:`backprop.lm`).

Subcommands::

    backprop lm train --corpus brown [--order 5 --dim 30 --hidden 100 ...] --out lm.safetensors
    backprop lm eval MODEL [--split test] [--mix-kn 3]
    backprop lm generate MODEL --prompt "the jury said" [--temperature 0.8]
    backprop lm neighbors MODEL WORD [-k 10]
    backprop lm analogy MODEL a b c [-k 5]

The main CLI (:mod:`backprop.cli`) imports this module and calls :func:`register`; a handler
returns the exit code, and errors (``ValueError``, ``OSError``...) become one-line messages
there. ``--corpus brown`` reads NLTK's ``brown.zip`` (``--brown-path``, ``$BACKPROP_DATA`` or
NLTK's folders, see :func:`backprop.lm_data.find_brown`) and splits it as Bengio et al. (2003)
did; any other value is a UTF-8 text file, split 80/10/10 by words at sentence boundaries.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

from ._validation import int_arg_at_least

__all__ = ["register", "load_corpus", "DEFAULTS"]

#: Defaults of ``lm train`` (the paper's n = 5, m = 30, h = 100, direct connections).
DEFAULTS = {
    "order": 5,
    "dim": 30,
    "hidden": 100,
    "dropout": 0.0,
    "input_dropout": 0.0,
    "optimizer": "adam",
    "lr": 1e-3,
    "batch_size": 256,
    "epochs": 10,
    "l2": 0.0,
    "patience": 2,
    "lr_decay": 0.5,
    "min_count": 4,
    "seed": 0,
}


# --------------------------------------------------------------------------------------------
# Argument types
# --------------------------------------------------------------------------------------------


_int_at_least = int_arg_at_least


def _float_in(lo: float, hi: float, *, lo_open=False, hi_open=False):
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        ok = math.isfinite(v) and (v > lo if lo_open else v >= lo)
        ok = ok and (v < hi if hi_open else v <= hi)
        if not ok:
            a, b = "(" if lo_open else "[", ")" if hi_open else "]"
            raise argparse.ArgumentTypeError(
                f"{text!r} is invalid: expected a number in {a}{lo}, {hi}{b}"
            )
        return v

    return parse


# --------------------------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------------------------


def load_corpus(spec: dict):
    """Sentences and split of the corpus described by ``spec`` (as stored in the model file).

    ``spec``: ``{"name": "brown" | "text", "path": str or None, "lower": bool,
    "train_words": int or None, "valid_words": int or None, "valid_fraction",
    "test_fraction"}``. Returns ``(spec, splits)`` with the word counts filled in.
    """
    from .lm_data import brown_splits, load_brown, load_text

    spec = dict(spec)
    if spec["name"] == "brown":
        sents = load_brown(spec.get("path"), lower=spec.get("lower", False))
        spec.setdefault("train_words", 800_000)
        spec.setdefault("valid_words", 200_000)
    else:
        path = spec["path"]
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"{path}: no such corpus file (expected 'brown' or a UTF-8 text file)"
            )
        if os.path.isdir(path):
            raise ValueError(f"{path} is a directory: expected 'brown' or a UTF-8 text file")
        sents = load_text(path, lower=spec.get("lower", False))
        total = sum(len(s) for s in sents)
        vf, tf = spec.get("valid_fraction", 0.1), spec.get("test_fraction", 0.1)
        if spec.get("train_words") is None:
            # every part gets at least one word (a test part included), train the rest
            valid_words, test_words = max(1, round(total * vf)), max(1, round(total * tf))
            spec["train_words"] = max(1, total - valid_words - test_words)
            spec["valid_words"] = valid_words
        if len(sents) < 3:
            raise ValueError(
                f"{path} has {len(sents)} sentence(s): expected at least 3 (train, validation "
                "and test parts)"
            )
    splits = brown_splits(sents, train_words=spec["train_words"], valid_words=spec["valid_words"])
    return spec, splits


def _corpus_spec(args) -> dict:
    if args.corpus == "brown":
        path = args.brown_path
        if path is not None:  # kept in the model file: 'lm eval' may run from another folder
            path = os.path.abspath(os.path.expanduser(path))
        return {"name": "brown", "path": path, "lower": args.lower}
    return {
        "name": "text",
        "path": os.path.abspath(args.corpus),
        "lower": args.lower,
        "valid_fraction": args.valid_fraction,
        "test_fraction": args.test_fraction,
    }


def _describe(spec: dict) -> str:
    if spec["name"] == "brown":
        return "Brown corpus" + (" (lower-cased)" if spec.get("lower") else "")
    return f"{spec['path']}" + (" (lower-cased)" if spec.get("lower") else "")


def _set_threads(n: int | None) -> None:
    from . import lm

    if n is None:
        return
    lm.N_THREADS = n
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)


# --------------------------------------------------------------------------------------------
# Progress display
# --------------------------------------------------------------------------------------------


class _Progress:
    """Progress of :func:`backprop.lm.train_lm`: a live rich bar on a terminal, plain lines
    otherwise (one per report and one per epoch), flushed as written."""

    def __init__(self, n_batches: int, epochs: int, stream=None, live: bool | None = None):
        self.stream = stream or sys.stdout
        self.n_batches = n_batches
        self.epochs = epochs
        self.live = self.stream.isatty() if live is None else live
        self._bar = None
        self._task = None

    def _line(self, text: str) -> None:
        if self._bar is not None:
            self._bar.console.print(text, highlight=False)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def __call__(self, ev: dict) -> None:
        kind = ev["event"]
        if kind == "batch":
            text = (
                f"epoch {ev['epoch']}/{self.epochs}  batch {ev['batch']:,}/{ev['n_batches']:,}  "
                f"{ev['tokens_per_s']:,.0f} tokens/s  running ppl {ev['ppl']:.1f}  "
                f"lr {ev['lr']:.3g}"
            )
            if self.live:
                self._update(ev)
            else:
                self._line(text)
        elif kind == "epoch":
            self._close()
            parts = [
                f"epoch {ev['epoch']}/{self.epochs}" + (" (partial)" if ev.get("partial") else ""),
                f"train ppl {ev['train_ppl']:.1f}",
            ]
            if "valid_ppl" in ev:
                parts.append(f"valid ppl {ev['valid_ppl']:.1f}" + (" *" if ev.get("best") else ""))
            parts.append(f"{ev['tokens_per_s']:,.0f} tokens/s")
            if "eval_tokens_per_s" in ev:
                parts.append(f"eval {ev['eval_tokens_per_s']:,.0f} tokens/s")
            parts.append(f"{ev['seconds']:.0f} s")
            if "lr_decayed_to" in ev:
                parts.append(f"lr -> {ev['lr_decayed_to']:.3g}")
            self._line("  ".join(parts))
        elif kind == "resume":
            self._line(f"resuming at epoch {ev['epoch']}, batch {ev['batch']:,}")
        elif kind == "stop":
            self._close()
            if ev.get("reason"):
                self._line(f"stopped: {ev['reason']}")

    def _update(self, ev: dict) -> None:
        if self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[speed]} tokens/s  ppl {task.fields[ppl]}"),
                console=Console(file=self.stream, highlight=False, markup=False),
                transient=True,
            )
            self._bar.start()
        desc = f"epoch {ev['epoch']}/{self.epochs}"
        if self._task is None:
            self._task = self._bar.add_task(desc, total=ev["n_batches"], speed="-", ppl="-")
        self._bar.update(
            self._task,
            description=desc,
            completed=ev["batch"],
            speed=f"{ev['tokens_per_s']:,.0f}",
            ppl=f"{ev['ppl']:.1f}",
        )

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
            self._task = None


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------


def cmd_train(args) -> int:
    from .callbacks import TrainingDiverged
    from .lm import NeuralLM, _ppl, load_checkpoint, save_lm, train_lm
    from .lm_data import UNK_ID, Vocabulary, ngram_arrays

    if args.anneal and args.max_minutes is None:
        raise ValueError("--anneal decays the learning rate over --max-minutes: give both")
    _set_threads(getattr(args, "threads", None))
    out = args.out
    ckpt = args.checkpoint or (os.path.splitext(out)[0] + ".ckpt.safetensors")
    from .cli import _make_schedule, check_output_path

    check_output_path(out, "--out")  # before the corpus and the training, not after
    check_output_path(ckpt, "--checkpoint")
    if os.path.realpath(ckpt) == os.path.realpath(out):
        raise ValueError(
            f"--checkpoint {ckpt} is the --out file: expected another file (the model written "
            "at the end would replace the checkpoint that --resume needs)"
        )
    if args.schedule != "constant":  # an unknown name or a missing setting, found now
        _make_schedule(args.schedule, args.lr, 100, 10)
    if args.brown_path is not None and args.corpus != "brown":
        raise ValueError(
            f"--brown-path {args.brown_path} is for --corpus brown, and the corpus is the text "
            f"file {args.corpus}: expected one of them"
        )
    if args.hidden == 0 and args.no_direct:
        raise ValueError(
            "--hidden 0 and --no-direct leave no path to the output: expected hidden units or "
            "the direct connections"
        )
    if args.hidden == 0 and args.dropout:
        raise ValueError(
            f"--dropout {args.dropout:g} drops hidden units, and --hidden 0 has none: expected "
            "--dropout 0 (or --input-dropout for the embeddings)"
        )
    if args.valid_fraction + args.test_fraction >= 1:
        raise ValueError(
            f"--valid-fraction {args.valid_fraction} and --test-fraction {args.test_fraction} "
            "leave no text to train on: expected them to add up to less than 1"
        )
    t_start = time.perf_counter()
    spec, sp = load_corpus(_corpus_spec(args))
    vocab = Vocabulary(args.min_count, args.max_vocab).fit(sp.train)
    if len(vocab) <= 3:
        raise ValueError(
            f"no word of the training part is seen {args.min_count} times: expected a larger "
            "corpus or a smaller --min-count"
        )
    train, valid, test = (vocab.encode(s) for s in sp[:3])
    spec.update(min_count=args.min_count, max_size=args.max_vocab)
    print(
        f"{_describe(spec)}: train {len(train):,} / valid {len(valid):,} / test {len(test):,} "
        f"tokens (</s> included); |V| = {len(vocab):,}; <unk> in test "
        f"{100 * float((test == UNK_ID).mean()):.2f}%",
        flush=True,
    )
    resumed = None
    if args.resume and os.path.exists(ckpt):
        resumed = load_checkpoint(ckpt)
        cfg = resumed["config"]
        asked = {
            "order": ("--order", args.order),
            "dim": ("--dim", args.dim),
            "hidden": ("--hidden", args.hidden),
            "direct": ("--no-direct", not args.no_direct),
            "dropout": ("--dropout", args.dropout),
            "input_dropout": ("--input-dropout", args.input_dropout),
        }
        for key, (flag, value) in asked.items():
            if cfg.get(key) != value:
                if flag == "--no-direct":
                    shown = "direct connections " + ("on" if value else "off (--no-direct)")
                else:
                    shown = f"{flag} {value:g}"
                raise ValueError(
                    f"{ckpt}: the checkpoint's model has {key}={cfg.get(key)!r}, this command "
                    f"asks for {shown}: expected the same architecture to resume"
                )
        model = NeuralLM(
            cfg["n_vocab"],
            cfg["order"],
            cfg["dim"],
            cfg["hidden"],
            direct=cfg["direct"],
            dropout=cfg["dropout"],
            input_dropout=cfg["input_dropout"],
            dtype=cfg["dtype"],
            seed=args.seed,
        )
        if cfg["n_vocab"] != len(vocab):
            raise ValueError(
                f"{ckpt}: the checkpoint's vocabulary has {cfg['n_vocab']} words, this corpus "
                f"gives {len(vocab)}: expected the same corpus options to resume"
            )
    else:
        model = NeuralLM(
            len(vocab),
            args.order,
            args.dim,
            args.hidden,
            direct=not args.no_direct,
            dropout=args.dropout,
            input_dropout=args.input_dropout,
            seed=args.seed,
        )
        model.init_output_bias(vocab.counts)
    print(
        f"model: n = {model.order} ({model.order - 1} context words), m = {model.dim}, "
        f"h = {model.hidden}, direct connections {'on' if model.direct else 'off'}, "
        f"dropout {model.dropout:g}/{model.input_dropout:g}; {model.n_params:,} parameters",
        flush=True,
    )
    n_batches = -(-len(train) // args.batch_size)
    display = None if args.quiet else _Progress(n_batches, args.epochs)
    trained = {"tokens": 0, "seconds": 0.0}  # this run's epochs, a partial one as it was

    def progress(ev):
        if ev["event"] == "epoch":
            trained["tokens"] += ev["tokens"]
            trained["seconds"] += ev["seconds"]
        if display is not None:
            display(ev)

    budget = None if args.max_minutes is None else 60.0 * args.max_minutes
    optimizer = args.optimizer
    opt_kw = {"lr": args.lr}
    if args.schedule != "constant":
        from .cli import _make_schedule  # the same schedules, warm-up included, as 'train'
        from .optimizers import get_optimizer

        sched = _make_schedule(args.schedule, args.lr, n_batches * args.epochs, n_batches)
        optimizer = get_optimizer(args.optimizer, lr=sched)
    settings = {
        "optimizer": args.optimizer,
        "dropout": model.dropout,
        "input_dropout": model.input_dropout,
        "lr": args.lr,
        "schedule": args.schedule,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "l2": args.l2,
        "patience": args.patience,
        "lr_decay": args.lr_decay if args.schedule == "constant" else 1.0,
        "max_minutes": args.max_minutes,
        "anneal": args.anneal,
        "seed": args.seed,
    }
    try:
        history = train_lm(
            model,
            train,
            valid,
            optimizer=optimizer,
            **({} if args.schedule != "constant" else opt_kw),
            epochs=args.epochs,
            batch_size=args.batch_size,
            l2=args.l2,
            patience=args.patience,
            lr_decay=settings["lr_decay"],
            max_seconds=budget,
            anneal=args.anneal,
            checkpoint=ckpt,
            resume=args.resume,
            progress=progress,
            report_every=args.report_every,
            extra={"vocab_size": len(vocab), "corpus": spec},
        )
    except TrainingDiverged as exc:
        raise RuntimeError(str(exc)) from None
    train_seconds = time.perf_counter() - t_start
    results = {
        "epochs_run": history.epochs,
        "best_epoch": history.best_epoch,
        "stop_reason": history.stop_reason,
        "interrupted": history.interrupted,
        "train_ppl": [_ppl(v) for v in history.loss],
        "valid_ppl": [_ppl(v) for v in history.val_loss],
        "train_tokens_per_s": (
            trained["tokens"] / trained["seconds"] if trained["seconds"] > 0 else None
        ),
        "wall_seconds": train_seconds,
    }
    if not history.interrupted and not args.no_test and history.epochs:
        t0 = time.perf_counter()
        C, t = ngram_arrays(test, model.order)
        lp = model.log_prob(C, t)
        dt = time.perf_counter() - t0
        results["test_ppl"] = _ppl(float(-lp.mean()))
        results["test_ppl_words"] = _ppl(float(-lp[t != 2].mean()))
        results["eval_tokens_per_s"] = len(t) / dt
        if history.best_epoch:
            results["best_valid_ppl"] = _ppl(history.val_loss[history.best_epoch - 1])
    save_lm(
        model,
        out,
        vocab,
        training={**settings, "corpus": spec, "results": results},
        history=history,
    )
    if history.interrupted:
        print(
            f"interrupted: wrote the best weights so far to {out}; continue with the same "
            f"command and --resume (checkpoint {ckpt})",
            file=sys.stderr,
        )
        return 130
    line = f"wrote {out}"
    if "best_valid_ppl" in results:
        line += f"  valid ppl {results['best_valid_ppl']:.1f} (epoch {history.best_epoch})"
    if "test_ppl" in results:
        line += (
            f"  test ppl {results['test_ppl']:.1f} ({results['eval_tokens_per_s']:,.0f} tokens/s)"
        )
    line += f"  {train_seconds / 60:.1f} min"
    print(line)
    return 0


# --------------------------------------------------------------------------------------------
# eval
# --------------------------------------------------------------------------------------------


def _load(path):
    from .lm import load_lm

    return load_lm(path)


def cmd_eval(args) -> int:
    from .lm import mix_log_probs, mixture_weight, perplexity_from_log_probs
    from .lm_data import EOS_ID, UNK_ID, load_text, ngram_arrays, sentences_to_stream

    _set_threads(getattr(args, "threads", None))
    if args.mix_kn and args.text is not None:  # before any work, not after the report
        raise ValueError("--mix-kn needs the training corpus (not --text)")
    model, vocab = _load(args.model)
    training = model.metadata.get("training") or {}
    spec = training.get("corpus")
    if args.text is not None:
        lower = bool(spec and spec.get("lower"))
        ids = vocab.encode(sentences_to_stream(load_text(args.text, lower=lower)))
        what = args.text
        splits = None
    else:
        if args.corpus is not None:
            spec = _corpus_spec(args)
            spec["lower"] = bool((training.get("corpus") or {}).get("lower", args.lower))
        if not spec:
            raise ValueError(
                f"{args.model} does not say which corpus it was trained on: pass --corpus or --text"
            )
        if args.corpus is None and args.brown_path is not None:
            if spec.get("name") != "brown":
                raise ValueError(
                    f"--brown-path {args.brown_path}: {args.model} was trained on "
                    f"{_describe(spec)}, not Brown: expected --corpus brown with it"
                )
            spec = {**spec, "path": os.path.abspath(os.path.expanduser(args.brown_path))}
        spec, splits = load_corpus(spec)
        part = {"train": 0, "valid": 1, "test": 2}[args.split]
        ids = vocab.encode(splits[part])
        what = f"{_describe(spec)}, {args.split} part"
    t0 = time.perf_counter()
    C, t = ngram_arrays(ids, model.order)
    lp = model.log_prob(C, t, batch_size=args.batch_size)
    dt = time.perf_counter() - t0
    ppl = perplexity_from_log_probs(lp)
    words = t != EOS_ID
    print(f"{what}: {len(t):,} tokens ({int(words.sum()):,} words + </s>)")
    print(f"  perplexity                 {ppl:10.2f}")
    if words.any() and not words.all():
        print(f"  perplexity, words only     {perplexity_from_log_probs(lp[words]):10.2f}")
    print(f"  <unk> share of the tokens  {100 * float((t == UNK_ID).mean()):9.2f}%")
    print(f"  {len(t) / dt:,.0f} tokens/s ({dt:.1f} s)")
    if args.mix_kn:
        if splits is None:
            raise ValueError("--mix-kn needs the training corpus (not --text)")
        from .ngram import KneserNeyLM

        kn = KneserNeyLM(args.mix_kn).fit(vocab.encode(splits[0]), vocab)
        valid = vocab.encode(splits[1])
        Cv, tv = ngram_arrays(valid, model.order)
        Ck, tk = ngram_arrays(valid, args.mix_kn)
        w = mixture_weight(model.log_prob(Cv, tv), kn.log_prob(Ck, tk))
        Ck, tk = ngram_arrays(ids, args.mix_kn)
        kn_lp = kn.log_prob(Ck, tk)
        mixed = mix_log_probs(lp, kn_lp, w)
        print(f"  modified Kneser-Ney n={args.mix_kn}     {perplexity_from_log_probs(kn_lp):10.2f}")
        print(
            f"  mixture {w:.2f} neural + {1 - w:.2f} KN  {perplexity_from_log_probs(mixed):10.2f}"
            "  (weight fitted on the validation part)"
        )
    return 0


# --------------------------------------------------------------------------------------------
# generate, neighbors, analogy
# --------------------------------------------------------------------------------------------


def _detok(tokens: list[str]) -> str:
    return " ".join("\n" if t == "</s>" else t for t in tokens).replace(" \n", "\n").strip()


def cmd_generate(args) -> int:
    from .lm import generate
    from .lm_data import prompt_stream, tokenize

    model, vocab = _load(args.model)
    spec = (model.metadata.get("training") or {}).get("corpus") or {}
    prompt = tokenize(args.prompt, lower=bool(spec.get("lower")))
    unknown = list(dict.fromkeys(w for w in prompt if w not in vocab))
    if unknown and args.strict:
        raise ValueError(
            f"the prompt has words the model does not know: {', '.join(map(repr, unknown[:5]))}"
        )
    if unknown and not args.quiet:
        print(
            f"note: not in the vocabulary, read as <unk>: {', '.join(map(repr, unknown[:5]))}"
            + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""),
            file=sys.stderr,
        )
    stream = prompt_stream(prompt)
    current = stream[max((i + 1 for i, t in enumerate(stream) if t == "</s>"), default=0) :]
    if prompt and not current and not args.quiet:
        print("note: the prompt ends a sentence: the model starts a new one", file=sys.stderr)
    elif len(current) > model.order - 1 and not args.quiet:
        print(
            f"note: the model reads the last {model.order - 1} words of the prompt's last "
            f"sentence ({' '.join(current[-(model.order - 1) :])})",
            file=sys.stderr,
        )
    elif len(current) < len(prompt) and not args.quiet:
        print(
            f"note: the model reads the prompt's last sentence ({' '.join(current)})",
            file=sys.stderr,
        )
    rng = np.random.default_rng(args.seed)
    for _ in range(args.num):
        toks = generate(
            model,
            vocab,
            prompt,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            top_k=args.top_k,
            rng=rng,
        )
        print(_detok(list(prompt) + toks).replace("\n", " </s>").strip())
    return 0


def cmd_neighbors(args) -> int:
    from .lm import nearest_words

    model, vocab = _load(args.model)
    for word, sim in nearest_words(model, vocab, args.word, k=args.k):
        print(f"{word}\t{sim:.4f}")
    return 0


def cmd_analogy(args) -> int:
    from .lm import analogy

    model, vocab = _load(args.model)
    for word, sim in analogy(model, vocab, args.a, args.b, args.c, k=args.k):
        print(f"{word}\t{sim:.4f}")
    return 0


# --------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------


def _corpus_args(p, *, required: bool) -> None:
    p.add_argument(
        "--corpus",
        required=required,
        default=None,
        help="'brown' (the paper's corpus and split) or a UTF-8 text file",
    )
    p.add_argument(
        "--brown-path",
        default=None,
        help="brown.zip or its folder (default: $BACKPROP_DATA or a search; for lm eval of a "
        "model trained on Brown, the path stored in the model)",
    )
    p.add_argument("--lower", action="store_true", help="lower-case the corpus")
    p.add_argument(
        "--valid-fraction",
        type=_float_in(0, 1, lo_open=True, hi_open=True),
        default=0.1,
        help="text corpora: share of the words for validation (default 0.1)",
    )
    p.add_argument(
        "--test-fraction",
        type=_float_in(0, 1, lo_open=True, hi_open=True),
        default=0.1,
        help="text corpora: share of the words for test (default 0.1)",
    )


def _threads_arg(p) -> None:
    # SUPPRESS: when not given here, the value given before the command's name (backprop
    # --threads N lm train, or backprop lm --threads N train) is kept, not reset to None.
    p.add_argument(
        "--threads",
        type=_int_at_least(1),
        default=argparse.SUPPRESS,
        help="CPU threads (default: all)",
    )


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``lm`` command group to ``subparsers`` (of the main ``backprop`` parser)."""
    lm = subparsers.add_parser(
        "lm",
        help="neural language model (Bengio et al. 2003): train, eval, generate, ...",
        description="The neural probabilistic language model of Bengio et al. (2003).",
    )
    sub = lm.add_subparsers(dest="lm_command", metavar="COMMAND")
    lm.set_defaults(func=lambda args: (lm.print_help(sys.stderr), 2)[1])
    d = DEFAULTS

    p = sub.add_parser(
        "train",
        help="train on Brown or a text file",
        description="Train the model; validation perplexity per epoch, early stopping, "
        "checkpoints (resume with --resume), the model and its vocabulary saved to --out.",
    )
    _corpus_args(p, required=True)
    p.add_argument(
        "--min-count",
        type=_int_at_least(1),
        default=d["min_count"],
        help="keep words seen at least this often in train (default 4, the paper's)",
    )
    p.add_argument(
        "--max-vocab",
        type=_int_at_least(4),
        default=None,
        help="at most this many vocabulary entries",
    )
    p.add_argument(
        "--order",
        type=_int_at_least(2),
        default=d["order"],
        help="n: the model reads n - 1 words (default 5)",
    )
    p.add_argument(
        "--dim", type=_int_at_least(1), default=d["dim"], help="embedding width m (default 30)"
    )
    p.add_argument(
        "--hidden",
        type=_int_at_least(0),
        default=d["hidden"],
        help="tanh units h (default 100; 0: direct connections only)",
    )
    p.add_argument(
        "--no-direct",
        action="store_true",
        help="no direct connections from the embeddings to the output",
    )
    p.add_argument(
        "--dropout",
        type=_float_in(0, 1, hi_open=True),
        default=d["dropout"],
        help="dropout on the hidden units (default 0)",
    )
    p.add_argument(
        "--input-dropout",
        type=_float_in(0, 1, hi_open=True),
        default=d["input_dropout"],
        help="dropout on the embeddings (default 0)",
    )
    p.add_argument("--optimizer", default=d["optimizer"], help="default adam")
    p.add_argument(
        "--lr",
        type=_float_in(0, math.inf, lo_open=True, hi_open=True),
        default=d["lr"],
        help="learning rate (default 1e-3)",
    )
    p.add_argument(
        "--schedule",
        default="constant",
        help="constant (default; halved when validation stalls), linear, cosine, ...",
    )
    p.add_argument(
        "--batch-size", type=_int_at_least(1), default=d["batch_size"], help="default 256"
    )
    p.add_argument("--epochs", type=_int_at_least(1), default=d["epochs"], help="default 10")
    p.add_argument(
        "--l2",
        type=_float_in(0, math.inf, hi_open=True),
        default=d["l2"],
        help="weight decay on E, H, U, W (default 0)",
    )
    p.add_argument(
        "--patience",
        type=_int_at_least(1),
        default=d["patience"],
        help="epochs without validation progress before stopping (default 2)",
    )
    p.add_argument(
        "--lr-decay",
        type=_float_in(0, 1, lo_open=True),
        default=d["lr_decay"],
        help="learning-rate factor after an epoch without progress (default 0.5)",
    )
    p.add_argument(
        "--max-minutes",
        type=_float_in(0, math.inf, lo_open=True, hi_open=True),
        default=None,
        help="wall-clock budget of the run",
    )
    p.add_argument(
        "--anneal",
        action="store_true",
        help="decay the learning rate linearly to 0 over --max-minutes",
    )
    p.add_argument("--seed", type=int, default=d["seed"], help="default 0")
    p.add_argument("--out", default="lm.safetensors", help="model file (default lm.safetensors)")
    p.add_argument(
        "--checkpoint", default=None, help="checkpoint file (default: OUT with .ckpt.safetensors)"
    )
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    p.add_argument("--no-test", action="store_true", help="skip the test perplexity")
    p.add_argument(
        "--report-every",
        type=_float_in(0, math.inf, lo_open=True, hi_open=True),
        default=10.0,
        help="seconds between progress lines (default 10)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")
    _threads_arg(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="perplexity on a part of the corpus or a text file")
    p.add_argument("model")
    p.add_argument("--split", choices=("train", "valid", "test"), default="test")
    _corpus_args(p, required=False)
    p.add_argument("--text", default=None, help="score this UTF-8 text file instead")
    p.add_argument(
        "--mix-kn",
        type=_int_at_least(1),
        default=None,
        metavar="N",
        help="also mix with a modified Kneser-Ney N-gram model (weight from valid)",
    )
    p.add_argument("--batch-size", type=_int_at_least(1), default=1024)
    _threads_arg(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("generate", help="sample text from the model")
    p.add_argument("model")
    p.add_argument("--prompt", default="", help="start of the text (default: a new sentence)")
    p.add_argument(
        "--temperature",
        type=_float_in(0, math.inf, hi_open=True),
        default=1.0,
        help="sampling temperature (0: most probable word; default 1)",
    )
    p.add_argument("--top-k", type=_int_at_least(1), default=None)
    p.add_argument("--max-tokens", type=_int_at_least(1), default=30)
    p.add_argument("--num", type=_int_at_least(1), default=1, help="number of samples")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument(
        "--strict", action="store_true", help="refuse prompt words not in the vocabulary"
    )
    p.add_argument("--quiet", action="store_true", help="no notes on stderr")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("neighbors", help="nearest words by cosine similarity of the embeddings")
    p.add_argument("model")
    p.add_argument("word")
    p.add_argument("-k", type=_int_at_least(1), default=10)
    p.set_defaults(func=cmd_neighbors)

    p = sub.add_parser("analogy", help="a is to b as c is to ?")
    p.add_argument("model")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("c")
    p.add_argument("-k", type=_int_at_least(1), default=5)
    p.set_defaults(func=cmd_analogy)
    for name in ("generate", "neighbors", "analogy"):  # accepted after every command's name
        _threads_arg(sub.choices[name])
    return lm
