"""The runtime refuses tampered, mismatched or unsafe artifacts (issue 11; docs/runtime.md, "Trust
model"): content digests written at save and checked at load, the runtime's own bounds and ABI
checks of every table and kernel, key checks for the cache and $SPLAT_ARTIFACT_DIR, and who may
write the directories kernels are loaded from. One test per tamper class, then a bounded
hypothesis fuzz of saved artifacts (scripts/fuzz_artifacts.py runs the long version)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from splat import abi
from splat.runtime import artifact as A
from splat.runtime import cache as C
from splat.runtime import integrity as I
from splat.runtime import launcher as L
from splat.runtime import resolve as R
from splat.runtime import trust as TR
from splat.runtime.artifact import Artifact, ArtifactError
from splat.runtime.validate import SplatInputError

pytest.importorskip("mlir")
splat = pytest.importorskip("splat.compiler")
from splat import patterns  # noqa: E402

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "artifacts"

# The long fuzz's helpers (a tamper copy, artifact equivalence, JSON leaves) serve this file too.
_spec = importlib.util.spec_from_file_location(
    "fuzz_artifacts", Path(__file__).resolve().parents[2] / "scripts" / "fuzz_artifacts.py")
fuzz = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("fuzz_artifacts", fuzz)
_spec.loader.exec_module(fuzz)
clone, same_meaning, json_leaves = fuzz.clone, fuzz.same_meaning, fuzz.json_leaves

# ----------------------------------------------------------------------------------- fixtures


def _masked_mask() -> np.ndarray:
    """A band plus scattered keys: segments and mask tiles in one schedule (the _masked kernel)."""
    rng = np.random.default_rng(3)
    i = np.arange(150)[:, None]
    j = np.arange(170)[None, :]
    return (np.abs(i - j) <= 6) | (rng.random((150, 170)) < 0.04)


def _candidates() -> dict:
    """Per kernel variant, patterns that compile to it (first that does wins): which patterns
    the tiler masks or splits is its own business, so each variant has fallbacks."""
    from splat import testing as T

    gaps = next(f for f in T.TEST_FAMILIES if str(f).startswith("strided_gaps"))
    return {
        "fused": [patterns.window(16, 200), patterns.window(8, 256)],
        "masked": [_masked_mask(), patterns.strided(16, 8, 300)],
        "split": [patterns.strided(16, 8, 300), lambda: T.build_pattern(gaps, 2048)[0],
                  patterns.strided(40, 32, 2048)],
        "decomposed": [patterns.window(8, 100)],
    }


_WANTED = {
    "fused": lambda a: [k["name"] for k in a.kernels] == ["splat_fwd_bf16_d64"],
    "masked": lambda a: "mask_ptr" in a.tables and "segments" in a.tables and len(a.kernels) == 1,
    "split": lambda a: len(a.kernels) == 2,
    "decomposed": lambda a: a.manifest.get("variant") == "decomposed",
}
PATTERN: dict = {}  # the pattern each variant's artifact was compiled from


@pytest.fixture(scope="module")
def arts() -> dict:
    """Small compiled artifacts of every kernel variant (about 1.5 s for all four); a variant no
    candidate compiles to is absent, and the tests that need it skip."""
    out = {}
    for name, cands in _candidates().items():
        for pat in cands:
            pat = pat() if callable(pat) and not hasattr(pat, "mask") else pat
            kw = {"variant": "decomposed"} if name == "decomposed" else {}
            art = splat.compile(pat, head_dim=64, **kw)
            if _WANTED[name](art):
                out[name], PATTERN[name] = art, pat
                break
    return out


def need(arts: dict, *names: str) -> None:
    for n in names:
        if n not in arts:
            pytest.skip(f"no candidate pattern compiles to a {n} artifact with this tiler")


def saved(art: Artifact, tmp_path: Path, name: str = "a") -> Path:
    return A.save(art, tmp_path / name)


def edit_manifest(d: Path, fn) -> None:
    """Edit the manifest on disk without recomputing its digests (a tampering writer)."""
    m = json.loads((d / "manifest.json").read_text())
    fn(m)
    (d / "manifest.json").write_text(json.dumps(m))


def resaved_fails(art: Artifact, tmp_path: Path, match: str) -> None:
    """A tampered artifact saved *with* fresh digests (a writer who recomputes them, or a buggy
    compiler): the runtime's own checks must refuse it at load and at launch."""
    with pytest.raises(ArtifactError, match=match):
        L.check_artifact(clone(art))
    d = A.save(art, tmp_path / f"resaved-{len(list(tmp_path.iterdir()))}")
    with pytest.raises(ArtifactError, match=match):
        A.load(d)


