#!/usr/bin/env python3
"""Compile the artifacts the GPU suite and the benchmark need, here (where MLIR is installed),
into one directory that is carried to the GPU machine (which has no MLIR).

    python scripts/pack_gpu_artifacts.py --tests            # tests/gpu/test_gpu_attention.py
    python scripts/pack_gpu_artifacts.py --bench            # benchmarks/bench_attention.py
    python scripts/pack_gpu_artifacts.py --torch-op         # tests/gpu/test_gpu_torch_op.py,
                                                            # benchmarks/bench_overhead.py
    python scripts/pack_gpu_artifacts.py --train            # tests/gpu/test_gpu_train.py:
                                                            # forward + backward artifacts
    python scripts/pack_gpu_artifacts.py --tests --bench --out .device/artifacts --tar

Layout: ``<out>/<key>/`` one artifact per (family, L, D, dtype), where ``key`` is
`splat.runtime.resolve.request_key` of the pattern (so ``splat.torch.attention(q, k, v, pattern)``
finds it through ``SPLAT_ARTIFACT_DIR=<out>``), and ``<out>/catalog.json`` listing every entry
(family, parameters, L, D, dtype, key, how the pattern was built, compile time, schedule size).
Existing entries are reused (the key is a content hash that includes the compiler version, a
hash of the whole compiler side), so re-running is cheap; a pack by another compiler version
starts a fresh catalog, and ``--force`` recompiles everything. The catalog's
``compiler_version`` is what a machine without the compiler keys its lookups with. ``--tar``
also writes ``<out>.tar.gz`` (PTX compresses ~10x; the device tool carries at most 64 MiB).

On the GPU machine (from the repository root)::

    tar xzf .device/artifacts.tar.gz -C /tmp      # if packed with --tar
    SPLAT_ARTIFACT_DIR=/tmp/artifacts PYTHONPATH=python python -m pytest -m gpu tests/gpu
    SPLAT_ARTIFACT_DIR=/tmp/artifacts PYTHONPATH=python python benchmarks/bench_attention.py
    SPLAT_ARTIFACT_DIR=/tmp/artifacts PYTHONPATH=python python benchmarks/bench_overhead.py
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

from splat import abi  # noqa: E402
from splat import testing as T  # noqa: E402
from splat.runtime.artifact import ArtifactError, load, save  # noqa: E402
from splat.runtime.resolve import DEFAULT_TARGET, request_key  # noqa: E402
from splat.version import compiler_version  # noqa: E402

BENCH_LENGTHS = (4096, 16384)
BENCH_HEAD_DIMS = abi.HEAD_DIMS


RANDOM_MASK_SEED, RANDOM_MASK_COUNT = 0, 6  # splat.testing.random_masks for --train


@dataclasses.dataclass(frozen=True)
class MaskCase:
    """A mask of `splat.testing.random_masks`, packed like a family (its pattern is the mask)."""

    name: str
    index: int
    Lk: int
    p: tuple = ()

    def __str__(self):
        return self.name

    def mask(self):
        return T.random_masks(RANDOM_MASK_SEED, RANDOM_MASK_COUNT)[self.index][1]


def random_mask_cases() -> list:
    """(MaskCase, Lq) of every --train random mask."""
    return [(MaskCase(name, i, int(m.shape[1])), int(m.shape[0]))
            for i, (name, m) in enumerate(T.random_masks(RANDOM_MASK_SEED, RANDOM_MASK_COUNT))]


def jobs(args) -> list:
    """(suite, family, L, D, dtype, variant) to build."""
    out = []
    if args.tests:
        for fam in T.TEST_FAMILIES:
            for L in T.TEST_LENGTHS:
                for D in abi.HEAD_DIMS:
                    for dt in ("bf16", "f16"):
                        out.append(("tests", fam, L, D, dt, "fused"))
    if args.bench:
        for fam in T.BENCH_FAMILIES:
            for L in BENCH_LENGTHS:
                for D in BENCH_HEAD_DIMS:
                    out.append(("bench", fam, L, D, "bf16", "fused"))
                    if args.decomposed:
                        out.append(("bench", fam, L, D, "bf16", "decomposed"))
                    if args.backward and D in abi.BACKWARD_HEAD_DIMS:
                        out.append(("bench", fam, L, D, "bf16", "backward"))
    if args.torch_op:
        out += [("torch-op", fam, L, D, dt, variant) for fam, L, D, dt, variant in T.TORCH_OP_CASES]
    if args.train:  # the forward and backward artifacts of each case
        cases = [(fam, L) for fam in T.TEST_FAMILIES for L in T.TRAIN_LENGTHS]
        for fam, L in cases + random_mask_cases():
            for D in abi.BACKWARD_HEAD_DIMS:
                for dt in ("bf16", "f16"):
                    out += [("train", fam, L, D, dt, v) for v in ("fused", "backward")]
    if args.families:
        keep = set(args.families.split(","))
        out = [j for j in out if j[1].name in keep]
    if args.lengths:
        keep_l = {int(x) for x in args.lengths.split(",")}
        out = [j for j in out if j[2] in keep_l]
    if getattr(args, "head_dims", None):
        keep_d = {int(x) for x in args.head_dims.split(",")}
        out = [j for j in out if j[3] in keep_d]
    return out


# The splat.compile options a pack may fix (None: the compiler's default), by variant: the
# fused artifacts' tile shape, instruction and loads; the backward's key tile, instruction and
# row tile height (its own options, so that a pack can hold default forwards beside them).
PACK_OPTIONS = ("block_m", "warp_rows", "block_n", "mma", "kv_loads", "backward_mma",
                "backward_block_m")
_VARIANT_OPTIONS = {
    "fused": {o: o for o in ("block_m", "warp_rows", "block_n", "mma", "kv_loads")},
    "backward": {"block_n": "block_n", "backward_mma": "mma", "backward_block_m": "block_m"},
}


def pack_options(args) -> dict:
    """The pack's fixed options (`PACK_OPTIONS`) from the command line, None where not given."""
    return {o: getattr(args, o, None) for o in PACK_OPTIONS}


