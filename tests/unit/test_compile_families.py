"""Every pattern family compiles end to end, and its PTX assembles for sm_90a without spills."""

import numpy as np
import pytest

import splat
from splat import testing as T
from splat.lowering.to_ptx import ptxas_check
from splat.runtime.launcher import check_artifact

L = 333  # not a multiple of the tile


@pytest.mark.parametrize("family", T.TEST_FAMILIES, ids=str)
def test_family_compiles_to_ptx_that_assembles(family):
    pattern, _route = T.build_pattern(family, L)
    artifact = splat.compile(pattern, dtype="bf16", head_dim=64)
    # The launch plan checks the PTX parameter list against the manifest and that the row
    # tiles partition [0, Lq).
    plan = check_artifact(artifact)
    assert plan.tile_Lq == L
    report = ptxas_check(artifact.ptx["kernel.ptx"])
    for kernel, info in report.items():
        assert info["spill_stores"] == 0 and info["spill_loads"] == 0, (kernel, info)
    rows = np.zeros(L, dtype=int)
    for row0, step, nrows, _, _ in artifact.tables["row_tiles"].tolist():
        rows[row0 + step * np.arange(nrows)] += 1
    assert (rows == 1).all()