def set_table(art: Artifact, name: str, row, col, value) -> Artifact:
    out = clone(art)
    t = out.tables[name]
    t[(row, col) if col is not None else row] = value
    return out


# ------------------------------------------------------------------------- content digests


def test_save_records_digests_and_load_checks_them(arts, tmp_path):
    d = saved(arts["fused"], tmp_path)
    m = json.loads((d / "manifest.json").read_text())
    assert set(m[A.HASH_FIELD]) == {"manifest.json", "kernel.ptx", "row_tiles.npy", "segments.npy"}
    # the digest field is excluded from what it hashes: saving twice gives the same digests
    again = A.load(saved(A.load(d), tmp_path, "b"))
    assert again.manifest[A.HASH_FIELD] == m[A.HASH_FIELD]
    # the content, not the encoding: reformatted JSON and re-encoded tables still load
    (d / "manifest.json").write_text(json.dumps(m, indent=4, sort_keys=False))
    np.save(d / "segments.npy", np.asfortranarray(np.load(d / "segments.npy")))
    back = A.load(d)
    assert back.manifest == m and back.ptx == arts["fused"].ptx


def test_edited_ptx_is_refused(arts, tmp_path):
    d = saved(arts["fused"], tmp_path)
    text = (d / "kernel.ptx").read_text()
    (d / "kernel.ptx").write_text(text.replace("ret;", "ret;\n\tret;", 1))
    with pytest.raises(ArtifactError, match=r"kernel\.ptx: content hash mismatch"):
        A.load(d)
    (d / "kernel.ptx").write_bytes(text.encode()[:-3] + b"\xff\xfe\n")
    with pytest.raises(ArtifactError, match="not UTF-8"):
        A.load(d)


def test_changed_key_is_refused(arts, tmp_path):
    d = saved(arts["fused"], tmp_path)
    edit_manifest(d, lambda m: m.update(key="0" * 64))
    with pytest.raises(ArtifactError, match=r"manifest\.json: content hash mismatch"):
        A.load(d)


def test_edited_table_file_is_refused(arts, tmp_path):
    need(arts, "masked")
    d = saved(arts["masked"], tmp_path)
    bits = np.load(d / "mask_bits.npy")
    bits[0, 0, 0] ^= 1
    np.save(d / "mask_bits.npy", bits)
    with pytest.raises(ArtifactError, match=r"mask_bits\.npy: content hash mismatch"):
        A.load(d)


def test_artifact_without_digests_is_refused(arts, tmp_path):
    d = saved(arts["fused"], tmp_path)
    edit_manifest(d, lambda m: m.pop(A.HASH_FIELD))
    with pytest.raises(ArtifactError, match="records no content digests"):
        A.load(d)
    d = saved(arts["fused"], tmp_path, "b")
    edit_manifest(d, lambda m: m[A.HASH_FIELD].pop("segments.npy"))
    with pytest.raises(ArtifactError, match="lists files"):
        A.load(d)


# ---------------------------------------------------------------------- segment and row tables


@pytest.mark.parametrize("col, value, match", [
    (0, -1, "col0 >= 0"),  # negative col0
    (1, -1, "col_step >= 1"),  # negative col_step
    (1, 0, "col_step >= 1"),
    (2, -5, "ncols >= 0"),
    (2, 2**31 - 1, "past int32"),
    (3, -1, "not inside the"),  # rho_lo
    (4, 65, "not inside the"),  # rho_hi past the tile
    (7, 2**30, "overflows int32"),  # hi_a * 63 + hi_b
])
def test_bad_segment_values_are_refused(arts, tmp_path, col, value, match):
    resaved_fails(set_table(arts["fused"], "segments", 0, col, value), tmp_path, match)


def test_key_columns_past_lk_are_refused_at_the_call(arts):
    art = clone(arts["fused"])
    art.manifest["shapes"] = {"Lq": 200, "Lk": 200}
    art.tables["segments"][0, 0] = 190  # col0 + (ncols - 1) now reaches past 199
    with pytest.raises(ArtifactError, match="the tables read key"):
        L.check_artifact(art)
    art.manifest["shapes"] = None  # shape-generic: the call's Lk decides
    plan = L.check_artifact(clone(art))
    assert plan.min_Lk > 200


@pytest.mark.parametrize("col, delta", [
    (3, None),  # seg_begin < 0
    (4, 10**6),  # seg_end past the table
    (3, 1),  # seg_begin past seg_end
])
def test_segment_ranges_past_the_table_are_refused(arts, tmp_path, col, delta):
    rt = arts["fused"].tables["row_tiles"]
    tile = int(np.flatnonzero(rt[:, 4] - rt[:, 3] > 0)[0])
    value = -1 if delta is None else int(rt[tile, 4]) + delta
    resaved_fails(set_table(arts["fused"], "row_tiles", tile, col, value), tmp_path,
                  "not a range inside")


