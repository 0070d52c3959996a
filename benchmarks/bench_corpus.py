#!/usr/bin/env python3
"""Composition-corpus benchmark: SPLAT vs FlexAttention vs SDPA+mask on masks no single named
family covers (issue 10, item 4).

`corpus(seed)` draws >= 24 masks from a fixed seed, L from 2K to 16K:

* unions / intersections of 2-3 named families with random parameters (window, causal_window,
  dilated, strided, blocked, global tokens), built with `splat.patterns` constructors combined
  with ``|`` / ``&``;
* cross attention with Lq != Lk: windows whose centre moves at the rate floor(q*Lk/Lq), dilated
  cross windows, pooled (compressed-memory) causal cross attention, cross windows plus global keys;
* packed documents of random lengths (causal or not, also & a causal window), prefix-LM, chunked
  causal;
* random masks at 1-5 % density (random element blocks, iid cells): splat gets the bool mask
  (`splat.patterns.from_mask`), Flex a lookup table.

Every mask has one vectorised predicate ``fn(q_idx, k_idx)`` for numpy and torch (lookup tables
are converted to the device, as `splat.testing.Family` does) that defines the reference, Flex's
``mask_mod`` and SDPA's boolean mask, and a splat pattern that must equal it
(tests/unit/test_bench_corpus.py checks this at small sizes).

Modes::

    # where MLIR is: analyse + compile every mask for D in {64, 128}, save the artifacts
    python benchmarks/bench_corpus.py --pack .device/corpus --tar
    # on the GPU (no MLIR): B=2, H=16, bf16; correctness against fp64, then do_bench medians
    tar xzf corpus.tar.gz -C /tmp
    SPLAT_ARTIFACT_DIR=/tmp/corpus PYTHONPATH=python python benchmarks/bench_corpus.py --run --copy-to $OUT
    # another kernel build, to compare in the same GPU call (issue 12): a pack per instruction
    python benchmarks/bench_corpus.py --pack .device/corpus-wgmma --mma wgmma --head-dims 128 --tar
    python benchmarks/bench_corpus.py --pack .device/corpus-m128 --block-m 128 --tar
    # anywhere: plot + markdown table from a results file
    python benchmarks/bench_corpus.py --plot benchmarks/results/<date>-<gpu>-corpus.json

The pack writes ``OUT/<request_key>/`` per (mask, D) and ``OUT/catalog.json`` (compiler_version,
seed, scale, and one row per entry: name, Lq, Lk, D, key, analyze_s, compile_s, pieces, density,
schedule stats, a row-count fingerprint that the GPU side checks its regenerated mask against).
``analyze_s`` is ``splat.analyze(pattern)``; ``compile_s`` is ``splat.compile`` of the analysed
ACSR (the analysis is not counted twice), first in this process (``ptx_cache_hit`` says whether
the kernel PTX came from ``splat.lowering.ptx_cache``), ``compile_warm_s`` a second compile of the
same ACSR (skipped when the first took over 5 s).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "scripts"))

from _bench_common import fmt as _f  # noqa: E402  (torch-free at import)
from splat import abi  # noqa: E402  (plain Python)
from pack_gpu_artifacts import pack_dir, write_json_atomic, write_tar  # noqa: E402  (the pack helpers)

RESULTS = ROOT / "benchmarks" / "results"
IMG = ROOT / "docs" / "img"
HEAD_DIMS = (64, 128)
TOL = 1e-2  # bf16, as bench_attention.py
WARM_COMPILE_MAX_S = 5.0

# --------------------------------------------------------------------------------- mask terms
#
# A mask is a small expression tree: ("or", a, b), ("and", a, b) or an atom (kind, params).
# Each atom has a predicate (numpy / torch) and a splat.patterns constructor; table-valued
# parameters (numpy arrays) are converted to torch on the predicate's device.


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _bcast(fn):
    """numpy predicate with the full broadcast shape, as from_mask_fn wants."""
    def full(q, k):
        return np.broadcast_to(np.asarray(fn(q, k), dtype=bool), np.broadcast_shapes(q.shape, k.shape))
    return full


def _atom_pred(kind: str, p: dict, Lq: int, Lk: int, tab: Callable) -> Callable:
    if kind == "window":
        w = p["w"]
        return lambda q, k: abs(q - k) <= w
    if kind == "causal_window":
        w = p["w"]
        return lambda q, k: ((q - k) >= 0) & ((q - k) <= w)
    if kind == "dilated":
        w, s = p["w"], p["stride"]
        return lambda q, k: (abs(q - k) <= w * s) & ((q - k) % s == 0)
    if kind == "strided":
        loc, s = p["local"], p["stride"]
        return lambda q, k: ((q - k) >= 0) & (((q - k) < loc) | ((q - k) % s == 0))
    if kind == "blocked":
        b = p["block"]
        return lambda q, k: (q // b) == (k // b)
    if kind == "global":  # rows idx attend everything, every row attends columns idx (Lq == Lk)
        g = tab(p["is_global"])
        return lambda q, k: (g[q] != 0) | (g[k] != 0)
    if kind == "prefix_lm":
        P = p["prefix"]
        return lambda q, k: (k < P) | (k <= q)
    if kind == "chunked_causal":
        c = p["chunk"]
        return lambda q, k: ((q // c) == (k // c)) & (k <= q)
    if kind == "documents":  # doc id per position, -1 past the last document
        d = tab(p["doc"])
        if p["causal"]:
            return lambda q, k: (d[q] == d[k]) & (d[q] >= 0) & (k <= q)
        return lambda q, k: (d[q] == d[k]) & (d[q] >= 0)
    if kind == "cross_window":  # centre moves at the rate Lk / Lq
        w = p["w"]
        return lambda q, k: abs(k - (q * Lk) // Lq) <= w
    if kind == "cross_dilated":
        w, s = p["w"], p["stride"]
        return lambda q, k: ((abs(k - (q * Lk) // Lq) <= w * s)
                             & ((k - (q * Lk) // Lq) % s == 0))
    if kind == "cross_pooled":  # keys pool r queries each: causal over the pooled memory
        r = p["r"]
        return lambda q, k: (k * r) <= q
    if kind == "key_globals":  # every query sees the first n keys
        n = p["n"]
        return lambda q, k: (k < n) | (q < 0)  # (q < 0) only broadcasts to the full shape
    if kind == "block_table":
        t, bq, bk = tab(p["table"]), p["bq"], p["bk"]
        return lambda q, k: t[q // bq, k // bk] != 0
    if kind == "element_table":
        t = tab(p["table"])
        return lambda q, k: t[q, k] != 0
    raise ValueError(f"unknown atom {kind!r}")


def _atom_pattern(kind: str, p: dict, Lq: int, Lk: int):
    import splat.patterns as P

    if kind == "window":
        return P.window(p["w"], Lq, Lk)
    if kind == "causal_window":
        return P.causal_window(p["w"], Lq, Lk)
    if kind == "dilated":
        return P.dilated(p["w"], p["stride"], Lq, Lk)
    if kind == "strided":
        return P.strided(p["local"], p["stride"], Lq, Lk)
    if kind == "blocked":
        return P.blocked(p["block"], Lq, Lk)
    if kind == "global":
        return P.global_tokens(np.flatnonzero(p["is_global"]).tolist(), Lq, Lk)
    if kind == "prefix_lm":
        return P.prefix_lm(p["prefix"], Lq, Lk)
    if kind == "chunked_causal":
        return P.chunked_causal(p["chunk"], Lq, Lk)
    if kind == "documents":
        return P.documents(p["lengths"], Lq, Lk, causal=p["causal"])
    if kind in ("cross_window", "cross_dilated", "cross_pooled", "key_globals"):
        fn = _atom_pred(kind, p, Lq, Lk, lambda a: a)
        return P.from_mask_fn(_bcast(fn), Lq, Lk, name=kind)
    if kind in ("block_table", "element_table"):
        fn = _atom_pred(kind, p, Lq, Lk, lambda a: a)
        q = np.arange(Lq, dtype=np.int64)[:, None]
        k = np.arange(Lk, dtype=np.int64)[None, :]
        return P.from_mask(np.ascontiguousarray(_bcast(fn)(q, k)))
    raise ValueError(f"unknown atom {kind!r}")


def _term_str(t) -> str:
    if t[0] in ("or", "and"):
        op = " | " if t[0] == "or" else " & "
        return "(" + op.join(_term_str(x) for x in t[1:]) + ")"
    kind, p = t
    ps = ", ".join(f"{k}={v}" for k, v in sorted(p.items()) if not isinstance(v, (np.ndarray, list)))
    return f"{kind}({ps})"


@dataclasses.dataclass(frozen=True, eq=False)
class CorpusMask:
    """One corpus mask: a stable `name`, sizes, its `kind` (union, intersection, cross,
    documents, prefix_lm, chunked_causal, random) and its term tree."""

    name: str
    kind: str
    Lq: int
    Lk: int
    term: tuple

    @property
    def description(self) -> str:
        return _term_str(self.term)

    def predicate(self, device: Any = None) -> Callable:
        """``fn(q_idx, k_idx)``; with a torch `device` the lookup tables live there (int
        tables, compared with != 0 / ==, so FlexAttention's mask_mod captures tensors)."""
        def tab(arr):
            if device is None:
                return arr
            import torch

            a = arr.astype(np.int8) if arr.dtype == bool else arr.astype(np.int32)
            return torch.as_tensor(a, device=device)

        def build(t):
            if t[0] in ("or", "and"):
                fs = [build(x) for x in t[1:]]
                if t[0] == "or":
                    return lambda q, k: _fold(fs, q, k, lambda a, b: a | b)
                return lambda q, k: _fold(fs, q, k, lambda a, b: a & b)
            return _atom_pred(t[0], t[1], self.Lq, self.Lk, tab)

        return build(self.term)

    def pattern(self):
        """The splat pattern (named constructors combined with | and &, analytic where the
        parts are; from_mask_fn for the cross-attention atoms, from_mask for random masks)."""
        def build(t):
            if t[0] in ("or", "and"):
                parts = [build(x) for x in t[1:]]
                out = parts[0]
                for x in parts[1:]:
                    out = (out | x) if t[0] == "or" else (out & x)
                return out
            return _atom_pattern(t[0], t[1], self.Lq, self.Lk)

        return build(self.term)

    def mask_numpy(self) -> np.ndarray:
        q = np.arange(self.Lq, dtype=np.int64)[:, None]
        k = np.arange(self.Lk, dtype=np.int64)[None, :]
        return np.ascontiguousarray(_bcast(self.predicate())(q, k))


def _fold(fs, q, k, op):
    out = fs[0](q, k)
    for f in fs[1:]:
        out = op(out, f(q, k))
    return out


# --------------------------------------------------------------------------------- the corpus


def corpus(seed: int = 0, scale: float = 1.0) -> list[CorpusMask]:
    """The corpus for `seed`. `scale` < 1 shrinks every length and size parameter (for tests);
    the random draws do not depend on it, so names and structure stay the same."""
    rng = np.random.default_rng(seed)

    def sz(x, lo=1):
        return max(lo, int(round(x * scale)))

    def ri(lo, hi):  # random int in [lo, hi], scaled
        return sz(int(rng.integers(lo, hi + 1)))

    def glob(L, n):
        # positions drawn as fractions, so the draw does not depend on the scale
        frac = rng.random(n)
        idx = np.unique((frac * L).astype(np.int64))
        g = np.zeros(L, dtype=bool)
        g[idx] = True
        return g

    def doc_lengths(L, n, fill):
        cuts = np.unique((np.sort(rng.random(n - 1)) * L * fill).astype(np.int64))
        bounds = np.concatenate([[0], cuts[cuts > 0], [int(L * fill)]])
        lens = np.diff(np.unique(bounds))
        return [int(x) for x in lens if x > 0]

    def docs(L, n, fill, causal):
        lens = doc_lengths(L, n, fill)
        doc = np.full(L, -1, dtype=np.int64)
        doc[:sum(lens)] = np.repeat(np.arange(len(lens)), lens)
        return ("documents", dict(lengths=lens, causal=causal, doc=doc, n_docs=len(lens)))

    out: list[CorpusMask] = []

    def add(kind, label, Lq, Lk, term):
        out.append(CorpusMask(f"c{len(out):02d}-{label}", kind, sz(Lq, 16), sz(Lk, 16), term))

    K = 1024
    # -- unions and intersections of named families (Lq == Lk) ---------------------------
    L = sz(4 * K, 16)
    add("union", "window|global", 4 * K, 4 * K,
        ("or", ("window", dict(w=ri(64, 512))), ("global", dict(is_global=glob(L, 24), n=24))))
    add("union", "causal_window|dilated", 8 * K, 8 * K,
        ("or", ("causal_window", dict(w=ri(64, 384))),
         ("dilated", dict(w=int(rng.integers(16, 64)), stride=int(rng.integers(3, 9))))))
    add("intersection", "window&blocked", 16 * K, 16 * K,
        ("and", ("window", dict(w=ri(128, 768))), ("blocked", dict(block=ri(512, 2048)))))
    add("union", "dilated|dilated", 4 * K, 4 * K,
        ("or", ("dilated", dict(w=int(rng.integers(16, 48)), stride=2)),
         ("dilated", dict(w=int(rng.integers(8, 24)), stride=int(rng.choice([3, 5, 7]))))))
    L = sz(8 * K, 16)
    add("union", "blocked|global|window", 8 * K, 8 * K,
        ("or", ("blocked", dict(block=ri(256, 1024))), ("global", dict(is_global=glob(L, 16), n=16)),
         ("window", dict(w=ri(32, 256)))))
    add("intersection", "strided&causal_window", 16 * K, 16 * K,
        ("and", ("strided", dict(local=ri(64, 256), stride=ri(64, 256))),
         ("causal_window", dict(w=ri(2048, 6144)))))
    L = sz(2 * K, 16)
    add("union", "causal_window|global", 2 * K, 2 * K,
        ("or", ("causal_window", dict(w=ri(128, 512))), ("global", dict(is_global=glob(L, 8), n=8))))
    add("intersection", "(window|dilated)&blocked", 8 * K, 8 * K,
        ("and", ("or", ("window", dict(w=ri(32, 128))),
                 ("dilated", dict(w=int(rng.integers(8, 32)), stride=int(rng.integers(4, 12))))),
         ("blocked", dict(block=ri(1024, 4096)))))
    add("union", "blocked|dilated", 4 * K, 4 * K,
        ("or", ("blocked", dict(block=ri(128, 512))),
         ("dilated", dict(w=int(rng.integers(16, 64)), stride=int(rng.integers(2, 8))))))
    L = sz(12 * K, 16)
    add("union", "strided|global", 12 * K, 12 * K,
        ("or", ("strided", dict(local=ri(64, 256), stride=ri(128, 512))),
         ("global", dict(is_global=glob(L, 32), n=32))))
    # -- cross attention, Lq != Lk ----------------------------------------------------------
    add("cross", "cross_window", 4 * K, 16 * K, ("cross_window", dict(w=ri(128, 512))))
    add("cross", "cross_window", 16 * K, 4 * K, ("cross_window", dict(w=ri(32, 128))))
    r = int(rng.choice([2, 4, 8]))
    add("cross", "cross_pooled", 8 * K, 8 * K // r, ("cross_pooled", dict(r=r)))
    add("cross", "cross_dilated", 2 * K, 8 * K,
        ("cross_dilated", dict(w=int(rng.integers(16, 64)), stride=int(rng.integers(2, 6)))))
    add("cross", "cross_window|key_globals", 8 * K, 3 * K,
        ("or", ("cross_window", dict(w=ri(64, 256))), ("key_globals", dict(n=ri(16, 64)))))
    # -- documents, prefix-LM, chunked causal ---------------------------------------------------
    add("documents", "documents", 8 * K, 8 * K, docs(sz(8 * K, 16), int(rng.integers(4, 16)), 1.0, False))
    add("documents", "causal_documents", 16 * K, 16 * K,
        docs(sz(16 * K, 16), int(rng.integers(8, 32)), 0.97, True))
    add("documents", "causal_documents&causal_window", 8 * K, 8 * K,
        ("and", docs(sz(8 * K, 16), int(rng.integers(3, 10)), 1.0, True),
         ("causal_window", dict(w=ri(256, 1024)))))
    add("prefix_lm", "prefix_lm", 4 * K, 4 * K, ("prefix_lm", dict(prefix=ri(256, 2048))))
    add("prefix_lm", "prefix_lm", 12 * K, 12 * K, ("prefix_lm", dict(prefix=ri(512, 4096))))
    add("chunked_causal", "chunked_causal", 16 * K, 16 * K, ("chunked_causal", dict(chunk=ri(512, 2048))))
    L = sz(8 * K, 16)
    add("chunked_causal", "chunked_causal|global", 8 * K, 8 * K,
        ("or", ("chunked_causal", dict(chunk=ri(256, 1024))), ("global", dict(is_global=glob(L, 8), n=8))))
    # -- random masks, 1-5 % density ------------------------------------------------------------
    for label, Lq_, Lk_, bq, bk, dens in (("random_blocks16", 4 * K, 4 * K, 16, 16, 0.02),
                                          ("random_blocks64x32", 8 * K, 8 * K, 64, 32, 0.01),
                                          ("random_blocks8", 4 * K, 2 * K, 8, 8, 0.05),
                                          ("random_iid", 2 * K, 2 * K, 1, 1, 0.01),
                                          ("random_iid", 2 * K, 2 * K, 1, 1, 0.03)):
        nq, nk = -(-sz(Lq_, 16) // bq), -(-sz(Lk_, 16) // bk)
        table = rng.random((nq, nk)) < dens  # drawn at the scaled size (test sizes differ)
        if bq == bk == 1:
            add("random", f"{label}-{dens:.0%}", Lq_, Lk_, ("element_table", dict(table=table, density=dens)))
        else:
            add("random", f"{label}-{dens:.0%}", Lq_, Lk_,
                ("block_table", dict(table=table, bq=bq, bk=bk, density=dens)))
    return out


# --------------------------------------------------------------------------------- pack (CPU)


def _row_fingerprint(row_nnz) -> str:
    return hashlib.sha256(np.asarray(row_nnz, dtype=np.int64).tobytes()).hexdigest()[:16]




def pack(args) -> int:
    import splat
    from splat.lowering import ptx_cache
    from splat.runtime.artifact import ArtifactError, load, save
    from splat.runtime.resolve import DEFAULT_TARGET, request_key
    out, version = pack_dir(args.pack)
    cat_path = out / "catalog.json"
    old = json.loads(cat_path.read_text()) if cat_path.is_file() else {}
    same = (old.get("compiler_version") == version and old.get("seed") == args.seed
            and old.get("scale") == args.scale and old.get("mma", "auto") == args.mma
            and old.get("block_m") == args.block_m
            and old.get("block_n") == args.block_n
            and old.get("warp_rows") == args.warp_rows)
    done = {(e["name"], e["D"]): e for e in old.get("entries", [])} if same and not args.force else {}
    masks = corpus(args.seed, args.scale)
    if args.masks:
        keep = set(args.masks.split(","))
        masks = [m for m in masks if m.name in keep or m.name[:3] in keep]
    entries = dict(done)
    head_dims = [int(d) for d in args.head_dims.split(",")]
    cat = lambda: {"format": "splat-corpus-catalog/1", "compiler_version": version,  # noqa: E731
                   "target": DEFAULT_TARGET, "seed": args.seed, "scale": args.scale,
                   "mma": args.mma, "block_m": args.block_m, "block_n": args.block_n,
                   "warp_rows": args.warp_rows,
                   "entries": sorted(entries.values(), key=lambda e: (e["name"], e["D"]))}
    t_start = time.perf_counter()
    failures = []
    for i, m in enumerate(masks):
        if all((m.name, D) in done and (out / done[(m.name, D)]["key"]).is_dir() for D in head_dims):
            print(f"[{i + 1}/{len(masks)}] {m.name}: cached", flush=True)
            continue
        t0 = time.perf_counter()
        pattern = m.pattern()
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        acsr = splat.analyze(pattern)
        analyze_s = time.perf_counter() - t0
        n_rem = int(acsr.remainder.n) if acsr.remainder is not None else 0
        base = dict(name=m.name, kind=m.kind, description=m.description, Lq=m.Lq, Lk=m.Lk,
                    pattern_build_s=build_s, analyze_s=analyze_s, pieces=len(acsr.pieces),
                    remainder_blocks=n_rem, nnz=int(acsr.nnz), density=float(acsr.density),
                    row_fingerprint=_row_fingerprint(acsr.row_nnz()))
        for D in head_dims:
            key = request_key(acsr, Lq=m.Lq, Lk=m.Lk, dtype="bf16", head_dim=D)
            dest = out / key
            options = dict(dtype="bf16", head_dim=D, mma=args.mma, block_m=args.block_m,
                           block_n=args.block_n, warp_rows=args.warp_rows)
            row = dict(base, D=D, key=key, **{k: v for k, v in options.items() if k != "head_dim"})
            try:
                hits = ptx_cache.stats["hits"]
                t0 = time.perf_counter()
                art = splat.compile(acsr, **options)
                row["compile_s"] = time.perf_counter() - t0
                row["ptx_cache_hit"] = ptx_cache.stats["hits"] > hits
                row["compile_warm_s"] = None
                if row["compile_s"] <= WARM_COMPILE_MAX_S:
                    t0 = time.perf_counter()
                    splat.compile(acsr, **options)
                    row["compile_warm_s"] = time.perf_counter() - t0
                save(art, dest, overwrite=True)
                load(dest)  # what the GPU side will read
            except (ArtifactError, Exception) as e:  # keep packing the rest, report at the end
                failures.append((m.name, D, repr(e)))
                print(f"[{i + 1}/{len(masks)}] {m.name} D={D}: FAILED {e!r}", flush=True)
                traceback.print_exc()
                continue
            first = art.manifest["kernels"][0]  # the variant compiled (chosen or given)
            row["variant"] = abi.kernel_variant_name(first)
            row["stats"] = art.manifest.get("stats")
            row["split_stats"] = art.manifest.get("split_stats")
            row["artifact_bytes"] = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
            entries[(m.name, D)] = row
            st = row["stats"] or {}
            print(f"[{i + 1}/{len(masks)}] {m.name:38s} {m.Lq:6d}x{m.Lk:<6d} D={D:3d} "
                  f"dens={row['density']:.4f} pieces={row['pieces']:5d} rem={n_rem:5d} "
                  f"analyze={analyze_s:6.2f}s compile={row['compile_s']:6.2f}s "
                  f"warm={_f(row['compile_warm_s'], '{:.2f}')}s key_tiles={st.get('key_tiles')} "
                  f"{row['artifact_bytes'] / 2**20:.2f}MiB", flush=True)
        write_json_atomic(cat_path, cat())
    write_json_atomic(cat_path, cat())
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{len(entries)} catalog entries, {size / 2**20:.1f} MiB in {out} "
          f"({time.perf_counter() - t_start:.1f}s)")
    if args.tar:
        write_tar(out)
    if args.cpu_json:
        keep = ("name", "kind", "description", "Lq", "Lk", "D", "density", "nnz", "pieces",
                "remainder_blocks", "pattern_build_s", "analyze_s", "compile_s", "compile_warm_s",
                "ptx_cache_hit", "artifact_bytes", "key")
        rows = []
        for e in cat()["entries"]:
            r = {k: e.get(k) for k in keep}
            st = e.get("stats") or {}
            r.update(key_tiles=st.get("key_tiles"), tiles=st.get("tiles"),
                     tiles_blocks_plan=st.get("tiles_blocks_plan", 0),
                     mask_tiles=st.get("mask_tiles"), efficiency=st.get("efficiency"),
                     split=e.get("split_stats") is not None)
            rows.append(r)
        meta = dict(date=_dt.date.today().isoformat(), compiler_version=version, seed=args.seed,
                    scale=args.scale, host_cpus=os.cpu_count(),
                    note="CPU side of benchmarks/bench_corpus.py --pack: analyze_s = splat.analyze, "
                         "compile_s = splat.compile of the ACSR (first in the process), "
                         "compile_warm_s = a second compile (null when the first took > 5 s)")
        Path(args.cpu_json).parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(Path(args.cpu_json), dict(meta, rows=rows))
        print(f"wrote {args.cpu_json}")
    if failures:
        print(f"{len(failures)} FAILED:")
        for f in failures:
            print("  ", *f)
        return 1
    return 0


# --------------------------------------------------------------------------------- run (GPU)


def run_row(m: CorpusMask, e: dict, art_dir: Path, args, flex) -> dict:
    import torch
    import torch.nn.functional as F

    import _bench_common as C
    import splat.torch as st
    from splat import testing as T
    from splat.runtime.resolve import load_cached

    B, H, D, dev = args.B, args.H, e["D"], torch.device("cuda")
    Lq, Lk = m.Lq, m.Lk
    row = dict(mask=m.name, kind=m.kind, description=m.description, Lq=Lq, Lk=Lk, D=D,
               dtype="bf16", mma=e.get("mma", "auto"), block_m=e.get("block_m"),
               block_n=e.get("block_n"), warp_rows=e.get("warp_rows"),
               variant=e.get("variant"), B=B, H=H, density=e["density"], pieces=e["pieces"],
               analyze_s=e["analyze_s"], compile_s=e["compile_s"], key_tiles=(e.get("stats") or {}).get("key_tiles"),
               splat_ms=None, flex_ms=None, sdpa_ms=None, sdpa_masked_ms=None, splat_ok=None,
               notes=[])
    pred = m.predicate(dev)
    # the regenerated mask must be the packed one (a different numpy could draw differently)
    rows_nnz = torch.zeros(Lq, dtype=torch.int64)
    for r in range(0, Lq, 2048):
        rows_nnz[r:r + 2048] = T.mask_torch(pred, Lq, r, min(r + 2048, Lq), dev, Lk).sum(1).cpu()
    if _row_fingerprint(rows_nnz.numpy()) != e["row_fingerprint"]:
        row["notes"].append("regenerated mask differs from the packed one (row counts)")
        row["splat_ok"] = False
    scale = 1.0 / math.sqrt(D)
    q = torch.randn(B, H, Lq, D, device=dev, dtype=torch.bfloat16)
    k, v = (torch.randn(B, H, Lk, D, device=dev, dtype=torch.bfloat16) for _ in range(2))
    hs = slice(0, args.check_heads)
    ref_o, _, _ = T.reference_attention_torch(q[:1], k[:1], v[:1], pred, scale, heads=hs)
    try:  # SPLAT: the public call with the prebuilt artifact (the pattern is then not needed)
        art = load_cached(art_dir / e["key"])
        o, first_s = C.timed(lambda: st.attention(q, k, v, None, scale=scale, artifact=art))
        row["splat_first_call_s"] = first_s
        err = T.rel_error(o[:1, hs], ref_o)
        row["splat_rel_err"] = err
        ok = bool(err <= TOL and not torch.isnan(o).any())
        row["splat_ok"] = ok if row["splat_ok"] is None else (row["splat_ok"] and ok)
        del o
        row["splat_ms"] = C.bench(lambda: st.attention(q, k, v, None, scale=scale, artifact=art), args)
    except Exception as ex:
        row["splat_ok"] = False
        row["notes"].append(f"splat failed: {ex!r}")
        traceback.print_exc()
    if flex is not None:
        try:
            o, bm_s, first_s, row["flex_ms"] = C.run_flex(pred, q, k, v, scale, flex, args)
            row["flex_first_call_s"] = bm_s + first_s
            row["flex_rel_err"] = T.rel_error(o[:1, hs], ref_o)
            del o
        except Exception as ex:
            row["notes"].append(f"flex failed: {ex!r}")
            traceback.print_exc()
    try:
        row["sdpa_ms"] = C.bench(lambda: F.scaled_dot_product_attention(q, k, v, scale=scale), args)
        mask = C.dense_mask(pred, Lq, Lk, dev)
        row["sdpa_masked_ms"] = C.bench(
            lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale), args)
        del mask
    except Exception as ex:
        row["notes"].append(f"sdpa failed: {ex!r}")
    if row["splat_ms"] and row["flex_ms"]:
        row["splat_vs_flex"] = row["flex_ms"] / row["splat_ms"]
    del q, k, v, ref_o
    torch.cuda.empty_cache()
    return row


def run(args) -> int:
    import torch
    import triton

    import _bench_common as C

    if not torch.cuda.is_available():
        raise SystemExit("--run needs a CUDA GPU")
    if not args.artifacts:
        raise SystemExit("set SPLAT_ARTIFACT_DIR (or --artifacts) to the output of --pack")
    art_dir = Path(args.artifacts)
    cat = json.loads((art_dir / "catalog.json").read_text())
    by_name = {m.name: m for m in corpus(cat["seed"], cat["scale"])}
    entries = [e for e in cat["entries"] if not args.masks
               or e["name"] in args.masks.split(",") or e["name"][:3] in args.masks.split(",")]
    head_dims = {int(d) for d in args.head_dims.split(",")}
    entries = [e for e in entries if e["D"] in head_dims]
    flex = None if args.skip_flex else C.flex_compiled()
    gpu = torch.cuda.get_device_name()
    date = _dt.date.today().isoformat()
    meta = dict(date=date, gpu=gpu, torch=torch.__version__, triton=triton.__version__,
                cuda=torch.version.cuda, compiler_version=cat["compiler_version"], seed=cat["seed"])
    out_json = Path(args.out_json) if args.out_json else RESULTS / f"{date}-{C.slug(gpu)}-corpus.json"
    rows = []
    for e in entries:
        t0 = time.perf_counter()
        row = dict(run_row(by_name[e["name"]], e, art_dir, args, flex), **meta)
        rows.append(row)
        print(f"{row['mask']:38s} {row['Lq']:6d}x{row['Lk']:<6d} D={row['D']:3d} "
              f"dens={row['density']:.4f} splat={_f(row['splat_ms'])} flex={_f(row['flex_ms'])} "
              f"sdpa+mask={_f(row['sdpa_masked_ms'])} ok={row['splat_ok']} "
              f"err={_f(row.get('splat_rel_err'), '{:.1e}')} ({time.perf_counter() - t0:.1f}s) "
              f"{'; '.join(row['notes'])}", flush=True)
        C.save_rows(out_json, rows)
    print(f"wrote {out_json}")
    if args.copy_to:
        Path(args.copy_to).mkdir(parents=True, exist_ok=True)
        shutil.copy(out_json, Path(args.copy_to) / out_json.name)
    return 1 if any(r["splat_ok"] is False for r in rows) else 0


# --------------------------------------------------------------------------------- plot


def _ratio(a, b):
    return a / b if a and b else None


def markdown_table(rows: list) -> str:
    cols = ["mask", "Lq", "Lk", "D", "density", "pieces", "variant", "SPLAT ms", "Flex ms",
            "SDPA+mask ms",
            "SPLAT/SDPA+mask", "Flex/SDPA+mask", "Flex/SPLAT", "ok", "analyze s", "compile s"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in sorted(rows, key=lambda r: (r["density"], r["mask"], r["D"])):
        lines.append("| " + " | ".join([
            r["mask"], str(r["Lq"]), str(r["Lk"]), str(r["D"]), _f(r["density"], "{:.4f}"),
            str(r.get("pieces", "–")), r.get("variant") or "–", _f(r.get("splat_ms")),
            _f(r.get("flex_ms")),
            _f(r.get("sdpa_masked_ms")), _f(_ratio(r.get("splat_ms"), r.get("sdpa_masked_ms")), "{:.2f}"),
            _f(_ratio(r.get("flex_ms"), r.get("sdpa_masked_ms")), "{:.2f}"),
            _f(_ratio(r.get("flex_ms"), r.get("splat_ms")), "{:.2f}×"),
            {True: "✓", False: "✗"}.get(r.get("splat_ok"), "–"),
            _f(r.get("analyze_s"), "{:.2f}"), _f(r.get("compile_s"), "{:.2f}")]) + " |")
    return "\n".join(lines) + "\n"


def plot(path: str, out_png: str | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads(Path(path).read_text())
    meta, rows = (data, data["rows"]) if isinstance(data, dict) else ({}, data)
    date = (meta.get("date") or (rows[0].get("date") if rows else None)
            or _dt.date.today().isoformat())
    gpu = meta.get("gpu") or (rows[0].get("gpu", "?") if rows else "?")
    out = Path(out_png) if out_png else IMG / f"corpus-{date}.png"
    dims = sorted({r["D"] for r in rows})
    fig, axes = plt.subplots(len(dims), 1, figsize=(max(8, 0.38 * len(rows) / max(1, len(dims)) + 3),
                                                    4.2 * len(dims)), squeeze=False)
    for ax, D in zip(axes[:, 0], dims):
        rs = sorted((r for r in rows if r["D"] == D), key=lambda r: (r["density"], r["mask"]))
        x = np.arange(len(rs))
        for key, label, mk in (("splat_ms", "SPLAT", "o"), ("flex_ms", "FlexAttention", "s")):
            y = [_ratio(r.get(key), r.get("sdpa_masked_ms")) for r in rs]
            y = [np.nan if v is None else v for v in y]
            ax.plot(x, y, mk, label=label, ms=6)
        bad = [i for i, r in enumerate(rs) if r.get("splat_ok") is False]
        if bad:
            ax.plot(bad, [_ratio(rs[i].get("splat_ms"), rs[i].get("sdpa_masked_ms")) or np.nan
                          for i in bad], "x", color="red", ms=10, label="SPLAT incorrect")
        ax.axhline(1.0, color="gray", lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.set_xticks(x)
        ax.set_xticklabels([f"{r['mask']} {r['Lq']}x{r['Lk']} ({r['density']:.3f})" for r in rs],
                           rotation=75, ha="right", fontsize=7)
        ax.set_ylabel("time / SDPA+mask")
        ax.set_title(f"D={D}: time relative to SDPA with a boolean mask (lower is better), "
                     f"sorted by density — {gpu}, {date}", fontsize=9)
        ax.grid(True, which="both", axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(markdown_table(rows))
    print(f"wrote {out}")
    return out


# --------------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--pack", metavar="OUT_DIR", help="analyse + compile the corpus (needs MLIR)")
    mode.add_argument("--run", action="store_true", help="benchmark on the GPU")
    mode.add_argument("--plot", metavar="JSON", help="PNG + markdown table from --run results")
    mode.add_argument("--list", action="store_true", help="print the corpus")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale", type=float, default=1.0, help="shrink lengths (tests)")
    ap.add_argument("--masks", help="comma-separated names (or cNN prefixes) to keep")
    ap.add_argument("--tar", action="store_true", help="with --pack: also write OUT_DIR.tar.gz")
    ap.add_argument("--force", action="store_true", help="with --pack: recompile cached entries")
    ap.add_argument("--cpu-json", help="with --pack: write the CPU-side table here")
    ap.add_argument("--mma", default="auto", choices=("auto", "mma_sync", "wgmma"),
                    help="with --pack: the fused kernel's tensor-core instruction (splat.compile)")
    ap.add_argument("--block-m", type=int, choices=abi.BLOCK_M_CHOICES,
                    help="with --pack: query rows per row tile (splat.compile; default: the "
                         "kernel variant chosen by cost)")
    ap.add_argument("--block-n", type=int, choices=abi.BLOCK_N_CHOICES,
                    help="with --pack: keys per key tile (splat.compile; default: per head dim)")
    ap.add_argument("--warp-rows", type=int, choices=abi.WARP_ROWS_CHOICES,
                    help="with --pack: query rows per warp of the fused kernel (splat.compile; "
                         "default: the chosen variant's)")
    ap.add_argument("--head-dims", default=",".join(map(str, HEAD_DIMS)),
                    help="comma-separated head dims to pack or run (wgmma: 128 only for now)")
    ap.add_argument("--artifacts", default=os.environ.get("SPLAT_ARTIFACT_DIR"),
                    help="with --run: the pack (default $SPLAT_ARTIFACT_DIR)")
    ap.add_argument("--B", type=int, default=2)
    ap.add_argument("--H", type=int, default=16)
    ap.add_argument("--check-heads", type=int, default=2, help="heads checked against fp64")
    ap.add_argument("--warmup", type=int, default=25, help="do_bench warmup (ms)")
    ap.add_argument("--rep", type=int, default=100, help="do_bench repetition time (ms)")
    ap.add_argument("--skip-flex", action="store_true")
    ap.add_argument("--out-json", help="with --run: results path "
                                       "(default benchmarks/results/<date>-<gpu>-corpus.json)")
    ap.add_argument("--copy-to", help="with --run: also copy the JSON here (e.g. $OUT)")
    ap.add_argument("--plot-out", help="with --plot: PNG path (default docs/img/corpus-<date>.png)")
    args = ap.parse_args(argv)
    if args.list:
        for m in corpus(args.seed, args.scale):
            print(f"{m.name:38s} {m.kind:15s} {m.Lq:6d}x{m.Lk:<6d} {m.description}")
        return 0
    if args.pack:
        return pack(args)
    if args.run:
        return run(args)
    plot(args.plot, args.plot_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
