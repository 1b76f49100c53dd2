"""Writing the reports into an eval run dir, each file atomically (a kill leaves the old file or the new one)."""

from __future__ import annotations

from pathlib import Path

from neuroclips.report.html_page import render_html
from neuroclips.report.inputs import sibling_subject_docs
from neuroclips.report.markdown import render_markdown
from neuroclips.utils.atomic import atomic_path


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_reports(
    run_dir: Path,
    doc: dict,
    per_clip_rows: list[dict],
    gt: dict,
    visuals: dict,
    cfg: dict | None = None,
    table_rows: dict | None = None,
) -> dict[str, str]:
    """Write metrics.md and report.html into ``run_dir``; return their paths."""
    cfg = cfg or {}
    subject_docs = sibling_subject_docs(run_dir) if cfg.get("combine_subjects", True) else []
    md = run_dir / "metrics.md"
    page = run_dir / "report.html"
    write_text(md, render_markdown(doc, table_rows, subject_docs))
    write_text(page, render_html(doc, per_clip_rows, gt, visuals, cfg, table_rows, subject_docs))
    return {"markdown": str(md), "report": str(page)}
