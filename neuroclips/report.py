"""Evaluation report: Markdown tables and a self-contained HTML page (tables + GT-vs-reconstruction GIF grid).

Every number is printed with its label (protocol, model, frame selection). The paper's Table 1 rows
(method.md 9.1) are printed beside ours for reference; they were computed with the MinD-Video classifier code, and
the paper does not say which SSIM/PSNR settings it used, so our rows name theirs.

``python -m neuroclips.report RUN_DIR [RUN_DIR ...]`` re-renders the reports of finished eval runs and, given
several subjects' eval dirs, writes the across-subject table into the first one.
"""

from __future__ import annotations

import base64
import html
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from neuroclips.evaluation.comparison import comparison_rows
from neuroclips.utils.atomic import atomic_path

COLUMNS = ("video_2way", "video_50way", "clip_pcc", "frame_2way", "frame_50way", "ssim", "psnr")
COLUMN_TITLES = ("Video 2-way", "Video 50-way", "CLIP-pcc", "Frame 2-way", "Frame 50-way", "SSIM", "PSNR")

# NeuroClips paper Table 1 (method.md 9.1): value, +-. MinD-Video and NeuroClips rows average 3 subjects.
PAPER_TABLE1: dict[str, tuple] = {
    "MinD-Video 2023 (paper)": (
        (0.839, 0.03),
        (0.197, 0.02),
        (0.408, 0.46),
        (0.796, 0.03),
        (0.174, 0.03),
        (0.171, 0.08),
        (8.662, 1.52),
    ),
    "NeuroClips avg (paper)": (
        (0.834, 0.03),
        (0.220, 0.01),
        (0.738, 0.17),
        (0.806, 0.03),
        (0.203, 0.01),
        (0.390, 0.08),
        (9.211, 1.46),
    ),
    "NeuroClips subj 1 (paper)": (
        (0.830, 0.03),
        (0.208, 0.01),
        (0.736, 0.12),
        (0.799, 0.03),
        (0.187, 0.01),
        (0.392, 0.08),
        (9.226, 1.42),
    ),
    "NeuroClips subj 2 (paper)": (
        (0.837, 0.03),
        (0.230, 0.01),
        (0.742, 0.19),
        (0.811, 0.03),
        (0.210, 0.01),
        (0.392, 0.08),
        (9.336, 1.52),
    ),
    "NeuroClips subj 3 (paper)": (
        (0.835, 0.03),
        (0.221, 0.01),
        (0.735, 0.20),
        (0.807, 0.03),
        (0.213, 0.01),
        (0.387, 0.09),
        (9.072, 1.44),
    ),
}

# Our rows of the Table-1 comparison when a metrics.json has no preset rows (written before presets existed) or
# task.table_rows is set: which of our metrics fills each column. New runs show one row per preset instead.
DEFAULT_TABLE_ROWS: dict[str, dict[str, str]] = {
    "ours: MinD-Video protocol (top-3 GT, SSIM rgb255, PSNR skimage, CLIP-pcc adjacent)": {
        "video_2way": "video_2way_mindvideo",
        "video_50way": "video_50way_mindvideo",
        "clip_pcc": "clip_pcc_adjacent",
        "frame_2way": "frame_2way_mindvideo",
        "frame_50way": "frame_50way_mindvideo",
        "ssim": "ssim_rgb255",
        "psnr": "psnr_skimage",
    },
    # NEURONS' runner reports all-pairs ViT-L/14 CLIP-pcc since its commit 79f9346 (evaluation/presets.py)
    "ours: NEURONS runner (top-3 GT, SSIM gray_gauss_columns, PSNR skimage, CLIP-pcc all_pairs)": {
        "video_2way": "video_2way_mindvideo",
        "video_50way": "video_50way_mindvideo",
        "clip_pcc": "clip_pcc_all_pairs",
        "frame_2way": "frame_2way_mindvideo",
        "frame_50way": "frame_50way_mindvideo",
        "ssim": "ssim_gray_gauss_columns",
        "psnr": "psnr_skimage",
    },
    "ours: strict (top-1 GT, SSIM gray_gauss, PSNR skimage, CLIP-pcc all_pairs)": {
        "video_2way": "video_2way_strict",
        "video_50way": "video_50way_strict",
        "clip_pcc": "clip_pcc_all_pairs",
        "frame_2way": "frame_2way_strict",
        "frame_50way": "frame_50way_strict",
        "ssim": "ssim_gray_gauss",
        "psnr": "psnr_skimage",
    },
}
# per-clip scores printed under each reconstruction in the GIF grid: metric -> short label
PER_CLIP_COLUMNS = {
    "video_2way_mindvideo": "video 2-way",
    "frame_2way_mindvideo": "frame 2-way",
    "ssim_rgb255": "SSIM rgb255",
    "psnr_skimage": "PSNR",
    "clip_pcc_adjacent": "CLIP-pcc adj.",
}


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def fmt(value: float | None, std: float | None = None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if std is None else f"{value:.3f} ± {std:.3f}"


# ------------------------------------------------------------------------------------------------ tables
def fmt_ci(e: dict | None) -> str:
    if not e or e.get("ci_low") is None:
        return "–"
    return f"[{e['ci_low']:.3f}, {e['ci_high']:.3f}]"


def on_simulated_data(doc: dict) -> bool:
    """True when the ground truth is a `neuroclips.data.simulate` file (its `source` attribute says so)."""
    try:
        import h5py

        with h5py.File(doc["data_file"], "r") as f:
            return str(f.attrs.get("source", "")) == "simulated"
    except (OSError, KeyError, TypeError):
        return False


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


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in r] for r in [header] + rows]
    lines = ["| " + " | ".join(esc[0]) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in esc[1:]])


