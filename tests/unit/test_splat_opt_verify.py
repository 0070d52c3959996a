"""splat-opt --verify-diagnostics: mlir-opt's expectation syntax, and no false pass.

Most cases check ``splat.diagnostics.verify`` directly on synthetic diagnostics (fast); the
last ones run the command line on real IR, including the three false passes of issue 11.
"""

import subprocess
import sys

import pytest

from splat.diagnostics import Diag, parse_expectations, verify


def _check(source, diags):
    return verify(source, diags, "t.mlir", 0)


def err(line, message, col=3, severity="error"):
    return Diag(severity, line, col, message)


# --- designators ---------------------------------------------------------------------

def test_own_line_and_relative_designators():
    src = ("op1  // expected-error {{first}}\n"
           "// expected-warning @+1 {{second}}\n"
           "op2\n"
           "op3\n"
           "// expected-remark @-1 {{third}}\n")
    diags = [err(1, "the first one"), err(3, "the second", severity="warning"),
             err(4, "third!", severity="remark")]
    assert _check(src, diags) == []


def test_above_and_below_skip_directive_lines():
    src = ("op1\n"                                   # 1
           "// expected-error @above {{a}}\n"         # 2 -> line 1
           "// expected-note @above {{b}}\n"          # 3 -> line 1 (line 2 is a directive)
           "// expected-error @below {{c}}\n"         # 4 -> line 6
           "// expected-note @below {{d}}\n"          # 5 -> line 6
           "op2\n")                                   # 6
    diags = [err(1, "a"), err(1, "b", severity="note"), err(6, "c"),
             err(6, "d", severity="note")]
    assert _check(src, diags) == []
    # the same diagnostics one line off are unexpected, and the expectations unmet
    problems = _check(src, [err(2, "a")])
    assert any("unexpected error: a" in p for p in problems)
    assert sum("was not produced" in p for p in problems) == 4


def test_unknown_location():
    src = "// expected-error @unknown {{no place}}\nop\n"
    assert _check(src, [Diag("error", None, None, "in no place")]) == []
    # a located diagnostic does not satisfy @unknown ...
    problems = _check(src, [err(2, "no place")])
    assert any("unexpected error" in p for p in problems)
    assert any("was not produced at an unknown location" in p for p in problems)
    # ... and an unlocated one does not satisfy a line
    problems = _check("op // expected-error {{x}}\n", [Diag("error", None, None, "x")])
    assert any(p.startswith("t.mlir: error: unexpected error: x") for p in problems)


def test_bad_designators_are_errors():
    for src, message in [
        ("op\n// expected-error @-5 {{x}}\n", "points before the first line"),
        ("// expected-error @above {{x}}\nop\n", "'@above' has no line above"),
        ("op\n// expected-error @below {{x}}\n", "'@below' has no line below"),
    ]:
        problems = _check(src, [])
        assert any(message in p for p in problems), (src, problems)


# --- messages ------------------------------------------------------------------------

def test_plain_message_is_a_literal_substring():
    assert _check("op // expected-error {{a.b (c)}}\n", [err(1, "x a.b (c) y")]) == []
    problems = _check("op // expected-error {{a.b}}\n", [err(1, "axb")])
    assert len(problems) == 2  # unexpected + not produced


def test_regex_form():
    src = "op // expected-error-re {{got {{[0-9]+}} keys (max {{.*}})}}\n"
    assert _check(src, [err(1, "we got 128 keys (max 64)")]) == []
    problems = _check(src, [err(1, "we got many keys (max 64)")])
    assert any("was not produced" in p for p in problems)
    # outside the blocks, text is literal: '(' and '.' are not regex syntax
    assert _check("op // expected-error-re {{a.b{{x?}}}}\n", [err(1, "a.b")]) == []
    assert _check("op // expected-error-re {{a.b{{x?}}}}\n", [err(1, "axb")]) != []
    # POSIX classes, as in LLVM's regex
    assert _check("op // expected-error-re {{{{[[:digit:]]+}} rows}}\n", [err(1, "12 rows")]) == []


def test_regex_blocks_in_the_plain_form_are_literal_with_a_hint():
    problems = _check("op // expected-error {{got {{[0-9]+}} keys}}\n", [err(1, "got 12 keys")])
    assert any("expected-error-re" in p for p in problems)
    assert any("unexpected error" in p for p in problems)


def test_broken_regex_is_an_error():
    assert any("no end '}}'" in p for p in _check("op // expected-error-re {{a {{b}}\n", []))
    assert any("invalid regex" in p for p in _check("op // expected-error-re {{{{[}}}}\n", []))


def test_severity_near_miss():
    problems = _check("op // expected-error {{boom}}\n", [err(1, "boom", severity="warning")])
    assert any("'warning' diagnostic emitted when expecting a 'error'" in p for p in problems)
    assert any("was not produced" in p for p in problems)


def test_each_expectation_and_each_diagnostic_count():
    src = "op // expected-error {{dup}}\n// expected-error @-1 {{dup}}\n"
    assert _check(src, [err(1, "dup"), err(1, "dup")]) == []
    assert any("was not produced" in p for p in _check(src, [err(1, "dup")]))
    # like mlir-opt, one expectation absorbs a repeat of the same diagnostic
    assert _check("op // expected-error {{dup}}\n", [err(1, "dup"), err(1, "dup")]) == []


def test_no_expectations_and_no_diagnostics_passes_and_unexpected_fails():
    assert _check("op\n", []) == []
    assert _check("op\n", [err(1, "surprise")]) == ["t.mlir:1:3: error: unexpected error: surprise"]
    # mlir-opt does not print the op with a verified diagnostic: that note is not unexpected
    assert _check("op // expected-error {{e}}\n",
                  [err(1, "e"), Diag("note", 1, 1, "see current operation: op")]) == []


