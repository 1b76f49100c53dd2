"""Architectures of the frozen evaluation models (``models.frozen_classifiers``), per size: ImageNet ViT (frame
N-way), VideoMAE-K400 (video N-way), CLIP vision towers (CLIP-pcc; the fusion encoder reuses them). Plain configs
built without weights, so the stand-in fits (``tasks.standin_classifiers``) and shape checks share them.
"""

from __future__ import annotations

VIDEOMAE_EVAL_FRAMES = 6  # the reference sets num_frames to the 6 ground-truth frames (3 fps x 2 s)


def vit_config(size: str):
    from transformers import ViTConfig

    if size == "tiny":
        return ViTConfig(
            image_size=32,
            patch_size=8,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=37,
            num_labels=1000,
        )
    # google/vit-base-patch16-224: the ViTConfig defaults are ViT-B/16 at 224; ImageNet-1k head
    return ViTConfig(image_size=224, patch_size=16, num_labels=1000)


def videomae_config(size: str, num_frames: int = VIDEOMAE_EVAL_FRAMES):
    from transformers import VideoMAEConfig

    if size == "tiny":
        return VideoMAEConfig(
            image_size=32,
            patch_size=8,
            num_frames=num_frames,
            tubelet_size=2,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=37,
            num_labels=400,
            use_mean_pooling=True,
        )
    # MCG-NJU/videomae-base-finetuned-kinetics: VideoMAE-base (defaults), mean pooling, 400 Kinetics classes
    return VideoMAEConfig(
        image_size=224,
        patch_size=16,
        num_frames=num_frames,
        tubelet_size=2,
        num_labels=400,
        use_mean_pooling=True,
    )


CLIP_ARCHS = {
    # openai/clip-vit-base-patch32 (NEURONS adjacent CLIP-pcc, MinD-Video clip score)
    "vit-b-32": dict(
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        image_size=224,
        patch_size=32,
        projection_dim=512,
    ),
    # openai/clip-vit-large-patch14 (NEURONS all-pairs CLIP-pcc)
    "vit-l-14": dict(
        hidden_size=1024,
        intermediate_size=4096,
        num_hidden_layers=24,
        num_attention_heads=16,
        image_size=224,
        patch_size=14,
        projection_dim=768,
    ),
    "tiny": dict(
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
        projection_dim=16,
    ),
}


def clip_vision_config(arch: str):
    from transformers import CLIPVisionConfig

    if arch not in CLIP_ARCHS:
        raise ValueError(f"CLIP arch: expected one of {sorted(CLIP_ARCHS)}, found {arch!r}.")
    return CLIPVisionConfig(**CLIP_ARCHS[arch])
