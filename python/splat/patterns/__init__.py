"""Attention patterns: a vectorised predicate plus, for the named families, an analytic ACSR.

A :class:`Pattern` is an ``Lq x Lk`` mask given by ``contains(q_idx, k_idx)`` (broadcasting
numpy index arrays -> bool).  The named families build their ACSR in O(pieces) without looking at
the mask.  General unions and intersections (``a | b``, ``a & b``) have no analytic form; they
combine their operands' *bands* when both are made of intervals with affine ends (worked out on
row ranges, :mod:`splat.analysis.bands`), else their *intervals* (see :mod:`splat.analysis`),
and go through the general analysis, so no ``Lq x Lk`` array is built for them either.  A union
of global tokens with a strided or dilated family is built from its parts instead
(``Pattern.cross_parts``, :mod:`splat.analysis.cross`): the global rows and columns, plus the
other operands minus them.
``longformer`` and ``bigbird`` are such unions with an analytic ACSR of their own
(``_union_acsr``).

For the single families the analytic pieces are cut exactly where the general analysis cuts
(greedy maximal affine stretches), so ``pattern.acsr() == analyze(pattern.mask())`` as ACSR
content, not only as masks; tests/unit/test_patterns.py checks it.  ``longformer`` / ``bigbird``
are exact and valid (equal as masks, checked on random parameters) but cut their own way: window
pieces where the window edges cross the constant columns, one rectangle per constant column run
(no more pieces than the analysis on the tested cases; 178 against 219 for the bigbird at 4K).

Modules: ``pattern.py`` (:class:`Pattern`, its ``|`` and ``&``), ``pieces.py`` (the analytic
pieces and the window / globals / random-blocks union), ``families.py`` (the named families,
``from_mask`` and ``from_mask_fn``); ``pattern_attr.py`` reads pattern attributes into patterns.
"""

from __future__ import annotations

from .families import (bigbird, blocked, causal, causal_window, chunked_causal, dilated, documents,
                       fixed, from_mask, from_mask_fn, global_tokens, longformer, prefix_lm,
                       random_blocks, strided, window)
from .pattern import Pattern

__all__ = ["Pattern", "window", "causal", "causal_window", "dilated", "strided", "fixed", "blocked",
           "global_tokens", "random_blocks", "longformer", "bigbird", "documents", "prefix_lm",
           "chunked_causal", "from_mask", "from_mask_fn"]
