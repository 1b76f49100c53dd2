"""The rooms of the house (docs/contracts.md): every import, even inside a function, goes only where the rooms table
says its room may import."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "neuroclips"
CONTRACTS = ROOT / "docs" / "contracts.md"
LOWER = ("models", "data", "losses", "metrics", "utils")
UPPER = ("neuroclips.systems", "neuroclips.tasks", "neuroclips.runtime", "neuroclips.generation")


def _is_module(dotted: str) -> bool:
    path = PACKAGE.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def module_name(path: Path) -> str | None:
    """``neuroclips.data.schema`` for neuroclips/data/schema.py (a package for its ``__init__.py``); None outside."""
    try:
        parts = list(path.resolve().relative_to(PACKAGE.parent).with_suffix("").parts)
    except ValueError:
        return None
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, me: str | None = None) -> list[tuple[int, str]]:
    """Every module a file imports, at any depth (function-level imports included). Relative imports are resolved
    against the file's package (``me``: the file's module name, by default from its place in the package), and
    ``from package import name`` gives ``package.name`` when that is a module."""
    me = me or module_name(path)
    package = None if me is None else (me if path.name == "__init__.py" else me.rpartition(".")[0])
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                assert package is not None, f"{path}:{node.lineno}: a relative import outside the package"
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.append(
                    (node.lineno, full if base.startswith("neuroclips") and _is_module(full) else base)
                )
    return list(dict.fromkeys(out))


# ------------------------------------------------------------------------------------------- the rooms table
def _names(cell: str) -> list[str]:
    """The rooms (``data/``) and modules (``errors.py``, ``data/schema.py``) a table cell names in backticks."""
    return [n for n in re.findall(r"`([^`]+)`", cell) if n.endswith(("/", ".py"))]


def rooms_table() -> dict[str, set[str] | None]:
    """{room: what it may import} from docs/contracts.md's rooms table (None: everything)."""
    text = CONTRACTS.read_text()
    section = text.split("## Rooms (layers)", 1)[1].split("\n## ", 1)[0]
    table = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("room", "---"):
            continue
        allowed = None if cells[2] == "everything" else set(_names(cells[2]))
        for room in _names(cells[0]):
            table[room] = allowed
    return table


def room_of(module: str) -> str:
    """``data/`` for neuroclips.data.schema, ``errors.py`` for neuroclips.errors."""
    first = module.split(".")[1]
    return f"{first}/" if (PACKAGE / first).is_dir() else f"{first}.py"


def _as_path(module: str) -> str:
    rel = "/".join(module.split(".")[1:])
    return f"{rel}/" if (PACKAGE / rel).is_dir() else f"{rel}.py"


def allowed(module: str, target: str, table: dict[str, set[str] | None]) -> bool:
    mine, theirs = room_of(module), room_of(target)
    rule = table[mine]
    return rule is None or mine == theirs or theirs in rule or _as_path(target) in rule


def _package_modules() -> list[tuple[str, Path]]:
    return [(module_name(p), p) for p in sorted(PACKAGE.rglob("*.py")) if p != PACKAGE / "__init__.py"]


def test_every_module_is_in_a_room_of_the_table():
    table = rooms_table()
    missing = sorted({room_of(m) for m, _ in _package_modules()} - table.keys())
    assert not missing, f"in no row of the rooms table (docs/contracts.md): {missing}"
    named = {n for rule in table.values() if rule for n in rule} | table.keys()
    assert not [n for n in named if not (PACKAGE / n).exists()], (
        "the table names a room or module that is gone"
    )


def test_every_import_goes_where_the_rooms_table_allows():
    table = rooms_table()
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {target} ({room_of(target)}, not allowed for {room_of(module)})"
        for module, path in _package_modules()
        for line, target in imported_modules(path)
        if target.startswith("neuroclips.") and not allowed(module, target, table)
    ]
    assert not bad, bad


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


def test_the_check_resolves_relative_and_package_imports(tmp_path):
    """A relative import and ``from neuroclips import x`` name the module, as an absolute import would."""
    modules = {m for _, m in imported_modules(PACKAGE / "data" / "schema.py")}
    assert modules <= {"__future__", "dataclasses", "pathlib", "h5py", "numpy", "neuroclips.errors"}
    probe = tmp_path / "probe.py"  # read as if it were neuroclips/data/probe.py
    probe.write_text("from . import schema\nfrom ..systems import semantic\nfrom neuroclips import outputs\n")
    assert imported_modules(probe, "neuroclips.data.probe") == [
        (1, "neuroclips.data.schema"),
        (2, "neuroclips.systems.semantic"),
        (3, "neuroclips.outputs"),
    ]
    table = rooms_table()
    assert not allowed("neuroclips.data.probe", "neuroclips.systems.semantic", table)
    assert allowed("neuroclips.data.probe", "neuroclips.outputs", table)
    assert not allowed(
        "neuroclips.data.convert_cc2017", "neuroclips.evaluation.readers", table
    )  # moved to utils
    assert allowed("neuroclips.utils.resolvers", "neuroclips.data.schema", table)  # the one module allowed
    assert not allowed("neuroclips.utils.resolvers", "neuroclips.data.datamodule", table)


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
