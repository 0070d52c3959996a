#!/usr/bin/env python3
"""Compare builds of the fused kernel on the GPU in one call: pack here, run there.

A *build* is a set of `splat.compile` options (instruction, K/V loads, tile shape) applied to
every benchmark layout. ``pack`` compiles the default build (``base``) and each named build with
``scripts/pack_gpu_artifacts.py --bench`` (one process per build, in parallel), and one build's
GPU-suite artifacts; ``run`` (on the GPU machine) checks and times them all in one
``bench_attention.py`` process (``--build NAME=DIR``: every build's kernels checked against fp64
and timed on the same inputs and card) and runs the GPU suite on the suite build, each step
under a time limit, so a hung kernel costs its step and not the call::

    python benchmarks/compare_builds.py pack --out .device/builds --builds ws64,wi64,ws128 \\
        --lengths 4096 --head-dims 128 --suite ws64 --tar            # where MLIR is
    tar xzf .device/builds.tar.gz -C /tmp && chmod -R go-w /tmp/builds
    PYTHONPATH=python python benchmarks/compare_builds.py run --dir /tmp/builds --out $OUT

``pack --calibrate`` also packs the cost model's calibration masks as the default and as each
build, and ``run`` times them after the bench (``calibration.tar.gz``), so one call gives both
the comparison and what ``calibrate_cost.py --fit-variants calib-base.json,calib-ws64.json
--write`` needs to let the tiler choose a build per layout.

Builds in ``EXPERIMENTS`` are experiments the compiler does not offer (ping-pong turns at 64-key
tiles, 128-key tiles without them, Q in registers, the interleaved layout, wgmma at D = 64):
each modifies a build and packs in a process with its switches set, so only its artifacts differ; the GPU side needs no switch
(artifacts describe themselves, and the runtime caches launchers by content, so a twin of the
same request key still runs its own kernels).

A build whose rows win on some layouts becomes a kernel variant by calibration
(``calibrate_cost.py --pack ... --mma wgmma --kv-loads producer``, ``--fit-variants``): the
tiler then picks it where it is measured faster (docs/design.md §3).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / "scripts" / "pack_gpu_artifacts.py"
CALIBRATE = ROOT / "benchmarks" / "calibrate_cost.py"

# name -> pack_gpu_artifacts.py options (the default build, "base", takes none)
BUILDS = {
    "wc32": ("--mma", "wgmma", "--kv-loads", "compute", "--block-n", "32"),
    "wc64": ("--mma", "wgmma", "--kv-loads", "compute", "--block-n", "64"),
    "wc128": ("--mma", "wgmma", "--kv-loads", "compute", "--block-n", "128"),
    "ws32": ("--mma", "wgmma", "--kv-loads", "producer", "--block-n", "32"),
    "ws64": ("--mma", "wgmma", "--kv-loads", "producer", "--block-n", "64"),
    "ws128": ("--mma", "wgmma", "--kv-loads", "producer", "--block-n", "128"),
    "sync128": ("--mma", "mma_sync", "--block-m", "128", "--warp-rows", "32"),
    # one compute warpgroup (64-row tiles) and the producer: at D = 256 its 64-key tiles fit
    # three stages (229 KiB, mask tiles included), which two warpgroups' 128 rows do not
    "wm32": ("--mma", "wgmma", "--kv-loads", "producer", "--block-n", "32", "--block-m", "64"),
    "wm64": ("--mma", "wgmma", "--kv-loads", "producer", "--block-n", "64", "--block-m", "64"),
}
_PING_PONG = "splat.lowering.fused_forward_wgmma:WarpSpecializedWgmmaKernel.PING_PONG"
_PING_PONG_BLOCK_N = \
    "splat.lowering.fused_forward_wgmma:WarpSpecializedWgmmaKernel.PING_PONG_BLOCK_N"
_WGMMA_DIMS = "splat.abi:WGMMA_HEAD_DIMS"
_Q_REGS = "splat.lowering.fused_forward_wgmma:WarpSpecializedWgmmaKernel.Q_IN_REGISTERS"
_SWIZZLE = "splat.lowering.fused_forward_wgmma:WgmmaForwardKernel.SWIZZLE"
# Experiments the compiler does not offer, as (the build they modify, switches set in its pack's
# process: module:attribute -> value): ping-pong turns between the compute warpgroups at 64-key
# tiles (the kernel takes them from 128), none at 128, Q's fragments in registers, the
# interleaved (unswizzled) tile layout, wgmma at D = 64. Their artifacts have their twin's
# request key; the runtime tells them apart by content.
EXPERIMENTS = {
    "pp64": ("ws64", {_PING_PONG: True}),
    "np128": ("ws128", {_PING_PONG_BLOCK_N: 1024}),  # ws128 without its ping-pong
    "wq64": ("ws64", {_Q_REGS: True}),
    "wq128": ("ws128", {_Q_REGS: True}),
    "wi64": ("ws64", {_SWIZZLE: False}),
    "wsx32": ("ws32", {_WGMMA_DIMS: [64, 128, 256]}),
    "wsx64": ("ws64", {_WGMMA_DIMS: [64, 128, 256]}),
    "wcx32": ("wc32", {_WGMMA_DIMS: [64, 128, 256]}),
}
PATCHES = {name: switches for name, (_, switches) in EXPERIMENTS.items()}
BUILDS.update({name: BUILDS[base] for name, (base, _) in EXPERIMENTS.items()})
PLAN_FILE = "builds.json"


def _names(spec: str) -> list[str]:
    names = [n for n in spec.split(",") if n]
    unknown = [n for n in names if n not in BUILDS]
    if unknown:
        raise SystemExit(f"--builds: unknown build {unknown[0]!r}; known: {', '.join(BUILDS)}")
    return names


def pack(args) -> int:
    out = Path(args.out)
    names = _names(args.builds)
    if args.suite and args.suite not in names:
        raise SystemExit(f"--suite {args.suite!r} must be one of --builds")
    out.mkdir(parents=True, exist_ok=True)
    keep = []
    for flag in ("lengths", "head_dims", "families"):
        if getattr(args, flag):
            keep += [f"--{flag.replace('_', '-')}", getattr(args, flag)]
    jobs = {"base": [*keep, "--bench"]}
    jobs.update({n: [*keep, "--bench", *BUILDS[n]] for n in names})
    if args.suite:  # the GPU suite's artifacts of that build (every family, dtype and mode)
        head_dims = ["--head-dims", args.head_dims] if args.head_dims else []
        jobs[f"suite-{args.suite}"] = [*head_dims, "--tests", *BUILDS[args.suite]]
    # experiments are left out: the tiler could not build them whatever they measure
    calibrated = ["base", *(n for n in names if n not in EXPERIMENTS)] if args.calibrate else []
    for n in calibrated:  # the cost model's calibration masks, built as that kernel variant
        jobs[f"calib-{n}"] = ["--plans", "auto", "--head-dims", args.head_dims,
                              *calibration_options(n), "--pack"]
    t0 = time.perf_counter()
    def command(name, argv):
        if name.startswith("calib-"):  # argv ends with --pack, which takes the folder
            return [sys.executable, str(CALIBRATE), *argv, str(out / name)]
        argv = [*argv, "--out", str(out / name)]
        build = name.removeprefix("suite-")
        if build in PATCHES:  # pack in a process with the build's switches set
            return [sys.executable, __file__, "pack-patched", json.dumps(PATCHES[build]), *argv]
        return [sys.executable, str(PACK), *argv]

    procs = {name: subprocess.Popen(command(name, argv),
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for name, argv in jobs.items()}
    failed = []
    for name, p in procs.items():
        log = p.communicate()[0]
        (out / f"{name}.pack.log").write_text(log)
        print(f"{name}: rc {p.returncode}; {log.strip().splitlines()[-1] if log.strip() else ''}")
        if p.returncode:
            failed.append(name)
    (out / PLAN_FILE).write_text(json.dumps(
        {"builds": {n: list(BUILDS[n]) for n in names},
         "patches": {n: PATCHES[n] for n in names if n in PATCHES}, "suite": args.suite,
         "calibrate": calibrated,
         "lengths": args.lengths, "head_dims": args.head_dims, "families": args.families},
        indent=1) + "\n")
    print(f"packed {len(jobs)} builds in {time.perf_counter() - t0:.0f}s into {out}")
    if args.tar:
        subprocess.run(["tar", "czf", f"{out}.tar.gz", "-C", str(out.parent), out.name],
                       check=True)
        print(f"wrote {out}.tar.gz")
    return 1 if failed else 0


def calibration_options(name: str) -> list[str]:
    """calibrate_cost.py --pack options of build ``name`` as a kernel variant: the default
    ("base") takes none; a wgmma build its options on abi.WGMMA_BLOCK_M-row tiles."""
    if name == "base":
        return []
    if name in EXPERIMENTS:
        raise SystemExit(f"--calibrate: {name!r} is an experiment the tiler cannot build; "
                         f"calibrate the builds it could choose")
    from splat import abi

    options = list(BUILDS[name])
    if "wgmma" in options and "--block-m" not in options:
        options += ["--block-m", str(abi.WGMMA_BLOCK_M)]
    return options


def apply_patches(patches: dict) -> None:
    """Set each ``module:attr.attr`` to its value (JSON lists become tuples)."""
    import importlib

    for target, value in patches.items():
        module, _, path = target.partition(":")
        obj = importlib.import_module(module)
        *owners, attr = path.split(".")
        for name in owners:
            obj = getattr(obj, name)
        if not hasattr(obj, attr):
            raise SystemExit(f"patch {target!r}: no such attribute")
        setattr(obj, attr, tuple(value) if isinstance(value, list) else value)


def pack_patched(patches_json: str, argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT / "python"))
    sys.path.insert(0, str(PACK.parent))
    apply_patches(json.loads(patches_json))
    import pack_gpu_artifacts

    return pack_gpu_artifacts.main(argv)


def _step(name: str, argv: list[str], limit: int, out: Path, env: dict) -> int:
    t0 = time.perf_counter()
    with open(out / f"{name}.log", "w") as log:
        try:
            rc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                timeout=limit).returncode
        except subprocess.TimeoutExpired:
            rc = 124
    print(f"== {name}: rc {rc} in {time.perf_counter() - t0:.0f}s (limit {limit}s)", flush=True)
    return rc


def run(args) -> int:
    d, out = Path(args.dir), Path(args.out)
    plan = json.loads((d / PLAN_FILE).read_text())
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
    start = time.perf_counter()

    def left(limit):
        return max(0, min(limit, int(args.budget - (time.perf_counter() - start))))

    bench = [sys.executable, str(ROOT / "benchmarks" / "bench_attention.py"), "--skip-flex",
             "--skip-sdpa-masked", "--no-markdown", "--artifacts", str(d / "base"),
             "--out-json", str(out / "bench.json")]
    for flag in ("lengths", "head_dims", "families"):
        if plan.get(flag):
            bench += ["--patterns" if flag == "families" else f"--{flag.replace('_', '-')}",
                      plan[flag]]
    bench += [x for n in plan["builds"] for x in ("--build", f"{n}={d / n}")]
    rcs = {"bench": _step("bench", bench, left(args.bench_limit), out, env)}
    if plan.get("suite") and left(args.suite_limit) >= 20:
        suite_env = dict(env, SPLAT_ARTIFACT_DIR=str(d / f"suite-{plan['suite']}"))
        rcs["suite"] = _step("suite", [sys.executable, "-m", "pytest", "-m", "gpu", "-q",
                                       "-p", "no:cacheprovider", "tests/gpu/test_gpu_attention.py",
                                       "-k", "fused"], left(args.suite_limit), out, suite_env)
    if plan.get("calibrate"):
        rcs["calibrate"] = calibrate(plan["calibrate"], d, out, env, left, args.calibrate_limit)
    if args.profile:
        rcs["profile"] = profile(args, d, out, env, left)
    if (out / "bench.json").exists():
        print(summary(json.loads((out / "bench.json").read_text()), list(plan["builds"])))
    return max(rcs.values())


def _tar_away(work: Path) -> None:
    """``work`` (a folder of results) as ``work.tar.gz`` beside it, the folder removed: the
    device tool returns few files."""
    with tarfile.open(work.parent / f"{work.name}.tar.gz", "w:gz") as tar:
        tar.add(work, arcname=work.name)
    shutil.rmtree(work)


def calibrate(names: list, d: Path, out: Path, env: dict, left, limit: int) -> int:
    """calibrate_cost.py --run on each build's calibration pack (base first: a variant's fit
    is relative to the default's, measured on the same card in the same call), the results
    tarred into ``out/calibration.tar.gz``. Fit them where the compiler is:
    ``calibrate_cost.py --fit-variants calib-base.json,calib-<build>.json --write``."""
    work = out / "calibration"
    work.mkdir(parents=True, exist_ok=True)
    rc = 0
    for n in names:
        step_env = dict(env, SPLAT_ARTIFACT_DIR=str(d / f"calib-{n}"))
        rc = max(rc, _step(f"calib-{n}", [sys.executable, str(CALIBRATE), "--run", "--out-json",
                                          str(work / f"calib-{n}.json")],
                           left(limit), work, step_env))
    _tar_away(work)
    return rc


def profile(args, d: Path, out: Path, env: dict, left) -> int:
    """``ncu`` (every section, SASS-level stall samples) of one forward call of each build of
    ``--profile`` (``base`` is the default build) per pattern of ``--profile-patterns``: the
    details and source pages as text, tarred into ``out/profile.tar.gz`` with the steps' logs
    (the reports themselves are large and stay behind)."""
    work = out / "profile"
    work.mkdir(parents=True, exist_ok=True)
    plan = json.loads((d / PLAN_FILE).read_text())
    ncu = shutil.which("ncu", path=env.get("PATH", os.environ.get("PATH")))
    rc = 0
    for name in args.profile.split(","):
        for pattern in args.profile_patterns.split(","):
            step = f"ncu-{name}-{pattern}"
            if ncu is None:
                (work / f"{step}.log").write_text("ncu is not on PATH\n")
                rc = 1
                continue
            rep = work / f"{name}-{pattern}"
            call = [sys.executable, str(ROOT / "benchmarks" / "profile_forward.py"), "--check",
                    "--artifacts", str(d / name), "--patterns", pattern,
                    "--lengths", plan.get("lengths", "4096").split(",")[0],
                    "--head-dims", plan.get("head_dims", "128").split(",")[0]]
            rc = max(rc, _step(step, [ncu, "--clock-control", "none", "--set", "full", "-k",
                                      "regex:splat_", "-f", "-o", str(rep), *call],
                               left(args.profile_limit), work, env))
            for page, extra in (("details", []),
                                ("source", ["--print-source", "sass", "--csv"])):
                with open(work / f"{name}-{pattern}-{page}.txt", "w") as f:
                    subprocess.run([ncu, "-i", f"{rep}.ncu-rep", "--page", page, *extra],
                                   stdout=f, stderr=subprocess.STDOUT, timeout=120)
            Path(f"{rep}.ncu-rep").unlink(missing_ok=True)
    _tar_away(work)
    return rc


def summary(rows: list[dict], names: list[str]) -> str:
    """One line a row: each build's kernel time as a multiple of the base build's (below 1:
    faster), and whether its check passed."""
    lines = ["pattern L D base_ms " + " ".join(names)]
    for r in rows:
        base = r.get("splat_fused_kernel_ms")
        cells = []
        for n in names:
            ms, ok = r.get(f"splat_{n}_kernel_ms"), r.get(f"splat_{n}_ok")
            cells.append("-" if not (ms and base) else
                         f"{ms / base:.2f}x" + ("" if ok else "(WRONG)"))
        lines.append(f"{r['pattern']} {r['L']} {r['D']} "
                     f"{base if base is None else round(base, 4)} " + " ".join(cells))
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["pack-patched"]:  # internal: one build's pack with its switches set
        return pack_patched(argv[1], argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("pack", help="compile the builds here (needs MLIR)")
    p.add_argument("--out", required=True)
    p.add_argument("--builds", default="ws64,wi64,ws128,wc32,pp64", help=f"of: {', '.join(BUILDS)}")
    p.add_argument("--suite", help="also pack the GPU suite's artifacts of this build")
    p.add_argument("--lengths", default="4096")
    p.add_argument("--head-dims", default="128")
    p.add_argument("--families", help="comma-separated benchmark families (default: all)")
    p.add_argument("--calibrate", action="store_true",
                   help="also pack the cost model's calibration masks as base and each build "
                        "(not the experiments)")
    p.add_argument("--tar", action="store_true")
    r = sub.add_parser("run", help="check and time the packed builds (needs the GPU)")
    r.add_argument("--dir", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--budget", type=int, default=540, help="seconds for every step together")
    r.add_argument("--bench-limit", type=int, default=300)
    r.add_argument("--suite-limit", type=int, default=200)
    r.add_argument("--calibrate-limit", type=int, default=120, help="seconds per build")
    r.add_argument("--profile", metavar="BUILD", help="also profile one call of each of these builds (comma-separated; ncu)")
    r.add_argument("--profile-patterns", default="dense,strided")
    r.add_argument("--profile-limit", type=int, default=120, help="seconds per pattern")
    args = ap.parse_args(argv)
    return pack(args) if args.mode == "pack" else run(args)


if __name__ == "__main__":
    sys.exit(main())
