"""The JAX primitive on the GPU (issue 13): host dispatch under ``jax.jit``, and a jitted
transformer block with SPLAT against the same block with ``jax.nn.dot_product_attention``.

Dispatch, at B=1, H=8, L=1024, D=64, bf16, causal (the torch op's benchmark shape): for a
jitted function holding only ``h(q, k, v)`` (once per launch route of `splat.jax_ffi`), only
``jax.nn.dot_product_attention(..., is_causal=True)``, and only ``q + 1`` (XLA's own dispatch
of a one-kernel program), the host microseconds per call (calls enqueued without waiting: jit
dispatch is asynchronous) and the wall microseconds per call over a blocked loop, the functions'
loops interleaved. "Beyond
XLA's own" is a SPLAT function's host time minus the ``q + 1`` function's.

Block (``--block``): a 2-layer pre-norm block (dim 512, 8 heads, D = 64; LayerNorm, one QKV
projection, attention, output projection, 4x GELU MLP, residuals), bf16, jitted, with a
sliding window (w = 128) at (B, L) = (1, 1024) and (4, 4096): SPLAT against
``jax.nn.dot_product_attention`` given the same boolean mask. The two outputs are compared
first; the time is the median wall ms per forward over blocked loops.

    SPLAT_ARTIFACT_DIR=/tmp/artifacts SPLAT_JAX_FFI_LIB=... PYTHONPATH=python \\
        python benchmarks/bench_jax.py --block --out-json X
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench_common as C  # noqa: E402

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

BLOCK_SHAPES = ((1, 1024), (4, 4096))  # (B, L)
DIM, HEADS = 512, 8


def _handle(fam, L: int, D: int = 64):
    """A JaxAttention for the packed bf16 fused artifact of `fam` at L."""
    import splat.jax as sj
    from splat.runtime.resolve import load_cached

    root = Path(os.environ["SPLAT_ARTIFACT_DIR"])
    cat = json.loads((root / "catalog.json").read_text())
    entry = next(e for e in cat["entries"] if e["family_id"] == str(fam) and e["L"] == L
                 and e["D"] == D and e["dtype"] == "bf16"
                 and e.get("variant", "fused") == "fused")
    return sj.prepare(artifact=load_cached(root / entry["key"]))


def _jit_with_route(fn, route: str, *args):
    """``jax.jit(fn)``, lowered and compiled with launch route `route` (read at lowering)."""
    import jax

    before = os.environ.get("SPLAT_JAX_LAUNCH")
    os.environ["SPLAT_JAX_LAUNCH"] = route
    try:
        return jax.jit(fn).lower(*args).compile()
    finally:
        if before is None:
            os.environ.pop("SPLAT_JAX_LAUNCH")
        else:
            os.environ["SPLAT_JAX_LAUNCH"] = before


def dispatch_rows(args) -> tuple[list, dict]:
    import jax
    import jax.numpy as jnp

    from splat import jax_ffi
    from splat import testing as T

    h = _handle(T.F("causal"), 1024)
    ks = jax.random.split(jax.random.PRNGKey(0), 3)
    q, k, v = (jax.random.normal(kk, (1, 8, 1024, 64), jnp.float32).astype(jnp.bfloat16)
               for kk in ks)
    routes = [r for r in jax_ffi.ROUTES if r != "ffi" or jax_ffi.load_library() is not None]
    fns = {f"splat, {r} route (jit)": _jit_with_route(h, r, q, k, v) for r in routes}
    bthd = lambda x: x.transpose(0, 2, 1, 3)  # noqa: E731
    fns["jax.nn.dot_product_attention causal (jit)"] = jax.jit(
        lambda q, k, v: jax.nn.dot_product_attention(bthd(q), bthd(k), bthd(v), is_causal=True))
    fns["q + 1 (jit)"] = jax.jit(lambda q, k, v: q + 1)
    ref = None
    for name, f in fns.items():
        out = f(q, k, v)
        if name.startswith("splat"):  # the routes agree bit for bit
            ref = out if ref is None else ref
            assert bool(jnp.array_equal(out, ref)), name
    calls = {name: functools.partial(f, q, k, v) for name, f in fns.items()}
    times = C.interleaved_host_and_wall_us(calls, lambda out: out.block_until_ready(),
                                           args.calls, args.repeats)
    rows = []
    for name, (hst, wl) in times.items():
        rows.append(dict(entry_point=name, host_us=round(hst, 2), wall_us=round(wl, 2)))
        print(f"{name:45s} host {hst:7.2f} us  wall {wl:7.2f} us", flush=True)
    base = rows[-1]["host_us"]
    beyond = {r["entry_point"]: round(r["host_us"] - base, 2) for r in rows
              if r["entry_point"].startswith("splat")}
    for name, us in beyond.items():
        print(f"{name}: host dispatch beyond XLA's own {us:.2f} us")
    return rows, beyond


def _block(attention, key):
    """(params, forward) of the 2-layer block; forward(params, x) with x (B, L, DIM)."""
    import jax
    import jax.numpy as jnp

    D = DIM // HEADS

    def dense(k, n_in, n_out):
        return jax.random.normal(k, (n_in, n_out), jnp.float32) / n_in ** 0.5

    layers = []
    for k in jax.random.split(key, 2):
        k1, k2, k3, k4 = jax.random.split(k, 4)
        layers.append(dict(qkv=dense(k1, DIM, 3 * DIM), out=dense(k2, DIM, DIM),
                           up=dense(k3, DIM, 4 * DIM), down=dense(k4, 4 * DIM, DIM)))

    def norm(x):
        x32 = x.astype(jnp.float32)
        mu = x32.mean(-1, keepdims=True)
        return ((x32 - mu) * jax.lax.rsqrt(((x32 - mu) ** 2).mean(-1, keepdims=True) + 1e-5)
                ).astype(x.dtype)

    def forward(params, x):
        B, L, _ = x.shape
        for p in params:
            p = jax.tree_util.tree_map(lambda w: w.astype(x.dtype), p)
            qkv = (norm(x) @ p["qkv"]).reshape(B, L, 3, HEADS, D)
            q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # B H L D
            o = attention(q, k, v).transpose(0, 2, 1, 3).reshape(B, L, DIM)
            x = x + o @ p["out"]
            x = x + jax.nn.gelu(norm(x) @ p["up"]) @ p["down"]
        return x

    return layers, forward


def block_rows(args) -> list:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from splat import testing as T

    fam = T.F("window", w=128)
    rows = []
    for B, L in BLOCK_SHAPES:
        h = _handle(fam, L)
        mask = jnp.asarray(np.asarray(fam.predicate(L)(np.arange(L)[:, None],
                                                                np.arange(L)[None, :])))
        bthd = lambda x: x.transpose(0, 2, 1, 3)  # noqa: E731
        attn = {
            "splat": h,
            "jax.nn.dot_product_attention + mask": lambda q, k, v: bthd(
                jax.nn.dot_product_attention(bthd(q), bthd(k), bthd(v),
                                             mask=mask[None, None], scale=h.scale)),
        }
        x = jax.random.normal(jax.random.PRNGKey(1), (B, L, DIM), jnp.float32).astype(
            jnp.bfloat16)
        outs = {}
        for name, a in attn.items():
            params, forward = _block(a, jax.random.PRNGKey(0))
            f = jax.jit(forward)
            outs[name] = y = f(params, x)
            ref = outs["splat"].astype(jnp.float32)
            err = float(jnp.linalg.norm(y.astype(jnp.float32) - ref) / jnp.linalg.norm(ref))
            _, wall = C.host_and_wall_us(lambda: f(params, x), lambda o: o.block_until_ready(),
                                         args.block_calls, args.repeats)
            rows.append(dict(B=B, L=L, attention=name, ms=round(wall / 1e3, 4),
                             rel_err_vs_splat=err))
            print(f"block B={B} L={L:5d} {name:38s} {wall / 1e3:7.3f} ms per forward "
                  f"(rel. err vs SPLAT {err:.1e})", flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--block", action="store_true", help="also time the jitted 2-layer block")
    ap.add_argument("--block-calls", type=int, default=20)
    ap.add_argument("--out-json")
    args = ap.parse_args(argv)

    import jax

    rows, beyond = dispatch_rows(args)
    block = block_rows(args) if args.block else []
    out = {"meta": {"gpu": jax.devices()[0].device_kind, "jax": jax.__version__,
                    "dispatch_shape": "B=1 H=8 L=1024 D=64 bf16 causal",
                    "block": f"2 layers, dim {DIM}, {HEADS} heads, bf16, window w=128",
                    "calls": args.calls, "repeats": args.repeats},
           "rows": rows, "splat_beyond_xla_us": beyond, "block": block}
    if args.out_json:
        Path(args.out_json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
