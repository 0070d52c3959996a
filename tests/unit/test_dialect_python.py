"""The splat dialect from Python: loading, builders, generated op classes."""

import pytest
from mlir import ir

from splat.dialects import splat as splat_d
from splat.ir import make_context

ATTENTION = """
func.func @f(%q: tensor<1x4x64x32xbf16>, %k: tensor<1x2x64x32xbf16>) -> tensor<1x4x64x32xbf16> {
  %o = splat.attention %q, %k, %k layout(LAYOUT)
      : tensor<1x4x64x32xbf16>, tensor<1x2x64x32xbf16>, tensor<1x2x64x32xbf16> -> tensor<1x4x64x32xbf16>
  return %o : tensor<1x4x64x32xbf16>
}
"""


@pytest.fixture
def ctx():
    with make_context() as context, ir.Location.unknown():
        yield context


def test_pattern_builders_print_their_parameters(ctx):
    assert str(splat_d.window(128)) == "#splat.window<w = 128>"
    assert str(splat_d.causal()) == "#splat.causal"
    assert str(splat_d.dilated(4, 2)) == "#splat.dilated<w = 4, stride = 2>"
    assert str(splat_d.strided(8, 8)) == "#splat.strided<local = 8, stride = 8>"
    assert str(splat_d.fixed(16, 2)) == "#splat.fixed<block = 16, summary = 2>"
    assert str(splat_d.global_tokens([0, 9])) == "#splat.global_tokens<[0, 9]>"
    union = splat_d.union([splat_d.window(3), splat_d.random_blocks(16, 2, 7)])
    assert str(union) == ("#splat.union<[#splat.window<w = 3>, "
                          "#splat.random_blocks<block = 16, per_row = 2, seed = 7>]>")


def test_acsr_builder_round_trips(ctx):
    piece = splat_d.piece(0, 64, 2, 2, 2, 0, 0, 1)
    layout = splat_d.acsr(64, 64, [piece], splat_d.block_remainder(16, [1, 2]))
    again = ir.Attribute.parse(str(layout))
    assert again == layout
    assert "rows 0 to 64 step 2" in str(layout)


@pytest.mark.parametrize("build, message", [
    (lambda: splat_d.window(-1), "'w' must be >= 0"),
    (lambda: splat_d.dilated(2, 0), "'stride' must be >= 1"),
    (lambda: splat_d.piece(0, 8, 1, 1, -1, 0, 0, 1), None),  # fine alone
    (lambda: splat_d.acsr(8, 8, [splat_d.piece(0, 8, 1, 1, -1, 0, 0, 1)]), "outside [0, 8)"),
])
def test_builders_verify(ctx, build, message):
    if message is None:
        build()
        return
    with pytest.raises(ir.MLIRError, match=message.replace("[", r"\[").replace(")", r"\)")):
        build()


def test_builders_reject_non_integers(ctx):
    with pytest.raises(TypeError, match="w must be an int"):
        splat_d.window(1.5)


def test_parsed_ops_are_generated_classes(ctx):
    module = ir.Module.parse(ATTENTION.replace("LAYOUT", "#splat.window<w = 4>"))
    func = module.body.operations[0]
    op = func.regions[0].blocks[0].operations[0]
    assert isinstance(op, splat_d.AttentionOp)
    assert op.layout == splat_d.window(4)
    assert op.scale is None


def test_op_builder_creates_verified_attention(ctx):
    bf16 = ir.BF16Type.get()
    q_t = ir.RankedTensorType.get([1, 4, 64, 32], bf16)
    kv_t = ir.RankedTensorType.get([1, 2, 64, 32], bf16)
    module = ir.Module.create()
    from mlir.dialects import func
    with ir.InsertionPoint(module.body):
        @func.FuncOp.from_py_func(q_t, kv_t, kv_t)
        def attn(q, k, v):
            return splat_d.AttentionOp(q_t, q, k, v, splat_d.causal_window(8),
                                       scale=ir.FloatAttr.get_f32(0.5)).result
    assert module.operation.verify()
    assert "layout(#splat.causal_window<w = 8>) scale(5.000000e-01)" in str(module)


def test_gqa_violation_is_a_located_error(ctx):
    text = ATTENTION.replace("LAYOUT", "#splat.causal").replace("1x2x64", "1x3x64")
    with pytest.raises(ir.MLIRError) as info:
        ir.Module.parse(text)
    diag = info.value.error_diagnostics[0]
    assert "multiple of key/value heads (3)" in diag.message
    assert diag.location.start_line == 3
