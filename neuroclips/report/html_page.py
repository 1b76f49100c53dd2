"""The self-contained HTML page (report.html): settings, tables, and the GIF grid after the first table."""

from __future__ import annotations

import html

from neuroclips.report.gif_grid import grid_html
from neuroclips.report.settings_lines import settings_lines
from neuroclips.report.tables import sections

CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:8px 0 24px;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px;
vertical-align:top;text-align:left}td{white-space:nowrap}table.wrap-first td:first-child,table.wrap-last td:last-child{white-space:normal}th{background:#f0f0f0}tbody tr:nth-child(even){background:#fafafa}
.grid img{image-rendering:pixelated;display:block}.scores{font-size:12px;margin-top:4px;white-space:normal}.idx{font-weight:bold}
.grid th{max-width:200px;white-space:normal}.caption{font-size:12px;font-style:italic;max-width:180px;white-space:normal;margin-top:4px}
ul.settings li{margin:2px 0;font-size:13px}"""


def html_table(header: list[str], rows: list[list[str]], css: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def render_html(
    doc: dict,
    per_clip_rows: list[dict],
    gt: dict,
    visuals: dict,
    cfg: dict | None = None,
    table_rows: dict | None = None,
    subject_docs: list[dict] | None = None,
) -> str:
    cfg = cfg or {}
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>neuroclips eval, subject {doc['subject']}</title>",
        f"<style>{CSS}</style></head><body><h1>Evaluation report: subject {doc['subject']}</h1>",
        "<ul class='settings'>"
        + "".join(f"<li>{html.escape(s)}</li>" for s in settings_lines(doc))
        + "</ul>",
    ]
    shown = sections(doc, table_rows, subject_docs or [])
    grid = (
        "<h2>Ground truth and reconstructions</h2><p>GIFs loop; ground truth and blurry clips at 3 fps, videos at "
        "8 fps (all generated frames). Scores are per clip (mean over frames; N-way = fraction of trials won).</p>"
        + grid_html(gt, visuals, per_clip_rows, cfg, doc)
    )
    grid_after = 1 if len(shown) > 1 and shown[1][1].startswith("Across subjects") else 0
    for i, (css, title, (header, rows)) in enumerate(shown):
        parts.append(f"<h2>{html.escape(title)}</h2>" + html_table(header, rows, css))
        if i == grid_after:
            parts.append(grid)
    parts.append("</body></html>")
    return "\n".join(parts)
