"""Tests of backprop.ngram: interpolated (modified) Kneser-Ney, against hand arithmetic and a
direct dictionary implementation of the formulas."""

from __future__ import annotations

import doctest
import math
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

import backprop.ngram as ngram
from backprop.lm_data import (
    BOS_ID,
    EOS_ID,
    Vocabulary,
    brown_splits,
    load_brown,
    ngram_arrays,
    sentences_to_stream,
)
from backprop.ngram import KneserNeyLM, estimate_discounts

BROWN = Path(__file__).resolve().parents[2] / "shared" / "data" / "brown" / "brown.zip"
needs_brown = pytest.mark.skipif(not BROWN.is_file(), reason="Brown corpus not available")


def test_docstring_examples():
    assert doctest.testmod(ngram).failed == 0


# -- the toy corpus, by hand -----------------------------------------------------------------
#
# Sentences "a b", "a b a", "b"  ->  stream  a b </s> a b a </s> b </s>
# Vocabulary: <unk>=0 <s>=1 </s>=2 a=3 b=4 (|V| = 5; 4 predictable words: all but <s>).
# Trigram windows (context -> target), contexts padded with <s> at each sentence start:
#   <s> <s> -> a    <s> a -> b    a b -> </s>
#   <s> <s> -> a    <s> a -> b    a b -> a      b a -> </s>
#   <s> <s> -> b    <s> b -> </s>
# Order 3 (plain counts): <s><s>a 2, <s><s>b 1, <s>ab 2, ab</s> 1, aba 1, ba</s> 1, <s>b</s> 1.
# Order 2 (continuation counts = distinct left words; plain counts if the gram starts with <s>):
#   <s>a 2 (plain), <s>b 1 (plain), ab 1 (left: <s>), b</s> 2 (left: a, <s>), ba 1 (left: a),
#   a</s> 1 (left: b).
# Order 1 (distinct left words over the order-2 grams): a 2 (<s>, b), b 2 (<s>, a),
#   </s> 2 (b, a), <unk> 0.  Total 6.
# With one discount D = 0.5 everywhere:
#   P1(w)     = (a1(w) - 0.5)/6 + gamma1/4,  gamma1 = 3 * 0.5 / 6 = 0.25
#   P1(a) = P1(b) = P1(</s>) = 1.5/6 + 0.0625 = 0.3125;  P1(<unk>) = 0.0625
#   context <s>: A = 3, gamma = 2 * 0.5 / 3 = 1/3
#     P2(a|<s>) = 1.5/3 + 0.3125/3 = 0.6041666...;  P2(b|<s>) = 0.5/3 + 0.3125/3 = 0.2708333...
#   context a:  A = 2 (ab 1, a</s> 1), gamma = 0.5
#     P2(b|a) = 0.5/2 + 0.5 * 0.3125 = 0.40625 = P2(</s>|a);  P2(a|a) = 0.15625
#   context b:  A = 3 (b</s> 2, ba 1), gamma = 1/3
#     P2(</s>|b) = 1.5/3 + 0.3125/3 = 0.6041666...;  P2(a|b) = 0.5/3 + 0.3125/3 = 0.2708333...
#     P2(b|b) = 0.3125/3 = 0.1041666...
#   context <s> <s>: A = 3, gamma = 1/3
#     P3(a|<s><s>) = 1.5/3 + P2(a|<s>)/3 = 0.5 + 0.2013888... = 0.7013888...
#     P3(b|<s><s>) = 0.5/3 + P2(b|<s>)/3 = 0.1666666... + 0.0902777... = 0.2569444...
#   context <s> a: A = 2 (<s>ab 2), gamma = 0.5/2 = 0.25
#     P3(b|<s>a) = 1.5/2 + 0.25 * 0.40625 = 0.8515625;  P3(</s>|<s>a) = 0.25 * 0.40625
#   context a b: A = 2 (ab</s> 1, aba 1), gamma = 0.5
#     P3(</s>|ab) = 0.5/2 + 0.5 * P2(</s>|b) = 0.25 + 0.3020833... = 0.5520833...
#     P3(a|ab) = 0.25 + 0.5 * 0.2708333... = 0.3854166...;  P3(b|ab) = 0.5 * 0.1041666...
#   context b a: A = 1 (ba</s> 1), gamma = 0.5
#     P3(</s>|ba) = 0.5/1 + 0.5 * P2(</s>|a) = 0.5 + 0.203125 = 0.703125
#   context b b: never seen -> P2(.|b), e.g. P(a|b b) = 0.2708333...

TOY = [["a", "b"], ["a", "b", "a"], ["b"]]


def _toy(order=3, **kw):
    toks = sentences_to_stream(TOY)
    v = Vocabulary().fit(toks)
    assert v.words == ["<unk>", "<s>", "</s>", "a", "b"]
    return KneserNeyLM(order, **kw).fit(v.encode(toks), v), v