def html_table(header: list[str], rows: list[list[str]], css: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def sibling_subject_docs(run_dir: Path) -> list[dict]:
    """metrics.json of the same experiment's eval runs for every subject (``runs/<name>/subj*/<stage>``)."""
    docs = []
    for p in sorted(run_dir.parent.parent.glob(f"subj*/{run_dir.name}/metrics.json")):
        try:
            docs.append(json.loads(p.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return docs


def _sections(doc: dict, table_rows: dict | None, subject_docs: list[dict]) -> list[tuple[str, str, tuple]]:
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


def model_selection_line(doc: dict) -> str | None:
    """One sentence on how the fit stages chose their checkpoints (``doc["model_selection"]``, tasks/eval.py)."""
    sel = doc.get("model_selection") or {}
    on_test = {s: v for s, v in sel.items() if v.get("val_split") == "test"}
    if on_test:
        how = [
            f"{s} kept its last epoch (its validation scored the test clips)"
            if v.get("monitor") in (None, "epoch")
            else f"{s} kept the epoch of {'maximum' if v.get('monitor_mode') == 'max' else 'minimum'} {v['monitor']} "
            f"on the test clips"
            for s, v in on_test.items()
        ]
        return (
            "Model selection looked at the TEST set: "
            + "; ".join(how)
            + " (stage.selection=reference_test, the "
            "reference's choice), so these test numbers are not independent of checkpoint selection."
        )
    if sel:
        return (
            f"Model selection: on the validation split carved from the training clips ({', '.join(sel)}); the "
            "test set was not used to choose checkpoints."
        )
    return None


CAPTION_SOURCES_TEXT = {
    "blip2": "the BLIP-2 captioner (at scale tiny random, or fitted to the simulated captions by stage=standins "
    "when scale.gen.caption.pretrained=local, as in experiment=demo)",
    "nearest_train": "the caption of the nearest training clip in CLIP-token space (no captioner model)",
    "none": "none (no captions)",
}


def standins_line(doc: dict, caption_source: str | None = None) -> str:
    """Scale tiny: which frozen models were fitted stand-ins and which are random (fitted ones are labelled so)."""
    fitted = {k: v for k, v in doc["models"].items() if "stand-in" in str(v)}
    random = [k for k in doc["models"] if k not in fitted]
    captions = CAPTION_SOURCES_TEXT.get(caption_source or "blip2", str(caption_source))
    return (
        "Scale tiny, frozen models. Fitted stand-ins (stage=standins, on the simulated training clips only): the VAE"
        + "".join(f"; {k}: {v}" for k, v in fitted.items())
        + ". Random (untrained) stand-ins: the unCLIP keyframe generator, the AnimateDiff video generator"
        + "".join(f", {k}" for k in random)
        + f". Captions: {captions}. The keyframe and video columns therefore show that the pipeline runs end to "
        "end, not reconstruction quality, and scores of random models measure nothing; the blurry column comes "
        "from the trained Perceptual Reconstructor."
    )


def _settings_lines(doc: dict) -> list[str]:
    nw = doc["nway"]
    skipped = {k: v["skipped"] for k, v in doc["kinds"].items() if "skipped" in v}
    lines = [
        f"Subject {doc['subject']}, scale {doc['scale']}, split {doc['split']}; reconstructions: {doc['source']} "
        f"(layout {doc['layout']}); ground truth: {doc['data_file']}.",
        f"Frame selection: generated frames {doc['frame_indices']} → the 6 GT frames (clips with 6 frames are used "
        f"as given); keyframes vs GT frame {doc['keyframe_gt_index']}; scene-cut clips "
        f"{'dropped' if doc['drop_scene_cuts'] else 'kept'}.",
        f"N-way: protocols {nw['protocols']}, N in {nw['n_ways']}, top-{nw['top_k']}, {nw['num_trials']} trials, "
        f"seed {nw['seed']}, sampler {nw['sampler']}.",
        "Models: " + "; ".join(f"{k}: {v}" for k, v in doc["models"].items()) + ".",
        *[f"Preset {d}." for d in (doc.get("presets") or {}).values()],
        *(
            [
                f"Intervals: percentile bootstrap {b['level']:.0%} over clips (clips resampled, not frames), "
                f"{b['reps']} resamples, seed {b['seed']}."
            ]
            if (b := doc.get("bootstrap"))
            else []
        ),
        "Paper rows: NeuroClips Table 1 as published (N-way by the MinD-Video code; SSIM/PSNR settings unstated).",
    ]
    if doc["scale"] == "tiny":
        sidecars = stored_captions(doc)
        lines.append(standins_line(doc, next((m.get("caption_source") for m in sidecars.values()), None)))
    if on_simulated_data(doc):
        lines[[i for i, line in enumerate(lines) if line.startswith("Paper rows")][0]] = (
            "Paper rows: not shown — the ground truth here is simulated (neuroclips.data.simulate), so "
            "NeuroClips' cc2017 numbers are not comparable with these."
        )
    if skipped:
        lines.append("Not scored: " + "; ".join(f"{k} ({v})" for k, v in skipped.items()) + ".")
    selection = model_selection_line(doc)
    if selection:
        lines.insert(1, selection)
    return lines


def render_markdown(doc: dict, table_rows: dict | None = None, subject_docs: list[dict] | None = None) -> str:
    parts = [f"# Evaluation report: subject {doc['subject']}", ""] + [f"- {s}" for s in _settings_lines(doc)]
    for _, title, (header, rows) in _sections(doc, table_rows, subject_docs or []):
        parts += ["", f"## {title}", "", markdown_table(header, rows)]
    return "\n".join(parts) + "\n"


# ------------------------------------------------------------------------------------------------ captions
def stored_captions(doc: dict, clips=None) -> dict[int, dict]:
    """Caption sidecars ({"text", "caption_source", ...}) of our outputs store (`<source>/caption/<clip>.json`)."""
    folder = Path(str(doc.get("source", ""))) / "caption"
    if not folder.is_dir():
        return {}
    out = {}
    for path in sorted(folder.glob("*.json")):
        if path.stem.isdigit() and (clips is None or int(path.stem) in clips):
            try:
                out[int(path.stem)] = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
    return out


def ground_truth_captions(doc: dict) -> dict[int, str]:
    """The data file's captions of the evaluated split, by clip index ({} when the file has none)."""
    try:
        import h5py

        with h5py.File(doc["data_file"], "r") as f:
            group = f[f"stimuli/{doc['split']}"]
            texts = [t.decode() if isinstance(t, bytes) else str(t) for t in group["captions"][:]]
            return dict(zip((int(c) for c in group["clip_index"][:]), texts))
    except (OSError, KeyError, TypeError):
        return {}


# ------------------------------------------------------------------------------------------------ GIFs
def _display(frames: np.ndarray, size: int) -> list[Image.Image]:
    """uint8 (T, 3, H, W) or (3, H, W) -> PIL images scaled to `size` pixels high."""
    arr = frames[None] if frames.ndim == 3 else frames
    out = []
    for f in arr:
        im = Image.fromarray(np.ascontiguousarray(f.transpose(1, 2, 0)))
        w = max(1, round(im.width * size / im.height))
        out.append(im.resize((w, size), Image.NEAREST if im.height < size else Image.BILINEAR))
    return out


def gif_base64(frames: np.ndarray, fps: float, size: int) -> str:
    """An animated GIF (looping) of uint8 frames, base64-encoded for an <img src="data:...">."""
    images = _display(frames, size)
    buf = io.BytesIO()
    if len(images) == 1:
        images[0].save(buf, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    images[0].save(
        buf, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0
    )
    return "data:image/gif;base64," + base64.b64encode(buf.getvalue()).decode()


def choose_clips(available: list[int], wanted) -> list[int]:
    if isinstance(wanted, (list, tuple)):
        return [c for c in wanted if c in available]
    n = min(int(wanted), len(available))
    return [available[i] for i in np.linspace(0, len(available) - 1, n).round().astype(int)] if n else []


KIND_TITLES = {
    "keyframe": "keyframe: unCLIP image from the SR's predicted CLIP tokens (its caption below)",
    "blurry": "blurry video: the PR's 6 frames, decoded by the VAE",
    "video": "final video: AnimateDiff + SparseCtrl from keyframe, blurry video (α) and caption",
}
HEADER_SCORES = {
    "ssim_rgb255": "SSIM",
    "pixcorr": "PixCorr",
    "frame_2way_mindvideo": "frame 2-way",
    "video_2way_mindvideo": "video 2-way",
}


def column_header(kind: str, doc: dict | None) -> str:
    """What a picture column shows and its scores over all evaluated clips (HTML)."""
    metrics = ((doc or {}).get("kinds", {}).get(kind) or {}).get("metrics", {})
    scores = ", ".join(
        f"{label} {metrics[m]['value']:.3f}" for m, label in HEADER_SCORES.items() if m in metrics
    )
    title = html.escape(KIND_TITLES.get(kind, kind))
    return title + (f"<div class='scores'>all clips: {html.escape(scores)}</div>" if scores else "")


def _grid_html(gt: dict, visuals: dict, per_clip_rows: list[dict], cfg: dict, doc: dict | None = None) -> str:
    kinds = [k for k in ("keyframe", "blurry", "video") if k in visuals] + [
        k for k in visuals if k not in ("keyframe", "blurry", "video")
    ]
    available = sorted(set(gt) & set().union(*[set(v) for v in visuals.values()])) if visuals else []
    clips = choose_clips(available, cfg.get("clips", 8))
    if not clips:
        return "<p>No clips to show.</p>"
    size = int(cfg.get("display_size", 160))
    fps = cfg.get("fps", {"gt": 3, "blurry": 3, "video": 8})
    scores = {(r["kind"], r["clip_index"]): r for r in per_clip_rows}
    head = "<th>clip</th><th>ground truth (its simulated caption below)</th>" + "".join(
        f"<th>{column_header(k, doc)}</th>" for k in kinds
    )
    gt_captions = ground_truth_captions(doc) if doc else {}
    captions = {c: m.get("text", "") for c, m in (stored_captions(doc, set(clips)) if doc else {}).items()}
    rows = []
    for c in clips:
        gt_caption = f"<div class='caption'>{html.escape(gt_captions[c])}</div>" if c in gt_captions else ""
        cells = [
            f"<td class='idx'>{c}</td>",
            f"<td><img src='{gif_base64(gt[c], fps.get('gt', 3), size)}'>{gt_caption}</td>",
        ]
        for k in kinds:
            frames = visuals[k].get(c)
            if frames is None:
                cells.append("<td>–</td>")
                continue
            img = gif_base64(frames, fps.get(k, 3) if frames.ndim == 4 else 1, size)
            r = scores.get((k, c), {})
            caption = "<br>".join(
                f"{html.escape(short)} {r[m]:.3f}" for m, short in PER_CLIP_COLUMNS.items() if m in r
            )
            said = (
                f"<div class='caption'>“{html.escape(captions[c])}”</div>"
                if k == "keyframe" and captions.get(c)
                else ""
            )
            cells.append(f"<td><img src='{img}'>{said}<div class='scores'>{caption}</div></td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table class='grid'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:8px 0 24px;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px;
vertical-align:top;text-align:left}td{white-space:nowrap}table.wrap-first td:first-child,table.wrap-last td:last-child{white-space:normal}th{background:#f0f0f0}tbody tr:nth-child(even){background:#fafafa}
.grid img{image-rendering:pixelated;display:block}.scores{font-size:12px;margin-top:4px;white-space:normal}.idx{font-weight:bold}
.grid th{max-width:200px;white-space:normal}.caption{font-size:12px;font-style:italic;max-width:180px;white-space:normal;margin-top:4px}
ul.settings li{margin:2px 0;font-size:13px}"""


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
        + "".join(f"<li>{html.escape(s)}</li>" for s in _settings_lines(doc))
        + "</ul>",
    ]
    sections = _sections(doc, table_rows, subject_docs or [])
    grid = (
        "<h2>Ground truth and reconstructions</h2><p>GIFs loop; ground truth and blurry clips at 3 fps, videos at "
        "8 fps (all generated frames). Scores are per clip (mean over frames; N-way = fraction of trials won).</p>"
        + _grid_html(gt, visuals, per_clip_rows, cfg, doc)
    )
    grid_after = 1 if len(sections) > 1 and sections[1][1].startswith("Across subjects") else 0
    for i, (css, title, (header, rows)) in enumerate(sections):
        parts.append(f"<h2>{html.escape(title)}</h2>" + html_table(header, rows, css))
        if i == grid_after:
            parts.append(grid)
    parts.append("</body></html>")
    return "\n".join(parts)


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


def main(argv: list[str] | None = None) -> int:
    """Re-render Markdown for finished eval dirs; several dirs -> across-subject table in the first one."""
    dirs = [Path(a) for a in (sys.argv[1:] if argv is None else argv)]
    if not dirs:
        raise SystemExit("report: usage: python -m neuroclips.report RUN_DIR [RUN_DIR ...] (eval run dirs)")
    docs = [json.loads((d / "metrics.json").read_text()) for d in dirs]
    write_text(dirs[0] / "metrics.md", render_markdown(docs[0], None, docs if len(docs) > 1 else []))
    print(dirs[0] / "metrics.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
