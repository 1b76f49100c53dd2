"""Evaluation report: Markdown tables (metrics.md, comparison.md) and a self-contained HTML page (report.html:
tables and a ground-truth-vs-reconstruction GIF grid).

The modules are layered; each imports only the ones listed before it, so the HTML page can use the tables and the
writer can use the HTML page without an import circle (tests/test_layers.py checks the order):

    table1, inputs, media       the paper's Table 1; the files read beside the doc; frames as data URIs
    tables, settings_lines      the tables' rows and their order; the settings list
    markdown, gif_grid          metrics.md and comparison.md; the GIF grid
    html_page                   report.html
    write, __main__             atomic writes into a run dir; ``python -m neuroclips.report RUN_DIR ...``

The names below stay importable from ``neuroclips.report`` for callers (tasks/eval.py, tests).
"""

from neuroclips.report.gif_grid import (
    HEADER_SCORES,
    KIND_TITLES,
    PER_CLIP_COLUMNS,
    choose_clips,
    column_header,
)
from neuroclips.report.html_page import CSS, html_table, render_html
from neuroclips.report.inputs import (
    ground_truth_captions,
    on_simulated_data,
    sibling_subject_docs,
    stored_captions,
)
from neuroclips.report.markdown import markdown_table, render_comparison_markdown, render_markdown
from neuroclips.report.media import gif_base64
from neuroclips.report.settings_lines import CAPTION_SOURCES_TEXT, model_selection_line, standins_line
from neuroclips.report.table1 import COLUMN_TITLES, COLUMNS, DEFAULT_TABLE_ROWS, PAPER_TABLE1
from neuroclips.report.tables import fmt, fmt_ci, metric_rows, preset_rows, subject_rows, table1_rows
from neuroclips.report.write import write_reports, write_text

__all__ = [
    "CAPTION_SOURCES_TEXT",
    "COLUMNS",
    "COLUMN_TITLES",
    "CSS",
    "DEFAULT_TABLE_ROWS",
    "HEADER_SCORES",
    "KIND_TITLES",
    "PAPER_TABLE1",
    "PER_CLIP_COLUMNS",
    "choose_clips",
    "column_header",
    "fmt",
    "fmt_ci",
    "gif_base64",
    "ground_truth_captions",
    "html_table",
    "markdown_table",
    "metric_rows",
    "model_selection_line",
    "on_simulated_data",
    "preset_rows",
    "render_comparison_markdown",
    "render_html",
    "render_markdown",
    "sibling_subject_docs",
    "standins_line",
    "stored_captions",
    "subject_rows",
    "table1_rows",
    "write_reports",
    "write_text",
]
