"""The runtime's own check of an artifact against the kernel ABI (`splat.abi`), before any launch.

The compiler is not trusted to have written a safe artifact, and neither is the disk it came
from: everything a kernel will index with is checked here, independently of the code that
produced it, so that no table can make a kernel read or write outside the tensors of a call.

- **Kernels** (`check_kernels`): for the artifact's variant and tables, the ABI fixes the kernel
  names, their order, each parameter list (names, kinds, ranks, dtypes), the tables each kernel
  reads, the block shape, the grid kind and, where the entry records its ``block_n``, the fused
  kernel's dynamic shared memory.
- **Tables** (`check_tables`): row tiles partition ``[0, Lq)`` exactly (no row twice, none
  missing); every segment, mask tile and decomposed row piece has non-negative coordinates and
  its last key column fits int32; segment ranges of the row tiles are inside the segment table
  and disjoint; a segment's row range lies inside its tile; the mask CSR is well formed and no
  mask bit is set outside its tile's rows or its key count; split-KV tiles cover rows of the
  main schedule at most once; the decomposed row counts add up and fit the score tensor.

Every check is vectorised numpy over int64 copies of the int32 tables (a product of two int32
values plus a third fits int64, so nothing here overflows), linear in the size of the tables.
Everything raises `ArtifactError` naming the table, the row and the rule.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import abi
from .artifact import Artifact, ArtifactError

_INT32_MAX = 2**31 - 1
_INT32_MIN = -(2**31)
_LAST_INDEX = abi.MAX_LENGTH - 1  # the largest row or key column any table may name
# decomposed row_pieces: (offset, stride, count) per slot, as splat.tiling.decomposed writes them
_ROW_PIECE_FIELDS = 3
# The mma.sync kernel pads every shared-memory row of K, V and Q by 8 elements (16 bytes)
# against bank conflicts (splat.lowering.fused_config.SMEM_PAD); the wgmma kernel stores K and V
# as unpadded core matrices and only pads Q. The runtime cannot import the lowering (it needs
# MLIR), so the layout's size is restated here; tests/unit/test_runtime_trust.py checks that both
# agree for every head dim, BLOCK_N, instruction and kernel variant.
_SMEM_ROW_PAD = 8
_ELEMENT_BYTES = 2  # bf16 and f16, the only dtypes in abi.DTYPES


class Coverage(NamedTuple):
    """What the tables say about the problem size."""

    n_tiles: int  # row tiles of the main schedule (0 without one)
    tile_Lq: int | None  # query rows the tables cover (None when no table defines them)
    min_Lk: int  # smallest Lk every key column the tables name fits in
    tile_Lk: int | None = None  # keys the tables cover exactly (the backward's column tiles)


def fused_shared_bytes(head_dim: int, block_n: int, masked: bool, mma: str = "mma_sync",
                       block_m: int = abi.BLOCK_M, warp_rows: int = abi.WARP_ROWS,
                       load_warpgroup: bool = False) -> int:
    """Dynamic shared memory of a fused kernel (docs: lowering/fused_forward.py layout): K and V
    in 2 stages (wgmma: 3; with a producer warpgroup abi.wgmma_producer_stages), the Q tile
    (mma_sync: in K stage 1 when it fits there; wgmma: the padded Q / output staging area from
    stage 1, stages ordered [K0][V0][K1][V1], then Q again as core matrices, read by every key
    tile), then a stage of mask bits per K/V stage (masked variant), then with a producer
    warpgroup a full and an empty mbarrier (8 bytes) per stage."""
    row = (head_dim + _SMEM_ROW_PAD) * _ELEMENT_BYTES
    q_tile = block_m * row
    if mma == "wgmma":
        kv_tile = block_n * head_dim * _ELEMENT_BYTES
        q_offset = 2 * kv_tile
    else:
        kv_tile = block_n * row
        # Q aliases K stage 1 when it fits there, unless it is re-read every key tile
        q_in_registers = abi.q_fragments_in_registers(head_dim, warp_rows)
        q_offset = kv_tile if q_in_registers and q_tile <= kv_tile else 4 * kv_tile

    def layout_bytes(stages: int) -> int:
        end = max(2 * stages * kv_tile, q_offset + q_tile)
        if mma == "wgmma":
            end += block_m * head_dim * _ELEMENT_BYTES
        if masked:
            end += stages * block_m * abi.mask_words(block_n) * 4
        if load_warpgroup:
            end += 2 * stages * 8
        return end

    if load_warpgroup:
        return layout_bytes(abi.wgmma_producer_stages(block_n, layout_bytes))
    # wgmma: its P V of the previous key tile overlaps the current one
    return layout_bytes(3 if mma == "wgmma" else 2)


def backward_shared_bytes(kind: str, head_dim: int, block_n: int, masked: bool,
                          mma: str = "mma_sync", block_m: int = abi.BACKWARD_BLOCK_M) -> int:
    """Dynamic shared memory of a backward kernel (lowering/backward_kernels.py): the forward's
    64-row mma_sync layout, then for dQ the dO tile, for dK/dV the per-stage query values
    ``[2 stages][lse, delta][block_n]`` f32 and the tile's K and V rows. wgmma
    (backward_kernels_wgmma.py): two stages of two unpadded ``block_n x D`` tiles, the two
    ``block_m x D`` row tiles, dK/dV's query values, two stages of mask bits."""
    query_values = 2 * 2 * block_n * 4
    if mma == "wgmma":
        row_tile = block_m * head_dim * _ELEMENT_BYTES
        stages = 2 * 2 * block_n * head_dim * _ELEMENT_BYTES
        bits = 2 * block_m * abi.mask_words(block_n) * 4 if masked else 0
        return stages + 2 * row_tile + (query_values if kind == "dkv" else 0) + bits
    forward = fused_shared_bytes(head_dim, block_n, masked)
    row_tile = abi.BACKWARD_BLOCK_M * (head_dim + _SMEM_ROW_PAD) * _ELEMENT_BYTES
    if kind == "dq":
        return forward + row_tile
    return forward + query_values + 2 * row_tile


