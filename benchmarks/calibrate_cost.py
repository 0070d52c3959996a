#!/usr/bin/env python3
"""Fit the tiler's cost model on the GPU (issue 10, item 1).

The tiler (`splat.tiling.schedule`) prices a row tile in units of one computed unmasked
``BLOCK_M x BLOCK_N`` key tile::

    cost = W_TILE + sum over segments (W_SEG + key tiles + W_MASKED * masked key tiles)
                  + mask tiles * (1 + W_MASKED + W_BITS)

and chooses by that cost, per tile, the affine or the blocks plan and, per layout, one launch or
two (split-KV, whose second launch adds its fixed cost W_LAUNCH).  This script measures what
those terms cost on the card and writes the weights the tiler reads
(``python/splat/tiling/cost_model.json``).

The calibration masks are *not* the benchmark corpus: they are drawn by the corpus generator of
`bench_corpus.py` with other seeds and at half its lengths (random unions, intersections, Lq != Lk,
documents, random masks), plus named families with random parameters.  Each is compiled with
each plan forced (``splat.compile(plan="affine" | "blocks")``), so the same mask is measured
under schedules of different make-up; the schedule's counts are the fit's features.

Modes::

    # where MLIR is: compile every (mask, D, plan), save artifacts + catalog with the features
    python benchmarks/calibrate_cost.py --pack .device/calib --tar
    # on the GPU: check each against fp64, then time it (do_bench median)
    SPLAT_ARTIFACT_DIR=/tmp/calib PYTHONPATH=python python benchmarks/calibrate_cost.py --run \
        --out-json $OUT/calibration.json
    # anywhere: least-squares fit, printed; --write stores it for the tiler
    python benchmarks/calibrate_cost.py --fit benchmarks/results/<date>-<gpu>-calibration.json --write

    # kernel variants (splat.tiling.variants): one pack per variant, the tiler's own plans,
    # run in one GPU call; the fit adds each variant's time per cost unit to the model
    python benchmarks/calibrate_cost.py --pack .device/calv-m64 --plans auto --tar
    python benchmarks/calibrate_cost.py --pack .device/calv-m128w32 --plans auto \
        --block-m 128 --warp-rows 32 --tar
    python benchmarks/calibrate_cost.py --pack .device/calv-wgmma --plans auto --block-m 128 \
        --mma wgmma --kv-loads producer --head-dims 128 --tar     # a Hopper build (sm_90a)
    python benchmarks/calibrate_cost.py --fit-variants <m64 results>,<m128w32 results>,... --write
    # a new variant another day: time it beside the default only, and list the new run first
    # (its default sets the scale; the earlier runs' variants join through their own default)
    python benchmarks/calibrate_cost.py --fit-variants <new m64>,<new wgmma>,<old m64>,... --write

The model is linear in the counts of one launch, summed over the grid: with enough CTAs per SM
(every calibration shape has >= 4 waves), time ~ t0 + (B*H / SMs) * sum(beta_f * count_f).
Weights are the betas divided by the unmasked key tile's beta, fitted per head dim on relative
error (times span two orders of magnitude); the tiler uses the mean of the two head dims.  A
launch's fixed time does not grow with B*H as the other counts do, so W_LAUNCH holds at the
calibration's B*H / SMs and weighs less against the tiles of larger grids.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import math
import sys
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_corpus import CorpusMask, corpus  # noqa: E402
from pack_gpu_artifacts import pack_dir, write_json_atomic, write_tar  # noqa: E402
from splat import abi  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
MODEL_PATH = ROOT / "python" / "splat" / "tiling" / "cost_model.json"
HEAD_DIMS = (64, 128)
PLANS = ("affine", "blocks")
SEEDS = (101, 102)
SCALE = 0.5
TOL = 1e-2
# the features, in the order of the fit: one CTA, one segment, an unmasked key tile, a
# segment key tile that evaluates the element mask, a mask tile (bits loaded), a second launch
FEATURES = ("ctas", "segments", "full_tiles", "masked_tiles", "mask_tiles", "launches")


def calibration_masks(seed: int = 7) -> list[CorpusMask]:
    """Corpus-generator masks of other seeds at half length, and named families with random
    parameters (window, causal window, dilated, strided, blocked, global tokens)."""
    out = []
    for s in SEEDS:
        out += [CorpusMask(f"s{s}-{m.name}", m.kind, m.Lq, m.Lk, m.term) for m in corpus(s, SCALE)]
    rng = np.random.default_rng(seed)
    for i in range(12):
        L = int(rng.choice([2048, 4096, 8192]))
        kind = ("window", "causal_window", "dilated", "strided", "blocked", "window")[i % 6]
        p = {"window": lambda: dict(w=int(rng.integers(16, 600))),
             "causal_window": lambda: dict(w=int(rng.integers(32, 1200))),
             "dilated": lambda: dict(w=int(rng.integers(8, 128)), stride=int(rng.integers(2, 9))),
             "strided": lambda: dict(local=int(rng.integers(32, 256)),
                                     stride=int(rng.integers(32, 256))),
             "blocked": lambda: dict(block=int(rng.integers(64, 1500)))}[kind]()
        out.append(CorpusMask(f"n{i:02d}-{kind}", "named", L, L, (kind, p)))
    return out


def features(manifest: dict) -> dict:
    """The fit's counts for one artifact (both launches of a split-KV artifact summed)."""
    f = dict.fromkeys(FEATURES, 0)
    for st in (manifest.get("stats"), manifest.get("split_stats")):
        if not st:
            continue
        f["ctas"] += st["tiles"]
        f["segments"] += st["segments"]
        f["full_tiles"] += st["key_tiles"] - st["masked_key_tiles"]
        f["masked_tiles"] += st["masked_key_tiles"] - st["mask_tiles"]
        f["mask_tiles"] += st["mask_tiles"]
        f["launches"] += 1
    return f


