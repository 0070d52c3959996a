"""CPU tests of splat.runtime (artifact, cache, driver wrappers, launcher, validation, artifact
resolution) and the framework-independent parts of the entry points. No GPU, no CUDA driver,
no torch needed: the CUDA driver is replaced by a recording fake where a test needs one."""

from __future__ import annotations

import ctypes
import json
import math
import os
import subprocess
import sys
import threading
import types
from pathlib import Path

import numpy as np
import pytest

from splat.runtime import artifact as A
from splat.runtime import cache as C
from splat.runtime import driver as D
from splat.runtime import launcher as L
from splat.runtime import resolve as R
from splat import abi
from splat.runtime import validate as V
from splat.runtime.artifact import Artifact, ArtifactError
from splat.runtime.driver import MemRef, SplatCudaError
from splat.runtime.validate import SplatInputError, TensorDesc

# ----------------------------------------------------------------------------------- fixtures


def std_params(dtype="bf16"):
    return abi.fused_kernel_params(dtype)


def fake_ptx(name, specs):
    """A PTX text whose entry has the parameter list MLIR's lowering gives `specs`."""
    decl = []
    i = 0
    for p in specs:
        n = abi.num_ptx_params([p])
        ty = "u64" if p["kind"] == "memref" else ("f32" if p["kind"] == "f32" else "u32")
        for _ in range(n):
            decl.append(f"\t.param .{ty} {name}_param_{i}")
            i += 1
    return (".version 8.0\n.target sm_90a\n.address_size 64\n\n"
            f".visible .entry {name}(\n" + ",\n".join(decl) + "\n)\n{\n\tret;\n}\n")


def window_tables(Lq=130, w=8):
    """row tiles of 64 rows, one affine window segment each (design.md §2)."""
    rt, sg = [], []
    for r0 in range(0, Lq, 64):
        n = min(64, Lq - r0)
        col0 = max(0, r0 - w)
        last = min(Lq - 1, r0 + n - 1 + w)
        rt.append((r0, 1, n, len(sg), len(sg) + 1))
        sg.append((col0, 1, last - col0 + 1, 0, n, 1, r0 - w - col0, 1, r0 + w + 1 - col0))
    return np.array(rt, dtype=np.int32), np.array(sg, dtype=np.int32)


def make_artifact(dtype="bf16", D_=64, Lq=130, shared=36864, key="k" * 64, **manifest_extra):
    name = f"splat_fwd_{dtype}_d{D_}"
    params = std_params(dtype)
    rt, sg = window_tables(Lq)
    manifest = {
        "format": A.FORMAT, "compiler_version": "0.1.0", "key": key, "target": "sm_90a",
        "dtype": dtype, "head_dim": D_, "shapes": None, "scale": None,
        "kernels": [{"name": name, "ptx_file": f"{name}.ptx", "block": [128, 1, 1],
                     "shared_bytes": shared, "params": params, "grid": "row_tiles",
                     "tables": ["row_tiles", "segments"]}],
        "tables": {"row_tiles": {"file": "row_tiles.npy", "dtype": "int32", "shape": list(rt.shape)},
                   "segments": {"file": "segments.npy", "dtype": "int32", "shape": list(sg.shape)}},
        "acsr": "acsr Lq=130 Lk=130 pieces=0 remainder=0",
    }
    manifest.update(manifest_extra)
    return Artifact(manifest=manifest, ptx={f"{name}.ptx": fake_ptx(name, params)},
                    tables={"row_tiles": rt, "segments": sg})


# ----------------------------------------------------------------------------------- artifact


def test_save_load_round_trip(tmp_path):
    art = make_artifact()
    out = A.save(art, tmp_path / "a")
    assert out == tmp_path / "a"
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json", "row_tiles.npy", "segments.npy", "splat_fwd_bf16_d64.ptx"]
    back = A.load(out)
    assert back.manifest == json.loads((out / "manifest.json").read_text())
    assert back.manifest["kernels"] == art.manifest["kernels"]
    assert back.ptx == art.ptx
    for n in art.tables:
        assert back.tables[n].dtype == np.int32
        np.testing.assert_array_equal(back.tables[n], art.tables[n])
    assert back.key == "k" * 64 and back.head_dim == 64 and back.dtype == "bf16"
    assert back.path == out
    assert "splat_fwd_bf16_d64" in repr(back) and ".version" not in repr(back)


def test_a_copy_is_independent_of_its_artifact(tmp_path):
    """Artifact.copy: what the tampering tests edit; the original must not change with it."""
    art = A.load(A.save(make_artifact(), tmp_path / "a"))
    dup = art.copy()
    dup.manifest["kernels"][0]["block"][0] = 7
    dup.tables["row_tiles"][0, 0] = 99
    dup.ptx.clear()
    assert art.manifest["kernels"][0]["block"][0] != 7 and art.tables["row_tiles"][0, 0] != 99
    assert art.ptx and dup.path is None and art.path == tmp_path / "a"


def test_save_fills_table_metadata(tmp_path):
    art = make_artifact()
    art.manifest["tables"] = {}
    back = A.load(A.save(art, tmp_path / "a"))
    assert back.manifest["tables"]["segments"] == {"file": "segments.npy", "dtype": "int32",
                                                   "shape": [3, 9]}


def test_save_refuses_existing_and_overwrites(tmp_path):
    A.save(make_artifact(), tmp_path / "a")
    with pytest.raises(FileExistsError):
        A.save(make_artifact(), tmp_path / "a")
    A.save(make_artifact(key="z" * 64), tmp_path / "a", overwrite=True)
    assert A.load(tmp_path / "a").key == "z" * 64
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # no temp or old dirs left


