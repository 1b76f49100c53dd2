"""The report's tables as (header, rows) of strings, and the order both reports show them in.

Every number is printed with its label (protocol, model, frame selection). The paper's Table 1 rows are printed
beside ours, except on simulated data, where the paper's cc2017 numbers are not comparable.
"""

from __future__ import annotations

import numpy as np

from neuroclips.evaluation.comparison import comparison_rows
from neuroclips.report.inputs import on_simulated_data
from neuroclips.report.table1 import COLUMN_TITLES, COLUMNS, DEFAULT_TABLE_ROWS, PAPER_TABLE1


def fmt(value: float | None, std: float | None = None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if std is None else f"{value:.3f} ± {std:.3f}"


def fmt_ci(e: dict | None) -> str:
    if not e or e.get("ci_low") is None:
        return "–"
    return f"[{e['ci_low']:.3f}, {e['ci_high']:.3f}]"


def table1_rows(doc: dict, kind: str, table_rows: dict | None) -> tuple[list[str], list[list[str]]]:
    """Our rows in the paper's Table-1 columns, then the paper's rows — except on simulated data, where the paper's
    cc2017 numbers are not comparable and are left out (the same-run baselines are the comparison there)."""
    metrics = doc["kinds"].get(kind, {}).get("metrics", {})
    presets = doc["kinds"].get(kind, {}).get("presets")
    rows = []
    if table_rows is None and presets:
        for p in presets.values():
            cells = [fmt(e["value"], e["std"]) if e else "–" for e in (p["columns"].get(c) for c in COLUMNS)]
            rows.append(
                [f"ours: {p['title']} (± by {p['aggregation']}), subj {doc['subject']}, {kind}"] + cells
            )
    for name, mapping in (
        {} if table_rows is None and presets else (table_rows or DEFAULT_TABLE_ROWS)
    ).items():
        cells = [
            fmt(metrics[m]["value"], metrics[m]["std"]) if m in metrics else "–"
            for m in (mapping.get(c) for c in COLUMNS)
        ]
        rows.append([f"{name}, subj {doc['subject']}, {kind}"] + cells)
    if not on_simulated_data(doc):
        for name, values in PAPER_TABLE1.items():
            rows.append([name] + [fmt(v, s) for v, s in values])
    return ["Method"] + list(COLUMN_TITLES), rows


def metric_rows(doc: dict, kind: str) -> tuple[list[str], list[list[str]]]:
    metrics = doc["kinds"][kind]["metrics"]
    return ["Metric", "Value ± std", "95% CI (clips)", "Clips", "Aggregation", "How it was computed"], [
        [name, fmt(e["value"], e["std"]), fmt_ci(e), _clips(e), e.get("aggregation", "–"), e["label"]]
        for name, e in metrics.items()
    ]


def _clips(e: dict) -> str:
    return str(e["n"]) + (f" ({e['undefined']} undefined pairs left out)" if e.get("undefined") else "")


def baseline_rows(doc: dict, kind: str) -> tuple[list[str], list[list[str]]]:
    """Every metric of ``kind``: ours beside each same-run baseline (neuroclips/evaluation/baselines.py)."""
    ours = doc["kinds"][kind]["metrics"]
    baselines = doc["kinds"][kind].get("baselines", {})
    scored = {n: b["metrics"] for n, b in baselines.items() if "metrics" in b}
    header = ["Metric", "ours"] + [BASELINE_TITLES.get(n, n) for n in scored]
    rows = [
        [name, fmt(e["value"], e["std"])]
        + [fmt(m[name]["value"], m[name]["std"]) if name in m else "–" for m in scored.values()]
        for name, e in ours.items()
    ]
    rows += [
        [f"{BASELINE_TITLES.get(n, n)}: not scored", b["skipped"]]
        for n, b in baselines.items()
        if "skipped" in b
    ]
    return header, rows


BASELINE_TITLES = {"mean_frame": "mean training frame", "shuffled": "ours, clips permuted (shuffled fMRI)"}


def preset_rows(doc: dict, kind: str) -> tuple[list[str], list[list[str]]]:
    """Every column of every preset with its 95 % bootstrap interval and the aggregation that made it."""
    rows = []
    for p in doc["kinds"][kind].get("presets", {}).values():
        for col, e in p["columns"].items():
            if e:
                rows.append(
                    [p["title"], col, fmt(e["value"], e["std"]), fmt_ci(e), p["aggregation"], e["label"]]
                )
    return ["Preset", "Column", "Value ± std", "95% CI (clips)", "Aggregation", "How it was computed"], rows


def subject_rows(docs: list[dict], kind: str) -> tuple[list[str], list[list[str]]]:
    """One column per subject and their mean, for every metric all subjects share."""
    docs = sorted(docs, key=lambda d: d["subject"])
    names = [
        n
        for n in docs[0]["kinds"].get(kind, {}).get("metrics", {})
        if all(n in d["kinds"].get(kind, {}).get("metrics", {}) for d in docs)
    ]
    rows = []
    for n in names:
        vals = [d["kinds"][kind]["metrics"][n]["value"] for d in docs]
        rows.append([n] + [fmt(v) for v in vals] + [fmt(float(np.mean(vals))), fmt(float(np.std(vals)))])
    return ["Metric"] + [f"subj {d['subject']}" for d in docs] + ["mean", "std across subjects"], rows


def sections(doc: dict, table_rows: dict | None, subject_docs: list[dict]) -> list[tuple[str, str, tuple]]:
    """(css class, title, (header, rows)) in display order, shared by Markdown and HTML."""
    scored = [k for k, v in doc["kinds"].items() if "metrics" in v]
    out: list[tuple[str, str, tuple]] = []
    main = "video" if "video" in scored else scored[0]
    title = (
        f"Our scores in the paper's Table 1 columns ({main}; simulated data: the paper's cc2017 rows are not "
        "comparable and are not shown)"
        if on_simulated_data(doc)
        else f"Table 1 comparison ({main})"
    )
    out.append(("wrap-first", title, table1_rows(doc, main, table_rows)))
    if len(subject_docs) > 1:
        out.append(("", f"Across subjects ({main})", subject_rows(subject_docs, main)))
    for kind in scored:
        if doc["kinds"][kind].get("baselines"):
            out.append(
                (
                    "wrap-last",
                    f"Same-run baselines: {kind} (± std over clips; every baseline scored like ours on the same clips)",
                    baseline_rows(doc, kind),
                )
            )
        out.append(
            (
                "wrap-last",
                f"All metrics: {kind} ({doc['kinds'][kind]['frame_selection']})",
                metric_rows(doc, kind),
            )
        )
        if doc["kinds"][kind].get("presets"):
            out.append(("wrap-last", f"Peer protocols (presets): {kind}", preset_rows(doc, kind)))
    if doc.get("comparison"):
        for kind in doc["comparison"]["kinds"]:
            out.append(
                (
                    "wrap-last",
                    f"Paired comparison: {kind} (A = this source, B = {doc['comparison']['b']})",
                    comparison_rows(doc["comparison"], kind),
                )
            )
    if "retrieval" in doc and "forward" in doc["retrieval"]:
        r = doc["retrieval"]
        out.append(
            (
                "wrap-last",
                "Retrieval (SR)",
                (
                    ["Direction", "Top-1", "How"],
                    [
                        ["forward (fMRI → keyframe)", fmt(r["forward"]), r["label"]],
                        ["backward (keyframe → fMRI)", fmt(r["backward"]), r["label"]],
                    ],
                ),
            )
        )
    return out
