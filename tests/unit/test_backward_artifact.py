"""Backward artifacts (issue 14; docs/design.md §6): ``splat.compile(variant="backward")``
builds the dQ and dK/dV kernels with the row schedule and the column schedule, and the runtime
checks them against the ABI and the tables against each other before any launch."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("mlir")

import splat  # noqa: E402
from splat import abi  # noqa: E402
from splat import testing as T  # noqa: E402
from splat.lowering.backward_kernels import DkvConfig, DqConfig  # noqa: E402
from splat.runtime import artifact as A  # noqa: E402
from splat.runtime import integrity as I  # noqa: E402
from splat.runtime import launcher as L  # noqa: E402
from splat.runtime.artifact import Artifact, ArtifactError  # noqa: E402
from splat.tiling.backward import column_schedule  # noqa: E402
from splat.tiling.schedule import build_schedule  # noqa: E402


@pytest.fixture(scope="module")
def arts() -> dict:
    window = T.mask_numpy(T.F("window", w=64), 512)
    strided = T.mask_numpy(T.F("strided", local=128, stride=128), 4096)
    return {"window": (window, splat.compile(window, variant="backward", head_dim=64)),
            "strided": (strided, splat.compile(strided, variant="backward", head_dim=64)),
            "irregular": (T.irregular_mask(5), splat.compile(T.irregular_mask(5),
                                                             variant="backward", head_dim=128,
                                                             dtype="f16"))}


@pytest.mark.parametrize("name", ["window", "irregular"])
def test_the_artifact_holds_both_schedules_and_both_kernels(arts, name):
    mask, art = arts[name]
    masked = name == "irregular"
    D, dtype = art.head_dim, art.dtype
    assert art.manifest["variant"] == "backward"
    assert [k["name"] for k in art.kernels] == [abi.dq_kernel_name(dtype, D, masked),
                                                abi.dkv_kernel_name(dtype, D, masked)]
    assert [k["grid"] for k in art.kernels] == ["row_tiles", "col_tiles"]
    assert art.kernels[1]["tile_table"] == "col_tiles"
    for entry in art.kernels:
        assert f".entry {entry['name']}(" in art.ptx["kernel.ptx"]
    # the tables are the tiler's, computed here independently of the passes
    acsr = splat.analyze(mask)
    bn = abi.backward_block_n(D)
    rows = build_schedule(acsr, abi.BLOCK_M, bn, order="heavy_first")
    cols = column_schedule(acsr, abi.BLOCK_M, bn)
    np.testing.assert_array_equal(art.tables["row_tiles"], rows.row_tiles)
    np.testing.assert_array_equal(art.tables["col_tiles"], cols.row_tiles)
    np.testing.assert_array_equal(art.tables["col_segments"], cols.segments)
    assert ("col_mask_bits" in art.tables) == cols.has_masks
    plan = L.check_artifact(art)
    assert (plan.tile_Lq, plan.tile_Lk) == mask.shape


def test_layouts_that_want_two_groupings_split_both_schedules(arts):
    """Strided rows (a local window plus every stride-th key) split as the forward's do: the
    accumulating dQ and dK/dV kernels run the splits after the plain ones."""
    mask, art = arts["strided"]
    assert [k["name"] for k in art.kernels] == [
        abi.dq_kernel_name("bf16", 64), abi.dq_kernel_name("bf16", 64, accumulate=True),
        abi.dkv_kernel_name("bf16", 64), abi.dkv_kernel_name("bf16", 64, accumulate=True)]
    assert [k["tile_table"] for k in art.kernels] == [
        "row_tiles", "split_row_tiles", "col_tiles", "col_split_tiles"]
    assert L.check_artifact(art).tile_Lk == mask.shape[1]
    # together the two column schedules walk fewer key tiles than the unsplit one
    unsplit = column_schedule(splat.analyze(mask), abi.BLOCK_M, 64)
    assert art.manifest["col_stats"]["key_tiles"] + art.manifest["col_split_stats"][
        "key_tiles"] < unsplit.stats()["key_tiles"]


def test_a_column_split_covering_a_key_twice_is_refused(arts, tmp_path):
    art = arts["strided"][1].copy()
    t = art.tables["col_split_tiles"]
    t[1, 0], t[1, 1] = t[0, 0], t[0, 1]  # the second tile repeats the first one's keys
    _refused(art, "is in two tiles of col_split_tiles", tmp_path)


def test_a_saved_artifact_loads_and_checks(arts, tmp_path):
    _, art = arts["irregular"]
    loaded = A.load(A.save(art, tmp_path / "b"))
    assert loaded.key == art.key and L.check_artifact(loaded).tile_Lk == 320


@pytest.mark.parametrize("mma", abi.MMA_KINDS)
def test_shared_memory_restated_by_the_runtime_agrees_with_the_kernels(mma):
    for D in abi.BACKWARD_HEAD_DIMS:
        for block_m in abi.backward_block_ms(mma, D):
            for bn in abi.BLOCK_N_CHOICES:
                for masked in (False, True):
                    kw = dict(mask_tiles=masked, mma=mma, block_m=block_m)
                    dq, dkv = DqConfig("bf16", D, bn, **kw), DkvConfig("bf16", D, bn, **kw)
                    assert I.backward_shared_bytes("dq", D, bn, masked, mma, block_m) == \
                        dq.shared_bytes
                    assert I.backward_shared_bytes("dkv", D, bn, masked, mma, block_m) == \
                        dkv.shared_bytes
                    if bn == abi.backward_block_n(D):  # the default tiles fit an H100's CTA
                        assert max(dq.shared_bytes, dkv.shared_bytes) <= abi.SM90_SHARED_BYTES


def test_128_row_tiles_are_a_wgmma_build():
    """Two warpgroups a CTA, both schedules on 128-row tiles; mma.sync has no such build."""
    mask = T.irregular_mask(5)
    art = splat.compile(mask, variant="backward", head_dim=128, mma="wgmma", block_m=128)
    acsr = splat.analyze(mask)
    bn = abi.backward_block_n(128)
    np.testing.assert_array_equal(art.tables["row_tiles"],
                                  build_schedule(acsr, 128, bn, order="heavy_first").row_tiles)
    np.testing.assert_array_equal(art.tables["col_tiles"], column_schedule(acsr, 128, bn).row_tiles)
    assert {(k["block_m"], k["block"][0], k["mma"]) for k in art.kernels} == {(128, 256, "wgmma")}
    assert ".maxntid 256, 1, 1" in art.ptx["kernel.ptx"]
    assert L.check_artifact(art).tile_Lk == mask.shape[1]
    with pytest.raises(ValueError, match="the mma_sync backward kernels run 64-row tiles"):
        DqConfig("bf16", 128, block_m=128)
    with pytest.raises(ValueError, match="block_m: the wgmma backward kernels run 64-row tiles "
                                         "at head dim 256"):
        splat.compile(mask, variant="backward", head_dim=256, mma="wgmma", block_m=128)


@pytest.mark.parametrize("name", ["strided", "irregular"])
def test_the_wgmma_build_runs_the_mma_sync_builds_schedules(arts, name):
    """sm_90a's default backward (``abi.BACKWARD_WGMMA_BY_DEFAULT``) is the wgmma build: the
    same kernels, tables and launches as ``mma="mma_sync"``'s on Hopper warpgroup MMA (split
    schedules and mask tiles included); the manifest records the instruction per kernel and the
    runtime checks the wgmma layout's shared memory."""
    mask, art = arts[name]
    sync = splat.compile(mask, variant="backward", head_dim=art.head_dim, dtype=art.dtype,
                         mma="mma_sync")
    assert [k["name"] for k in art.kernels] == [k["name"] for k in sync.kernels]
    assert {k["mma"] for k in art.kernels} == {"wgmma"}
    assert {k["mma"] for k in sync.kernels} == {"mma_sync"}
    assert sorted(art.tables) == sorted(sync.tables)
    for t in art.tables:
        np.testing.assert_array_equal(art.tables[t], sync.tables[t])
    ptx = art.ptx["kernel.ptx"]
    assert "wgmma.mma_async" in ptx and "mma.sync" not in ptx
    for entry in art.kernels:
        assert entry["shared_bytes"] == I.backward_shared_bytes(
            entry["name"].split("_")[2], art.head_dim, entry["block_n"],
            entry["name"].endswith("_masked"), "wgmma")
    assert L.check_artifact(art).tile_Lk == mask.shape[1]
    assert art.key != sync.key


