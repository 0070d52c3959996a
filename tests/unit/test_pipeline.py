"""Mixed Python/upstream pass pipelines."""

import pytest
from mlir import ir

from splat.ir import make_context
from splat.passes import PASSES, PassError, SplatPass, register_pass
from splat.pipeline import PipelineError, build_pass_manager, parse_options, parse_pipeline

MODULE = """
module attributes {gpu.container_module} {
  func.func @f(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
    %o = splat.attention %q, %q, %q layout(#splat.union<[#splat.union<[#splat.causal, #splat.window<w = 1>]>, #splat.causal]>)
        : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
    return %o : tensor<1x1x8x16xf16>
  }
  gpu.module @k {
    gpu.func @g() kernel { gpu.return }
  }
}
"""


def test_parse_pipeline_nesting_and_options():
    elements = parse_pipeline("a, b{x=1 y={2 3}}, gpu.module(c, d{z='q, r'})")
    assert [e.name for e in elements] == ["a", "b", "gpu.module"]
    assert elements[1].options == "x=1 y={2 3}"
    assert [e.name for e in elements[2].nested] == ["c", "d"]
    assert parse_options("a=1 b=\"x y\" flag") == {"a": "1", "b": "x y", "flag": ""}


@pytest.mark.parametrize("text", ["a(", "a{b", "", "a,,b", "a) b"])
def test_malformed_pipelines_raise(text):
    with pytest.raises(PipelineError):
        parse_pipeline(text)


def test_canonicalize_runs_beside_upstream_passes():
    with make_context(), ir.Location.unknown():
        module = ir.Module.parse(MODULE)
        pm = build_pass_manager("builtin.module(canonicalize, splat-canonicalize-patterns, cse)")
        pm.run(module.operation)
        assert "layout(#splat.union<[#splat.causal, #splat.window<w = 1>]>)" in str(module)


def test_splat_pass_nested_under_an_op_runs_on_each_anchor():
    seen = []

    @register_pass
    class Probe(SplatPass):
        argument = "test-probe-nested"
        summary = "records the ops it runs on"

        def run(self, op):
            seen.append(op.name)

    try:
        with make_context(), ir.Location.unknown():
            module = ir.Module.parse(MODULE)
            pm = build_pass_manager("builtin.module(gpu.module(cse, test-probe-nested, cse))")
            pm.run(module.operation)
        assert seen == ["gpu.module"]
    finally:
        del PASSES["test-probe-nested"]


def test_failing_pass_gives_located_error_not_traceback():
    @register_pass
    class Fails(SplatPass):
        argument = "test-fails"
        summary = "always fails"

        def run(self, op):
            raise PassError("no luck", op)

    try:
        with make_context(), ir.Location.unknown():
            module = ir.Module.parse(MODULE)
            pm = build_pass_manager("builtin.module(test-fails)")
            with pytest.raises(ir.MLIRError) as info:
                pm.run(module.operation)
            assert "test-fails: no luck" in info.value.error_diagnostics[0].message
    finally:
        del PASSES["test-fails"]


def test_unknown_pass_and_option_are_rejected():
    with make_context():
        with pytest.raises(PipelineError, match="does not refer to a registered pass"):
            build_pass_manager("builtin.module(no-such-pass)")
        with pytest.raises(PipelineError, match="has no option 'bogus'"):
            build_pass_manager("builtin.module(splat-canonicalize-patterns{bogus=1})")
