"""The ``splat_attention`` JAX primitive on a machine without a GPU (issue 13): abstract
evaluation (shapes, dtypes, the handle's checks at trace time), the vmap rule, the refusal of
CPU placement, the handle as a static value. Its CUDA lowering runs in tests/gpu/test_gpu_jax.py.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

import splat.jax as sj  # noqa: E402
from splat import testing as T  # noqa: E402
from splat.runtime.validate import SplatInputError  # noqa: E402

L, D = 128, 64
CAUSAL = T.F("causal")


def _causal(**kw):
    pattern, _ = T.build_pattern(CAUSAL, L)
    return sj.prepare(pattern, head_dim=D, dtype="bf16", **kw)


@pytest.fixture(scope="module")
def h():
    return _causal()


def _spec(*shape, dtype=jnp.bfloat16):
    return jax.ShapeDtypeStruct(shape, dtype)


def test_abstract_eval_gives_o_like_q_and_float32_lse(h):
    o, lse = jax.eval_shape(lambda q, k, v: h(q, k, v, return_lse=True),
                            _spec(3, 4, L, D), _spec(3, 2, L, D), _spec(3, 2, L, D))
    assert (o.shape, o.dtype) == ((3, 4, L, D), jnp.bfloat16)
    assert (lse.shape, lse.dtype) == ((3, 4, L), jnp.float32)


@pytest.mark.parametrize("axis", [0, 1])
def test_vmap_folds_the_mapped_axis_into_the_batch(h, axis):
    q = _spec(5, 2, 4, L, D) if axis == 0 else _spec(2, 5, 4, L, D)
    kv = _spec(5, 2, 2, L, D) if axis == 0 else _spec(2, 5, 2, L, D)
    f = jax.vmap(lambda q, k, v: h(q, k, v, return_lse=True), in_axes=axis)
    o, lse = jax.eval_shape(f, q, kv, kv)
    assert o.shape == (5, 2, 4, L, D) and lse.shape == (5, 2, 4, L)  # out_axes=0


def test_vmap_broadcasts_an_unmapped_argument(h):
    f = jax.vmap(lambda q, k, v: h(q, k, v), in_axes=(0, None, None))
    o = jax.eval_shape(f, _spec(6, 1, 4, L, D), _spec(1, 2, L, D), _spec(1, 2, L, D))
    assert o.shape == (6, 1, 4, L, D)


@pytest.mark.parametrize("shapes, arg, match", [
    (((1, 4, L, 32), (1, 2, L, 32), (1, 2, L, 32)), "q", "head dim 32"),
    (((1, 4, L - 1, D), (1, 2, L, D), (1, 2, L, D)), "pattern", "built for Lq = 128"),
    (((2, 4, L, D), (1, 2, L, D), (1, 2, L, D)), "k", "batch size 1"),
    (((1, 4, L, D), (1, 3, L, D), (1, 3, L, D)), "k", "do not divide"),
    (((1, 4, L, D), (1, 2, L, D), (1, 2, L + 1, D)), "v", "must equal k"),
    (((1, 4, L, D), (1, 2, L - 5, D), (1, 2, L - 5, D)), "pattern", "built for Lk = 128"),
])
def test_bad_shapes_name_the_argument_at_trace_time(h, shapes, arg, match):
    with pytest.raises(SplatInputError, match=f"^{arg}: .*{match}"):
        jax.eval_shape(h, *(_spec(*s) for s in shapes))


def test_wrong_dtype_names_the_argument(h):
    with pytest.raises(SplatInputError, match="^k: dtype float16"):
        jax.eval_shape(h, _spec(1, 4, L, D), _spec(1, 2, L, D, dtype=jnp.float16),
                       _spec(1, 2, L, D))


def test_eager_calls_reuse_one_program_per_handle(h):
    """Eager calls run the primitive through jit: the same handle must reuse one jitted
    function (a new one per call would trace and compile every call)."""
    from splat import jax_op

    prim = jax_op._define_primitive()
    assert jax_op._eager(prim, h.key, h.scale) is jax_op._eager(prim, h.key, h.scale)
    assert jax_op._eager(prim, h.key, h.scale) is not jax_op._eager(prim, h.key, h.scale / 2)


def test_cpu_placement_is_refused(h):
    x = jnp.zeros((1, 2, L, D), dtype=jnp.bfloat16)
    with pytest.raises(SplatInputError, match="^q: expected an array on one CUDA GPU"):
        h(x, x, x)
    with pytest.raises(SplatInputError, match="CUDA GPUs only"):
        jax.jit(h)(x, x, x)


def test_handle_is_hashable_and_a_static_argument(h):
    h2 = _causal()
    assert h2 == h and hash(h2) == hash(h) and len({h, h2}) == 1
    assert _causal(scale=0.5) != h
    with pytest.raises(AttributeError):
        h.scale = 1.0
    f = jax.jit(lambda q, k, v, handle: handle(q, k, v), static_argnums=3)
    o = jax.eval_shape(f, _spec(1, 4, L, D), _spec(1, 2, L, D), _spec(1, 2, L, D), h)
    assert o.shape == (1, 4, L, D)


def test_prepare_checks_sizes_against_the_artifact(h):
    with pytest.raises(SplatInputError, match="^head_dim: 128"):
        sj.prepare(artifact=h.artifact, head_dim=128)
    with pytest.raises(SplatInputError, match="^Lq: Lq = 64"):
        sj.prepare(artifact=h.artifact, Lq=64)


def test_the_jax_path_imports_no_torch():
    code = ("import sys, jax, jax.numpy as jnp, splat.jax as sj, splat.patterns as P; "
            "h = sj.prepare(P.causal_window(16, 128), head_dim=64, dtype='bf16'); "
            "s = jax.ShapeDtypeStruct((1, 2, 128, 64), jnp.bfloat16); "
            "jax.eval_shape(h, s, s, s); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_gradients_have_the_inputs_shapes_under_vmap(h):
    """jax.grad through the custom VJP (abstractly: the backward primitive's abstract eval and
    its vmap rule, GQA)."""
    def loss(q, k, v):
        return jnp.sum(h(q, k, v).astype(jnp.float32))

    g = jax.vmap(jax.grad(loss, argnums=(0, 1, 2)))
    dq, dk, dv = jax.eval_shape(g, _spec(3, 1, 4, L, D), _spec(3, 1, 2, L, D),
                                _spec(3, 1, 2, L, D))
    assert (dq.shape, dk.shape, dv.shape) == ((3, 1, 4, L, D), (3, 1, 2, L, D), (3, 1, 2, L, D))
    assert dq.dtype == dk.dtype == dv.dtype == jnp.bfloat16
