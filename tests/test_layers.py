"""The rooms of the house (docs/contracts.md): lower layers never import upper ones, not even inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "neuroclips"
LOWER = ("models", "data", "losses", "metrics", "utils")
UPPER = ("neuroclips.systems", "neuroclips.tasks", "neuroclips.runtime", "neuroclips.generation")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports, at any depth (function-level imports included)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


@pytest.mark.parametrize("room", LOWER)
def test_lower_layers_do_not_import_upper_ones(room):
    bad = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
        for path in sorted((PACKAGE / room).rglob("*.py"))
        for line, module in imported_modules(path)
        if module.startswith(UPPER)
    ]
    assert not bad, bad


def test_errors_imports_nothing_of_ours():
    assert not [m for _, m in imported_modules(PACKAGE / "errors.py") if m.startswith("neuroclips")]


def test_the_check_sees_function_level_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def build():\n    from neuroclips.generation.video import VideoRecipe\n")
    assert imported_modules(f) == [(2, "neuroclips.generation.video")]


# neuroclips/report/ in its layer order (its __init__ docstring): each module imports only the ones before it, so
# the HTML page may use the tables and the writer the HTML page without an import circle.
REPORT_ORDER = (
    "table1",
    "inputs",
    "media",
    "tables",
    "settings_lines",
    "markdown",
    "gif_grid",
    "html_page",
    "write",
    "__main__",
)


def test_report_modules_import_only_the_ones_below_them():
    folder = PACKAGE / "report"
    assert {p.stem for p in folder.glob("*.py")} - {"__init__"} == set(REPORT_ORDER)
    bad = [
        f"report/{name}.py:{line} imports {module}"
        for i, name in enumerate(REPORT_ORDER)
        for line, module in imported_modules(folder / f"{name}.py")
        if module.startswith("neuroclips.report")
        and module.removeprefix("neuroclips.report.") not in REPORT_ORDER[:i]
    ]
    assert not bad, bad
