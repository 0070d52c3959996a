"""The layout verifiers of the C++ dialect (issue 11, "Layouts are checked").

* ``#splat.acsr`` rejects every layout ``ACSR.validate()`` rejects (overlapping pieces, keys
  outside ``[0, Lk)``, bounds that would wrap around int64, a remainder that is unsorted,
  repeated, unclipped or overlaps a piece) and accepts every layout it accepts: a hypothesis
  property over analysed random masks and mutations of them.
* The verifier costs nothing per row or key: layouts of 2**30 rows verify at once.
* ``#splat.tile_schedule`` and ``splat.attention`` check a schedule's bounds; every schedule
  the tiler makes still verifies.
* ``splat.compile(acsr)`` validates an ACSR passed directly.
* Deeply nested pattern attributes are an ordinary parse error, not a crash of splat-opt.

The diagnostics themselves are pinned by tests/lit/dialect/invalid.mlir and
tests/lit/tiling/invalid.mlir.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from mlir import ir

import splat
from splat import patterns as P
from splat.analysis import analyze
from splat.analysis.acsr import ACSR, BlockRemainder, Piece
from splat.analysis.acsr_attr import acsr_to_attr
from splat.ir import make_context
from splat.tiling import build_schedule
from splat.tiling.schedule_attr import schedule_to_attr

I64_MAX = 2**63 - 1


@pytest.fixture
def ctx():
    with make_context() as context, ir.Location.unknown():
        yield context


def ir_error(acsr: ACSR) -> str | None:
    """None when the ``#splat.acsr`` verifier accepts ``acsr``, else its diagnostic text."""
    try:
        acsr_to_attr(acsr)
    except (ir.MLIRError, ValueError) as e:
        return str(e)
    return None


def py_error(acsr: ACSR) -> str | None:
    try:
        acsr.validate()
    except ValueError as e:
        return str(e)
    return None


# -- fixed cases --------------------------------------------------------------------------------

def test_overlapping_pieces_are_rejected(ctx):
    a = ACSR(8, 8, (Piece(0, 8, 1, 1, 0, 0, 0, 4), Piece(4, 8, 1, 1, 0, 2, 0, 2)))
    assert py_error(a) is not None
    assert "acsr pieces #0 and #1 overlap at (row, col) = (4, 2)" in ir_error(a)


def test_interleaved_strides_are_exact(ctx):
    evens = Piece(0, 8, 1, 2, 0, 0, 0, 4)         # 0 2 4 6
    odds = Piece(0, 8, 1, 2, 0, 1, 0, 4)          # 1 3 5 7
    assert ir_error(ACSR(8, 8, (evens, odds))) is None
    thirds = Piece(3, 4, 1, 3, 0, 1, 0, 3)        # row 3: 1 4 7 -> meets odds at 1 and evens at 4
    a = ACSR(8, 8, (evens, odds, thirds))
    assert py_error(a) is not None and "overlap" in ir_error(a)
    mod4 = Piece(0, 8, 1, 4, 0, 1, 0, 2)          # 1 5: disjoint from the evens only
    assert ir_error(ACSR(8, 8, (evens, mod4))) is None
    assert "overlap" in ir_error(ACSR(8, 8, (odds, mod4)))


def test_stride_that_would_wrap_int64_is_rejected(ctx):
    # 8 keys of stride 2**61: the last is 2**64, 0 modulo 2**64
    a = ACSR(8, 8, (Piece(0, 1, 1, 2**61, 0, 0, 0, 9),))
    assert py_error(a) is not None
    assert "has keys 0 .. 18446744073709551616 outside [0, 8)" in ir_error(a)
    b = ACSR(8, 8, (Piece(0, 1, 1, 2**62, 0, 0, 0, 3),))  # last key 2**63
    assert py_error(b) is not None and ir_error(b) is not None


def test_remainder_checks(ctx):
    full = np.ones((2, 4, 4), dtype=bool)
    unsorted = ACSR(8, 8, (), BlockRemainder(4, np.array([[1, 0], [0, 0]]), full))
    assert "sorted and unique" in ir_error(unsorted)
    repeated = ACSR(8, 8, (), BlockRemainder(4, np.array([[0, 1], [0, 1]]), full))
    assert "sorted and unique" in ir_error(repeated)
    unclipped = ACSR(6, 8, (), BlockRemainder(4, np.array([[1, 0]]), full[:1].copy()))
    assert "edge blocks must be clipped" in ir_error(unclipped)
    clipped_mask = full[:1].copy()
    clipped_mask[0, 2:] = False
    assert ir_error(ACSR(6, 8, (), BlockRemainder(4, np.array([[1, 0]]), clipped_mask))) is None
    diagonal = Piece(0, 8, 1, 1, 1, 0, 0, 1)
    cell = np.zeros((1, 4, 4), dtype=bool)
    cell[0, 1, 2] = True                             # (5, 6): not on the diagonal
    assert ir_error(ACSR(8, 8, (diagonal,), BlockRemainder(4, np.array([[1, 1]]), cell.copy()))) is None
    cell[0, 1, 1] = True                             # (5, 5): on it
    a = ACSR(8, 8, (diagonal,), BlockRemainder(4, np.array([[1, 1]]), cell.copy()))
    assert py_error(a) is not None
    assert "remainder block (1, 1) overlaps piece #0 at (row, col) = (5, 5)" in ir_error(a)


