"""Typed views of the splat attributes (splat.dialects.splat_attrs over the dialect's C API)."""

import numpy as np
import pytest
from mlir import ir

from splat import abi
from splat import patterns as P
from splat.analysis import analyze
from splat.analysis.acsr import ACSR, BlockRemainder, Piece
from splat.analysis.acsr_attr import acsr_to_attr, attr_to_acsr
from splat.dialects import splat as splat_d
from splat.ir import make_context
from splat.patterns.pattern_attr import attr_to_pattern
from splat.pipeline import build_pass_manager
from splat.tiling import build_schedule
from splat.tiling.schedule_attr import attr_to_schedule, schedule_to_attr


@pytest.fixture
def ctx():
    with make_context() as context, ir.Location.unknown():
        yield context


# -- patterns -----------------------------------------------------------------------------------

PATTERNS = [  # (builder, view class, expected parameters)
    (lambda: splat_d.window(128), splat_d.WindowAttr, {"w": 128}),
    (lambda: splat_d.causal(), splat_d.CausalAttr, {}),
    (lambda: splat_d.causal_window(7), splat_d.CausalWindowAttr, {"w": 7}),
    (lambda: splat_d.dilated(4, 3), splat_d.DilatedAttr, {"w": 4, "stride": 3}),
    (lambda: splat_d.strided(8, 16), splat_d.StridedAttr, {"local": 8, "stride": 16}),
    (lambda: splat_d.fixed(16, 2), splat_d.FixedAttr, {"block": 16, "summary": 2}),
    (lambda: splat_d.blocked(32), splat_d.BlockedAttr, {"block": 32}),
    (lambda: splat_d.random_blocks(16, 2, 7), splat_d.RandomBlocksAttr,
     {"block": 16, "per_row": 2, "seed": 7}),
]


@pytest.mark.parametrize("build, view, params", PATTERNS)
def test_pattern_views_read_their_parameters(ctx, build, view, params):
    attr = build()
    assert view.isinstance(attr) and splat_d.PatternAttr.isinstance(attr)
    typed = view(attr)
    assert typed == attr and isinstance(typed, ir.Attribute)
    for name, value in params.items():
        got = getattr(typed, name)
        assert got == value and type(got) is int
    assert type(splat_d.pattern_view(attr)) is view
    others = [v for _, v, _ in PATTERNS if v is not view] + [splat_d.UnionAttr, splat_d.ACSRAttr]
    assert not any(other.isinstance(attr) for other in others)


def test_global_tokens_indices_are_an_int64_array(ctx):
    view = splat_d.GlobalTokensAttr(splat_d.global_tokens([0, 9, 4]))
    assert view.indices.dtype == np.int64
    assert view.indices.tolist() == [0, 9, 4]


def test_union_and_intersect_members(ctx):
    inner = splat_d.intersect([splat_d.causal(), splat_d.window(2)])
    union = splat_d.union([splat_d.window(3), inner])
    view = splat_d.UnionAttr(union)
    assert view.members == [splat_d.window(3), inner]
    assert splat_d.IntersectAttr(view.members[1]).members == [splat_d.causal(), splat_d.window(2)]
    assert not splat_d.IntersectAttr.isinstance(union)
    assert type(splat_d.pattern_view(inner)) is splat_d.IntersectAttr


@pytest.mark.parametrize("attr, pattern", [
    (lambda: splat_d.window(5), lambda: P.window(5, 96, 80)),
    (lambda: splat_d.causal(), lambda: P.causal(96, 80)),
    (lambda: splat_d.causal_window(4), lambda: P.causal_window(4, 96, 80)),
    (lambda: splat_d.dilated(3, 2), lambda: P.dilated(3, 2, 96, 80)),
    (lambda: splat_d.strided(8, 8), lambda: P.strided(8, 8, 96, 80)),
    (lambda: splat_d.fixed(16, 2), lambda: P.fixed(16, 2, 96, 80)),
    (lambda: splat_d.blocked(16), lambda: P.blocked(16, 96, 80)),
    (lambda: splat_d.global_tokens([0, 50]), lambda: P.global_tokens([0, 50], 96, 80)),
    (lambda: splat_d.random_blocks(16, 2, 3), lambda: P.random_blocks(16, 2, 3, 96, 80)),
    (lambda: splat_d.union([splat_d.window(2), splat_d.global_tokens([1])]),
     lambda: P.window(2, 96, 80) | P.global_tokens([1], 96, 80)),
    (lambda: splat_d.intersect([splat_d.window(9), splat_d.causal()]),
     lambda: P.window(9, 96, 80) & P.causal(96, 80)),
])
def test_attr_to_pattern_matches_the_python_pattern(ctx, attr, pattern):
    got, want = attr_to_pattern(attr(), 96, 80), pattern()
    assert np.array_equal(got.mask_rows(0, 96), want.mask_rows(0, 96))