def _fail(where: str, msg: str) -> None:
    raise ArtifactError(f"{where}: {msg}")


def _first(bad: np.ndarray) -> int:
    return int(np.flatnonzero(bad)[0])


def _i64(table: np.ndarray, cols: int | None = None) -> np.ndarray:
    a = np.asarray(table, dtype=np.int64)
    return a if cols is None else a.reshape(-1, cols)


# ------------------------------------------------------------------------------------ kernels


def _param_sig(p: dict) -> tuple:
    return (p.get("name"), p.get("kind"), p.get("rank"), p.get("dtype"))


def _all_or_none(tables: dict, names, where: str) -> bool:
    """Whether a table group (e.g. the mask tables) is present: all of it or none."""
    present = [t for t in names if t in tables]
    if present and len(present) != len(names):
        _fail(where, f"has tables {present} but not all of {list(names)}")
    return bool(present)


def _expected_kernels(artifact: Artifact, where: str) -> tuple:
    """(variant, [expected entry per kernel, in launch order]) from the manifest and tables."""
    m = artifact.manifest
    dtype, head_dim = m["dtype"], m["head_dim"]
    if dtype not in abi.DTYPES:
        _fail(where, f"dtype {dtype!r} is not one of the ABI's {abi.DTYPES}")
    if head_dim not in abi.HEAD_DIMS:
        _fail(where, f"head_dim {head_dim!r} is not one of the ABI's {abi.HEAD_DIMS}")
    variant = m.get("variant", "fused")
    tables = artifact.tables
    if variant == "fused":
        masked = _all_or_none(tables, abi.MASK_TABLES, where)
        split_present = _all_or_none(tables, list(abi.SPLIT_TABLES.values()), where)
        out = [dict(name=abi.fused_kernel_name(dtype, head_dim, masked),
                    params=abi.fused_kernel_params(dtype, masked),
                    tables=abi.fused_kernel_tables(masked), grid="row_tiles",
                    tile_table="row_tiles", masked=masked, fused=True)]
        if split_present:
            rename = abi.SPLIT_TABLES
            out.append(dict(name=abi.fused_kernel_name(dtype, head_dim, accumulate=True),
                            params=[dict(p, name=rename.get(p["name"], p["name"]))
                                    for p in abi.fused_kernel_params(dtype)],
                            tables=[rename.get(t, t) for t in abi.fused_kernel_tables()],
                            grid="row_tiles", tile_table=rename["row_tiles"], masked=False,
                            fused=True))
        return variant, out
    if variant == "backward":
        if head_dim not in abi.BACKWARD_HEAD_DIMS:
            _fail(where, f"head_dim {head_dim}: the backward kernels are built for "
                         f"{abi.BACKWARD_HEAD_DIMS}")
        masked = _all_or_none(tables, abi.MASK_TABLES, where)
        col_masked = _all_or_none(tables, [abi.COL_TABLES[t] for t in abi.MASK_TABLES], where)
        split = _all_or_none(tables, list(abi.SPLIT_TABLES.values()), where)
        col_split = _all_or_none(tables, list(abi.COL_SPLIT_TABLES.values()), where)
        out = []
        for kind, msk, acc in (("dq", masked, False), ("dq", False, True),
                               ("dkv", col_masked, False), ("dkv", False, True)):
            if acc and not (split if kind == "dq" else col_split):
                continue
            k_abi = abi.BACKWARD_KERNELS[kind]
            t = k_abi.tables(msk, acc)
            out.append(dict(name=k_abi.name(dtype, head_dim, msk, acc),
                            params=k_abi.params(dtype, msk, acc), tables=t, grid=k_abi.grid,
                            tile_table=t[0], masked=msk, fused=True, backward=kind))
        return variant, out
    if variant == "decomposed":
        names = abi.decomposed_kernel_names(dtype, head_dim)
        params = abi.decomposed_kernel_params(dtype)
        return variant, [dict(name=names[k], params=params[k], tables=abi.DECOMPOSED_TABLES[k],
                              grid="rows", fused=False) for k in abi.DECOMPOSED_KINDS]
    _fail(where, f"unknown variant {variant!r} (the runtime launches 'fused', 'decomposed' and "
                 f"'backward')")
    raise AssertionError  # unreachable