def test_toy_corpus_by_hand():
    lm, _ = _toy(discount=0.5)
    p1 = 1.5 / 6 + 0.25 / 4  # 0.3125
    p2_a_s, p2_b_s = 1.5 / 3 + p1 / 3, 0.5 / 3 + p1 / 3
    p2_b_a = 0.5 / 2 + 0.5 * p1
    p2_eos_b, p2_a_b, p2_b_b = 1.5 / 3 + p1 / 3, 0.5 / 3 + p1 / 3, p1 / 3
    expected = {
        ((), "a"): 1.5 / 3 + p2_a_s / 3,  # context read as <s> <s>
        (("<s>", "<s>"), "b"): 0.5 / 3 + p2_b_s / 3,
        (("a",), "b"): 1.5 / 2 + 0.25 * p2_b_a,  # <s> a -> b
        (("a",), "</s>"): 0.25 * p2_b_a,
        (("a", "b"), "</s>"): 0.5 / 2 + 0.5 * p2_eos_b,
        (("a", "b"), "a"): 0.5 / 2 + 0.5 * p2_a_b,
        (("a", "b"), "b"): 0.5 * p2_b_b,
        (("b", "a"), "</s>"): 0.5 + 0.5 * p2_b_a,
        (("b", "b"), "a"): p2_a_b,  # unseen context: back to the bigram of b
        (("a", "b"), "<unk>"): 0.5 * (0.25 / 4) / 3,  # 0.5 * P2(unk|b) = 0.5 * P1(unk) / 3
        (("a", "b"), "<s>"): 0.0,
    }
    for (ctx, w), p in expected.items():
        assert lm.prob(list(ctx), w) == pytest.approx(p, abs=1e-12), (ctx, w)
    assert expected[((), "a")] == pytest.approx(0.7013888888888888)
    assert expected[(("a",), "b")] == 0.8515625
    assert expected[(("b", "a"), "</s>")] == 0.703125
    np.testing.assert_array_equal(lm.n_grams_, [3, 6, 7])
    # perplexity of the first sentence "a b </s>" = (P3(a|<s><s>) P3(b|<s>a) P3(</s>|ab))^(-1/3)
    p = expected[((), "a")] * expected[(("a",), "b")] * expected[(("a", "b"), "</s>")]
    assert lm.perplexity([3, 4, 2]) == pytest.approx(p ** (-1 / 3), rel=1e-12)


def test_toy_corpus_modified_discounts_by_hand():
    lm, _ = _toy(modified=True)
    # order 1 adjusted counts a,b,</s> = 2,2,2: n1=0 n2=3 n3=0 -> Y = 0/(0+6) = 0;
    #   D1: n1 = 0 -> Y = 0; D2 = 2 - 3*0*0/3 = 2; D3+: n3 = 0 -> Y = 0
    # order 2: 2,1,1,2,1,1: n1=4 n2=2 n3=0 -> Y = 4/8 = 0.5; D1 = 1 - 2*0.5*2/4 = 0.5;
    #   D2 = 2 - 3*0.5*0/2 = 2; D3+ -> Y = 0.5
    # order 3: 2,1,2,1,1,1,1: n1=5 n2=2 -> Y = 5/9; D1 = 1 - 2*(5/9)*2/5 = 5/9; D2 = 2; D3+ = 5/9
    np.testing.assert_allclose(
        lm.discounts_, [[0, 2, 0], [0.5, 2, 0.5], [5 / 9, 2, 5 / 9]], atol=1e-15
    )
    # P1: every unigram count is 2 and D2 = 2, so all mass goes to the uniform: 1/4 each
    assert lm.prob(["b", "b"], "a") != pytest.approx(0.25)  # context b is seen at order 2
    d1 = lm.distribution(["<unk>", "<unk>"])  # unseen at orders 3 and 2
    np.testing.assert_allclose(d1, [0.25, 0, 0.25, 0.25, 0.25])
    # context b (order 2): b</s> 2 -> 2 - 2 = 0 left; ba 1 -> 1 - 0.5; taken 2 + 0.5 of A = 3
    assert lm.prob(["b", "b"], "a") == pytest.approx(0.5 / 3 + (2.5 / 3) * 0.25)