# -- the ACSR layout ----------------------------------------------------------------------------

def test_piece_view_fields(ctx):
    view = splat_d.PieceAttr(splat_d.piece(3, 64, 2, 4, 1, -2, 0, 5))
    assert view.fields == (3, 64, 2, 4, 1, -2, 0, 5)
    assert (view.r0, view.r1, view.step, view.stride) == (3, 64, 2, 4)
    assert (view.off_a, view.off_b, view.cnt_a, view.cnt_b) == (1, -2, 0, 5)
    assert view.num_rows == 31


def _masked_acsr():
    """An ACSR with pieces and a remainder whose masks are partial (from a random mask)."""
    rng = np.random.default_rng(0)
    rows, cols = np.indices((192, 160))
    mask = (abs(rows - cols) <= 8) | (rng.random((192, 160)) < 0.02)
    acsr = analyze(mask, block=32)
    assert acsr.pieces and acsr.remainder is not None and not acsr.remainder.masks.all()
    return acsr


def test_acsr_round_trip_with_partial_masks(ctx):
    acsr = _masked_acsr()
    attr = acsr_to_attr(acsr)
    assert attr_to_acsr(attr) == acsr
    view = splat_d.ACSRAttr(attr)
    assert (view.lq, view.lk, view.num_pieces) == (192, 160, len(acsr.pieces))
    table = view.piece_table
    assert table.dtype == np.int64 and table.shape == (len(acsr.pieces), 8)
    assert [tuple(row) for row in table.tolist()] == [
        (p.r0, p.r1, p.row_step, p.stride, p.off_a, p.off_b, p.cnt_a, p.cnt_b)
        for p in acsr.pieces]
    assert [p.fields for p in view.pieces] == [tuple(row) for row in table.tolist()]
    rem = view.remainder
    assert isinstance(rem, splat_d.BlockRemainderAttr) and rem.block == 32
    assert np.array_equal(rem.blocks, acsr.remainder.blocks)
    assert rem.masks.dtype == bool and np.array_equal(rem.masks, acsr.remainder.masks)


def test_acsr_round_trip_full_blocks_and_no_remainder(ctx):
    blocks = np.array([[0, 1], [2, 0]], dtype=np.int32)
    full = BlockRemainder(16, blocks, np.ones((2, 16, 16), dtype=bool))
    acsr = ACSR(64, 64, (Piece(0, 64, 1, 1, 1, 0, 0, 1),), full)
    attr = acsr_to_attr(acsr)
    assert splat_d.ACSRAttr(attr).remainder.masks is None  # full blocks carry no masks
    assert attr_to_acsr(attr) == acsr
    plain = ACSR(64, 64, (Piece(0, 64, 1, 1, 1, 0, 0, 1),))
    assert splat_d.ACSRAttr(acsr_to_attr(plain)).remainder is None
    assert attr_to_acsr(acsr_to_attr(plain)) == plain


def test_acsr_without_pieces(ctx):
    view = splat_d.ACSRAttr(splat_d.acsr(8, 8, []))
    assert view.num_pieces == 0 and view.piece_table.shape == (0, 8) and view.pieces == []


# -- tile schedules -----------------------------------------------------------------------------