@pytest.mark.parametrize("pattern", [
    P.window(16, 300), P.causal(257), P.causal_window(9, 200), P.dilated(5, 3, 301),
    P.strided(8, 8, 256), P.fixed(16, 2, 256), P.blocked(32, 200), P.global_tokens([0, 7, 99], 256),
    P.random_blocks(16, 2, 3, 256), P.longformer(16, [0, 1, 50], 256),
    P.bigbird(16, [0, 5], 2, 16, 1, 256), P.window(3, 40, 70),
], ids=lambda p: p.name)
def test_family_layouts_verify(ctx, pattern):
    for acsr in (pattern.acsr(), analyze(pattern.mask(), block=16)):
        assert py_error(acsr) is None
        assert ir_error(acsr) is None


def test_verifier_costs_nothing_per_row(ctx):
    L = 2**30
    layouts = [P.window(64, L).acsr(), P.causal(L).acsr(), P.causal_window(8, L).acsr(),
               P.longformer(64, [0, 1, 2, 3], L).acsr(), P.dilated(8, 4, L).acsr(),
               # a dense band split into its even and odd keys, and keys 1 mod 4 beside evens
               ACSR(L, 2 * L + 200, (Piece(0, L, 1, 2, 2, 0, 0, 64), Piece(0, L, 1, 2, 2, 1, 0, 64))),
               ACSR(L, L + 300, (Piece(0, L, 1, 2, 1, 0, 0, 100), Piece(0, L, 1, 4, 1, 1, 0, 50)))]
    start = time.perf_counter()
    for acsr in layouts:
        assert ir_error(acsr) is None
    assert time.perf_counter() - start < 2.0
    overlapping = ACSR(L, L, (Piece(0, L, 1, 1, 1, 0, 0, 1), Piece(0, L, 1, 1, 0, L - 1, 0, 1)))
    start = time.perf_counter()
    assert "overlap at (row, col) = (1073741823, 1073741823)" in ir_error(overlapping)
    assert time.perf_counter() - start < 1.0


# -- property: the IR verifier agrees with ACSR.validate ------------------------------------------

def _random_mask(draw) -> np.ndarray:
    lq, lk = draw(st.integers(1, 20)), draw(st.integers(1, 20))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["noise", "band", "stride"]))
    q, k = np.arange(lq)[:, None], np.arange(lk)[None, :]
    if kind == "band":
        mask = np.abs(q - k) <= draw(st.integers(0, 4))
    elif kind == "stride":
        s = draw(st.integers(2, 4))
        mask = ((q - k) % s == 0) & (np.abs(q - k) <= draw(st.integers(1, 12)))
    else:
        mask = np.zeros((lq, lk), dtype=bool)
    return mask | (rng.random((lq, lk)) < draw(st.sampled_from([0.0, 0.05, 0.3])))


def _mutate(draw, a: ACSR) -> ACSR:
    pieces = list(a.pieces)
    rem = a.remainder
    lq, lk = a.Lq, a.Lk
    big = st.sampled_from([2**61, 2**62, I64_MAX, -(2**62), 2**31])
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["field", "big", "dup", "new", "drop", "size", "rem_bit",
                                   "rem_block", "rem_order", "rem_dup"]))
        if op in ("field", "big", "dup", "drop") and not pieces:
            op = "new"
        if op.startswith("rem") and rem is None:
            op = "new"
        if op in ("field", "big"):
            n = draw(st.integers(0, len(pieces) - 1))
            f = list(pieces[n].as_tuple())
            i = draw(st.integers(0, 7))
            f[i] = draw(big) if op == "big" else f[i] + draw(st.integers(-3, 3))
            try:
                pieces[n] = Piece(*f)
            except ValueError:
                pass
        elif op == "dup":
            pieces.append(pieces[draw(st.integers(0, len(pieces) - 1))])
        elif op == "new":
            try:
                pieces.append(Piece(draw(st.integers(0, lq - 1)), draw(st.integers(1, lq + 1)),
                                    draw(st.integers(1, 3)), draw(st.integers(1, 4)),
                                    draw(st.integers(-2, 2)), draw(st.integers(-1, lk)),
                                    draw(st.integers(-2, 2)), draw(st.integers(0, 4))))
            except ValueError:
                pass
        elif op == "drop":
            pieces.pop(draw(st.integers(0, len(pieces) - 1)))
        elif op == "size":
            lq = max(1, lq + draw(st.integers(-3, 1)))
            lk = max(1, lk + draw(st.integers(-3, 1)))
        else:
            blocks, masks = rem.blocks.copy(), rem.masks.copy()
            n = draw(st.integers(0, rem.n - 1))
            if op == "rem_bit":
                masks[n, draw(st.integers(0, rem.block - 1)), draw(st.integers(0, rem.block - 1))] ^= True
            elif op == "rem_block":
                blocks[n, draw(st.integers(0, 1))] += draw(st.integers(-1, 1))
                if (blocks < 0).any():
                    continue
            elif op == "rem_order" and rem.n > 1:
                blocks = blocks[::-1].copy()
                masks = masks[::-1].copy()
            else:
                blocks = np.concatenate([blocks, blocks[n:n + 1]])
                masks = np.concatenate([masks, masks[n:n + 1]])
            rem = BlockRemainder(rem.block, blocks, masks)
    return ACSR(lq, lk, tuple(pieces), rem)


