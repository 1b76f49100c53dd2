"""The CLIP image encoder of multi-fMRI fusion (keyframe similarity): local folder or random."""

from __future__ import annotations

from pathlib import Path

from neuroclips.models.frozen_classifiers import CLIP_ARCHS
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


def build_clip_image_encoder(
    pretrained: str = "random", size: str = "tiny", clip_dir: str | None = None, init_seed: int = 0
):
    """A ``ClipImageEmbedder`` (transformers ``CLIPVisionModelWithProjection``): local folder or random."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from neuroclips.generation.fusion import ClipImageEmbedder

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
    return ClipImageEmbedder(model, image_size=model.config.image_size)
