"""Helpers shared by the GPU benchmarks (bench_attention.py, bench_corpus.py): timing with
``triton.testing.do_bench``, FlexAttention compiled once with raised recompile limits, the
dense boolean mask for SDPA. torch / triton are imported inside the functions only."""

from __future__ import annotations

import re
import time


def sync():
    import torch

    torch.cuda.synchronize()


def host_and_wall_us(fn, wait, calls: int, repeats: int) -> tuple:
    """(median host µs per call, median wall µs per call) over `repeats` loops of `calls` calls
    of `fn()`; `wait(last result)` blocks until the device is done (asynchronous frameworks
    return before their work runs, so host < wall when the device is the bottleneck)."""
    import statistics  # noqa: PLC0415

    host, wall = [], []
    for _ in range(repeats):
        wait(fn())
        t0 = time.perf_counter()
        for _ in range(calls):
            out = fn()
        t1 = time.perf_counter()
        wait(out)
        t2 = time.perf_counter()
        host.append((t1 - t0) / calls * 1e6)
        wall.append((t2 - t0) / calls * 1e6)
    return statistics.median(host), statistics.median(wall)


def interleaved_host_and_wall_us(fns: dict, wait, calls: int, repeats: int) -> dict:
    """`host_and_wall_us` of every ``fns[name]()``, the loops interleaved (each repeat times
    every function once, in turn), so drift in the process (caches, clocks, allocator state)
    reaches all of them alike: ``{name: (median host µs, median wall µs)}``."""
    import statistics  # noqa: PLC0415

    samples = {name: ([], []) for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            host, wall = host_and_wall_us(fn, wait, calls, 1)
            samples[name][0].append(host)
            samples[name][1].append(wall)
    return {name: (statistics.median(h), statistics.median(w))
            for name, (h, w) in samples.items()}


def timed(fn):
    """(fn(), seconds), synchronised on both sides."""
    sync()
    t0 = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - t0


def bench(fn, args) -> float:
    """Median ms of ``do_bench`` with ``args.warmup`` / ``args.rep``."""
    from triton.testing import do_bench

    return float(do_bench(fn, warmup=args.warmup, rep=args.rep, return_mode="median"))


def fmt(x, spec: str = "{:.3f}") -> str:
    """A table cell: ``spec`` of ``x``, or an en dash when it was not measured."""
    return "–" if x is None else spec.format(x)


def save_rows(path, rows: list) -> None:
    """Write the rows measured so far (after every row: a run cut short keeps its results)."""
    import json
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1) + "\n")


def slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-").lower()


