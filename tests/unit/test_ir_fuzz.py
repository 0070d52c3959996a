"""Mutated IR through splat-opt never kills the process nor prints a traceback (issue 11).

Hypothesis draws a seed chunk of ``tests/lit`` (or of the corpus), up to three mutations
(byte flips, token deletions/duplications, number changes with huge and negative values,
truncation, attribute-parameter swaps, deep nesting, line splices) and a pipeline (parse
only, each splat pass, the whole ``splat-to-ptx``). The inputs run in one
``scripts/fuzz_ir.py --worker`` process that calls splat-opt's ``main`` on each in turn, so
a crash (abort, segfault) is seen as the worker's death and blamed on its input, and the
budget stays small (200 inputs, about 10 s). ``scripts/fuzz_ir.py -n 10000`` is the
long run.

``tests/corpus/ir/*.mlir`` are adversarial inputs kept from fuzzing and from issue 11; each
runs through every pipeline, and those naming ``// splat-opt-args:`` (and the non-text ones)
through the real ``splat-opt`` command. ``tests/corpus/ir/known-slow/`` holds inputs of
known, still open issues outside splat-opt (each file says which); they are not run here.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus" / "ir"

_spec = importlib.util.spec_from_file_location("fuzz_ir", ROOT / "scripts" / "fuzz_ir.py")
fuzz = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("fuzz_ir", fuzz)
_spec.loader.exec_module(fuzz)

POOL = fuzz.seeds()
VALID = fuzz.seeds(valid_only=True)
COMMENTED = fuzz.seeds(keep_comments=True)
MUTATORS = {
    "char": fuzz.m_char,
    "token-delete": fuzz.m_token_delete,
    "token-duplicate": fuzz.m_token_duplicate,
    "number": fuzz.m_number_bounded,  # no slow mid-range sizes in the CI budget
    "number-everywhere": fuzz.m_number_everywhere_bounded,
    "truncate": fuzz.m_truncate,
    "attr-params": fuzz.m_attr_params,
    "nest": fuzz.m_nest,
    "line": fuzz.m_line,
    "splice": lambda text, rng: fuzz.m_splice(text, rng, POOL),
}
FINDINGS = ("crash", "traceback", "internal", "pass-bug", "unlocated")


@pytest.fixture(scope="module")
def worker():
    w = fuzz.Worker(timeout=20.0)
    yield w
    w.close()


def _describe(result, text, pipeline) -> str:
    return (f"{result.kind} (rc={result.rc}) with pipeline {pipeline!r} on:\n{text[:3000]}\n"
            f"--- stderr ---\n{result.stderr[-3000:]}")


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(start=st.integers(0, 10**6), seeds=st.sampled_from(["valid", "any", "verify"]),
       mutations=st.lists(st.tuples(st.sampled_from(sorted(MUTATORS)), st.integers(0, 2**32)),
                          min_size=1, max_size=3),
       pipeline=st.sampled_from(sorted(fuzz.PIPELINES)))
def test_mutated_ir_never_crashes(worker, start, seeds, mutations, pipeline):
    """'verify' inputs keep the lit files' comments (expected-* directives) and run with
    --verify-diagnostics."""
    pool = {"valid": VALID, "any": POOL, "verify": COMMENTED}[seeds]
    text = pool[start % len(pool)]
    for name, seed in mutations:
        text = MUTATORS[name](text, random.Random(seed))
    flags = fuzz.case_args(text) + (("--verify-diagnostics",) if seeds == "verify" else ())
    result = worker.run(text, fuzz.PIPELINES[pipeline], flags)
    assert result.kind not in FINDINGS, _describe(result, text, pipeline)


def test_seeds_exist_and_parse(worker):
    assert len(VALID) >= 10 and len(POOL) > len(VALID)
    for text in VALID:
        result = worker.run(text, None)
        assert result.kind == "ok", _describe(result, text, "parse")


def _corpus():
    return sorted(CORPUS.glob("*.mlir")) + sorted(CORPUS.glob("*.bin"))


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.mlir")), ids=lambda p: p.name)
def test_corpus_through_every_pipeline(worker, path):
    text = path.read_text(encoding="utf-8")  # (*.bin, not text, go through the command line)
    for name, pipeline in fuzz.PIPELINES.items():
        result = worker.run(text, pipeline, fuzz.case_args(text))
        assert result.kind in ("ok", "error"), _describe(result, text, name)


def _run_command_line(path: Path) -> tuple[Path, subprocess.CompletedProcess]:
    args = []
    for line in path.read_bytes().split(b"\n")[:3]:
        if line.startswith(b"// splat-opt-args:"):
            args = line.split(b":", 1)[1].decode().split()
    return path, subprocess.run([sys.executable, "-m", "splat.tools.splat_opt", str(path),
                                 "-o", "-", *args], capture_output=True, timeout=120)


def _for_the_command_line(path: Path) -> bool:
    """Files that name their arguments, and those the worker cannot send (not UTF-8, NUL)."""
    data = path.read_bytes()
    return b"// splat-opt-args:" in data[:300] or b"\0" in data or path.suffix != ".mlir"


def test_corpus_through_the_command_line():
    """The real command, one process per file, with the arguments the file names (if any)."""
    paths = [p for p in _corpus() if _for_the_command_line(p)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(pool.map(_run_command_line, paths))
    for path, result in runs:
        stderr = result.stderr.decode("utf-8", "replace")
        assert result.returncode in (0, 1), f"{path.name}: rc={result.returncode}\n{stderr}"
        assert "Traceback" not in stderr, f"{path.name}:\n{stderr}"
        if result.returncode == 1:
            assert "error" in stderr, path.name
