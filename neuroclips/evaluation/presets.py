"""Peer protocols by name: which of our metrics, which aggregation and which numeric precision each peer's runner uses.

A preset turns the metrics the suite computed (``suite.py``) into the row that peer's code would have printed: its
metric variants, its aggregation (``neuroclips.metrics.aggregate``), and for N-way its classifier precision, softmax
dtype and tie rule. Every reported number also carries a seeded bootstrap 95 % interval over clips.

Options that change every preset at once (config ``task.*``, null = each preset's own):

* ``softmax_dtype``: ``logits`` takes the N-way softmax in the classifier's dtype (fp16 on GPU for MinD-Video, as its
  runner does); ``float32`` keeps fp32 (the pre-preset behaviour of this project).
* ``classifier_dtype``: ``float16`` or ``float32`` for the N-way classifiers. fp16 only applies on CUDA (the
  references never ran on CPU, where fp16 matmuls are slow): on CPU every classifier runs in fp32.
* ``ties``: how an exact tie between the GT candidate and a distractor counts (``neuroclips.metrics.nway``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from neuroclips.metrics.aggregate import check_aggregation
from neuroclips.metrics.nway import NWAY_TIES

SOFTMAX_DTYPES = ("logits", "float32")
CLASSIFIER_DTYPES = ("float16", "float32")
# the Table-1 columns a preset fills (report.COLUMNS) plus the other metrics the field reports
PRESET_COLUMNS = (
    "video_2way",
    "video_50way",
    "clip_pcc",
    "frame_2way",
    "frame_50way",
    "ssim",
    "psnr",
    "mse",
    "hue_pcc",
    "epe",
    "vifi",
)


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    upstream: str  # the code this preset follows: repository, file, commit where it matters
    nway_protocol: str  # neuroclips.metrics.nway.NWAY_PROTOCOLS
    ssim: str | None
    psnr: str | None
    clip_pcc: str | None  # CLIP-pcc variant (neuroclips.metrics.clip_pcc)
    aggregation: str  # neuroclips.metrics.aggregate.AGGREGATIONS
    classifier_dtype: str = "float32"
    softmax_dtype: str = "float32"
    ties: str = "distractor_wins"
    clip_pcc_gate: bool = False  # Mind-Animator: a clip's CLIP-pcc is 0 when its VIFI-score is <= 0.6
    extra: tuple[str, ...] = field(default_factory=tuple)  # of "mse", "hue_pcc", "epe", "vifi"
    notes: str = ""

    def columns(self) -> dict[str, str | None]:
        """Table column -> our metric name (None: this peer does not report it)."""
        p = self.nway_protocol
        cols = {
            "video_2way": f"video_2way_{p}",
            "video_50way": f"video_50way_{p}",
            "clip_pcc": f"clip_pcc_{self.clip_pcc}" if self.clip_pcc else None,
            "frame_2way": f"frame_2way_{p}",
            "frame_50way": f"frame_50way_{p}",
            "ssim": f"ssim_{self.ssim}" if self.ssim else None,
            "psnr": f"psnr_{self.psnr}" if self.psnr else None,
        }
        cols.update({c: (c if c in self.extra else None) for c in ("mse", "hue_pcc", "epe", "vifi")})
        return cols

    def describe(self) -> str:
        return (
            f"{self.title}: N-way {self.nway_protocol}, SSIM {self.ssim}, PSNR {self.psnr}, CLIP-pcc {self.clip_pcc}"
            f"{' (ViFi-CLIP gate 0.6)' if self.clip_pcc_gate else ''}, aggregation {self.aggregation}, classifiers "
            f"{self.classifier_dtype}, softmax {self.softmax_dtype}, ties {self.ties}; follows {self.upstream}"
        )


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="mindvideo",
            title="MinD-Video protocol",
            upstream="jqin4749/MindVideo eval_metrics.py (fp16 classifiers on GPU, softmax in fp16)",
            nway_protocol="mindvideo",
            ssim="rgb255",
            psnr="skimage",  # MinD-Video computes MSE, not PSNR: this column is the Table-1 comparison's
            clip_pcc="adjacent",  # MinD-Video has no CLIP-pcc: NeuroClips' Table 1 compares adjacent-frame CLIP-pcc
            aggregation="per_position",
            classifier_dtype="float16",
            softmax_dtype="logits",
            extra=("mse",),
        ),
        Preset(
            name="neurons",
            title="NEURONS runner",
            upstream="xmed-lab/NEURONS run_metrics.py since commit 79f9346 (2025-04-29): all-pairs ViT-L/14 "
            "CLIP-pcc, the adjacent-pair function removed; ViT, VideoMAE and CLIP-L in fp32",
            nway_protocol="mindvideo",
            ssim="gray_gauss_columns",
            psnr="skimage",
            clip_pcc="all_pairs",
            aggregation="all_pairs",
        ),
        Preset(
            name="mind_animator",
            title="Mind-Animator",
            upstream="Mind-Animator SSIM.py, PSNR.py, CLIP_consist.py (ViT-B/32, ViFi-CLIP gate), Hue_pcc.py, "
            "EPE.py (RAFT), VIFI score",
            nway_protocol="mindvideo",
            ssim="rgb255",
            psnr="mind_animator",
            clip_pcc="adjacent",
            aggregation="per_clip",
            clip_pcc_gate=True,
            extra=("hue_pcc", "epe", "vifi"),
        ),
        Preset(
            name="strict",
            title="strict (ours)",
            upstream="this project: top-1 GT class, 2-D gray SSIM, all-pairs CLIP-pcc",
            nway_protocol="strict",
            ssim="gray_gauss",
            psnr="skimage",
            clip_pcc="all_pairs",
            aggregation="per_position",
            extra=("mse", "hue_pcc", "epe", "vifi"),
        ),
    )
}


def resolve_presets(
    names: list[str],
    softmax_dtype: str | None = None,
    classifier_dtype: str | None = None,
    ties: str | None = None,
    aggregation: str | None = None,
) -> list[Preset]:
    """The named presets with the task-wide overrides applied (None keeps each preset's own choice)."""
    out = []
    for n in names:
        if n not in PRESETS:
            raise ValueError(f"task.presets: expected names from {sorted(PRESETS)}, found {n!r}.")
        p = PRESETS[n]
        for key, value, allowed in (
            ("softmax_dtype", softmax_dtype, SOFTMAX_DTYPES),
            ("classifier_dtype", classifier_dtype, CLASSIFIER_DTYPES),
            ("ties", ties, NWAY_TIES),
        ):
            if value is not None:
                if value not in allowed:
                    raise ValueError(f"task.{key}: expected one of {allowed} or null, found {value!r}.")
                p = replace(p, **{key: value})
        if aggregation is not None:
            p = replace(p, aggregation=check_aggregation(aggregation))
        out.append(p)
    return out


def _effective(scorer, preset: Preset) -> tuple[str, str]:
    """(classifier dtype, softmax dtype) as they run on this device: fp16 only on CUDA; fp32 logits' softmax is fp32."""
    dtype = preset.classifier_dtype if scorer.device.type == "cuda" else "float32"
    return dtype, (preset.softmax_dtype if dtype == "float16" else "float32")


def _base_dtype(scorer, level: str) -> str:
    model = getattr(scorer.models, f"{level}_classifier")
    return "float16" if next(model.parameters()).dtype == torch.float16 else "float32"


def _nway_entry(scorer, preset: Preset, name: str) -> dict | None:
    level = name.split("_", 1)[0]
    if getattr(scorer.models, f"{level}_classifier") is None or (level == "video" and not scorer.is_video):
        return None
    dtype, softmax = _effective(scorer, preset)
    s = scorer.nway
    base_softmax = s.softmax_dtype if _base_dtype(scorer, level) == "float16" else "float32"
    same = dtype == _base_dtype(scorer, level) and softmax == base_softmax and preset.ties == s.ties
    if not (same and name in scorer.values):
        variant = f"{name}@{dtype}_{softmax}_{preset.ties}"
        if variant not in scorer.values:
            n_way = int(name.split("_")[1].removesuffix("way"))
            scorer.add_nway(
                variant,
                level,
                preset.nway_protocol,
                n_way,
                None if dtype == _base_dtype(scorer, level) else dtype,
                softmax,
                preset.ties,
            )
        name = variant
    return scorer.entry(name, preset.aggregation)


def preset_row(scorer, preset: Preset) -> dict:
    """The peer's row from the values the scorer holds: {title, description, aggregation, columns: {col: entry}}.
    A column the peer does not report, or that this run could not compute, is None."""
    cols: dict[str, dict | None] = {}
    for col, name in preset.columns().items():
        if name is None:
            cols[col] = None
        elif col.startswith(("video_", "frame_")):
            cols[col] = _nway_entry(scorer, preset, name)
        elif name not in scorer.values:
            cols[col] = None
        elif col == "clip_pcc" and preset.clip_pcc_gate:
            gated = scorer.gated_clip_pcc(preset.clip_pcc)
            if gated is None:
                cols[col] = None  # no VIFI-scores: the gate cannot be applied, so no gated number is shown
                continue
            label, _ = scorer._labels[name]
            scorer.add(f"{name}@vifi_gate", gated, preset.aggregation, f"{label}, 0 where VIFI-score <= 0.6")
            cols[col] = scorer.entry(f"{name}@vifi_gate", preset.aggregation)
        else:
            cols[col] = scorer.entry(name, preset.aggregation)
    return {
        "title": preset.title,
        "description": preset.describe(),
        "aggregation": preset.aggregation,
        "upstream": preset.upstream,
        "columns": cols,
    }