# --------------------------------------------------------------------------------- pack (CPU)


def pack(args) -> int:
    import splat
    from splat.runtime.artifact import save
    from splat.runtime.resolve import request_key
    out, version = pack_dir(args.pack)
    entries, failures = [], 0
    masks = calibration_masks()
    # a kernel variant other than the default (abi.BLOCK_M, abi.WARP_ROWS) is calibrated on the
    # plans the tiler picks for it ("auto"): its fit is a scale of the tiler's units (--fit-variant)
    variant = dict(block_m=args.block_m, warp_rows=args.warp_rows)
    if args.block_n:
        variant["block_n"] = args.block_n
    if args.mma != "mma_sync":  # a Hopper build (sm_90a): its instruction and K/V loads
        variant.update(mma=args.mma, kv_loads=args.kv_loads)
    head_dims = [int(d) for d in args.head_dims.split(",")]
    plans = PLANS if args.plans is None else tuple(args.plans.split(","))
    t_start = time.perf_counter()
    for i, m in enumerate(masks):
        try:
            acsr = splat.analyze(m.pattern())
        except Exception:  # keep packing the rest
            traceback.print_exc()
            failures += 1
            continue
        for D in head_dims:
            seen = set()
            for plan in plans:
                try:
                    t0 = time.perf_counter()
                    art = splat.compile(acsr, dtype="bf16", head_dim=D, plan=plan, **variant)
                    compile_s = time.perf_counter() - t0
                except Exception:
                    traceback.print_exc()
                    failures += 1
                    continue
                digest = hashlib.sha256(b"".join(np.ascontiguousarray(t).tobytes()
                                                 for t in art.tables.values())).hexdigest()
                if digest in seen:  # the blocks plan changed nothing
                    continue
                seen.add(digest)
                key = request_key(acsr, Lq=m.Lq, Lk=m.Lk, dtype="bf16", head_dim=D) + f"-{plan}"
                save(art, out / key, overwrite=True)
                e = dict(name=m.name, Lq=m.Lq, Lk=m.Lk, D=D, plan=plan, key=key, **variant,
                         density=float(acsr.density), pieces=len(acsr.pieces),
                         compile_s=compile_s, kernels=[k["name"] for k in art.manifest["kernels"]],
                         features=features(art.manifest))
                entries.append(e)
                print(f"[{i + 1}/{len(masks)}] {m.name:44s} {m.Lq:5d}x{m.Lk:<5d} D={D:3d} "
                      f"{plan:6s} {e['features']}", flush=True)
    write_json_atomic(out / "catalog.json", {
        "format": "splat-calibration-catalog/1", "compiler_version": version,
        "seeds": list(SEEDS), "scale": SCALE, "entries": entries})
    print(f"{len(entries)} artifacts in {out} ({time.perf_counter() - t_start:.0f}s), "
          f"{failures} failures")
    if args.tar:
        write_tar(out)
    return 1 if failures else 0


