"""Tamper with saved artifacts and check that `splat.runtime.load` refuses every change of meaning.

    .venv/bin/python scripts/fuzz_artifacts.py [--cases 1000] [--seed 0] [--write-corpus]

Base artifacts: compiled ones of every kernel variant (fused, masked, split-KV, decomposed) where
MLIR is installed, else small hand-made ones (the corpus's). Each case copies a base directory,
applies one random mutation (PTX bytes, a manifest field, manifest bytes, a table value, .npy
bytes, a truncated, deleted, added or re-encoded file, a file made writable by others) and loads
the result. Outcomes:

- ``rejected``: `load` raised `ArtifactError`;
- ``accepted-equivalent``: it loaded, and manifest, PTX and tables equal the base's (e.g. the JSON
  was only re-indented, or a .npy re-encoded);
- ``accepted-different``: it loaded with another meaning. Must be 0;
- ``crashed``: any other exception. Must be 0.

A second phase changes table values *and* recomputes the digests (a writer who knows the format,
or a compiler bug), so only the runtime's own table checks stand in the way; what they accept is
replayed through the loop-by-loop safety model of tests/unit/test_runtime_trust.py
(``accepted-unsafe`` must be 0). ``--write-corpus`` (re)writes tests/corpus/artifacts/.
Exit status 1 if any must-be-0 count is not.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

from splat import abi  # noqa: E402
from splat.runtime import artifact as A  # noqa: E402
from splat.runtime import integrity  # noqa: E402
from splat.runtime import launcher as L  # noqa: E402
from splat.runtime.artifact import Artifact, ArtifactError  # noqa: E402

CORPUS = ROOT / "tests" / "corpus" / "artifacts"


# ------------------------------------------------------------------------------ base artifacts


def fake_ptx(name: str, params: list) -> str:
    """A PTX text whose entry declares the parameters MLIR's lowering gives `params`."""
    decl, i = [], 0
    for p in params:
        ty = "u64" if p["kind"] == "memref" else ("f32" if p["kind"] == "f32" else "u32")
        for _ in range(abi.num_ptx_params([p])):
            decl.append(f"\t.param .{ty} {name}_param_{i}")
            i += 1
    return (".version 8.0\n.target sm_90a\n.address_size 64\n\n"
            f".visible .entry {name}(\n" + ",\n".join(decl) + "\n)\n{\n\tret;\n}\n")


def small_artifact(Lq: int = 130, w: int = 8) -> Artifact:
    """A fused artifact of a window pattern with hand-made tables and a stub PTX (~3 KB)."""
    rt, sg = [], []
    for r0 in range(0, Lq, abi.BLOCK_M):
        n = min(abi.BLOCK_M, Lq - r0)
        col0 = max(0, r0 - w)
        last = min(Lq - 1, r0 + n - 1 + w)
        rt.append((r0, 1, n, len(sg), len(sg) + 1))
        sg.append((col0, 1, last - col0 + 1, 0, n, 1, r0 - w - col0, 1, r0 + w + 1 - col0))
    rt, sg = np.array(rt, np.int32), np.array(sg, np.int32)
    name = abi.fused_kernel_name("bf16", 64)
    params = abi.fused_kernel_params("bf16")
    block_n = abi.DEFAULT_BLOCK_N[64]
    manifest = {
        "format": A.FORMAT, "compiler_version": "fuzz", "key": A.content_key(fuzz="window", Lq=Lq),
        "target": "sm_90a", "dtype": "bf16", "head_dim": 64, "variant": "fused",
        "shapes": {"Lq": Lq, "Lk": Lq}, "scale": 0.125,
        "kernels": [{"name": name, "ptx_file": "kernel.ptx", "block": [abi.NUM_THREADS, 1, 1],
                     "shared_bytes": integrity.fused_shared_bytes(64, block_n, False),
                     "params": params, "num_ptx_params": abi.num_ptx_params(params),
                     "grid": "row_tiles", "tables": abi.fused_kernel_tables(),
                     "block_m": abi.BLOCK_M, "block_n": block_n}],
        "tables": {},
    }
    return Artifact(manifest=manifest, ptx={"kernel.ptx": fake_ptx(name, params)},
                    tables={"row_tiles": rt, "segments": sg})


