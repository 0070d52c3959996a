"""The compiler's output is pinned: every pattern family, both dtypes, D 64/128 and every kernel
variant (plain, masked, accumulating split-KV, decomposed) compile to the PTX, tables and
manifest recorded in ``tests/data/ptx_reference.json``.

The reference was generated before the tree was restructured (issue 9) so that the move is
shown to change nothing the GPU runs. A change that *means* to change the kernels regenerates it
on purpose, in its own commit, and says why:

    .venv/bin/python tests/unit/test_ptx_reference.py --write

Digests are sha256 of the PTX bytes, of each table's dtype/shape/bytes, and of the manifest
without its compiler-version fields (``compiler_version``, ``key``), which change with any source
edit by design.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import splat
from splat import patterns
from splat import testing as T

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "ptx_reference.json"
L = 2048
CONFIGS = [(dtype, head_dim) for dtype in ("bf16", "f16") for head_dim in (64, 128)]


def _irregular_mask() -> np.ndarray:
    """A random mask with Lq != Lk: analysed into a block remainder (the _masked kernel)."""
    rng = np.random.default_rng(9)
    return rng.random((700, 900)) < 0.05


@functools.cache
def cases() -> dict:
    """name -> (pattern, dtype, head_dim, variant)."""
    out = {}
    for dtype, head_dim in CONFIGS:
        for family in T.TEST_FAMILIES:
            pattern, _route = T.build_pattern(family, L)
            out[f"{family}/{dtype}/d{head_dim}/fused"] = (pattern, dtype, head_dim, "fused")
        out[f"irregular/{dtype}/d{head_dim}/fused"] = (_irregular_mask(), dtype, head_dim, "fused")
        # a layout that splits at every head dim (split-KV: the _acc kernel)
        out[f"split/{dtype}/d{head_dim}/fused"] = (patterns.strided(40, 32, L), dtype, head_dim,
                                                   "fused")
        for family in (T.TEST_FAMILIES[0], T.TEST_FAMILIES[10]):  # window, bigbird
            pattern, _route = T.build_pattern(family, 1024)
            out[f"{family}/{dtype}/d{head_dim}/decomposed"] = (pattern, dtype, head_dim,
                                                              "decomposed")
    return out


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest(artifact) -> dict:
    manifest = {k: v for k, v in artifact.manifest.items() if k not in ("compiler_version", "key", "content_sha256")}
    tables = {}
    for name, table in sorted(artifact.tables.items()):
        table = np.ascontiguousarray(table)
        tables[name] = _sha(f"{table.dtype.str}{table.shape}".encode() + table.tobytes())
    return {
        "kernels": [k["name"] for k in artifact.manifest["kernels"]],
        "ptx": {name: _sha(text.encode()) for name, text in sorted(artifact.ptx.items())},
        "tables": tables,
        "manifest": _sha(json.dumps(manifest, sort_keys=True).encode()),
    }


def compile_case(pattern, dtype: str, head_dim: int, variant: str):
    return splat.compile(pattern, dtype=dtype, head_dim=head_dim, variant=variant)


def _reference() -> dict:
    return json.loads(REFERENCE.read_text())


def test_reference_covers_every_kernel_variant():
    names = {n for entry in _reference().values() for n in entry["kernels"]}
    for dtype, head_dim in CONFIGS:
        base = f"splat_fwd_{dtype}_d{head_dim}"
        assert {base, base + "_masked", base + "_acc",
                f"splat_sddmm_{dtype}_d{head_dim}", f"splat_spmm_{dtype}_d{head_dim}"} <= names


@pytest.mark.parametrize("name", sorted(cases()))
def test_compiler_output_matches_reference(name):
    expected = _reference()[name]
    got = digest(compile_case(*cases()[name]))
    assert got["kernels"] == expected["kernels"]
    assert got["ptx"] == expected["ptx"], "PTX differs from the reference"
    assert got["tables"] == expected["tables"], "schedule tables differ from the reference"
    assert got["manifest"] == expected["manifest"], "manifest differs from the reference"


def write_reference() -> None:
    reference = {name: digest(compile_case(*case)) for name, case in sorted(cases().items())}
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    REFERENCE.write_text(json.dumps(reference, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(reference)} cases to {REFERENCE}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: test_ptx_reference.py --write")
    write_reference()
