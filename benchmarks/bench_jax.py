"""Host dispatch cost of the JAX primitive under ``jax.jit`` (issue 13), on the GPU.

At B=1, H=8, L=1024, D=64, bf16, causal (the torch op's benchmark shape): for a jitted function
holding only ``h(q, k, v)``, only ``jax.nn.dot_product_attention(..., is_causal=True)``, and
only ``q + 1`` (XLA's own dispatch of a one-kernel program), the host microseconds per call
(calls enqueued without waiting: jit dispatch is asynchronous) and the wall microseconds per
call over a blocked loop (max of host and device time). "Beyond XLA's own" is the SPLAT
function's host time minus the ``q + 1`` function's.

    SPLAT_ARTIFACT_DIR=/tmp/artifacts PYTHONPATH=python python benchmarks/bench_jax.py --out-json X
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench_common as C  # noqa: E402

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--out-json")
    args = ap.parse_args(argv)

    import jax
    import jax.numpy as jnp

    import splat.jax as sj
    from splat import testing as T
    from splat.runtime.resolve import load_cached

    root = Path(os.environ["SPLAT_ARTIFACT_DIR"])
    cat = json.loads((root / "catalog.json").read_text())
    entry = next(e for e in cat["entries"] if e["family_id"] == str(T.F("causal"))
                 and e["L"] == 1024 and e["D"] == 64 and e["dtype"] == "bf16"
                 and e.get("variant", "fused") == "fused")
    h = sj.prepare(artifact=load_cached(root / entry["key"]))
    ks = jax.random.split(jax.random.PRNGKey(0), 3)
    q, k, v = (jax.random.normal(kk, (1, 8, 1024, 64), jnp.float32).astype(jnp.bfloat16)
               for kk in ks)
    fns = {
        "splat (jit)": jax.jit(h),
        "jax.nn.dot_product_attention causal (jit)": jax.jit(
            lambda q, k, v: jax.nn.dot_product_attention(q.transpose(0, 2, 1, 3),
                                                         k.transpose(0, 2, 1, 3),
                                                         v.transpose(0, 2, 1, 3),
                                                         is_causal=True)),
        "q + 1 (jit)": jax.jit(lambda q, k, v: q + 1),
    }
    rows = []
    for name, f in fns.items():
        hst, wl = C.host_and_wall_us(lambda: f(q, k, v), lambda out: out.block_until_ready(),
                                     args.calls, args.repeats)
        rows.append(dict(entry_point=name, host_us=round(hst, 2), wall_us=round(wl, 2)))
        print(f"{name:45s} host {hst:7.2f} us  wall {wl:7.2f} us", flush=True)
    base = rows[-1]["host_us"]
    print(f"SPLAT host dispatch beyond XLA's own: {rows[0]['host_us'] - base:.2f} us")
    out = {"meta": {"gpu": jax.devices()[0].device_kind, "jax": jax.__version__,
                    "shape": "B=1 H=8 L=1024 D=64 bf16 causal", "calls": args.calls,
                    "repeats": args.repeats},
           "rows": rows, "splat_beyond_xla_us": round(rows[0]["host_us"] - base, 2)}
    if args.out_json:
        Path(args.out_json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