def test_a_backward_artifact_mixing_instructions_is_refused(arts, tmp_path):
    art = arts["strided"][1].copy()
    art.manifest["kernels"][1]["mma"] = "mma_sync"
    _refused(art, "the same in every kernel", tmp_path)


def _refused(art: Artifact, match: str, tmp_path) -> None:
    with pytest.raises(ArtifactError, match=match):
        L.check_artifact(art)
    with pytest.raises(ArtifactError, match=match):  # the same with fresh digests on disk
        A.load(A.save(art, tmp_path / f"t{len(list(tmp_path.iterdir()))}"))


def test_column_tiles_covering_a_key_twice_are_refused(arts, tmp_path):
    art = arts["window"][1].copy()
    art.tables["col_tiles"][1, 0] = art.tables["col_tiles"][0, 0]  # two tiles start at one key
    _refused(art, "tiles of col_tiles: they do not partition|do not partition", tmp_path)


def test_a_column_segment_reading_past_the_queries_is_refused(arts, tmp_path):
    art = arts["window"][1].copy()
    art.tables["col_segments"][0, 0] = 10_000  # query row 10 000 of a 512-row problem
    _refused(art, "column schedules read query row", tmp_path)


def test_column_mask_tables_come_together(arts, tmp_path):
    art = arts["irregular"][1].copy()
    del art.tables["col_mask_bits"]
    del art.manifest["tables"]["col_mask_bits"]
    _refused(art, "col_mask_bits", tmp_path)


