"""Text corpora for language models: the Brown corpus, plain text, vocabularies and n-gram windows.

This module turns a corpus into the integer streams that both the Kneser-Ney baseline
(:mod:`backprop.ngram`) and the neural language model train and are scored on, so that their
perplexities compare. The whole protocol is written down in ``docs/language-model.md``.

The boundary rule (used everywhere)
-----------------------------------
A corpus is a list of sentences. It becomes ONE stream of token ids in which every sentence is
followed by the end symbol ``</s>``::

    The jury said . </s> It was late . </s> ...

Every token of the stream, ``</s>`` included, is a prediction target. Contexts never reach across
a ``</s>``: the context of the first word of a sentence is ``<s> <s> ... <s>`` (``n - 1`` start
symbols), and in general the ``n - 1`` tokens before a target are taken from its own sentence
and padded on the left with ``<s>``. ``<s>`` is padding only: it is never predicted and never
appears in a stream. For n = 3 the sentence ``a b`` gives the windows
``(<s> <s> -> a)``, ``(<s> a -> b)``, ``(a b -> </s>)``.

Vocabulary ids are fixed for the three special symbols: 0 = ``<unk>``, 1 = ``<s>``,
2 = ``</s>``; the words follow by decreasing training count (ties in code-point order).
"""

from __future__ import annotations

import functools
import os
import re
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "UNK_ID",
    "BOS_ID",
    "EOS_ID",
    "find_brown",
    "load_brown",
    "tokenize",
    "load_text",
    "sentences_to_stream",
    "Splits",
    "brown_splits",
    "Vocabulary",
    "LMData",
    "load_brown_lm",
    "check_ids",
    "ngram_arrays",
    "ngram_windows",
    "context_window",
]

UNK_ID = 0
BOS_ID = 1
EOS_ID = 2

# ---------------------------------------------------------------------------------------------
# Brown corpus
# ---------------------------------------------------------------------------------------------

_BROWN_FILE = re.compile(r"^(?:.*/)?(c[a-r]\d\d)$")


def _nltk_dirs() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    dirs.append(Path.home() / "nltk_data")
    dirs += [
        Path(p)
        for p in (
            "/usr/share/nltk_data",
            "/usr/local/share/nltk_data",
            "/usr/lib/nltk_data",
            "/usr/local/lib/nltk_data",
        )
    ]
    return dirs


def _brown_candidates(base: Path) -> list[Path]:
    """A path given by the user: the zip, or a folder holding it (or its unzipped files)."""
    return [
        base,
        base / "brown.zip",
        base / "brown" / "brown.zip",
        base / "corpora" / "brown.zip",
        base / "brown",
        base / "corpora" / "brown",
    ]


def _is_brown(p: Path) -> bool:
    if p.is_file():
        return zipfile.is_zipfile(p)
    return p.is_dir() and (p / "ca01").is_file()


def find_brown(path=None) -> Path:
    """Locate the Brown corpus (NLTK's ``brown.zip`` or its unzipped ``brown/`` folder).

    Search order: ``path`` (the zip, a folder holding ``brown.zip`` or ``brown/brown.zip``, or the
    unzipped folder with ``ca01``...); else ``$BACKPROP_DATA`` (same forms); else NLTK's usual
    places: each folder of ``$NLTK_DATA``, ``~/nltk_data``, ``/usr/share/nltk_data``,
    ``/usr/local/share/nltk_data``, ``/usr/lib/nltk_data``, ``/usr/local/lib/nltk_data``, each
    as ``corpora/brown.zip`` or ``corpora/brown/``.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Where the user keeps the corpus. When given, nothing else is searched.

    Returns
    -------
    pathlib.Path
        The zip file or the folder holding ``ca01`` ... ``cr09``.

    Raises
    ------
    FileNotFoundError
        One line naming the places searched and how to get the file
        (``nltk.download('brown')``).
    ValueError
        ``path`` is a file but not a zip.

    Examples
    --------
    >>> find_brown("/data/brown.zip")  # doctest: +SKIP
    PosixPath('/data/brown.zip')
    """
    if path is not None:
        given = Path(path).expanduser()
        if given.is_file() and not zipfile.is_zipfile(given):
            raise ValueError(f"{given} is not a zip file: expected NLTK's brown.zip")
        tried = _brown_candidates(given)
    else:
        tried = []
        env = os.environ.get("BACKPROP_DATA")
        if env:
            tried += _brown_candidates(Path(env).expanduser())
        for d in _nltk_dirs():
            tried += [d / "corpora" / "brown.zip", d / "corpora" / "brown"]
    for p in tried:
        if _is_brown(p):
            return p
    where = f"path={str(path)!r}" if path is not None else "$BACKPROP_DATA and NLTK's folders"
    raise FileNotFoundError(
        f"Brown corpus not found in {where} (tried {', '.join(str(p) for p in tried)}): "
        "pass path=..., set BACKPROP_DATA, or run nltk.download('brown')"
    )


