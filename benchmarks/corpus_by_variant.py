#!/usr/bin/env python3
"""The corpus result of the compiler's own kernel-variant choice, from runs of each variant.

``bench_corpus.py --run`` times one pack.  To measure the variant choice of
``splat.tiling.variants`` without a pack per table, pack and run the corpus once per variant
(``--pack ... --block-m 64 --warp-rows 16`` with Flex and SDPA+mask, ``--block-m 128
--warp-rows 32 --skip-flex``, in one GPU call), then, where MLIR is, let ``splat.compile`` choose
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
    by_variant = {}
    for (meta, rows), cat in zip(runs, packs):
        name = abi.variant_name(cat.get("block_m") or abi.BLOCK_M,
                                cat.get("warp_rows") or abi.WARP_ROWS)
        entries = {(e["name"], e["D"]): e for e in cat["entries"]}
        by_variant[name] = ({(r["mask"], r["D"]): r for r in rows}, entries)
    first = next(iter(by_variant))
    meta = dict(runs[0][0])
    meta.pop("rows", None)
    out, logs = [], []
    masks = {m.name: m for m in corpus(packs[0]["seed"], packs[0]["scale"])}
    for (mask, D), base in sorted(by_variant[first][0].items()):
        art = splat.compile(splat.analyze(masks[mask].pattern()), dtype="bf16", head_dim=D)
        k = art.kernels[0]
        chosen = abi.kernel_variant_name(k)
        timed, entries = by_variant[chosen]
        e = entries[(mask, D)]
        if (e["stats"], e.get("split_stats")) != (art.manifest["stats"],
                                                   art.manifest.get("split_stats")):
            sys.exit(f"{mask} D={D}: the compiler's artifact is not the packed {chosen} one")
        row = dict(base, variant=chosen, splat_ms=timed[(mask, D)]["splat_ms"],
                   splat_ok=timed[(mask, D)]["splat_ok"],
                   block_m=k.get("block_m", abi.BLOCK_M),
                   warp_rows=k.get("warp_rows", abi.WARP_ROWS))
        for name, (t, _) in by_variant.items():
            row[f"splat_{name}_ms"] = t[(mask, D)]["splat_ms"] if (mask, D) in t else None
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