def flex_compiled():
    """``torch.compile(flex_attention)`` with dynamo's recompile limits raised, so Flex never
    falls back to eager after many masks."""
    import torch
    import torch._dynamo
    from torch.nn.attention.flex_attention import flex_attention

    for name in ("cache_size_limit", "recompile_limit", "accumulated_cache_size_limit",
                 "accumulated_recompile_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, 4096)
    return torch.compile(flex_attention, dynamic=False)


def run_flex(pred, q, k, v, scale, flex, args):
    """FlexAttention with ``create_block_mask`` from the predicate ``pred(q_idx, kv_idx)``.

    Resets dynamo first (each mask compiles from scratch: an honest first-call cost). Returns
    ``(o, block_mask_s, first_call_s, median_ms)``; first_call_s excludes the block mask."""
    import torch._dynamo
    from torch.nn.attention.flex_attention import create_block_mask

    torch._dynamo.reset()

    def mask_mod(b, h, q_idx, kv_idx):
        return pred(q_idx, kv_idx)

    sync()
    t0 = time.perf_counter()
    bm = create_block_mask(mask_mod, B=None, H=None, Q_LEN=q.shape[2], KV_LEN=k.shape[2],
                           device="cuda")
    sync()
    bm_s = time.perf_counter() - t0
    o, first_s = timed(lambda: flex(q, k, v, block_mask=bm, scale=scale))
    ms = bench(lambda: flex(q, k, v, block_mask=bm, scale=scale), args)
    return o, bm_s, first_s, ms


def backward_ms(forward, tensors, args) -> float:
    """The backward's ms: do_bench of forward + backward (``torch.autograd.grad`` of the output
    against a fixed random gradient) minus do_bench of the forward alone, both with ``tensors``
    (q, k, v) requiring grad (the forward then saves what its backward needs)."""
    import torch

    leaves = [t.detach().requires_grad_(True) for t in tensors]
    grad = torch.randn_like(forward(*leaves))
    both = bench(lambda: torch.autograd.grad(forward(*leaves), leaves, grad), args)
    alone = bench(lambda: forward(*leaves), args)
    return both - alone


def per_kernel_ms(fn, iters: int) -> dict:
    """CUDA ms per call of each kernel ``fn()`` launches, largest first."""
    import torch

    fn()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(iters):
            fn()
        torch.cuda.synchronize()
    ms: dict = {}
    for ev in prof.events():
        if ev.device_type == torch.autograd.DeviceType.CUDA:
            ms[ev.name] = ms.get(ev.name, 0.0) + ev.device_time_total / 1e3 / iters
    return dict(sorted(ms.items(), key=lambda kv: -kv[1]))


def prebound_backward(forward_art, backward_art, q, k, v, do, scale: float) -> tuple:
    """``(run, (dq, dk, dv))``: ``run()`` launches the backward artifact's kernels (dQ, dK/dV
    and their splits) into preallocated buffers, no autograd or op host work, on o and lse from
    one launch of the forward artifact (dlse zero)."""
    import torch

    from splat.runtime.launcher import get_launcher

    B, H, L, D = q.shape
    dev = torch.cuda.current_device()
    fwd, bwd = get_launcher(forward_art, dev), get_launcher(backward_art, dev)
    shapes = (B, H, k.shape[1], L, k.shape[2], D)
    stream = torch.cuda.current_stream().cuda_stream
    o = torch.empty_like(q)
    lse = torch.empty(B, H, L, device=q.device, dtype=torch.float32)
    fwd.forward(q.data_ptr(), k.data_ptr(), v.data_ptr(), o.data_ptr(), lse.data_ptr(), shapes,
                scale, stream)
    dlse, delta = torch.zeros_like(lse), torch.empty_like(lse)
    grads = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    ptrs = [t.data_ptr() for t in (q, k, v, do, o, lse, dlse, delta, *grads)]
    return (lambda: bwd.backward(ptrs, shapes, scale, stream)), grads


def flex_backward(flex, pred, tensors, scale: float, args, iters: int) -> dict:
    """FlexAttention's backward with the block mask of ``pred(q_idx, kv_idx)`` on q, k, v
    (``tensors[:3]``, output gradient ``tensors[3]``): ``flex_bwd_ms`` (do_bench of forward +
    backward minus forward, `backward_ms`) and its kernels alone (`flex_backward_kernel_ms`)."""
    from torch.nn.attention.flex_attention import create_block_mask

    q = tensors[0]
    bm = create_block_mask(lambda b, h, qi, ki: pred(qi, ki), B=None, H=None, Q_LEN=q.shape[2],
                           KV_LEN=tensors[1].shape[2], device="cuda")
    ms = backward_ms(lambda q_, k_, v_: flex(q_, k_, v_, block_mask=bm, scale=scale),
                     tensors[:3], args)
    return dict(flex_bwd_ms=ms, **flex_backward_kernel_ms(flex, bm, tensors, scale, iters))


def flex_backward_kernel_ms(flex, block_mask, tensors, scale: float, iters: int) -> dict:
    """FlexAttention's backward in CUDA time: the kernels of forward + backward (inputs requiring
    grad) minus those of the forward alone, summed per call (torch.profiler), so that host time,
    which dominates both libraries' autograd calls at these sizes, does not enter."""
    import torch

    leaves = [t.detach().requires_grad_(True) for t in tensors[:3]]
    do = tensors[3]

    def forward():
        return flex(*leaves, block_mask=block_mask, scale=scale)

    both = per_kernel_ms(lambda: torch.autograd.grad(forward(), leaves, do), iters)
    alone = per_kernel_ms(forward, iters)
    return dict(bwd_kernel_ms=sum(both.values()) - sum(alone.values()), kernels_ms=both)


def dense_mask(fam, Lq, Lk, device, chunk: int = 2048):
    """bool [Lq, Lk] mask on `device` from a `splat.testing.Family` or a predicate."""
    import torch

    from splat import testing as T

    mask = torch.empty(Lq, Lk, dtype=torch.bool, device=device)
    for r in range(0, Lq, chunk):
        mask[r:r + chunk] = T.mask_torch(fam, Lq, r, min(r + chunk, Lq), device, Lk)
    return mask
