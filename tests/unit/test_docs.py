"""Documentation generated from the sources stays in sync with them."""

from pathlib import Path

import splat
from splat.passes import PASSES

DOCS = Path(__file__).parents[2] / "docs"


def test_dialect_reference_is_the_generated_one():
    generated = next(Path(p) / "_lib" / "SplatDialect.md" for p in splat.__path__
                     if (Path(p) / "_lib" / "SplatDialect.md").is_file())
    assert (DOCS / "dialect.md").read_text() == generated.read_text(), \
        "docs/dialect.md is stale: copy splat/_lib/SplatDialect.md from the build"


def test_every_pass_is_documented():
    text = (DOCS / "passes.md").read_text()
    missing = [name for name in PASSES if f"`{name}`" not in text]
    assert not missing, f"docs/passes.md lacks {missing}"
