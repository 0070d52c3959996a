#!/usr/bin/env python3
"""Build the backward kernels (issue 14) and their schedules for tests/gpu/test_gpu_backward.py,
here (where MLIR is), into one directory carried to the GPU machine.

    python scripts/pack_backward_kernels.py --out .device/backward
    python scripts/pack_backward_kernels.py --mma wgmma --out .device/backward-wgmma
    python scripts/pack_backward_kernels.py --mma wgmma --block-m 128 --head-dims 64,128 \
        --out .device/backward-wgmma128

Per case (a test family or an irregular mask, a head dim, bf16): ``<case>/kernels.ptx`` (the dQ
and dK/dV kernels), ``<case>/tables.npz`` (the row schedule's tables and the column
schedule's, the mask) and ``<case>/case.json`` (sizes, kernel names, block, shared memory,
grids). The GPU test checks the kernels' gradients against `splat.tiling.backward`'s dense
fp64 reference on fresh random inputs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

from splat import abi, analyze  # noqa: E402
from splat import testing as T  # noqa: E402
from splat.lowering.backward_kernels import (DkvConfig, DqConfig, build_dkv_into,  # noqa: E402
                                             build_dq_into)
from splat.lowering.modules import build_in_module  # noqa: E402
from splat.lowering.to_ptx import lower_to_ptx  # noqa: E402
from splat.tiling.backward import column_schedule  # noqa: E402
from splat.tiling.schedule import build_schedule  # noqa: E402

L = 512
FAMILIES = ("window", "causal", "dilated", "strided", "bigbird", "longformer", "random_blocks")


def masks() -> dict:
    out = {f.name: T.mask_numpy(f, L) for f in T.TEST_FAMILIES if f.name in FAMILIES}
    out["irregular"] = T.irregular_mask()  # Lq != Lk, mask tiles in both schedules
    return out


def _tables(sched, names: dict | None = None) -> dict:
    """The schedule's tables by kernel parameter name (``names``: the column schedule's,
    abi.COL_TABLES), as int32 device tables."""
    return {n: np.ascontiguousarray(t, dtype=np.int32)
            for n, t in sched.kernel_tables(names).items()}


def pack_case(out: Path, name: str, mask: np.ndarray, D: int, dtype: str = "bf16",
              mma: str = "mma_sync", block_m: int = abi.BACKWARD_BLOCK_M) -> dict:
    acsr = analyze(mask)
    bn = abi.backward_block_n(D)
    rows = build_schedule(acsr, block_m, bn, order="heavy_first")
    cols = column_schedule(acsr, block_m, bn)
    row_t, col_t = _tables(rows), _tables(cols, abi.COL_TABLES)
    kw = dict(mma=mma, block_m=block_m)
    dq = DqConfig(dtype, D, bn, mask_tiles="mask_ptr" in row_t, **kw)
    dkv = DkvConfig(dtype, D, bn, mask_tiles=abi.COL_TABLES["mask_ptr"] in col_t, **kw)

    def build(module):
        build_dq_into(module, dq)
        build_dkv_into(module, dkv)

    ptx = lower_to_ptx(build_in_module(None, build))
    case_dir = out / f"{name}-d{D}-{dtype}"
    case_dir.mkdir(parents=True, exist_ok=True)
    (case_dir / "kernels.ptx").write_text(ptx)
    np.savez(case_dir / "tables.npz", mask=mask, **row_t, **col_t)
    info = dict(name=name, Lq=int(mask.shape[0]), Lk=int(mask.shape[1]), D=D, dtype=dtype,
                mma=mma, block_m=block_m, block=[dq.forward().num_threads, 1, 1],
                dq=dict(kernel=dq.name, masked=dq.mask_tiles, shared_bytes=dq.shared_bytes,
                        params=abi.dq_kernel_params(dtype, dq.mask_tiles),
                        n_tiles=int(rows.row_tiles.shape[0])),
                dkv=dict(kernel=dkv.name, masked=dkv.mask_tiles, shared_bytes=dkv.shared_bytes,
                         params=abi.dkv_kernel_params(dtype, dkv.mask_tiles),
                         n_tiles=int(cols.row_tiles.shape[0])))
    (case_dir / "case.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / ".device" / "backward")
    ap.add_argument("--head-dims", default="64,128")
    ap.add_argument("--mma", choices=abi.MMA_KINDS, default="mma_sync",
                    help="the kernels' tensor-core instruction (wgmma: sm_90a)")
    ap.add_argument("--block-m", type=int, default=abi.BACKWARD_BLOCK_M,
                    help="rows a row tile (128: wgmma, head dims up to 128)")
    args = ap.parse_args(argv)
    for name, mask in masks().items():
        for D in (int(x) for x in args.head_dims.split(",")):
            info = pack_case(args.out, name, mask, D, mma=args.mma, block_m=args.block_m)
            print(f"{name} D={D}: {info['dq']['kernel']} ({info['dq']['n_tiles']} row tiles), "
                  f"{info['dkv']['kernel']} ({info['dkv']['n_tiles']} column tiles)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
