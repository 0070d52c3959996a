"""benchmarks/corpus_by_variant.py: each corpus row takes the time of the kernel variant that
splat.compile chooses, checked against the packed artifacts (small scale, fake GPU times)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

import splat

ROOT = Path(__file__).resolve().parents[2]
MASKS = "c19,c05"  # prefix-LM (dense tiles: 128 rows at D = 128) and strided & causal window
# each variant's pack options and the fake time its rows take
VARIANTS = {"m64w16": (["--block-m", "64", "--warp-rows", "16"], 0.5),
            "m128w32": (["--block-m", "128", "--warp-rows", "32", "--mma", "mma_sync"], 0.25),
            "m128w16-wgmma-producer": (["--mma", "wgmma", "--head-dims", "128"], 0.125)}


def _module(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def packs(tmp_path_factory):
    bc = _module("bench_corpus")
    out = {}
    for name, (options, _) in VARIANTS.items():
        d = tmp_path_factory.mktemp(name)
        assert bc.main(["--pack", str(d), "--scale", "0.125", "--masks", MASKS, *options]) == 0
        out[name] = d
    return out


def _run(pack: Path, ms: float, tmp_path: Path, name: str) -> Path:
    """A fake --run result: every row of the pack at ``ms``, Flex and SDPA+mask at 1 ms."""
    cat = json.loads((pack / "catalog.json").read_text())
    rows = [dict(mask=e["name"], D=e["D"], Lq=e["Lq"], Lk=e["Lk"], density=e["density"],
                 splat_ms=ms, splat_ok=True, flex_ms=1.0, sdpa_masked_ms=1.0)
            for e in cat["entries"]]
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"gpu": "Fake GPU", "date": "2026-12-07", "rows": rows}))
    return path


def test_rows_take_the_chosen_variants_time(packs, tmp_path):
    cbv = _module("corpus_by_variant")
    runs = [_run(packs[n], ms, tmp_path, n) for n, (_, ms) in VARIANTS.items()]
    out = tmp_path / "out.json"
    assert cbv.main(["--runs", ",".join(map(str, runs)),
                     "--packs", ",".join(str(packs[n]) for n in VARIANTS), "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 4
    bc = sys.modules["bench_corpus"]
    masks = {m.name: m for m in bc.corpus(0, 0.125)}
    for r in rows:
        art = splat.compile(splat.analyze(masks[r["mask"]].pattern()), head_dim=r["D"])
        chosen = splat.abi.kernel_variant_name(art.kernels[0])
        assert r["variant"] == chosen and r["splat_ms"] == VARIANTS[chosen][1]
        assert r["splat_m64w16_ms"] == 0.5 and r["splat_m128w32_ms"] == 0.25
        assert r["vs_best_peer"] == pytest.approx(1.0 / r["splat_ms"])


def test_a_choice_no_pack_holds_is_refused(packs, tmp_path):
    cbv = _module("corpus_by_variant")
    runs = [_run(packs["m128w32"], 0.25, tmp_path, "b")]
    with pytest.raises(SystemExit, match="no pack holds the compiler's choice"):
        cbv.main(["--runs", str(runs[0]), "--packs", str(packs["m128w32"]),
                  "--out", str(tmp_path / "x.json")])


def test_a_pack_that_is_not_the_compilers_choice_is_refused(packs, tmp_path):
    """A packed artifact whose schedule differs from what splat.compile gives now (another
    compiler, another table) must not lend its time to the row: every pack made stale in
    turn, each whose variant the compiler chooses for some row is refused."""
    cbv = _module("corpus_by_variant")
    runs = [_run(packs[n], ms, tmp_path, n) for n, (_, ms) in VARIANTS.items()]
    chosen = {r["variant"] for r in json.loads(_choose(cbv, runs, packs, tmp_path))["rows"]}
    assert chosen
    for name in chosen:
        stale = tmp_path / f"stale-{name}"
        stale.mkdir()
        cat = json.loads((packs[name] / "catalog.json").read_text())
        for e in cat["entries"]:
            e["stats"] = dict(e["stats"], key_tiles=e["stats"]["key_tiles"] + 1)
        (stale / "catalog.json").write_text(json.dumps(cat))
        dirs = [stale if n == name else packs[n] for n in VARIANTS]
        with pytest.raises(SystemExit, match=f"not the packed {name} one"):
            cbv.main(["--runs", ",".join(map(str, runs)), "--packs", ",".join(map(str, dirs)),
                      "--out", str(tmp_path / "x.json")])


def _choose(cbv, runs, packs, tmp_path) -> str:
    out = tmp_path / "chosen.json"
    assert cbv.main(["--runs", ",".join(map(str, runs)),
                     "--packs", ",".join(str(packs[n]) for n in VARIANTS), "--out", str(out)]) == 0
    return out.read_text()