def _brown_files(src: Path) -> Iterator[tuple[str, bytes]]:
    if src.is_dir():
        names = sorted(p.name for p in src.iterdir() if _BROWN_FILE.match(p.name))
        for name in names:
            yield name, (src / name).read_bytes()
        return
    try:
        zf = zipfile.ZipFile(src)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"{src} is not a readable zip file: {exc}") from None
    with zf:
        names = sorted(
            (m.group(1), n) for n in zf.namelist() if (m := _BROWN_FILE.match(n)) is not None
        )
        for short, name in names:
            yield short, zf.read(name)


def load_brown(path=None, *, lower: bool = False) -> list[list[str]]:
    """Read the Brown corpus as sentences of words, in corpus order.

    The 500 files are read in sorted name order (``ca01`` ... ``cr09``, i.e. NLTK's order); every
    non-blank line is one sentence; every whitespace-separated token ``word/TAG`` gives ``word``
    (split at the LAST ``/``, so ``1/2/cd`` gives ``1/2``). Punctuation stays as tokens
    (``.``, ``,``, the quote marks ```` `` ```` and ``''``, ...); hyphenated words and possessives
    are single tokens as in the corpus (``term-end``, ``Atlanta's``). Case is kept unless
    ``lower=True``: Bengio et al. (2003) distinguished upper and lower case, and so does the
    default.

    NLTK's file has 57,340 sentences and 1,161,192 tokens.

    Parameters
    ----------
    path : str or os.PathLike, optional
        See :func:`find_brown` for the search when omitted.
    lower : bool, default False
        Lower-case every word.

    Returns
    -------
    list of list of str
        Sentences, each a non-empty list of words.

    Raises
    ------
    FileNotFoundError
        The corpus is nowhere to be found.
    ValueError
        The file is not a zip, holds no Brown files, is not ASCII/UTF-8 text, or has a token that
        is not ``word/TAG``.

    Examples
    --------
    >>> sents = load_brown()  # doctest: +SKIP
    >>> sents[0][:4]  # doctest: +SKIP
    ['The', 'Fulton', 'County', 'Grand']
    """
    src = find_brown(path)
    sentences: list[list[str]] = []
    n_files = 0
    for name, data in _brown_files(src):
        n_files += 1
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"{src}: file {name} is not text (byte {data[exc.start]:#04x} at offset "
                f"{exc.start}): expected the Brown corpus' word/TAG lines"
            ) from None
        for lineno, line in enumerate(text.splitlines(), 1):
            toks = line.split()
            if not toks:
                continue
            sent = []
            for tok in toks:
                word, slash, _tag = tok.rpartition("/")
                if not slash or not word:
                    raise ValueError(
                        f"{src}: file {name} line {lineno}: token {tok!r} is not word/TAG"
                    )
                sent.append(word.lower() if lower else word)
            sentences.append(sent)
    if n_files == 0:
        raise ValueError(f"{src} holds no Brown corpus files (ca01 ... cr09)")
    return sentences


# ---------------------------------------------------------------------------------------------
# Plain text
# ---------------------------------------------------------------------------------------------


# A word: letters/digits/underscore, joined by inner apostrophes, hyphens or dots
# (don't, well-known, 3.14, U.S); an ellipsis; else any single non-space character.
@functools.cache
def _token_pattern() -> re.Pattern:
    r"""The word pattern, with Unicode's combining marks as word characters: Python's ``\w``
    leaves them out, which split "cafe" + U+0301 and every Devanagari or Thai word with a vowel
    sign into pieces. Built on first use (a pass over the code points, about 0.2 s)."""
    marks = []
    start = prev = None
    for c in range(0x110000):
        if unicodedata.category(chr(c))[0] == "M":
            if prev is not None and c == prev + 1:
                prev = c
                continue
            if start is not None:
                marks.append((start, prev))
            start = prev = c
    if start is not None:
        marks.append((start, prev))
    m = "".join(f"\\U{a:08x}-\\U{b:08x}" if a != b else f"\\U{a:08x}" for a, b in marks)
    w = rf"[\w{m}]"
    return re.compile(rf"{w}+(?:['\u2019.\-]{w}+)*|\.\.\.|[^\w\s{m}]")


_FINAL = {".", "!", "?", "..."}
_CLOSERS = {"\u201d", "\u2019", ")", "]", "}", "''"}
_QUOTES = {'"', "'"}  # straight quotes close a sentence only when one is open in it


