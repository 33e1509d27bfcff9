"""Tests of backprop.lm (the neural language model) and backprop.cli_lm (``backprop lm ...``)."""

from __future__ import annotations

import doctest
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import backprop.lm as lm_mod
from backprop import gradcheck
from backprop.callbacks import TrainingDiverged
from backprop.io import ModelFileError, read_metadata
from backprop.io import load as io_load
from backprop.io import save as io_save
from backprop.layers import MLP
from backprop.lm import (
    NeuralLM,
    analogy,
    expected_shapes,
    generate,
    load_checkpoint,
    load_lm,
    mix_log_probs,
    mixture_weight,
    nearest_words,
    perplexity_from_log_probs,
    save_lm,
    softmax_xent,
    train_lm,
)
from backprop.lm_data import (
    BOS_ID,
    EOS_ID,
    UNK_ID,
    Vocabulary,
    brown_splits,
    load_brown,
    ngram_arrays,
    sentences_to_stream,
)

REPO = Path(__file__).resolve().parents[1]
BROWN = REPO.parent / "shared" / "data" / "brown" / "brown.zip"
needs_brown = pytest.mark.skipif(not BROWN.is_file(), reason="Brown corpus not available")


def test_docstring_examples():
    assert doctest.testmod(lm_mod).failed == 0


# -- a tiny corpus with structure ------------------------------------------------------------


def _toy_sentences(n: int, seed: int = 0) -> list[list[str]]:
    """Sentences of a small grammar: 'the ADJ NOUN VERB the NOUN .' with agreement-like
    dependencies, so a 3-gram model can learn much more than the unigram distribution."""
    rng = np.random.default_rng(seed)
    nouns = ["cat", "dog", "bird", "fish", "cow", "fox"]
    verbs = {"cat": "sees", "dog": "eats", "bird": "sings", "fish": "swims", "cow": "moos",
             "fox": "runs"}  # fmt: skip
    adjs = ["big", "small", "red", "old"]
    out = []
    for _ in range(n):
        a, b = rng.choice(nouns, 2)
        out.append(["the", str(rng.choice(adjs)), a, verbs[a], "the", b, "."])
    return out


def _toy_data(n_train=300, n_valid=60):
    sents = _toy_sentences(n_train + n_valid)
    train = sentences_to_stream(sents[:n_train])
    valid = sentences_to_stream(sents[n_train:])
    vocab = Vocabulary().fit(train)
    return vocab, vocab.encode(train), vocab.encode(valid)


def _naive_log_proba(model: NeuralLM, C: np.ndarray) -> np.ndarray:
    """The paper's formula written out in float64: y = b + W x + U tanh(d + H x)."""
    p = {k: v.astype(np.float64) for k, v in model.params.items()}
    x = p["E"][C].reshape(len(C), -1)
    y = np.tile(p["b"], (len(C), 1))
    if "W" in p:
        y += x @ p["W"].T
    if "H" in p:
        y += np.tanh(x @ p["H"].T + p["d"]) @ p["U"].T
    y -= y.max(axis=1, keepdims=True)
    return y - np.log(np.exp(y).sum(axis=1, keepdims=True))


# -- the model -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hidden,direct",
    [(6, True), (6, False), (0, True)],
    ids=["direct", "hidden-only", "direct-only"],
)
def test_scores_follow_the_papers_formula(hidden, direct, rng):
    lm = NeuralLM(17, order=4, dim=3, hidden=hidden, direct=direct, dtype="float64", seed=1)
    lm.params["b"] = rng.normal(size=17)
    C = rng.integers(0, 17, size=(9, 3))
    np.testing.assert_allclose(lm.log_proba(C), _naive_log_proba(lm, C), atol=1e-12)
    t = rng.integers(0, 17, size=9)
    expected = _naive_log_proba(lm, C)[np.arange(9), t]
    np.testing.assert_allclose(lm.log_prob(C, t, batch_size=4), expected, atol=1e-12)


@pytest.mark.parametrize(
    "hidden,direct",
    [(5, True), (5, False), (0, True)],
    ids=["direct", "hidden-only", "direct-only"],
)
def test_gradient_check_with_repeated_words(hidden, direct, rng):
    lm = NeuralLM(13, order=4, dim=3, hidden=hidden, direct=direct, dtype="float64", seed=2)
    lm.params["b"] = rng.normal(size=13)
    # Repeated words in one context, the same context twice, a word used as both context and
    # target, and the special ids: every case adds several rows into one row of dE.
    C = np.array([[1, 1, 3], [3, 3, 3], [5, 3, 7], [12, 0, 3], [3, 5, 5], [3, 3, 3]])
    t = np.array([3, 3, 2, 12, 5, 4])
    worst, details = gradcheck(lm, C, t, h=1e-6, floor=1e-4, return_details=True)
    assert worst < 1e-4
    for name, (analytic, numeric) in details.items():
        np.testing.assert_allclose(analytic, numeric, atol=1e-8, err_msg=name)
    dE = details["E"][0]
    assert abs(dE[3]).sum() > 0 and np.all(dE[[2, 4, 6, 8, 9, 10, 11]] == 0)  # unused words: 0


