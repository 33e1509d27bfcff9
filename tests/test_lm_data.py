"""Tests of backprop.lm_data: corpus loading, splits, vocabulary and n-gram windows."""

from __future__ import annotations

import doctest
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import backprop.lm_data as lm_data
from backprop.lm_data import (
    BOS_ID,
    EOS_ID,
    UNK_ID,
    Vocabulary,
    brown_splits,
    context_window,
    find_brown,
    load_brown,
    load_brown_lm,
    load_text,
    ngram_arrays,
    ngram_windows,
    sentences_to_stream,
    tokenize,
)

BROWN = Path(__file__).resolve().parents[2] / "shared" / "data" / "brown" / "brown.zip"
needs_brown = pytest.mark.skipif(not BROWN.is_file(), reason="Brown corpus not available")


def test_docstring_examples():
    assert doctest.testmod(lm_data).failed == 0


# -- Brown -----------------------------------------------------------------------------------


def _fake_brown(path: Path) -> Path:
    """A tiny zip in NLTK's layout, with files stored out of order and odd tokens."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("brown/README", "not a corpus file")
        z.writestr("brown/cb01", "\n\n\tSecond/at file/nn ./.\n")
        z.writestr(
            "brown/ca01",
            "\n\n\tThe/at Jury/nn-tl said/vbd 1/2/cd ./.\n\n\n\tIt/pps ran/vbd ./.\n\n",
        )
        z.writestr("brown/cats.txt", "ca01 news\n")
    return path


def test_load_brown_reads_files_in_name_order_and_strips_tags(tmp_path):
    z = _fake_brown(tmp_path / "brown.zip")
    assert load_brown(z) == [
        ["The", "Jury", "said", "1/2", "."],
        ["It", "ran", "."],
        ["Second", "file", "."],
    ]
    assert load_brown(z, lower=True)[0] == ["the", "jury", "said", "1/2", "."]


def test_load_brown_search_order(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "nltk_data" / "corpora").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("NLTK_DATA", raising=False)
    monkeypatch.delenv("BACKPROP_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="nltk.download"):
        find_brown()
    # NLTK's usual place
    nltk_zip = _fake_brown(home / "nltk_data" / "corpora" / "brown.zip")
    assert find_brown() == nltk_zip
    # $BACKPROP_DATA wins over NLTK; a folder holding brown/brown.zip is accepted
    (tmp_path / "data" / "brown").mkdir(parents=True)
    data_zip = _fake_brown(tmp_path / "data" / "brown" / "brown.zip")
    monkeypatch.setenv("BACKPROP_DATA", str(tmp_path / "data"))
    assert find_brown() == data_zip
    # an explicit path wins over everything, and only it is searched
    assert find_brown(nltk_zip) == nltk_zip
    with pytest.raises(FileNotFoundError, match="nowhere"):
        find_brown(tmp_path / "nowhere")


def test_load_brown_unzipped_folder(tmp_path):
    folder = tmp_path / "brown"
    folder.mkdir()
    (folder / "ca02").write_text("\tB/nn ./.\n")
    (folder / "ca01").write_text("\tA/nn ./.\n")
    (folder / "README").write_text("x")
    assert load_brown(tmp_path) == [["A", "."], ["B", "."]]


def test_load_brown_bad_files(tmp_path):
    bad = tmp_path / "brown.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("brown/ca01", "\tgood/nn untagged ./.\n")
    with pytest.raises(ValueError, match=r"line 1: token 'untagged' is not word/TAG"):
        load_brown(bad)
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("brown/README", "x")
    with pytest.raises(ValueError, match="holds no Brown corpus files"):
        load_brown(empty)
    notzip = tmp_path / "not.zip"
    notzip.write_bytes(b"plain text, not a zip")
    with pytest.raises(ValueError, match="not a zip file"):
        load_brown(notzip)


@needs_brown
def test_brown_counts_split_and_paper_vocabulary():
    sents = load_brown(BROWN)
    assert len(sents) == 57_340
    assert sum(map(len, sents)) == 1_161_192
    assert sents[0][:5] == ["The", "Fulton", "County", "Grand", "Jury"]
    sp = brown_splits(sents)
    assert sp.sentences == (35_523, 11_689, 10_128)
    words = [len(s) - s.count("</s>") for s in sp[:3]]
    assert words == [800_001, 199_997, 161_194]
    assert [s.count("</s>") for s in sp[:3]] == list(sp.sentences)
    v = Vocabulary(min_count=4).fit(sp.train)
    assert len(v) == 14_116
    assert v.words[3] == "the"  # the most frequent word (case kept: "The" is separate)
    assert "The" in v
    # every kept word was seen >= 4 times in train; the rest went to <unk>
    assert v.counts[3:].min() >= 4
    assert v.counts.sum() == len(sp.train)


@needs_brown
def test_load_brown_lm_streams():
    data = load_brown_lm(BROWN)
    assert len(data.vocab) == 14_116
    for s, n_sent in zip(data[1:], (35_523, 11_689, 10_128), strict=True):
        assert s.dtype == np.int32 and s.ndim == 1
        assert (s == EOS_ID).sum() == n_sent and s[-1] == EOS_ID
        assert not (s == BOS_ID).any()
    assert 0.05 < (data.test == UNK_ID).mean() < 0.15  # rare and unseen words


# -- plain text ------------------------------------------------------------------------------


def test_tokenize():
    assert tokenize('He said: "Don\'t!" It costs $3.50 -- well-known.') == [
        "He", "said", ":", '"', "Don't", "!", '"', "It", "costs", "$", "3.50", "-", "-",
        "well-known", ".",
    ]  # fmt: skip
    assert tokenize("Wait... OK", lower=True) == ["wait", "...", "ok"]
    with pytest.raises(TypeError, match="expected str"):
        tokenize(b"bytes")


def test_load_text_modes(tmp_path):
    f = tmp_path / "c.txt"
    f.write_text("\ufeffThe cat sat.\n\n  A dog ran .  \nNo end mark\n", encoding="utf-8")
    # BOM dropped, blank lines skipped, one sentence per line
    assert load_text(f) == [
        ["The", "cat", "sat", "."],
        ["A", "dog", "ran", "."],
        ["No", "end", "mark"],
    ]
    assert load_text(f, lower=True)[0] == ["the", "cat", "sat", "."]
    # a long line (a paragraph) is cut at sentence ends in "auto", kept whole in "lines"
    para = tmp_path / "p.txt"
    para.write_text('One two. "Three four?" Five six! Seven\n', encoding="utf-8")
    assert load_text(para, max_line_tokens=5) == [
        ["One", "two", "."],
        ['"', "Three", "four", "?", '"'],
        ["Five", "six", "!"],
        ["Seven"],
    ]
    assert len(load_text(para, split="lines", max_line_tokens=5)) == 1
    assert len(load_text(para)) == 1  # short line: kept as one sentence
    # running text: line breaks inside a paragraph ignored, blank lines end sentences
    wrapped = tmp_path / "w.txt"
    wrapped.write_text("It was a dark\nand stormy night. The\nend\n\nNew para\n", encoding="utf-8")
    assert load_text(wrapped, split="punct") == [
        ["It", "was", "a", "dark", "and", "stormy", "night", "."],
        ["The", "end"],
        ["New", "para"],
    ]


def test_load_text_rejects_bad_files(tmp_path):
    cases = {
        "empty.txt": (b"", "is empty"),
        "blank.txt": (b"  \n\t\n", "holds no words"),
        "nul.bin": (b"abc\x00def", "NUL byte at offset 3"),
        "latin1.txt": ("caf\u00e9".encode("latin-1"), "not UTF-8 text .*offset 3"),
    }
    for name, (data, msg) in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(ValueError, match=msg) as info:
            load_text(p)
        assert "\n" not in str(info.value)
    ok = tmp_path / "ok.txt"
    ok.write_text("a b\n")
    with pytest.raises(ValueError, match="split='words'"):
        load_text(ok, split="words")
    with pytest.raises(ValueError, match="max_line_tokens=0"):
        load_text(ok, max_line_tokens=0)


# -- splits ----------------------------------------------------------------------------------


def test_brown_splits_nearest_sentence_boundary():
    sents = [["w"] * k for k in (3, 3, 3, 3, 2)]  # cumulative 3, 6, 9, 12, 14
    sp = brown_splits(sents, train_words=5, valid_words=5)
    # 5 is nearer 6 (2 sentences) than 3; 5 + 5 = 10 is nearer 9 (3 sentences) than 12
    assert sp.sentences == (2, 1, 2)
    assert sp.train == ["w"] * 3 + ["</s>"] + ["w"] * 3 + ["</s>"]
    assert sp.test == ["w"] * 3 + ["</s>"] + ["w"] * 2 + ["</s>"]
    # the tie 3 vs 6 around 4.5 goes to the earlier boundary
    assert brown_splits(sents, train_words=4, valid_words=1).sentences[0] == 1
    # every part gets at least one sentence
    assert brown_splits(sents, train_words=1, valid_words=1).sentences == (1, 1, 3)
    with pytest.raises(ValueError, match="leave a test part"):
        brown_splits(sents, train_words=10, valid_words=4)
    with pytest.raises(ValueError, match="at least 3"):
        brown_splits([["a"], ["b"]])


def test_brown_splits_leaves_a_test_part_whenever_the_counts_leave_words_for_one():
    # 14 words, 11 + 2 asked: the nearest boundaries (12 and 14 words) left no test part and
    # the error said "the corpus has 14 words: expected more than ... 13", which it has.
    sents = [["w"] * k for k in (3, 3, 3, 3, 2)]  # cumulative 3, 6, 9, 12, 14
    sp = brown_splits(sents, train_words=11, valid_words=2)
    assert sp.sentences == (3, 1, 1)
    assert sp.test == ["w"] * 2 + ["</s>"]
    # a few long sentences, as a small text file gives
    sp = brown_splits([["w"] * 2] * 4, train_words=6, valid_words=1)
    assert sp.sentences == (2, 1, 1)
    with pytest.raises(ValueError, match="train_words=0"):
        brown_splits(sents, train_words=0)


def test_sentences_to_stream():
    assert sentences_to_stream([["a"], [], ["b", "c"]], eos="EOS") == [
        "a", "EOS", "EOS", "b", "c", "EOS",
    ]  # fmt: skip
    with pytest.raises(TypeError, match="is a str"):
        sentences_to_stream(["a b"])


# -- vocabulary ------------------------------------------------------------------------------


def test_vocabulary_min_count_ties_and_unknowns():
    toks = "b a c b a d </s> b a c e </s>".split()  # a:3 b:3 c:2 d:1 e:1 </s>:2
    v = Vocabulary(min_count=2).fit(toks)
    assert v.words == ["<unk>", "<s>", "</s>", "a", "b", "c"]  # a/b tie: code-point order
    assert v.counts.tolist() == [2, 0, 2, 3, 3, 2]  # d and e merged into <unk>
    assert v.n_merged == 2
    assert len(v) == 6 and "c" in v and "d" not in v
    ids = v.encode(["a", "d", "zz", "</s>", "<unk>"])
    assert ids.dtype == np.int32
    assert ids.tolist() == [3, UNK_ID, UNK_ID, EOS_ID, UNK_ID]
    assert v.decode(ids) == ["a", "<unk>", "<unk>", "</s>", "<unk>"]
    assert v.decode(np.array([], dtype=np.int64)) == []
    assert v.index("c") == 5 and v.index("nope") == UNK_ID
    with pytest.raises(ValueError, match=r"2 unknown token\(s\) \['d', 'zz'\]"):
        v.encode(["a", "d", "zz", "d"], strict=True)


def test_vocabulary_max_size_and_specials():
    toks = list("aaaabbbccd")
    v = Vocabulary(max_size=5).fit(toks)
    assert v.words == ["<unk>", "<s>", "</s>", "a", "b"]
    assert v.counts[0] == 3  # c, c, d
    v2 = Vocabulary(unk="UNK", bos="BOS", eos="EOS").fit(["x", "EOS", "BOS", "UNK", "y"])
    assert v2.words == ["UNK", "BOS", "EOS", "x", "y"]
    assert v2.counts.tolist() == [1, 0, 1, 1, 1]


def test_vocabulary_errors():
    with pytest.raises(ValueError, match="min_count=0"):
        Vocabulary(min_count=0)
    with pytest.raises(TypeError, match="min_count=2.5"):
        Vocabulary(min_count=2.5)
    with pytest.raises(ValueError, match="max_size=2"):
        Vocabulary(max_size=2)
    with pytest.raises(ValueError, match="three different"):
        Vocabulary(unk="x", bos="x")
    v = Vocabulary()
    with pytest.raises(ValueError, match="empty"):
        v.fit([])
    with pytest.raises(TypeError, match="is a str"):
        v.fit("a b c")
    with pytest.raises(TypeError, match=r"tokens\[1\] = 3"):
        v.fit(["a", 3])
    v.fit(["a", "b"])
    with pytest.raises(ValueError, match="contains the id 5: expected ids < 5"):
        v.decode([0, 5])
    with pytest.raises(ValueError, match="contains the id -1"):
        v.decode([-1])
    with pytest.raises(TypeError, match="expected integer token ids"):
        v.decode([0.5])


def test_vocabulary_config_round_trip():
    v = Vocabulary(min_count=2, max_size=10).fit("x y x z y x </s>".split())
    cfg = json.loads(json.dumps(v.to_config()))
    w = Vocabulary.from_config(cfg)
    assert w == v and w.words == v.words and w.counts.tolist() == v.counts.tolist()
    assert (w.min_count, w.max_size, w.n_merged) == (2, 10, 1)
    assert w.encode(["x", "z"]).tolist() == v.encode(["x", "z"]).tolist()
    bad = dict(cfg, words=["x"] + cfg["words"][1:])
    with pytest.raises(ValueError, match="starts"):
        Vocabulary.from_config(bad)
    with pytest.raises(ValueError, match="duplicate"):
        Vocabulary.from_config(dict(cfg, words=cfg["words"] + ["x"], counts=None))
    with pytest.raises(ValueError, match="lacks"):
        Vocabulary.from_config({"words": cfg["words"]})
    with pytest.raises(ValueError, match="counts"):
        Vocabulary.from_config(dict(cfg, counts=[1]))


# -- windows ---------------------------------------------------------------------------------


def _naive_windows(ids, n):
    """Per-token loop: context = previous n-1 tokens of the same sentence, <s>-padded."""
    rows, sent = [], []
    for t in ids:
        ctx = [BOS_ID] * (n - 1) + sent
        rows.append((ctx[len(ctx) - (n - 1) :] if n > 1 else [], t))
        sent = [] if t == EOS_ID else sent + [t]
    return rows


def test_ngram_arrays_boundary_rule():
    # sentences "5 6" and "7"; the stream need not end with </s>
    C, t = ngram_arrays([5, 6, 2, 7, 2, 8], 3)
    assert C.tolist() == [[1, 1], [1, 5], [5, 6], [1, 1], [1, 7], [1, 1]]
    assert t.tolist() == [5, 6, 2, 7, 2, 8]
    assert C.dtype == np.int32 and t.dtype == np.int32 and C.flags.c_contiguous
    C1, t1 = ngram_arrays([5, 2], 1)
    assert C1.shape == (2, 0) and t1.tolist() == [5, 2]
    # an empty sentence (</s> right after </s>) is predicted from a fresh context
    assert ngram_arrays([2, 2, 4], 2)[0].tolist() == [[1], [1], [1]]


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_ngram_arrays_match_naive_loop(n):
    rng = np.random.default_rng(0)
    ids = rng.integers(2, 9, size=400).astype(np.int32)  # id 2 = </s> about 1 in 7
    C, t = ngram_arrays(ids, n)
    expect = _naive_windows(ids.tolist(), n)
    assert C.tolist() == [list(c) for c, _ in expect]
    assert t.tolist() == [w for _, w in expect]


def test_ngram_arrays_errors():
    with pytest.raises(ValueError, match="start id 1 at position 2"):
        ngram_arrays([5, 6, 1, 7], 3)
    with pytest.raises(ValueError, match="empty"):
        ngram_arrays([], 3)
    with pytest.raises(ValueError, match="n=0"):
        ngram_arrays([5], 0)
    with pytest.raises(TypeError, match="expected integer token ids"):
        ngram_arrays(["a", "b"], 2)
    with pytest.raises(ValueError, match="shape"):
        ngram_arrays([[5, 6]], 2)


def test_ngram_windows_batches_cover_the_arrays():
    rng = np.random.default_rng(1)
    ids = rng.integers(2, 30, size=1003).astype(np.int32)
    C, t = ngram_arrays(ids, 4)
    batches = list(ngram_windows(ids, 4, batch_size=100))
    assert [len(b[1]) for b in batches] == [100] * 10 + [3]
    assert all(c.dtype == np.int32 and c.shape[1] == 3 for c, _ in batches)
    np.testing.assert_array_equal(np.concatenate([c for c, _ in batches]), C)
    np.testing.assert_array_equal(np.concatenate([w for _, w in batches]), t)
    assert len(list(ngram_windows(ids, 4, batch_size=100, drop_last=True))) == 10

    # shuffled: the same windows in another order, reproducible from the seed
    def rows(seed):
        bs = ngram_windows(ids, 4, batch_size=64, rng=np.random.default_rng(seed))
        return np.concatenate([np.column_stack(b) for b in bs])

    a, b, c = rows(7), rows(7), rows(8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    full = np.column_stack([C, t])
    assert not np.array_equal(a, full)
    np.testing.assert_array_equal(np.unique(a, axis=0), np.unique(full, axis=0))
    assert sorted(map(tuple, a.tolist())) == sorted(map(tuple, full.tolist()))


def test_ngram_windows_is_lazy_and_checks_eagerly():
    it = ngram_windows(np.arange(2, 50, dtype=np.int32), 3, batch_size=8)
    assert iter(it) is it
    c, w = next(it)
    assert c.shape == (8, 2) and w.tolist() == list(range(2, 10))
    with pytest.raises(ValueError, match="batch_size=0"):
        ngram_windows([5, 6], 2, batch_size=0)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        ngram_windows([5, 6], 2, rng=42)
    with pytest.raises(ValueError, match="start id"):
        ngram_windows([5, 1], 2)


def test_context_window():
    assert context_window([5, 6, 2, 7], 4).tolist() == [1, 1, 7]  # after </s>: new sentence
    assert context_window([5, 6, 7, 8], 3).tolist() == [7, 8]  # longer: cut
    assert context_window([], 3).tolist() == [1, 1]  # empty: start of a sentence
    assert context_window([5, 2], 3).tolist() == [1, 1]
    assert context_window([5, 6], 1).shape == (0,)
    assert context_window(np.array([9], dtype=np.int64), 2).dtype == np.int32
    # the rule agrees with the training windows
    ids = [5, 6, 2, 7, 8, 9, 2, 4]
    C, _ = ngram_arrays(ids, 3)
    for i in range(len(ids)):
        assert context_window(ids[:i], 3).tolist() == C[i].tolist()
