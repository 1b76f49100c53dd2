"""Markdown: the eval report (metrics.md) and the paired comparison (comparison.md)."""

from __future__ import annotations

from neuroclips.evaluation.comparison import comparison_rows
from neuroclips.report.settings_lines import settings_lines
from neuroclips.report.tables import sections


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in r] for r in [header] + rows]
    lines = ["| " + " | ".join(esc[0]) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in esc[1:]])


def render_markdown(doc: dict, table_rows: dict | None = None, subject_docs: list[dict] | None = None) -> str:
    parts = [f"# Evaluation report: subject {doc['subject']}", ""] + [f"- {s}" for s in settings_lines(doc)]
    for _, title, (header, rows) in sections(doc, table_rows, subject_docs or []):
        parts += ["", f"## {title}", "", markdown_table(header, rows)]
    return "\n".join(parts) + "\n"


def render_comparison_markdown(comparison: dict) -> str:
    """comparison.md of ``python -m neuroclips.evaluate compare`` (evaluation/comparison.py)."""
    parts = [
        "# Paired comparison",
        "",
        f"- A: {comparison['a']}",
        f"- B: {comparison['b']}",
        f"- Same clips in both (clip = unit); {comparison['reps']} paired bootstrap resamples, "
        f"{comparison['permutations']} sign-flip permutations, seed {comparison['seed']}; p is two-sided, "
        "(1 + #as extreme) / (1 + permutations).",
    ]
    for kind in comparison["kinds"]:
        header, rows = comparison_rows(comparison, kind)
        parts += [
            "",
            f"## {kind} ({comparison['kinds'][kind]['n_clips']} clips)",
            "",
            markdown_table(header, rows),
        ]
    return "\n".join(parts) + "\n"
