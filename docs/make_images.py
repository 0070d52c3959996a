"""Draw the ACSR pieces of every named family for docs/acsr.md (PNG files under docs/img/).

    PYTHONPATH=python python docs/make_images.py [--L 192]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

from splat import viz  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--L", type=int, default=192)
    ap.add_argument("--out", default=str(ROOT / "docs" / "img"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in viz.FAMILIES:
        p = viz.family(name, args.L)
        path = out / f"acsr-{name}.png"
        a = viz.plot(p, path, title=f"{p.name}, L={args.L}")
        print(f"{path.relative_to(ROOT)}: {a.summary()}")
    # One irregular example, to show the remainder.
    import numpy as np  # noqa: PLC0415

    rng = np.random.default_rng(0)
    L = args.L
    m = viz.family("window", L).mask() | (rng.random((L, L)) < 0.01)
    path = out / "acsr-window-plus-noise.png"
    a = viz.plot(m, path, title=f"window | 1% random cells, L={L}", block=16)
    print(f"{path.relative_to(ROOT)}: {a.summary()}")


if __name__ == "__main__":
    main()