def tokenize(text: str, *, lower: bool = False) -> list[str]:
    """Split text into words and punctuation marks.

    A word is a run of letters, digits or ``_`` that may contain inner apostrophes, hyphens and
    dots (``don't``, ``well-known``, ``3.14``); ``...`` is one token; every other non-space
    character is a token of its own.

    Parameters
    ----------
    text : str
    lower : bool, default False
        Lower-case the tokens.

    Returns
    -------
    list of str

    Examples
    --------
    >>> tokenize("Don't stop -- it's 3.5 km.")
    ["Don't", 'stop', '-', '-', "it's", '3.5', 'km', '.']
    """
    if not isinstance(text, str):
        raise TypeError(f"text is a {type(text).__name__}: expected str")
    toks = _token_pattern().findall(text)
    return [t.lower() for t in toks] if lower else toks


def _split_sentences(tokens: list[str]) -> list[list[str]]:
    """Cut a token list after ``. ! ? ...`` (keeping closing quotes/brackets with the sentence).

    A straight quote after the final mark belongs to the sentence only when the sentence opened
    one (an odd number of them so far); otherwise it opens the next sentence.
    """
    out: list[list[str]] = []
    cur: list[str] = []
    i = 0
    while i < len(tokens):
        cur.append(tokens[i])
        if tokens[i] in _FINAL:
            while i + 1 < len(tokens) and (
                tokens[i + 1] in _CLOSERS
                or (tokens[i + 1] in _QUOTES and cur.count(tokens[i + 1]) % 2 == 1)
            ):
                i += 1
                cur.append(tokens[i])
            out.append(cur)
            cur = []
        i += 1
    if cur:
        out.append(cur)
    return out


def load_text(
    path, *, lower: bool = False, split: str = "auto", max_line_tokens: int = 100
) -> list[list[str]]:
    """Read a plain-text UTF-8 corpus as sentences of tokens (see :func:`tokenize`).

    Three ways to find sentences (``split``):

    - ``"lines"``: every non-blank line is one sentence.
    - ``"punct"``: running text; a sentence ends after ``.``, ``!``, ``?`` or ``...`` (and any
      closing quotes/brackets right after it) and at every blank line; single line breaks inside a
      paragraph are ignored (use it for hard-wrapped books).
    - ``"auto"`` (default): as ``"lines"``, but a line longer than ``max_line_tokens`` tokens
      (a paragraph on one line) is cut at sentence-final punctuation as in ``"punct"``.

    Parameters
    ----------
    path : str or os.PathLike
        A UTF-8 text file (a BOM is allowed).
    lower : bool, default False
        Lower-case the tokens.
    split : {"auto", "lines", "punct"}, default "auto"
    max_line_tokens : int, default 100
        Only for ``split="auto"``.

    Returns
    -------
    list of list of str
        Non-empty sentences.

    Raises
    ------
    ValueError
        The file is empty, holds no tokens, contains NUL bytes or is not valid UTF-8 (binary data).

    Examples
    --------
    >>> sents = load_text("my_corpus.txt")  # doctest: +SKIP
    """
    if split not in ("auto", "lines", "punct"):
        raise ValueError(f"split={split!r} is not supported: expected 'auto', 'lines' or 'punct'")
    if isinstance(max_line_tokens, bool) or not isinstance(max_line_tokens, int | np.integer):
        raise TypeError(f"max_line_tokens={max_line_tokens!r}: expected a positive int")
    if max_line_tokens < 1:
        raise ValueError(f"max_line_tokens={max_line_tokens!r}: expected a positive int")
    data = Path(path).read_bytes()
    if not data:
        raise ValueError(f"{path} is empty: expected a UTF-8 text corpus")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise ValueError(
            f"{path} contains a NUL byte at offset {nul}: expected a UTF-8 text corpus, "
            "not binary data"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path} is not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start}): "
            "expected a UTF-8 text corpus"
        ) from None
    sentences: list[list[str]] = []
    if split == "punct":
        for para in re.split(r"\n[ \t\r\f\v]*\n", text):
            sentences += _split_sentences(tokenize(para, lower=lower))
    else:
        for line in text.splitlines():
            toks = tokenize(line, lower=lower)
            if not toks:
                continue
            if split == "auto" and len(toks) > max_line_tokens:
                sentences += _split_sentences(toks)
            else:
                sentences.append(toks)
    if not sentences:
        raise ValueError(f"{path} holds no words (only whitespace): expected a text corpus")
    return sentences


# ---------------------------------------------------------------------------------------------
# Streams and the paper's split
# ---------------------------------------------------------------------------------------------


def prompt_stream(tokens: Sequence[str], *, eos: str = "</s>") -> list[str]:
    """A prompt's tokens as training saw such text: each complete sentence (ended by
    ``. ! ? ...``) followed by ``eos``, the unfinished one last, so that the context of the next
    word is the current sentence only (:func:`context_window`).

    Examples
    --------
    >>> prompt_stream(["The", "jury", "said", ".", "It"])
    ['The', 'jury', 'said', '.', '</s>', 'It']
    >>> prompt_stream(["It", "rained", "."])
    ['It', 'rained', '.', '</s>']
    """
    toks = list(tokens)
    if eos in toks:  # already marked by the caller
        return toks
    out: list[str] = []
    for sentence in _split_sentences(toks):
        out.extend(sentence)
        if any(t in _FINAL for t in sentence):  # cut at its final mark: complete
            out.append(eos)
    return out