def _assert_schedules_equal(a, b):
    assert (a.block_m, a.block_n, a.Lq, a.Lk) == (b.block_m, b.block_n, b.Lq, b.Lk)
    for name in ("row_tiles", "segments", "mask_ptr", "mask_tiles", "mask_bits"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype == np.int32 and np.array_equal(x, y), name


def test_schedule_without_mask_tables(ctx):
    schedule = build_schedule(analyze(P.window(16, 256)), 64, 64)
    assert not schedule.has_masks
    view = splat_d.TileScheduleAttr(schedule_to_attr(schedule))
    assert (view.block_m, view.block_n) == (64, 64)
    assert view.row_tiles.shape == (len(schedule.row_tiles), len(abi.ROW_TILE_FIELDS))
    assert view.segments.shape[1] == len(abi.SEGMENT_FIELDS)
    assert not view.has_masks
    assert view.mask_ptr is None and view.mask_tiles is None and view.mask_bits is None
    _assert_schedules_equal(attr_to_schedule(view, 256, 256), schedule)


def test_schedule_with_mask_tables(ctx):
    acsr = _masked_acsr()
    schedule = build_schedule(acsr, 64, 32)
    assert schedule.has_masks
    view = splat_d.TileScheduleAttr(schedule_to_attr(schedule))
    assert view.has_masks
    assert view.mask_ptr.shape == (len(schedule.row_tiles) + 1,)
    assert view.mask_tiles.shape[1] == len(abi.MASK_TILE_FIELDS)
    assert view.mask_bits.shape == (len(view.mask_tiles), 64, abi.mask_words(32))
    _assert_schedules_equal(attr_to_schedule(view, acsr.Lq, acsr.Lk), schedule)


def test_large_table_reads_as_one_numpy_array(ctx):
    n = 50_000
    rng = np.random.default_rng(1)
    row_tiles = np.column_stack([rng.integers(0, 2**31 - 64, n), np.ones(n),
                                 np.full(n, 64), np.zeros(n), np.zeros(n)]).astype(np.int32)
    attr = splat_d.tile_schedule(64, 64, row_tiles.ravel(), [])
    table = splat_d.TileScheduleAttr(attr).row_tiles
    assert table.dtype == np.int32 and table.shape == (n, 5)
    assert np.array_equal(table, row_tiles)
    assert splat_d.TileScheduleAttr(attr).segments.shape == (0, 9)


# -- wrong kinds --------------------------------------------------------------------------------

@pytest.mark.parametrize("view, attr, expected", [
    (splat_d.ACSRAttr, lambda: splat_d.window(3), "expected a #splat.acsr attribute"),
    (splat_d.TileScheduleAttr, lambda: splat_d.causal(), "expected a #splat.tile_schedule"),
    (splat_d.WindowAttr, lambda: splat_d.causal_window(3), "expected a #splat.window"),
    (splat_d.PieceAttr, lambda: ir.IntegerAttr.get(ir.IntegerType.get_signless(64), 4),
     "expected a #splat.piece attribute, got 4 : i64"),
    (splat_d.UnionAttr, lambda: splat_d.intersect([splat_d.causal()]), "expected a #splat.union"),
    (splat_d.PatternAttr, lambda: splat_d.acsr(8, 8, []), "expected a splat pattern"),
    (splat_d.pattern_view, lambda: splat_d.block_remainder(4, [0, 0]), "expected a splat pattern"),
])
def test_wrong_kind_casts_name_the_expected_kind(ctx, view, attr, expected):
    with pytest.raises(ValueError, match=expected):
        view(attr())


def test_cast_of_a_non_attribute_is_a_type_error(ctx):
    with pytest.raises(TypeError, match="ACSRAttr needs an ir.Attribute, got str"):
        splat_d.ACSRAttr("#splat.acsr<lq = 8, lk = 8, pieces = []>")
    assert not splat_d.ACSRAttr.isinstance("#splat.acsr")


def test_long_attributes_are_shortened_in_errors(ctx):
    attr = splat_d.tile_schedule(64, 64, [0, 1, 64, 0, 0] * 1000, [])
    with pytest.raises(ValueError) as info:
        splat_d.ACSRAttr(attr)
    assert len(str(info.value)) < 200 and str(info.value).endswith("...")


# -- passes -------------------------------------------------------------------------------------

ATTENTION = """
func.func @f(%q: tensor<1x1x64x64xbf16>) -> tensor<1x1x64x64xbf16> {
  %o = splat.attention %q, %q, %q layout(#splat.window<w = 4>)
      : tensor<1x1x64x64xbf16>, tensor<1x1x64x64xbf16>, tensor<1x1x64x64xbf16> -> tensor<1x1x64x64xbf16>
  return %o : tensor<1x1x64x64xbf16>
}
"""


def test_wrong_kind_layout_in_a_pass_is_a_located_error(ctx):
    # The ops' verifier rejects such a layout, but Python can still store one.
    module = ir.Module.parse(ATTENTION)
    attention = module.body.operations[0].regions[0].blocks[0].operations[0].operation
    attention.attributes["layout"] = splat_d.piece(0, 8, 1, 1, 0, 0, 0, 1)
    with pytest.raises(ir.MLIRError) as info:
        build_pass_manager("builtin.module(splat-analyze-regularity)").run(module.operation)
    diagnostic = info.value.error_diagnostics[0]
    assert "splat-analyze-regularity: cannot analyse" in diagnostic.message
    assert "expected a splat pattern attribute" in diagnostic.message
    assert str(diagnostic.location) == 'loc("-":3:8)'


def test_attribute_views_survive_other_libraries_retyping_pythonapi(monkeypatch):
    """``ctypes.pythonapi.PyCapsule_New`` / ``PyCapsule_GetPointer`` are one object per
    process; jax.ffi.pycapsule, for one, gives PyCapsule_New a destructor callback type. The
    attribute getters (which make capsules) and the dialect registration keep working."""
    import ctypes

    destructor = ctypes.CFUNCTYPE(None, ctypes.py_object)
    new, get = ctypes.pythonapi.PyCapsule_New, ctypes.pythonapi.PyCapsule_GetPointer
    monkeypatch.setattr(new, "argtypes", (ctypes.c_void_p, ctypes.c_char_p, destructor))
    monkeypatch.setattr(get, "argtypes", (ctypes.py_object, ctypes.c_void_p))
    rng = np.random.default_rng(3)
    a = analyze(rng.random((80, 112)) < 0.1)  # has a remainder: a getter returns a capsule
    assert a.remainder is not None
    with make_context():
        assert attr_to_acsr(acsr_to_attr(a)) == a
