#!/usr/bin/env python3
"""Train a tiny causal transformer language model twice: with SPLAT attention over a sliding
causal window, and with dense SDPA under the same boolean mask (issue 14). Same data, seed and
initial weights; the two loss curves should agree within noise.

    python examples/train_tiny_lm.py --device cuda --steps 300 --out-json runs.json \\
        --plot docs/img/train-tiny-lm.png

The corpus is synthetic and generated here (no download): sentences of a small word grammar
with a seeded Markov chain over words, as characters. The model is character-level: token and
position embeddings, ``--layers`` pre-norm blocks (`splat.testing.attention_model`'s shape),
a linear head; AdamW; bf16 weights and activations.

On a CUDA device SPLAT's forward and backward run its kernels (the backward artifact is found
on the first backward call, docs/runtime.md "Training"); on a GPU machine without MLIR, pack
both artifacts first where MLIR is and point ``SPLAT_ARTIFACT_DIR`` at them::

    python examples/train_tiny_lm.py --L 1024 --window 128 --pack .device/tiny-lm   # with MLIR
    SPLAT_ARTIFACT_DIR=.device/tiny-lm python examples/train_tiny_lm.py --L 1024 --window 128

On the CPU the op trains through its dense reference backward, slowly, which is what
`tests/unit/test_train_tiny_lm.py` runs for a few steps.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

WORDS = ("the", "cat", "dog", "sat", "ran", "on", "a", "mat", "log", "and", "then", "slept",
         "quickly", "under", "big", "small", "red", "tree", "house", "near")


def corpus(n_chars: int, seed: int = 0) -> str:
    """Sentences of WORDS drawn by a seeded first-order Markov chain (each word prefers a few
    successors), so the text has structure a small model can learn."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = len(WORDS)
    trans = rng.dirichlet(np.full(n, 0.3), size=n)  # sparse-ish preferences per word
    out, word = [], int(rng.integers(n))
    length = 0
    while length < n_chars:
        sentence = []
        for _ in range(int(rng.integers(4, 10))):
            sentence.append(WORDS[word])
            word = int(rng.choice(n, p=trans[word]))
        text = " ".join(sentence) + ". "
        out.append(text)
        length += len(text)
    return "".join(out)[:n_chars]


def build_model(vocab: int, L: int, dim: int, heads: int, layers: int, attention, seed: int):
    import torch

    from splat import testing as T

    torch.manual_seed(seed)

    class TinyLM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = torch.nn.Embedding(vocab, dim)
            self.pos = torch.nn.Embedding(L, dim)
            self.blocks = T.attention_model(attention, dim=dim, heads=heads, layers=layers,
                                            seed=seed)
            self.norm = torch.nn.LayerNorm(dim)
            self.head = torch.nn.Linear(dim, vocab)

        def forward(self, idx):
            x = self.tok(idx) + self.pos.weight[None, : idx.shape[1]]
            return self.head(self.norm(self.blocks(x)))

    return TinyLM()


def train(kind: str, args, data, vocab: int) -> list[float]:
    """Losses per step of one run; ``kind`` is 'splat' or 'sdpa' (same everything else)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    import splat.torch as st
    from splat import patterns

    dev = torch.device(args.device)
    pattern = patterns.causal_window(args.window, args.L)
    mask = torch.from_numpy(pattern.mask().copy()).to(dev)
    head_dim = args.dim // args.heads
    if kind == "splat":
        attention = st.prepare(pattern, head_dim=head_dim, dtype=torch.bfloat16)
    else:
        def attention(q, k, v):  # SDPA's default scale: 1/sqrt(head_dim), as SPLAT's
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    model = build_model(vocab, args.L, args.dim, args.heads, args.layers, attention,
                        args.seed).to(dev, torch.bfloat16)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)  # the same batches for both runs
    losses = []
    for step in range(args.steps):
        starts = rng.integers(0, len(data) - args.L - 1, size=args.batch)
        chunk = np.stack([data[s:s + args.L + 1] for s in starts])
        x = torch.from_numpy(chunk[:, :-1]).to(dev)
        y = torch.from_numpy(chunk[:, 1:]).to(dev)
        logits = model(x)
        loss = F.cross_entropy(logits.float().reshape(-1, vocab), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if args.verbose and (step % 25 == 0 or step == args.steps - 1):
            print(f"{kind:5s} step {step:4d} loss {losses[-1]:.4f}", flush=True)
    return losses


def pack(args, directory: Path) -> None:
    """Compile the run's forward and backward artifacts into ``directory`` under their request
    keys, with a catalog naming the compiler version (what a machine without MLIR keys its
    lookups with: splat.runtime.resolve)."""
    from splat import compile as splat_compile
    from splat import patterns
    from splat.runtime import save
    from splat.runtime.resolve import request_key
    from splat.version import compiler_version

    pattern = patterns.causal_window(args.window, args.L)
    head_dim = args.dim // args.heads
    directory.mkdir(parents=True, exist_ok=True)
    for variant in ("fused", "backward"):
        key = request_key(pattern, Lq=args.L, Lk=args.L, dtype="bf16", head_dim=head_dim,
                          variant=variant)
        save(splat_compile(pattern, head_dim=head_dim, variant=variant), directory / key,
             overwrite=True)
        print(f"{variant}: {directory / key}")
    (directory / "catalog.json").write_text(json.dumps(
        {"format": "splat-catalog/1", "compiler_version": compiler_version(), "entries": []}))


def plot(runs: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, losses in runs.items():
        ax.plot(losses, label=name, linewidth=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (cross-entropy)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--L", type=int, default=256)
    ap.add_argument("--window", type=int, default=64, help="causal window (keys per row)")
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chars", type=int, default=200_000, help="corpus size")
    ap.add_argument("--out-json")
    ap.add_argument("--plot", type=Path)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--pack", type=Path, metavar="DIR",
                    help="only compile the run's SPLAT artifacts into DIR (needs MLIR), for a "
                         "GPU machine without it (SPLAT_ARTIFACT_DIR=DIR)")
    args = ap.parse_args(argv)
    if args.pack:
        pack(args, args.pack)
        return 0

    import numpy as np

    text = corpus(args.chars, args.seed)
    chars = sorted(set(text))
    data = np.array([chars.index(c) for c in text], dtype=np.int64)
    runs = {kind: train(kind, args, data, len(chars)) for kind in ("splat", "sdpa")}
    final = {k: float(np.mean(v[-10:])) for k, v in runs.items()}
    print("final loss (mean of the last 10 steps): "
          + ", ".join(f"{k} {v:.4f}" for k, v in final.items()))
    if args.out_json:
        Path(args.out_json).write_text(json.dumps(
            dict(args={k: str(v) for k, v in vars(args).items()}, losses=runs, final=final),
            indent=1) + "\n")
    if args.plot:
        plot(runs, args.plot, f"tiny LM, causal window {args.window}, L = {args.L} "
                              f"({args.device})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