def test_embedding_gradient_is_the_sum_over_every_use_of_the_word():
    lm = NeuralLM(9, order=3, dim=2, hidden=4, dtype="float64", seed=3)
    C = np.array([[4, 4], [4, 1], [7, 4]])  # word 4 fills four of the six slots
    t = np.array([4, 4, 8])
    assert gradcheck(lm, C, t, l2=0.7, h=1e-6) < 1e-5
    p = lm.params

    def loss_of_x(x):  # the mean cross-entropy as a function of the looked-up inputs
        y = p["b"] + x @ p["W"].T + np.tanh(x @ p["H"].T + p["d"]) @ p["U"].T
        y = y - y.max(1, keepdims=True)
        logp = y - np.log(np.exp(y).sum(1, keepdims=True))
        return -logp[np.arange(3), t].mean()

    x0 = p["E"][C].reshape(3, 4)
    dx = np.zeros_like(x0)
    for idx in np.ndindex(x0.shape):
        xp, xm = x0.copy(), x0.copy()
        xp[idx] += 1e-6
        xm[idx] -= 1e-6
        dx[idx] = (loss_of_x(xp) - loss_of_x(xm)) / 2e-6
    slots = dx.reshape(3, 2, 2)  # (sample, context slot, dim)
    _, g = lm.loss_and_grad(C, t)
    uses_of_4 = slots[0, 0] + slots[0, 1] + slots[1, 0] + slots[2, 1]
    np.testing.assert_allclose(g["E"][4], uses_of_4, atol=1e-8)
    np.testing.assert_allclose(g["E"][1], slots[1, 1], atol=1e-8)
    np.testing.assert_allclose(g["E"][7], slots[2, 0], atol=1e-8)
    assert not g["E"][[0, 2, 3, 5, 6, 8]].any()


def test_params_are_views_of_the_flat_vectors():
    lm = NeuralLM(11, order=3, dim=2, hidden=3, seed=0)
    assert sum(v.size for v in lm.params.values()) == lm.flat_params.size == lm.n_params
    for k, v in lm.params.items():
        assert np.shares_memory(v, lm.flat_params), k
        assert np.shares_memory(lm.grads[k], lm.flat_grads), k
    assert lm.params["U"].shape == (11, 3) and lm.params["W"].shape == (11, 4)
    before = lm.logits([[1, 5]])
    lm.params["U"][5, :] += 1.0  # editing a view edits the model
    assert not np.allclose(before, lm.logits([[1, 5]]))
    lm.flat_params[:] = 0.0
    np.testing.assert_array_equal(lm.logits([[1, 5]]), 0.0)
    assert lm.weight_keys == ["E", "H", "U", "W"]


def test_float32_is_kept_end_to_end():
    lm = NeuralLM(11, order=3, dim=2, hidden=3, seed=0)
    assert lm.logits([[1, 2]]).dtype == np.float32
    assert lm.log_proba([[1, 2]]).dtype == np.float32
    _, g = lm.loss_and_grad([[1, 2]], [3])
    assert all(v.dtype == np.float32 for v in g.values())
    lm64 = NeuralLM(11, order=3, dim=2, hidden=3, dtype="float64", seed=0)
    assert lm64.logits([[1, 2]]).dtype == np.float64


def test_same_seed_same_model_and_config_round_trip():
    a = NeuralLM(20, order=3, dim=4, hidden=5, dropout=0.2, seed=7)
    b = NeuralLM(20, order=3, dim=4, hidden=5, dropout=0.2, seed=7)
    np.testing.assert_array_equal(a.flat_params, b.flat_params)
    c = lm_mod.from_config(a.to_config())
    assert c.to_config() == a.to_config()
    assert expected_shapes(a.to_config())[1] == {k: v.shape for k, v in a.params.items()}


