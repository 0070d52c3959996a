"""The tiler's cost model: what one row tile costs, in units of one unmasked key tile.

    cost(tile) = W_TILE + sum over segments (W_SEG + key tiles + W_MASKED * masked key tiles)
                        + mask tiles * (1 + W_MASKED + W_BITS)

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
