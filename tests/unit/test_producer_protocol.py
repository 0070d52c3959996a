"""The producer-warpgroup kernel's stage protocol (fused_forward_wgmma.WarpSpecializedWgmmaKernel),
as a model: which stage counts let every key tile through, and which deadlock.

The model follows the kernel's order of events (its class docstring):

* producer, tile t in stage t mod S: wait until the stage's *empty* barrier has completed the
  phase of tile t - S (the first round passes), issue tile t's copies, then publish tile t - 1
  (arrive on its *full* barrier); after the loop, publish the last tile;
* compute, tile j: wait for the stage's *full* barrier (tile j published), issue S_j, and once
  P_{j-1} V_{j-1} has completed arrive on tile j - 1's *empty* barrier.

Each side is sequential, so running each as far as it can until neither moves decides whether
all tiles get through. abi.wgmma_producer_stages never gives fewer than
abi.WGMMA_PRODUCER_MIN_STAGES; the model says why that minimum is 3, and
test_fused_forward_wgmma_ptx checks every producer layout's stage count with it.
"""

from __future__ import annotations

import pytest

from splat import abi


def flows(stages: int, tiles: int) -> bool:
    """Whether ``tiles`` key tiles pass the protocol with ``stages`` stages."""
    published, released = set(), set()  # tiles on their stage's full / empty barrier
    p_step, c_step = 0, 0  # the next action of each side
    # producer actions: ("load", t) for t < tiles, then ("publish", tiles - 1)
    # compute actions: ("compute", j) for j < tiles
    while p_step <= tiles or c_step < tiles:
        moved = False
        if p_step < tiles:  # load tile p_step, then publish the previous one
            t = p_step
            if t < stages or (t - stages) in released:
                if t > 0:
                    published.add(t - 1)
                p_step += 1
                moved = True
        elif p_step == tiles:  # the last tile's publish after the loop
            published.add(tiles - 1)
            p_step += 1
            moved = True
        if c_step < tiles and c_step in published:
            if c_step > 0:
                released.add(c_step - 1)  # P_{j-1} V_{j-1} done: its stage is free
            c_step += 1
            moved = True
        if not moved:
            return False
    return True


@pytest.mark.parametrize("tiles", [1, 2, 3, 5, 17])
def test_three_stages_or_more_let_every_tile_through_and_two_deadlock(tiles):
    for stages in range(abi.WGMMA_PRODUCER_MIN_STAGES, 7):
        assert flows(stages, tiles)
    # two stages: tile 2 waits for tile 0's stage, freed by compute at tile 1, which waits for
    # tile 1's publish, which follows tile 2's load
    assert flows(2, tiles) == (tiles <= 2)