def base_artifacts() -> dict:
    try:
        import splat.compiler  # noqa: F401, PLC0415
        from splat import compile as splat_compile  # noqa: PLC0415
        from splat import patterns  # noqa: PLC0415
    except ImportError:
        return {"small": small_artifact()}

    rng = np.random.default_rng(3)
    i, j = np.arange(150)[:, None], np.arange(170)[None, :]
    masked = (np.abs(i - j) <= 6) | (rng.random((150, 170)) < 0.04)
    # large enough that split-KV pays for its second launch (splat.tiling.split)
    split = splat_compile(patterns.strided(40, 32, 2048), head_dim=64)
    if len(split.kernels) < 2:
        raise RuntimeError("the tiler no longer splits strided(40, 32, 2048): pick a split base")
    return {
        "small": small_artifact(),
        "fused": splat_compile(patterns.window(16, 200), head_dim=64),
        "masked": splat_compile(masked, head_dim=64),
        "split": split,
        "decomposed": splat_compile(patterns.window(8, 100), head_dim=64, variant="decomposed"),
    }


def clone(art: Artifact) -> Artifact:
    """A deep copy to tamper with."""
    return Artifact(manifest=json.loads(json.dumps(art.manifest)), ptx=dict(art.ptx),
                    tables={n: np.array(t, copy=True) for n, t in art.tables.items()})


def same_meaning(a: Artifact, b: Artifact) -> bool:
    """Equal manifests, PTX and tables: what a tampered artifact that loads must still be."""
    return (a.manifest == b.manifest and a.ptx == b.ptx and a.tables.keys() == b.tables.keys()
            and all(a.tables[n].shape == b.tables[n].shape
                    and np.array_equal(a.tables[n], b.tables[n]) for n in a.tables))


# ------------------------------------------------------------------------------ mutations

_VALUES = [0, 1, -1, 2, 63, 64, 65, 127, 128, 2**31 - 1, -2**31, 2**31, 2**40, 0.5, -0.0, True,
           False, None, "", "x", "bf16", "row_tiles", [], {}, [1, 2, 3], {"a": 1}]


