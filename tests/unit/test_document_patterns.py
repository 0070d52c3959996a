"""Analytic constructors for masks that change every step: packed documents, prefix LM,
chunked causal. Exact against their predicates, O(documents) pieces, combinable without
evaluating the Lq x Lk mask, and fast to tile."""

from __future__ import annotations

import numpy as np
import pytest

from splat import patterns as P
from splat.analysis import analyze
from splat.tiling import build_schedule


def _random_lengths(rng, total):
    cuts = np.sort(rng.choice(np.arange(1, total), size=rng.integers(1, 12), replace=False))
    return np.diff(np.concatenate([[0], cuts, [total]]))


def _assert_exact(pattern):
    acsr = pattern.analytic_acsr()
    assert acsr is not None
    acsr.validate()
    np.testing.assert_array_equal(acsr.to_mask(), pattern.mask())


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("causal", [False, True])
def test_documents_are_exact(seed, causal):
    rng = np.random.default_rng(seed)
    total = int(rng.integers(2, 400))
    lengths = _random_lengths(rng, total)
    extra_q, extra_k = (int(x) for x in rng.integers(0, 30, size=2))  # padding past the docs
    pattern = P.documents(lengths, total + extra_q, total + extra_k, causal=causal)
    _assert_exact(pattern)
    assert len(pattern.analytic_acsr().pieces) == len(lengths)
    ref = analyze(pattern.mask())  # the general analysis agrees
    np.testing.assert_array_equal(ref.to_mask(), pattern.mask())


@pytest.mark.parametrize("prefix, Lq, Lk", [(0, 50, 50), (7, 50, 50), (50, 50, 50), (80, 50, 60),
                                             (13, 70, 40), (13, 40, 70), (1, 1, 1)])
def test_prefix_lm_is_exact(prefix, Lq, Lk):
    _assert_exact(P.prefix_lm(prefix, Lq, Lk))


@pytest.mark.parametrize("chunk, Lq, Lk", [(1, 20, 20), (8, 100, 100), (7, 100, 100),
                                           (16, 70, 50), (16, 50, 70), (128, 100, 100)])
def test_chunked_causal_is_exact(chunk, Lq, Lk):
    pattern = P.chunked_causal(chunk, Lq, Lk)
    _assert_exact(pattern)
    # one piece per chunk; a chunk cut by the end of the keys is two (its rows past Lk)
    assert len(pattern.analytic_acsr().pieces) <= -(-min(Lq, Lk) // chunk) + 1


@pytest.mark.parametrize("bad, error", [([], ValueError), ([3, 0], ValueError), ([[1, 2]], ValueError),
                                        ([1.5, 2], ValueError), ("ab", ValueError)])
def test_documents_reject_bad_lengths(bad, error):
    with pytest.raises(error, match="lengths"):
        P.documents(bad)


def test_documents_longer_than_the_sequence_are_rejected():
    with pytest.raises(ValueError, match="sum to 12"):
        P.documents([5, 7], 10, 10)


def test_combinations_never_evaluate_the_mask(monkeypatch):
    rng = np.random.default_rng(3)
    L = 4096
    docs = P.documents(_random_lengths(rng, L), causal=True)
    window = P.window(64, L)
    combined = (docs & window) | P.prefix_lm(16, L)

    def refuse(*_):
        raise AssertionError("the L x L mask was evaluated")

    for pat in (docs, window):
        monkeypatch.setattr(pat, "_contains", refuse)
    acsr = analyze(combined)
    monkeypatch.undo()
    np.testing.assert_array_equal(acsr.to_mask(), combined.mask())


def test_a_new_document_layout_tiles_without_the_mask():
    """A fresh layout per step goes constructor -> tables from its pieces alone (the time,
    ~0.2 ms + ~24 ms of tiling at 16K on the CI machine, is in the session note; no timing
    assertion here)."""
    rng = np.random.default_rng(0)
    L = 16384
    for _ in range(3):
        lengths = _random_lengths(rng, L)
        pattern = P.documents(lengths, causal=True)
        pattern._contains = None  # the predicate is never needed
        acsr = pattern.acsr()
        assert len(acsr.pieces) == len(lengths)
        schedule = build_schedule(acsr, 64, 64).validate()
        assert schedule.n_tiles >= L // 64


def test_huge_document_layouts_cost_nothing_until_used():
    pattern = P.documents([2**40, 2**40], causal=True)  # no table of 2**41 positions
    assert pattern.Lq == 2**41
    assert pattern.contains(np.array([5, 2**40 + 3]), np.array([2, 2**40])).tolist() == [True, True]
    assert len(pattern.analytic_acsr().pieces) == 2