def test_two_tiles_sharing_a_segment_are_refused(arts, tmp_path):
    art = clone(arts["fused"])
    rt = art.tables["row_tiles"]
    rt[1, 3:5] = rt[0, 3:5]
    resaved_fails(art, tmp_path, "belongs to more than one tile")


def test_two_row_tiles_covering_the_same_rows_are_refused(arts, tmp_path):
    art = clone(arts["fused"])
    rt = art.tables["row_tiles"]
    # tile 1 now repeats tile 0's rows; sum(nrows) still equals the largest row + 1, which
    # was all the old check compared
    rt[1, 0], rt[1, 1], rt[1, 2] = rt[0, 0], rt[0, 1], rt[0, 2]
    resaved_fails(art, tmp_path, "do not partition")
    art = clone(arts["fused"])
    rt = art.tables["row_tiles"]
    rt[int(np.argmax(rt[:, 0])), 0] -= 1  # overlaps its neighbour by a row, drops the last row
    resaved_fails(art, tmp_path, "do not partition")


@pytest.mark.parametrize("col, value, match", [
    (0, -64, "row0 >= 0"), (1, 0, "row_step >= 1"), (2, 0, "1 <= nrows"), (2, 65, "1 <= nrows"),
])
def test_bad_row_tile_values_are_refused(arts, tmp_path, col, value, match):
    resaved_fails(set_table(arts["fused"], "row_tiles", 0, col, value), tmp_path, match)


# ------------------------------------------------------------------------------ mask tables


def _masked_case(arts, case):
    need(arts, "masked")
    art = clone(arts["masked"])
    t = art.tables
    n_mask = t["mask_tiles"].shape[0]
    if case == "ptr_start":
        t["mask_ptr"][0] = 1
    elif case == "ptr_end":
        t["mask_ptr"][-1] = n_mask + 1
    elif case == "ptr_drop":
        t["mask_ptr"][1] = t["mask_ptr"][2] + 1
    elif case == "col0":
        t["mask_tiles"][0, 0] = -3
    elif case == "ncols0":
        t["mask_tiles"][0, 1] = 0
    elif case == "ncols_wide":
        t["mask_tiles"][0, 1] = art.kernels[0]["block_n"] + 1
    elif case == "bit_past_ncols":
        m = int(np.argmin(t["mask_tiles"][:, 1]))
        assert t["mask_tiles"][m, 1] < 32 * t["mask_bits"].shape[2]
        t["mask_bits"][m, 0, -1] |= np.int32(-2**31)  # the last key bit of the tile
    elif case == "bit_past_nrows":
        rt = t["row_tiles"]
        short = int(np.argmin(rt[:, 2]))
        assert rt[short, 2] < abi.BLOCK_M
        m = int(t["mask_ptr"][short])
        assert t["mask_ptr"][short + 1] > m
        t["mask_bits"][m, abi.BLOCK_M - 1, 0] = 1
    elif case == "words":
        t["mask_bits"] = np.ascontiguousarray(t["mask_bits"][:, :, :1])
        art.manifest["tables"]["mask_bits"]["shape"] = list(t["mask_bits"].shape)
    return art


@pytest.mark.parametrize("case, match", [
    ("ptr_start", "mask_ptr must rise from 0"), ("ptr_end", "mask_ptr must rise from 0"),
    ("ptr_drop", "mask_ptr must rise from 0"), ("col0", "col0 >= 0"),
    ("ncols0", "1 <= ncols"), ("ncols_wide", "1 <= ncols"),
    ("bit_past_ncols", "sets a bit outside"), ("bit_past_nrows", "sets a bit outside"),
    ("words", "words a row"),
])
def test_mask_table_values_out_of_range_are_refused(arts, tmp_path, case, match):
    resaved_fails(_masked_case(arts, case), tmp_path, match)


def test_mask_tables_come_together(arts, tmp_path):
    need(arts, "masked")
    art = clone(arts["masked"])
    del art.tables["mask_bits"]
    del art.manifest["tables"]["mask_bits"]
    with pytest.raises(ArtifactError, match="mask_bits"):
        L.check_artifact(art)
    art = clone(arts["masked"])
    for n in ("mask_ptr", "mask_tiles", "mask_bits"):  # and the kernel without them
        del art.tables[n], art.manifest["tables"][n]
    with pytest.raises(ArtifactError, match="launches|no .entry|mask_ptr"):
        L.check_artifact(art)