def sentences_to_stream(sentences: Iterable[Sequence[str]], *, eos: str = "</s>") -> list[str]:
    """Join sentences into one token stream, each sentence followed by ``eos``.

    Examples
    --------
    >>> sentences_to_stream([["a", "b"], ["c"]])
    ['a', 'b', '</s>', 'c', '</s>']
    """
    out: list[str] = []
    for s in sentences:
        if isinstance(s, str):
            raise TypeError(f"sentence {s!r} is a str: expected a list of tokens")
        out.extend(s)
        out.append(eos)
    return out


class Splits(NamedTuple):
    """Train / validation / test token streams, with the number of sentences in each."""

    train: list[str]
    valid: list[str]
    test: list[str]
    sentences: tuple[int, int, int]


def _nearest_boundary(cum: np.ndarray, target: int, lo: int) -> int:
    """Number of sentences (> lo) whose cumulative word count is nearest ``target``."""
    i = int(np.searchsorted(cum, target))  # first with cum >= target
    best = i
    if i > 0 and (i == len(cum) or target - cum[i - 1] <= cum[i] - target):
        best = i - 1
    return max(best + 1, lo + 1)


def brown_splits(
    sentences: Sequence[Sequence[str]],
    *,
    train_words: int = 800_000,
    valid_words: int = 200_000,
    eos: str = "</s>",
) -> Splits:
    """Split a corpus as Bengio et al. (2003) split Brown: 800,000 / 200,000 / the rest words.

    The cut is made at the sentence boundary NEAREST the word counts (so no sentence is broken and
    every split starts a fresh sentence): train holds the first sentences whose words add up as
    close as possible to ``train_words``; validation the following ones up to
    ``train_words + valid_words`` words in all; test the rest. When the corpus has more words
    than ``train_words + valid_words`` but those boundaries take every sentence, the last
    sentence is the test part (and validation at least the one before it). Words are counted
    without the ``</s>`` marks; each split is returned as a stream with ``eos`` after every sentence
    (:func:`sentences_to_stream`).

    On NLTK's Brown (57,340 sentences, 1,161,192 words): train 35,523 sentences / 800,001 words;
    validation 11,689 sentences / 199,997 words; test 10,128 sentences / 161,194 words (the
    paper's own copy was 1,181,041 words with 181,041 for test).

    Parameters
    ----------
    sentences : sequence of sequence of str
    train_words, valid_words : int, default 800_000 and 200_000
    eos : str, default "</s>"

    Returns
    -------
    Splits
        ``(train, valid, test, sentences)`` -- three lists of str and the sentence counts.

    Raises
    ------
    ValueError
        The corpus has fewer than three sentences or too few words to leave a test part.

    Examples
    --------
    >>> s = brown_splits([["a"], ["b", "c"], ["d"]], train_words=1, valid_words=2)
    >>> s.train, s.valid, s.test
    (['a', '</s>'], ['b', 'c', '</s>'], ['d', '</s>'])
    """
    for name, v in (("train_words", train_words), ("valid_words", valid_words)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(f"{name}={v!r}: expected a positive int")
    lengths = np.array([len(s) for s in sentences], dtype=np.int64)
    if len(lengths) < 3:
        raise ValueError(f"the corpus has {len(lengths)} sentences: expected at least 3 to split")
    cum = np.cumsum(lengths)
    a = _nearest_boundary(cum, train_words, 0)
    b = _nearest_boundary(cum, train_words + valid_words, a)
    if b >= len(lengths) and cum[-1] > train_words + valid_words:
        # words are left for a test part, but the nearest boundaries took every sentence:
        # the last sentence becomes the test part, the one before it (at least) validation
        b = len(lengths) - 1
        a = min(a, b - 1)
    if b >= len(lengths):
        raise ValueError(
            f"the corpus has {int(cum[-1])} words: expected more than "
            f"train_words + valid_words = {train_words + valid_words} to leave a test part"
        )
    return Splits(
        sentences_to_stream(sentences[:a], eos=eos),
        sentences_to_stream(sentences[a:b], eos=eos),
        sentences_to_stream(sentences[b:], eos=eos),
        (a, b - a, len(lengths) - b),
    )


# ---------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------


def _check_tokens(tokens, name: str = "tokens") -> list:
    if isinstance(tokens, str | bytes):
        raise TypeError(
            f"{name} is a {type(tokens).__name__}: expected a sequence of tokens (see tokenize())"
        )
    try:
        toks = list(tokens)
    except TypeError:
        raise TypeError(
            f"{name} is a {type(tokens).__name__}: expected a sequence of str tokens"
        ) from None
    for i, t in enumerate(toks):
        if not isinstance(t, str):
            raise TypeError(f"{name}[{i}] = {t!r} is a {type(t).__name__}: expected str")
    return toks


class Vocabulary:
    """Word <-> id table with an unknown-word symbol, a minimum count and a maximum size.

    Ids 0, 1, 2 are always ``unk``, ``bos``, ``eos``; then come the training words with
    ``count >= min_count`` by decreasing count (ties in code-point order), cut to ``max_size``
    entries in all. Every other word -- rare in training, or never seen -- encodes as ``unk``.
    Bengio et al.'s protocol ("words with frequency <= 3 merged into a single symbol") is
    ``Vocabulary(min_count=4)`` fitted on the training stream only.

    Parameters
    ----------
    min_count : int, default 1
        Keep words seen at least this many times in the training tokens.
    max_size : int or None, default None
        At most this many entries, the three special symbols included (so >= 3).
    unk, bos, eos : str, default "<unk>", "<s>", "</s>"
        Unknown word, sentence-start padding (never predicted), end of sentence.

    Attributes
    ----------
    words : list of str
        ``words[i]`` is the token of id ``i``.
    counts : numpy.ndarray of int64, shape (len(vocab),)
        Training count of each entry; ``counts[0]`` sums the merged words, ``counts[1] == 0``.
    n_merged : int
        Number of distinct training words merged into ``unk``.

    Examples
    --------
    >>> v = Vocabulary(min_count=2).fit("a b a c a b </s>".split())
    >>> v.words
    ['<unk>', '<s>', '</s>', 'a', 'b']
    >>> v.encode(["a", "c", "zzz"])
    array([3, 0, 0], dtype=int32)
    >>> v.decode([4, 2])
    ['b', '</s>']
    """

    unk_id = UNK_ID
    bos_id = BOS_ID
    eos_id = EOS_ID

    def __init__(
        self,
        min_count: int = 1,
        max_size: int | None = None,
        *,
        unk: str = "<unk>",
        bos: str = "<s>",
        eos: str = "</s>",
    ):
        if isinstance(min_count, bool) or not isinstance(min_count, int | np.integer):
            raise TypeError(f"min_count={min_count!r}: expected an int >= 1")
        if min_count < 1:
            raise ValueError(f"min_count={min_count!r}: expected an int >= 1")
        if max_size is not None:
            if isinstance(max_size, bool) or not isinstance(max_size, int | np.integer):
                raise TypeError(f"max_size={max_size!r}: expected None or an int >= 3")
            if max_size < 3:
                raise ValueError(
                    f"max_size={max_size!r}: expected None or an int >= 3 (the three special "
                    "symbols are always in the vocabulary)"
                )
        specials = (unk, bos, eos)
        for name, s in zip(("unk", "bos", "eos"), specials, strict=True):
            if not isinstance(s, str) or not s:
                raise TypeError(f"{name}={s!r}: expected a non-empty str")
        if len(set(specials)) != 3:
            raise ValueError(f"unk, bos, eos = {specials!r}: expected three different symbols")
        self.min_count = int(min_count)
        self.max_size = None if max_size is None else int(max_size)
        self.unk, self.bos, self.eos = unk, bos, eos
        self.words: list[str] = [unk, bos, eos]
        self.counts = np.zeros(3, dtype=np.int64)
        self.n_merged = 0
        self._index: dict[str, int] = {w: i for i, w in enumerate(self.words)}
        self._fitted = False

    # -- building ------------------------------------------------------------------------------
    def fit(self, tokens: Iterable[str]) -> Vocabulary:
        """Build the table from TRAINING tokens (a stream, ``eos`` marks included or not).

        Parameters
        ----------
        tokens : iterable of str
            ``bos`` tokens are ignored; ``unk`` tokens count towards ``unk``.

        Returns
        -------
        Vocabulary
            ``self``.
        """
        toks = _check_tokens(tokens)
        if not toks:
            raise ValueError("tokens is empty: expected training tokens to build a vocabulary")
        counter = Counter(toks)
        n_eos = counter.pop(self.eos, 0)
        counter.pop(self.bos, None)
        n_unk = counter.pop(self.unk, 0)
        ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
        kept = [(w, c) for w, c in ranked if c >= self.min_count]
        if self.max_size is not None:
            kept = kept[: self.max_size - 3]
        merged = len(counter) - len(kept)
        n_unk += sum(counter.values()) - sum(c for _, c in kept)
        self.words = [self.unk, self.bos, self.eos] + [w for w, _ in kept]
        self.counts = np.array([n_unk, 0, n_eos] + [c for _, c in kept], dtype=np.int64)
        self.n_merged = merged
        self._index = {w: i for i, w in enumerate(self.words)}
        self._fitted = True
        return self

    # -- lookups -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word) -> bool:
        return word in self._index

    def __eq__(self, other) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return self.to_config() == other.to_config()

    __hash__ = None  # mutable (fit)

    def __repr__(self) -> str:
        return (
            f"Vocabulary(size={len(self)}, min_count={self.min_count}, "
            f"max_size={self.max_size}, merged={self.n_merged})"
        )

    def index(self, word: str) -> int:
        """Id of ``word`` (``unk_id`` when it is not in the vocabulary)."""
        return self._index.get(word, UNK_ID)

    def encode(self, tokens: Iterable[str], *, strict: bool = False) -> np.ndarray:
        """Map tokens to ids.

        Parameters
        ----------
        tokens : iterable of str
        strict : bool, default False
            Unknown tokens encode as ``unk_id`` (0); with ``strict=True`` they raise instead.

        Returns
        -------
        numpy.ndarray of int32, shape (len(tokens),)

        Raises
        ------
        ValueError
            ``strict=True`` and some tokens are not in the vocabulary (the first few are named).
        """
        toks = _check_tokens(tokens)
        get = self._index.get
        ids = np.fromiter((get(t, -1) for t in toks), dtype=np.int32, count=len(toks))
        unknown = ids < 0
        if unknown.any():
            if strict:
                bad = list(dict.fromkeys(t for t, u in zip(toks, unknown, strict=True) if u))
                more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
                raise ValueError(
                    f"{len(bad)} unknown token(s) {bad[:5]!r}{more}: expected words of the "
                    f"vocabulary ({len(self)} entries)"
                )
            ids[unknown] = UNK_ID
        return ids

    def decode(self, ids) -> list[str]:
        """Map ids back to tokens.

        Parameters
        ----------
        ids : array_like of int, shape (k,)

        Returns
        -------
        list of str

        Raises
        ------
        TypeError
            ``ids`` are not integers.
        ValueError
            An id is outside ``[0, len(vocab))``.
        """
        arr = check_ids(ids, len(self), name="ids", allow_empty=True)
        words = self.words
        return [words[i] for i in arr.tolist()]

    # -- model files ---------------------------------------------------------------------------
    def to_config(self) -> dict:
        """A JSON-able description: settings, the word list (in id order) and the counts."""
        return {
            "min_count": self.min_count,
            "max_size": self.max_size,
            "unk": self.unk,
            "bos": self.bos,
            "eos": self.eos,
            "words": list(self.words),
            "counts": [int(c) for c in self.counts],
            "n_merged": int(self.n_merged),
        }

    @classmethod
    def from_config(cls, config: dict) -> Vocabulary:
        """Rebuild a vocabulary from :meth:`to_config`'s dict (e.g. read from a model file).

        Raises
        ------
        ValueError
            Missing keys, a word list that does not start with ``unk, bos, eos``, duplicates, or
            counts of the wrong length.
        """
        if not isinstance(config, dict):
            raise TypeError(f"config is a {type(config).__name__}: expected a dict")
        missing = [
            k for k in ("min_count", "max_size", "unk", "bos", "eos", "words") if k not in config
        ]
        if missing:
            raise ValueError(f"vocabulary config lacks {missing}: expected Vocabulary.to_config()")
        v = cls(
            config["min_count"],
            config["max_size"],
            unk=config["unk"],
            bos=config["bos"],
            eos=config["eos"],
        )
        words = _check_tokens(config["words"], "config['words']")
        if words[:3] != [v.unk, v.bos, v.eos]:
            raise ValueError(
                f"config['words'] starts {words[:3]!r}: expected {[v.unk, v.bos, v.eos]!r}"
            )
        if len(set(words)) != len(words):
            raise ValueError("config['words'] has duplicate entries: expected distinct words")
        counts = config.get("counts")
        if counts is None:
            counts = [0] * len(words)
        if len(counts) != len(words):
            raise ValueError(
                f"config['counts'] has {len(counts)} entries: expected {len(words)} (one per word)"
            )
        v.words = words
        v.counts = np.asarray(counts, dtype=np.int64)
        v.n_merged = int(config.get("n_merged", 0))
        v._index = {w: i for i, w in enumerate(words)}
        v._fitted = True
        return v


# ---------------------------------------------------------------------------------------------
# The paper's data in one call
# ---------------------------------------------------------------------------------------------


class LMData(NamedTuple):
    """A vocabulary and the encoded train / validation / test streams (int32, ``</s>`` = 2)."""

    vocab: Vocabulary
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray


def load_brown_lm(
    path=None,
    *,
    lower: bool = False,
    min_count: int = 4,
    max_size: int | None = None,
    train_words: int = 800_000,
    valid_words: int = 200_000,
) -> LMData:
    """Brown prepared as in Bengio et al. (2003): split, vocabulary from train, encoded streams.

    :func:`load_brown` -> :func:`brown_splits` -> ``Vocabulary(min_count).fit(train)`` ->
    ``encode`` each split. With the defaults (case kept, words seen <= 3 times in the training
    part merged into ``<unk>``) the vocabulary has 14,116 entries on NLTK's file (paper: 16,383).

    Parameters
    ----------
    path : str or os.PathLike, optional
        See :func:`find_brown`.
    lower : bool, default False
    min_count : int, default 4
    max_size : int or None, default None
    train_words, valid_words : int, default 800_000 and 200_000

    Returns
    -------
    LMData
        ``(vocab, train, valid, test)``; the streams are int32 arrays.

    Examples
    --------
    >>> data = load_brown_lm()  # doctest: +SKIP
    >>> len(data.vocab), data.train.shape  # doctest: +SKIP
    (14116, (835524,))
    """
    sents = load_brown(path, lower=lower)
    sp = brown_splits(sents, train_words=train_words, valid_words=valid_words)
    vocab = Vocabulary(min_count, max_size).fit(sp.train)
    return LMData(vocab, vocab.encode(sp.train), vocab.encode(sp.valid), vocab.encode(sp.test))


# ---------------------------------------------------------------------------------------------
# n-gram windows
# ---------------------------------------------------------------------------------------------


def check_ids(
    ids, vocab_size: int | None = None, *, name: str = "ids", allow_empty: bool = False
) -> np.ndarray:
    """Return ``ids`` as a 1-D int32 array after checking it (integers in ``[0, vocab_size)``).

    Raises
    ------
    TypeError
        Not integers.
    ValueError
        Not 1-D, empty (unless ``allow_empty``), negative or ``>= vocab_size``.
    """
    arr = np.asarray(ids)
    if arr.size == 0 and arr.ndim == 1:
        if allow_empty:
            return arr.astype(np.int32)
        raise ValueError(f"{name} is empty: expected at least one token id")
    if arr.dtype == object or arr.dtype.kind not in "iu":
        raise TypeError(f"{name} has dtype {arr.dtype}: expected integer token ids")
    if arr.ndim != 1:
        raise ValueError(f"{name} has shape {arr.shape}: expected a 1-D stream of token ids")
    lo = int(arr.min())
    hi = int(arr.max())
    if lo < 0:
        raise ValueError(f"{name} contains the id {lo}: expected ids >= 0")
    if vocab_size is not None and hi >= vocab_size:
        raise ValueError(
            f"{name} contains the id {hi}: expected ids < {vocab_size} (the vocabulary size)"
        )
    if hi > np.iinfo(np.int32).max:
        raise ValueError(f"{name} contains the id {hi}: expected ids that fit in int32")
    return arr.astype(np.int32, copy=False)


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise TypeError(f"n={n!r}: expected an int >= 1 (the n of the n-grams)")
    if n < 1:
        raise ValueError(f"n={n!r}: expected an int >= 1 (the n of the n-grams)")
    return int(n)


def _padded(ids, n: int, bos_id: int, eos_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stream with ``n - 1`` bos before every sentence, its n-windows and their rows.

    Returns ``(ids, windows, rows)``: ``windows[rows[i]]`` is ``(context of ids[i], ids[i])``.
    """
    ids = check_ids(ids)
    bad = np.flatnonzero(ids == bos_id)
    if bad.size:
        raise ValueError(
            f"the stream contains the start id {bos_id} at position {int(bad[0])}: expected "
            "<s> only as padding, never inside a stream"
        )
    N = len(ids)
    ends = np.flatnonzero(ids == eos_id)
    starts = np.concatenate(([0], ends + 1))
    starts = starts[starts < N]
    padded = np.insert(ids, np.repeat(starts, n - 1), np.int32(bos_id))
    windows = sliding_window_view(padded, n)
    # Sentence number of each token = number of eos strictly before it; the window that ends on
    # token i starts at i + (n - 1) * sentence(i) in the padded stream.
    sent = np.zeros(N, dtype=np.int64)
    sent[ends[ends + 1 < N] + 1] = 1
    rows = np.arange(N, dtype=np.int64) + (n - 1) * np.cumsum(sent)
    return ids, windows, rows


def ngram_arrays(
    ids, n: int, *, bos_id: int = BOS_ID, eos_id: int = EOS_ID
) -> tuple[np.ndarray, np.ndarray]:
    """All (context, target) pairs of a stream, for evaluation (see the module's boundary rule).

    Row ``i`` predicts ``ids[i]`` from the ``n - 1`` tokens before it in its sentence, padded on
    the left with ``bos_id``. The windows are cut from one padded copy of the stream with
    ``sliding_window_view`` (no Python loop); the contexts are one int32 array of
    ``len(ids) * (n - 1)`` entries (Brown's 171k test tokens and n = 5: 2.7 MB), the targets are the
    stream itself (no copy when it is already int32). Never one-hot.

    Parameters
    ----------
    ids : array_like of int, shape (N,)
        An encoded stream (``eos_id`` after every sentence; no ``bos_id`` inside).
    n : int
        Order: contexts of ``n - 1`` tokens (n = 1 gives an empty context).
    bos_id, eos_id : int, default 1 and 2
        The ids of ``<s>`` and ``</s>`` (those of :class:`Vocabulary`).

    Returns
    -------
    contexts : numpy.ndarray of int32, shape (N, n - 1)
    targets : numpy.ndarray of int32, shape (N,)

    Raises
    ------
    ValueError
        Empty stream, negative ids, or ``bos_id`` inside the stream.

    Examples
    --------
    >>> C, t = ngram_arrays([5, 6, 2, 7, 2], 3)
    >>> C.tolist()
    [[1, 1], [1, 5], [5, 6], [1, 1], [1, 7]]
    >>> t.tolist()
    [5, 6, 2, 7, 2]
    """
    n = _check_n(n)
    ids, windows, rows = _padded(ids, n, bos_id, eos_id)
    contexts = windows[rows, : n - 1]
    return np.ascontiguousarray(contexts, dtype=np.int32), ids


def ngram_windows(
    ids,
    n: int,
    *,
    batch_size: int = 256,
    rng: np.random.Generator | None = None,
    drop_last: bool = False,
    bos_id: int = BOS_ID,
    eos_id: int = EOS_ID,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Mini-batches of (context, target) index arrays, produced lazily, for training.

    Same windows as :func:`ngram_arrays` (so the same boundary rule), but only one batch of
    contexts exists at a time: each batch is gathered from a strided view of the padded stream.
    With ``rng`` the order of the windows is a fresh permutation drawn from that Generator (one
    epoch = one pass of the returned iterator); without it the stream order is kept.

    Parameters
    ----------
    ids : array_like of int, shape (N,)
    n : int
    batch_size : int, default 256
    rng : numpy.random.Generator or None, default None
        Shuffle with this Generator.
    drop_last : bool, default False
        Skip a last, smaller batch.
    bos_id, eos_id : int, default 1 and 2

    Yields
    ------
    contexts : numpy.ndarray of int32, shape (batch, n - 1)
    targets : numpy.ndarray of int32, shape (batch,)

    Examples
    --------
    >>> batches = ngram_windows([5, 6, 2], 2, batch_size=2)
    >>> [(c.tolist(), t.tolist()) for c, t in batches]
    [([[1], [5]], [5, 6]), ([[6]], [2])]
    """
    n = _check_n(n)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
        raise TypeError(f"batch_size={batch_size!r}: expected a positive int")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}: expected a positive int")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng is a {type(rng).__name__}: expected numpy.random.Generator or None "
            "(np.random.default_rng(seed))"
        )
    ids, windows, rows = _padded(ids, n, bos_id, eos_id)
    return _batches(windows, rows, n, int(batch_size), rng, drop_last)


def _batches(windows, rows, n, batch_size, rng, drop_last):
    order = rows if rng is None else rows[rng.permutation(len(rows))]
    stop = len(order) - (len(order) % batch_size if drop_last else 0)
    for s in range(0, stop, batch_size):
        w = windows[order[s : s + batch_size]]  # (batch, n) int32 copy of this batch only
        yield np.ascontiguousarray(w[:, : n - 1]), np.ascontiguousarray(w[:, n - 1])


def context_window(history, n: int, *, bos_id: int = BOS_ID, eos_id: int = EOS_ID) -> np.ndarray:
    """The context that the boundary rule gives for the token following ``history``.

    Only the tokens after the last ``eos_id`` count (a new sentence starts there); of those the
    last ``n - 1`` are kept (a longer history is cut: an n-gram model sees ``n - 1`` words) and a
    shorter one is padded on the left with ``bos_id`` (the beginning of a sentence). Use it for
    prompts and generation so that they see exactly what training saw.

    Parameters
    ----------
    history : array_like of int, shape (k,)
        Encoded tokens, possibly empty.
    n : int

    Returns
    -------
    numpy.ndarray of int32, shape (n - 1,)

    Examples
    --------
    >>> context_window([5, 6, 2, 7], 4).tolist()
    [1, 1, 7]
    >>> context_window([5, 6, 7, 8], 3).tolist()
    [7, 8]
    """
    n = _check_n(n)
    h = check_ids(history, name="history", allow_empty=True)
    ends = np.flatnonzero(h == eos_id)
    if ends.size:
        h = h[ends[-1] + 1 :]
    h = h[max(len(h) - (n - 1), 0) :] if n > 1 else h[:0]
    out = np.full(n - 1, bos_id, dtype=np.int32)
    if len(h):
        out[n - 1 - len(h) :] = h
    return out