def test_estimate_discounts_formulas():
    # counts-of-counts n1..n4 = 4, 2, 1, 1 ; Y = 4 / (4 + 2*2) = 0.5
    c = [1, 1, 1, 1, 2, 2, 3, 4, 7]
    np.testing.assert_allclose(
        estimate_discounts(c),
        [1 - 2 * 0.5 * 2 / 4, 2 - 3 * 0.5 * 1 / 2, 3 - 4 * 0.5 * 1 / 1],  # 0.5, 1.25, 1.0
    )
    np.testing.assert_allclose(estimate_discounts(c, modified=False), [0.5] * 3)
    # clipping: n1 = n2 = 1, n3 = 10 -> Y = 1/3, D1 = 1 - 2/3, D2 = 2 - 3*(1/3)*10 = -8 -> 0,
    # D3+ = 3 - 4*(1/3)*0/10 = 3
    np.testing.assert_allclose(estimate_discounts([1, 2] + [3] * 10), [1 / 3, 0.0, 3.0])
    np.testing.assert_allclose(estimate_discounts([5, 6]), [0.5] * 3)  # nothing to estimate from


# -- a direct implementation of the formulas, for comparison ---------------------------------


class _DictKN:
    """Chen & Goodman's interpolated KN written straight from the formulas, with dicts."""

    def __init__(self, ids, V, n, D=None, modified=True):
        C, t = ngram_arrays(ids, n)
        grams = [tuple(c) + (w,) for c, w in zip(C.tolist(), t.tolist(), strict=True)]
        self.n, self.V = n, V
        self.a = {}
        raw = {k: Counter(g[n - k :] for g in grams) for k in range(1, n + 1)}
        self.a[n] = raw[n]
        for k in range(n - 1, 0, -1):
            left = defaultdict(set)
            for g in raw[k + 1]:
                left[g[1:]].add(g[0])
            self.a[k] = {
                g: (raw[k][g] if (k > 1 and g[0] == BOS_ID) else len(left[g])) for g in raw[k]
            }
        self.D, self.tot, self.mass = {}, {}, {}
        for k in range(1, n + 1):
            if D is None:
                self.D[k] = estimate_discounts(list(self.a[k].values()), modified=modified)
            else:
                self.D[k] = np.full(3, D)
            tot, mass = defaultdict(float), defaultdict(float)
            for g, c in self.a[k].items():
                tot[g[:-1]] += c
                mass[g[:-1]] += min(c, self.D[k][min(c, 3) - 1])
            self.tot[k], self.mass[k] = tot, mass

    def p(self, ctx, w, k=None):
        k = self.n if k is None else k
        if k == 0:
            return 0.0 if w == BOS_ID else 1.0 / (self.V - 1)
        h = tuple(ctx[len(ctx) - (k - 1) :]) if k > 1 else ()
        lower = self.p(ctx, w, k - 1)
        if h not in self.tot[k]:
            return lower
        c = self.a[k].get(h + (w,), 0)
        d = min(c, self.D[k][min(c, 3) - 1]) if c else 0.0
        return (c - d + self.mass[k][h] * lower) / self.tot[k][h]


@pytest.fixture(scope="module")
def brown_slice():
    if not BROWN.is_file():
        pytest.skip("Brown corpus not available")
    sents = load_brown(BROWN)[:3000]  # about 60k words
    sp = brown_splits(sents, train_words=50_000, valid_words=5_000)
    v = Vocabulary(min_count=2).fit(sp.train)
    return v, v.encode(sp.train), v.encode(sp.test)