# ------------------------------------------------------------------------------ kernel ABI


def test_swapped_q_and_o_parameters_are_refused(arts, tmp_path):
    art = clone(arts["fused"])
    params = art.manifest["kernels"][0]["params"]
    params[0], params[3] = params[3], params[0]  # the kernel would write into the caller's q
    resaved_fails(art, tmp_path, r"parameter list differs from the ABI at position 0")


def test_renamed_table_parameter_is_refused(arts, tmp_path):
    need(arts, "split")
    art = clone(arts["split"])
    params = art.manifest["kernels"][1]["params"]
    params[5] = dict(params[5], name="row_tiles")  # the _acc kernel on the main schedule
    resaved_fails(art, tmp_path, "parameter list differs from the ABI at position 5")


@pytest.mark.parametrize("field, value, match", [
    ("shared_bytes", 1024, "shared_bytes 1024, but its (mma_sync|wgmma) layout"),
    ("shared_bytes", 36864 + 16, "but its (mma_sync|wgmma) layout"),
    ("block", [64, 1, 1], r"block \[64, 1, 1\]"),
    ("block", [128, 2, 1], "block"),
    ("grid", [1000, 1, 1], "grid"),
    ("tile_table", "segments", "tile_table"),
    ("block_n", 48, "block_n 48"),
    ("block_m", 32, "block_m 32"),
])
def test_wrong_shared_bytes_block_or_grid_is_refused(arts, tmp_path, field, value, match):
    art = clone(arts["fused"])
    art.manifest["kernels"][0][field] = value
    resaved_fails(art, tmp_path, match)


@pytest.mark.parametrize("value, match", [
    (True, "only fused wgmma kernels have a producer warpgroup"),
    ("yes", "load_warpgroup 'yes' is not a boolean"),
])
def test_a_producer_warpgroup_is_claimed_by_wgmma_kernels_only(arts, tmp_path, value, match):
    """A manifest that gives an mma.sync kernel a producer warpgroup (or says so in a
    non-boolean way) is refused: its block and shared memory would be checked against a kernel
    it is not."""
    art = clone(arts["fused"])
    art.manifest["kernels"][0]["load_warpgroup"] = value
    resaved_fails(art, tmp_path, match)


def test_kernel_order_and_names_are_checked(arts, tmp_path):
    need(arts, "decomposed", "split")
    art = clone(arts["split"])
    art.manifest["kernels"].reverse()  # the fold before the launch it folds into
    resaved_fails(art, tmp_path, "launches")
    art = clone(arts["decomposed"])
    ks = art.manifest["kernels"]
    ks[0], ks[2] = ks[2], ks[0]
    resaved_fails(art, tmp_path, "launches")
    art = clone(arts["fused"])
    name = "splat_fwd_bf16_d64_masked"  # the masked kernel's name, no mask tables
    art.manifest["kernels"][0]["name"] = name
    art.ptx["kernel.ptx"] = art.ptx["kernel.ptx"].replace("splat_fwd_bf16_d64(", name + "(")
    with pytest.raises(ArtifactError, match="launches"):
        L.check_artifact(art)


def test_decomposed_tables_are_checked(arts, tmp_path):
    need(arts, "decomposed")
    art = clone(arts["decomposed"])
    art.tables["row_nnz"][5] += 1
    resaved_fails(art, tmp_path, r"row_nnz\[5\]")
    art = clone(arts["decomposed"])
    art.tables["row_pieces"][7, 0, 0] = -2
    resaved_fails(art, tmp_path, "offset >= 0")
    art = clone(arts["decomposed"])
    art.manifest["scratch"]["scores"]["shape"][3] = 4  # rows have 17 keys
    resaved_fails(art, tmp_path, "wide")
    art = clone(arts["decomposed"])
    art.manifest["kernels"][1]["shared_bytes"] = 4096
    resaved_fails(art, tmp_path, "use none")


def test_compiled_artifacts_pass_every_check(arts, tmp_path):
    for name, art in arts.items():
        plan = L.check_artifact(clone(art))
        assert plan.tile_Lq == art.shapes["Lq"] and plan.min_Lk <= art.shapes["Lk"]
        A.load(saved(art, tmp_path, name))