def _compile(pattern, dtype, D, target, variant, options: dict | None = None):
    from splat import compiler  # imports MLIR; only this script and the compiler do

    kw = dict(dtype=dtype, head_dim=D, target=target)
    if variant != "fused":
        kw["variant"] = variant
    for option, argument in _VARIANT_OPTIONS.get(variant, {}).items():
        if (options or {}).get(option) is not None:
            kw[argument] = options[option]
    return compiler.compile(pattern, **kw)


def pack_dir(out: str | Path) -> tuple[Path, str]:
    """``(out, compiler version)``: the output directory, created, and the version that keys the
    artifacts packed there; exits when the compiler side is not built here."""
    version = compiler_version()
    if version is None:
        sys.exit("the compiler side is not built here (pip install -e .)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return out, version


def write_json_atomic(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def write_tar(out: Path) -> Path:
    """``<out>.tar.gz`` of the pack directory (written atomically); PTX compresses ~10x, and the
    device tool carries at most 64 MiB."""
    tar_path = out.with_name(out.name + ".tar.gz")
    tmp = tar_path.with_name(f".{tar_path.name}.tmp-{os.getpid()}")
    with tarfile.open(tmp, "w:gz") as tf:
        tf.add(out, arcname=out.name)
    os.replace(tmp, tar_path)
    print(f"wrote {tar_path} ({tar_path.stat().st_size / 2**20:.1f} MiB)")
    return tar_path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / ".device" / "artifacts"))
    ap.add_argument("--tests", action="store_true", help="artifacts of tests/gpu/test_gpu_attention.py")
    ap.add_argument("--bench", action="store_true", help="artifacts of benchmarks/bench_attention.py")
    ap.add_argument("--torch-op", action="store_true",
                    help="artifacts of tests/gpu/test_gpu_torch_op.py and benchmarks/bench_overhead.py "
                         "(splat.testing.TORCH_OP_CASES, decomposed one included)")
    ap.add_argument("--train", action="store_true",
                    help="forward and backward artifacts of tests/gpu/test_gpu_train.py (every test "
                         "family at splat.testing.TRAIN_LENGTHS, splat.testing.random_masks)")
    ap.add_argument("--decomposed", action="store_true",
                    help="with --bench: also the decomposed (sddmm/softmax/spmm) variant, if the "
                         "compiler offers it (skipped with a note otherwise)")
    ap.add_argument("--backward", action="store_true",
                    help="with --bench: also the backward artifacts (bench_attention.py --backward)")
    ap.add_argument("--families", help="comma-separated family names to keep")
    ap.add_argument("--lengths", help="comma-separated L values to keep")
    ap.add_argument("--target", default=DEFAULT_TARGET)
    ap.add_argument("--route", default="auto", choices=("auto", "constructor", "mask_fn", "mask"),
                    help="how patterns are built (splat.testing.build_pattern)")
    ap.add_argument("--tar", action="store_true", help="also write <out>.tar.gz")
    ap.add_argument("--block-m", type=int, choices=abi.BLOCK_M_CHOICES,
                    help="fused artifacts with this row tile height (a pack to compare against "
                         "the default one; saved under the pattern's default request key)")
    ap.add_argument("--warp-rows", type=int, choices=abi.WARP_ROWS_CHOICES,
                    help="fused artifacts with this many query rows a warp (as --block-m)")
    ap.add_argument("--block-n", type=int, choices=abi.BLOCK_N_CHOICES,
                    help="fused and backward artifacts with this many keys a key tile (as "
                         "--block-m)")
    ap.add_argument("--mma", choices=abi.MMA_KINDS,
                    help="fused artifacts on this tensor-core instruction (as --block-m)")
    ap.add_argument("--backward-mma", choices=abi.MMA_KINDS,
                    help="backward artifacts on this tensor-core instruction (as --block-m)")
    ap.add_argument("--backward-block-m", type=int, choices=abi.BLOCK_M_CHOICES,
                    help="backward artifacts with this row tile height (128: wgmma; as "
                         "--block-m)")
    ap.add_argument("--kv-loads", choices=abi.KV_LOADS,
                    help="wgmma artifacts whose K/V are gathered by this (splat.compile's "
                         "kv_loads; as --block-m)")
    ap.add_argument("--head-dims", help="comma-separated head dims to keep")
    ap.add_argument("--force", action="store_true", help="recompile entries that exist already")
    args = ap.parse_args(argv)
    if not (args.tests or args.bench or args.torch_op or args.train):
        args.tests = True
    out, version = pack_dir(args.out)
    cat_path = out / "catalog.json"
    old = json.loads(cat_path.read_text()) if cat_path.is_file() else {"entries": []}
    options = pack_options(args)
    if old.get("entries") and ((old.get("compiler_version"),) + tuple(
            old.get(o) for o in PACK_OPTIONS)) != (version,) + tuple(options.values()):
        print(f"the last pack was made by compiler {old.get('compiler_version')} with "
              f"{ {o: old.get(o) for o in PACK_OPTIONS} }, this is {version} with {options}: "
              f"starting a fresh catalog")
        old = {"entries": []}
    stale = args.force
    entries = {(e["family_id"], e["L"], e["D"], e["dtype"], e.get("variant", "fused")): e
               for e in old.get("entries", [])}
    patterns: dict = {}
    todo = jobs(args)
    t_start = time.perf_counter()
    failures = []
    for i, (suite, fam, L, D, dt, variant) in enumerate(todo):
        ident = (str(fam), L, D, dt, variant)
        Lk = fam.Lk if isinstance(fam, MaskCase) else L
        if (str(fam), L) not in patterns:
            t0 = time.perf_counter()
            built = (fam.mask(), "mask") if isinstance(fam, MaskCase) else T.build_pattern(
                fam, L, route=args.route)
            patterns[(str(fam), L)] = built + (time.perf_counter() - t0,)
        pattern, route, build_s = patterns[(str(fam), L)]
        key = request_key(pattern, Lq=L, Lk=Lk, dtype=dt, head_dim=D, target=args.target,
                          variant=variant)
        dest = out / key
        entry = entries.get(ident)
        compile_s = entry.get("compile_s") if entry and entry.get("key") == key else None
        try:
            if stale:
                raise ArtifactError("stale")
            art = load(dest)
            state = "cached"
        except ArtifactError:
            t0 = time.perf_counter()
            try:
                art = _compile(pattern, dt, D, args.target, variant, options)
            except TypeError as e:
                if variant != "fused":
                    print(f"[{i + 1}/{len(todo)}] {ident}: compiler has no {variant} variant ({e}); skipped")
                    continue
                raise
            except Exception as e:  # keep packing the rest, report at the end
                failures.append((ident, repr(e)))
                print(f"[{i + 1}/{len(todo)}] {ident}: FAILED {e!r}", flush=True)
                continue
            compile_s = time.perf_counter() - t0
            save(art, dest, overwrite=True)
            art = load(dest)
            state = f"compiled in {compile_s:.2f}s"
        rt = art.tables.get("row_tiles")
        sg = art.tables.get("segments")
        suites = sorted(set((entry or {}).get("suites", [])) | {suite})
        entries[ident] = dict(
            family=fam.name, family_id=str(fam), params=fam.p, L=L, Lk=Lk, D=D, dtype=dt,
            variant=variant, key=key, route=route, suites=suites, target=args.target,
            compile_s=compile_s, pattern_build_s=build_s,
            n_tiles=int(rt.shape[0]) if rt is not None else None,
            n_segments=int(sg.shape[0]) if sg is not None else None,
            kernels=[k["name"] for k in art.kernels])
        print(f"[{i + 1}/{len(todo)}] {fam} L={L} D={D} {dt} {variant}: {state} "
              f"({route}) -> {key[:12]}", flush=True)
        if (i + 1) % 16 == 0:
            write_json_atomic(cat_path, _catalog(entries, args.target, version, options))
    write_json_atomic(cat_path, _catalog(entries, args.target, version, options))
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{len(entries)} catalog entries, {size / 2**20:.1f} MiB in {out} "
          f"({time.perf_counter() - t_start:.1f}s)")
    if args.tar:
        write_tar(out)
    if failures:
        print(f"{len(failures)} FAILED:")
        for ident, err in failures:
            print(f"  {ident}: {err}")
        return 1
    return 0


def _catalog(entries: dict, target: str, version: str, options: dict | None = None) -> dict:
    """The catalog: the pack's fixed options (those given) beside its entries."""
    return {"format": "splat-catalog/1", "compiler_version": version, "target": target,
            **{o: v for o, v in (options or {}).items() if v is not None},
            "entries": sorted(entries.values(), key=lambda e: (e["family_id"], e["L"], e["D"],
                                                               e["dtype"], e["variant"]))}


if __name__ == "__main__":
    sys.exit(main())