def test_threads_give_the_same_loss_and_gradient(monkeypatch, rng):
    lm = NeuralLM(300, order=3, dim=4, hidden=6, seed=0)
    C = rng.integers(0, 300, size=(200, 2))
    t = rng.integers(0, 300, size=200)
    monkeypatch.setattr(lm_mod, "N_THREADS", 1)
    l1, g1 = lm.loss_and_grad(C, t)
    lp1 = lm.log_prob(C, t)
    monkeypatch.setattr(lm_mod, "N_THREADS", 2)
    l2, g2 = lm.loss_and_grad(C, t)
    lp2 = lm.log_prob(C, t)
    assert l1 == pytest.approx(l2, rel=1e-6)
    for k in g1:
        np.testing.assert_allclose(g1[k], g2[k], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(lp1, lp2, rtol=1e-6)


def test_softmax_xent_matches_log_softmax_and_its_gradient(rng):
    Z = rng.normal(scale=5, size=(70, 40)).astype(np.float32)
    t = rng.integers(0, 40, size=70)
    ref = Z.astype(np.float64)
    ref = ref - ref.max(1, keepdims=True)
    logp = ref - np.log(np.exp(ref).sum(1, keepdims=True))
    W = Z.copy()
    nll = softmax_xent(W, t, scale=0.5)
    np.testing.assert_allclose(nll, -logp[np.arange(70), t], rtol=1e-5)
    expected = np.exp(logp)
    expected[np.arange(70), t] -= 1
    np.testing.assert_allclose(W, 0.5 * expected, atol=1e-6)
    big = np.array([[1000.0, 0.0, -1000.0]], dtype=np.float32)  # no overflow
    assert softmax_xent(big, np.array([0]))[0] == pytest.approx(0.0, abs=1e-6)


def test_bad_input_is_refused_with_clear_errors():
    lm = NeuralLM(10, order=3, dim=2, hidden=3, seed=0)
    with pytest.raises(ValueError, match=r"expected \(n, 2\)"):
        lm.logits([[1, 2, 3]])  # a context longer than the model's
    with pytest.raises(ValueError, match="word id 10"):
        lm.logits([[1, 10]])
    with pytest.raises(TypeError, match="integer word ids"):
        lm.logits([[1.0, 2.0]])
    with pytest.raises(ValueError, match="targets have shape"):
        lm.loss_and_grad([[1, 2]], [1, 2])
    with pytest.raises(ValueError, match="cross_entropy"):
        lm.loss_and_grad([[1, 2]], [1], loss="mse")
    with pytest.raises(ValueError, match="no path to the output"):
        NeuralLM(10, hidden=0, direct=False)
    with pytest.raises(ValueError, match="dropout"):
        NeuralLM(10, dropout=1.0)
    with pytest.raises(TypeError, match="order"):
        NeuralLM(10, order=2.5)
    with pytest.raises(ValueError, match="contains the id 12"):
        lm.perplexity([3, 12, 2])


# -- training --------------------------------------------------------------------------------


def _unigram_perplexity(train: np.ndarray, valid: np.ndarray, V: int) -> float:
    counts = np.bincount(train, minlength=V).astype(np.float64) + 1.0
    counts[BOS_ID] = 0.0
    p = counts / counts.sum()
    return float(np.exp(-np.log(p[valid]).mean()))


def test_training_on_a_toy_grammar_beats_the_unigram_model():
    vocab, train, valid = _toy_data()
    lm = NeuralLM(len(vocab), order=3, dim=8, hidden=16, seed=0)
    lm.init_output_bias(vocab.counts)
    uni = _unigram_perplexity(train, valid, len(vocab))
    zero = NeuralLM(len(vocab), order=3, dim=8, hidden=16, seed=0)
    zero.init_output_bias(vocab.counts)
    zero.params["U"], zero.params["W"] = 0.0 * zero.params["U"], 0.0 * zero.params["W"]
    # softmax(b) is the add-one unigram model (<s> aside, whose count is 0 + 1 here).
    assert zero.perplexity(valid) == pytest.approx(uni, rel=0.02)
    h = train_lm(lm, train, valid, epochs=8, batch_size=32, lr=0.01)
    final = lm.perplexity(valid)
    assert final == pytest.approx(math.exp(min(h.val_loss)), rel=1e-6)  # best weights kept
    assert final < 0.5 * uni
    assert h.best_epoch is not None and len(h.loss) == len(h.val_loss) == len(h.epoch_time)


@needs_brown
def test_brown_slice_validation_perplexity_falls_well_below_the_unigram_models():
    sents = load_brown(BROWN, lower=True)[:2000]
    sp = brown_splits(sents, train_words=30_000, valid_words=5_000)
    vocab = Vocabulary(min_count=3).fit(sp.train)  # about 1,600 words
    train, valid = vocab.encode(sp.train), vocab.encode(sp.valid)
    lm = NeuralLM(len(vocab), order=3, dim=16, hidden=32, seed=0)
    lm.init_output_bias(vocab.counts)
    uni = _unigram_perplexity(train, valid, len(vocab))  # about 99
    h = train_lm(lm, train, valid, epochs=1, batch_size=128, lr=3e-3)
    ppl = math.exp(h.val_loss[0])  # about 62 after one epoch
    assert ppl < 0.75 * uni, (ppl, uni)


def test_checkpoint_resume_continues_exactly(tmp_path):
    vocab, train, valid = _toy_data(200, 40)

    def fresh():
        return NeuralLM(len(vocab), order=3, dim=4, hidden=8, dropout=0.3, seed=5)

    ref = fresh()
    h_ref = train_lm(ref, train, valid, epochs=3, batch_size=64, lr=0.01, lr_decay=1.0)

    ck = tmp_path / "run.ckpt"
    calls = []

    def interrupt_at_batch_7(ev):
        if ev["event"] == "batch":
            calls.append(ev)
            if len(calls) == 7:  # the middle of epoch 2
                raise KeyboardInterrupt

    first = fresh()
    h1 = train_lm(
        first, train, valid, epochs=3, batch_size=64, lr=0.01, lr_decay=1.0, checkpoint=ck,
        progress=interrupt_at_batch_7, report_every=1e-9,
    )  # fmt: skip
    assert h1.interrupted and "interrupted" in h1.stop_reason
    assert load_checkpoint(ck)["state"].batch > 0  # stopped inside an epoch
    events = []
    second = fresh()  # a new process would build the model again from its options
    h2 = train_lm(
        second, train, valid, epochs=3, batch_size=64, lr=0.01, lr_decay=1.0, checkpoint=ck,
        resume=True, progress=events.append,
    )  # fmt: skip
    assert events[0]["event"] == "resume"
    np.testing.assert_array_equal(second.flat_params, ref.flat_params)
    assert h2.val_loss == h_ref.val_loss and h2.n_steps == h_ref.n_steps
    # A finished run is not trained again; more epochs continue it.
    again = fresh()
    h3 = train_lm(again, train, valid, epochs=3, batch_size=64, lr=0.01, lr_decay=1.0,
                  checkpoint=ck, resume=True)  # fmt: skip
    assert h3.n_steps == h2.n_steps
    np.testing.assert_array_equal(again.flat_params, ref.flat_params)
    more = fresh()
    h4 = train_lm(more, train, valid, epochs=4, batch_size=64, lr=0.01, lr_decay=1.0,
                  checkpoint=ck, resume=True)  # fmt: skip
    assert len(h4.loss) == 4


def test_a_real_ctrl_c_stops_at_the_end_of_the_batch(tmp_path):
    vocab, train, valid = _toy_data(100, 20)
    lm = NeuralLM(len(vocab), order=3, dim=4, hidden=8, seed=0)

    def sigint_once(ev):
        if ev["event"] == "batch" and ev["batch"] == 2:
            os.kill(os.getpid(), signal.SIGINT)

    h = train_lm(lm, train, valid, epochs=2, batch_size=16, checkpoint=tmp_path / "c",
                 progress=sigint_once, report_every=1e-9)  # fmt: skip
    assert h.interrupted and h.n_steps == 2  # the batch in flight was finished, no more
    assert load_checkpoint(tmp_path / "c")["state"].batch == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_time_budget_validates_the_partial_epoch():
    vocab, train, valid = _toy_data(100, 20)
    lm = NeuralLM(len(vocab), order=3, dim=4, hidden=8, seed=0)
    h = train_lm(lm, train, valid, epochs=5, batch_size=8, max_seconds=1e-6)
    assert h.n_steps == 1 and len(h.val_loss) == 1
    assert h.stop_reason.startswith("time budget")


def test_anneal_decays_the_rate_over_the_time_budget():
    vocab, train, valid = _toy_data(100, 20)
    lm = NeuralLM(len(vocab), order=3, dim=4, hidden=8, seed=0)
    h = train_lm(lm, train, valid, epochs=2, lr=0.01, max_seconds=1e4, anneal=True)
    assert 0.0099 < h.lr[-1] < 0.01  # a little of the budget was spent
    h = train_lm(lm, train, valid, epochs=2, lr=0.01, max_seconds=1e-6, anneal=True)
    assert h.lr[-1] == pytest.approx(1e-4)  # budget spent: floored at 1 % of the rate
    with pytest.raises(ValueError, match="needs max_seconds"):
        train_lm(lm, train, anneal=True)


def test_early_stopping_restores_the_best_epoch():
    vocab, train, valid = _toy_data(60, 30)
    lm = NeuralLM(len(vocab), order=3, dim=8, hidden=32, seed=0)
    h = train_lm(lm, train, valid, epochs=40, batch_size=8, lr=0.05, patience=2, lr_decay=1.0,
                 min_delta=0.0)  # fmt: skip
    assert h.stop_reason.startswith("early stopping") and len(h.loss) < 40
    assert lm.perplexity(valid) == pytest.approx(math.exp(h.val_loss[h.best_epoch - 1]), rel=1e-6)
    assert h.best_epoch == int(np.argmin(h.val_loss)) + 1


def test_divergence_raises_and_keeps_finite_weights():
    vocab, train, valid = _toy_data(100, 20)
    lm = NeuralLM(len(vocab), order=3, dim=4, hidden=8, seed=0)
    with pytest.raises(TrainingDiverged, match="lower the learning rate") as err:
        train_lm(lm, train, valid, optimizer="sgd", lr=1e12, epochs=3, batch_size=16)
    assert np.isfinite(lm.flat_params).all()
    assert err.value.history.stop_reason


def test_training_arguments_are_checked():
    vocab, train, valid = _toy_data(30, 10)
    lm = NeuralLM(len(vocab), order=3, dim=2, hidden=2, seed=0)
    with pytest.raises(ValueError, match="resume=True needs a checkpoint"):
        train_lm(lm, train, resume=True)
    with pytest.raises(ValueError, match="lr_decay"):
        train_lm(lm, train, lr_decay=0.0)
    with pytest.raises(ValueError, match="contains the id"):
        train_lm(lm, np.array([1000, 2]))
    with pytest.raises(TypeError, match="NeuralLM"):
        train_lm(MLP([2, 2]), train)


@pytest.mark.parametrize("where", ["missing/ck.safetensors", "."])
def test_an_unwritable_checkpoint_is_refused_before_training(tmp_path, where):
    # The first checkpoint is written after the first epoch: a bad path threw the epoch away
    # (and the history, with the best weights never restored).
    vocab, train, valid = _toy_data(30, 10)
    lm = NeuralLM(len(vocab), order=3, dim=2, hidden=2, seed=0)
    before = lm.flat_params.copy()
    events = []
    with pytest.raises(OSError, match="checkpoint"):
        train_lm(lm, train, valid, epochs=1, checkpoint=tmp_path / where, progress=events.append)
    assert events == [] and np.array_equal(lm.flat_params, before)


# -- files -----------------------------------------------------------------------------------


def test_model_file_round_trip(tmp_path):
    vocab, train, valid = _toy_data(40, 10)
    lm = NeuralLM(len(vocab), order=3, dim=4, hidden=5, seed=0)
    path = tmp_path / "lm.safetensors"
    save_lm(lm, path, vocab, training={"corpus": {"name": "toy"}})
    back, voc = load_lm(path)
    assert voc == vocab and back.to_config() == lm.to_config()
    for k in lm.params:
        np.testing.assert_array_equal(back.params[k], lm.params[k])
    assert back.metadata["training"]["corpus"]["name"] == "toy"
    assert isinstance(io_load(path), NeuralLM)  # the generic loader knows the type
    meta = read_metadata(path)
    assert meta["config"]["type"] == "NeuralLM" and meta["n_params"] == lm.n_params


def test_model_file_errors(tmp_path):
    vocab, _, _ = _toy_data(40, 10)
    mlp_path = tmp_path / "mlp.safetensors"
    io_save(MLP([3, 2], seed=0), mlp_path)
    with pytest.raises(ModelFileError, match="not a language model"):
        load_lm(mlp_path)
    lm = NeuralLM(len(vocab), order=3, dim=4, hidden=5, seed=0)
    no_vocab = tmp_path / "novocab.safetensors"
    io_save(lm, no_vocab)
    with pytest.raises(ModelFileError, match="vocabulary"):
        load_lm(no_vocab)
    with pytest.raises(ValueError, match="the vocabulary has"):
        save_lm(NeuralLM(5, order=3, dim=2, hidden=2), tmp_path / "x", vocab)
    # A config asking for other shapes than the tensors present is refused before loading.
    good = tmp_path / "good.safetensors"
    save_lm(lm, good, vocab)
    raw = good.read_bytes()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(raw.replace(b'\\"hidden\\":5', b'\\"hidden\\":6'))
    with pytest.raises(ModelFileError, match="shape"):
        load_lm(bad)
    hostile = tmp_path / "hostile.safetensors"
    hostile.write_bytes(raw.replace(b'\\"direct\\":true', b'\\"direct\\":1234'))
    with pytest.raises(ModelFileError, match="direct"):
        load_lm(hostile)
    with pytest.raises(ValueError, match="not a language-model checkpoint"):
        load_checkpoint(good)


# -- using a model ---------------------------------------------------------------------------


def _trained_toy():
    vocab, train, valid = _toy_data()
    lm = NeuralLM(len(vocab), order=3, dim=8, hidden=16, seed=0)
    lm.init_output_bias(vocab.counts)
    train_lm(lm, train, valid, epochs=6, batch_size=32, lr=0.01)
    return lm, vocab


@pytest.fixture(scope="module")
def toy_model():
    return _trained_toy()


def test_generate_follows_the_grammar(toy_model):
    lm, vocab = toy_model
    out = generate(lm, vocab, "the big cat", temperature=0)
    assert out == ["sees", "the", out[2], ".", "</s>"] and out[2] in {
        "cat", "dog", "bird", "fish", "cow", "fox"}  # fmt: skip
    a = generate(lm, vocab, "", max_tokens=20, rng=3)
    assert a == generate(lm, vocab, "", max_tokens=20, rng=3)  # seeded
    assert a[0] == "the" and a[-1] == "</s>"
    assert generate(lm, vocab, ["the", "old"], top_k=1, rng=0) == generate(
        lm, vocab, ["the", "old"], temperature=0
    )


def test_generate_handles_unknown_long_and_empty_prompts(toy_model):
    lm, vocab = toy_model
    # Only the last n - 1 = 2 words of the current sentence count.
    long = generate(lm, vocab, "the red fox runs the small dog . the big cat", temperature=0)
    assert long == generate(lm, vocab, "big cat", temperature=0)
    unk = generate(lm, vocab, "zebra quagga", max_tokens=5, rng=0)  # read as <unk> <unk>
    assert len(unk) >= 1 and "<unk>" not in unk and "<s>" not in unk
    assert generate(lm, vocab, "the", max_tokens=0) == []
    with pytest.raises(ValueError, match="temperature"):
        generate(lm, vocab, "the", temperature=-1.0)


def test_nearest_words_and_analogy_on_constructed_embeddings():
    words = ["king", "queen", "man", "woman", "apple"]
    vocab = Vocabulary().fit(words)
    lm = NeuralLM(len(vocab), order=2, dim=3, hidden=2, seed=0)
    vec = {"king": [1, 1, 0], "queen": [1, -1, 0], "man": [0.2, 1, 0], "woman": [0.2, -1, 0],
           "apple": [0, 0, 1]}  # fmt: skip
    E = lm.params["E"].copy()
    for w, v in vec.items():
        E[vocab.index(w)] = v
    lm.params["E"] = E
    near = nearest_words(lm, vocab, "king", k=2)
    assert [w for w, _ in near] == ["man", "queen"]
    assert near[0][1] == pytest.approx(np.dot([1, 1, 0], [0.2, 1, 0]) / (2**0.5 * 1.04**0.5))
    assert analogy(lm, vocab, "man", "woman", "king", k=1)[0][0] == "queen"
    with pytest.raises(ValueError, match="not in the vocabulary"):
        nearest_words(lm, vocab, "pear")
    with pytest.raises(ValueError, match="did you mean 'king'"):
        nearest_words(lm, vocab, "King")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        analogy(lm, vocab, "man", "woman", "</s>")


def test_mixture_weight_and_mixing():
    rng = np.random.default_rng(0)
    # Tokens drawn from 0.3 P_a + 0.7 P_b: EM recovers the weight.
    Pa, Pb = rng.dirichlet(np.ones(50)), rng.dirichlet(np.ones(50))
    tok = rng.choice(50, size=200_000, p=0.3 * Pa + 0.7 * Pb)
    w = mixture_weight(np.log(Pa[tok]), np.log(Pb[tok]))
    assert w == pytest.approx(0.3, abs=0.03)
    mixed = mix_log_probs(np.log([0.5]), np.log([0.1]), 0.25)
    assert mixed[0] == pytest.approx(np.log(0.25 * 0.5 + 0.75 * 0.1))
    assert mix_log_probs([-np.inf], [0.0], 0.0)[0] == 0.0
    assert perplexity_from_log_probs(np.log([0.25, 0.25])) == pytest.approx(4.0)
    with pytest.raises(ValueError):
        mixture_weight([0.0], [0.0, 1.0])


# -- command line ----------------------------------------------------------------------------


def _write_toy_corpus(path: Path, n: int = 400) -> Path:
    path.write_text("\n".join(" ".join(s) for s in _toy_sentences(n, seed=1)) + "\n")
    return path


def _cli(args, capsys):
    from backprop.cli import main

    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained_file(tmp_path_factory):
    from backprop.cli import main

    d = tmp_path_factory.mktemp("lm_cli")
    corpus = _write_toy_corpus(d / "toy.txt")
    model = d / "toy.safetensors"
    code = main(["lm", "train", "--corpus", str(corpus), "--min-count", "1", "--order", "3",
                 "--dim", "8", "--hidden", "16", "--epochs", "5", "--lr", "0.01",
                 "--batch-size", "32", "--out", str(model), "--quiet"])  # fmt: skip
    assert code == 0
    return d, corpus, model


def test_cli_train_writes_model_checkpoint_and_test_perplexity(trained_file, capsys):
    d, corpus, model = trained_file
    assert model.is_file() and (d / "toy.ckpt.safetensors").is_file()
    meta = read_metadata(model)
    res = meta["training"]["results"]
    assert res["test_ppl"] < 5 and res["train_tokens_per_s"] > 0
    assert meta["training"]["corpus"]["name"] == "text"
    code, out, _ = _cli(["lm", "eval", str(model), "--split", "test", "--mix-kn", "3"], capsys)
    assert code == 0 and "perplexity" in out and "mixture" in out
    ppl = float(out.split("perplexity")[1].split()[0])
    assert ppl == pytest.approx(res["test_ppl"], abs=0.006)  # printed with 2 decimals
    code, out, _ = _cli(["lm", "eval", str(model), "--text", str(corpus)], capsys)
    assert code == 0 and "tokens/s" in out
    code, out, _ = _cli(["info", str(model)], capsys)
    assert code == 0 and "neural language model: n = 3" in out and "perplexity" in out
    assert "adam, lr 0.01" in out


def test_cli_generate_neighbors_analogy(trained_file, capsys):
    _, _, model = trained_file
    code, out, err = _cli(["lm", "generate", str(model), "--prompt", "the big cat",
                           "--temperature", "0"], capsys)  # fmt: skip
    assert code == 0 and out.startswith("the big cat sees the")
    assert "last 2 words" in err
    code, out, err = _cli(["lm", "generate", str(model), "--prompt", "zebra", "--seed", "1",
                           "--num", "2"], capsys)  # fmt: skip
    assert code == 0 and "not in the vocabulary" in err and len(out.splitlines()) == 2
    code, out, err = _cli(["lm", "generate", str(model), "--prompt", "zebra", "--seed", "1",
                           "--quiet"], capsys)  # fmt: skip
    assert code == 0 and err == ""  # --quiet: no notes on stderr (this one was printed)
    code, out, err = _cli(["lm", "generate", str(model), "--prompt", "the", "--seed", "1",
                           "--temperature", "1e-310"], capsys)  # fmt: skip
    assert code == 0, err  # was: Probabilities contain NaN (inf - inf)
    code, out, err = _cli(["lm", "generate", str(model), "--prompt", "zebra", "--strict"], capsys)
    assert code == 1 and "zebra" in err and len(err.strip().splitlines()) == 1
    code, out, _ = _cli(["lm", "neighbors", str(model), "cat", "-k", "3"], capsys)
    assert code == 0 and len(out.splitlines()) == 3
    code, out, _ = _cli(["lm", "analogy", str(model), "cat", "sees", "dog", "-k", "2"], capsys)
    assert code == 0 and len(out.splitlines()) == 2
    code, _, err = _cli(["lm", "neighbors", str(model), "zebra"], capsys)
    assert code == 1 and "not in the vocabulary" in err


def test_cli_bad_corpora_and_models_give_one_line_errors(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    binary = tmp_path / "data.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    blank = tmp_path / "blank.txt"
    blank.write_text("  \n\n \t\n")
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("one line only\n")
    for corpus, msg in (
        (empty, "is empty"),
        (binary, "NUL byte"),
        (blank, "no words"),
        (tiny, "at least 3"),
        (tmp_path / "missing.txt", "no such corpus file"),
        (tmp_path, "is a directory"),
    ):
        code, _, err = _cli(["lm", "train", "--corpus", str(corpus), "--out",
                             str(tmp_path / "m.safetensors")], capsys)  # fmt: skip
        assert code == 1, corpus
        assert msg in err and len(err.strip().splitlines()) == 1, err
    code, _, err = _cli(["lm", "train", "--corpus", str(empty), "--anneal"], capsys)
    assert code == 1 and "--max-minutes" in err
    mlp = tmp_path / "mlp.safetensors"
    io_save(MLP([3, 2], seed=0), mlp)
    code, _, err = _cli(["lm", "eval", str(mlp)], capsys)
    assert code == 1 and "not a language model" in err
    code, _, err = _cli(["lm", "generate", str(tmp_path / "nope.safetensors")], capsys)
    assert code == 1 and "no such model file" in err


def test_cli_ctrl_c_then_resume(tmp_path):
    corpus = _write_toy_corpus(tmp_path / "toy.txt", n=1000)
    exe = Path(sys.executable).parent / "backprop"
    args = [str(exe), "lm", "train", "--corpus", str(corpus), "--min-count", "1", "--order", "3",
            "--dim", "8", "--hidden", "16", "--epochs", "2", "--batch-size", "16",
            "--report-every", "0.02", "--out", str(tmp_path / "m.safetensors")]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if "batch" in line:
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err and (tmp_path / "m.ckpt.safetensors").is_file()
    assert (tmp_path / "m.safetensors").is_file()  # the weights so far are kept
    done = subprocess.run(args + ["--resume", "--quiet"], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "test ppl" in done.stdout
    meta = read_metadata(tmp_path / "m.safetensors")
    assert len(meta["history"]["loss"]) >= 1 and not meta["training"]["results"]["interrupted"]


def test_brown_protocol_ids_are_the_ones_the_model_scores():
    # The model scores exactly the windows of ngram_arrays (same boundary rule as Kneser-Ney).
    lm = NeuralLM(10, order=3, dim=2, hidden=2, seed=0)
    ids = np.array([5, 6, 2, 7, 2])
    C, t = ngram_arrays(ids, 3)
    expected = perplexity_from_log_probs(lm.log_prob(C, t))
    assert lm.perplexity(ids) == pytest.approx(expected)
    words = perplexity_from_log_probs(lm.log_prob(C, t)[t != EOS_ID])
    assert lm.perplexity(ids, exclude_eos=True) == pytest.approx(words)
    assert UNK_ID == 0 and BOS_ID == 1


def test_cli_train_with_a_huge_loss_reports_infinite_perplexity(tmp_path, capsys):
    # A mean loss above ~709 nats made math.exp raise OverflowError mid-training: no model.
    corpus = _write_toy_corpus(tmp_path / "toy.txt")
    out = tmp_path / "m.safetensors"
    code, stdout, err = _cli(
        ["lm", "train", "--corpus", str(corpus), "--min-count", "1", "--order", "3", "--dim", "4",
         "--hidden", "3", "--epochs", "1", "--lr", "100", "--out", str(out), "--quiet"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert out.is_file()


@pytest.mark.parametrize("schedule", ["exponential", "warmup+linear", "warmup+cosine", "step"])
def test_cli_train_takes_every_schedule_that_train_takes(tmp_path, capsys, schedule):
    corpus = _write_toy_corpus(tmp_path / "toy.txt", n=100)
    code, _, err = _cli(
        ["lm", "train", "--corpus", str(corpus), "--min-count", "1", "--order", "3", "--dim", "4",
         "--hidden", "3", "--epochs", "2", "--schedule", schedule,
         "--out", str(tmp_path / "m.safetensors"), "--quiet"],
        capsys,
    )  # fmt: skip
    assert code == 0, err


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--valid-fraction", "0.5", "--test-fraction", "0.5"], "leave no text to train on"),
        (["--out", "."], "--out .: is a directory"),
        (["--schedule", "bogus"], "bogus"),
        (["--hidden", "0", "--no-direct"], "no path to the output"),
        (["--hidden", "0", "--dropout", "0.3"], "--dropout 0.3"),  # was silently ignored
        (["--brown-path", "brown.zip"], "--brown-path brown.zip"),  # ignored for a text file
    ],
)
def test_cli_train_refuses_bad_settings_before_reading_the_corpus(tmp_path, capsys, extra, match):
    corpus = _write_toy_corpus(tmp_path / "toy.txt", n=50)
    argv = ["lm", "train", "--corpus", str(corpus), "--out", str(tmp_path / "m.safetensors")]
    code, out, err = _cli([*argv, *extra], capsys)
    assert code != 0 and match in err and "tokens" not in out


def test_generation_context_is_the_prompts_last_sentence(toy_model):
    # "the big cat sees the dog . the" must continue a sentence that starts with "the",
    # exactly as the prompt "the" does: the words before "." are another sentence.
    lm, vocab = toy_model
    a = generate(lm, vocab, "the big cat sees the dog . the", temperature=0)
    assert a == generate(lm, vocab, "the", temperature=0)
    # a prompt that ends a sentence starts a new one, as the empty prompt does
    assert generate(lm, vocab, "the dog sees the cat .", temperature=0) == generate(
        lm, vocab, "", temperature=0
    )


def test_a_text_corpus_of_three_sentences_is_split_one_each(tmp_path):
    # "at least 3 sentences" is the documented minimum; 3 one-word lines asked for 2 + 1
    # training and validation words (rounded from 80 % and 10 %) and left no test part.
    from backprop.cli_lm import load_corpus

    corpus = tmp_path / "three.txt"
    corpus.write_text("one\ntwo\nthree\n")
    spec, sp = load_corpus({"name": "text", "path": str(corpus)})
    assert sp.sentences == (1, 1, 1)
    assert (sp.train, sp.valid, sp.test) == (["one", "</s>"], ["two", "</s>"], ["three", "</s>"])
    # the usual 80/10/10 of a larger text is kept
    corpus.write_text("w\n" * 100)
    spec, sp = load_corpus({"name": "text", "path": str(corpus)})
    assert sp.sentences == (80, 10, 10)
    assert (spec["train_words"], spec["valid_words"]) == (80, 10)


def _spy_on_corpus(monkeypatch):
    """Replace the corpus loading of ``lm train`` / ``lm eval`` by a spy that records the spec
    it gets and stops the command there."""
    import backprop.cli_lm as cli_lm

    seen = []

    def spy(spec):
        seen.append(spec)
        raise ValueError("corpus spy")

    monkeypatch.setattr(cli_lm, "load_corpus", spy)
    return seen


def test_cli_train_stores_the_brown_path_absolute(tmp_path, monkeypatch, capsys):
    # the model file keeps the corpus for 'lm eval', which may run from another folder
    seen = _spy_on_corpus(monkeypatch)
    monkeypatch.chdir(tmp_path)
    code, _, err = _cli(["lm", "train", "--corpus", "brown", "--brown-path", "data/brown.zip",
                         "--out", str(tmp_path / "m.safetensors")], capsys)  # fmt: skip
    assert code == 1 and "corpus spy" in err
    assert seen[-1]["path"] == str(tmp_path / "data" / "brown.zip")  # was 'data/brown.zip'


def test_cli_eval_reads_brown_from_the_brown_path_given(tmp_path, monkeypatch, capsys):
    # Without --corpus, eval took the path stored at training time and ignored --brown-path.
    seen = _spy_on_corpus(monkeypatch)
    monkeypatch.chdir(tmp_path)
    vocab = Vocabulary().fit(["a", "b"])
    lm = NeuralLM(len(vocab), order=2, dim=2, hidden=2, seed=0)
    model = tmp_path / "brown.safetensors"
    corpus = {"name": "brown", "path": "/gone/brown.zip", "lower": True}
    save_lm(lm, model, vocab, training={"corpus": corpus})
    code, _, err = _cli(["lm", "eval", str(model), "--brown-path", "moved/brown.zip"], capsys)
    assert code == 1 and "corpus spy" in err
    assert seen[-1] == {"name": "brown", "path": str(tmp_path / "moved" / "brown.zip"),
                        "lower": True}  # fmt: skip
    # a model of a text file has no use for it: said, not ignored
    text = tmp_path / "text.safetensors"
    save_lm(lm, text, vocab, training={"corpus": {"name": "text", "path": "/x/book.txt"}})
    code, _, err = _cli(["lm", "eval", str(text), "--brown-path", "moved/brown.zip"], capsys)
    assert code == 1 and "--brown-path" in err and "--corpus brown" in err
    assert len(err.strip().splitlines()) == 1


def test_cli_train_refuses_a_checkpoint_that_is_the_output_file(tmp_path, monkeypatch, capsys):
    # The model written to --out replaced the checkpoint: after Ctrl-C, '--resume' found a
    # model file instead ("not a language-model checkpoint") and the run had to start over.
    corpus = _write_toy_corpus(tmp_path / "toy.txt", n=50)
    monkeypatch.chdir(tmp_path)
    code, out, err = _cli(["lm", "train", "--corpus", str(corpus), "--out", "m.safetensors",
                           "--checkpoint", str(tmp_path / "m.safetensors")], capsys)  # fmt: skip
    assert code == 1 and "--checkpoint" in err and "--out" in err and "tokens" not in out
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.safetensors").exists()


def test_cli_resume_refuses_another_architecture(tmp_path, capsys):
    # The model was rebuilt from the checkpoint whatever --order, --dim... said: a resumed
    # '--order 4' run went on training (and saved) the order-3 model without a word.
    corpus = _write_toy_corpus(tmp_path / "toy.txt", n=60)
    argv = ["lm", "train", "--corpus", str(corpus), "--min-count", "1", "--order", "3",
            "--dim", "4", "--hidden", "3", "--epochs", "1", "--quiet",
            "--out", str(tmp_path / "m.safetensors")]  # fmt: skip
    code, _, err = _cli(argv, capsys)
    assert code == 0, err
    for flag, value in (("--order", "4"), ("--dim", "5"), ("--hidden", "2"), ("--dropout", "0.2")):
        code, out, err = _cli([*argv, "--resume", "--epochs", "2", flag, value], capsys)
        assert code == 1 and flag in err and "checkpoint" in err, (flag, err)
        assert len(err.strip().splitlines()) == 1
    code, out, err = _cli([*argv, "--resume", "--epochs", "2", "--no-direct"], capsys)
    assert code == 1 and "--no-direct" in err
    code, out, err = _cli([*argv, "--resume", "--epochs", "2"], capsys)  # the same: goes on
    assert code == 0, err
    assert len(read_metadata(tmp_path / "m.safetensors")["history"]["loss"]) == 2


def test_cli_train_throughput_counts_the_tokens_of_a_partial_epoch(tmp_path, capsys):
    # A time budget that stops inside the epoch: the figure counted the whole epoch's tokens
    # (6 times too many in this run when it was found).
    corpus = _write_toy_corpus(tmp_path / "toy.txt", n=400)
    out = tmp_path / "m.safetensors"
    code, _, err = _cli(["lm", "train", "--corpus", str(corpus), "--min-count", "1",
                         "--order", "3", "--dim", "4", "--hidden", "3", "--batch-size", "1",
                         "--epochs", "2", "--max-minutes", "0.002", "--out", str(out),
                         "--quiet"], capsys)  # fmt: skip
    assert code == 0, err
    meta = read_metadata(out)
    hist = meta["history"]
    tokens = hist["n_steps"]  # one token per step with --batch-size 1
    expected = tokens / sum(hist["epoch_time"])
    assert meta["training"]["results"]["train_tokens_per_s"] == pytest.approx(expected, rel=1e-6)
