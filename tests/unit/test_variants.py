"""Kernel variants (splat.tiling.variants): the checked table, the choice by measured cost, and
how the stages carry the chosen variant into the kernel and the manifest."""

import json

import numpy as np
import pytest

from splat import abi
from splat import analyze
from splat.patterns import causal_window, strided
from splat.tiling import build_schedule, plan_split
from splat.tiling import variants as V

DEFAULT = {"block_m": 64, "warp_rows": 16, "ms_per_unit": {"64": 1e-3, "128": 2e-3}}
TALL = {"block_m": 128, "warp_rows": 32, "ms_per_unit": {"64": 1.6e-3, "128": 3.2e-3}}


def table(tmp_path, variants, **extra):
    path = tmp_path / "cost_model.json"
    path.write_text(json.dumps(dict({"format": "splat-cost-model/1", "weights": {}},
                                    **({"variants": variants} if variants is not None else {}),
                                    **extra)))
    return path


def variants(*entries):
    return tuple(V._variant(n, e, V.MODEL_FILE) for n, e in enumerate(entries))


def test_without_a_list_only_the_default_is_offered(tmp_path):
    found = V.load_variants(table(tmp_path, None))
    assert found == (V.DEFAULT,)
    assert V.variants_for(128, found) == (V.DEFAULT,)


def test_the_committed_table_loads_with_the_default_first():
    assert (V.VARIANTS[0].block_m, V.VARIANTS[0].warp_rows) == (abi.BLOCK_M, abi.WARP_ROWS)
    for v in V.VARIANTS:
        assert v.block_m in abi.BLOCK_M_CHOICES and v.warp_rows in abi.WARP_ROWS_CHOICES


@pytest.mark.parametrize("entries, words", [
    ([], "non-empty"),
    ([TALL, DEFAULT], "default variant"),
    ([DEFAULT, dict(TALL, block_m=96)], "block_m"),
    ([DEFAULT, dict(TALL, warp_rows=8)], "warp_rows"),
    ([DEFAULT, dict(TALL, block_m=True)], "block_m"),
    ([DEFAULT, dict(TALL, ms_per_unit={"512": 1e-3})], "head dim"),
    ([DEFAULT, dict(TALL, ms_per_unit={"256": 1e-3})], "not built at head dim 256"),
    ([DEFAULT, dict(TALL, ms_per_unit={"64": -1.0})], "positive time"),
    ([DEFAULT, dict(TALL, ms_per_unit={"64": float("nan")})], "positive time"),
    ([DEFAULT, dict(TALL, ms_per_unit={"64": "1"})], "positive time"),
    ([DEFAULT, dict(TALL, ms_per_unit=[1.0])], "ms_per_unit"),
    ([DEFAULT, {"block_m": 128}], "must hold"),
    ([DEFAULT, dict(TALL, block_m=64)], "same block_m"),
    ([DEFAULT, dict(TALL, block_n={"128": 48})], "block_n"),
    ([DEFAULT, dict(TALL, block_n={"96": 64})], "head dim"),
    ([DEFAULT, dict(TALL, block_n=[64])], "block_n"),
])
def test_a_bad_table_is_refused_by_name(tmp_path, entries, words):
    with pytest.raises(ValueError, match=words):
        V.load_variants(table(tmp_path, entries))


def test_a_variant_is_offered_only_where_it_and_the_default_were_measured():
    tall_64_only = dict(TALL, ms_per_unit={"64": 1.6e-3})
    vs = variants(DEFAULT, tall_64_only)
    assert [v.block_m for v in V.variants_for(64, vs)] == [64, 128]
    assert [v.block_m for v in V.variants_for(128, vs)] == [64]
    vs = variants(dict(DEFAULT, ms_per_unit={"128": 2e-3}), TALL)
    assert [v.block_m for v in V.variants_for(64, vs)] == [64]


def test_a_variant_may_have_its_own_key_tile_width():
    vs = variants(DEFAULT, dict(TALL, block_n={"128": 64}))
    assert vs[1].block_n_for(128) == 64 and vs[1].block_n_for(64) == abi.DEFAULT_BLOCK_N[64]
    assert vs[0].block_n_for(128) == abi.DEFAULT_BLOCK_N[128]
    cheap = dict(TALL, block_n={"128": 64}, ms_per_unit={"128": 1e-9})
    v, s, _ = V.choose_schedule(_dense_tiles(), 128, variants=variants(DEFAULT, cheap))
    assert (v.block_m, s.block_m, s.block_n) == (128, 128, 64)
    # an explicit width applies to every variant
    _, s, _ = V.choose_schedule(_dense_tiles(), 128, 32, variants=variants(DEFAULT, cheap))
    assert s.block_n == 32


