"""benchmarks/compare_builds.py: packs the default build and each named one of the same
benchmark layouts (their manifests say which build), and its run reports each build against the
default without a GPU being needed to test the report."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import compare_builds as CB  # noqa: E402


def test_pack_builds_each_build_of_the_same_layouts(tmp_path):
    out = tmp_path / "builds"
    assert CB.main(["pack", "--out", str(out), "--builds", "ws64,sync128", "--families",
                    "window", "--lengths", "4096", "--head-dims", "128"]) == 0
    plan = json.loads((out / CB.PLAN_FILE).read_text())
    assert list(plan["builds"]) == ["ws64", "sync128"] and plan["suite"] is None
    kernels, options = {}, {}
    for name in ("base", "ws64", "sync128"):
        cat = json.loads((out / name / "catalog.json").read_text())
        (entry,) = cat["entries"]
        manifest = json.loads((out / name / entry["key"] / "manifest.json").read_text())
        kernels[name], options[name] = manifest["kernels"][0], manifest.get("options", {})
    assert options["base"] == {}  # the compiler's own choice of build
    assert options["ws64"]["mma"] == "wgmma" and options["sync128"]["block_m"] == 128
    assert (kernels["ws64"]["mma"], kernels["ws64"]["load_warpgroup"],
            kernels["ws64"]["block_n"]) == ("wgmma", True, 64)
    assert (kernels["sync128"]["block_m"], kernels["sync128"]["warp_rows"]) == (128, 32)


def test_unknown_builds_and_a_suite_outside_them_are_refused(tmp_path):
    with pytest.raises(SystemExit, match="unknown build 'ws65'"):
        CB.main(["pack", "--out", str(tmp_path / "x"), "--builds", "ws64,ws65"])
    with pytest.raises(SystemExit, match="--suite 'wc64' must be one of --builds"):
        CB.main(["pack", "--out", str(tmp_path / "x"), "--builds", "ws64", "--suite", "wc64"])


def test_summary_gives_each_build_as_a_multiple_of_the_default_and_flags_wrong_ones():
    rows = [dict(pattern="window", L=4096, D=128, splat_fused_kernel_ms=0.2,
                 splat_ws64_kernel_ms=0.1, splat_ws64_ok=True, splat_wc64_kernel_ms=0.3,
                 splat_wc64_ok=False),
            dict(pattern="dense", L=4096, D=128, splat_fused_kernel_ms=None)]
    text = CB.summary(rows, ["ws64", "wc64"]).splitlines()
    assert text[1] == "window 4096 128 0.2 0.50x 1.50x(WRONG)"
    assert text[2] == "dense 4096 128 None - -"


def test_run_without_a_gpu_fails_its_steps_and_still_reports(tmp_path):
    d = tmp_path / "builds"
    d.mkdir()
    (d / CB.PLAN_FILE).write_text(json.dumps({"builds": {"ws64": []}, "suite": None,
                                              "lengths": "4096", "head_dims": "128",
                                              "families": "window"}))
    out = tmp_path / "out"
    assert CB.main(["run", "--dir", str(d), "--out", str(out), "--budget", "60"]) != 0
    assert (out / "bench.log").exists()


def test_experimental_builds_are_packed_with_their_switches_set(tmp_path):
    """pp64 packs the producer kernel with ping-pong turns (warpgroup 1 hands warpgroup 0 the
    first turn: bar.arrive 2), np128 without them at 128-key tiles, wq64 with Q's fragments in registers, wi64 in the interleaved
    layout, wsx32 the wgmma kernel at a head dim the compiler refuses it
    (D = 64), each in its own process: this one's compiler is untouched."""
    from splat import abi

    def packed(name, head_dim):
        out = tmp_path / name
        assert CB.main(["pack", "--out", str(out), "--builds", name, "--families", "window",
                        "--lengths", "4096", "--head-dims", str(head_dim)]) == 0
        assert json.loads((out / CB.PLAN_FILE).read_text())["patches"] == {name: CB.PATCHES[name]}
        (entry,) = json.loads((out / name / "catalog.json").read_text())["entries"]
        art = out / name / entry["key"]
        kernel = json.loads((art / "manifest.json").read_text())["kernels"][0]
        return kernel, "".join(p.read_text() for p in art.rglob("*.ptx"))

    kernel, ptx = packed("pp64", 128)
    assert kernel["load_warpgroup"] and "bar.arrive 2, 256;" in ptx
    kernel, ptx = packed("np128", 128)  # 128-key tiles, their ping-pong switched off
    assert kernel["block_n"] == 128 and "bar.arrive 2, 256;" not in ptx
    kernel, ptx = packed("wq64", 128)  # Q's fragments by ldmatrix, S's A operand in registers
    assert kernel["load_warpgroup"] and "ldmatrix" in ptx
    assert re.search(r"m64n64k16\S* \{[^}]*\}, \{%r", ptx)
    kernel, ptx = packed("wi64", 128)  # interleaved tiles: no descriptor has a swizzle mode
    modes = {int(n) >> 62 for n in re.findall(r"or\.b64\s+%rd\d+, %rd\d+, (\d+);", ptx)}
    assert kernel["load_warpgroup"] and modes == {0}
    kernel, ptx = packed("wsx32", 64)
    assert kernel["mma"] == "wgmma" and "wgmma.mma_async" in ptx and "d64" in kernel["name"]
    assert abi.WGMMA_HEAD_DIMS == (128, 256)  # the patches stayed in the packs' processes
    with pytest.raises(SystemExit, match="no such attribute"):
        CB.apply_patches({"splat.abi:NO_SUCH_SWITCH": 1})


