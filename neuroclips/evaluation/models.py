"""The frozen models the evaluation scores with (``scale.eval.models``), built from local paths or as tiny
random-weight stand-ins: frame and video classifiers (N-way), CLIP embedders (CLIP-PCC), RAFT (EPE), ViFi-CLIP.
"""

from __future__ import annotations

import torch
from torch import nn

from neuroclips.evaluation.flow_model import build_flow_estimator
from neuroclips.evaluation.suite import EvalModels
from neuroclips.evaluation.vifi_clip import build_vifi_clip
from neuroclips.models.frozen_classifiers import (
    build_clip_embedder,
    build_frame_classifier,
    build_video_classifier,
)


def build_eval_models(
    models_cfg: dict,
    clip_pcc: list[str],
    extra_metrics: list[str],
    device: torch.device,
    half_precision_on_gpu: bool = True,
    meta: bool = False,
) -> EvalModels:
    """The frozen scorers of ``scale.eval.models`` (frame and video classifiers, a CLIP per ``clip_pcc`` variant,
    RAFT for ``epe`` and ViFi-CLIP for ``vifi`` when ``extra_metrics`` name them), on ``device``. ``meta``: dry
    runs read no files, so ``source: local`` builds the real architecture with random weights on the meta device."""
    dtype = torch.float16 if (device.type == "cuda" and half_precision_on_gpu) else torch.float32
    m = models_cfg

    def spec(d) -> dict:
        d = dict(d or {})
        if meta and d.get("source") == "local":
            d["source"] = "random"  # dry runs read no files: the real architecture, on the meta device
        return d

    out = EvalModels()
    fc, vc = spec(m.get("frame_classifier")), spec(m.get("video_classifier"))
    if fc:
        out.frame_classifier = build_frame_classifier(
            fc.get("source", "tiny"),
            fc.get("path"),
            dtype=dtype,
            field="scale.eval.models.frame_classifier.path",
        )
        out.names["frame_classifier"] = fc.get("label") or f"ViT ImageNet ({fc.get('source', 'tiny')})"
    if vc:
        out.video_classifier = build_video_classifier(
            vc.get("source", "tiny"),
            vc.get("path"),
            num_frames=int(vc.get("num_frames", 6)),
            dtype=dtype,
            field="scale.eval.models.video_classifier.path",
        )
        out.names["video_classifier"] = vc.get("label") or f"VideoMAE K400 ({vc.get('source', 'tiny')})"
    clip_cfg = m.get("clip") or {}
    for variant in clip_pcc:
        c = spec(clip_cfg.get(variant))
        if not c:
            continue
        out.clip_embedders[variant] = build_clip_embedder(
            c.get("source", "tiny"),
            c.get("path"),
            arch=c.get("arch", "vit-b-32"),
            dtype=dtype,
            field=f"scale.eval.models.clip.{variant}.path",
        )
        out.names[variant] = c.get("label") or f"CLIP {c.get('arch', 'vit-b-32')} ({c.get('source', 'tiny')})"
    flow = spec(m.get("flow")) if "epe" in extra_metrics else {}
    if flow:
        out.flow = build_flow_estimator(
            flow.get("source", "tiny"),
            flow.get("path"),
            flow.get("arch", "large"),
            int(flow.get("size", 256)),
            int(flow.get("num_flow_updates", 12)),
            field="scale.eval.models.flow.path",
        )
        src = flow.get("source", "tiny")
        out.names["flow"] = (
            flow.get("label") or f"RAFT {'tiny' if src == 'tiny' else flow.get('arch', 'large')} ({src})"
        )
    vifi = spec(m.get("vifi")) if "vifi" in extra_metrics else {}
    if vifi:
        out.vifi = build_vifi_clip(
            vifi.get("source", "tiny"),
            vifi.get("path"),
            field="scale.eval.models.vifi.path",
            trust_pickle=bool(vifi.get("trust_pickle", False)),
        )
        out.names["vifi"] = vifi.get("label") or f"ViFi-CLIP ViT-B/16 ({vifi.get('source', 'tiny')})"
    if not meta:
        for mod in [
            out.frame_classifier,
            out.video_classifier,
            *out.clip_embedders.values(),
            out.flow,
            out.vifi,
        ]:
            if mod is not None:
                mod.to(device)
    return out


def dry_run_modules(models: EvalModels) -> dict[str, nn.Module]:
    """The modules of ``models`` by name (the ones built), for the dry run's parameter report."""
    mods = {"frame_classifier": models.frame_classifier, "video_classifier": models.video_classifier}
    mods.update({f"clip_{k}": v for k, v in models.clip_embedders.items()})
    mods.update({"flow": models.flow, "vifi": models.vifi})
    return {k: v for k, v in mods.items() if v is not None}