def test_warp_rows_follow_the_tile_height():
    vs = variants(DEFAULT, TALL)
    assert V.warp_rows_for(128, vs) == 32 and V.warp_rows_for(64, vs) == 16
    assert V.warp_rows_for(128, variants(DEFAULT)) == abi.WARP_ROWS  # not listed: the default
    assert V.resolve_warp_rows(16, 128, "mma_sync") == 16  # an explicit value stays
    assert V.resolve_warp_rows(0, 128, "wgmma") == abi.WARP_ROWS


def _dense_tiles():
    return analyze(causal_window(700, 2048))


def test_the_cheaper_variant_by_measured_time_wins():
    acsr = _dense_tiles()
    units = {bm: V.schedule_cost(build_schedule(acsr, bm, 32)) for bm in (64, 128)}
    # the 128-row schedule has about half the 64-row one's units, each costing ~2x
    ratio = units[128] / units[64]
    cheap = dict(TALL, ms_per_unit={"128": 2e-3 / ratio * 0.9})
    dear = dict(TALL, ms_per_unit={"128": 2e-3 / ratio * 1.1})
    v, s, split = V.choose_schedule(acsr, 128, 32, variants=variants(DEFAULT, cheap))
    assert v.block_m == 128 and s.block_m == 128 and split is None
    ref = build_schedule(acsr, 128, 32)
    assert np.array_equal(s.row_tiles, ref.row_tiles) and np.array_equal(s.segments, ref.segments)
    v, s, _ = V.choose_schedule(acsr, 128, 32, variants=variants(DEFAULT, dear))
    assert v.block_m == 64 and s.block_m == 64


def test_another_variant_must_win_by_the_margin():
    acsr = _dense_tiles()
    units = {bm: V.schedule_cost(build_schedule(acsr, bm, 32)) for bm in (64, 128)}
    ratio = units[128] / units[64]
    for factor, block_m in ((0.98, 64), (V.SWITCH_MARGIN * 0.98, 128)):
        tall = dict(TALL, ms_per_unit={"128": 2e-3 / ratio * factor})
        v, _, _ = V.choose_schedule(acsr, 128, 32, variants=variants(DEFAULT, tall))
        assert v.block_m == block_m, factor


def test_a_tie_keeps_the_default():
    acsr = _dense_tiles()
    units = {bm: V.schedule_cost(build_schedule(acsr, bm, 64)) for bm in (64, 128)}
    tie = dict(TALL, ms_per_unit={"64": 1e-3 * units[64] / units[128]})
    v, _, _ = V.choose_schedule(acsr, 64, 64, variants=variants(DEFAULT, tie))
    assert v.block_m == 64


def test_split_kv_is_priced_with_both_launches():
    acsr = analyze(strided(128, 128, 4096))  # split-KV at 64-row tiles
    vs = variants(DEFAULT, dict(TALL, ms_per_unit={"64": 1e2}))  # never cheaper
    v, s, split = V.choose_schedule(acsr, 64, 64, variants=vs)
    ref, ref_split = plan_split(acsr, 64, 64, single=build_schedule(acsr, 64, 64))
    assert v.block_m == 64
    assert np.array_equal(s.row_tiles, ref.row_tiles)
    assert split is not None and ref_split is not None
    assert np.array_equal(split.segments, ref_split.segments)
    _, _, none = V.choose_schedule(acsr, 64, 64, variants=vs, split_kv=False)
    assert none is None


def test_fragmented_layouts_keep_the_default(monkeypatch):
    acsr = _dense_tiles()
    cheap = dict(TALL, ms_per_unit={"128": 1e-9})
    monkeypatch.setattr(V, "MAX_PRICED_PARTS", len(acsr.pieces) - 1)
    v, _, _ = V.choose_schedule(acsr, 128, 32, variants=variants(DEFAULT, cheap))
    assert v.block_m == 64


