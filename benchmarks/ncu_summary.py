#!/usr/bin/env python3
"""Summarise an ncu source page (``ncu -i R --page source --print-source sass --csv``, as
``compare_builds.py run --profile`` writes it): warp-stall reasons over the whole kernel, the
instructions with the most stall samples, and the global-memory traffic by opcode (L1 tag
requests and L2 sectors against the ideal), which is where a loader's access pattern shows.

    python benchmarks/ncu_summary.py profile/ws64-dense-source.txt --top 20
"""

from __future__ import annotations

import argparse
import collections
import csv
import sys

SAMPLES = "Warp Stall Sampling (All Samples)"


def _int(x: str) -> int:
    try:
        return int(x or 0)
    except ValueError:
        return 0


def read(path: str) -> list[dict]:
    """The page's instruction rows as dicts (its first line names the kernel)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header = next((i for i, r in enumerate(rows) if r[:2] == ["Address", "Source"]), None)
    if header is None:
        raise SystemExit(f"{path}: no 'Address,Source' header: not an ncu source page")
    names = rows[header]
    return [dict(zip(names, r)) for r in rows[header + 1:] if len(r) == len(names)]


def opcode(source: str) -> str:
    words = source.split()
    if words and words[0].startswith("@"):
        words = words[1:]
    return words[0].split(".")[0] if words else ""


def summary(rows: list[dict], top: int) -> str:
    total = sum(_int(r.get(SAMPLES)) for r in rows) or 1
    reasons = [k for k in rows[0] if k.startswith("stall_") and "Not Issued" not in k]
    by_reason = {k[6:]: sum(_int(r[k]) for r in rows) for k in reasons}
    lines = [f"stall samples: {total}",
             "by reason: " + ", ".join(f"{k} {v * 100 / total:.1f}%" for k, v in
                                       sorted(by_reason.items(), key=lambda kv: -kv[1]) if v)]
    lines.append(f"top {top} instructions (share of samples, executions, first two reasons):")
    for r in sorted(rows, key=lambda r: -_int(r.get(SAMPLES)))[:top]:
        why = sorted(((_int(r[k]), k[6:]) for k in reasons), reverse=True)[:2]
        lines.append(f"  {_int(r[SAMPLES]) * 100 / total:5.1f}% {_int(r['Instructions Executed']):>10} "
                     f"{r['Source'].strip()[:64]:64} " + " ".join(f"{n}:{c}" for c, n in why if c))
    traffic = collections.defaultdict(lambda: [0, 0, 0, 0])
    for r in rows:
        t = traffic[opcode(r["Source"])]
        t[0] += _int(r.get("Instructions Executed"))
        t[1] += _int(r.get("L1 Tag Requests Global"))
        t[2] += _int(r.get("L2 Theoretical Sectors Global"))
        t[3] += _int(r.get("L2 Theoretical Sectors Global Ideal"))
    lines.append("global traffic by opcode (warp instructions, L1 tag requests, L2 sectors, ideal):")
    for op, (n, req, sec, ideal) in sorted(traffic.items(), key=lambda kv: -kv[1][2]):
        if sec:
            lines.append(f"  {op:8} {n:>12} {req:>12} {sec:>12} {ideal:>12}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("page")
    ap.add_argument("--top", type=int, default=20)
    args = ap.parse_args(argv)
    print(summary(read(args.page), args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