def check_kernels(artifact: Artifact, where: str = "artifact") -> str:
    """Kernel names, order, parameter lists, tables, block, grid and shared memory against the
    ABI. Returns the variant."""
    variant, expected = _expected_kernels(artifact, where)
    kernels = artifact.kernels
    got_names = [k["name"] for k in kernels]
    want_names = [e["name"] for e in expected]
    if got_names != want_names:
        _fail(where, f"kernels {got_names} (in launch order), but the ABI of a {variant} artifact "
                     f"with tables {sorted(artifact.tables)} launches {want_names}")
    needed = set()
    for i, (k, e) in enumerate(zip(kernels, expected)):
        kw = f"{where}: kernel {i} {k['name']!r}"
        got = [_param_sig(p) for p in k["params"]]
        want = [_param_sig(p) for p in e["params"]]
        if got != want:
            j = next((j for j, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
            _fail(kw, f"parameter list differs from the ABI at position {j}: manifest "
                      f"{got[j] if j < len(got) else 'nothing'} (name, kind, rank, dtype), ABI "
                      f"{want[j] if j < len(want) else 'nothing'}")
        if "tables" in k and list(k["tables"]) != list(e["tables"]):
            _fail(kw, f"reads tables {k['tables']}, the ABI says {e['tables']}")
        needed.update(e["tables"])
        block_m = k.get("block_m", abi.BLOCK_M) if e["fused"] else abi.BLOCK_M
        warp_rows = k.get("warp_rows", abi.WARP_ROWS) if e["fused"] else abi.WARP_ROWS
        load_warpgroup = k.get("load_warpgroup", False)
        if load_warpgroup not in (False, True):
            _fail(kw, f"load_warpgroup {load_warpgroup!r} is not a boolean")
        if load_warpgroup and (not e["fused"] or k.get("mma", "mma_sync") != "wgmma"):
            _fail(kw, "load_warpgroup: only fused wgmma kernels have a producer warpgroup")
        if e["fused"]:
            if block_m not in abi.BLOCK_M_CHOICES:
                _fail(kw, f"block_m {block_m!r} is not one of {abi.BLOCK_M_CHOICES}")
            if block_m != kernels[0].get("block_m", abi.BLOCK_M):
                _fail(kw, f"block_m {block_m}, but kernel 0 has "
                          f"{kernels[0].get('block_m', abi.BLOCK_M)}: one row tile shape per "
                          f"artifact")
            if warp_rows not in abi.WARP_ROWS_CHOICES:
                _fail(kw, f"warp_rows {warp_rows!r} is not one of {abi.WARP_ROWS_CHOICES}")
            if warp_rows != abi.WARP_ROWS and k.get("mma", "mma_sync") != "mma_sync":
                _fail(kw, f"warp_rows {warp_rows} with mma {k.get('mma')!r}: only mma_sync "
                          f"kernels have {warp_rows}-row warps")
            if warp_rows > abi.WARP_ROWS and artifact.head_dim > abi.MAX_HEAD_DIM_32_ROW_WARPS:
                _fail(kw, f"warp_rows {warp_rows} at head dim {artifact.head_dim}: no kernel is "
                          f"built with more than {abi.WARP_ROWS} rows a warp above head dim "
                          f"{abi.MAX_HEAD_DIM_32_ROW_WARPS}")
        if "backward" in e:
            mma = k.get("mma", "mma_sync")
            if (warp_rows != abi.WARP_ROWS or mma not in abi.MMA_KINDS
                    or mma != kernels[0].get("mma", "mma_sync") or "block_n" not in k):
                _fail(kw, f"a backward kernel runs {abi.WARP_ROWS}-row warps on one of "
                          f"{abi.MMA_KINDS} (the same in every kernel of the artifact) and "
                          f"records its block_n")
            why = abi.backward_block_m_error(block_m, mma, artifact.head_dim)
            if why:
                _fail(kw, why)
        threads = (abi.fused_threads(block_m, warp_rows, load_warpgroup) if e["fused"]
                   else abi.NUM_THREADS)
        if list(k["block"]) != [threads, 1, 1]:
            _fail(kw, f"block {k['block']}, the ABI's kernels run {[threads, 1, 1]}"
                  + (f" for {block_m}-row tiles of {warp_rows}-row warps" if e["fused"] else "")
                  + (" and a producer warpgroup" if load_warpgroup else ""))
        if k["grid"] != e["grid"]:
            _fail(kw, f"grid {k['grid']!r}, the ABI launches it on grid {e['grid']!r}")
        if e["fused"]:
            tt = k.get("tile_table", "row_tiles")
            if tt != e["tile_table"]:
                _fail(kw, f"tile_table {tt!r}: its grid must follow the {e['tile_table']!r} table "
                          f"it reads, one CTA per row tile")
            if k.get("scratch"):
                _fail(kw, f"uses scratch {k['scratch']}, which a fused kernel never takes")
            if "block_n" in k:
                bn = k["block_n"]
                if bn not in abi.BLOCK_N_CHOICES:
                    _fail(kw, f"block_n {bn!r} is not one of {abi.BLOCK_N_CHOICES}")
                mma = k.get("mma", "mma_sync")
                if "backward" in e:
                    want_smem = backward_shared_bytes(e["backward"], artifact.head_dim, bn,
                                                      e["masked"], mma, block_m)
                else:
                    want_smem = fused_shared_bytes(artifact.head_dim, bn, e["masked"], mma,
                                                   block_m, warp_rows, load_warpgroup)
                if k["shared_bytes"] != want_smem:
                    _fail(kw, f"shared_bytes {k['shared_bytes']}, but its {mma} layout at "
                              f"head_dim {artifact.head_dim}, block_m {block_m}, block_n {bn} "
                              f"takes {want_smem}")
        else:
            if k["shared_bytes"] != 0:
                _fail(kw, f"shared_bytes {k['shared_bytes']}, the decomposed kernels use none")
            if k["rows_per_cta"] % abi.NUM_WARPS:
                _fail(kw, f"rows_per_cta {k['rows_per_cta']} is not a multiple of the "
                          f"{abi.NUM_WARPS} warps of a CTA")
            if list(k.get("scratch", [])) != ["scores"]:
                _fail(kw, f"scratch {k.get('scratch')}, the decomposed kernels take ['scores']")
    extra = sorted(set(artifact.tables) - needed)
    if extra:
        _fail(where, f"tables {extra} are read by no kernel of the ABI")
    scratch = artifact.manifest.get("scratch") or {}
    if variant == "fused" and scratch:
        _fail(where, f"scratch {sorted(scratch)} in a fused artifact, whose kernels take none")
    if variant == "decomposed" and sorted(scratch) != ["scores"]:
        _fail(where, f"scratch {sorted(scratch)}, the decomposed kernels need exactly 'scores'")
    return variant


# ------------------------------------------------------------------------------------ tables


def _shape(artifact: Artifact, name: str, ndim: int, where: str) -> np.ndarray:
    t = artifact.tables.get(name)
    if t is None:
        _fail(where, f"table {name!r} is missing")
    cols = abi.TABLE_COLUMNS.get(name)
    if t.ndim != ndim or (cols is not None and t.shape[1] != cols):
        want = f"[n, {cols}]" if cols is not None else f"{ndim}-dimensional"
        _fail(where, f"table {name!r} must be {want}, got {list(t.shape)}")
    return t


def _row_tiles(rt: np.ndarray, name: str, n_segs: int, block_m: int, where: str) -> tuple:
    """Checks one row-tile table; returns (every row, tile index of each row, nrows per tile)."""
    a = _i64(rt, len(abi.ROW_TILE_FIELDS))
    row0, step, nrows, sb, se = a.T
    bad = (row0 < 0) | (step < 1) | (nrows < 1) | (nrows > block_m)
    if bad.any():
        i = _first(bad)
        _fail(where, f"{name}[{i}] = {a[i].tolist()} (row0, row_step, nrows, seg_begin, seg_end): "
                     f"needs row0 >= 0, row_step >= 1 and 1 <= nrows <= {block_m}")
    last = row0 + step * (nrows - 1)
    bad = last > _LAST_INDEX
    if bad.any():
        i = _first(bad)
        _fail(where, f"{name}[{i}] = {a[i].tolist()} reaches row {int(last[i])}, past int32")
    bad = (sb < 0) | (se < sb) | (se > n_segs)
    if bad.any():
        i = _first(bad)
        _fail(where, f"{name}[{i}] = {a[i].tolist()}: segments [{int(sb[i])}, {int(se[i])}) are "
                     f"not a range inside the {n_segs} segments of its table")
    total = int(nrows.sum())  # <= block_m per tile: linear in the table
    tile = np.repeat(np.arange(a.shape[0]), nrows)
    rho = np.arange(total) - np.repeat(np.cumsum(nrows) - nrows, nrows)
    rows = row0[tile] + step[tile] * rho
    return rows, tile, nrows


def _segment_owner_nrows(rt: np.ndarray, name: str, n_segs: int, block_m: int,
                         where: str) -> np.ndarray:
    """nrows of the tile each segment belongs to, block_m if none; refuses a segment that two
    tiles share (it would be applied to two unrelated sets of rows)."""
    a = _i64(rt, len(abi.ROW_TILE_FIELDS))
    sb, se = a[:, 3], a[:, 4]  # ranges inside [0, n_segs], checked by _row_tiles
    cover = np.cumsum(np.bincount(sb, minlength=n_segs + 1) - np.bincount(se, minlength=n_segs + 1))
    if (cover[:n_segs] > 1).any():
        j = _first(cover[:n_segs] > 1)
        _fail(where, f"segment {j} belongs to more than one tile of {name}")
    n = a[:, 4] - a[:, 3]
    owner_rows = np.full(n_segs, block_m, dtype=np.int64)
    seg = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n) + np.repeat(a[:, 3], n)
    owner_rows[seg] = np.repeat(a[:, 2], n)
    return owner_rows


def _segments(sg: np.ndarray, name: str, owner_nrows: np.ndarray, block_m: int,
              where: str) -> int:
    """Checks one segment table; returns the smallest Lk its key columns fit."""
    a = _i64(sg, len(abi.SEGMENT_FIELDS))
    col0, cstep, ncols, rlo, rhi, lo_a, lo_b, hi_a, hi_b = a.T
    fields = "(" + ", ".join(abi.SEGMENT_FIELDS) + ")"
    bad = (col0 < 0) | (cstep < 1) | (ncols < 0)
    if bad.any():
        i = _first(bad)
        _fail(where, f"{name}[{i}] = {a[i].tolist()} {fields}: needs col0 >= 0, col_step >= 1 and "
                     f"ncols >= 0")
    live = ncols > 0
    last = np.where(live, col0 + cstep * (ncols - 1), -1)
    bad = last > _LAST_INDEX
    if bad.any():
        i = _first(bad)
        _fail(where, f"{name}[{i}] = {a[i].tolist()}: its last key column {int(last[i])} is past int32")
    bad = (rlo < 0) | (rlo > rhi) | (rhi > owner_nrows)
    if bad.any():
        i = _first(bad)
        _fail(where, f"{name}[{i}] = {a[i].tolist()}: rows [{int(rlo[i])}, {int(rhi[i])}) are not "
                     f"inside the {int(owner_nrows[i])} rows of its tile")
    # the kernel evaluates the affine key bounds in int32 for any tile row it holds
    for rho in (0, block_m - 1):
        for sa, sb_, what in ((lo_a, lo_b, "lo"), (hi_a, hi_b, "hi")):
            v = sa * rho + sb_
            bad = (v < _INT32_MIN) | (v > _INT32_MAX)
            if bad.any():
                i = _first(bad)
                _fail(where, f"{name}[{i}] = {a[i].tolist()}: its {what} bound at tile row {rho} "
                             f"({int(v[i])}) overflows int32")
    return int(last.max()) + 1 if a.shape[0] else 0


def _mask_tables(artifact: Artifact, tile_nrows: np.ndarray, block_n: int | None,
                 block_m: int, where: str, names: dict | None = None) -> int:
    """Checks mask_ptr / mask_tiles / mask_bits (by their names in ``names``, default their
    own); returns the smallest Lk they fit."""
    names = names or {}
    mp_name, mt_name, mb_name = (names.get(n, n) for n in abi.MASK_TABLES)
    mp = _shape(artifact, mp_name, 1, where)
    mt = _shape(artifact, mt_name, 2, where)
    mb = _shape(artifact, mb_name, 3, where)
    n_tiles, n_mask = tile_nrows.shape[0], mt.shape[0]
    if mp.shape[0] != n_tiles + 1:
        _fail(where, f"{mp_name} has {mp.shape[0]} entries, the {n_tiles} row tiles need "
                     f"{n_tiles + 1}")
    p = _i64(mp)
    counts = np.diff(p)
    if p[0] != 0 or p[-1] != n_mask or (counts < 0).any():
        i = _first(counts < 0) if (counts < 0).any() else 0
        _fail(where, f"{mp_name} must rise from 0 to the {n_mask} mask tiles without falling "
                     f"({mp_name}[0] = {int(p[0])}, {mp_name}[-1] = {int(p[-1])}, first drop at "
                     f"tile {i})")
    words = mb.shape[2]
    if block_n is not None:
        if words != abi.mask_words(block_n):
            _fail(where, f"{mb_name} has {words} words a row, block_n {block_n} needs "
                         f"{abi.mask_words(block_n)}")
        width = block_n
    else:
        allowed = sorted({abi.mask_words(b) for b in abi.BLOCK_N_CHOICES})
        if words not in allowed:
            _fail(where, f"{mb_name} has {words} words a row, not one of {allowed}")
        width = 32 * words
    if mb.shape[0] != n_mask or mb.shape[1] != block_m:
        _fail(where, f"{mb_name} is {list(mb.shape)}, the {n_mask} mask tiles need "
                     f"[{n_mask}, {block_m}, {words}]")
    t = _i64(mt, len(abi.MASK_TILE_FIELDS))
    col0, ncols = t.T
    bad = (col0 < 0) | (ncols < 1) | (ncols > width)
    if bad.any():
        i = _first(bad)
        _fail(where, f"{mt_name}[{i}] = {t[i].tolist()} (col0, ncols): needs col0 >= 0 and "
                     f"1 <= ncols <= {width}")
    last = col0 + ncols - 1
    bad = last > _LAST_INDEX
    if bad.any():
        i = _first(bad)
        _fail(where, f"{mt_name}[{i}] = {t[i].tolist()}: its last key column is past int32")
    if n_mask == 0:
        return 0
    # no bit may be set for keys u >= ncols or rows rho >= nrows of the mask tile's row tile
    bits = np.ascontiguousarray(mb).view(np.uint32)
    left = np.clip(ncols[:, None] - 32 * np.arange(words)[None, :], 0, 32)
    keep = np.where(left >= 32, np.uint64(0xFFFFFFFF),
                    (np.uint64(1) << left.astype(np.uint64)) - np.uint64(1)).astype(np.uint32)
    outside = (bits & ~keep[:, None, :]) != 0
    owner_rows = np.repeat(tile_nrows, counts)
    outside |= (bits != 0) & (np.arange(block_m)[None, :, None] >= owner_rows[:, None, None])
    if outside.any():
        m, rho, w = np.unravel_index(_first(outside.ravel()), outside.shape)
        _fail(where, f"{mb_name}[{m}, {rho}, {w}] = {int(bits[m, rho, w]):#010x} sets a bit outside "
                     f"its mask tile ({int(ncols[m])} keys, {int(owner_rows[m])} tile rows)")
    return int(last.max()) + 1


def _decomposed_tables(artifact: Artifact, where: str) -> tuple:
    """Checks row_pieces / row_nnz against each other and the score tensor; (Lq, min_Lk)."""
    rn = _shape(artifact, "row_nnz", 1, where)
    rp = _shape(artifact, "row_pieces", 3, where)
    Lq = rn.shape[0]
    if rp.shape[0] != Lq or rp.shape[2] != _ROW_PIECE_FIELDS or rp.shape[1] < 1:
        _fail(where, f"row_pieces is {list(rp.shape)}, expected [{Lq}, P >= 1, {_ROW_PIECE_FIELDS}]")
    a = _i64(rp)
    off, stride, cnt = a[..., 0], a[..., 1], a[..., 2]
    used = cnt > 0
    bad = (cnt < 0) | (used & ((off < 0) | (stride < 1))) | (~used & ((off != 0) | (stride != 0)))
    if bad.any():
        i, s = np.unravel_index(_first(bad.ravel()), bad.shape)
        _fail(where, f"row_pieces[{i}, {s}] = {a[i, s].tolist()} (offset, stride, count): a used "
                     f"slot needs offset >= 0, stride >= 1, count > 0; an unused one is all zero")
    if (used[:, 1:] & ~used[:, :-1]).any():
        i = _first((used[:, 1:] & ~used[:, :-1]).any(axis=1))
        _fail(where, f"row_pieces[{i}]: an unused slot precedes a used one")
    last = np.where(used, off + stride * (cnt - 1), -1)
    bad = last > _LAST_INDEX
    if bad.any():
        i, s = np.unravel_index(_first(bad.ravel()), bad.shape)
        _fail(where, f"row_pieces[{i}, {s}] = {a[i, s].tolist()}: its last key column is past int32")
    nnz = _i64(rn)
    bad = cnt.sum(axis=1) != nnz
    if bad.any():
        i = _first(bad)
        _fail(where, f"row_nnz[{i}] = {int(nnz[i])}, but its row_pieces count "
                     f"{int(cnt[i].sum())} keys")
    spec = (artifact.manifest.get("scratch") or {}).get("scores", {})
    shape = spec.get("shape")
    if not (isinstance(shape, list) and len(shape) == 4 and shape[:3] == ["B", "H", "Lq"]
            and isinstance(shape[3], int) and not isinstance(shape[3], bool)):
        _fail(where, f"scratch 'scores' must have shape ['B', 'H', 'Lq', W], got {shape!r}")
    most = int(nnz.max()) if Lq else 0
    if shape[3] < most:
        _fail(where, f"scratch 'scores' is {shape[3]} wide, but row {int(np.argmax(nnz))} has "
                     f"{most} keys")
    return Lq, (int(last.max()) + 1 if last.size else 0)


def _partitioning_schedule(artifact: Artifact, names: dict, block_m: int, block_n: int | None,
                           length: str, where: str) -> tuple[int, int]:
    """Checks one schedule's tables (``names``: their names, default the forward's) whose tiles
    must partition ``[0, L)``; returns ``(L, the smallest key length its columns fit)``."""
    rt_name, sg_name = names.get("row_tiles", "row_tiles"), names.get("segments", "segments")
    rt = _shape(artifact, rt_name, 2, where)
    sg = _shape(artifact, sg_name, 2, where)
    rows, _, nrows = _row_tiles(rt, rt_name, sg.shape[0], block_m, where)
    L = int(rows.max()) + 1 if rows.size else 0
    if rows.size != L:
        _fail(where, f"{rt_name} cover {rows.size} rows but reach row {L - 1}: they do not "
                     f"partition [0, {length})")
    seen = np.bincount(rows, minlength=L)  # L == rows.size here: linear
    if (seen != 1).any():
        r = _first(seen != 1)
        _fail(where, f"row {r} is in {int(seen[r])} tiles of {rt_name}: they do not partition "
                     f"[0, {length})")
    min_cols = _segments(sg, sg_name,
                         _segment_owner_nrows(rt, rt_name, sg.shape[0], block_m, where),
                         block_m, where)
    if names.get("mask_ptr", "mask_ptr") in artifact.tables:
        min_cols = max(min_cols, _mask_tables(artifact, nrows, block_n, block_m, where, names))
    return L, min_cols


def check_tables(artifact: Artifact, variant: str, where: str = "artifact") -> Coverage:
    """Bounds and consistency of every table (see the module docstring)."""
    if variant == "decomposed":
        Lq, min_Lk = _decomposed_tables(artifact, where)
        return Coverage(0, Lq, min_Lk)
    # the tile height of the fused kernels (check_kernels has made them agree and valid)
    block_m = artifact.kernels[0].get("block_m", abi.BLOCK_M) if artifact.kernels else abi.BLOCK_M
    block_n = artifact.kernels[0].get("block_n")
    Lq, min_Lk = _partitioning_schedule(artifact, {}, block_m, block_n, "Lq", where)
    min_Lk = max(min_Lk, _split_schedule(artifact, abi.SPLIT_TABLES, "row_tiles", Lq, block_m,
                                         where))
    n_tiles = int(artifact.tables["row_tiles"].shape[0])
    if variant != "backward":
        return Coverage(n_tiles, Lq, min_Lk)
    # the dK/dV kernel's column schedule: its "rows" are keys (each written by one CTA, so they
    # partition [0, Lk) exactly), its "key columns" are query rows of the row schedule
    Lk, max_query = _partitioning_schedule(artifact, abi.COL_TABLES, block_m, block_n, "Lk", where)
    max_query = max(max_query, _split_schedule(artifact, abi.COL_SPLIT_TABLES, "col_tiles", Lk,
                                               block_m, where))
    if max_query > Lq:
        _fail(where, f"the column schedules read query row {max_query - 1}, past the {Lq} rows "
                     f"of row_tiles")
    if Lk < min_Lk:
        _fail(where, f"the row schedules read key {min_Lk - 1}, past the {Lk} keys the column "
                     f"tiles cover")
    return Coverage(n_tiles, Lq, Lk, Lk)


def _split_schedule(artifact: Artifact, names: dict, main: str, L: int, block_m: int,
                    where: str) -> int:
    """Checks a split schedule's tables (``names``: its row tiles' and segments' names), if
    present: its tiles cover rows of the main schedule (``main``, L rows), each at most once,
    since its accumulating launch adds into rows the main launch wrote (two CTAs must never
    rewrite one row concurrently). Returns the smallest key length its segments fit (0 without
    a split)."""
    st_name, ss_name = names["row_tiles"], names["segments"]
    if st_name not in artifact.tables:
        return 0
    st = _shape(artifact, st_name, 2, where)
    ss = _shape(artifact, ss_name, 2, where)
    srows, _, _ = _row_tiles(st, st_name, ss.shape[0], block_m, where)
    if srows.size and int(srows.max()) >= L:
        _fail(where, f"{st_name} reach row {int(srows.max())}, past the {L} rows of {main}: "
                     f"{st_name} must cover rows of {main}")
    if srows.size and (np.bincount(srows, minlength=L) > 1).any():
        r = _first(np.bincount(srows, minlength=L) > 1)
        _fail(where, f"row {r} is in two tiles of {st_name}: {st_name} must cover rows of "
                     f"{main}, each at most once")
    owners = _segment_owner_nrows(st, st_name, ss.shape[0], block_m, where)
    return _segments(ss, ss_name, owners, block_m, where)


def check_shapes_field(artifact: Artifact, cov: Coverage, where: str = "artifact") -> None:
    """The manifest's fixed sizes (if any) against what the tables cover."""
    shapes = artifact.shapes or {}
    lq, lk = shapes.get("Lq"), shapes.get("Lk")
    if lq is not None and cov.tile_Lq is not None and lq != cov.tile_Lq:
        _fail(where, f"the manifest says Lq = {lq} but the tables cover {cov.tile_Lq} query rows")
    if lk is not None and lk < cov.min_Lk:
        _fail(where, f"the manifest says Lk = {lk} but the tables read key {cov.min_Lk - 1}")
