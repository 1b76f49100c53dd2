"""ViFi-CLIP video encoder for the VIFI-score and for Mind-Animator's CLIP-pcc gate.

ViFi-CLIP (Rasheed et al., CVPR 2023) fine-tunes the whole CLIP ViT-B/16 on Kinetics-400; a video's embedding is
the mean over its frames of the CLIP image embeddings (``image_features.view(b, t, -1).mean(1)``), then
L2-normalised. VIFI-score (Mind-Animator, SemVideo) = cosine of the GT clip's and the reconstruction's video
embeddings; Mind-Animator's CLIP-pcc counts a clip as 0 when its VIFI-score is <= 0.6.

Sources: ``local`` -- a ViFi-CLIP checkpoint (``.pth``; its ``model`` dict, ``image_encoder.*`` keys, OpenAI CLIP
layout) at ``path``, loaded into open_clip's ViT-B/16 vision tower; never downloads. ``tiny`` -- a small random
vision transformer with the same interface. Preprocessing as CLIP: shortest edge 224 bicubic, centre crop, CLIP
mean/std (the ViFi-CLIP configs use 224 crops).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from neuroclips.models.generator_loading import load_checkpoint_dict
from neuroclips.utils.weights import MissingWeightsError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
TINY_SEED = 1234


class VideoEmbedder(nn.Module):
    """uint8 clips (B, T, 3, H, W) -> L2-normalised video embeddings (B, D) float32."""

    def __init__(self, visual: nn.Module, image_size: int):
        super().__init__()
        self.visual, self.image_size = visual, int(image_size)
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    @torch.no_grad()
    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        b, t = clips.shape[:2]
        x = clips.flatten(0, 1).to(self.mean.device, torch.float32) / 255.0
        h, w = x.shape[-2:]
        scale = self.image_size / min(h, w)
        size = (max(self.image_size, round(h * scale)), max(self.image_size, round(w * scale)))
        if (h, w) != size:
            x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).clamp_(0, 1)
        top, left = (x.shape[-2] - self.image_size) // 2, (x.shape[-1] - self.image_size) // 2
        x = x[..., top : top + self.image_size, left : left + self.image_size]
        x = ((x - self.mean) / self.std).to(next(self.visual.parameters()).dtype)
        frames = self.visual(x).float().view(b, t, -1)
        return F.normalize(frames.mean(1), dim=-1)


def _strip(state: dict) -> dict:
    """The vision tower's weights under open_clip's names: ``image_encoder.*`` (ViFi-CLIP) or ``visual.*`` (OpenAI
    CLIP) keys with the prefix removed, or a bare vision state dict as it is."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    for prefix in ("image_encoder.", "visual."):
        picked = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if picked:
            return picked
    return state


def build_vifi_clip(
    source: str = "tiny",
    path: str | None = None,
    field: str = "scale.eval.models.vifi.path",
    trust_pickle: bool = False,
) -> VideoEmbedder:
    from open_clip.transformer import VisionTransformer

    if source == "tiny":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(TINY_SEED)
            visual = VisionTransformer(
                image_size=32, patch_size=8, width=32, layers=2, heads=2, mlp_ratio=2.0, output_dim=16
            )
        return VideoEmbedder(visual.eval().requires_grad_(False), 32)
    if source not in ("local", "random"):
        raise ValueError(f"scale.eval.models.vifi.source: expected local, random or tiny, found {source!r}.")
    visual = VisionTransformer(
        image_size=224, patch_size=16, width=768, layers=12, heads=12, mlp_ratio=4.0, output_dim=512
    )
    if source == "local":
        p = Path(str(path)) if path else None
        if p is None or not p.is_file():
            raise MissingWeightsError(
                f"{p}: ViFi-CLIP checkpoint not found (config field '{field}'); put the ViFi-CLIP ViT-B/16 K400 "
                f".pth there or point '{field}' at it."
            )
        # the project's one checkpoint reader: weights_only unless the user trusts the file (ViFi-CLIP's .pth may hold
        # a pickled training config beside the weights under "model")
        state = _strip(load_checkpoint_dict(p, field, trust_pickle, "scale.eval.models.vifi.trust_pickle"))
        missing, unexpected = visual.load_state_dict(state, strict=False)
        if missing:
            raise MissingWeightsError(
                f"{p}: not a ViFi-CLIP checkpoint (config field '{field}'): {len(missing)} vision-tower weights "
                f"missing, e.g. {missing[:3]}."
            )
    return VideoEmbedder(visual.eval().requires_grad_(False), 224)


def vifi_score(
    embedder: nn.Module, gt: torch.Tensor, pred: torch.Tensor, batch_size: int = 16
) -> torch.Tensor:
    """(N,) cosine of the video embeddings of GT and reconstructed clips (N, T, 3, H, W) uint8."""
    out = []
    for s in range(0, gt.shape[0], batch_size):
        out.append(
            (embedder(gt[s : s + batch_size]) * embedder(pred[s : s + batch_size])).sum(-1).double().cpu()
        )
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)
