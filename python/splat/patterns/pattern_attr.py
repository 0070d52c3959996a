"""Pattern attributes (``#splat.window<w = 128>``, unions, ...) -> :class:`splat.patterns.Pattern`."""

from __future__ import annotations

import re

from mlir import ir

from .. import patterns

_PARAM = re.compile(r"(\w+) = (-?\d+)")


def _split_top_level(text: str) -> list[str]:
    """Split ``a<..., ...>, b[...]`` at commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c in "<[(":
            depth += 1
        elif c in ">])":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    if text[start:].strip():
        parts.append(text[start:].strip())
    return parts


def _pattern(text: str, lq: int, lk: int) -> patterns.Pattern:
    m = re.fullmatch(r"#splat\.(\w+)(?:<(.*)>)?", text.strip(), re.S)
    if m is None:
        raise ValueError(f"not a splat pattern attribute: {text}")
    kind, body = m.group(1), m.group(2) or ""
    if kind in ("union", "intersect"):
        members = [_pattern(t, lq, lk) for t in _split_top_level(body.strip()[1:-1])]
        result = members[0]
        for member in members[1:]:
            result = (result | member) if kind == "union" else (result & member)
        return result
    if kind == "global_tokens":
        indices = [int(v) for v in body.strip()[1:-1].split(",")]
        return patterns.global_tokens(indices, lq, lk)
    params = {k: int(v) for k, v in _PARAM.findall(body)}
    builders = {
        "window": lambda p: patterns.window(p["w"], lq, lk),
        "causal": lambda p: patterns.causal(lq, lk),
        "causal_window": lambda p: patterns.causal_window(p["w"], lq, lk),
        "dilated": lambda p: patterns.dilated(p["w"], p["stride"], lq, lk),
        "strided": lambda p: patterns.strided(p["local"], p["stride"], lq, lk),
        "fixed": lambda p: patterns.fixed(p["block"], p["summary"], lq, lk),
        "blocked": lambda p: patterns.blocked(p["block"], lq, lk),
        "random_blocks": lambda p: patterns.random_blocks(p["block"], p["per_row"], p["seed"], lq, lk),
    }
    if kind not in builders:
        raise ValueError(f"#splat.{kind} is not a pattern attribute")
    return builders[kind](params)


def attr_to_pattern(attr: ir.Attribute, lq: int, lk: int) -> patterns.Pattern:
    """The :class:`Pattern` of a pattern attribute for an ``lq x lk`` attention.

    Raises ValueError when the pattern does not fit the sizes (e.g. a global
    token index past ``lq``)."""
    return _pattern(str(attr), lq, lk)