@pytest.mark.parametrize(
    ("n", "modified", "D"), [(3, True, None), (5, True, None), (3, False, None), (5, False, 0.7)]
)
def test_matches_dictionary_implementation(brown_slice, n, modified, D):
    v, train, test = brown_slice
    lm = KneserNeyLM(n, modified=modified, discount=D).fit(train, v)
    ref = _DictKN(train, len(v), n, D=D, modified=modified)
    for k in range(1, n + 1):
        np.testing.assert_allclose(lm.discounts_[k - 1], ref.D[k])
    assert lm.n_grams_ == [len(ref.a[k]) for k in range(1, n + 1)]
    C, t = ngram_arrays(test, n)
    rows = np.random.default_rng(0).choice(len(t), size=300, replace=False)
    got = np.exp(lm.log_prob(C[rows], t[rows]))
    want = [ref.p(C[i].tolist(), int(t[i])) for i in rows]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # training windows too (every context seen at the top order)
    Ct, tt = ngram_arrays(train[:2000], n)
    got = np.exp(lm.log_prob(Ct[::7], tt[::7]))
    want = [ref.p(c, w) for c, w in zip(Ct[::7].tolist(), tt[::7].tolist(), strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("n", [3, 5])
@pytest.mark.parametrize("modified", [True, False])
def test_distribution_sums_to_one(brown_slice, n, modified):
    v, train, test = brown_slice
    lm = KneserNeyLM(n, modified=modified).fit(train, v)
    contexts = [
        [],  # start of a sentence
        ["The", "jury"],  # seen
        ["of", "the"],
        ["the", "jury", "said", "that"],
        ["zzz", "qqq"],  # unknown words -> <unk> <unk>
        ["purple", "elephants", "of"],  # unseen long context, seen last word
        ["said", "."],
    ]
    for ctx in contexts:
        d = lm.distribution(ctx)
        assert d.shape == (len(v),) and d.dtype == np.float64
        assert d.sum() == pytest.approx(1.0, abs=1e-10), ctx
        assert d[BOS_ID] == 0.0 and (np.delete(d, BOS_ID) > 0).all()
    # and the vectorised scores agree with single queries
    C, t = ngram_arrays(test[:50], n)
    lp = lm.log_prob(C, t)
    singles = [math.log(lm.prob(c, w)) for c, w in zip(C.tolist(), t.tolist(), strict=True)]
    np.testing.assert_allclose(lp, singles, rtol=1e-12)


def test_perplexity_ranks_models(brown_slice):
    v, train, test = brown_slice
    ppl = {n: KneserNeyLM(n).fit(train, v).perplexity(test) for n in (1, 2, 3)}
    assert ppl[2] < ppl[1] and ppl[3] < ppl[1]
    assert 1 < ppl[3] < len(v)
    # perplexity is exp of the mean negative log-probability of every token (</s> included)
    lm = KneserNeyLM(3).fit(train, v)
    C, t = ngram_arrays(test, 3)
    assert lm.perplexity(test) == pytest.approx(math.exp(-lm.log_prob(C, t).mean()), rel=1e-12)


# -- contexts, words and errors --------------------------------------------------------------


def test_context_rules():
    lm, v = _toy(discount=0.5)
    # a longer context is cut to the last n - 1 tokens
    assert lm.prob(["b", "b", "a", "b"], "a") == lm.prob(["a", "b"], "a")
    # a context is cut at its last </s>: what follows starts a sentence
    assert lm.prob(["a", "b", "</s>", "a"], "b") == lm.prob(["a"], "b")
    assert lm.prob(["a", "</s>"], "a") == lm.prob([], "a")
    # ids and strings agree; unknown strings read as <unk>
    assert lm.prob([3, 4], 2) == lm.prob(["a", "b"], "</s>")
    assert lm.prob(["zzz", "a"], "b") == lm.prob(["<unk>", "a"], "b")
    # extra context columns in the batch form are ignored (last n - 1 used)
    C = np.array([[4, 4, 3, 4], [1, 1, 3, 4]])
    np.testing.assert_array_equal(lm.log_prob(C, [2, 2]), lm.log_prob(C[:, 2:], [2, 2]))
    # the start symbol is never predicted
    assert lm.log_prob([[3, 4]], [BOS_ID])[0] == -np.inf


def test_fit_with_vocab_size_only():
    ids = Vocabulary().fit(sentences_to_stream(TOY)).encode(sentences_to_stream(TOY))
    lm = KneserNeyLM(3, discount=0.5).fit(ids, 5)
    assert lm.prob([3, 4], EOS_ID) == pytest.approx(0.5520833333333333)
    with pytest.raises(TypeError, match="fitted without a Vocabulary"):
        lm.prob(["a"], "b")


def test_errors():
    with pytest.raises(ValueError, match="order=0"):
        KneserNeyLM(0)
    with pytest.raises(TypeError, match="order=2.0"):
        KneserNeyLM(2.0)
    with pytest.raises(ValueError, match="discount=1.5"):
        KneserNeyLM(3, discount=1.5)
    with pytest.raises(RuntimeError, match="not fitted"):
        KneserNeyLM(3).perplexity([3, 2])
    lm, v = _toy()
    with pytest.raises(ValueError, match="expected ids < 5"):
        lm.perplexity([3, 7, 2])
    with pytest.raises(ValueError, match="empty"):
        lm.perplexity([])
    with pytest.raises(ValueError, match="start id"):
        lm.perplexity([3, 1, 2])
    with pytest.raises(ValueError, match="at least n - 1 = 2"):
        lm.log_prob([[3]], [4])
    with pytest.raises(ValueError, match="expected 1"):
        lm.log_prob([[3, 4], [4, 4]], [2])
    with pytest.raises(TypeError, match="context is a str"):
        lm.prob("a b", "a")
    with pytest.raises(TypeError, match="mixes strings and ids"):
        lm.prob(["a", 4], "a")
    with pytest.raises(TypeError, match="expected integer token ids"):
        lm.prob([3.5], "a")
    with pytest.raises(ValueError, match="expected ids < 5"):
        lm.prob([3], 9)
    with pytest.raises(TypeError, match="Vocabulary or an int"):
        KneserNeyLM(2).fit([3, 2], "vocab")
    with pytest.raises(ValueError, match="expected ids < 4"):
        KneserNeyLM(2).fit([3, 4, 2], 4)
    with pytest.raises(ValueError, match="empty"):
        KneserNeyLM(2).fit([], v)