def test_a_head_dim_the_kernels_lack_is_tiled_with_the_default_variant():
    """The tile pass tiles any head dim (the lowering is what refuses the unsupported ones, with
    a located error): block-m=0 there gives the default variant at D = 64's key tile width."""
    from mlir import ir

    from splat.ir import make_context
    from splat.pipeline import build_pass_manager

    v, s, _ = V.choose_schedule(_dense_tiles(), 16)
    assert (v.block_m, s.block_m, s.block_n) == (abi.BLOCK_M, abi.BLOCK_M, abi.DEFAULT_BLOCK_N[64])
    text = """func.func @f(%q: tensor<1x1x256x16xbf16>) -> tensor<1x1x256x16xbf16> {
      %o = splat.attention %q, %q, %q layout(#splat.window<w = 8>)
          : tensor<1x1x256x16xbf16>, tensor<1x1x256x16xbf16>, tensor<1x1x256x16xbf16>
          -> tensor<1x1x256x16xbf16>
      return %o : tensor<1x1x256x16xbf16>
    }"""
    with make_context(), ir.Location.unknown():
        module = ir.Module.parse(text)
        build_pass_manager("builtin.module(splat-analyze-regularity, splat-tile-acsr{block-m=0})"
                           ).run(module.operation)
        assert "schedule(<block_m = 64, block_n = 64," in str(module)


def test_tile_layout_is_build_schedule_then_split_kv():
    acsr = analyze(strided(128, 128, 4096))
    s, split = V.tile_layout(acsr, 64, 64)
    ref, ref_split = plan_split(acsr, 64, 64, single=build_schedule(acsr, 64, 64))
    assert np.array_equal(s.segments, ref.segments) and np.array_equal(split.segments,
                                                                       ref_split.segments)
    s, none = V.tile_layout(acsr, 64, 64, split_kv=False)
    assert none is None and np.array_equal(s.segments, build_schedule(acsr, 64, 64).segments)


# --- wgmma variants: listed beside the mma.sync ones, offered where the target has wgmma ------

WGMMA = {"block_m": 128, "warp_rows": 16, "mma": "wgmma", "kv_loads": "producer",
         "ms_per_unit": {"128": 1.5e-3}, "block_n": {"128": 64}}


@pytest.mark.parametrize("entry, words", [
    (dict(WGMMA, mma="hmma"), "mma must be one of"),
    (dict(WGMMA, mma="mma_sync"), "'producer' with mma wgmma only"),
    (dict(WGMMA, kv_loads="tma"), "kv_loads must be one of"),
    (dict(WGMMA, warp_rows=32), "16-row warps"),
    (dict(WGMMA, ms_per_unit={"64": 1e-3}), "not built at head dim 64"),
])
def test_a_bad_wgmma_entry_is_refused_by_name(tmp_path, entry, words):
    with pytest.raises(ValueError, match=words):
        V.load_variants(table(tmp_path, [DEFAULT, entry]))


def test_wgmma_variants_share_a_tile_height_with_mma_sync_ones_but_not_with_each_other(tmp_path):
    found = V.load_variants(table(tmp_path, [DEFAULT, TALL, WGMMA]))
    assert [v.name for v in found] == ["m64w16", "m128w32", "m128w16-wgmma-producer"]
    # a manifest's kernel entry names the same variant (results: bench_corpus, corpus_by_variant)
    assert abi.kernel_variant_name({"block_m": 128, "warp_rows": 16, "mma": "wgmma",
                                    "load_warpgroup": True}) == found[2].name
    assert abi.kernel_variant_name({}) == found[0].name
    assert V.warp_rows_for(128, found) == 32  # the mma.sync variant's
    with pytest.raises(ValueError, match="same block_m"):
        V.load_variants(table(tmp_path, [DEFAULT, WGMMA, dict(WGMMA, ms_per_unit={"128": 1.0})]))
    assert len(V.load_variants(table(tmp_path, [DEFAULT, WGMMA, dict(WGMMA, kv_loads="compute")]))
               ) == 3


