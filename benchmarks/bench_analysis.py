"""Cost of building ACSRs: every named family at L = 4K, 16K, 32K, three ways.

* ``make``   - creating the pattern object (``random_blocks`` / ``bigbird`` draw their random
  blocks here: one ``rng.choice`` per row block, the documented random stream).
* ``ctor``   - ``pattern.acsr()`` on a fresh pattern (created untimed): the analytic construction,
  O(pieces); every named family has one, longformer and bigbird included.
* ``mask``   - ``analyze(mask)`` of the materialised bool mask (the mask is built first, untimed).
  This is the "< 50 ms at 16K" criterion: analysing a given mask.
* ``pred``   - evaluating the predicate alone over all row chunks (``from_mask_fn(...).iter_rows()``).
* ``fn``     - ``analyze(from_mask_fn(predicate))``: the predicate evaluated in row chunks plus the
  analysis; no ``L x L`` array exists at any time.  ``fn - pred`` is the analysis part.

Times are the best of a few runs (``mask``: 5 up to 16K), in milliseconds.  Usage:

    PYTHONPATH=python python benchmarks/bench_analysis.py [--sizes 4096,16384,32768] [--no-fn]

Prints a table and writes benchmarks/results/analysis-<date>.json.

``--corpus`` (issue 10, items 2-3) times the analysis of the 27 composition-corpus masks of
benchmarks/bench_corpus.py (seed 0) two ways, best of ``--repeat``:

* ``pattern_ms`` (and ``pattern_ms_median``) - ``splat.analyze(pattern)`` on a fresh pattern (built untimed), what
  bench_corpus.py records as ``analyze_s`` (interval algebra for ``|`` / ``&``, the predicate
  in row chunks for cross attention);
* ``mask_ms``    - ``splat.analyze(mask)`` of the materialised bool mask;

with the pieces and remainder blocks of each, exactness checked against the mask, and the
pieces / ``analyze_s`` of an earlier corpus run (``--before``) for comparison; plus the named
families' ``mask`` time at 16K and the cost of packing a 16K mask (``np.packbits`` per row, as
before, versus on the flat array, as :func:`splat.analysis.words.pack_rows` does now).  Writes
benchmarks/results/<date>-analysis-compact-cpu.json.

``--tables`` (issue 10) times constructor-to-tables at L = 16K: a layout made by an analytic
constructor (packed documents with fresh random lengths on every run, as a new layout every
training step; prefix-LM, chunked causal; unions and intersections of analytic patterns) up to
the launchable tile schedule tables, in three parts, best and median of ``--repeat`` runs:

* ``make_ms``    - the constructor (for ``|`` / ``&``: the parts and the combined pattern);
* ``analyze_ms`` - ``splat.analyze(pattern)`` (the constructor's pieces; interval algebra for
  ``|`` / ``&``);
* ``tile_ms``    - what ``splat-tile-acsr`` computes per head dim by default:
  ``splat.tiling.variants.choose_schedule`` (every kernel variant priced, by bounds or its
  planned tiles, the cheapest one's ``build_schedule`` and ``plan_split`` tables, heavy-first
  order).

``total_ms`` is their sum per run.  Writes benchmarks/results/<date>-constructor-cpu.json.

``--baseline PATH`` (``--corpus``, ``--tables``): an earlier output of the same mode, made with
the code before a change on the same machine in the same session (timings on the shared VM drift
over minutes); its analysis times (and piece counts) are copied into each row as ``*_baseline``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from splat import patterns as P  # noqa: E402
from splat.analysis import analyze, scan_threads  # noqa: E402

G = range(64)  # global tokens
FAMILIES = {
    "window(256)": lambda L: P.window(256, L),
    "causal": lambda L: P.causal(L),
    "causal_window(256)": lambda L: P.causal_window(256, L),
    "dilated(64,4)": lambda L: P.dilated(64, 4, L),
    "strided(128,128)": lambda L: P.strided(128, 128, L),
    "fixed(128,8)": lambda L: P.fixed(128, 8, L),
    "blocked(128)": lambda L: P.blocked(128, L),
    "global_tokens(0:64)": lambda L: P.global_tokens(G, L),
    "random_blocks(64,3)": lambda L: P.random_blocks(64, 3, 0, L),
    "longformer(256,0:64)": lambda L: P.longformer(256, G, L),
    "bigbird(192,0:64,3,64)": lambda L: P.bigbird(192, G, 3, 64, 0, L),
}


def best_ms(fn, repeat: int) -> tuple[float, object]:
    times, out = times_ms(fn, repeat)
    return min(times), out


def times_ms(fn, repeat: int) -> tuple[list[float], object]:
    """Wall times of ``repeat`` calls in ms, and the last result."""
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1e3)
    return times, out


def bench(sizes, with_fn: bool):
    rows = []
    for L in sizes:
        for name, make in FAMILIES.items():
            make_ms, _ = best_ms(lambda: make(L), 3)
            pats = [make(L) for _ in range(9)]  # fresh patterns: acsr() is cached per object
            ctor_ms, a = best_ms(lambda: pats.pop().acsr(), 9)
            mask = a.to_mask()  # exact (tests), and much faster than the predicate at 32K
            mask_ms, g = best_ms(lambda: analyze(mask), 5 if L <= 16384 else 2)
            assert np.array_equal(g.to_mask(), mask), f"{name} L={L}: analysis not exact"
            del mask
            fn_ms = pred_ms = None
            if with_fn:
                p = make(L)
                pred_ms, _ = best_ms(lambda: [None for _ in P.from_mask_fn(p.contains, L).iter_rows()], 1)
                fn_ms, f = best_ms(lambda: analyze(P.from_mask_fn(p.contains, L)), 1)
                assert f == g, f"{name} L={L}: chunked analysis differs"
            rem = g.remainder.n if g.remainder is not None else 0
            row = {"family": name, "L": L, "pieces_ctor": len(a.pieces), "pieces_analysis": len(g.pieces),
                   "remainder_blocks": rem, "nnz": a.nnz, "make_ms": round(make_ms, 3),
                   "ctor_ms": round(ctor_ms, 3), "mask_ms": round(mask_ms, 1),
                   "pred_ms": None if pred_ms is None else round(pred_ms, 1),
                   "fn_ms": None if fn_ms is None else round(fn_ms, 1)}
            rows.append(row)
            print(f"{name:24s} L={L:6d} pieces {row['pieces_ctor']:4d}/{row['pieces_analysis']:4d} "
                  f"rem {rem:3d}  make {make_ms:7.3f}  ctor {ctor_ms:7.3f}  mask {mask_ms:7.1f}  "
                  f"pred {'-' if pred_ms is None else f'{pred_ms:7.1f}'}  "
                  f"fn {'-' if fn_ms is None else f'{fn_ms:7.1f}'} ms", flush=True)
    return rows


def table(rows) -> str:
    sizes = sorted({r["L"] for r in rows})
    head = "| family | pieces | " + " | ".join(f"ctor / mask / pred / fn ms, L={L // 1024}K" for L in sizes) + " |"
    lines = [head, "|" + "---|" * (2 + len(sizes))]
    for name in FAMILIES:
        rs = {r["L"]: r for r in rows if r["family"] == name}
        r0 = rs[sizes[0]]
        cells = []
        for L in sizes:
            r = rs[L]
            fn = "-" if r["fn_ms"] is None else f"{r['fn_ms']:.0f}"
            pred = "-" if r.get("pred_ms") is None else f"{r['pred_ms']:.0f}"
            cells.append(f"{r['ctor_ms']:.2f} / {r['mask_ms']:.0f} / {pred} / {fn}")
        lines.append(f"| {name} | {r0['pieces_ctor']} / {r0['pieces_analysis']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bench_packing(L: int = 16384, repeat: int = 5) -> dict:
    """Packing one 16K window mask in the scan's row chunks of 2^24 cells: per row (axis=1,
    the earlier code) and flat (pack_rows now); the bytes are the same."""
    from splat.analysis.intervals import CHUNK_CELLS
    from splat.analysis.words import pack_rows

    mask = P.window(256, L).mask()
    step = max(1, CHUNK_CELLS // L)
    chunks = [mask[i:i + step] for i in range(0, L, step)]
    per_row, _ = best_ms(lambda: [np.packbits(c, axis=1, bitorder="little") for c in chunks], repeat)
    flat, _ = best_ms(lambda: [pack_rows(c) for c in chunks], repeat)
    for c in chunks[:2]:
        assert np.array_equal(pack_rows(c).view(np.uint8), np.packbits(c, axis=1, bitorder="little"))
    return {"L": L, "chunk_rows": step, "per_row_ms": round(per_row, 2), "flat_ms": round(flat, 2)}


def _baseline(path: str | None, section: str, key) -> dict:
    """Rows of an earlier output of this script (``--baseline``: the code before a change,
    run on the same machine in the same session), by ``key(row)``."""
    if not path:
        return {}
    return {key(r): r for r in json.loads(Path(path).read_text())[section]}


def bench_corpus(repeat: int, before_path: Path | None, names=None, baseline: dict | None = None):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_corpus import corpus

    before = {}
    if before_path is not None and before_path.is_file():
        for r in json.loads(before_path.read_text())["rows"]:
            before.setdefault(r["name"], r)
    rows = []
    for m in corpus(0):
        if names and m.name[:3] not in names:
            continue
        pats = [m.pattern() for _ in range(repeat)]  # fresh, untimed: analytic ACSRs are cached
        pattern_times, a = times_ms(lambda: analyze(pats.pop()), repeat)
        pattern_ms = min(pattern_times)
        mask = m.mask_numpy()
        mask_ms, b = best_ms(lambda: analyze(mask), repeat)
        nnz = int(np.count_nonzero(mask))
        for x in (a, b):  # exact: the same cells, and no cell counted twice (pieces disjoint)
            assert np.array_equal(x.to_mask(), mask) and x.nnz == nnz, m.name
            if len(x.pieces) <= 2000:  # validate()'s pairwise check is slow on 10K pieces
                x.validate()
        del mask
        old = before.get(m.name, {})
        row = {"mask": m.name, "description": m.description, "Lq": m.Lq, "Lk": m.Lk,
               "pieces_before": old.get("pieces"), "remainder_blocks_before": old.get("remainder_blocks"),
               "analyze_ms_before": None if old.get("analyze_s") is None else round(old["analyze_s"] * 1e3, 1),
               "pieces": len(a.pieces), "remainder_blocks": 0 if a.remainder is None else a.remainder.n,
               "row_steps": sorted({int(x) for x in a.table[:, 2]}) if len(a.pieces) else [],
               "pattern_ms": round(pattern_ms, 1), "pattern_ms_median": round(float(np.median(pattern_times)), 1),
               "mask_pieces": len(b.pieces), "mask_remainder_blocks": 0 if b.remainder is None else b.remainder.n,
               "mask_ms": round(mask_ms, 1)}
        base = (baseline or {}).get(m.name)
        if base is not None:
            row["pattern_ms_baseline"], row["pieces_baseline"] = base["pattern_ms"], base["pieces"]
            row["pattern_ms_median_baseline"] = base.get("pattern_ms_median")
        rows.append(row)
        print(f"{m.name:38s} {m.Lq:6d}x{m.Lk:<6d} pieces {str(row['pieces_before']):>6s} -> {row['pieces']:6d} "
              f"rem {row['remainder_blocks']:5d}  pattern {pattern_ms:7.1f} ms  mask {mask_ms:7.1f} ms",
              flush=True)
    return rows


def _doc_lengths(rng, L: int, lo: int, hi: int) -> list[int]:
    """Random document lengths summing to ``L`` (between ``lo`` and ``hi`` documents)."""
    n = int(rng.integers(lo, hi + 1))
    cuts = np.sort(rng.choice(np.arange(1, L), n - 1, replace=False))
    return np.diff(np.concatenate([[0], cuts, [L]])).tolist()


# constructor-to-tables layouts: name -> make(L, rng); random parameters are drawn on every run
TABLE_LAYOUTS = {
    "documents": lambda L, rng: P.documents(_doc_lengths(rng, L, 4, 32), L),
    "causal_documents": lambda L, rng: P.documents(_doc_lengths(rng, L, 4, 32), L, causal=True),
    "prefix_lm": lambda L, rng: P.prefix_lm(int(rng.integers(512, 4097)), L),
    "chunked_causal(1024)": lambda L, rng: P.chunked_causal(1024, L),
    "causal_documents&causal_window(512)": lambda L, rng: (
        P.documents(_doc_lengths(rng, L, 4, 16), L, causal=True) & P.causal_window(512, L)),
    "chunked_causal(2048)|causal_window(256)": lambda L, rng: (
        P.chunked_causal(2048, L) | P.causal_window(256, L)),
    "window(256)|global_tokens(0:64)": lambda L, rng: P.window(256, L) | P.global_tokens(G, L),
    "window(384)&blocked(1000)": lambda L, rng: P.window(384, L) & P.blocked(1000, L),
}


def bench_tables(L: int, repeat: int, seed: int = 0, baseline: dict | None = None) -> list[dict]:
    from splat.abi import DEFAULT_BLOCK_N
    from splat.tiling.variants import choose_schedule

    rng = np.random.default_rng(seed)
    rows = []
    for name, make in TABLE_LAYOUTS.items():
        for D, block_n in sorted(DEFAULT_BLOCK_N.items()):
            runs = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                pattern = make(L, rng)
                t1 = time.perf_counter()
                acsr = analyze(pattern)
                t2 = time.perf_counter()
                variant, main, extra = choose_schedule(acsr, D, order="heavy_first")
                t3 = time.perf_counter()
                runs.append((t1 - t0, t2 - t1, t3 - t2, t3 - t0, len(acsr.pieces),
                             main.n_tiles + (extra.n_tiles if extra is not None else 0),
                             variant.name))
            ms = np.array([r[:4] for r in runs]) * 1e3
            best, med = ms.min(axis=0), np.median(ms, axis=0)
            row = {"layout": name, "L": L, "D": D, "block_n": block_n, "repeat": repeat,
                   "pieces": [r[4] for r in runs], "row_tiles": [r[5] for r in runs],
                   "variants": [r[6] for r in runs]}
            for k, part in enumerate(("make", "analyze", "tile", "total")):
                row[f"{part}_ms"] = round(float(best[k]), 3)
                row[f"{part}_ms_median"] = round(float(med[k]), 3)
            base = (baseline or {}).get((name, D))
            if base is not None:
                for part in ("analyze", "total"):
                    for suffix in ("", "_median"):
                        row[f"{part}_ms{suffix}_baseline"] = base[f"{part}_ms{suffix}"]
            rows.append(row)
            print(f"{name:40s} D={D:3d} total {best[3]:7.2f} ms (median {med[3]:7.2f}): make "
                  f"{best[0]:6.2f}  analyze {best[1]:6.2f}  tile {best[2]:7.2f}", flush=True)
    return rows


def main_tables(args):
    meta = {"python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine(),
            "cpus": os.cpu_count(), "loadavg_start": [round(x, 2) for x in os.getloadavg()],
            "note": ("constructor-to-tables wall times in ms on the development VM (2 vCPUs shared "
                     "with other jobs): best and median of the runs; random layouts drawn anew "
                     "on every run (seed 0)") + (f"; {args.note}" if args.note else "")}
    rows = bench_tables(16384, args.repeat,
                        baseline=_baseline(args.baseline, "rows", lambda r: (r["layout"], r["D"])))
    meta["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    path = Path(args.out or Path(__file__).parent / "results"
                / f"{_dt.date.today().isoformat()}-constructor-cpu.json")
    path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    print(f"\nwrote {path}")


def main_corpus(args):
    meta = {"python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine(),
            "cpus": os.cpu_count(), "scan_threads": scan_threads(),
            "note": ("best-of-N wall times in ms on the development VM (2 vCPUs shared with other "
                     "jobs); *_before from --before (the corpus pack run of the same day, one run)")
            + (f"; {args.note}" if args.note else "")}
    out = {"meta": meta}
    meta["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
    out["packing"] = bench_packing()
    print("packing 16K:", out["packing"], flush=True)
    out["corpus"] = bench_corpus(args.repeat, Path(args.before) if args.before else None,
                                 args.masks.split(",") if args.masks else None,
                                 _baseline(args.baseline, "corpus", lambda r: r["mask"]))
    if not args.masks:
        out["families_16k"] = bench([16384], with_fn=False)
    meta["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    path = Path(args.out or Path(__file__).parent / "results"
                / f"{_dt.date.today().isoformat()}-analysis-compact-cpu.json")
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"\nwrote {path}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="4096,16384,32768")
    ap.add_argument("--no-fn", action="store_true", help="skip the from_mask_fn column")
    ap.add_argument("--out", default=None)
    ap.add_argument("--corpus", action="store_true", help="the composition corpus (see the module doc)")
    ap.add_argument("--tables", action="store_true",
                    help="constructor-to-tables at 16K (see the module doc)")
    ap.add_argument("--repeat", type=int, default=3, help="--corpus, --tables: best of this many runs")
    ap.add_argument("--masks", default=None, help="--corpus: only these (c00,c11,...)")
    ap.add_argument("--baseline", default=None,
                    help="--corpus, --tables: an earlier output of the same mode (the code before a "
                         "change, same machine and session), copied into each row as *_baseline")
    ap.add_argument("--note", default=None, help="--corpus, --tables: appended to the meta note")
    ap.add_argument("--before", default=str(Path(__file__).parent / "results" / "2026-12-06-corpus-compile-cpu.json"),
                    help="--corpus: an earlier corpus run to compare pieces and analyze_s with")
    args = ap.parse_args(argv)
    if args.corpus:
        return main_corpus(args)
    if args.tables:
        return main_tables(args)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = bench(sizes, not args.no_fn)
    print()
    print(table(rows))
    out = Path(args.out or Path(__file__).parent / "results" / f"analysis-{_dt.date.today().isoformat()}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine(),
            "cpus": os.cpu_count(), "scan_threads": scan_threads(),
            "note": "best-of-N wall times in ms; pieces at the first size"}
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