def json_leaves(obj, path=()):
    """Every (path, value) of a JSON document."""
    yield path, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from json_leaves(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from json_leaves(v, path + (i,))


def _flip(data: bytes, rnd: random.Random) -> bytes:
    b = bytearray(data)
    op = rnd.choice(["set", "xor", "insert", "delete", "truncate"])
    i = rnd.randrange(max(1, len(b)))
    if op == "set" and b:
        b[i] = rnd.randrange(256)
    elif op == "xor" and b:
        b[i] ^= 1 << rnd.randrange(8)
    elif op == "insert":
        b[i:i] = bytes([rnd.randrange(256)])
    elif op == "delete" and b:
        del b[i]
    else:
        del b[i:]
    return bytes(b)


def mutate(d: Path, rnd: random.Random) -> str:
    """One random mutation of the artifact directory `d`; returns its kind."""
    files = sorted(p.name for p in d.iterdir())
    npys = [f for f in files if f.endswith(".npy")]
    ptxs = [f for f in files if f.endswith(".ptx")]
    kind = rnd.choice(["ptx_bytes", "ptx_edit", "json_field", "json_field", "json_delete",
                       "json_add", "manifest_bytes", "manifest_reformat", "table_value",
                       "table_value", "table_shape", "npy_bytes", "npy_reencode", "delete_file",
                       "extra_file", "writable_file"])
    if kind == "ptx_bytes":
        p = d / rnd.choice(ptxs)
        p.write_bytes(_flip(p.read_bytes(), rnd))
    elif kind == "ptx_edit":  # a plausible hand edit: one instruction changed
        p = d / rnd.choice(ptxs)
        text = p.read_text()
        for a, b in (("ret;", "exit;"), ("add.s32", "sub.s32"), ("ld.global", "ld.global.nc"),
                     (".param .u64", ".param .u32"), ("mul.lo.s32", "mul.hi.s32")):
            if a in text:
                p.write_text(text.replace(a, b, 1))
                break
    elif kind.startswith("json"):
        m = json.loads((d / "manifest.json").read_text())
        leaves = list(json_leaves(m))[1:]
        path, _ = rnd.choice(leaves)
        parent = m
        for k in path[:-1]:
            parent = parent[k]
        if kind == "json_delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif kind == "json_add" and isinstance(parent, dict):
            parent[rnd.choice(["x", "extra", "grid", "scale", "tile_table"])] = rnd.choice(_VALUES)
        else:
            old = parent[path[-1]]
            if isinstance(old, int) and not isinstance(old, bool) and rnd.random() < 0.5:
                parent[path[-1]] = old + rnd.choice([-1, 1, -64, 64])
            else:
                parent[path[-1]] = rnd.choice(_VALUES)
        (d / "manifest.json").write_text(json.dumps(m))
    elif kind == "manifest_bytes":
        p = d / "manifest.json"
        p.write_bytes(_flip(p.read_bytes(), rnd))
    elif kind == "manifest_reformat":  # same content, other text
        m = json.loads((d / "manifest.json").read_text())
        (d / "manifest.json").write_text(json.dumps(m, indent=rnd.choice([None, 0, 2, 7]),
                                                    sort_keys=rnd.random() < 0.5))
    elif kind in ("table_value", "table_shape"):
        name = rnd.choice(npys)
        t = np.load(d / name)
        if kind == "table_shape" and t.ndim >= 1 and t.shape[0]:
            t = np.concatenate([t, t[rnd.randrange(t.shape[0])][None]])
        elif t.size:
            flat = t.reshape(-1)
            i = rnd.randrange(t.size)
            flat[i] = rnd.choice([-1, 0, 1, 63, 64, 65, 2**31 - 1, -2**31, int(flat[i]) + 1,
                                  int(flat[i]) - 1, rnd.randrange(-2**31, 2**31)])
        np.save(d / name, t)
    elif kind == "npy_bytes":
        p = d / rnd.choice(npys)
        p.write_bytes(_flip(p.read_bytes(), rnd))
    elif kind == "npy_reencode":  # same array, other encoding
        p = d / rnd.choice(npys)
        np.save(p, np.asfortranarray(np.load(p)))
    elif kind == "delete_file":
        (d / rnd.choice(files)).unlink()
    elif kind == "extra_file":  # not part of the artifact: ignored
        (d / rnd.choice(["notes.txt", "other.ptx", "x.npy"])).write_text("junk")
    else:  # writable by others: refused whatever the content
        os.chmod(d / rnd.choice(files), 0o666)
    return kind


# ------------------------------------------------------------------------------ the runs


def tamper_phase(bases: dict, n: int, rnd: random.Random, work: Path, corpus: list) -> tuple:
    counts = collections.Counter()
    by_kind = collections.defaultdict(collections.Counter)
    failures = []
    saved = {name: A.save(art, work / "bases" / name) for name, art in bases.items()}
    loaded = {name: A.load(p) for name, p in saved.items()}
    for i in range(n):
        name = rnd.choice(sorted(bases))
        d = work / f"case-{i}"
        shutil.copytree(saved[name], d)
        kind = mutate(d, rnd)
        keep = False
        try:
            got = A.load(d)
        except ArtifactError as e:
            outcome = "rejected"
            if (name == "small" and kind in ("ptx_edit", "json_field")
                    and not any(c[0] == f"tampered-{kind}" for c in corpus)):
                corpus.append((f"tampered-{kind}", d, str(e)))
                keep = True
        except Exception as e:  # noqa: BLE001 - what the fuzz is looking for
            outcome = "crashed"
            failures.append(f"{name}/{kind}: {type(e).__name__}: {e}")
        else:
            outcome = "accepted-equivalent" if same_meaning(got, loaded[name]) else "accepted-different"
            if outcome == "accepted-different":
                failures.append(f"{name}/{kind}: accepted with another meaning ({d})")
                keep = True
        counts[outcome] += 1
        by_kind[kind][outcome] += 1
        if not keep:
            shutil.rmtree(d, ignore_errors=True)
    return counts, by_kind, failures


def _safety_model():
    spec = importlib.util.spec_from_file_location(
        "trust_tests", ROOT / "tests" / "unit" / "test_runtime_trust.py")
    try:
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod._reference_safety
    except Exception:  # noqa: BLE001 - pytest or MLIR missing: the phase runs without the model
        return None


def rehash_phase(bases: dict, n: int, rnd: random.Random, work: Path, corpus: list) -> tuple:
    model = _safety_model()
    counts = collections.Counter()
    failures = []
    names = sorted(k for k, a in bases.items() if a.manifest.get("variant", "fused") == "fused")
    for i in range(n):
        name = rnd.choice(names)
        art = clone(bases[name])
        for _ in range(rnd.randint(1, 3)):
            t = art.tables[rnd.choice(sorted(art.tables))]
            if t.size:
                t.reshape(-1)[rnd.randrange(t.size)] = rnd.choice(
                    [-1, 0, 1, 2, 63, 64, 65, 199, 200, 2**31 - 1, -2**31])
        d = A.save(art, work / f"rehash-{i}")  # fresh, valid digests
        keep = False
        try:
            got = A.load(d)
        except ArtifactError as e:
            counts["rejected"] += 1
            rule = _rule(str(e))
            if name == "small" and len(corpus) < 8 and rule not in {_rule(c[2]) for c in corpus}:
                corpus.append((f"rehashed-{len(corpus)}", d, str(e)))
                keep = True
        except Exception as e:  # noqa: BLE001
            counts["crashed"] += 1
            failures.append(f"rehash {name}: {type(e).__name__}: {e}")
        else:
            try:
                if model is not None:
                    model(got, L.check_artifact(got))
                counts["accepted-safe" if model is not None else "accepted-unmodelled"] += 1
            except AssertionError:
                counts["accepted-unsafe"] += 1
                failures.append(f"rehash {name}: accepted but unsafe ({d})")
                keep = True
        if not keep:
            shutil.rmtree(d, ignore_errors=True)
    return counts, failures


def _rule(message: str) -> str:
    """The rule an error names, without the values (one corpus case per rule)."""
    import re  # noqa: PLC0415

    return re.sub(r"[-\d\[\], ]+", " ", message.split(": ", 1)[-1])[-60:]


def write_corpus(corpus: list) -> None:
    """Small adversarial cases, each ``<case>/artifact/`` + ``EXPECT`` (a regex of the error)."""
    import re  # noqa: PLC0415

    shutil.rmtree(CORPUS, ignore_errors=True)
    CORPUS.mkdir(parents=True)
    for name, d, message in corpus:
        case = CORPUS / name
        shutil.copytree(d, case / "artifact")
        os.chmod(case / "artifact", 0o755)
        # the error as a regex that holds wherever the corpus lives: paths and digests vary
        text = message.replace(str(d), "\0")[:160]
        pattern = re.escape(text).replace("\0", ".*")
        pattern = re.sub(r"[0-9a-f]{16}", "[0-9a-f]{16}", pattern)
        (case / "EXPECT").write_text(pattern + "\n")
    total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    print(f"wrote {len(corpus)} cases to {CORPUS} ({total / 1024:.1f} KiB)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1000, help="tampered artifacts (phase 1)")
    ap.add_argument("--rehash-cases", type=int, default=500, help="re-hashed tables (phase 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write-corpus", action="store_true")
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    t0 = time.perf_counter()
    bases = base_artifacts()
    corpus: list = []
    with tempfile.TemporaryDirectory(prefix="splat-fuzz-") as tmp:
        work = Path(tmp)
        counts, by_kind, failures = tamper_phase(bases, args.cases, rnd, work, corpus)
        rcounts, rfailures = rehash_phase(bases, args.rehash_cases, rnd, work, corpus)
        if args.write_corpus:
            write_corpus(corpus)
    print(f"bases: {', '.join(sorted(bases))}; seed {args.seed}; "
          f"{time.perf_counter() - t0:.1f} s")
    print(f"phase 1, tampered files ({args.cases} cases):")
    for outcome in ("rejected", "accepted-equivalent", "accepted-different", "crashed"):
        print(f"  {outcome:22s} {counts[outcome]}")
    print("  by mutation: " + "; ".join(
        f"{k} " + "/".join(f"{v}" for v in (c["rejected"], c["accepted-equivalent"]))
        for k, c in sorted(by_kind.items())) + "  (rejected/accepted-equivalent)")
    print(f"phase 2, table values changed with fresh digests ({args.rehash_cases} cases):")
    for outcome in ("rejected", "accepted-safe", "accepted-unmodelled", "accepted-unsafe", "crashed"):
        if outcome in rcounts or outcome in ("rejected", "accepted-unsafe", "crashed"):
            print(f"  {outcome:22s} {rcounts[outcome]}")
    for f in (failures + rfailures)[:20]:
        print("  FAIL", f)
    bad = counts["accepted-different"] + counts["crashed"] + rcounts["accepted-unsafe"] + rcounts["crashed"]
    print("OK: no tampered artifact accepted" if not bad else f"FAILED: {bad} cases")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
