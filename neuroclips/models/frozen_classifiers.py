"""Frozen evaluation models: ImageNet ViT (frame N-way), VideoMAE-K400 (video N-way), CLIP vision (CLIP-pcc).

Each wrapper is a plain ``nn.Module`` that takes RGB uint8 frames and does its model's own preprocessing in torch,
batched, on the model's device: resize (shortest edge or fixed size), optional centre crop, scale to [0, 1],
normalise. The reference runs each Hugging Face image processor per clip with PIL; we use torch ``interpolate``
with antialiasing, which matches PIL's resampling to within about one grey level (classifier outputs agree, not
bitwise).

Sources (``source`` argument of the builders; ``scale.eval.*.source`` in config):

* ``local``  -- ``from_pretrained(<local dir>)`` (a Hugging Face model folder: config.json + weights); never downloads.
* ``random`` -- the real architecture (ViT-B/16-224, VideoMAE-base K400 with 6 frames, CLIP ViT-B/32 or L/14) with
  random weights: shape checks and benchmarks.
* ``tiny``   -- a tiny random model with the same interface (tests, scale=tiny).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from neuroclips.models.frozen_classifier_configs import (
    VIDEOMAE_EVAL_FRAMES,
    clip_vision_config,
    videomae_config,
    vit_config,
)
from neuroclips.utils.weights import MissingWeightsError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF_MEAN = (0.5, 0.5, 0.5)
HALF_STD = (0.5, 0.5, 0.5)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
PIL_RESAMPLE = {2: "bilinear", 3: "bicubic"}  # Hugging Face processor configs store PIL resample codes
TINY_SEED = 1234  # tiny stand-ins are random but identical from run to run
SOURCES = ("local", "random", "tiny")


class Preprocess(nn.Module):
    """uint8 RGB (B, 3, H, W) -> normalised float: resize, optional centre crop, mean/std."""

    def __init__(
        self,
        resize: int,
        crop: int | None,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        mode: str = "bilinear",
        resize_shortest_edge: bool = True,
    ):
        super().__init__()
        self.resize, self.crop, self.mode, self.resize_shortest_edge = (
            resize,
            crop,
            mode,
            resize_shortest_edge,
        )
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.to(self.mean.device, torch.float32) / 255.0
        h, w = x.shape[-2:]
        if self.resize_shortest_edge:
            scale = self.resize / min(h, w)
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
        else:
            size = (self.resize, self.resize)
        if (h, w) != size:
            x = F.interpolate(x, size=size, mode=self.mode, align_corners=False, antialias=True).clamp_(0, 1)
        if self.crop is not None:
            top = (x.shape[-2] - self.crop) // 2
            left = (x.shape[-1] - self.crop) // 2
            x = x[..., top : top + self.crop, left : left + self.crop]
        return (x - self.mean) / self.std


class FrameClassifier(nn.Module):
    """ImageNet classifier on frames: uint8 (B, 3, H, W) -> logits (B, classes) float32."""

    def __init__(self, model: nn.Module, preprocess: Preprocess):
        super().__init__()
        self.model, self.preprocess = model, preprocess

    @torch.no_grad()
    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = self.preprocess(frames).to(next(self.model.parameters()).dtype)
        return self.model(pixel_values=x).logits.float()


class VideoClassifier(nn.Module):
    """Kinetics-400 VideoMAE on clips: uint8 (B, T, 3, H, W) -> logits (B, classes) float32."""

    def __init__(self, model: nn.Module, preprocess: Preprocess):
        super().__init__()
        self.model, self.preprocess = model, preprocess

    @torch.no_grad()
    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        b, t = videos.shape[:2]
        x = self.preprocess(videos.flatten(0, 1))
        x = x.view(b, t, *x.shape[1:]).to(next(self.model.parameters()).dtype)
        return self.model(pixel_values=x).logits.float()


class ClipImageEmbedder(nn.Module):
    """CLIP vision tower with projection: uint8 (B, 3, H, W) -> image embeddings (B, D) float32 (not normalised)."""

    def __init__(self, model: nn.Module, preprocess: Preprocess):
        super().__init__()
        self.model, self.preprocess = model, preprocess

    @torch.no_grad()
    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = self.preprocess(frames).to(next(self.model.parameters()).dtype)
        return self.model(pixel_values=x).image_embeds.float()


# ----------------------------------------------------------------------------------------------- loading
def _check_local_dir(path: str | None, field: str, what: str) -> Path:
    if not path:
        raise MissingWeightsError(f"{field}: source='local' needs the folder of the {what}, found null.")
    p = Path(str(path))
    if not (p / "config.json").exists():
        raise MissingWeightsError(
            f"{p / 'config.json'}: {what} not found (config field '{field}'); put the Hugging Face model folder "
            f"there or point '{field}' at it."
        )
    if not any(
        (p / n).exists() for n in ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")
    ):
        raise MissingWeightsError(
            f"{p / 'model.safetensors'}: {what} weights not found (config field '{field}'); the folder has a "
            f"config.json but no model.safetensors or pytorch_model.bin."
        )
    return p


def _processor_json(folder: Path | None) -> dict:
    f = folder / "preprocessor_config.json" if folder is not None else None
    return json.loads(f.read_text()) if f is not None and f.exists() else {}


def _size_from(proc: dict, default: int, default_to_square: bool = True) -> tuple[int, bool]:
    """(pixels, shortest_edge?) from a processor 'size' entry.

    An int ``size`` (older processor files: ``"size": 224``) means what transformers' ``get_size_dict`` makes of it
    for that processor class: a square for ViTImageProcessor (``default_to_square=True``), the shortest edge (then
    the centre crop) for CLIPImageProcessor and VideoMAEImageProcessor (``default_to_square=False``)."""
    size = proc.get("size", default)
    if isinstance(size, dict):
        if "shortest_edge" in size:
            return int(size["shortest_edge"]), True
        return int(size.get("height", default)), False
    return int(size), not default_to_square


def _crop_from(proc: dict, default: int | None) -> int | None:
    if proc and not proc.get("do_center_crop", default is not None):
        return None
    crop = proc.get("crop_size", default)
    return int(crop["height"]) if isinstance(crop, dict) else (int(crop) if crop is not None else None)


def _make(
    model_cls, config, source: str, path: str | None, field: str, what: str, dtype: torch.dtype, **kwargs
):
    if source not in SOURCES:
        raise ValueError(f"{field}: source expected one of {SOURCES}, found {source!r}.")
    if source == "local":
        folder = _check_local_dir(path, field, what)
        model = model_cls.from_pretrained(str(folder), local_files_only=True, **kwargs)
    else:
        folder = None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(TINY_SEED)
            model = model_cls(config)
    model = model.to(dtype=dtype).eval().requires_grad_(False)
    return model, folder


def build_frame_classifier(
    source: str = "tiny",
    path: str | None = None,
    dtype: torch.dtype = torch.float32,
    field: str = "scale.eval.models.frame_classifier.path",
) -> FrameClassifier:
    """ViT ImageNet-1k classifier (google/vit-base-patch16-224 layout): resize to 224x224, mean/std 0.5."""
    from transformers import ViTForImageClassification

    config = vit_config("tiny" if source == "tiny" else "base")
    model, folder = _make(
        ViTForImageClassification, config, source, path, field, "ImageNet ViT classifier", dtype
    )
    proc = _processor_json(folder)
    size, shortest = _size_from(proc, model.config.image_size)
    pre = Preprocess(
        size,
        None,
        tuple(proc.get("image_mean", HALF_MEAN)),
        tuple(proc.get("image_std", HALF_STD)),
        PIL_RESAMPLE.get(proc.get("resample", 2), "bilinear"),
        resize_shortest_edge=shortest,
    )
    return FrameClassifier(model, pre)


def build_video_classifier(
    source: str = "tiny",
    path: str | None = None,
    num_frames: int = VIDEOMAE_EVAL_FRAMES,
    dtype: torch.dtype = torch.float32,
    field: str = "scale.eval.models.video_classifier.path",
) -> VideoClassifier:
    """VideoMAE-base fine-tuned on Kinetics-400 with ``num_frames`` (6): shortest edge 224, centre crop 224."""
    from transformers import VideoMAEForVideoClassification

    config = videomae_config("tiny" if source == "tiny" else "base", num_frames)
    model, folder = _make(
        VideoMAEForVideoClassification,
        config,
        source,
        path,
        field,
        "Kinetics-400 VideoMAE classifier",
        dtype,
        num_frames=num_frames,
    )
    proc = _processor_json(folder)
    image = model.config.image_size
    size, shortest = _size_from(proc, image, default_to_square=False)
    pre = Preprocess(
        size,
        _crop_from(proc, image),
        tuple(proc.get("image_mean", IMAGENET_MEAN)),
        tuple(proc.get("image_std", IMAGENET_STD)),
        PIL_RESAMPLE.get(proc.get("resample", 2), "bilinear"),
        resize_shortest_edge=shortest if proc else True,
    )
    return VideoClassifier(model, pre)


def build_clip_embedder(
    source: str = "tiny",
    path: str | None = None,
    arch: str = "vit-b-32",
    dtype: torch.dtype = torch.float32,
    field: str = "scale.eval.models.clip.adjacent.path",
) -> ClipImageEmbedder:
    """CLIP vision tower + projection (``image_embeds``): shortest edge 224 bicubic, centre crop 224, CLIP mean/std."""
    from transformers import CLIPVisionModelWithProjection

    config = clip_vision_config("tiny" if source == "tiny" else arch)
    model, folder = _make(
        CLIPVisionModelWithProjection, config, source, path, field, f"CLIP {arch} vision model", dtype
    )
    proc = _processor_json(folder)
    image = model.config.image_size
    size, shortest = _size_from(proc, image, default_to_square=False)
    pre = Preprocess(
        size,
        _crop_from(proc, image),
        tuple(proc.get("image_mean", CLIP_MEAN)),
        tuple(proc.get("image_std", CLIP_STD)),
        PIL_RESAMPLE.get(proc.get("resample", 3), "bicubic"),
        resize_shortest_edge=shortest if proc else True,
    )
    return ClipImageEmbedder(model, pre)
