"""The HTML grid of ground truth beside each reconstruction kind: a looping GIF per clip, with its scores and
captions under it and each column titled with what it shows and its scores over all clips."""

from __future__ import annotations

import html

import numpy as np

from neuroclips.report.inputs import ground_truth_captions, stored_captions
from neuroclips.report.media import gif_base64

# per-clip scores printed under each reconstruction in the GIF grid: metric -> short label
PER_CLIP_COLUMNS = {
    "video_2way_mindvideo": "video 2-way",
    "frame_2way_mindvideo": "frame 2-way",
    "ssim_rgb255": "SSIM rgb255",
    "psnr_skimage": "PSNR",
    "clip_pcc_adjacent": "CLIP-pcc adj.",
}

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


def choose_clips(available: list[int], wanted) -> list[int]:
    if isinstance(wanted, (list, tuple)):
        return [c for c in wanted if c in available]
    n = min(int(wanted), len(available))
    return [available[i] for i in np.linspace(0, len(available) - 1, n).round().astype(int)] if n else []


def column_header(kind: str, doc: dict | None) -> str:
    """What a picture column shows and its scores over all evaluated clips (HTML)."""
    metrics = ((doc or {}).get("kinds", {}).get(kind) or {}).get("metrics", {})
    scores = ", ".join(
        f"{label} {metrics[m]['value']:.3f}" for m, label in HEADER_SCORES.items() if m in metrics
    )
    title = html.escape(KIND_TITLES.get(kind, kind))
    return title + (f"<div class='scores'>all clips: {html.escape(scores)}</div>" if scores else "")


def grid_html(gt: dict, visuals: dict, per_clip_rows: list[dict], cfg: dict, doc: dict | None = None) -> str:
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