@pytest.mark.parametrize("block_m", abi.BLOCK_M_CHOICES)
@pytest.mark.parametrize("warp_rows", abi.WARP_ROWS_CHOICES)
def test_fused_shared_bytes_matches_the_kernel_layout(block_m, warp_rows):
    fused_config = pytest.importorskip("splat.lowering.fused_config")
    for D in abi.HEAD_DIMS:
        for bn in abi.BLOCK_N_CHOICES:
            for masked in (False, True):
                for mma in abi.MMA_KINDS:
                    if mma == "wgmma" and (D not in abi.WGMMA_HEAD_DIMS or warp_rows != 16):
                        continue
                    if warp_rows > 16 and D > abi.MAX_HEAD_DIM_32_ROW_WARPS:
                        continue  # not built (test_d256 refuses it)
                    cfg = fused_config.FusedForwardConfig("bf16", D, bn, mask_tiles=masked,
                                                          mma=mma, block_m=block_m,
                                                          warp_rows=warp_rows)
                    got = I.fused_shared_bytes(D, bn, masked, mma, block_m, warp_rows,
                                               cfg.load_warpgroup)
                    assert got == cfg.shared_bytes, (D, bn, masked, mma)
                    fits = cfg.load_warpgroup and cfg._producer_layout_bytes(
                        abi.WGMMA_PRODUCER_MIN_STAGES) <= abi.SM90_SHARED_BYTES
                    if fits:  # its stage count is chosen to fit (else splat.compile refuses it:
                        # test_compile_refuses_a_producer_layout_over_the_budget_...)
                        assert got <= abi.SM90_SHARED_BYTES, (D, bn, masked, mma)


def test_table_checks_are_linear_in_the_table(arts):
    """1e5 row tiles (6.4 M rows) with one segment each: well under a second."""
    n = 100_000
    rt = np.zeros((n, 5), np.int32)
    rt[:, 0] = np.arange(n) * abi.BLOCK_M
    rt[:, 1] = 1
    rt[:, 2] = abi.BLOCK_M
    rt[:, 3] = np.arange(n)
    rt[:, 4] = np.arange(n) + 1
    sg = np.zeros((n, 9), np.int32)
    sg[:, 0] = np.arange(n) * abi.BLOCK_M
    sg[:, 1:5] = (1, abi.BLOCK_M, 0, abi.BLOCK_M)
    sg[:, 7:9] = (0, abi.BLOCK_M)
    art = clone(arts["fused"])
    art.tables = {"row_tiles": rt, "segments": sg}
    for name, t in art.tables.items():
        art.manifest["tables"][name]["shape"] = list(t.shape)
    art.manifest["shapes"] = None
    t0 = time.perf_counter()
    plan = L.check_artifact(art)
    assert plan.tile_Lq == n * abi.BLOCK_M and plan.min_Lk == n * abi.BLOCK_M
    assert time.perf_counter() - t0 < 5.0  # ~0.3 s here; the bound only catches a quadratic


# ------------------------------------------------------------------- lookup key, cache, prebuilt


# cache_env: tests/conftest.py


def test_cache_entry_with_another_key_is_evicted_and_rebuilt(arts, cache_env):
    good = arts["fused"]
    other = next(a for n, a in sorted(arts.items()) if n != "fused")
    A.save(other, cache_env / "artifacts" / good.key)  # valid digests, wrong key
    builds = []
    with pytest.warns(RuntimeWarning, match="holds the artifact of key"):
        art = C.get_or_build(good.key, lambda: builds.append(1) or good)
    assert builds == [1] and art is good
    assert A.load(cache_env / "artifacts" / good.key).key == good.key


def test_cache_entry_failing_a_table_check_is_evicted_and_rebuilt_once(arts, cache_env):
    good = arts["fused"]
    bad = set_table(good, "segments", 0, 0, -1)
    A.save(bad, cache_env / "artifacts" / good.key)  # digests match: only the check catches it
    builds = []
    with pytest.warns(RuntimeWarning, match="discarding unreadable entry .*col0 >= 0.*rebuilding"):
        C.get_or_build(good.key, lambda: builds.append(1) or good)
    assert builds == [1]
    C.clear_memory_cache()
    assert C.get_or_build(good.key, lambda: builds.append(1) or good).key == good.key
    assert builds == [1]  # the rebuilt entry serves the next process


def test_cache_does_not_store_a_rebuilt_artifact_that_fails(arts, cache_env):
    good = arts["fused"]
    bad = set_table(good, "row_tiles", 0, 2, 0)
    with pytest.raises(ArtifactError, match="just built .* neither cached nor run.*nrows"):
        C.get_or_build(good.key, lambda: bad)
    assert not (cache_env / "artifacts" / good.key).exists()


@pytest.fixture
def prebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("SPLAT_NO_COMPILE", "1")
    monkeypatch.setenv("SPLAT_ARTIFACT_DIR", str(tmp_path / "pre"))
    (tmp_path / "pre").mkdir(mode=0o700)
    R._loaded.clear()
    yield tmp_path / "pre"
    R._loaded.clear()