# --- misspelt and malformed directives -------------------------------------------------

@pytest.mark.parametrize("word", ["expectd-error", "expected-eror", "expected-errors",
                                  "Expected-error", "expect-error", "exepcted-note",
                                  "expected_error", "expected-warn", "expected-error-regex",
                                  "expected-Error", "xpected-remark"])
def test_misspelt_directive_is_an_error(word):
    src = f"op\n// {word} @-1 {{{{x}}}}\n"
    problems = _check(src, [err(1, "x")])
    assert any(f"unknown directive '{word}'" in p and p.startswith("t.mlir:2:") for p in problems), \
        problems


@pytest.mark.parametrize("line", [
    "// expected-error @+1",                 # no message
    "// expected-error",                     # nothing at all
    "// expected-error {{x}} trailing",      # not at the end of the line
    "// expected-error @ +1 {{x}}",          # space in the designator
    "// expected-error @+1:3 {{x}}",         # columns are not mlir-opt syntax
    "// expected-error @next {{x}}",         # no such designator
    "// expected-error {x}",                 # single braces
])
def test_malformed_directive_is_an_error(line):
    problems = _check(line + "\nop\n", [err(2, "x")])
    assert any("malformed 'expected-error'" in p and p.startswith("t.mlir:1:") for p in problems), \
        problems


def test_ordinary_comments_are_not_directives():
    src = ("// RUN: splat-opt %s --split-input-file --verify-diagnostics -o /dev/null\n"
           "// CHECK-LABEL: func @expected_value {{.*}}\n"
           "// the expected result is below; expectation-free comment\n"
           "op\n")
    expected, problems = parse_expectations(src)
    assert expected == [] and problems == []


def test_line_offset_names_lines_of_the_whole_file():
    problems = verify("op // expected-error {{x}}\n", [], "f.mlir", 10)
    assert problems == ['f.mlir:11:7: error: expected error "x" was not produced on line 11']


# --- the command line ------------------------------------------------------------------

OK = """func.func @f(%q: tensor<1x1x8x16xf16>) -> tensor<1x1x8x16xf16> {
  %o = splat.attention %q, %q, %q layout(#splat.window<w = 2>) : tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16>, tensor<1x1x8x16xf16> -> tensor<1x1x8x16xf16>
  return %o : tensor<1x1x8x16xf16>
}
"""
BAD = OK.replace("w = 2", "w = -1")


def splat_opt(src, *args):
    return subprocess.run([sys.executable, "-m", "splat.tools.splat_opt", "--verify-diagnostics",
                           str(src), *args], capture_output=True, text=True)


@pytest.mark.parametrize("directive", [
    "// expected-error-re @+2 {{foo {{.*}}}}",   # the regex form
    "// expected-error @unknown {{foo}}",        # an unknown location
    "// expectd-error @+2 {{foo}}",              # misspelt
    "// expected-eror @+2 {{foo}}",              # misspelt
])
def test_issue_11_false_passes_now_fail(tmp_path, directive):
    """Each of these exited 0 over an op that emits nothing."""
    src = tmp_path / "v.mlir"
    src.write_text(directive + "\n" + OK)
    result = splat_opt(src)
    assert result.returncode == 1, result.stderr
    assert f"{src}:1:" in result.stderr and "Traceback" not in result.stderr


def test_command_line_match_and_split_files(tmp_path):
    src = tmp_path / "v.mlir"
    src.write_text(OK + "// -----\n"
                   "// expected-error-re @+2 {{'window' parameter 'w' must be >= {{[0-9]}}, got -1}}\n"
                   + BAD + "// -----\n"
                   + BAD.replace("w = -1", "w = -3").replace(
                       "  return", "  // expected-error @above {{got -3}}\n  return"))
    result = splat_opt(src, "--split-input-file", "-o", str(tmp_path / "out.mlir"))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_command_line_unmatched_names_the_line(tmp_path):
    src = tmp_path / "v.mlir"
    src.write_text(OK + "// -----\n" + "// expected-error @+2 {{must be >= 7}}\n" + BAD)
    result = splat_opt(src, "--split-input-file")
    assert result.returncode == 1
    assert f"{src}:6:4: error: expected error \"must be >= 7\" was not produced on line 8" \
        in result.stderr
    assert f"{src}:8:" in result.stderr and "unexpected error" in result.stderr


def test_pass_failure_is_located_at_the_op_and_verifiable(tmp_path):
    src = tmp_path / "v.mlir"
    src.write_text(OK.replace("  %o =", "  // expected-error @+1 {{tile-order must be}}\n  %o ="))
    result = splat_opt(src, "--pass-pipeline=builtin.module(splat-analyze-regularity, "
                            "splat-tile-acsr{tile-order=bogus})")
    assert result.returncode == 0, result.stderr


def test_pass_errors_and_bugs_are_located_at_the_op():
    """PassError at the (line 0) implicit module goes to the first located op; an unforeseen
    exception inside failures_at(op) becomes a PassError at that op."""
    from mlir import ir

    from splat.ir import make_context
    from splat.passes.registry import PassError, failures_at, walk_ops

    with make_context(), ir.Location.unknown():
        module = ir.Module.parse(OK, )
        top = module.operation
        assert str(top.location).endswith(":0:0)")  # the implicit module
        assert PassError("x", top).op.name == "func.func"
        attention = walk_ops(top, lambda o: o.name == "splat.attention")[0]
        with pytest.raises(PassError) as info:
            with failures_at(attention):
                raise KeyError("oops")
        assert info.value.op.name == "splat.attention"
        assert "internal error: KeyError" in str(info.value)
        with pytest.raises(PassError, match="nested too deeply"):
            with failures_at(attention):
                raise RecursionError()
