"""The CLIP image encoder of multi-fMRI fusion (keyframe similarity): local folder or random."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from neuroclips.models.captioning import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
from neuroclips.models.frozen_classifier_configs import CLIP_ARCHS
from neuroclips.models.generator_loading import building_on_meta, check_choice, seeded_init
from neuroclips.utils.weights import require_file

CLIP_VISION_CONFIGS = {
    "paper": CLIP_ARCHS["vit-b-32"],  # openai/clip-vit-base-patch32, as the evaluation uses it
    "tiny": dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
        projection_dim=32,
    ),
}


class KeyframeClipEmbedder(nn.Module):
    """Images (B, 3, H, W) in [0, 1] -> unit-norm CLIP image embeddings (B, D), for the fusion's keyframe similarity
    (bicubic resize in torch; the CLIP-pcc metric's embedder is ``frozen_classifiers.ClipImageEmbedder``)."""

    def __init__(self, model: nn.Module, image_size: int = 224) -> None:
        super().__init__()
        self.model = model
        self.image_size = image_size
        self.register_buffer("mean", torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1), persistent=False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images.float(), size=(self.image_size,) * 2, mode="bicubic", align_corners=False)
        x = ((x.clamp(0, 1) - self.mean) / self.std).to(next(self.model.parameters()).dtype)
        return F.normalize(self.model(pixel_values=x).image_embeds.float(), dim=-1)


def build_clip_image_encoder(
    pretrained: str = "random", size: str = "tiny", clip_dir: str | None = None, init_seed: int = 0
):
    """A ``KeyframeClipEmbedder`` (transformers ``CLIPVisionModelWithProjection``): local folder or random."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    check_choice("scale.pretrained", pretrained, ("random", "local"))
    check_choice("scale.gen.size", size, CLIP_VISION_CONFIGS)
    if pretrained == "local" and not building_on_meta():
        folder = require_file(
            Path(str(clip_dir)) / "config.json", "scale.gen.fusion.clip_dir", "CLIP folder"
        ).parent
        model = CLIPVisionModelWithProjection.from_pretrained(folder, local_files_only=True)
    else:
        with seeded_init(init_seed):
            model = CLIPVisionModelWithProjection(CLIPVisionConfig(**CLIP_VISION_CONFIGS[size]))
    model.requires_grad_(False).eval()
    return KeyframeClipEmbedder(model, image_size=model.config.image_size)