def _request(art):
    return dict(dtype="bf16", head_dim=64, Lq=art.shapes["Lq"], Lk=art.shapes["Lk"])


def test_prebuilt_artifact_under_another_key_is_refused(arts, prebuilt):
    pat = PATTERN["fused"]
    key = R.request_key(pat, **_request(arts["fused"]))
    assert key == arts["fused"].key
    other = next(a for n, a in sorted(arts.items()) if n != "fused")
    A.save(other, prebuilt / key)  # another pattern's artifact, valid digests
    with pytest.raises(SplatInputError, match=f"holds key {other.key}, not {key}"):
        R.resolve_artifact(pat, **_request(arts["fused"]))


def test_prebuilt_artifact_failing_a_check_is_refused(arts, prebuilt):
    pat = PATTERN["fused"]
    bad = set_table(arts["fused"], "row_tiles", 0, 0, 1)
    A.save(bad, prebuilt / arts["fused"].key)
    with pytest.raises(SplatInputError, match="unusable.*partition.*cannot be rebuilt") as ei:
        R.resolve_artifact(pat, **_request(arts["fused"]))
    assert ei.value.arg == "pattern"
    shutil.rmtree(prebuilt / arts["fused"].key)
    A.save(arts["fused"], prebuilt / arts["fused"].key)
    R._loaded.clear()
    assert R.resolve_artifact(pat, **_request(arts["fused"])).key == arts["fused"].key


# --------------------------------------------------------------------------- who may write


def test_cache_dir_writable_by_others_is_refused(arts, cache_env, monkeypatch):
    cache_env.mkdir(mode=0o700)
    # the directory's group is not the user's private group (as it would be for root here)
    monkeypatch.setattr(TR, "_private_group", lambda gid, uid: False)
    for mode, who in ((0o777, "everyone"), (0o770, "its group")):
        os.chmod(cache_env, mode)
        with pytest.raises(TR.UnsafePathError, match=f"{cache_env} is writable by {who}") as ei:
            C.get_or_build(arts["fused"].key, lambda: arts["fused"])
        assert ei.value.path == str(cache_env) and isinstance(ei.value, PermissionError)
    os.chmod(cache_env, 0o1777)  # /tmp-style: sticky, what we create in it is private
    C.get_or_build(arts["fused"].key, lambda: arts["fused"])
    entry = cache_env / "artifacts"
    assert entry.stat().st_mode & 0o777 == 0o700
    os.chmod(entry, 0o777)
    C.clear_memory_cache()
    with pytest.raises(TR.UnsafePathError, match="artifacts is writable by everyone"):
        C.get_or_build(arts["fused"].key, lambda: arts["fused"])


def test_entry_points_name_an_unsafe_cache_dir(arts, cache_env, monkeypatch):
    monkeypatch.setattr(R, "compiler_available", lambda: True)
    monkeypatch.setattr(R, "_compile", lambda *a: arts["fused"])
    cache_env.mkdir(mode=0o700)
    os.chmod(cache_env, 0o777)
    with pytest.raises(SplatInputError, match="SPLAT_CACHE_DIR: .*writable by everyone") as ei:
        R.resolve_artifact(PATTERN["fused"], **_request(arts["fused"]))
    assert ei.value.arg == "SPLAT_CACHE_DIR"
    os.chmod(cache_env, 0o700)
    assert R.resolve_artifact(PATTERN["fused"], **_request(arts["fused"])) is arts["fused"]


def test_group_writable_is_fine_for_the_users_private_group(arts, tmp_path):
    import grp
    import pwd

    me = pwd.getpwuid(os.geteuid())
    if grp.getgrgid(me.pw_gid).gr_name != me.pw_name:
        pytest.skip("this user has no private group")
    d = saved(arts["fused"], tmp_path)
    os.chown(d, -1, me.pw_gid)
    os.chmod(d, 0o770)  # umask 002 on Debian/Ubuntu makes directories like this
    A.load(d)


def test_parent_writable_by_others_is_refused(arts, tmp_path, monkeypatch):
    parent = tmp_path / "shared"
    parent.mkdir()
    os.chmod(parent, 0o777)
    monkeypatch.setenv("SPLAT_CACHE_DIR", str(parent / "mine" / "cache"))
    C.clear_memory_cache()
    with pytest.raises(TR.UnsafePathError, match=f"{parent} is writable by everyone"):
        C.cache_dir()
    link = tmp_path / "link"
    link.symlink_to(parent)  # a symbolic link does not hide where the path leads
    monkeypatch.setenv("SPLAT_CACHE_DIR", str(link / "cache"))
    with pytest.raises(TR.UnsafePathError, match="shared is writable"):
        C.cache_dir()