def test_save_is_atomic_on_failure(tmp_path, monkeypatch):
    art = make_artifact()
    calls = {"n": 0}
    real_save = np.save

    def failing_save(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real_save(*a, **k)

    monkeypatch.setattr(A.np, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        A.save(art, tmp_path / "a")
    assert list(tmp_path.iterdir()) == []  # neither the target nor a temp dir


def test_save_rejects_bad_artifacts_without_leaving_files(tmp_path):
    art = make_artifact()
    art.tables["segments"] = art.tables["segments"].astype(np.int64)
    with pytest.raises(ArtifactError, match="int32"):
        A.save(art, tmp_path / "a")
    art = make_artifact()
    art.ptx.clear()
    with pytest.raises(ArtifactError, match="PTX file"):
        A.save(art, tmp_path / "b")
    art = make_artifact()
    art.manifest["kernels"][0]["ptx_file"] = "../evil.ptx"
    with pytest.raises(ArtifactError, match="plain file name"):
        A.save(art, tmp_path / "c")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("breakage, match", [
    (lambda d: (d / "manifest.json").unlink(), "no manifest.json"),
    (lambda d: (d / "manifest.json").write_text("{not json"), "not valid JSON"),
    (lambda d: _edit(d, lambda m: m.update(format="splat-artifact/0")), "unsupported artifact format"),
    (lambda d: _edit(d, lambda m: m.pop("format")), "unsupported artifact format None"),
    (lambda d: _edit(d, lambda m: m.pop("head_dim")), "missing field 'head_dim'"),
    (lambda d: (d / "splat_fwd_bf16_d64.ptx").unlink(), "splat_fwd_bf16_d64.ptx.*missing"),
    (lambda d: (d / "segments.npy").unlink(), "segments.npy.*missing"),
    (lambda d: (d / "segments.npy").write_bytes(b"garbage"), "not a readable .npy"),
    (lambda d: np.save(d / "segments.npy", np.zeros((3, 9), np.int64)), "dtype int64"),
    (lambda d: np.save(d / "segments.npy", np.zeros((2, 9), np.int32)), "shape"),
    (lambda d: _edit(d, lambda m: m["kernels"][0].update(grid=[0, 1, 1])), "'grid'"),
    (lambda d: _edit(d, lambda m: m["kernels"][0]["params"][0].update(kind="f64")), "kind"),
    (lambda d: _edit(d, lambda m: m["kernels"][0].update(tables=["nope"])), "'nope'"),
    (lambda d: _edit(d, lambda m: m["tables"]["segments"].update(file="/etc/passwd")), "plain file"),
])
def test_load_errors(tmp_path, breakage, match):
    d = A.save(make_artifact(), tmp_path / "a")
    breakage(d)
    with pytest.raises(ArtifactError, match=match):
        A.load(d)


def _edit(d, fn):
    m = json.loads((d / "manifest.json").read_text())
    fn(m)
    (d / "manifest.json").write_text(json.dumps(m))


def test_load_missing_directory(tmp_path):
    with pytest.raises(ArtifactError, match="not a directory"):
        A.load(tmp_path / "nope")


# ----------------------------------------------------------------------------------- content key


def test_content_key_is_stable():
    k1 = A.content_key(acsr="acsr Lq=4", shapes={"Lq": 4, "Lk": 4}, dtype="bf16", target="sm_90a",
                       compiler_version="0.1.0")
    k2 = A.content_key(compiler_version="0.1.0", target="sm_90a", dtype="bf16",
                       shapes={"Lk": np.int64(4), "Lq": 4}, acsr="acsr Lq=4")
    assert k1 == k2 and len(k1) == 64 and int(k1, 16) >= 0
    assert A.content_key(x=(1, 2)) == A.content_key(x=[1, 2])
    assert A.content_key(x=np.float32(0.5)) == A.content_key(x=0.5)
    # the canonical form is part of the on-disk cache's contract: changing it orphans caches
    assert A.canonical_json(b=1, a=[1, 2]) == '{"domain":"splat-content-key/1","parts":{"a":[1,2],"b":1}}'
    assert A.content_key(a=1) == "6b77dd67d81bac70502b5ff0e2dec1ef232d1f5f367e41adad1d92507310e932"
    # same in a fresh interpreter (no hash randomisation leaks in)
    code = ("from splat.runtime.artifact import content_key as c;"
            "print(c(acsr='acsr Lq=4', shapes={'Lq': 4, 'Lk': 4}, dtype='bf16', target='sm_90a',"
            " compiler_version='0.1.0'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "123"})
    assert out.stdout.strip() == k1


def test_content_key_is_sensitive():
    base = dict(acsr="acsr Lq=4 Lk=4", shapes={"Lq": 4, "Lk": 4}, dtype="bf16", head_dim=64,
                target="sm_90a", compiler_version="0.1.0")
    keys = {A.content_key(**base)}
    for field, value in [("acsr", "acsr Lq=4 Lk=5"), ("shapes", {"Lq": 4, "Lk": 5}),
                         ("dtype", "f16"), ("head_dim", 128), ("target", "sm_80"),
                         ("compiler_version", "0.1.1")]:
        keys.add(A.content_key(**{**base, field: value}))
    keys.add(A.content_key(**base, extra=None))
    assert len(keys) == 8
    a = np.arange(6, dtype=np.int32)
    b = a.copy()
    b[3] = 7
    assert A.content_key(t=a) != A.content_key(t=b)
    assert A.content_key(t=a) != A.content_key(t=a.reshape(2, 3))


def test_content_key_rejects_unstable_values():
    with pytest.raises(TypeError, match="object"):
        A.content_key(x=object())
    with pytest.raises(ValueError, match="finite"):
        A.content_key(x=float("nan"))
    with pytest.raises(TypeError, match="non-string key"):
        A.content_key(x={1: 2})


def test_artifact_key_includes_every_part():
    kw = dict(acsr="a", Lq=1, Lk=1, dtype="bf16", head_dim=64, target="sm_90a", compiler_version="v")
    k = A.artifact_key(**kw)
    assert k == A.content_key(acsr="a", shapes={"Lq": 1, "Lk": 1}, dtype="bf16", head_dim=64,
                              target="sm_90a", compiler_version="v")
    assert A.artifact_key(**kw, variant="decomposed") != k


# ----------------------------------------------------------------------------------- cache


# cache_env: tests/conftest.py


def test_cache_dir_default(monkeypatch):
    monkeypatch.delenv("SPLAT_CACHE_DIR", raising=False)
    assert C.cache_dir() == Path.home() / ".cache" / "splat"


KEY = "k" * 64  # make_artifact's key: a cache entry is looked up by its artifact's own key


def test_cache_hits(cache_env):
    builds = []

    def build():
        builds.append(1)
        return make_artifact()

    a1 = C.get_or_build(KEY, build)
    a2 = C.get_or_build(KEY, build)
    assert a1 is a2 and len(builds) == 1
    assert C.cache_info()["memory_hits"] == 1
    assert (cache_env / "artifacts" / KEY / "manifest.json").is_file()
    C.clear_memory_cache()  # a new process: the disk entry serves it
    a3 = C.get_or_build(KEY, build)
    assert len(builds) == 1 and C.cache_info()["disk_hits"] == 1
    assert a3.ptx == a1.ptx


def test_cache_discards_an_entry_holding_another_key(cache_env):
    C.get_or_build(KEY, make_artifact)
    C.clear_memory_cache()
    other = make_artifact(key="e" * 64)
    A.save(other, cache_env / "artifacts" / ("e" * 64))
    (cache_env / "artifacts" / KEY).rename(cache_env / "artifacts" / "moved")
    (cache_env / "artifacts" / ("e" * 64)).rename(cache_env / "artifacts" / KEY)  # swapped in
    builds = []
    with pytest.warns(RuntimeWarning, match="holds the artifact of key eeee"):
        art = C.get_or_build(KEY, lambda: builds.append(1) or make_artifact())
    assert builds == [1] and art.key == KEY
    assert A.load(cache_env / "artifacts" / KEY).key == KEY  # rebuilt in place


@pytest.mark.parametrize("error", [ValueError("bad npy header"), UnicodeDecodeError(
    "utf-8", b"\xff", 0, 1, "invalid start byte"), MemoryError("huge shape")])
def test_cache_evicts_an_entry_whatever_its_load_raises(cache_env, monkeypatch, error):
    C.get_or_build(KEY, make_artifact)
    C.clear_memory_cache()
    real_load = C.load
    monkeypatch.setattr(C, "load", lambda path: (_ for _ in ()).throw(error))
    builds = []
    with pytest.warns(RuntimeWarning, match=f"discarding unreadable entry .*{type(error).__name__}"):
        art = C.get_or_build(KEY, lambda: builds.append(1) or make_artifact())
    assert builds == [1] and art.key == KEY
    monkeypatch.setattr(C, "load", real_load)
    assert A.load(cache_env / "artifacts" / KEY).key == KEY  # the rebuilt entry


def test_cache_rebuilds_corrupt_entry(cache_env):
    C.get_or_build(KEY, make_artifact)
    C.clear_memory_cache()
    (cache_env / "artifacts" / KEY / "segments.npy").unlink()
    builds = []
    with pytest.warns(RuntimeWarning, match="discarding"):
        art = C.get_or_build(KEY, lambda: builds.append(1) or make_artifact())
    assert builds == [1] and A.load(cache_env / "artifacts" / KEY).tables.keys() == art.tables.keys()


def test_cache_concurrent_builders(cache_env):
    """Many threads miss the memory cache at once and all save: exactly one directory wins,
    nobody fails, no temp dirs remain."""
    barrier = threading.Barrier(8)
    results, errors = [], []

    def build():
        barrier.wait()
        return make_artifact()

    def worker():
        try:
            results.append(C.get_or_build(KEY, build, disk=True))
        except Exception as e:  # pragma: no cover - the failure being tested for
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({id(r) for r in results}) == 1  # the memory cache hands out one object
    assert sorted(p.name for p in (cache_env / "artifacts").iterdir()) == [KEY]
    A.load(cache_env / "artifacts" / KEY)


def test_cache_rejects_bad_keys_and_builds(cache_env):
    with pytest.raises(ValueError, match="cache key"):
        C.get_or_build("../x", make_artifact)
    with pytest.raises(TypeError, match="expected splat.runtime.Artifact"):
        C.get_or_build("x", lambda: 42)


def test_cache_unwritable_dir_keeps_memory_copy(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("SPLAT_CACHE_DIR", str(blocker))  # a file: mkdir under it fails
    C.clear_memory_cache()
    with pytest.warns(RuntimeWarning, match="memory only"):
        a = C.get_or_build("x", make_artifact)
    assert C.get_or_build("x", make_artifact) is a
    C.clear_memory_cache()


# ----------------------------------------------------------------------------------- params


def _read_params(arr, specs):
    """Read a packed parameter array back through its pointers."""
    out = []
    i = 0
    for p in specs:
        n = abi.num_ptx_params([p])
        for _ in range(n):
            addr = arr[i]
            if p["kind"] == "memref":
                out.append(ctypes.c_uint64.from_address(addr).value)
            elif p["kind"] == "f32":
                out.append(ctypes.c_float.from_address(addr).value)
            else:
                out.append(ctypes.c_int32.from_address(addr).value)
            i += 1
    return out


def test_pack_params_follows_memref_abi():
    specs = std_params()
    vals = {
        "q": MemRef(0x1000, (2, 4, 130, 64)), "k": MemRef(0x2000, (2, 2, 130, 64)),
        "v": MemRef(0x3000, (2, 2, 130, 64)), "o": MemRef(0x4000, (2, 4, 130, 64)),
        "lse": (0x5000, (2, 4, 130)), "row_tiles": (0x6000, (3, 5)), "segments": (0x7000, (3, 9)),
        "scale": 0.125,
    }
    arr = D.pack_params(specs, vals)
    assert len(arr) == D.param_count(specs) == 4 * 11 + 9 + 7 + 7 + 1 == 68
    got = _read_params(arr, specs)
    assert got[:11] == [0x1000, 0x1000, 0, 2, 4, 130, 64, 4 * 130 * 64, 130 * 64, 64, 1]
    assert got[11:22] == [0x2000, 0x2000, 0, 2, 2, 130, 64, 2 * 130 * 64, 130 * 64, 64, 1]
    assert got[44:53] == [0x5000, 0x5000, 0, 2, 4, 130, 4 * 130, 130, 1]
    assert got[53:60] == [0x6000, 0x6000, 0, 3, 5, 5, 1]
    assert got[60:67] == [0x7000, 0x7000, 0, 3, 9, 9, 1]
    assert got[67] == 0.125
    assert [f for f in arr.fields[:3]] == [("q", "allocated", 0x1000), ("q", "aligned", 0x1000),
                                           ("q", "offset", 0)]
    # same from a positional list
    arr2 = D.pack_params(specs, [vals[p["name"]] for p in specs])
    assert _read_params(arr2, specs) == got


def test_pack_params_keeps_scalars_alive():
    import gc

    specs = [{"name": "x", "kind": "memref", "rank": 1}, {"name": "n", "kind": "i32"}]
    arr = D.pack_params(specs, [(0xABC, (7,)), -5])
    gc.collect()
    junk = [ctypes.c_uint64(0xDEAD) for _ in range(1000)]  # would reuse freed memory
    assert _read_params(arr, specs) == [0xABC, 0xABC, 0, 7, 1, -5]
    del junk


def test_pack_params_strides_and_empty():
    spec = [{"name": "x", "kind": "memref", "rank": 2}]
    arr = D.pack_params(spec, [MemRef(0x10, (3, 4), (8, 2))])
    assert _read_params(arr, spec) == [0x10, 0x10, 0, 3, 4, 8, 2]
    arr = D.pack_params(spec, [MemRef(0, (0, 9))])  # empty memref: null allowed
    assert _read_params(arr, spec) == [0, 0, 0, 0, 9, 9, 1]
    assert len(D.pack_params([], [])) == 0


@pytest.mark.parametrize("specs, values, exc, match", [
    ([{"name": "q", "kind": "memref", "rank": 4}], [(1, (1, 2, 3))], ValueError, "rank 4 got 3 sizes"),
    ([{"name": "q", "kind": "memref", "rank": 1}], [(0, (5,))], ValueError, "null pointer"),
    ([{"name": "q", "kind": "memref", "rank": 1}], [(1, (-1,))], ValueError, "negative"),
    ([{"name": "q", "kind": "memref", "rank": 1}], [12], TypeError, "MemRef"),
    ([{"name": "s", "kind": "f32"}], [float("inf")], ValueError, "finite"),
    ([{"name": "n", "kind": "i32"}], [2**31], ValueError, "i32"),
    ([{"name": "n", "kind": "i32"}], [1.5], TypeError, "integer"),
    ([{"name": "n", "kind": "i32"}], [1, 2], ValueError, "1 parameters but 2 values"),
    ([{"name": "n", "kind": "i32"}], {"m": 1}, KeyError, "'n'"),
])
def test_pack_params_errors(specs, values, exc, match):
    with pytest.raises(exc, match=match):
        D.pack_params(specs, values)


def test_check_ptx_abi():
    specs = std_params()
    ptx = fake_ptx("kern", specs)
    assert D.ptx_entry_params(ptx, "kern") == ["u64"] * 67 + ["f32"]
    D.check_ptx_abi(ptx, "kern", specs)
    with pytest.raises(ValueError, match="declares 68 parameters.*expand to 61"):
        D.check_ptx_abi(ptx, "kern", specs[:-1][:-1] + [specs[-1]])
    with pytest.raises(ValueError, match="no .entry 'other'"):
        D.check_ptx_abi(ptx, "other", specs)
    bad = ptx.replace(".param .f32", ".param .u64")
    with pytest.raises(ValueError, match="parameter 67 is .u64, expected a 32-bit"):
        D.check_ptx_abi(bad, "kern", specs)


# ----------------------------------------------------------------------------------- driver errors


@pytest.fixture
def fresh_driver(monkeypatch):
    """Reset the driver wrapper's process state around a test. The launcher's ctypes hot
    path (`driver._load_hot_path`) goes through the (fake) bindings module instead."""
    for name, value in [("_driver_mod", None), ("_init_error", None), ("_initialised", False),
                        ("_primary", {}), ("_hot", None)]:
        monkeypatch.setattr(D, name, value)
    monkeypatch.setattr(D, "_load_hot_path", _hot_path_over_bindings)
    L._registry.clear()
    yield
    L._registry.clear()


def _fake_module(**funcs):
    from cuda.bindings import driver as real  # enums work without a driver

    mod = types.SimpleNamespace(CUresult=real.CUresult, CUjit_option=real.CUjit_option,
                                CUfunction_attribute=real.CUfunction_attribute,
                                CUdevice_attribute=real.CUdevice_attribute,
                                CUdeviceptr=lambda x=0: int(x), CUstream=lambda x=0: int(x),
                                cuGetErrorString=lambda e: (real.CUresult.CUDA_SUCCESS, b"described"))
    for k, v in funcs.items():
        setattr(mod, k, v)
    return mod


def test_no_cuda_bindings_package(fresh_driver, monkeypatch):
    monkeypatch.setitem(sys.modules, "cuda.bindings", None)
    monkeypatch.setitem(sys.modules, "cuda.bindings.driver", None)
    with pytest.raises(SplatCudaError, match="cuda-bindings package is not installed"):
        D.ensure_init()


def test_no_driver_library(fresh_driver, monkeypatch):
    class DynamicLibNotFoundError(RuntimeError):
        pass

    def cuInit(flags):
        raise DynamicLibNotFoundError('"cuda" is an NVIDIA driver library and can only be found via system search')

    monkeypatch.setattr(D, "_driver_mod", _fake_module(cuInit=cuInit))
    with pytest.raises(SplatCudaError, match="cuInit failed: no usable CUDA driver") as ei:
        D.ensure_init()
    assert ei.value.call == "cuInit" and ei.value.code is None
    with pytest.raises(SplatCudaError, match="no usable CUDA driver"):  # remembered
        D.device_count()


def test_cuinit_error_code(fresh_driver, monkeypatch):
    from cuda.bindings import driver as real

    monkeypatch.setattr(D, "_driver_mod", _fake_module(
        cuInit=lambda f: (real.CUresult.CUDA_ERROR_NO_DEVICE,)))
    with pytest.raises(SplatCudaError) as ei:
        D.ensure_init()
    e = ei.value
    assert (e.call, e.code, e.name) == ("cuInit", 100, "CUDA_ERROR_NO_DEVICE")
    assert "cuInit failed: CUDA_ERROR_NO_DEVICE (100)" in str(e) and "no usable CUDA driver" in str(e)


def test_real_bindings_without_driver(fresh_driver):
    """On this (GPU-less) machine the real bindings must give SplatCudaError, not a crash."""
    try:
        from cuda.bindings import driver as real
        real.cuInit(0)
        pytest.skip("a CUDA driver is present here")
    except ImportError:
        pass
    except Exception:
        pass
    with pytest.raises(SplatCudaError, match="cuInit failed"):
        D.ensure_init()
    with pytest.raises(SplatCudaError):
        L.get_launcher(make_artifact(), 0)


def test_launcher_without_driver_is_a_clear_error(fresh_driver, monkeypatch):
    monkeypatch.setattr(D, "_driver_mod", _fake_module(
        cuInit=lambda f: (_ for _ in ()).throw(OSError("libcuda.so.1: cannot open shared object file"))))
    with pytest.raises(SplatCudaError, match="libcuda.so.1"):
        L.Launcher(make_artifact(), 0)


# ----------------------------------------------------------------------------------- fake GPU


class FakeFunction(tuple):
    """A fake CUfunction: ``("fn", name)`` (as the tests read it) with an address (``int()``),
    as the launcher's raw hot path takes handles."""

    by_address: dict = {}

    def __new__(cls, name: str):
        fn = super().__new__(cls, ("fn", name))
        cls.by_address.setdefault(0xF000 + len(cls.by_address), fn)
        return fn

    def __int__(self):
        return next(a for a, f in self.by_address.items() if f == self)


def _hot_path_over_bindings():
    """`driver._load_hot_path` for the fake driver: the raw calls go to the bindings module."""
    d = D._driver()

    def launch(fn, gx, gy, gz, bx, by, bz, shared, stream, kp, extra):
        res = d.cuLaunchKernel(FakeFunction.by_address[fn], gx, gy, gz, bx, by, bz, shared,
                               stream, kp or 0, extra or 0)
        return int(res[0])

    def get_current(ref):
        res = d.cuCtxGetCurrent()
        ref._obj.value = int(res[1] or 0) or None
        return int(res[0])

    return D._HotPath(launch, get_current)


class FakeCuda:
    """Records what the runtime asks of the driver; memory is a dict of bytes."""

    def __init__(self, cc=(9, 0), optin=232448, fail=None, param_specs=None):
        from cuda.bindings import driver as real

        self.param_specs = param_specs or {}  # kernel name -> params (default: the fused ABI)
        self.async_allocs, self.async_frees = [], []

        self.real = real
        self.ok = real.CUresult.CUDA_SUCCESS
        self.cc, self.optin, self.fail = cc, optin, fail or {}
        self.mem, self.next_ptr = {}, 0x7000_0000
        self.launches, self.loaded, self.attrs, self.ctx_stack = [], [], [], []
        self.freed, self.unloaded = [], []

    def module(self):
        names = [n for n in dir(self) if n.startswith("cu")]
        m = _fake_module(**{n: getattr(self, n) for n in names})
        return m

    def _r(self, name, *vals):
        if name in self.fail:
            return (self.real.CUresult(self.fail[name]),) + tuple(None for _ in vals)
        return (self.ok,) + vals

    def cuInit(self, f):
        return self._r("cuInit")

    def cuDeviceGetCount(self):
        return self._r("cuDeviceGetCount", 1)

    def cuDeviceGet(self, i):
        return self._r("cuDeviceGet", i)

    def cuDeviceGetAttribute(self, attr, dev):
        A_ = self.real.CUdevice_attribute
        v = {A_.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: self.cc[0],
             A_.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: self.cc[1],
             A_.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: self.optin}[attr]
        return self._r("cuDeviceGetAttribute", v)

    def cuDevicePrimaryCtxRetain(self, dev):
        return self._r("cuDevicePrimaryCtxRetain", 0xC0)

    def cuCtxGetCurrent(self):
        return self._r("cuCtxGetCurrent", self.ctx_stack[-1] if self.ctx_stack else 0)

    def cuCtxPushCurrent(self, c):
        self.ctx_stack.append(c)
        return self._r("cuCtxPushCurrent")

    def cuCtxPopCurrent(self):
        return self._r("cuCtxPopCurrent", self.ctx_stack.pop())

    def cuModuleLoadDataEx(self, image, n, opts, vals):
        self.loaded.append(bytes(image))
        if "cuModuleLoadDataEx" in self.fail:
            vals[0][:20] = b"ptxas error: line 3\0"
        return self._r("cuModuleLoadDataEx", 0xD0 + len(self.loaded))

    def cuModuleGetFunction(self, mod, name):
        return self._r("cuModuleGetFunction",
                       FakeFunction(name.decode() if isinstance(name, bytes) else name))

    def cuFuncSetAttribute(self, fn, attr, value):
        self.attrs.append((fn, attr, value))
        return self._r("cuFuncSetAttribute")

    def cuMemAlloc(self, n):
        p = self.next_ptr
        self.next_ptr += (n + 255) // 256 * 256
        self.mem[p] = b"\0" * n
        return self._r("cuMemAlloc", p)

    def cuMemAllocAsync(self, n, stream):
        p = self.next_ptr
        self.next_ptr += (n + 255) // 256 * 256
        self.async_allocs.append((p, n, stream))
        return self._r("cuMemAllocAsync", p)

    def cuMemFreeAsync(self, p, stream):
        self.async_frees.append((int(p), stream))
        return self._r("cuMemFreeAsync")

    def cuMemcpyHtoD(self, dst, src, n):
        self.mem[int(dst)] = np.asarray(src).tobytes()[:n]
        return self._r("cuMemcpyHtoD")

    def cuMemFree(self, p):
        self.freed.append(int(p))
        return self._r("cuMemFree")

    def cuModuleUnload(self, m):
        self.unloaded.append(m)
        return self._r("cuModuleUnload")

    def cuLaunchKernel(self, fn, gx, gy, gz, bx, by, bz, shared, stream, kp, extra):
        self.launches.append(dict(fn=fn, grid=(gx, gy, gz), block=(bx, by, bz), shared=shared,
                                  stream=stream, kp=kp, extra=extra, ctx=list(self.ctx_stack)))
        if kp:  # read the params now, as the driver does
            specs = self.param_specs.get(fn[1], std_params())
            arr = (ctypes.c_void_p * D.param_count(specs)).from_address(kp)
            self.launches[-1]["values"] = _read_params(arr, specs)
        return self._r("cuLaunchKernel")


@pytest.fixture
def fake_cuda(fresh_driver, monkeypatch):
    fake = FakeCuda()
    monkeypatch.setattr(D, "_driver_mod", fake.module())
    return fake


def test_launcher_end_to_end_on_fake_driver(fake_cuda):
    art = make_artifact(shared=70000)  # > 48 KiB: needs the opt-in attribute
    with L.Launcher(art, 0) as lt:
        assert lt.n_tiles == 3 and lt.tile_Lq == 130
        # PTX loaded once, null-terminated; attribute set; tables uploaded
        assert len(fake_cuda.loaded) == 1 and fake_cuda.loaded[0].endswith(b"\0")
        assert [a[2] for a in fake_cuda.attrs] == [70000]
        stored = {tuple(np.frombuffer(b, np.int32)[:5]) for b in fake_cuda.mem.values()}
        assert tuple(art.tables["row_tiles"][0]) in stored
        shapes = L.Shapes(B=2, H=4, Hkv=2, Lq=130, Lk=130, D=64)
        lt.forward(0x1000, 0x2000, 0x3000, 0x4000, 0x5000, shapes, 0.125, stream=0x5151)
        (call,) = fake_cuda.launches
        assert call["grid"] == (3, 4, 2) and call["block"] == (128, 1, 1)
        assert call["shared"] == 70000 and call["stream"] == 0x5151 and call["extra"] == 0
        assert call["ctx"] == [0xC0]  # ran inside the primary context
        vals = call["values"]
        assert vals[:11] == [0x1000, 0x1000, 0, 2, 4, 130, 64, 4 * 130 * 64, 130 * 64, 64, 1]
        assert vals[11:14] == [0x2000, 0x2000, 0] and vals[14:18] == [2, 2, 130, 64]
        rt_ptr = vals[53]
        assert np.array_equal(np.frombuffer(fake_cuda.mem[rt_ptr], np.int32).reshape(3, 5),
                              art.tables["row_tiles"])
        assert vals[-1] == 0.125
        assert fake_cuda.ctx_stack == []  # pushed and popped
    assert len(fake_cuda.freed) == 2 and len(fake_cuda.unloaded) == 1
    with pytest.raises(RuntimeError, match="closed"):
        lt.forward(1, 1, 1, 1, 1, shapes, 1.0)


def test_launcher_shape_checks(fake_cuda):
    lt = L.Launcher(make_artifact(), 0)
    ok = dict(B=1, H=2, Hkv=2, Lq=130, Lk=130, D=64)
    for bad, match in [(dict(D=128), "head dim 128"), (dict(Hkv=3), "GQA"),
                       (dict(Lq=129), "covers Lq = 130"), (dict(Lk=100), "reads keys up to 129")]:
        with pytest.raises(ValueError, match=match):
            lt.forward(1, 1, 1, 1, 1, {**ok, **bad}, 1.0)
    with pytest.raises(ValueError, match="finite"):
        lt.forward(1, 1, 1, 1, 1, ok, float("nan"))
    lt.forward(0, 0, 0, 0, 0, {**ok, "B": 0}, 1.0)  # empty batch: nothing launched
    assert fake_cuda.launches == []
    lt.close()
    lt.close()  # idempotent


def test_launcher_refuses_wrong_arch_and_too_much_smem(fresh_driver, monkeypatch):
    fake = FakeCuda(cc=(8, 0))
    monkeypatch.setattr(D, "_driver_mod", fake.module())
    with pytest.raises(SplatCudaError, match="built for sm_90a.*8.0"):
        L.Launcher(make_artifact(), 0)
    fake = FakeCuda(optin=100000)
    monkeypatch.setattr(D, "_driver_mod", fake.module())
    with pytest.raises(SplatCudaError, match="needs 150000 bytes.*allows 100000"):
        L.Launcher(make_artifact(shared=150000), 0)
    assert fake.unloaded  # the half-built launcher cleaned up


def test_driver_error_names_call_and_code(fresh_driver, monkeypatch):
    fake = FakeCuda(fail={"cuModuleLoadDataEx": 218})
    monkeypatch.setattr(D, "_driver_mod", fake.module())
    with pytest.raises(SplatCudaError) as ei:
        L.Launcher(make_artifact(), 0)
    e = ei.value
    assert e.call == "cuModuleLoadDataEx" and e.name == "CUDA_ERROR_INVALID_PTX" and e.code == 218
    assert "JIT log: ptxas error: line 3" in str(e)
    fake = FakeCuda(fail={"cuLaunchKernel": 1})
    monkeypatch.setattr(D, "_driver_mod", fake.module())
    lt = L.Launcher(make_artifact(), 0)
    with pytest.raises(SplatCudaError, match=r"cuLaunchKernel failed: CUDA_ERROR_INVALID_VALUE \(1\).*grid=\(3, 1, 1\)"):
        lt.forward(1, 1, 1, 1, 1, dict(B=1, H=1, Hkv=1, Lq=130, Lk=130, D=64), 1.0)


def test_get_launcher_caches_per_context_and_key(fake_cuda):
    art = make_artifact()
    a = L.get_launcher(art, 0)
    assert L.get_launcher(art, 0) is a
    assert len(fake_cuda.loaded) == 1  # PTX JIT-loaded once
    b = L.get_launcher(make_artifact(key="b" * 64), 0)
    assert b is not a and len(fake_cuda.loaded) == 2
    a.close()
    assert L.get_launcher(art, 0) is not a
    L.close_all()


def test_check_artifact_static_errors():
    art = make_artifact()
    plan = L.check_artifact(art)
    assert plan == L.Plan(n_tiles=3, tile_Lq=130, min_Lk=130)
    bad = make_artifact()
    bad.manifest["kernels"][0]["params"] = bad.manifest["kernels"][0]["params"][:-1]
    with pytest.raises(ArtifactError, match="PTX declares 68 parameters"):
        L.check_artifact(bad)
    bad = make_artifact()
    bad.tables["row_tiles"] = bad.tables["row_tiles"][[0, 2]]
    bad.manifest["tables"]["row_tiles"]["shape"] = [2, 5]
    with pytest.raises(ArtifactError, match="do not partition"):
        L.check_artifact(bad)
    bad = make_artifact()
    bad.manifest["kernels"][0]["num_ptx_params"] = 60
    with pytest.raises(ArtifactError, match="num_ptx_params"):
        L.check_artifact(bad)
    bad = make_artifact()
    p = bad.manifest["kernels"][0]["params"]
    p[0] = {**p[0], "name": "query"}
    bad.ptx = {k: fake_ptx(bad.kernels[0]["name"], p) for k in bad.ptx}
    with pytest.raises(ArtifactError, match="'query' is neither"):
        L.check_artifact(bad)


def test_target_compatibility():
    assert abi.target_runs_on("sm_90a", (9, 0)) and not abi.target_runs_on("sm_90a", (10, 0))
    assert abi.target_runs_on("sm_80", (9, 0)) and not abi.target_runs_on("sm_90", (8, 9))


# ----------------------------------------------------------------------------------- validation


def desc(name, shape=(2, 4, 130, 64), dtype="bfloat16", dev="cuda", idx=0, contiguous=True):
    return TensorDesc(name, shape, dtype, dev, idx, contiguous)


def qkv(**over):
    d = {"q": desc("q"), "k": desc("k", (2, 2, 130, 64)), "v": desc("v", (2, 2, 130, 64))}
    for name, kw in over.items():
        d[name] = desc(name, **{**dict(shape=d[name].shape), **kw})
    return d["q"], d["k"], d["v"]


def test_validate_inputs_ok():
    shapes, dtype, dev = V.validate_inputs(*qkv())
    assert shapes == L.Shapes(2, 4, 2, 130, 130, 64) and dtype == "bf16" and dev == 0
    shapes, dtype, _ = V.validate_inputs(*qkv(q=dict(dtype="float16"), k=dict(dtype="half"),
                                              v=dict(dtype="torch.float16")))
    assert dtype == "f16"


@pytest.mark.parametrize("over, arg, match", [
    (dict(q=dict(dev="cpu", idx=None)), "q", "expected a CUDA tensor, got one on device 'cpu'"),
    (dict(k=dict(dev="cpu", idx=None)), "k", "CUDA tensor"),
    (dict(q=dict(shape=(4, 130, 64))), "q", "4 dimensions"),
    (dict(v=dict(dtype="float32")), "v", "dtype float32 is not supported"),
    (dict(k=dict(contiguous=False)), "k", "not contiguous"),
    (dict(k=dict(dtype="float16"), v=dict(dtype="float16")), "k", "differs from q's dtype"),
    (dict(v=dict(idx=1)), "v", "is on cuda:1 but q is on cuda:0"),
    (dict(k=dict(shape=(3, 2, 130, 64)), v=dict(shape=(3, 2, 130, 64))), "k", "batch size 3"),
    (dict(k=dict(shape=(2, 2, 130, 128)), v=dict(shape=(2, 2, 130, 128))), "k", "head dim 128"),
    (dict(v=dict(shape=(2, 2, 131, 64))), "v", "must equal k's shape"),
    (dict(k=dict(shape=(2, 3, 130, 64)), v=dict(shape=(2, 3, 130, 64))), "k", "GQA"),
])
def test_validate_inputs_errors(over, arg, match):
    with pytest.raises(SplatInputError, match=match) as ei:
        V.validate_inputs(*qkv(**over))
    assert ei.value.arg == arg and str(ei.value).startswith(f"{arg}: ")


def test_validate_against_artifact():
    art = make_artifact()
    shapes = L.Shapes(2, 4, 2, 130, 130, 64)
    V.validate_against_artifact(shapes, "bf16", art)
    cases = [
        (dict(dtype="f16"), "q", "dtype f16 but the artifact was built for bf16"),
        (dict(shapes=shapes._replace(D=128)), "q", "head dim 128"),
        (dict(shapes=shapes._replace(Lq=131)), "pattern", "covers Lq = 130"),
        (dict(shapes=shapes._replace(Lk=120)), "pattern", "reads key 129"),
    ]
    for over, arg, match in cases:
        kw = dict(shapes=shapes, dtype="bf16")
        kw.update(over)
        with pytest.raises(SplatInputError, match=match) as ei:
            V.validate_against_artifact(kw["shapes"], kw["dtype"], art)
        assert ei.value.arg == arg
    fixed = make_artifact(shapes={"B": None, "H": None, "Hkv": None, "Lq": 130, "Lk": 140})
    with pytest.raises(SplatInputError, match="built for Lk = 140"):
        V.validate_against_artifact(shapes, "bf16", fixed)
    pat = types.SimpleNamespace(Lq=130, Lk=150)
    with pytest.raises(SplatInputError, match="pattern has Lk = 150"):
        V.validate_against_artifact(shapes, "bf16", art, pat)


def test_default_scale():
    assert V.default_scale(None, 64) == 0.125
    assert V.default_scale(None, 64, make_artifact(scale=0.5)) == 0.5
    assert V.default_scale(2, 64) == 2.0
    with pytest.raises(SplatInputError, match="scale: must be finite"):
        V.default_scale(float("inf"), 64)
    with pytest.raises(SplatInputError, match="real number"):
        V.default_scale("x", 64)
    for bad in (0.0, -0.125, 1e39):  # compile refuses these too; so does a call
        with pytest.raises(SplatInputError, match="scale: must be > 0 and fit f32"):
            V.default_scale(bad, 64)


# ----------------------------------------------------------------------------------- resolution


def test_resolve_explicit_artifact(tmp_path):
    art = make_artifact()
    kw = dict(dtype="bf16", head_dim=64, Lq=130, Lk=130)
    assert R.resolve_artifact(None, artifact=art, **kw) is art
    assert R.resolve_artifact(art, **kw) is art
    A.save(art, tmp_path / "a")
    got = R.resolve_artifact(None, artifact=str(tmp_path / "a"), **kw)
    assert got.ptx == art.ptx
    assert R.resolve_artifact(None, artifact=tmp_path / "a", **kw) is got  # memoised
    with pytest.raises(SplatInputError, match="artifact: load: .* is not a directory"):
        R.resolve_artifact(None, artifact=str(tmp_path / "nope"), **kw)
    with pytest.raises(SplatInputError, match="pattern: required"):
        R.resolve_artifact(None, **kw)


def test_resolve_without_compiler_or_prebuilt(monkeypatch):
    monkeypatch.setenv("SPLAT_NO_COMPILE", "1")
    monkeypatch.delenv("SPLAT_ARTIFACT_DIR", raising=False)
    with pytest.raises(SplatInputError, match="MLIR is not installed here.*SPLAT_ARTIFACT_DIR"):
        R.resolve_artifact("acsr text", dtype="bf16", head_dim=64, Lq=130, Lk=130)


def test_resolve_prebuilt_by_content_key(tmp_path, monkeypatch):
    monkeypatch.setenv("SPLAT_NO_COMPILE", "1")
    monkeypatch.setenv("SPLAT_ARTIFACT_DIR", str(tmp_path))
    from splat.analysis.acsr import ACSR, Piece

    acsr = ACSR(130, 130, (Piece(0, 130, 1, 1, 1, 0, 0, 1),), None)  # the diagonal
    key = R.request_key(acsr, Lq=130, Lk=130, dtype="bfloat16", head_dim=64)
    assert key == A.artifact_key(acsr=acsr.to_text(), Lq=130, Lk=130, dtype="bf16", head_dim=64,
                                 target="sm_90a", compiler_version=R.compiler_version())
    with pytest.raises(SplatInputError, match=f"no prebuilt artifact.*{key}"):
        R.resolve_artifact(acsr, dtype="bf16", head_dim=64, Lq=130, Lk=130)
    A.save(make_artifact(key=key), tmp_path / key)
    got = R.resolve_artifact(acsr, dtype="bf16", head_dim=64, Lq=130, Lk=130)
    assert got.key == key
    # other sizes, dtype or head dim map to other keys
    assert R.request_key(acsr, Lq=130, Lk=130, dtype="f16", head_dim=64) != key
    assert R.request_key(acsr, Lq=130, Lk=130, dtype="bf16", head_dim=128) != key


def test_prebuilt_lookup_is_read_and_checked_once_per_manifest(tmp_path, monkeypatch):
    """A repeated lookup serves the artifact read and checked before (a stat, no directory
    checks); a manifest changed on disk since is read and checked again."""
    monkeypatch.setenv("SPLAT_NO_COMPILE", "1")
    monkeypatch.setenv("SPLAT_ARTIFACT_DIR", str(tmp_path))
    from splat.analysis.acsr import ACSR, Piece
    from splat.runtime import trust

    acsr = ACSR(130, 130, (Piece(0, 130, 1, 1, 1, 0, 0, 1),), None)
    req = dict(dtype="bf16", head_dim=64, Lq=130, Lk=130)
    key = R.request_key(acsr, **req)
    A.save(make_artifact(key=key), tmp_path / key)
    first = R.resolve_artifact(acsr, **req)

    def refuse(*a, **k):
        raise trust.UnsafePathError(tmp_path, "checked again")

    monkeypatch.setattr(trust, "check_tree", refuse)
    assert R.resolve_artifact(acsr, **req) is first
    manifest = tmp_path / key / "manifest.json"
    st = manifest.stat()
    os.utime(manifest, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(SplatInputError, match="checked again"):
        R.resolve_artifact(acsr, **req)


def test_resolve_refuses_another_requests_artifact_under_a_key(tmp_path, monkeypatch):
    monkeypatch.setenv("SPLAT_NO_COMPILE", "1")
    monkeypatch.setenv("SPLAT_ARTIFACT_DIR", str(tmp_path))
    from splat.analysis.acsr import ACSR, Piece

    acsr = ACSR(130, 130, (Piece(0, 130, 1, 1, 1, 0, 0, 1),), None)
    key = R.request_key(acsr, Lq=130, Lk=130, dtype="bf16", head_dim=64)
    A.save(make_artifact(key="d" * 64), tmp_path / key)  # another pattern's artifact
    with pytest.raises(SplatInputError, match=f"holds key {'d' * 64}, not {key}"):
        R.resolve_artifact(acsr, dtype="bf16", head_dim=64, Lq=130, Lk=130)


def test_resolve_compiles_once_through_the_cache(cache_env, monkeypatch):
    calls = []
    fake_compiler = types.ModuleType("splat.compiler")

    def compile(pattern, *, dtype, head_dim, target):
        calls.append((pattern, dtype, head_dim, target))
        return make_artifact()

    fake_compiler.compile = compile
    monkeypatch.setitem(sys.modules, "splat.compiler", fake_compiler)
    monkeypatch.setattr(R, "compiler_available", lambda: True)
    kw = dict(dtype="bfloat16", head_dim=64, Lq=130, Lk=130)
    a = R.resolve_artifact("acsr Lq=130 Lk=130 pieces=0 remainder=0", **kw)
    b = R.resolve_artifact("acsr Lq=130 Lk=130 pieces=0 remainder=0", **kw)
    assert a is b and calls == [("acsr Lq=130 Lk=130 pieces=0 remainder=0", "bf16", 64, "sm_90a")]
    assert len(list((cache_env / "artifacts").iterdir())) == 1


def test_layout_text_of_masks_and_patterns():
    from splat.analysis import analyze

    m = np.tri(50, dtype=bool)
    assert R.layout_text(m) == analyze(m).to_text()
    assert R.layout_text("anything") == "anything"
    with pytest.raises(TypeError):
        R.layout_text(object())


def test_runtime_imports_no_mlir():
    code = ("import sys, splat.runtime, splat.runtime.resolve, splat.runtime.launcher, splat.torch, "
            "splat.jax, splat.testing; "
            "bad = [m for m in sys.modules if m == 'mlir' or m.startswith('mlir.')]; "
            "assert not bad, bad; "
            "assert 'torch' not in sys.modules and 'jax' not in sys.modules and "
            "'cuda.bindings.driver' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------------- entry points


def test_torch_entry_rejects_cpu_tensors():
    torch = pytest.importorskip("torch")
    import splat.torch as st

    q = torch.zeros(1, 2, 64, 64, dtype=torch.bfloat16)
    with pytest.raises(SplatInputError, match="q: expected a CUDA tensor"):
        st.attention(q, q, q, "p", artifact=make_artifact())
    with pytest.raises(SplatInputError, match="k: expected a torch.Tensor"):
        st.attention(q, np.zeros(3), q, "p")


def test_jax_entry_rejects_non_gpu_arrays():
    jnp = pytest.importorskip("jax.numpy")
    import splat.jax as sj

    art = make_artifact()  # Lq = Lk = 130, D = 64, bf16
    x = jnp.zeros((1, 2, 130, 64), dtype=jnp.bfloat16)
    with pytest.raises(SplatInputError, match="q: expected an array on one CUDA GPU"):
        sj.attention(x, x, x, artifact=art)
    with pytest.raises(SplatInputError, match="k: expected a jax.Array"):  # checked first
        sj.attention(x, np.zeros((1, 2, 130, 64)), x, artifact=art)


# ----------------------------------------------------------------------------------- families


def test_family_predicates():
    from splat import testing as T

    fams = {f.name: f for f in T.TEST_FAMILIES}
    m = T.mask_numpy(fams["window"], 1000)
    assert m[500].sum() == 257 and m[0].sum() == 129 and (m == m.T).all()
    m = T.mask_numpy(fams["dilated"], 1000)
    assert np.flatnonzero(m[500]).tolist() == list(range(500 - 256, 500 + 257, 4))
    m = T.mask_numpy(fams["strided"], 1000)
    assert not np.triu(m, 1).any() and m[999].sum() == 128 + len(range(999 - 128, -1, -128))
    m = T.mask_numpy(fams["sparse_rows"], 3001)
    empty = ~m.any(axis=1)
    assert empty[64:128].all() and empty[2] and not empty[0]
    m = T.mask_numpy(fams["random_blocks"], 3001)
    blocks = m[:64].reshape(64, -1)  # the first row block: 3 column blocks, all rows alike
    assert (m[:64] == m[0]).all() and m[0].sum() == 3 * 64
    assert T.nnz(fams["causal"], 300) == 300 * 301 // 2
    m = T.mask_numpy(fams["global_tokens"], 1000)
    assert m[:16].all() and m[:, :16].all() and m[500].all() and m[:, 500].all()
    assert m[700].sum() == 17


def test_family_patterns_match_predicates():
    """When splat.patterns exists: every family's splat pattern has exactly the predicate's mask
    (the GPU reference and FlexAttention use the predicate)."""
    pytest.importorskip("splat.patterns")
    from splat import testing as T

    for fam in T.TEST_FAMILIES + T.BENCH_FAMILIES:
        pattern, route = T.build_pattern(fam, 1024)
        T.check_pattern(fam, pattern, 1024)


def test_torch_reference_matches_numpy():
    """The fp64 reference the GPU tests trust, on the CPU: GQA, empty rows, chunking."""
    torch = pytest.importorskip("torch")
    from splat import testing as T

    fam = {f.name: f for f in T.TEST_FAMILIES}["sparse_rows"]
    Lq, D = 300, 16
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 4, Lq, D, generator=g, dtype=torch.float64)
    k = torch.randn(2, 2, Lq, D, generator=g, dtype=torch.float64)
    v = torch.randn(2, 2, Lq, D, generator=g, dtype=torch.float64)
    o, lse, empty = T.reference_attention_torch(q, k, v, fam, 0.3, chunk=128)
    mask = T.mask_numpy(fam, Lq)
    assert np.array_equal(empty.numpy(), ~mask.any(axis=1)) and empty.any()
    qn, kn, vn = (x.numpy() for x in (q, k, v))
    for b in range(2):
        for h in range(4):
            s = qn[b, h] @ kn[b, h // 2].T * 0.3
            s = np.where(mask, s, -np.inf)
            m = s.max(axis=1, keepdims=True)
            ok = np.isfinite(m)[:, 0]
            p = np.exp(s - np.where(np.isfinite(m), m, 0))
            l = p.sum(axis=1, keepdims=True)
            want = np.where(ok[:, None], p @ vn[b, h // 2] / np.where(l > 0, l, 1), 0)
            np.testing.assert_allclose(o[b, h].numpy(), want, rtol=1e-12, atol=1e-12)
            want_lse = np.where(ok, (m + np.log(np.where(l > 0, l, 1)))[:, 0], -np.inf)
            np.testing.assert_allclose(lse[b, h].numpy(), want_lse, rtol=1e-12)
    # the heads slice
    o2, _, _ = T.reference_attention_torch(q, k, v, fam, 0.3, heads=slice(1, 3))
    torch.testing.assert_close(o2, o[:, 1:3])
    # torch predicate == numpy predicate (tables on a device)
    for f in T.TEST_FAMILIES + T.BENCH_FAMILIES:
        tm = T.mask_torch(f, 777, 0, 777, "cpu").numpy()
        assert np.array_equal(tm, T.mask_numpy(f, 777)), f


def test_ptx_param_parsing_with_qualifiers():
    """The PTX that MLIR's NVVM lowering emits qualifies pointer params (.ptr .align 1)."""
    ptx = (".visible .entry kern(\n\t.param .u64 .ptr .align 1 kern_param_0,\n"
           "\t.param .u64 kern_param_1,\n\t.param .align 64 .b8 kern_param_2[128],\n"
           "\t.param .f32 kern_param_3\n)\n{\n}\n")
    assert D.ptx_entry_params(ptx, "kern") == ["u64", "u64", "b8[128]", "f32"]
    assert D._param_bits("b8[128]") == 1024


def test_compiled_artifact_meets_the_runtime_contract(tmp_path):
    """Where MLIR is installed: a compiled artifact passes every launch check that needs no GPU,
    round-trips through save/load, and its key is the runtime's request key."""
    pytest.importorskip("mlir")
    compiler = pytest.importorskip("splat.compiler")
    patterns = pytest.importorskip("splat.patterns")

    pat = patterns.window(32, 200)
    for dtype, Dh in [("bf16", 64), ("f16", 128)]:
        art = compiler.compile(pat, dtype=dtype, head_dim=Dh)
        plan = L.check_artifact(art)
        assert plan.tile_Lq == 200 and plan.min_Lk == 200 and plan.n_tiles >= 4
        k = art.kernels[0]
        assert len(D.ptx_entry_params(art.ptx[k["ptx_file"]], k["name"])) == D.param_count(k["params"])
        assert art.key == R.request_key(pat, Lq=200, Lk=200, dtype=dtype, head_dim=Dh)
        back = A.load(A.save(art, tmp_path / art.key))
        assert L.check_artifact(back) == plan
        shapes = L.Shapes(2, 4, 2, 200, 200, Dh)
        V.validate_against_artifact(shapes, dtype, back, pat)
        with pytest.raises(SplatInputError, match="built for Lq = 200"):
            V.validate_against_artifact(shapes._replace(Lq=256), dtype, back, pat)


def decomposed_artifact(Lq=130):
    """(artifact, launch info) of the decomposed variant over a 5-wide band, with fake PTX."""
    from splat.analysis.acsr import ACSR, Piece
    from splat.tiling import decomposed as dec

    acsr = ACSR(Lq, Lq, (Piece(0, Lq, 1, 1, 0, 0, 0, 5),))
    info = dec.decomposed_launch_info("bf16", 64, acsr.max_row_nnz)
    tables = {n: np.ascontiguousarray(t, dtype=np.int32)
              for n, t in dec.decomposed_tables(acsr).items()}
    for k in info["kernels"]:
        k["ptx_file"] = f"{k['name']}.ptx"
    manifest = {
        "format": A.FORMAT, "compiler_version": "0.1.0", "key": "d" * 64, "target": "sm_90a",
        "dtype": "bf16", "head_dim": 64, "shapes": None, "scale": None, "variant": "decomposed",
        "kernels": info["kernels"], "scratch": info["scratch"],
        "tables": {n: {"file": f"{n}.npy", "dtype": "int32", "shape": list(t.shape)}
                   for n, t in tables.items()},
        "acsr": acsr.to_text(),
    }
    art = Artifact(manifest=manifest, tables=tables,
                   ptx={k["ptx_file"]: fake_ptx(k["name"], k["params"]) for k in info["kernels"]})
    return art, info


def test_decomposed_launches_three_kernels_with_stream_ordered_scratch(fresh_driver, monkeypatch):
    """grid "rows" = (ceil(Lq / rows_per_cta), H, B); the f32 score tensor is allocated and
    freed on the caller's stream around the three launches (sddmm, softmax, spmm)."""
    Lq = 130
    art, info = decomposed_artifact(Lq)
    fake = FakeCuda(param_specs={k["name"]: k["params"] for k in info["kernels"]})
    monkeypatch.setattr(D, "_driver_mod", fake.module())
    with L.Launcher(art, 0) as lt:
        assert lt.tile_Lq == Lq
        shapes = L.Shapes(B=2, H=4, Hkv=2, Lq=Lq, Lk=Lq, D=64)
        lt.forward(0x1000, 0x2000, 0x3000, 0x4000, 0x5000, shapes, 0.5, stream=0x77)
        assert [c["fn"][1] for c in fake.launches] == [k["name"] for k in info["kernels"]]
        for call, k in zip(fake.launches, info["kernels"]):
            assert call["grid"] == (-(-Lq // k["rows_per_cta"]), 4, 2)
            assert call["stream"] == 0x77
        ((scores, nbytes, stream),) = fake.async_allocs
        assert nbytes == 4 * 2 * 4 * Lq * info["score_width"] and stream == 0x77
        assert fake.async_frees == [(scores, 0x77)]
        sddmm, softmax, spmm = (c["values"] for c in fake.launches)
        assert sddmm[:2] == [0x1000, 0x1000] and sddmm[22:24] == [scores, scores]
        assert softmax[:2] == [scores, scores] and softmax[11:13] == [0x5000, 0x5000]
        assert spmm[11:13] == [0x3000, 0x3000] and spmm[22:24] == [0x4000, 0x4000]


def test_forward_with_scratch_allocates_nothing(fresh_driver, monkeypatch):
    """The torch op's launch: the caller's scratch pointer goes where `forward` puts its own
    stream-ordered allocation, and the only driver calls are the launches (capturable)."""
    Lq = 130
    art, info = decomposed_artifact(Lq)
    fake = FakeCuda(param_specs={k["name"]: k["params"] for k in info["kernels"]})
    monkeypatch.setattr(D, "_driver_mod", fake.module())
    with L.Launcher(art, 0) as lt:
        shapes = L.Shapes(B=2, H=4, Hkv=2, Lq=Lq, Lk=Lq, D=64)
        assert lt.scratch_shapes(shapes) == {"scores": (2, 4, Lq, info["score_width"])}
        lt.forward_with_scratch(0x1000, 0x2000, 0x3000, 0x4000, 0x5000, [0x9000], shapes, 0.5,
                                stream=0x77)
        assert fake.async_allocs == [] and fake.async_frees == []
        assert [c["stream"] for c in fake.launches] == [0x77] * 3
        sddmm, softmax, spmm = (c["values"] for c in fake.launches)
        assert sddmm[22:24] == [0x9000, 0x9000] and softmax[:2] == [0x9000, 0x9000]
        assert spmm[:2] == [0x9000, 0x9000] and sddmm[-1] == 0.5
        with pytest.raises(ValueError, match="1 scratch buffer"):
            lt.forward_with_scratch(1, 1, 1, 1, 1, [], shapes, 0.5)
        with pytest.raises(ValueError, match="null device pointer"):
            lt.forward_with_scratch(1, 1, 1, 1, 1, [0], shapes, 0.5)
        assert len(fake.launches) == 3
        lt.forward_with_scratch(0, 0, 0, 0, 0, [], shapes._replace(B=0), 0.5)  # empty batch
        assert len(fake.launches) == 3
    with pytest.raises(RuntimeError, match="closed"):
        lt.forward_with_scratch(1, 1, 1, 1, 1, [1], shapes, 0.5)
    assert lt.closed


def test_forward_with_scratch_of_a_fused_artifact(fake_cuda):
    with L.Launcher(make_artifact(), 0) as lt:
        shapes = L.Shapes(B=1, H=2, Hkv=2, Lq=130, Lk=130, D=64)
        lt.forward_with_scratch(0x1000, 0x2000, 0x3000, 0x4000, 0x5000, (), shapes, 0.125, 0x51)
        (call,) = fake_cuda.launches
        assert call["values"][:2] == [0x1000, 0x1000] and call["stream"] == 0x51
        assert fake_cuda.async_allocs == []


def test_strided_inputs_are_patched_per_call_and_dense_ones_restored(fake_cuda):
    """Strides given for q, k, v reach the kernel's descriptors; the next call without them
    (same problem size, same packed parameters) gets the contiguous strides back, and so does
    `forward`."""
    with L.Launcher(make_artifact(), 0) as lt:
        assert lt.strided_inputs
        shapes = L.Shapes(B=2, H=2, Hkv=1, Lq=130, Lk=130, D=64)
        view = ((130 * 4 * 64, 64, 4 * 64, 1), (130 * 4 * 64, 64, 4 * 64, 1),
                (130 * 4 * 64, 64, 4 * 64, 1))
        args = (0x1000, 0x2000, 0x3000, 0x4000, 0x5000, (), shapes, 0.125, 0x51)
        lt.forward_with_scratch(*args, strides=view)
        lt.forward_with_scratch(*args)
        lt.forward_with_scratch(*args, strides=view)
        lt.forward(*args[:5], shapes, 0.125, 0x51)
        q_strides = [c["values"][7:11] for c in fake_cuda.launches]
        k_strides = [c["values"][18:22] for c in fake_cuda.launches]
        dense_q, dense_k = [2 * 130 * 64, 130 * 64, 64, 1], [130 * 64, 130 * 64, 64, 1]
        assert q_strides == [list(view[0]), dense_q, list(view[0]), dense_q]
        assert k_strides == [list(view[1]), dense_k, list(view[1]), dense_k]
        with pytest.raises(ValueError, match="q has strides"):
            lt.forward_with_scratch(*args, strides=((8, 8, 8, 2),) + view[1:])


def test_request_key_analyses_a_pattern_object_once(monkeypatch):
    """Repeated calls with one Pattern object reuse its layout text (no re-analysis per call)."""
    from splat import patterns
    from splat.runtime import resolve

    calls = []
    real = resolve.layout_text
    monkeypatch.setattr(resolve, "layout_text", lambda p: calls.append(p) or real(p))
    pattern = patterns.window(8, 100)
    keys = {resolve.request_key(pattern, Lq=100, Lk=100, dtype="bf16", head_dim=64)
            for _ in range(3)}
    assert len(keys) == 1 and len(calls) == 1
    mask = pattern.mask()
    for _ in range(2):  # a mask may change between calls: never memoised
        resolve.request_key(mask, Lq=100, Lk=100, dtype="bf16", head_dim=64)
    assert len(calls) == 3


def test_split_kv_launches_the_accumulating_kernel_after_the_main_one(fresh_driver, monkeypatch):
    """A split-KV artifact (compiled here, PTX included): the fused kernel over row_tiles, then
    its accumulating variant over split_row_tiles (grid from that table), both on o / lse and
    the caller's stream, in that order; no scratch."""
    from splat import compile as splat_compile
    from splat import patterns

    Lq, B, H, Dh = 2048, 2, 4, 64
    art = splat_compile(patterns.strided(40, 32, Lq), head_dim=Dh, plan="affine")  # splits
    kernels = art.manifest["kernels"]
    assert [k["name"] for k in kernels] == ["splat_fwd_bf16_d64", "splat_fwd_bf16_d64_acc"]
    assert "scratch" not in art.manifest
    n_main, n_split = art.tables["row_tiles"].shape[0], art.tables["split_row_tiles"].shape[0]
    fake = FakeCuda(param_specs={k["name"]: k["params"] for k in kernels})
    monkeypatch.setattr(D, "_driver_mod", fake.module())
    with L.Launcher(art, 0) as lt:
        shapes = L.Shapes(B=B, H=H, Hkv=H, Lq=Lq, Lk=Lq, D=Dh)
        lt.forward(0x1000, 0x2000, 0x3000, 0x4000, 0x5000, shapes, 0.5, stream=0x77)
        main, acc = fake.launches
        assert [c["fn"][1] for c in (main, acc)] == [k["name"] for k in kernels]
        assert main["grid"] == (n_main, H, B) and acc["grid"] == (n_split, H, B)
        assert main["stream"] == acc["stream"] == 0x77 and fake.async_allocs == []
        for call in (main, acc):
            v = call["values"]
            assert v[:2] == [0x1000] * 2 and v[33:35] == [0x4000] * 2 and v[44:46] == [0x5000] * 2
        tables = {np.frombuffer(fake.mem[acc["values"][53]], np.int32).tobytes(),
                  np.frombuffer(fake.mem[acc["values"][60]], np.int32).tobytes()}
        assert tables == {art.tables["split_row_tiles"].tobytes(), art.tables["split_segments"].tobytes()}


def test_split_row_tiles_must_not_overlap():
    from splat import compile as splat_compile
    from splat import patterns

    art = splat_compile(patterns.strided(40, 32, 2048), head_dim=64, plan="affine")  # splits
    st = art.tables["split_row_tiles"]
    art.tables["split_row_tiles"] = np.concatenate([st, st[:1]])
    art.manifest["tables"]["split_row_tiles"]["shape"] = list(art.tables["split_row_tiles"].shape)
    with pytest.raises(A.ArtifactError, match="each at most once"):
        L.check_artifact(art)


# ------------------------------------------------------------------------- content identity


def test_artifacts_of_one_key_but_other_kernels_never_share_a_launcher_or_handle(
        fresh_driver, monkeypatch, tmp_path):
    """The request key names what was asked for, not what was built: a build with the
    compiler's switches set otherwise (compare_builds' experiments) or an edited copy has the
    same key. The launcher registry and the op handles go by content, so the second artifact
    runs its own kernels, and an identical copy still shares the first one's launcher."""
    from splat.runtime.prepared import handle_key

    art = make_artifact()
    twin = art.copy()
    twin.ptx = {name: text + "\n// built otherwise\n" for name, text in twin.ptx.items()}
    assert twin.key == art.key
    assert twin.identity != art.identity and handle_key(twin) != handle_key(art)
    assert art.copy().identity == art.identity  # same content, same identity
    A.save(art, tmp_path / "art")  # load takes it from the digests it checks
    assert A.load(tmp_path / "art").identity == art.identity

    made = []
    monkeypatch.setattr(D, "ensure_init", lambda: None)
    monkeypatch.setattr(D, "primary_context", lambda device: 7)
    monkeypatch.setattr(L, "Launcher", lambda a, device: made.append(a) or
                        types.SimpleNamespace(artifact=a, _closed=False))
    assert L.get_launcher(art).artifact is art
    assert L.get_launcher(twin).artifact is twin
    assert L.get_launcher(art.copy()).artifact is art
    assert made == [art, twin]
