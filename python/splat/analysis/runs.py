"""Step 2 of the analysis: each row split into maximal arithmetic runs.

Intervals of length >= 2 are stride-1 runs; consecutive singletons with equal gaps chain (greedily,
left to right) into stride-``s`` runs (dilated and strided patterns).  :func:`runs_from_intervals`
is the reference; :func:`splat.analysis.scan.runs_from_mask` finds the same runs on the packed
words of a dense mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .greedy import greedy_groups
from .intervals import Intervals
from .words import I64

_FIELDS = ("row", "off", "stride", "cnt")


@dataclass
class Runs:
    """Runs ``off, off + stride, ..., off + stride * (cnt - 1)`` of rows ``row``, sorted by
    (row, off)."""

    row: np.ndarray
    off: np.ndarray
    stride: np.ndarray  # 0 for runs of one element (any stride fits)
    cnt: np.ndarray
    # Vertical compression (runs_from_mask(compress=True)): rows left out are affine
    # continuations of the rows around them.  ``crow`` numbers the rows that are kept (empty
    # ones included) consecutively; ``gap`` marks runs whose row follows left-out rows.
    crow: np.ndarray | None = None
    gap: np.ndarray | None = None

    @staticmethod
    def empty() -> "Runs":
        z = np.zeros(0, dtype=I64)
        return Runs(z, z, z, z)

    @staticmethod
    def concat(parts: list["Runs"]) -> "Runs":
        """The runs of uncompressed parts, concatenated in the order given."""
        if len(parts) == 1:
            return parts[0]
        return Runs(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))

    def take(self, idx: np.ndarray) -> "Runs":
        """The runs at ``idx`` (uncompressed)."""
        return Runs(*(getattr(self, f)[idx] for f in _FIELDS))


def runs_from_intervals(iv: Intervals) -> Runs:
    """The runs of maximal intervals ``iv``: intervals of length >= 2 are runs of stride 1;
    singletons next to each other in a row chain greedily into runs of equal gaps."""
    length = iv.stop - iv.start
    single = length == 1
    stride = np.where(single, 0, 1)
    cnt = length.copy()
    is_start = ~single
    si = np.flatnonzero(single)
    if si.size:
        gap = np.zeros(si.size, dtype=I64)
        if si.size > 1:
            ok = (si[1:] == si[:-1] + 1) & (iv.row[si[1:]] == iv.row[si[:-1]])
            gap[:-1] = np.where(ok, iv.start[si[1:]] - iv.start[si[:-1]], 0)
        link = gap > 0
        same = np.zeros(si.size, dtype=bool)
        same[1:] = link[1:] & (gap[1:] == gap[:-1])
        g = greedy_groups(link, same)
        size = np.diff(np.append(g, si.size))
        heads = si[g]
        is_start[heads] = True
        cnt[heads] = size
        stride[heads] = np.where(size > 1, gap[g], 0)
    j = np.flatnonzero(is_start)
    return Runs(row=iv.row[j], off=iv.start[j], stride=stride[j], cnt=cnt[j])