def test_directory_owned_by_another_user_is_refused(arts, tmp_path, monkeypatch):
    d = saved(arts["fused"], tmp_path)
    me = os.geteuid()
    monkeypatch.setattr(TR, "_euid", lambda: me + 4242)  # as seen by someone else
    if me == 0:
        pytest.skip("root owns everything here: the owner rule admits root")
    with pytest.raises(TR.UnsafePathError, match="is owned by uid"):
        A.load(d)


def test_directory_owned_by_another_user_is_refused_as_root(arts, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to give a directory away")
    d = saved(arts["fused"], tmp_path)
    os.chown(d, 4242, 4242)
    with pytest.raises(TR.UnsafePathError, match=f"{d} is owned by uid 4242"):
        A.load(d)


def test_artifact_files_writable_by_others_are_refused(arts, tmp_path):
    d = saved(arts["fused"], tmp_path)
    assert {p.stat().st_mode & 0o777 for p in d.iterdir()} == {0o644}  # whatever the umask
    os.chmod(d / "kernel.ptx", 0o666)
    with pytest.raises(TR.UnsafePathError, match=r"kernel\.ptx is writable by everyone"):
        A.load(d)


def test_prebuilt_dir_writable_by_others_is_refused(arts, prebuilt):
    A.save(arts["fused"], prebuilt / arts["fused"].key)
    os.chmod(prebuilt, 0o777)
    with pytest.raises(SplatInputError, match="SPLAT_ARTIFACT_DIR: .* is writable by everyone") as ei:
        R.resolve_artifact(PATTERN["fused"], **_request(arts["fused"]))
    assert ei.value.arg == "SPLAT_ARTIFACT_DIR"
    os.chmod(prebuilt, 0o700)
    os.chmod(prebuilt / arts["fused"].key, 0o777)
    with pytest.raises(SplatInputError, match="is writable by everyone") as ei:
        R.resolve_artifact(PATTERN["fused"], **_request(arts["fused"]))
    assert ei.value.arg == "SPLAT_ARTIFACT_DIR"


# ------------------------------------------------------------------------------------ corpus


def test_corpus_of_adversarial_artifacts_is_refused():
    """Tampered artifacts kept from the fuzz (tests/corpus/artifacts/<case>/, see its README)."""
    cases = sorted(p for p in CORPUS.iterdir() if p.is_dir()) if CORPUS.is_dir() else []
    if not cases:
        pytest.skip("no corpus")
    for case in cases:
        expect = (case / "EXPECT").read_text().strip()
        with pytest.raises(ArtifactError, match=expect):
            A.load(case / "artifact")


# ------------------------------------------------------------------------------------ fuzzing


_JSON_VALUES = st.one_of(st.integers(-2**40, 2**40), st.sampled_from([0, -1, 1, 2**31, 2**31 - 1]),
                         st.none(), st.booleans(), st.text(max_size=4),
                         st.floats(allow_nan=False, allow_infinity=False), st.just([]), st.just({}))


def _mutate(d: Path, data) -> str:
    kind = data.draw(st.sampled_from(["ptx", "json", "table", "npy", "manifest_bytes", "delete"]))
    files = sorted(p.name for p in d.iterdir())
    if kind == "ptx":
        p = d / "kernel.ptx"
        b = bytearray(p.read_bytes())
        i = data.draw(st.integers(0, len(b) - 1))
        b[i] = data.draw(st.integers(0, 255))
        p.write_bytes(bytes(b))
    elif kind == "json":
        m = json.loads((d / "manifest.json").read_text())
        leaves = list(json_leaves(m))[1:]
        path, _ = leaves[data.draw(st.integers(0, len(leaves) - 1))]
        parent = m
        for k in path[:-1]:
            parent = parent[k]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(_JSON_VALUES)
        (d / "manifest.json").write_text(json.dumps(m))
    elif kind == "table":
        name = data.draw(st.sampled_from([f for f in files if f.endswith(".npy")]))
        t = np.load(d / name)
        if t.size:
            i = data.draw(st.integers(0, t.size - 1))
            t.reshape(-1)[i] = data.draw(st.sampled_from([-1, 0, 1, 63, 64, 65, 2**31 - 1, -2**31])
                                         | st.integers(-2**31, 2**31 - 1))
            np.save(d / name, t)
    elif kind in ("npy", "manifest_bytes"):
        name = (data.draw(st.sampled_from([f for f in files if f.endswith(".npy")]))
                if kind == "npy" else "manifest.json")
        b = bytearray((d / name).read_bytes())
        i = data.draw(st.integers(0, len(b) - 1))
        b[i] = data.draw(st.integers(0, 255))
        (d / name).write_bytes(bytes(b[:data.draw(st.integers(i, len(b)))]))
    else:
        (d / data.draw(st.sampled_from(files))).unlink()
    return kind


@pytest.fixture(scope="module")
def fuzz_bases(arts, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("fuzz-bases")
    return {name: (A.save(art, root / name), A.load(root / name)) for name, art in arts.items()}


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_tampered_artifacts_are_refused_or_unchanged(fuzz_bases, tmp_path, data):
    name = data.draw(st.sampled_from(sorted(fuzz_bases)))
    base_dir, base = fuzz_bases[name]
    d = tmp_path / f"case-{len(list(tmp_path.iterdir()))}"
    shutil.copytree(base_dir, d)
    kind = _mutate(d, data)
    try:
        got = A.load(d)
    except ArtifactError:
        return
    assert same_meaning(got, base), f"a {kind} mutation of {name} was accepted with another meaning"


_TABLE_VALUES = st.sampled_from([-1, 0, 1, 2, 63, 64, 65, 199, 200, 2**31 - 1, -2**31])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_rehashed_tables_accepted_only_when_safe(arts, data):
    """Table values changed *and* digests recomputed: the runtime's own checks are all that
    stands between the tables and the GPU. Whatever they accept must pass a slow, independent
    element-by-element model of what the kernels would touch."""
    name = data.draw(st.sampled_from(sorted({"fused", "masked", "split"} & set(arts))))
    art = clone(arts[name])
    for _ in range(data.draw(st.integers(1, 3))):
        tname = data.draw(st.sampled_from(sorted(art.tables)))
        t = art.tables[tname]
        if t.size:
            t.reshape(-1)[data.draw(st.integers(0, t.size - 1))] = data.draw(_TABLE_VALUES)
    try:
        plan = L.check_artifact(art)
    except ArtifactError:
        return
    _reference_safety(art, plan)


def _reference_safety(art: Artifact, plan) -> None:
    """Loops, no numpy tricks: every row once, every key read < plan.min_Lk, every index inside
    its table, no mask bit outside its tile."""
    t = {n: a.tolist() for n, a in art.tables.items()}
    Lq, Lk = plan.tile_Lq, plan.min_Lk
    assert Lq == art.shapes["Lq"] and Lk <= art.shapes["Lk"]
    seen = [0] * Lq
    owner = {}
    for ti, (row0, step, nrows, sb, se) in enumerate(t["row_tiles"]):
        assert 1 <= nrows <= abi.BLOCK_M and step >= 1 and row0 >= 0
        for rho in range(nrows):
            r = row0 + step * rho
            assert 0 <= r < Lq
            seen[r] += 1
        assert 0 <= sb <= se <= len(t["segments"])
        for s in range(sb, se):
            assert s not in owner
            owner[s] = nrows
    assert all(c == 1 for c in seen)
    for s, (col0, cstep, ncols, rlo, rhi, la, lb, ha, hb) in enumerate(t["segments"]):
        for u in (0, ncols - 1) if ncols > 0 else ():
            assert 0 <= col0 + cstep * u < Lk
        assert 0 <= rlo <= rhi <= owner.get(s, abi.BLOCK_M) and cstep >= 1
        for rho in range(abi.BLOCK_M):
            assert -2**31 <= la * rho + lb < 2**31 and -2**31 <= ha * rho + hb < 2**31
    if "mask_ptr" in t:
        ptr, tiles, bits = t["mask_ptr"], t["mask_tiles"], t["mask_bits"]
        assert ptr[0] == 0 and ptr[-1] == len(tiles) and len(ptr) == len(t["row_tiles"]) + 1
        for ti in range(len(t["row_tiles"])):
            assert ptr[ti] <= ptr[ti + 1]
            for m in range(ptr[ti], ptr[ti + 1]):
                col0, ncols = tiles[m]
                assert col0 >= 0 and 1 <= ncols and col0 + ncols - 1 < Lk
                for rho, words in enumerate(bits[m]):
                    for w, word in enumerate(words):
                        for bit in range(32):
                            if (word >> bit) & 1:
                                assert 32 * w + bit < ncols and rho < t["row_tiles"][ti][2]
    if "split_row_tiles" in t:
        srows = []
        for row0, step, nrows, sb, se in t["split_row_tiles"]:
            srows += [row0 + step * rho for rho in range(nrows)]
            assert 0 <= sb <= se <= len(t["split_segments"])
        assert len(set(srows)) == len(srows) and all(0 <= r < Lq for r in srows)
        for col0, cstep, ncols, *_ in t["split_segments"]:
            for u in (0, ncols - 1) if ncols > 0 else ():
                assert 0 <= col0 + cstep * u < Lk
