"""Kneser-Ney n-gram baselines on Brown, with Bengio et al. (2003)'s protocol.

Prints the data protocol (split sizes, vocabulary) and the validation / test perplexity of
interpolated Kneser-Ney (one discount) and modified Kneser-Ney (three discounts) for n = 3 and 5,
trained on the training part only. The neural model's perplexity must be measured on the same
streams (``backprop.lm_data.load_brown_lm``) to compare.

    .venv/bin/python bench/lm_baseline.py [--path brown.zip] [--orders 3 5] [--lower]

Bengio et al. (2003), Table 1, Brown test perplexity: Kneser-Ney back-off trigram 323,
best n-gram (class-based back-off) 312, neural network mixed with a trigram 252.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import numpy as np

from backprop.lm_data import (
    EOS_ID,
    UNK_ID,
    Vocabulary,
    brown_splits,
    load_brown,
    ngram_arrays,
)
from backprop.ngram import KneserNeyLM

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "data" / "brown" / "brown.zip"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--path", default=None, help="brown.zip (default: search, then ../shared)")
    ap.add_argument("--orders", type=int, nargs="+", default=[3, 5])
    ap.add_argument("--lower", action="store_true", help="lower-case the corpus")
    ap.add_argument("--min-count", type=int, default=4)
    args = ap.parse_args(argv)

    path = args.path
    if path is None:
        try:
            sents = load_brown(lower=args.lower)
        except FileNotFoundError:
            sents = load_brown(SHARED, lower=args.lower)
    else:
        sents = load_brown(path, lower=args.lower)
    sp = brown_splits(sents)
    vocab = Vocabulary(min_count=args.min_count).fit(sp.train)
    train, valid, test = (vocab.encode(s) for s in sp[:3])
    all_counts = Counter(w for s in sents for w in s)
    print(
        f"Brown: {len(sents):,} sentences, {sum(map(len, sents)):,} words, "
        f"{len(all_counts):,} word types; case {'folded' if args.lower else 'kept'}"
    )
    parts = zip(("train", "valid", "test"), (train, valid, test), sp.sentences, strict=True)
    for name, ids, n_sent in parts:
        n_eos = int((ids == EOS_ID).sum())
        print(
            f"  {name:5s}: {n_sent:6,} sentences, {len(ids) - n_eos:7,} words, "
            f"{len(ids):7,} tokens with </s>, <unk> {100 * (ids == UNK_ID).mean():.2f}%"
        )
    n_all = sum(1 for c in all_counts.values() if c >= args.min_count) + 3
    print(
        f"  |V| = {len(vocab):,} (words seen >= {args.min_count} times in train + <unk> <s> </s>;"
        f" {vocab.n_merged:,} types merged); counting on all of Brown would give {n_all:,};"
        " paper: 16,383"
    )
    print()
    print(
        f"{'model':28s} {'fit s':>6s} {'eval s':>6s} {'valid':>8s} {'test':>8s} {'test words':>10s}"
    )
    for n in args.orders:
        for modified in (False, True):
            lm = KneserNeyLM(n, modified=modified)
            t0 = time.perf_counter()
            lm.fit(train, vocab)
            t1 = time.perf_counter()
            pv = lm.perplexity(valid)
            pt = lm.perplexity(test)
            t2 = time.perf_counter()
            C, t = ngram_arrays(test, n)
            lp = lm.log_prob(C, t)
            words = float(np.exp(-lp[t != EOS_ID].mean()))
            name = f"{'modified' if modified else 'interpolated'} Kneser-Ney n={n}"
            print(f"{name:28s} {t1 - t0:6.2f} {t2 - t1:6.2f} {pv:8.1f} {pt:8.1f} {words:10.1f}")
    print()
    print("valid/test: every token scored, </s> included; test words: </s> targets left out.")
    print("Bengio et al. 2003 (Brown test): KN back-off trigram 323, class-based 312,")
    print("neural + trigram 252 (their copy: 1,181,041 words, |V| = 16,383).")


if __name__ == "__main__":
    main()
