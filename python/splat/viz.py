"""Pictures of ACSR decompositions: each piece in its own colour, the remainder in grey.

matplotlib is an optional extra and is imported only when a picture is drawn.

    python -m splat.viz FAMILY --L 256 -o out.png
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from .analysis.acsr import ACSR

__all__ = ["label_image", "plot", "family", "FAMILIES"]

_REMAINDER = -2
_EMPTY = -1


def label_image(a: ACSR) -> np.ndarray:
    """``int32 [Lq, Lk]``: the piece index covering each cell, ``-2`` for the remainder and
    ``-1`` for masked-out cells."""
    img = np.full((a.Lq, a.Lk), _EMPTY, dtype=np.int32)
    for n, p in enumerate(a.pieces):
        t = np.arange(p.T)
        cnt = np.maximum(p.counts(), 0)
        j = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        img[np.repeat(p.rows(), cnt), np.repeat(p.off_a * t + p.off_b, cnt) + p.stride * j] = n
    if a.remainder is not None:
        rem = a.remainder
        k, r, c = np.nonzero(rem.masks)
        img[rem.blocks[k, 0] * rem.block + r, rem.blocks[k, 1] * rem.block + c] = _REMAINDER
    return img


def plot(pattern_or_acsr, path, *, title: str | None = None, block: int = 64) -> ACSR:
    """Write a PNG of the mask with one colour per piece (remainder grey) to ``path``; returns
    the ACSR drawn.  Takes an ACSR, a Pattern or a bool mask."""
    try:
        import matplotlib  # noqa: PLC0415  (optional extra)
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
        from matplotlib.colors import ListedColormap  # noqa: PLC0415
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("splat.viz needs matplotlib (pip install matplotlib)") from e
    a, name = _as_acsr(pattern_or_acsr, block)
    img = label_image(a)
    n = max(len(a.pieces), 1)
    # Colours cycle through a qualitative map, shuffled so that neighbouring pieces differ.
    base = plt.get_cmap("tab20")(np.array([i for i in range(20) if i not in (14, 15)]))  # no greys
    order = np.random.default_rng(0).permutation(max(n, len(base))) % len(base)
    # index 0: remainder (grey), 1: masked out (white), 2..: pieces
    colours = np.concatenate([[[0.55, 0.55, 0.55, 1], [1, 1, 1, 1]], base[order[:n]]])
    rgb = ListedColormap(colours)(img - _REMAINDER)
    side = 6.0
    fig, ax = plt.subplots(figsize=(side, side * a.Lq / a.Lk + 0.6), dpi=110)
    ax.imshow(rgb, interpolation="nearest", aspect="equal")
    ax.set_xlabel("key k")
    ax.set_ylabel("query q")
    rem = a.remainder
    ax.set_title(title or f"{name}: {len(a.pieces)} pieces"
                 + (f", {rem.n} remainder blocks" if rem is not None else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return a


def _as_acsr(obj, block) -> tuple[ACSR, str]:
    if isinstance(obj, ACSR):
        return obj, f"ACSR {obj.Lq}x{obj.Lk}"
    from .analysis import analyze  # noqa: PLC0415
    name = getattr(obj, "name", "mask")
    return analyze(obj, block=block), name


def _families():
    from . import patterns as P  # noqa: PLC0415

    return {
        "window": lambda L: P.window(max(1, L // 16), L),
        "causal": lambda L: P.causal(L),
        "causal_window": lambda L: P.causal_window(max(1, L // 16), L),
        "dilated": lambda L: P.dilated(max(1, L // 64), 4, L),
        "strided": lambda L: P.strided(max(1, L // 16), max(1, L // 16), L),
        "fixed": lambda L: P.fixed(max(2, L // 8), max(1, L // 64), L),
        "blocked": lambda L: P.blocked(max(1, L // 8), L),
        "global_tokens": lambda L: P.global_tokens(range(max(1, L // 32)), L),
        "random_blocks": lambda L: P.random_blocks(max(1, L // 16), 2, 0, L),
        "longformer": lambda L: P.longformer(max(1, L // 16), range(max(1, L // 32)), L),
        "bigbird": lambda L: P.bigbird(max(1, L // 32), range(max(1, L // 32)), 2, max(1, L // 16), 0, L),
    }


FAMILIES = ("window", "causal", "causal_window", "dilated", "strided", "fixed",
           "blocked", "global_tokens", "random_blocks", "longformer", "bigbird")


def family(name: str, L: int):
    """The demo instance of a named family at size L (the parameters scale with L)."""
    fams = _families()
    if name not in fams:
        raise ValueError(f"unknown family {name!r}; expected one of {', '.join(FAMILIES)}")
    return fams[name](L)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m splat.viz",
                                 description="Draw the ACSR pieces of a named pattern family.")
    ap.add_argument("family", choices=FAMILIES)
    ap.add_argument("--L", type=int, default=256, help="sequence length (Lq = Lk)")
    ap.add_argument("-o", "--output", default=None, help="PNG path (default FAMILY.png)")
    ap.add_argument("--analyse", action="store_true",
                    help="run the general analysis on the materialised mask instead of the "
                         "pattern's analytic ACSR")
    args = ap.parse_args(argv)
    if args.L < 1:
        ap.error("--L must be >= 1")
    p = family(args.family, args.L)
    target = p.mask() if args.analyse else p
    out = args.output or f"{args.family}.png"
    a = plot(target, out, title=f"{p.name}, L={args.L}")
    print(f"{out}: {a.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
