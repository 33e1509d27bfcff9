"""Interpolated Kneser-Ney n-gram language model: the count-based baseline for the neural LM.

It is trained and scored on the same encoded streams, vocabulary and boundary rule as the neural
model (:mod:`backprop.lm_data`: ``</s>`` after every sentence, contexts padded with ``<s>``), so
that the two perplexities compare.

The model (Chen & Goodman 1998, "interpolated Kneser-Ney"; "modified" with three discounts)
-------------------------------------------------------------------------------------------
For order ``k`` (1 <= k <= n), context ``h`` of ``k - 1`` words and the next word ``w``::

    P_k(w | h) = max(a(h w) - D_k(a(h w)), 0) / A(h)  +  gamma(h) * P_{k-1}(w | h')
    A(h)       = sum_v a(h v)
    gamma(h)   = sum_v min(a(h v), D_k(a(h v))) / A(h)       (the mass taken by the discounts)

``h'`` is ``h`` without its first word, and ``P_0(w) = 1 / (|V| - 1)`` is uniform over every
word that can be predicted (all but ``<s>``). When ``h`` was never seen at order ``k``,
``P_k(w | h) = P_{k-1}(w | h')``. The counts ``a`` are

- at the highest order ``n``: the number of times ``h w`` occurs;
- at a lower order: the CONTINUATION count ``N1+(. h w)``, the number of different words seen
  just before ``h w`` -- except for grams that begin with ``<s>``, which take their plain count
  (their left neighbour can only be ``<s>`` padding, so it tells nothing; as in KenLM).

Discounts: ``D_k(c)`` is ``D1``, ``D2`` or ``D3+`` by ``c = 1, 2, >= 3`` ("modified" KN) or one
``D`` ("interpolated" KN), estimated per order from the counts-of-counts ``n_j`` (how many grams
of order ``k`` have ``a = j``)::

    Y = n1 / (n1 + 2 n2),  D1 = 1 - 2 Y n2 / n1,  D2 = 2 - 3 Y n3 / n2,  D3+ = 3 - 4 Y n4 / n3
    (plain: D = Y)

each clipped to ``[0, j]``; where a formula divides by zero (tiny corpora) ``Y`` is used instead
(``0.5`` if even ``Y`` is undefined). Every ``P_k(. | h)`` sums to 1 over the vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .lm_data import BOS_ID, EOS_ID, Vocabulary, check_ids, context_window, ngram_arrays

__all__ = ["KneserNeyLM", "estimate_discounts"]


def estimate_discounts(counts, *, modified: bool = True) -> np.ndarray:
    """Chen & Goodman's discounts from the counts-of-counts of one order.

    Parameters
    ----------
    counts : array_like of int
        The (adjusted) count of every distinct n-gram of the order.
    modified : bool, default True
        Three discounts (for counts 1, 2, >= 3) instead of one.

    Returns
    -------
    numpy.ndarray of float64, shape (3,)
        ``[D1, D2, D3+]`` (all equal when ``modified=False``); ``D_j`` lies in ``[0, j]``.

    Examples
    --------
    >>> estimate_discounts([1, 1, 1, 1, 2, 2, 3, 4]).round(4).tolist()
    [0.5, 1.25, 1.0]
    """
    c = np.asarray(counts, dtype=np.int64)
    n1, n2, n3, n4 = (int(np.count_nonzero(c == j)) for j in (1, 2, 3, 4))
    y = n1 / (n1 + 2 * n2) if n1 + n2 > 0 else 0.5
    if not modified:
        return np.full(3, min(max(y, 0.0), 1.0))
    d = np.array(
        [
            1 - 2 * y * n2 / n1 if n1 else y,
            2 - 3 * y * n3 / n2 if n2 else y,
            3 - 4 * y * n4 / n3 if n3 else y,
        ]
    )
    return np.clip(d, 0.0, [1.0, 2.0, 3.0])


class _Order:
    """Tables of one order k: sorted gram keys ``ctx * V + w`` and per-context sums."""

    __slots__ = ("ctx_keys", "gram_keys", "num", "total", "mass", "a", "raw")


class KneserNeyLM:
    """Interpolated (modified) Kneser-Ney n-gram language model, any order.

    Parameters
    ----------
    order : int, default 3
        ``n``: contexts of ``n - 1`` tokens.
    modified : bool, default True
        Three discounts per order (``D1, D2, D3+``) instead of one.
    discount : float or None, default None
        A fixed discount for every count and order (in ``[0, 1]``); ``None`` estimates them from
        the training counts (see the module docstring).

    Attributes
    ----------
    vocab_size_ : int
    vocab_ : Vocabulary or None
        When ``fit`` was given one; then words can be passed as strings.
    discounts_ : numpy.ndarray of float64, shape (order, 3)
        Row ``k - 1`` holds ``D1, D2, D3+`` of order ``k``.
    n_grams_ : list of int
        Number of distinct grams of each order, ``n_grams_[k - 1]`` for order ``k``.

    Notes
    -----
    Counts are exact integers and probabilities are computed in float64 (a count model has no
    training dtype). All grams are kept (no pruning).

    Examples
    --------
    >>> from backprop.lm_data import Vocabulary
    >>> toks = "a b </s> a c </s> b c </s>".split()
    >>> v = Vocabulary().fit(toks)
    >>> lm = KneserNeyLM(2, discount=0.5).fit(v.encode(toks), v)
    >>> round(lm.prob(["a"], "b"), 4)
    0.3857
    >>> round(float(lm.distribution([]).sum()), 12)
    1.0
    """

    def __init__(self, order: int = 3, *, modified: bool = True, discount: float | None = None):
        if isinstance(order, bool) or not isinstance(order, int | np.integer):
            raise TypeError(f"order={order!r}: expected an int >= 1")
        if order < 1:
            raise ValueError(f"order={order!r}: expected an int >= 1")
        if discount is not None:
            if isinstance(discount, bool) or not isinstance(discount, int | float | np.floating):
                raise TypeError(f"discount={discount!r}: expected None or a float in [0, 1]")
            if not 0.0 <= float(discount) <= 1.0:
                raise ValueError(f"discount={discount!r}: expected None or a float in [0, 1]")
        self.order = int(order)
        self.modified = bool(modified)
        self.discount = None if discount is None else float(discount)

    # -- training ------------------------------------------------------------------------------
    def fit(self, ids, vocab: Vocabulary | int) -> KneserNeyLM:
        """Count the n-grams of an encoded training stream.

        Parameters
        ----------
        ids : array_like of int, shape (N,)
            The training stream (``</s>`` after every sentence, see :mod:`backprop.lm_data`).
        vocab : Vocabulary or int
            The vocabulary (or its size; then ``<s>`` = 1 and ``</s>`` = 2).

        Returns
        -------
        KneserNeyLM
            ``self``.
        """
        if isinstance(vocab, Vocabulary):
            V, self.vocab_ = len(vocab), vocab
        elif isinstance(vocab, int | np.integer) and not isinstance(vocab, bool):
            V, self.vocab_ = int(vocab), None
        else:
            raise TypeError(f"vocab is a {type(vocab).__name__}: expected a Vocabulary or an int")
        if V < 3:
            raise ValueError(f"vocabulary size {V}: expected >= 3 (<unk>, <s>, </s> and words)")
        self.vocab_size_ = V
        n = self.order
        contexts, targets = ngram_arrays(check_ids(ids, V), n, bos_id=BOS_ID, eos_id=EOS_ID)
        w = targets.astype(np.int64)

        # Context ids, order by order: the context of order k is (first, context of order k-1),
        # numbered through np.unique of first * C_{k-1} + cid_{k-1}.
        tabs = [_Order() for _ in range(n + 1)]  # tabs[k] for order k; tabs[0] unused
        cid = np.zeros(len(w), dtype=np.int64)
        C = 1
        ctx_parent = [None] * (n + 1)  # order-k context -> its order-(k-1) suffix context
        ctx_first = [None] * (n + 1)  # first token of each order-k context
        for k in range(1, n + 1):
            t = tabs[k]
            if k == 1:
                t.ctx_keys = np.zeros(1, dtype=np.int64)
            else:
                key = contexts[:, n - k].astype(np.int64) * C + cid
                t.ctx_keys, cid = np.unique(key, return_inverse=True)
                cid = cid.reshape(-1)
                ctx_parent[k] = t.ctx_keys % C
                ctx_first[k] = t.ctx_keys // C
                C = len(t.ctx_keys)
            t.gram_keys, t.raw = np.unique(cid * V + w, return_counts=True)

        # Adjusted counts, from the top order down.
        tabs[n].a = tabs[n].raw
        for k in range(n - 1, 0, -1):
            up, t = tabs[k + 1], tabs[k]
            up_ctx, up_w = np.divmod(up.gram_keys, V)
            suffix = np.searchsorted(t.gram_keys, ctx_parent[k + 1][up_ctx] * V + up_w)
            cont = np.bincount(suffix, minlength=len(t.gram_keys))
            if k == 1:
                t.a = cont  # a unigram begins with its word, never with <s>
            else:
                starts_bos = ctx_first[k][t.gram_keys // V] == BOS_ID
                t.a = np.where(starts_bos, t.raw, cont)

        self.discounts_ = np.zeros((n, 3))
        self.n_grams_ = []
        for k in range(1, n + 1):
            t = tabs[k]
            if self.discount is not None:
                D = np.full(3, self.discount)
            else:
                D = estimate_discounts(t.a, modified=self.modified)
            self.discounts_[k - 1] = D
            a = t.a.astype(np.float64)
            taken = np.minimum(a, D[np.minimum(t.a, 3) - 1])
            ctx = t.gram_keys // V
            n_ctx = len(t.ctx_keys)
            t.num = a - taken
            t.total = np.bincount(ctx, weights=a, minlength=n_ctx)
            t.mass = np.bincount(ctx, weights=taken, minlength=n_ctx)
            self.n_grams_.append(len(t.gram_keys))
            del t.raw
        self._tabs = tabs
        return self

    # -- scoring -------------------------------------------------------------------------------
    def _check_fitted(self):
        if not hasattr(self, "_tabs"):
            raise RuntimeError("this KneserNeyLM is not fitted yet: call fit(ids, vocab) first")

    def _probs(self, contexts: np.ndarray, targets: np.ndarray) -> np.ndarray:
        n, V, tabs = self.order, self.vocab_size_, self._tabs
        w = targets.astype(np.int64)
        p = np.where(w == BOS_ID, 0.0, 1.0 / (V - 1))  # P_0: uniform over all but <s>
        cid = np.zeros(len(w), dtype=np.int64)
        seen = np.ones(len(w), dtype=bool)
        C = 1
        for k in range(1, n + 1):
            t = tabs[k]
            if k > 1:
                key = contexts[:, n - k].astype(np.int64) * C + cid
                idx = np.minimum(np.searchsorted(t.ctx_keys, key), len(t.ctx_keys) - 1)
                seen &= t.ctx_keys[idx] == key
                cid = np.where(seen, idx, 0)
                C = len(t.ctx_keys)
            gkey = cid * V + w
            gi = np.minimum(np.searchsorted(t.gram_keys, gkey), len(t.gram_keys) - 1)
            num = np.where(seen & (t.gram_keys[gi] == gkey), t.num[gi], 0.0)
            p = np.where(seen, (num + t.mass[cid] * p) / t.total[cid], p)
        return p

    def _as_batch(self, contexts, targets) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        n = self.order
        C = np.asarray(contexts)
        if C.ndim != 2:
            raise ValueError(f"contexts has shape {C.shape}: expected 2-D (batch, n - 1)")
        if C.shape[1] < n - 1:
            raise ValueError(
                f"contexts has {C.shape[1]} columns: expected at least n - 1 = {n - 1} "
                "(pad short contexts on the left with <s>, see lm_data.context_window)"
            )
        t = check_ids(targets, self.vocab_size_, name="targets")
        if C.shape[0] != len(t):
            raise ValueError(f"contexts has {C.shape[0]} rows: expected {len(t)} (one per target)")
        C = C[:, C.shape[1] - (n - 1) :] if n > 1 else C[:, :0]
        if C.size:
            C = check_ids(C.reshape(-1), self.vocab_size_, name="contexts").reshape(C.shape)
        return C, t

    def log_prob(self, contexts, targets) -> np.ndarray:
        """Natural log of ``P(target | context)`` for a batch of windows.

        Parameters
        ----------
        contexts : array_like of int, shape (M, m) with m >= n - 1
            Only the last ``n - 1`` columns are used (a longer context is cut, as an n-gram model
            only sees ``n - 1`` words).
        targets : array_like of int, shape (M,)

        Returns
        -------
        numpy.ndarray of float64, shape (M,)
            ``-inf`` where the probability is 0 (only for the target ``<s>``).
        """
        C, t = self._as_batch(contexts, targets)
        with np.errstate(divide="ignore"):
            return np.log(self._probs(C, t))

    def _ids(self, tokens, name: str) -> np.ndarray:
        if isinstance(tokens, str | bytes):
            raise TypeError(
                f"{name} is a {type(tokens).__name__}: expected a sequence of tokens "
                "(a list of words or ids)"
            )
        toks = list(tokens)
        n_str = sum(isinstance(x, str) for x in toks)
        if n_str:
            if n_str != len(toks):
                raise TypeError(f"{name} mixes strings and ids: expected all words or all ids")
            if self.vocab_ is None:
                raise TypeError(
                    f"{name} holds strings but the model was fitted without a Vocabulary: "
                    "expected token ids"
                )
            return self.vocab_.encode(toks)
        arr = np.asarray(toks) if toks else np.zeros(0, dtype=np.int32)
        return check_ids(arr, self.vocab_size_, name=name, allow_empty=True)

    def prob(self, context: Sequence, word) -> float:
        """``P(word | context)``.

        ``context`` follows the boundary rule of :func:`backprop.lm_data.context_window`: only the
        tokens after its last ``</s>`` count, a longer context is cut to the last ``n - 1``
        tokens, and a shorter one is padded with ``<s>`` (it is read as the start of a sentence).
        Words may be strings (when fitted with a Vocabulary; unknown words read as ``<unk>``) or
        ids.

        Parameters
        ----------
        context : sequence of str or int
        word : str or int

        Returns
        -------
        float
        """
        self._check_fitted()
        h = context_window(self._ids(context, "context"), self.order)
        wid = self._ids([word], "word")
        return float(self._probs(h[None, :], wid)[0])

    def distribution(self, context: Sequence) -> np.ndarray:
        """``P(. | context)`` over the whole vocabulary (same context rule as :meth:`prob`).

        Returns
        -------
        numpy.ndarray of float64, shape (vocab_size,)
            Sums to 1; the entry of ``<s>`` is 0.
        """
        self._check_fitted()
        h = context_window(self._ids(context, "context"), self.order)
        V = self.vocab_size_
        return self._probs(np.broadcast_to(h, (V, len(h))), np.arange(V, dtype=np.int32))

    def perplexity(self, ids) -> float:
        """Perplexity of an encoded stream: ``exp(-mean log P(w_i | context_i))``.

        Every token is scored, each ``</s>`` included (the windows of
        :func:`backprop.lm_data.ngram_arrays`).

        Parameters
        ----------
        ids : array_like of int, shape (N,)

        Returns
        -------
        float

        Examples
        --------
        >>> lm.perplexity(data.test)  # doctest: +SKIP
        """
        self._check_fitted()
        C, t = ngram_arrays(check_ids(ids, self.vocab_size_), self.order)
        return float(np.exp(-np.mean(self.log_prob(C, t))))