# --------------------------------------------------------------------------------- run (GPU)


def run(args) -> int:
    import torch

    import _bench_common as C
    import splat.torch as st
    from splat import testing as T
    from splat.runtime.resolve import load_cached

    art_dir = Path(args.artifacts)
    cat = json.loads((art_dir / "catalog.json").read_text())
    by_name = {m.name: m for m in calibration_masks()}
    dev, B, H = torch.device("cuda"), args.B, args.H
    props = torch.cuda.get_device_properties(dev)
    meta = dict(date=_dt.date.today().isoformat(), gpu=props.name, sms=props.multi_processor_count,
                torch=torch.__version__, compiler_version=cat["compiler_version"], B=B, H=H)
    out_json = Path(args.out_json or RESULTS / f"{meta['date']}-{C.slug(props.name)}-calibration.json")
    rows, bad = [], 0
    for n, e in enumerate(cat["entries"]):
        m = by_name[e["name"]]
        D = e["D"]
        q = torch.randn(B, H, m.Lq, D, device=dev, dtype=torch.bfloat16)
        k, v = (torch.randn(B, H, m.Lk, D, device=dev, dtype=torch.bfloat16) for _ in range(2))
        scale = 1.0 / math.sqrt(D)
        row = dict(e, ms=None, ok=None)
        try:
            art = load_cached(art_dir / e["key"])
            pred = m.predicate(dev)
            ref, _, _ = T.reference_attention_torch(q[:1], k[:1], v[:1], pred, scale, heads=slice(0, 1))
            o = st.attention(q, k, v, None, scale=scale, artifact=art)
            row["rel_err"] = T.rel_error(o[:1, :1], ref)
            row["ok"] = bool(row["rel_err"] <= TOL)
            row["ms"] = C.bench(lambda: st.attention(q, k, v, None, scale=scale, artifact=art), args)
        except Exception as ex:
            row["ok"] = False
            row["error"] = repr(ex)
            traceback.print_exc()
        bad += row["ok"] is False
        rows.append(row)
        print(f"[{n + 1}/{len(cat['entries'])}] {e['name']:44s} D={D:3d} {e['plan']:6s} "
              f"ms={row['ms'] if row['ms'] is None else round(row['ms'], 4)} ok={row['ok']}",
              flush=True)
        del q, k, v
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(dict(meta, rows=rows), indent=1) + "\n")
    print(f"wrote {out_json}; {bad} not ok")
    return 1 if bad else 0


# --------------------------------------------------------------------------------- fit