def test_column_mask_bits_outside_their_tile_are_refused(arts, tmp_path):
    art = arts["irregular"][1].copy()
    bits = art.tables["col_mask_bits"]
    narrow = np.flatnonzero(art.tables["col_mask_tiles"][:, 1] < 32 * bits.shape[2])
    assert narrow.size, "the irregular mask has column mask tiles narrower than a tile"
    bits[narrow[0], 0, -1] = np.int32(-2**31)  # the last bit of the last word: past its queries
    _refused(art, "col_mask_bits.*sets a bit outside", tmp_path)


@pytest.mark.parametrize("field, value, match", [
    ("shared_bytes", 1024, "shared_bytes"),
    ("grid", "row_tiles", "grid"),
    ("block_m", 32, "block_m 32 is not one of"),
    ("mma", "mma_sync", "shared_bytes .* its mma_sync layout"),
    ("mma", "hmma", "one of"),
])
def test_kernel_entries_off_the_abi_are_refused(arts, tmp_path, field, value, match):
    art = arts["window"][1].copy()
    for entry in art.manifest["kernels"]:
        entry[field] = value
    _refused(art, match, tmp_path)


def test_a_backward_artifact_cannot_pose_as_a_forward_one(arts, tmp_path):
    art = arts["window"][1].copy()
    art.manifest["variant"] = "fused"
    _refused(art, "the ABI of a fused artifact", tmp_path)


def test_the_compiler_refuses_what_the_backward_kernels_do_not_run():
    mask = T.mask_numpy(T.F("window", w=64), 256)
    for kwargs, match in ((dict(mma="wgmma", target="sm_80"), "wgmma needs chip sm_90a"),
                          (dict(block_m=128, mma="mma_sync"), "mma_sync backward kernels run 64-row"),
                          (dict(kv_loads="producer"), "fused variant"),
                          (dict(warp_rows=32), "16-row")):
        with pytest.raises(ValueError, match=match):
            splat.compile(mask, variant="backward", head_dim=128, **kwargs)


def test_the_manifest_is_plain_json(arts):
    json.dumps(arts["irregular"][1].manifest, allow_nan=False)


def test_a_missing_backward_artifact_says_how_to_get_one(arts, monkeypatch, tmp_path):
    """Without the compiler and without a prebuilt backward, the first backward call's lookup
    fails with an error naming the artifact and how to pack its backward."""
    from splat.runtime.prepared import resolve_backward
    from splat.runtime.validate import SplatInputError

    forward = splat.compile(T.mask_numpy(T.F("window", w=64), 512), head_dim=64)
    monkeypatch.setenv("SPLAT_NO_COMPILE", "1")
    monkeypatch.setenv("SPLAT_ARTIFACT_DIR", str(tmp_path))
    (tmp_path / "catalog.json").write_text(json.dumps({"compiler_version": "v1", "entries": []}))
    tmp_path.chmod(0o755)
    with pytest.raises(SplatInputError, match=rf"backward artifact of artifact {forward.key[:12]}"
                                              rf".*no prebuilt artifact.*--bench --backward"):
        resolve_backward(forward)


def test_a_handle_cannot_be_prepared_from_a_backward_artifact(arts):
    from splat.runtime.prepared import resolve_prepared
    from splat.runtime.validate import SplatInputError

    with pytest.raises(SplatInputError, match="^artifact: .*holds backward kernels"):
        resolve_prepared(None, None, None, None, None, arts["window"][1], "sm_90a", "fused")


@pytest.mark.parametrize("by_default", [False, True])
def test_auto_takes_wgmma_only_where_switched_on_and_the_chip_has_it(monkeypatch, by_default):
    """``mma="auto"`` (the default) builds the backward on mma.sync until
    ``abi.BACKWARD_WGMMA_BY_DEFAULT`` is switched on, then on wgmma for sm_90a only."""
    monkeypatch.setattr(abi, "BACKWARD_WGMMA_BY_DEFAULT", by_default)
    mask = T.mask_numpy(T.F("window", w=64), 256)
    for target, want in (("sm_90a", "wgmma" if by_default else "mma_sync"), ("sm_80", "mma_sync")):
        art = splat.compile(mask, variant="backward", head_dim=64, target=target)
        assert {k["mma"] for k in art.kernels} == {want}, target
        assert ("wgmma.mma_async" in art.ptx["kernel.ptx"]) == (want == "wgmma")
