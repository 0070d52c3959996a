"""benchmarks/bench_corpus.py: the corpus is deterministic, covers the required kinds and
lengths, every predicate equals its splat pattern's analysed mask (at small scale), and --plot
renders a synthetic results file. No MLIR compile, no GPU."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bc():
    spec = importlib.util.spec_from_file_location("bench_corpus", ROOT / "benchmarks" / "bench_corpus.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_corpus"] = mod
    spec.loader.exec_module(mod)
    return mod


def _sig(masks):
    return [(m.name, m.kind, m.Lq, m.Lk, m.description) for m in masks]


def test_corpus_deterministic_and_covering(bc):
    a, b = bc.corpus(0), bc.corpus(0)
    assert _sig(a) == _sig(b)
    assert _sig(bc.corpus(1)) != _sig(a)
    assert len(a) >= 24
    assert len({m.name for m in a}) == len(a)
    kinds = {m.kind for m in a}
    assert {"union", "intersection", "cross", "documents", "prefix_lm", "chunked_causal",
            "random"} <= kinds
    Ls = [L for m in a for L in (m.Lq, m.Lk)]
    assert min(Ls) == 2048 and max(Ls) == 16384
    assert any(m.Lq != m.Lk for m in a)
    # names do not depend on the scale (the GPU side looks masks up by name)
    assert [m.name for m in bc.corpus(0, scale=1 / 16)] == [m.name for m in a]


@pytest.mark.parametrize("scale", [1 / 16, 1 / 27])
def test_predicate_equals_pattern(bc, scale):
    import splat

    for m in bc.corpus(0, scale=scale):
        want = m.mask_numpy()
        got = splat.analyze(m.pattern()).to_mask()
        assert got.shape == (m.Lq, m.Lk), m.name
        assert np.array_equal(got, want), f"{m.name}: {int((got != want).sum())} cells differ"
        assert want.any(), m.name


def test_random_masks_density(bc):
    for m in bc.corpus(0):
        if m.kind == "random" and m.Lq * m.Lk <= 4096 * 4096:
            d = m.mask_numpy().mean()
            assert 0.005 <= d <= 0.06, (m.name, d)


def test_plot_synthetic(bc, tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = []
    for i, m in enumerate(bc.corpus(0)[:6]):
        for D in (64, 128):
            rows.append(dict(mask=m.name, Lq=m.Lq, Lk=m.Lk, D=D, density=float(rng.random()),
                             pieces=10 + i, splat_ms=float(rng.random() + 0.1),
                             flex_ms=None if i == 2 else float(rng.random() + 0.1),
                             sdpa_masked_ms=1.0, splat_ok=i != 3, analyze_s=0.1, compile_s=0.2,
                             gpu="Fake GPU", date="2026-12-06"))
    src = tmp_path / "res.json"
    src.write_text(json.dumps(rows))
    out = tmp_path / "corpus.png"
    assert bc.main(["--plot", str(src), "--plot-out", str(out)]) == 0
    assert out.stat().st_size > 1000 and out.read_bytes()[:4] == b"\x89PNG"
    text = capsys.readouterr().out
    assert "| mask |" in text and rows[0]["mask"] in text and "✗" in text