def _nnls(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Non-negative least squares by projected active-set refits (few columns): drop the most
    negative coefficient and refit until none is negative."""
    keep = list(range(A.shape[1]))
    while True:
        x = np.zeros(A.shape[1])
        x[keep] = np.linalg.lstsq(A[:, keep], b, rcond=None)[0]
        neg = [j for j in keep if x[j] < 0]
        if not neg:
            return x
        keep.remove(min(neg, key=lambda j: x[j]))


# one more column, derived: every key tile of a launch of the mask-capable kernel variant (it
# also evaluates element masks on unmasked tiles' code path: the price of a first mask tile)
FIT_COLUMNS = FEATURES + ("mask_kernel_tiles",)


def _columns(r: dict) -> list:
    f = r["features"]
    masked_kernel = any(k.endswith("_masked") for k in r["kernels"])
    tiles = f["full_tiles"] + f["masked_tiles"] + f["mask_tiles"]
    return [f[c] for c in FEATURES] + [tiles if masked_kernel else 0]


def fit(rows: list, sms: int, B: int, H: int) -> dict:
    """Per head dim: betas (ms per count per B*H/SMs) and the weights relative to full_tiles."""
    out = {}
    for D in sorted({r["D"] for r in rows}):
        rs = [r for r in rows if r["D"] == D and r.get("ok") and r.get("ms")]
        X = np.array([[1.0] + [c * B * H / sms for c in _columns(r)] for r in rs])
        y = np.array([r["ms"] for r in rs])
        w = 1.0 / y  # relative error
        beta = _nnls(X * w[:, None], y * w)
        pred = X @ beta
        rel = pred / y - 1
        unit = beta[1 + FIT_COLUMNS.index("full_tiles")]
        weights = {f: float(beta[1 + i] / unit) for i, f in enumerate(FIT_COLUMNS)}
        out[D] = dict(n=len(rs), t0_ms=float(beta[0]), ms_per_full_tile=float(unit),
                      weights=weights, median_abs_rel_err=float(np.median(np.abs(rel))),
                      max_abs_rel_err=float(np.max(np.abs(rel))))
    return out


def model_weights(per_d: dict) -> dict:
    """The tiler's constants from the per-head-dim fits (their mean): W_TILE per CTA, W_SEG per
    segment, W_MASKED on top of a key tile for the element mask, W_BITS on top of that for a
    mask tile's bits, W_MASK_KERNEL per key tile of a launch of the mask-capable kernel,
    W_LAUNCH per launch (what split-KV's second launch costs on top of its tiles)."""
    mean = {f: float(np.mean([d["weights"][f] for d in per_d.values()])) for f in FIT_COLUMNS}
    return dict(W_TILE=mean["ctas"], W_SEG=mean["segments"],
                W_MASKED=max(0.0, mean["masked_tiles"] - 1.0),
                W_BITS=max(0.0, mean["mask_tiles"] - max(1.0, mean["masked_tiles"])),
                W_MASK_KERNEL=mean["mask_kernel_tiles"], W_LAUNCH=mean["launches"])


def do_fit(args) -> int:
    path = Path(args.fit).resolve()
    res = json.loads(path.read_text())
    rows = [r for r in res["rows"] if not args.plans or r["plan"] in args.plans.split(",")]
    per_d = fit(rows, res["sms"], res["B"], res["H"])
    for D, d in per_d.items():
        print(f"D={D}: n={d['n']} t0={d['t0_ms']:.4f} ms, full tile {d['ms_per_full_tile']:.2e} ms, "
              f"weights {json.dumps({k: round(v, 3) for k, v in d['weights'].items()})}, "
              f"|rel err| median {d['median_abs_rel_err']:.3f} max {d['max_abs_rel_err']:.3f}")
    weights = model_weights(per_d)
    print("tiler weights:", json.dumps({k: round(v, 4) for k, v in weights.items()}))
    if args.write:
        model = {"format": "splat-cost-model/1", "source": str(path.relative_to(ROOT)),
                 "gpu": res["gpu"], "date": res["date"], "plans_fitted": args.plans or "all",
                 "weights": weights,
                 "per_head_dim": {str(D): d for D, d in per_d.items()}}
        write_json_atomic(MODEL_PATH, model)
        print(f"wrote {MODEL_PATH}")
    return 0


# ------------------------------------------------------------------------ kernel variants


def _units(r: dict, w) -> float:
    """The tiler's cost (splat.tiling.cost_model.launch_cost) of a row's launches, from its
    features (the launches' statistics summed): exact except for a split-KV artifact whose main
    launch also has mask tiles (the mask kernel's extra is then priced on the split launch's key
    tiles too)."""
    from splat.tiling.cost_model import launch_cost
    f = r["features"]
    summed = dict(tiles=f["ctas"], segments=f["segments"],
                  key_tiles=f["full_tiles"] + f["masked_tiles"] + f["mask_tiles"],
                  masked_key_tiles=f["masked_tiles"] + f["mask_tiles"], mask_tiles=f["mask_tiles"])
    return launch_cost(summed, w) + w.W_LAUNCH * (f["launches"] - 1)


def _fastest_block_n(by_bn: dict) -> tuple[int, list]:
    """The key tile width whose runs have the lowest geometric-mean time over the calibration
    masks every width ran (the variant's block_n for that head dim), and its rows."""
    common = set.intersection(*({r["name"] for r in rs} for rs in by_bn.values()))

    def geomean(rs):
        return float(np.mean([math.log(r["ms"]) for r in rs if r["name"] in common] or [0.0]))
    bn = min(sorted(by_bn), key=lambda n: geomean(by_bn[n]))
    if len(by_bn) > 1:
        print("block_n geomean ms: " + ", ".join(f"{n}: {math.exp(geomean(by_bn[n])):.4f}"
                                                  for n in sorted(by_bn)) + f" -> {bn}")
    return bn, by_bn[bn]


def fit_variants(results: list[dict]) -> list[dict]:
    """Per kernel variant (block_m, warp_rows, and for wgmma builds mma and kv_loads) and head
    dim, the time of one cost unit: the least-relative-squares scale ``s`` of ``ms ~ s * units``
    over the variant's rows, with the tiler's weights as they are (splat.tiling.variants
    compares ``s * units`` across variants of one head dim).
    Where a variant ran with several key tile widths at one head dim, the fastest over the masks
    they share is kept (its ``block_n``).

    Results of one card and one day are one run, fitted together. Results of several runs
    (days) are put on one scale per head dim through the default variant, which each run must
    have measured at every head dim it measured: a run's times at D are multiplied by the first
    run's default time at D over its own (``fit[D]["scaled_by"]``), and a variant measured by
    several runs takes the first run's time. So a new variant is calibrated against the default
    alone, without timing every earlier variant again (the default's time per unit drifts
    between calls by a few %, the ratios between variants much less)."""
    runs: dict = {}
    for res in results:
        runs.setdefault((res.get("gpu"), res.get("date")), []).append(res)
    if len({gpu for gpu, _ in runs}) > 1:
        raise ValueError("the results must come from one kind of card")
    default = (abi.BLOCK_M, abi.WARP_ROWS, "mma_sync", "compute")
    merged: dict = {}
    reference: dict = {}  # head dim -> the first run's default time per unit
    for (_, date), run in runs.items():
        fitted = _fit_run(run)
        base = fitted.get(default, {})
        for kind, by_d in fitted.items():
            for D, entry in by_d.items():
                if D not in base:
                    name = abi.variant_name(*kind[:3], kind[3] == "producer")
                    raise ValueError(f"the run of {date} measured {name} at D = {D} without "
                                     f"the default variant")
                ref = reference.setdefault(D, base[D]["ms"])
                if D in merged.get(kind, {}):
                    continue
                scale = ref / base[D]["ms"]
                entry = dict(entry, ms=entry["ms"] * scale)
                if scale != 1.0:
                    entry["fit"] = dict(entry["fit"], scaled_by=scale, run=date)
                merged.setdefault(kind, {})[D] = entry
    out = []
    # the default first, then the other mma.sync variants, then the wgmma ones
    for (block_m, warp_rows, mma, kv_loads), by_d in sorted(
            merged.items(), key=lambda kv: (kv[0] != default, kv[0][2] != "mma_sync")):
        entry = dict(block_m=block_m, warp_rows=warp_rows, ms_per_unit={}, fit={})
        if mma != "mma_sync":
            entry.update(mma=mma, kv_loads=kv_loads)
        for D, e in sorted(by_d.items()):
            if e["block_n"] != abi.DEFAULT_BLOCK_N[D]:
                entry.setdefault("block_n", {})[str(D)] = e["block_n"]
            entry["ms_per_unit"][str(D)] = e["ms"]
            entry["fit"][str(D)] = e["fit"]
        out.append(entry)
    return out


def _fit_run(results: list[dict]) -> dict:
    """``{variant: {D: {ms, block_n, fit}}}`` of one run's rows (`fit_variants`)."""
    from splat.tiling.cost_model import WEIGHTS
    groups: dict = {}
    for res in results:
        for r in res["rows"]:
            if r.get("ok") and r.get("ms"):
                v = (r.get("block_m", abi.BLOCK_M), r.get("warp_rows", abi.WARP_ROWS),
                     r.get("mma", "mma_sync"), r.get("kv_loads", "compute"))
                bn = r.get("block_n") or abi.DEFAULT_BLOCK_N[r["D"]]
                groups.setdefault(v, {}).setdefault(r["D"], {}).setdefault(bn, []).append(r)
    fitted: dict = {}
    for kind, by_d in groups.items():
        for D, by_bn in by_d.items():
            bn, rs = _fastest_block_n(by_bn)
            ratio = np.array([_units(r, WEIGHTS) / r["ms"] for r in rs])
            scale = float(ratio.sum() / (ratio ** 2).sum())
            rel = scale * ratio - 1
            fitted.setdefault(kind, {})[D] = dict(
                ms=scale, block_n=bn,
                fit=dict(n=len(rs), median_abs_rel_err=float(np.median(np.abs(rel))),
                         max_abs_rel_err=float(np.max(np.abs(rel)))))
    return fitted


def do_fit_variants(args) -> int:
    paths = [Path(p).resolve() for p in args.fit_variants.split(",")]
    results = [json.loads(p.read_text()) for p in paths]
    try:
        variants = fit_variants(results)
    except ValueError as e:
        sys.exit(f"--fit-variants: {e}")
    if not variants or (variants[0]["block_m"], variants[0]["warp_rows"],
                        variants[0].get("mma", "mma_sync")) != (abi.BLOCK_M, abi.WARP_ROWS,
                                                                "mma_sync"):
        sys.exit("--fit-variants: the results must include the default variant's")
    for v in variants:
        for D, t in v["ms_per_unit"].items():
            f = v["fit"][D]
            name = abi.variant_name(v["block_m"], v["warp_rows"], v.get("mma", "mma_sync"),
                                    v.get("kv_loads") == "producer")
            print(f"{name} D={D}: {t:.3e} ms/unit "
                  f"(n={f['n']}, |rel err| median {f['median_abs_rel_err']:.3f} "
                  f"max {f['max_abs_rel_err']:.3f})")
    if args.write:
        model = json.loads(MODEL_PATH.read_text())
        model["variants"] = variants
        model["variants_source"] = [str(p.relative_to(ROOT)) for p in paths]
        write_json_atomic(MODEL_PATH, model)
        print(f"wrote {MODEL_PATH}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--pack", metavar="OUT_DIR")
    mode.add_argument("--run", action="store_true")
    mode.add_argument("--fit", metavar="JSON")
    mode.add_argument("--fit-variants", metavar="JSON[,JSON...]",
                      help="fit each kernel variant's time per cost unit (splat.tiling.variants) "
                           "from --run results of packs with --plans auto, one per variant; "
                           "results of other days join through the default variant each timed "
                           "(the first listed day sets the scale)")
    mode.add_argument("--list", action="store_true")
    ap.add_argument("--tar", action="store_true")
    ap.add_argument("--write", action="store_true", help="with --fit: write the tiler's model")
    ap.add_argument("--plans", help="with --pack: plans to compile (default: affine,blocks); "
                                    "with --fit: only rows of these plans (comma-separated)")
    ap.add_argument("--block-m", type=int, default=abi.BLOCK_M, choices=abi.BLOCK_M_CHOICES,
                    help="with --pack: the kernel variant's rows per row tile")
    ap.add_argument("--warp-rows", type=int, default=abi.WARP_ROWS, choices=abi.WARP_ROWS_CHOICES,
                    help="with --pack: the kernel variant's rows per warp")
    ap.add_argument("--block-n", type=int, choices=abi.BLOCK_N_CHOICES,
                    help="with --pack: the kernel variant's keys per key tile (default: per D)")
    ap.add_argument("--mma", default="mma_sync", choices=abi.MMA_KINDS,
                    help="with --pack: the kernel variant's instruction (wgmma: sm_90a, with "
                         "--warp-rows 16)")
    ap.add_argument("--kv-loads", default="compute", choices=abi.KV_LOADS,
                    help="with --pack --mma wgmma: who gathers K/V (a producer warpgroup or "
                         "the compute warps)")
    ap.add_argument("--head-dims", default=",".join(map(str, HEAD_DIMS)),
                    help="with --pack: comma-separated head dims")
    ap.add_argument("--artifacts", default=None)
    ap.add_argument("--out-json")
    ap.add_argument("--B", type=int, default=2)
    ap.add_argument("--H", type=int, default=16)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--rep", type=int, default=40)
    args = ap.parse_args(argv)
    if args.list:
        for m in calibration_masks():
            print(f"{m.name:44s} {m.Lq:6d}x{m.Lk:<6d} {m.description}")
        return 0
    if args.pack:
        return pack(args)
    if args.run:
        import os

        args.artifacts = args.artifacts or os.environ.get("SPLAT_ARTIFACT_DIR")
        if not args.artifacts:
            sys.exit("set SPLAT_ARTIFACT_DIR (or --artifacts) to the output of --pack")
        return run(args)
    if args.fit_variants:
        return do_fit_variants(args)
    return do_fit(args)


if __name__ == "__main__":
    sys.exit(main())
