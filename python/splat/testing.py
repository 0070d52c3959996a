"""Pattern families for the GPU tests and the benchmark, with exact mask predicates, and an
fp64 reference attention in PyTorch.

Each `Family` is defined by a vectorised predicate ``fn(q_idx, k_idx) -> bool`` that works on
numpy *and* torch integer arrays (broadcasting), so the same definition gives

* the fp64 reference mask (torch, on the GPU, in row chunks),
* FlexAttention's ``mask_mod`` / ``create_block_mask`` in the benchmark,
* the splat pattern to compile (`build_pattern`): the named constructor of `splat.patterns`
  when it reproduces the predicate exactly (checked by `check_pattern`), else
  ``splat.patterns.from_mask_fn(predicate, L, L)``, else the bool mask itself.

Random families (random blocks, BigBird's random part) draw their blocks here from a seeded
numpy generator and keep them as a lookup table, so the reference never depends on another
module's random number stream.

Nothing here imports MLIR; torch is imported only by the torch helpers.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from typing import Any, Callable

import numpy as np

__all__ = ["Family", "TEST_FAMILIES", "BENCH_FAMILIES", "TEST_LENGTHS", "build_pattern",
           "check_pattern", "mask_numpy", "nnz", "reference_attention_torch", "rel_error",
           "attention_model", "TORCH_OP_CASES", "TRAIN_LENGTHS", "random_masks",
           "reference_backward_torch", "irregular_mask"]

TEST_LENGTHS = (1024, 4096, 16384, 3001)


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _table(arr: Any, like: Any):
    """`arr` as a lookup table usable with index arrays like `like` (numpy or torch)."""
    if _is_torch(arr):
        return arr
    if _is_torch(like):
        import torch  # noqa: PLC0415

        return torch.as_tensor(arr, device=like.device)
    return arr


def _globals(L: int, n: int) -> np.ndarray:
    """Global token indices: the first n tokens and the middle one."""
    idx = sorted(set(range(min(n, L))) | {L // 2})
    return np.array(idx, dtype=np.int64)


def _random_block_table(L: int, block: int, per_row: int, seed: int) -> np.ndarray:
    nb = -(-L // block)
    rng = np.random.default_rng(seed)
    t = np.zeros((nb, nb), dtype=bool)
    for r in range(nb):
        t[r, rng.choice(nb, size=min(per_row, nb), replace=False)] = True
    return t


@dataclasses.dataclass(frozen=True)
class Family:
    """A named mask family with fixed parameters; `predicate(L)` is its exact definition."""

    name: str
    params: tuple  # ((key, value), ...) so the dataclass stays hashable

    @property
    def p(self) -> dict:
        return dict(self.params)

    def __str__(self) -> str:
        return self.name + "(" + ", ".join(f"{k}={v}" for k, v in self.params) + ")"

    def predicate(self, L: int, device: Any = None) -> Callable[[Any, Any], Any]:
        """``fn(q_idx, k_idx)``: bool array, True where query q_idx attends key k_idx.

        With `device` (a torch device) the lookup tables are torch tensors there already, as
        FlexAttention's ``mask_mod`` needs (captured tensors, no numpy inside traced code)."""
        fn = self._predicate(L, device)
        return fn

    def _predicate(self, L: int, device: Any) -> Callable[[Any, Any], Any]:
        def tab(arr):
            """A lookup table; on a torch device as int8 (FlexAttention's kernels then load
            bytes; lookups are compared with != 0 so numpy bool tables work the same)."""
            if device is None:
                return arr
            import torch  # noqa: PLC0415

            return torch.as_tensor(arr.astype(np.int8), device=device)

        def glob(x, n):  # global tokens: the first n and the middle one (no table needed)
            return (x < n) | (x == L // 2)

        p, name = self.p, self.name
        if name == "dense":  # every key: the dense roofline inside the benchmark's own table
            return lambda q, k: abs(q - k) < L
        if name == "window":
            w = p["w"]
            return lambda q, k: abs(q - k) <= w
        if name == "causal":
            return lambda q, k: (q - k) >= 0
        if name == "causal_window":
            w = p["w"]
            return lambda q, k: ((q - k) >= 0) & ((q - k) <= w)
        if name == "dilated":  # w neighbours on each side, every `stride`-th key
            w, s = p["w"], p["stride"]
            return lambda q, k: (abs(q - k) <= w * s) & ((q - k) % s == 0)
        if name == "strided":  # Sparse Transformer "strided"
            loc, s = p["local"], p["stride"]
            return lambda q, k: ((q - k) >= 0) & (((q - k) < loc) | ((q - k) % s == 0))
        if name == "fixed":  # Sparse Transformer "fixed"
            b, c = p["block"], p["summary"]
            return lambda q, k: ((q - k) >= 0) & (((q // b) == (k // b)) | ((k % b) >= b - c))
        if name == "blocked":
            b = p["block"]
            return lambda q, k: (q // b) == (k // b)
        if name == "global_tokens":
            n = p["n"]
            return lambda q, k: glob(q, n) | glob(k, n)
        if name == "random_blocks":
            b = p["block"]
            t = tab(_random_block_table(L, b, p["per_row"], p["seed"]))
            return lambda q, k: _table(t, q)[q // b, k // b] != 0
        if name == "longformer":
            w, n = p["w"], p["n_globals"]
            return lambda q, k: (abs(q - k) <= w) | glob(q, n) | glob(k, n)
        if name == "bigbird":
            w, n, b = p["w"], p["n_globals"], p["block"]
            t = tab(_random_block_table(L, b, p["random"], p["seed"]))
            return lambda q, k: ((abs(q - k) <= w) | glob(q, n) | glob(k, n)
                                 | (_table(t, q)[q // b, k // b] != 0))
        if name == "strided_gaps":  # strided, where rows [L/4, L/4 + 64) lack the local window
            # and rows [L/2, L/2 + 64) the strided keys: split-KV rows whose first or second
            # launch has nothing
            loc, s = p["local"], p["stride"]
            return lambda q, k: (((q - k) >= 0)
                                 & ((((q - k) < loc) & ((q < L // 4) | (q >= L // 4 + 64)))
                                    | (((q - k) % s == 0) & ((q - k) >= loc)
                                       & ((q < L // 2) | (q >= L // 2 + 64)))))
        if name == "dilated_union":  # LongNet style: two dilated windows of coprime strides,
            # fragmented into many small ACSR pieces (the tiler's blocks plan)
            w, s1, s2 = p["w"], p["s1"], p["s2"]
            return lambda q, k: (((abs(q - k) <= w * s1) & ((q - k) % s1 == 0))
                                 | ((abs(q - k) <= w * s2) & ((q - k) % s2 == 0)))
        if name == "sparse_rows":  # a window with empty rows (whole row tiles and single rows)
            w = p["w"]
            return lambda q, k: ((abs(q - k) <= w) & (((q // 64) % 3) != 1) & ((q % 5) != 2))
        raise ValueError(f"unknown family {name!r}")


def F(name: str, **params) -> Family:
    return Family(name, tuple(sorted(params.items())))


TEST_FAMILIES = (
    F("window", w=128),
    F("causal"),
    F("causal_window", w=256),
    F("dilated", w=64, stride=4),
    F("strided", local=128, stride=128),
    F("fixed", block=128, summary=16),
    F("blocked", block=256),
    F("global_tokens", n=16),
    F("random_blocks", block=64, per_row=3, seed=0),
    F("longformer", w=128, n_globals=16),
    F("bigbird", w=64, n_globals=64, block=64, random=3, seed=1),
    F("sparse_rows", w=64),
    F("strided_gaps", local=64, stride=64),
    F("dilated_union", w=32, s1=3, s2=5),
)

# The benchmark's patterns (issue 5): window, causal-window, dilated, strided, Longformer, BigBird,
# blocked; parameters in the range the Longformer / BigBird / Sparse Transformer papers use.
BENCH_FAMILIES = (
    F("dense"),  # all-true (issue 12's reference row: SPLAT against dense SDPA)
    F("window", w=256),
    F("causal_window", w=512),
    F("dilated", w=128, stride=4),
    F("strided", local=128, stride=128),
    F("longformer", w=256, n_globals=32),
    F("bigbird", w=192, n_globals=64, block=64, random=3, seed=1),
    F("blocked", block=512),
)

# The torch op's GPU tests and host-overhead benchmark (issue 13): (family, L, D, dtype, variant).
# Small on purpose: the batch size is free, and the decomposed variant exercises the op's
# torch-allocated scratch under CUDA graphs.
TORCH_OP_CASES = (
    (F("causal"), 1024, 64, "bf16", "fused"),
    (F("window", w=128), 1024, 64, "bf16", "fused"),
    (F("window", w=128), 1024, 64, "bf16", "decomposed"),
    (F("causal"), 1024, 128, "f16", "fused"),
)


# ------------------------------------------------------------------------------------ numpy side


# The backward's GPU tests (issue 14): every test family at these lengths (a multiple of the
# tiles and an odd one), plus `random_masks`.
TRAIN_LENGTHS = (1024, 3001)


def irregular_mask(seed: int = 11, Lq: int = 448, Lk: int = 320) -> np.ndarray:
    """An iid mask at 6 % density with Lq != Lk, ten empty rows and an empty band of 30 keys:
    its analysis leaves a block remainder (mask tiles) in the schedule and in the transposed
    layout's (the backward's tests)."""
    rng = np.random.default_rng(seed)
    mask = rng.random((Lq, Lk)) < 0.06
    mask[100:110] = False
    mask[:, 200:230] = False
    return mask


def random_masks(seed: int = 0, n: int = 6) -> list:
    """``[(name, bool mask [Lq, Lk])]``: masks no family names, for the backward's GPU tests.

    Each is the union of 2-3 terms drawn at random, with random parameters, on a random
    Lq != Lk in [200, 1600]: a window whose centre moves at the rate Lk/Lq (a rational slope),
    its dilated version, strided keys below the diagonal, global keys, global queries, random
    64 x 64 blocks; half of them intersected with the causal (slope) diagonal; then a few rows
    and a band of keys emptied, so rows and columns without any key occur."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        Lq, Lk = (int(x) for x in rng.integers(200, 1601, size=2))
        if Lq == Lk:
            Lk += 37
        q = np.arange(Lq)[:, None]
        k = np.arange(Lk)[None, :]
        centre = (q * Lk) // Lq

        def term(kind):
            w = int(rng.integers(8, 96))
            s = int(rng.integers(2, 9))
            if kind == "window":
                return np.abs(k - centre) <= w
            if kind == "dilated":
                d = k - centre
                return (np.abs(d) <= w * s) & (d % s == 0)
            if kind == "strided":
                return (k % s == s - 1) & (k <= centre)
            if kind == "global_keys":
                return np.isin(k, rng.choice(Lk, size=int(rng.integers(1, 9)), replace=False))
            if kind == "global_queries":
                return np.isin(q, rng.choice(Lq, size=int(rng.integers(1, 5)), replace=False)) \
                    & np.ones_like(k, dtype=bool)
            blocks = rng.random((-(-Lq // 64), -(-Lk // 64))) < 0.08
            return blocks[q // 64, k // 64]

        kinds = rng.choice(["window", "dilated", "strided", "global_keys", "global_queries",
                            "blocks"], size=int(rng.integers(2, 4)), replace=False)
        mask = np.zeros((Lq, Lk), dtype=bool)
        for kind in kinds:
            mask |= term(kind)
        causal = bool(rng.random() < 0.5)
        if causal:
            mask &= k <= centre
        mask[rng.choice(Lq, size=5, replace=False)] = False
        band = int(rng.integers(0, Lk - 20))
        mask[:, band:band + 20] = False
        name = f"r{seed}.{i}-{'+'.join(kinds)}{'&causal' if causal else ''}-{Lq}x{Lk}"
        out.append((name, mask))
    return out


def mask_numpy(fam: Family, L: int, rows: tuple | None = None) -> np.ndarray:
    """bool [r1 - r0, L] mask of rows [r0, r1) (default all rows)."""
    r0, r1 = rows if rows is not None else (0, L)
    fn = fam.predicate(L)
    q = np.arange(r0, r1, dtype=np.int64)[:, None]
    k = np.arange(L, dtype=np.int64)[None, :]
    return np.asarray(np.broadcast_to(fn(q, k), (r1 - r0, L)))


def nnz(fam: Family, L: int, chunk: int = 1024) -> int:
    return int(sum(mask_numpy(fam, L, (r, min(r + chunk, L))).sum() for r in range(0, L, chunk)))


# ------------------------------------------------------------------------------------ splat side


def _patterns_module():
    return importlib.import_module("splat.patterns")


def _sized(fn: Callable, args: tuple, L: int):
    """Call a splat.patterns constructor with the sizes however it takes them."""
    errors = []
    for call in (lambda: fn(*args, Lq=L, Lk=L), lambda: fn(*args, L, L), lambda: fn(*args, L=L)):
        try:
            return call()
        except TypeError as e:
            errors.append(e)
    raise TypeError(f"cannot call {getattr(fn, '__name__', fn)} with sizes: {errors[-1]}")


def _constructor(fam: Family, L: int):
    P = _patterns_module()
    p = fam.p
    n = fam.name
    if n == "dense":
        return _sized(P.window, (L,), L)
    if n == "window":
        return _sized(P.window, (p["w"],), L)
    if n == "causal":
        return _sized(P.causal, (), L)
    if n == "causal_window":
        return _sized(P.causal_window, (p["w"],), L)
    if n == "dilated":
        return _sized(P.dilated, (p["w"], p["stride"]), L)
    if n == "strided":
        return _sized(P.strided, (p["local"], p["stride"]), L)
    if n == "fixed":
        return _sized(P.fixed, (p["block"], p["summary"]), L)
    if n == "blocked":
        return _sized(P.blocked, (p["block"],), L)
    if n == "global_tokens":
        return _sized(P.global_tokens, (_globals(L, p["n"]).tolist(),), L)
    if n == "longformer":
        return _sized(P.longformer, (p["w"], _globals(L, p["n_globals"]).tolist()), L)
    if n == "bigbird":  # analytic parts from constructors, the random blocks from our table
        parts = _sized(P.window, (p["w"],), L) | _sized(
            P.global_tokens, (_globals(L, p["n_globals"]).tolist(),), L)
        b = p["block"]
        t = _random_block_table(L, b, p["random"], p["seed"])
        return parts | P.from_mask_fn(lambda q, k: t[q // b, k // b], L, L)
    return None  # no named constructor with our semantics: use the predicate


def pattern_mask(pattern: Any, L: int) -> np.ndarray:
    """The full bool mask of a splat pattern / ACSR / ndarray (for checks at small L)."""
    if isinstance(pattern, np.ndarray):
        return pattern
    mask_rows = getattr(pattern, "mask_rows", None)
    if callable(mask_rows):
        return np.asarray(mask_rows(0, L))
    to_mask = getattr(pattern, "to_mask", None)
    if callable(to_mask):
        return np.asarray(to_mask())
    from .analysis import analyze  # noqa: PLC0415

    return analyze(pattern).to_mask()


def check_pattern(fam: Family, pattern: Any, L: int) -> None:
    """Raise AssertionError unless `pattern`'s mask equals the family's predicate at length L."""
    got = pattern_mask(pattern, L)
    want = mask_numpy(fam, L)
    if got.shape != want.shape or not np.array_equal(got, want):
        diff = int((got != want).sum()) if got.shape == want.shape else -1
        raise AssertionError(f"{fam} at L={L}: splat pattern differs from the predicate "
                             f"({diff} cells differ, shapes {got.shape} vs {want.shape})")


def build_pattern(fam: Family, L: int, route: str = "auto") -> tuple:
    """(splat pattern, route) for `fam` at length L.

    route: "constructor" (named splat.patterns constructor), "mask_fn"
    (``splat.patterns.from_mask_fn``), "mask" (a bool ndarray, which `splat.analyze` takes), or
    "auto": the first of these that exists and, for the constructor, matches the predicate at a
    small length (3001, odd). A constructor that disagrees is reported by `check_pattern`'s
    message in the returned route string ("mask_fn (constructor differs: ...)")."""
    notes = ""
    if route in ("auto", "constructor"):
        try:
            small = _constructor(fam, 3001)
            if small is not None:
                check_pattern(fam, small, 3001)
                return _constructor(fam, L), "constructor"
            if route == "constructor":
                raise ValueError(f"{fam.name} has no named constructor")
        except (ImportError, AttributeError, TypeError, AssertionError) as e:
            if route == "constructor":
                raise
            notes = f" (constructor unusable: {e})"
    fn = fam.predicate(L)
    if route in ("auto", "mask_fn"):
        try:
            P = _patterns_module()
            return P.from_mask_fn(fn, L, L), "mask_fn" + notes
        except (ImportError, AttributeError) as e:
            if route == "mask_fn":
                raise
            notes += f" (from_mask_fn unusable: {e})"
    return mask_numpy(fam, L), "mask" + notes


# ------------------------------------------------------------------------------------ torch side


def mask_torch(fam: Family | Callable, L: int, r0: int, r1: int, device, Lk: int | None = None):
    """bool [r1 - r0, Lk] mask on `device`; `fam` is a Family or a predicate ``fn(q, k)``."""
    import torch  # noqa: PLC0415

    fn = fam.predicate(L, device) if isinstance(fam, Family) else fam
    q = torch.arange(r0, r1, device=device, dtype=torch.int64)[:, None]
    k = torch.arange(Lk if Lk is not None else L, device=device, dtype=torch.int64)[None, :]
    return torch.broadcast_to(fn(q, k), (r1 - r0, k.shape[1]))


def reference_attention_torch(q, k, v, fam: Family | Callable, scale: float | None = None, *,
                              heads: slice | None = None, chunk: int = 1024):
    """fp64 masked attention on the tensors' device, in row chunks.

    Returns ``(o float64 [B, h, Lq, D], lse float64 [B, h, Lq], empty bool [Lq])`` for the query
    heads `heads` (default all); GQA maps query head h to kv head ``h // (H // Hkv)``. Rows with
    no key give o = 0, lse = -inf."""
    import torch  # noqa: PLC0415

    B, H, Lq, D = q.shape
    Hkv, Lk = k.shape[1], k.shape[2]
    if scale is None:
        from .abi import default_scale  # noqa: PLC0415

        scale = default_scale(D)
    hs = range(H)[heads] if heads is not None else range(H)
    kvh = torch.tensor([h // (H // Hkv) for h in hs], device=q.device)
    q64 = q[:, list(hs)].double()
    k64 = k.double()[:, kvh]
    v64 = v.double()[:, kvh]
    o = torch.zeros(q64.shape, dtype=torch.float64, device=q.device)
    lse = torch.full(q64.shape[:3], -math.inf, dtype=torch.float64, device=q.device)
    empty = torch.zeros(Lq, dtype=torch.bool, device=q.device)
    for i0 in range(0, Lq, chunk):
        i1 = min(i0 + chunk, Lq)
        m = mask_torch(fam, Lq, i0, i1, q.device, Lk)
        ok = m.any(dim=1)
        empty[i0:i1] = ~ok
        s = torch.einsum("bhmd,bhnd->bhmn", q64[:, :, i0:i1], k64) * scale
        s = s.masked_fill(~m, -math.inf)
        mx = s.amax(dim=-1, keepdim=True)
        mx = torch.where(torch.isfinite(mx), mx, torch.zeros_like(mx))
        p = torch.exp(s - mx)
        den = p.sum(dim=-1, keepdim=True)
        safe = torch.where(den > 0, den, torch.ones_like(den))
        o[:, :, i0:i1] = torch.where(den > 0, torch.einsum("bhmn,bhnd->bhmd", p, v64) / safe,
                                     torch.zeros((), dtype=torch.float64, device=q.device))
        lse[:, :, i0:i1] = torch.where(den[..., 0] > 0, (mx + torch.log(safe))[..., 0],
                                       torch.full((), -math.inf, dtype=torch.float64, device=q.device))
        del s, p
    return o, lse, empty


def reference_backward_torch(q, k, v, do, fam: Family | Callable, scale: float | None = None, *,
                             chunk: int = 1024):
    """fp64 ``(dq, dk, dv)`` of masked attention for the output gradient ``do``, on the
    tensors' device in row chunks (memory ``chunk * Lk`` per head, so long sequences fit), MHA
    only (H == Hkv: pass the heads to check). Rows without keys contribute nothing."""
    import torch  # noqa: PLC0415

    B, H, Lq, D = q.shape
    if k.shape[1] != H:
        raise ValueError("reference_backward_torch takes MHA inputs (slice the heads to check)")
    Lk = k.shape[2]
    if scale is None:
        from .abi import default_scale  # noqa: PLC0415

        scale = default_scale(D)
    q64, k64, v64, do64 = (t.double() for t in (q, k, v, do))
    dq = torch.zeros_like(q64)
    dk, dv = torch.zeros_like(k64), torch.zeros_like(v64)
    for i0 in range(0, Lq, chunk):
        i1 = min(i0 + chunk, Lq)
        m = mask_torch(fam, Lq, i0, i1, q.device, Lk)
        live = m.any(dim=1)
        s = torch.einsum("bhmd,bhnd->bhmn", q64[:, :, i0:i1], k64) * scale
        s = s.masked_fill(~m, -math.inf)
        s = torch.where(live[:, None], s, torch.zeros_like(s))
        p = torch.softmax(s, dim=-1) * live[:, None]
        o = torch.einsum("bhmn,bhnd->bhmd", p, v64)
        dp = torch.einsum("bhmd,bhnd->bhmn", do64[:, :, i0:i1], v64)
        delta = (do64[:, :, i0:i1] * o).sum(-1, keepdim=True)
        ds = p * (dp - delta)
        dq[:, :, i0:i1] = torch.einsum("bhmn,bhnd->bhmd", ds, k64) * scale
        dk += torch.einsum("bhmn,bhmd->bhnd", ds, q64[:, :, i0:i1]) * scale
        dv += torch.einsum("bhmn,bhmd->bhnd", p, do64[:, :, i0:i1])
        del s, p, dp, ds
    return dq, dk, dv


def rel_error(out, ref) -> float:
    """max |out - ref| / max |ref| (both over all elements)."""
    err = (out.double() - ref).abs().max().item()
    scale = ref.abs().max().item()
    return err / scale if scale > 0 else err


def attention_model(attention: Callable, *, dim: int = 512, heads: int = 8,
                    kv_heads: int | None = None, layers: int = 2, seed: int = 0):
    """A small pre-norm transformer whose attention is ``attention(q, k, v) -> o`` (q, o:
    ``(B, heads, L, dim // heads)``, k, v: ``(B, kv_heads, L, dim // heads)``), so the same
    model runs with SPLAT, FlexAttention or an fp64 reference: the torch-op tests and benchmarks
    compare them. Each of the `layers` blocks is LayerNorm → one QKV projection →
    attention → output projection → residual, then LayerNorm → 4x MLP (GELU) → residual. The
    weights are drawn from `seed` in float32 on the CPU (two models of one seed are equal):
    move it with ``.to(device, dtype)``. Input and output: ``(B, L, dim)``. q, k, v are
    strided views of the projection (not contiguous), as in most models."""
    import torch  # noqa: PLC0415

    kv_heads = kv_heads or heads
    head_dim = dim // heads

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1 = torch.nn.LayerNorm(dim)
            self.qkv = torch.nn.Linear(dim, (heads + 2 * kv_heads) * head_dim)
            self.out = torch.nn.Linear(heads * head_dim, dim)
            self.norm2 = torch.nn.LayerNorm(dim)
            self.mlp = torch.nn.Sequential(torch.nn.Linear(dim, 4 * dim), torch.nn.GELU(),
                                           torch.nn.Linear(4 * dim, dim))

        def forward(self, x):
            B, L, _ = x.shape
            qkv = self.qkv(self.norm1(x)).view(B, L, heads + 2 * kv_heads, head_dim).transpose(1, 2)
            q, k, v = qkv.split([heads, kv_heads, kv_heads], dim=1)
            o = attention(q, k, v)
            x = x + self.out(o.transpose(1, 2).reshape(B, L, heads * head_dim))
            return x + self.mlp(self.norm2(x))

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList(Block() for _ in range(layers))

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return x

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Model()
