#!/usr/bin/env python3
"""The corpus result of the compiler's own kernel-variant choice, from runs of each variant.

``bench_corpus.py --run`` times one pack.  To measure the variant choice of
``splat.tiling.variants`` without a pack per table, pack and run the corpus once per variant
(``--pack ... --block-m 64 --warp-rows 16`` with Flex and SDPA+mask, ``--block-m 128
--warp-rows 32 --mma mma_sync --skip-flex``, ``--mma wgmma --head-dims 128 --skip-flex``, in one
GPU call), then, where MLIR is, let ``splat.compile`` choose
for every mask and head dim with the committed table and take the chosen variant's time.  The
chosen artifact's schedule statistics are checked against the packed one's, so the row really
is the artifact the compiler gives::

    python benchmarks/corpus_by_variant.py --runs m64w16.json,m128w32.json \\
        --packs .device/corpus-base,.device/corpus-m128w32 --out results/<...>-corpus.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_corpus import corpus  # noqa: E402
from splat import abi  # noqa: E402


def _rows(path: str) -> tuple[dict, list]:
    data = json.loads(Path(path).read_text())
    return (data, data["rows"]) if isinstance(data, dict) else ({}, data)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", required=True, help="comma-separated --run results, one per variant "
                                                  "(the first also holds Flex and SDPA+mask)")
    ap.add_argument("--packs", required=True, help="their packs (catalog.json), same order")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    import splat

    runs = [_rows(p) for p in args.runs.split(",")]
    packs = [json.loads((Path(p) / "catalog.json").read_text()) for p in args.packs.split(",")]
    if len(runs) != len(packs):
        sys.exit("--runs and --packs must pair up")
    # every packed artifact by the variant it was compiled as (a catalog entry records it), so
    # a pack may hold one forced variant or the compiler's mixed choice
    by_variant: dict = {}
    for (meta, rows), cat in zip(runs, packs):
        timed = {(r["mask"], r["D"]): r for r in rows}
        for e in cat["entries"]:
            if "variant" not in e:
                sys.exit(f"{e['name']} D={e['D']}: the pack's catalog does not record the "
                         f"variant compiled (pack it again with bench_corpus.py --pack)")
            if (e["name"], e["D"]) in timed:
                by_variant.setdefault(e["variant"], {})[(e["name"], e["D"])] = (
                    timed[(e["name"], e["D"])], e)
    first = {(r["mask"], r["D"]): r for r in runs[0][1]}
    meta = dict(runs[0][0])
    meta.pop("rows", None)
    out, logs = [], []
    masks = {m.name: m for m in corpus(packs[0]["seed"], packs[0]["scale"])}
    for (mask, D), base in sorted(first.items()):
        art = splat.compile(splat.analyze(masks[mask].pattern()), dtype="bf16", head_dim=D)
        k = art.kernels[0]
        chosen = abi.kernel_variant_name(k)
        if (mask, D) not in by_variant.get(chosen, {}):
            sys.exit(f"{mask} D={D}: no pack holds the compiler's choice, variant {chosen} "
                     f"(packed: {', '.join(sorted(by_variant)) or 'none'})")
        timed, e = by_variant[chosen][(mask, D)]
        if (e["stats"], e.get("split_stats")) != (art.manifest["stats"],
                                                   art.manifest.get("split_stats")):
            sys.exit(f"{mask} D={D}: the compiler's artifact is not the packed {chosen} one")
        row = dict(base, variant=chosen, splat_ms=timed["splat_ms"], splat_ok=timed["splat_ok"],
                   block_m=k.get("block_m", abi.BLOCK_M),
                   warp_rows=k.get("warp_rows", abi.WARP_ROWS))
        for name, packed in by_variant.items():
            row[f"splat_{name}_ms"] = packed[(mask, D)][0]["splat_ms"] if (mask, D) in packed \
                else None
        peers = [x for x in (row.get("flex_ms"), row.get("sdpa_masked_ms")) if x]
        row["vs_best_peer"] = min(peers) / row["splat_ms"] if peers else None
        if row.get("flex_ms"):
            row["splat_vs_flex"] = row["flex_ms"] / row["splat_ms"]
            logs.append(math.log(row["splat_vs_flex"]))
        out.append(row)
        print(f"{mask[:34]:34s} D={D:3d} {chosen:8s} splat={row['splat_ms']:.3f} "
              f"vs best peer {row['vs_best_peer']:.2f} ok={row['splat_ok']}")
    meta["note"] = ("SPLAT = the kernel variant splat.compile chooses with the committed "
                    "cost_model.json variants; splat_<variant>_ms: each variant's time from "
                    f"the runs {args.runs} (the first also timed Flex and SDPA+mask)")
    Path(args.out).write_text(json.dumps(dict(meta, rows=out), indent=1) + "\n")
    worst = min(r["vs_best_peer"] for r in out if r["vs_best_peer"])
    print(f"geomean vs Flex {math.exp(sum(logs) / len(logs)):.2f}x, worst vs best peer "
          f"{worst:.2f}, all exact: {all(r['splat_ok'] for r in out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