def test_which_variants_each_instruction_offers():
    compute = dict(WGMMA, kv_loads="compute", block_m=64)
    vs = variants(DEFAULT, TALL, WGMMA, compute)
    names = lambda offer: [v.name for v in offer]  # noqa: E731
    assert names(V.variants_for(128, vs)) == ["m64w16", "m128w32"]  # mma.sync: as before
    assert names(V.variants_for(128, vs, mma="auto")) == [
        "m64w16", "m128w32", "m128w16-wgmma-producer", "m64w16-wgmma"]
    assert names(V.variants_for(128, vs, mma="wgmma")) == ["m128w16-wgmma-producer",
                                                            "m64w16-wgmma"]
    assert names(V.variants_for(128, vs, mma="wgmma", kv_loads="compute")) == ["m64w16-wgmma"]
    # not measured at the head dim, or none listed: the wgmma default alone, asked for
    assert V.variants_for(64, vs, mma="auto") == V.variants_for(64, vs)
    assert V.variants_for(64, vs, mma="wgmma") == (V.wgmma_default(),)
    assert V.variants_for(128, variants(DEFAULT), mma="wgmma", kv_loads="producer") == (
        V.wgmma_default("producer"),)
    assert V.wgmma_default("producer").load_warpgroup and V.wgmma_default().block_m == 128


def test_mma_auto_takes_a_wgmma_variant_where_it_is_measured_cheaper():
    acsr = _dense_tiles()
    cheap = dict(WGMMA, ms_per_unit={"128": 1e-9})
    v, s, _ = V.choose_schedule(acsr, 128, variants=variants(DEFAULT, TALL, cheap), mma="auto")
    assert (v.mma, v.load_warpgroup, s.block_m, s.block_n) == ("wgmma", True, 128, 64)
    dear = dict(WGMMA, ms_per_unit={"128": 1.0})
    v, _, _ = V.choose_schedule(acsr, 128, variants=variants(DEFAULT, TALL, dear), mma="auto")
    assert v.mma == "mma_sync"
    # mma_sync never prices it
    v, _, _ = V.choose_schedule(acsr, 128, variants=variants(DEFAULT, TALL, cheap))
    assert v.mma == "mma_sync"


def test_the_kernel_build_follows_the_chosen_variant_unless_an_option_names_it():
    chosen = {"mma": "wgmma", "kv_loads": "producer", "warp_rows": 16}
    K = V.resolve_kernel
    assert K("auto", "auto", 0, chosen, 128, 128) == V.Kernel("wgmma", True, 16)
    assert K("auto", "compute", 0, chosen, 128, 128) == V.Kernel("wgmma", False, 16)
    assert K("mma_sync", "auto", 0, chosen, 128, 128) == V.Kernel("mma_sync", False,
                                                                  V.warp_rows_for(128))
    assert K("auto", "auto", 0, {}, 64, 64) == V.Kernel("mma_sync", False, 16)
    assert K("auto", "producer", 0, {}, 128, 128) == V.Kernel("wgmma", True, 16)
    with pytest.raises(ValueError, match="producer warpgroup need mma wgmma"):
        K("mma_sync", "producer", 0, {}, 64, 64)
    with pytest.raises(ValueError, match="must be 16 with mma wgmma"):
        K("wgmma", "auto", 32, {}, 128, 128)
    with pytest.raises(ValueError, match="needs head dim <= 128"):
        K("mma_sync", "auto", 32, {}, 128, 256)


def test_compile_builds_the_variant_the_table_prices_lowest_for_the_target(monkeypatch):
    """A wgmma variant measured cheaper is what splat.compile builds on sm_90a (the manifest
    and the PTX say so, and the key differs from the mma.sync build's); on sm_90 the same
    table gives the mma.sync kernel."""
    import splat

    cheap = variants(DEFAULT, TALL, dict(WGMMA, ms_per_unit={"128": 1e-9}))
    mask = np.abs(np.arange(512)[:, None] - np.arange(512)[None, :]) < 96
    before = splat.compile(mask, head_dim=128)
    monkeypatch.setattr(V, "VARIANTS", cheap)
    art = splat.compile(mask, head_dim=128)
    k = art.manifest["kernels"][0]
    assert (k["mma"], k["load_warpgroup"], k["block_m"], k["block_n"]) == ("wgmma", True, 128, 64)
    assert "wgmma.mma_async" in art.ptx["kernel.ptx"] and "mbarrier" in art.ptx["kernel.ptx"]
    older = splat.compile(mask, head_dim=128, target="sm_90")
    assert older.manifest["kernels"][0]["mma"] == "mma_sync"
    assert "wgmma" not in older.ptx["kernel.ptx"]
    forced = splat.compile(mask, head_dim=128, mma="mma_sync")
    assert forced.manifest["kernels"][0]["mma"] == "mma_sync"
    assert before.manifest["kernels"][0]["mma"] == "mma_sync"  # the committed table
