"""splat.compile: ordered stages, dumps, variants, and clear errors for bad arguments."""

import numpy as np
import pytest

import splat
from splat import patterns
from splat.runtime.resolve import request_key


def test_stages_are_dumped_in_order(tmp_path):
    splat.compile(patterns.window(16, 200), dtype="f16", head_dim=64, dump_dir=tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["0-analyze.mlir", "1-tile.mlir", "2-lower.mlir", "3-nvvm.mlir",
                     "4-ptx.mlir", "kernel.ptx"]
    assert "#splat.acsr<lq = 200" in (tmp_path / "0-analyze.mlir").read_text()
    assert "schedule(" in (tmp_path / "1-tile.mlir").read_text()
    assert "gpu.func @splat_fwd_f16_d64" in (tmp_path / "2-lower.mlir").read_text()
    assert "llvm.func @splat_fwd_f16_d64" in (tmp_path / "3-nvvm.mlir").read_text()
    assert "gpu.binary @splat_kernels" in (tmp_path / "4-ptx.mlir").read_text()


def test_dump_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SPLAT_DUMP_DIR", str(tmp_path / "env"))
    splat.compile(patterns.causal(64), head_dim=128)
    assert (tmp_path / "env" / "kernel.ptx").is_file()


@pytest.mark.parametrize("variant, kernels", [
    ("fused", ["splat_fwd_bf16_d64"]),
    ("decomposed", ["splat_sddmm_bf16_d64", "splat_softmax_bf16", "splat_spmm_bf16_d64"]),
])
def test_variants_and_content_keys(variant, kernels):
    pattern = patterns.window(8, 300)  # all affine (no mask tiles): the plain kernel
    artifact = splat.compile(pattern, variant=variant)
    assert [k["name"] for k in artifact.kernels] == kernels
    # The key is what the runtime computes for the same request, so prebuilt artifacts are found.
    assert artifact.key == request_key(pattern, Lq=300, Lk=300, dtype="bf16", head_dim=64,
                                       variant=variant)


def test_masks_and_acsr_are_accepted():
    mask = np.zeros((70, 90), dtype=bool)
    mask[::3, ::7] = True
    from_mask = splat.compile(mask)
    from_acsr = splat.compile(splat.analyze(patterns.from_mask(mask)))
    assert from_mask.key == from_acsr.key
    assert from_mask.kernels[0]["name"].endswith("_masked") == ("mask_ptr" in from_mask.tables)


@pytest.mark.parametrize("kwargs, match", [
    (dict(dtype="f32"), "dtype must be one of"),
    (dict(head_dim=96), "head_dim must be one of 64, 128, 256"),
    (dict(variant="sparse"), "variant must be one of"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        splat.compile(patterns.causal(64), **kwargs)


def _lowering_runs(monkeypatch):
    """Record the pipelines splat.compile runs; return the list of those that lower kernels."""
    from splat import compiler

    ran = []
    real = compiler.build_pass_manager

    def spy(text, *args, **kwargs):
        ran.append(text)
        return real(text, *args, **kwargs)

    monkeypatch.setattr(compiler, "build_pass_manager", spy)
    return ran


def _lowered(ran) -> list:
    return [t for t in ran if "convert-gpu-to-nvvm" in t or "gpu-module-to-binary" in t]


def test_a_new_mask_with_compiled_kernels_skips_the_mlir_lowering(monkeypatch, tmp_path):
    from splat.lowering import ptx_cache

    monkeypatch.setenv("SPLAT_CACHE_DIR", str(tmp_path))
    ptx_cache.clear_memory()
    ran = _lowering_runs(monkeypatch)
    first = splat.compile(patterns.window(16, 300), dtype="f16")
    assert len(_lowered(ran)) == 2  # nvvm and ptx stages
    ran.clear()
    # another mask, Lq != Lk, same kernel variant: analysis, tiling and emission only
    second = splat.compile(patterns.dilated(8, 2, 500, 700), dtype="f16")
    assert _lowered(ran) == [] and ran
    assert second.ptx == first.ptx and second.key != first.key
    assert ptx_cache.stats == {"hits": 1, "misses": 1}
    # another process finds the PTX on disk
    ptx_cache.clear_memory()
    ran.clear()
    assert splat.compile(patterns.causal(100), dtype="f16").ptx == first.ptx
    assert _lowered(ran) == []
    # another kernel variant (head dim) is lowered
    ran.clear()
    splat.compile(patterns.causal(100), dtype="f16", head_dim=128)
    assert len(_lowered(ran)) == 2


def test_tampered_kernel_cache_entries_are_rebuilt(monkeypatch, tmp_path):
    from splat.lowering import ptx_cache

    monkeypatch.setenv("SPLAT_CACHE_DIR", str(tmp_path))
    ptx_cache.clear_memory()
    good = splat.compile(patterns.window(16, 300)).ptx["kernel.ptx"]
    entries = list((tmp_path / "kernels").iterdir())
    assert len(entries) == 1
    ran = _lowering_runs(monkeypatch)
    for bad in (b"\xff\xfe not ptx", b".version 8.0\n// no entry here\n", b""):
        entries[0].write_bytes(bad)
        ptx_cache.clear_memory()
        ran.clear()
        assert splat.compile(patterns.window(16, 300)).ptx["kernel.ptx"] == good
        assert len(_lowered(ran)) == 2
        assert entries[0].read_text() == good  # rewritten


def test_dumping_runs_every_stage_even_with_cached_kernels(tmp_path):
    splat.compile(patterns.window(16, 200), dtype="f16", head_dim=64)
    splat.compile(patterns.window(16, 200), dtype="f16", head_dim=64, dump_dir=tmp_path)
    assert (tmp_path / "3-nvvm.mlir").is_file() and (tmp_path / "4-ptx.mlir").is_file()


_SUBPROCESS = """
import sys, splat
from splat import patterns
try:
    splat.compile(patterns.window(8, 100), **{kwargs})
except ValueError as e:
    print("ValueError:", e)
    sys.exit(3)
"""


@pytest.mark.parametrize("kwargs, match", [
    ("dict(target='sm_75')", "target must be one of"),
    ("dict(target='garbage')", "target must be one of"),
    ("dict(target='')", "target must be one of"),
    ("dict(target=None)", "target must be one of"),
    ("dict(target='sm_999')", "target must be one of"),
    ("dict(target='sm_100')", "target must be one of"),
    ("dict(target='sm_90a} , canonicalize')", "target must be one of"),
    ("dict(head_dim=64.0)", "head_dim must be one of 64, 128, 256"),
    ("dict(head_dim=True)", "head_dim must be one of 64, 128, 256"),
    ("dict(scale='x')", "scale must be a number"),
    ("dict(scale=0.0)", "scale must be finite, > 0"),
    ("dict(scale=-1.0)", "scale must be finite, > 0"),
    ("dict(scale=1e39)", "scale must be finite, > 0 and fit f32"),
    ("dict(scale=float('nan'))", "scale must be finite"),
    ("dict(block_n=48)", "block_n must be one of"),
])
def test_bad_compile_arguments_fail_cleanly_in_a_subprocess(kwargs, match):
    """Values that used to abort the interpreter inside LLVM (exit 134) or reach the bindings
    are refused with a named ValueError before any MLIR runs."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _SUBPROCESS.format(kwargs=kwargs)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 3, (out.returncode, out.stderr[-2000:])
    assert match in out.stdout


def test_numpy_integer_head_dims_are_accepted():
    artifact = splat.compile(patterns.window(8, 100), head_dim=np.int64(64))
    assert artifact.manifest["head_dim"] == 64 and type(artifact.manifest["head_dim"]) is int


def test_lengths_past_int32_are_refused_before_any_work(monkeypatch):
    from splat import compiler

    def no_analysis(*_):
        raise AssertionError("analysed a pattern the tables cannot index")

    monkeypatch.setattr(compiler, "_as_acsr", no_analysis)
    with pytest.raises(ValueError, match="Lq and Lk must be <= 2147483647"):
        splat.compile(patterns.window(4, 2**31 + 64))