def test_profile_without_ncu_fails_its_step_and_still_returns_the_logs(tmp_path, monkeypatch):
    """--profile runs ncu per (build, pattern); where ncu is missing the step fails and its log
    comes back in profile.tar.gz (the run's other results are kept)."""
    import tarfile

    d = tmp_path / "builds"
    d.mkdir()
    (d / CB.PLAN_FILE).write_text(json.dumps({"builds": {}, "suite": None, "lengths": "4096",
                                              "head_dims": "128", "families": "dense"}))
    monkeypatch.setenv("PATH", str(tmp_path))  # no ncu on it
    out = tmp_path / "out"
    args = type("A", (), dict(profile="base", profile_patterns="dense", profile_limit=30))
    assert CB.profile(args, d, out, {}, lambda limit: limit) != 0
    with tarfile.open(out / "profile.tar.gz") as tar:
        assert "profile/ncu-base-dense.log" in tar.getnames()
    assert not (out / "profile").exists()


def test_profile_forward_refuses_layouts_the_pack_lacks(tmp_path):
    import profile_forward as PF

    (tmp_path / "catalog.json").write_text(json.dumps({"entries": []}))
    with pytest.raises(SystemExit, match="unknown family 'densest'"):
        PF.main(["--artifacts", str(tmp_path), "--patterns", "densest"])
    with pytest.raises(SystemExit, match="no bf16 artifact of dense at L=4096 D=128"):
        PF.main(["--artifacts", str(tmp_path), "--patterns", "dense"])
    with pytest.raises(SystemExit, match="no readable catalog.json"):
        PF.main(["--artifacts", str(tmp_path / "none")])


def test_calibration_packs_each_build_as_the_kernel_variant_the_tiler_would_price():
    """--calibrate packs the cost model's masks as the default (no options) and as each build:
    a wgmma build on abi.WGMMA_BLOCK_M-row tiles; experiments, which the tiler cannot build,
    are refused."""
    from splat import abi

    assert CB.calibration_options("base") == []
    assert CB.calibration_options("ws64") == [*CB.BUILDS["ws64"], "--block-m",
                                              str(abi.WGMMA_BLOCK_M)]
    assert CB.calibration_options("sync128") == list(CB.BUILDS["sync128"])
    with pytest.raises(SystemExit, match="'pp64' is an experiment the tiler cannot build"):
        CB.calibration_options("pp64")


def test_calibration_without_a_gpu_fails_its_steps_and_still_returns_the_logs(tmp_path):
    import tarfile

    d = tmp_path / "builds"
    d.mkdir()
    (d / CB.PLAN_FILE).write_text(json.dumps({"builds": {}, "suite": None, "lengths": "4096",
                                              "head_dims": "128", "families": "window",
                                              "calibrate": ["base"]}))
    out = tmp_path / "out"
    assert CB.main(["run", "--dir", str(d), "--out", str(out), "--budget", "60"]) != 0
    with tarfile.open(out / "calibration.tar.gz") as tar:
        assert "calibration/calib-base.log" in tar.getnames()


def test_one_compute_warpgroup_build_fits_64_key_tiles_at_head_dim_256(tmp_path):
    """wm64: 64-row tiles (one compute warpgroup) and the producer; at D = 256 its 64-key
    tiles fit three stages in sm_90a's shared memory, which 128-row tiles do not."""
    from splat import abi

    out = tmp_path / "builds"
    assert CB.main(["pack", "--out", str(out), "--builds", "wm64", "--families", "window",
                    "--lengths", "4096", "--head-dims", "256"]) == 0
    (entry,) = json.loads((out / "wm64" / "catalog.json").read_text())["entries"]
    (kernel,) = json.loads((out / "wm64" / entry["key"] / "manifest.json").read_text())["kernels"]
    assert (kernel["mma"], kernel["block_m"], kernel["block_n"], kernel["load_warpgroup"]) == (
        "wgmma", 64, 64, True)
    assert kernel["shared_bytes"] <= abi.MAX_SHARED_BYTES["sm_90a"]
