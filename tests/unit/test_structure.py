"""The tree keeps the shape issue 9 gave it: no module-level import cycle, no reading of printed
splat attributes, no reference to files outside the repository, one compiler version over the
whole compiler side."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import splat
from splat import version

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = {"splat": ROOT / "python" / "splat", "splat.passes": ROOT / "passes"}


def _modules() -> dict[str, Path]:
    """Dotted module name -> source file, for the package and the top-level passes/."""
    out = {}
    for package, root in PACKAGE_DIRS.items():
        for path in root.rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join(package.split(".") + parts)
            if package == "splat" and parts[:1] == ["passes"]:
                continue
            out[name] = path
    return out


def _top_level_imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The splat modules ``name`` imports when it is imported (imports inside functions, which
    run later, are not edges of the import-time graph)."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from pkg import sub` imports the submodule when one has that name
            targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            # importing a.b.c runs a, a.b and a.b.c
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                candidate = ".".join(parts[:i])
                if candidate in known and candidate != name:
                    found.add(candidate)
    return found


def test_no_module_level_import_cycle():
    modules = _modules()
    known = set(modules)
    graph = {name: _top_level_imports(name, path, known) for name, path in modules.items()}
    # A package importing its own submodules is how packages work, not a cycle.
    for name, edges in graph.items():
        for other in list(edges):
            if other.startswith(name + ".") or name.startswith(other + "."):
                edges.discard(other)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def _string_constants(path: Path) -> list[str]:
    return [n.value for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.Constant) and isinstance(n.value, str)]


# Fragments of the splat attributes' printed syntax that a reader of printed IR would match.
_PRINTED_SYNTAX = ("#splat.", "block_n =", "block_m =", "lq =", "pieces =", "mask_ptr =",
                   "offset (", "count (")


@pytest.mark.parametrize("name", sorted(_modules()))
def test_no_code_reads_printed_splat_attributes(name):
    """Attributes are read through the typed getters (splat.dialects), never by matching their
    printed form. Builders may still *write* text, which the C++ parser and verifiers check."""
    path = _modules()[name]
    tree = ast.parse(path.read_text())
    uses_re = any(isinstance(n, (ast.Import, ast.ImportFrom)) and
                  any(a.name == "re" for a in n.names) or
                  (isinstance(n, ast.ImportFrom) and n.module == "re") for n in ast.walk(tree))
    for node in ast.walk(tree):
        # str(attr).startswith("#splat...") / "... =" in str(attr)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in ("startswith", "find", "index") and node.args and \
                isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            assert not node.args[0].value.startswith("#splat"), (name, ast.unparse(node))
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant) and \
                isinstance(node.left.value, str) and any(isinstance(op, (ast.In, ast.NotIn))
                                                         for op in node.ops):
            assert not any(f in node.left.value for f in _PRINTED_SYNTAX), \
                (name, ast.unparse(node))
    if uses_re:
        for text in _string_constants(path):
            assert not any(f in text for f in _PRINTED_SYNTAX if f != "#splat."), (name, text)


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    suffixes = {".py", ".md", ".toml", ".txt", ".cfg", ".mlir", ".td", ".cpp", ".h", ".cu"}
    return [ROOT / p for p in listed.stdout.split() if Path(p).suffix in suffixes]


def test_no_reference_to_files_outside_the_repository():
    outside = ("shared/TOOLCHAIN", "../shared", "/work/", "TOOLCHAIN.md")
    for path in _tracked_text_files():
        if path == Path(__file__).resolve():
            continue
        text = path.read_text(errors="replace")
        for ref in outside:
            assert ref not in text, f"{path.relative_to(ROOT)} refers to {ref!r}"


def test_compiler_version_covers_the_whole_compiler_side():
    files = version._compiler_files()
    for expected in ("splat/compiler.py", "splat/abi.py", "splat/stages.py",
                     "splat/passes/tile_acsr.py", "splat/dialects/splat.py",
                     "splat/dialects/_splat_ops_gen.py", "splat/lowering/fused_forward.py",
                     "splat/tiling/schedule.py", "splat/tiling/cost_model.json"):
        assert expected in files, expected
    assert not any(name.startswith("splat/runtime/") for name in files)
    assert not {"splat/torch.py", "splat/torch_op.py", "splat/jax.py", "splat/jax_op.py"} & set(files)
    assert version.dialect_library() is not None
    assert version.compiler_version().startswith(splat.__version__ + "+")


def test_compiler_version_changes_with_any_compiler_file_and_the_library(monkeypatch, tmp_path):
    before = version.compiler_version()
    real_files = version._compiler_files()

    def with_edit(name):
        copy = tmp_path / name.replace("/", "_")
        copy.write_bytes(real_files[name].read_bytes() + b"\n# edited\n")
        return {**real_files, name: copy}

    # a recalibrated cost model or variant table chooses other schedules and kernel builds
    for name in ("splat/passes/lower_to_gpu.py", "splat/analysis/acsr.py", "splat/abi.py",
                 "splat/tiling/cost_model.json"):
        edited = with_edit(name)
        monkeypatch.setattr(version, "_compiler_files", lambda edited=edited: edited)
        version.compiler_version.cache_clear()
        assert version.compiler_version() != before, name
    monkeypatch.setattr(version, "_compiler_files", lambda: real_files)
    library = tmp_path / "libSplatDialect.so"
    library.write_bytes(version.dialect_library().read_bytes() + b"\0")
    monkeypatch.setattr(version, "dialect_library", lambda: library)
    version.compiler_version.cache_clear()
    assert version.compiler_version() != before
    monkeypatch.setattr(version, "dialect_library", lambda: None)
    version.compiler_version.cache_clear()
    assert version.compiler_version() is None
    version.compiler_version.cache_clear()


def test_prebuilt_lookup_without_the_compiler_takes_the_packed_version(monkeypatch, tmp_path):
    from splat.runtime import resolve
    from splat.runtime.validate import SplatInputError

    monkeypatch.setattr(resolve, "compiler_version", lambda: None)
    monkeypatch.setenv("SPLAT_NO_COMPILE", "1")
    monkeypatch.setenv("SPLAT_ARTIFACT_DIR", str(tmp_path))
    pattern = splat.patterns.window(8, 100, 100)
    call = dict(dtype="bf16", head_dim=64, Lq=100, Lk=100)
    with pytest.raises(SplatInputError, match="catalog.json"):
        resolve.resolve_artifact(pattern, **call)  # nothing packed there
    for bad in ({"compiler_version": 7}, {"compiler_version": "../../x"}, [], "{"):
        (tmp_path / "catalog.json").write_text(bad if isinstance(bad, str) else json.dumps(bad))
        with pytest.raises(SplatInputError, match="compiler"):
            resolve.resolve_artifact(pattern, **call)
    (tmp_path / "catalog.json").write_text(json.dumps({"compiler_version": "0.1.0+abc"}))
    key = resolve.request_key(pattern, Lq=100, Lk=100, dtype="bf16", head_dim=64,
                              version="0.1.0+abc")
    with pytest.raises(SplatInputError, match=key):
        resolve.resolve_artifact(pattern, **call)  # looked it up under the packed version
    with pytest.raises(SplatInputError, match="version"):
        resolve.request_key(pattern, Lq=100, Lk=100, dtype="bf16", head_dim=64)


def test_stage_table_is_what_splat_to_ptx_expands_to():
    from splat.ir import make_context
    from splat.passes.to_ptx import ToPTX
    from splat.stages import STAGES, StageOptions, full_pipeline

    assert [s.name for s in STAGES] == ["analyze", "tile", "lower", "nvvm", "ptx"]
    with make_context():
        expanded = ToPTX.from_options({"block-n": "32", "chip": "sm_90", "plan": "blocks"}).expand()
        assert expanded == full_pipeline(StageOptions(chip="sm_90", block_n=32, plan="blocks"))
    # sm_90 has no wgmma: the tiler prices mma.sync variants only
    assert "splat-tile-acsr{block-m=64 block-n=32 plan=blocks mma=mma_sync kv-loads=auto}" in expanded
    assert "chip=sm_90 " in expanded


def test_runtime_reaches_the_compiler_only_through_resolve():
    """Only splat.runtime.resolve names the compiler, and only lazily (one hook)."""
    for path in (ROOT / "python" / "splat" / "runtime").rglob("*.py"):
        text = path.read_text()
        if path.name == "resolve.py":
            assert text.count('import_module("splat.compiler")') == 1
            continue
        assert "splat.compiler" not in text and "from ..compiler" not in text, path


def test_runtime_side_imports_without_mlir_in_a_subprocess():
    code = ("import sys; sys.modules['mlir'] = None; import splat.runtime, splat.abi, "
            "splat.version; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
