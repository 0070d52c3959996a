"""The tiler's cost model: what one row tile costs, in units of one unmasked key tile.

    cost(tile) = W_TILE + sum over segments (W_SEG + key tiles + W_MASKED * masked key tiles)
                        + mask tiles * (1 + W_MASKED + W_BITS)

and what one launch of a schedule costs (:func:`launch_cost`): its tiles, ``W_MASK_KERNEL`` more
per key tile when it runs the mask-capable kernel variant, and ``W_LAUNCH``.

The weights are measured, not guessed: ``benchmarks/calibrate_cost.py`` times schedules of
different make-up on the GPU (the same masks under each forced plan) and fits them; its output,
``cost_model.json`` beside this file, is committed and read here.  The file is checked before use
(a wrong or missing one is an error at import, never a silently different tiling).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

MODEL_FILE = Path(__file__).with_name("cost_model.json")
FORMAT = "splat-cost-model/1"


@dataclass(frozen=True)
class CostWeights:
    W_TILE: float    # a CTA: load Q, write O and lse, walk its tables
    W_SEG: float     # read a segment, set up its loop
    W_MASKED: float  # on top of a key tile: evaluate the element mask
    W_BITS: float    # on top of that: load a mask tile's bits
    W_MASK_KERNEL: float  # every key tile of a launch of the mask-capable kernel variant
    # a launch's fixed cost (start, tail, the acc kernel's read of o and lse), measured at the
    # calibration's batch x heads per SM: it weighs less against larger grids
    W_LAUNCH: float

    def __post_init__(self):
        for name, value in self.__dict__.items():
            if not (isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= 1e3):
                raise ValueError(f"{MODEL_FILE.name}: weight {name} must be a finite number in "
                                 f"[0, 1000], got {value!r}")


def load(path: Path = MODEL_FILE) -> CostWeights:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read the tiler's cost model {path}: {e}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file")
    w = data.get("weights")
    fields = CostWeights.__dataclass_fields__
    if not isinstance(w, dict) or not set(fields) <= set(w):
        raise ValueError(f"{path}: 'weights' must hold {', '.join(fields)}")
    return CostWeights(**{k: float(w[k]) if isinstance(w[k], (int, float)) and
                          not isinstance(w[k], bool) else w[k] for k in fields})


WEIGHTS = load()


def launch_cost(stats: dict, weights: CostWeights | None = None) -> float:
    """The model's cost of one launch over a schedule with these statistics
    (``TileSchedule.stats()``): the tile formula summed over its row tiles (``masked_key_tiles``
    counts the mask tiles too, hence ``W_BITS`` alone on those), the mask kernel's extra on
    every key tile when the schedule has mask tiles, and the launch's fixed cost."""
    w = weights or WEIGHTS
    tiles = (w.W_TILE * stats["tiles"] + w.W_SEG * stats["segments"] + stats["key_tiles"]
             + w.W_MASKED * stats["masked_key_tiles"] + w.W_BITS * stats["mask_tiles"])
    mask_kernel = w.W_MASK_KERNEL * stats["key_tiles"] if stats["mask_tiles"] else 0.0
    return tiles + mask_kernel + w.W_LAUNCH