@st.composite
def layouts(draw):
    mask = _random_mask(draw)
    acsr = analyze(mask, block=draw(st.sampled_from([2, 4, 8])),
                   min_piece_nnz=draw(st.integers(1, 8)))
    mutated = draw(st.booleans())
    return (_mutate(draw, acsr) if mutated else acsr), mutated


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(layouts())
def test_ir_verifier_agrees_with_validate(layout):
    acsr, mutated = layout
    with make_context(), ir.Location.unknown():
        ir_err = ir_error(acsr)
    py_err = py_error(acsr)
    if not mutated:
        assert py_err is None
    # Every layout validate() rejects, the verifier rejects; and it rejects nothing more.
    assert (py_err is None) == (ir_err is None), (acsr.to_text(), py_err, ir_err)


@st.composite
def random_layouts(draw):
    """A few random pieces (row steps, strides and slopes mixed) and maybe a random remainder:
    mostly invalid, which exercises every check and the exact pair test (CRT on row steps and
    strides)."""
    lq, lk = draw(st.integers(1, 30)), draw(st.integers(1, 100))
    pieces = []
    for _ in range(draw(st.integers(1, 4))):
        r0 = draw(st.integers(0, lq - 1))
        try:
            pieces.append(Piece(r0, draw(st.integers(r0 + 1, lq + 1)), draw(st.integers(1, 7)),
                                draw(st.integers(1, 12)), draw(st.integers(-3, 3)),
                                draw(st.integers(-2, lk)), draw(st.integers(-2, 2)),
                                draw(st.integers(0, 10))))
        except ValueError:
            pass
    rem = None
    if draw(st.booleans()):
        block = draw(st.sampled_from([2, 4, 8]))
        nb = draw(st.integers(1, 3))
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        blocks = np.stack([rng.integers(0, -(-lq // block) + 1, nb),
                           rng.integers(0, -(-lk // block) + 1, nb)], 1)
        if draw(st.booleans()):
            blocks = np.unique(blocks, axis=0)
        rem = BlockRemainder(block, blocks, rng.random((len(blocks), block, block)) < 0.2)
    return ACSR(lq, lk, tuple(pieces), rem)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(random_layouts())
def test_ir_verifier_agrees_with_validate_on_random_pieces(acsr):
    with make_context(), ir.Location.unknown():
        ir_err = ir_error(acsr)
    py_err = py_error(acsr)
    assert (py_err is None) == (ir_err is None), (acsr.to_text(), py_err, ir_err)


# -- tile schedules -----------------------------------------------------------------------------

def _attention(acsr_attr, schedule_attr, lq: int, lk: int, split_attr=None) -> str:
    q, k = f"tensor<1x1x{lq}x64xbf16>", f"tensor<1x1x{lk}x64xbf16>"
    split = f" split_schedule({split_attr})" if split_attr is not None else ""
    return (f"func.func @f(%q: {q}, %k: {k}) -> {q} {{\n"
            f"  %o = splat.attention %q, %k, %k layout({acsr_attr}) schedule({schedule_attr}){split}"
            f" : {q}, {k}, {k} -> {q}\n  return %o : {q}\n}}")


@pytest.mark.parametrize("pattern", [
    P.window(16, 300), P.causal(200, 260), P.dilated(5, 3, 301), P.strided(8, 8, 256),
    P.fixed(16, 2, 256), P.bigbird(16, [0, 5], 2, 16, 1, 256),
    P.from_mask(np.random.default_rng(0).random((130, 90)) < 0.1),
], ids=lambda p: p.name[:30])
def test_tiler_schedules_verify(ctx, pattern):
    acsr = analyze(pattern)
    for block_n in (32, 64):
        schedule = build_schedule(acsr, block_n=block_n)
        text = _attention(acsr_to_attr(acsr), schedule_to_attr(schedule), acsr.Lq, acsr.Lk)
        assert ir.Module.parse(text).operation.verify()


def test_schedule_bounds_against_the_layout(ctx):
    from splat.dialects import splat as splat_d
    layout = acsr_to_attr(ACSR(64, 64, (Piece(0, 64, 1, 1, 0, 0, 0, 64),)))  # dense 64 x 64
    seg = [0, 1, 64, 0, 32, 0, 0, 0, 64]

    def schedule(row_tiles, segments):
        return splat_d.tile_schedule(64, 64, row_tiles, segments)

    good = schedule([0, 1, 32, 0, 1, 32, 1, 32, 1, 2], seg + seg)
    assert ir.Module.parse(_attention(layout, good, 64, 64)).operation.verify()
    cases = [
        (schedule([0, 1, 32, 0, 1, 32, 1, 32, 1, 2], seg + [1] + seg[1:]), "reaches key 64, past lk = 64"),
        (schedule([0, 1, 32, 0, 1, 33, 1, 31, 1, 2], seg + seg[:4] + [31] + seg[5:]),
         "leaves row 32 in no row tile"),
        (schedule([0, 1, 32, 0, 1, 31, 1, 32, 1, 2], seg + seg), "row tiles #0 and #1 both hold row 31"),
        (schedule([0, 1, 32, 0, 1, 33, 1, 32, 1, 2], seg + seg), "reaches row 64, past lq = 64"),
        (schedule([0, 2, 32, 0, 1, 1, 2, 32, 1, 2], seg + seg), None),  # two residue classes: fine
    ]
    for attr, message in cases:
        if message is None:
            assert ir.Module.parse(_attention(layout, attr, 64, 64)).operation.verify()
            continue
        with pytest.raises(ir.MLIRError, match=message):
            ir.Module.parse(_attention(layout, attr, 64, 64))
    with pytest.raises(ir.MLIRError, match="has row0 = -1"):
        schedule([-1, 1, 32, 0, 1], seg)


# -- splat.compile ------------------------------------------------------------------------------

def test_compile_validates_an_acsr():
    overlapping = ACSR(64, 64, (Piece(0, 64, 1, 1, 0, 0, 0, 8), Piece(0, 64, 1, 1, 0, 4, 0, 8)))
    with pytest.raises(ValueError, match=r"pattern: invalid ACSR layout: acsr pieces #0 and #1 overlap"):
        splat.compile(overlapping)
    wrapping = ACSR(64, 64, (Piece(0, 1, 1, 2**61, 0, 0, 0, 9),))
    with pytest.raises(ValueError, match="pattern: invalid ACSR layout"):
        splat.compile(wrapping)


# -- nesting ------------------------------------------------------------------------------------

def _nested_module(depth: int) -> str:
    attr = "#splat.causal"
    for level in range(depth):
        attr = f"#splat.{'union' if level % 2 else 'intersect'}<[{attr}, #splat.window<w = 1>]>"
    t = "tensor<1x1x8x16xf16>"
    return (f"func.func @f(%q: {t}) -> {t} {{\n  %o = splat.attention %q, %q, %q layout({attr})"
            f" : {t}, {t}, {t} -> {t}\n  return %o : {t}\n}}\n")


@pytest.mark.parametrize("depth", [257, 5000])
def test_deep_nesting_is_an_ordinary_error(tmp_path, depth):
    src = tmp_path / "deep.mlir"
    src.write_text(_nested_module(depth))
    splat_opt = Path(sys.executable).parent / "splat-opt"
    result = subprocess.run([str(splat_opt), str(src)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    # The dialect's parser stops at 256 pattern levels; far deeper text may be refused even
    # earlier by splat-opt's own bracket-depth guard. Either way: one located error line.
    assert ("nests pattern attributes more than 256 levels deep" in result.stderr
            or (depth > 256 and "levels deep" in result.stderr)), result.stderr[-2000:]
    assert f"{src}:2:" in result.stderr  # located
    assert "Traceback" not in result.stderr


def test_nesting_up_to_the_limit_parses(tmp_path):
    src = tmp_path / "deep.mlir"
    src.write_text(_nested_module(256))
    splat_opt = Path(sys.executable).parent / "splat-opt"
    result = subprocess.run([str(splat_opt), str(src)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("#splat.union<") == 128


def test_deep_nesting_from_python_is_an_mlir_error(ctx):
    text = "#splat.causal"
    for _ in range(5000):
        text = f"#splat.union<[{text}]>"
    with pytest.raises(ir.MLIRError, match="more than 256 levels deep"):
        ir.Attribute.parse(text)
