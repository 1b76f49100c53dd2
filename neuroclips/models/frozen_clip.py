"""Frozen OpenCLIP target encoders for the SR: image patch tokens of keyframes and caption embeddings.

Reference (method.md §3.1): OpenCLIP ViT-bigG-14 ``laion2b_s39b_b160k`` through sgm's image embedder with
``output_tokens=True``: 256 patch tokens x 1664 (``ln_post`` applied, no CLS, no projection), after a bicubic
antialiased resize to 224 and CLIP mean/std normalisation. The embedder assumes inputs in [-1, 1] and maps them with
(x + 1) / 2, but the code feeds [0, 1] images; ``assume_minus_one_to_one=True`` keeps that quirk (the MindEye2
weights and the unCLIP decoder were trained with it). Caption embeddings: the bigG text tower's pooled, projected
output (1280), the most likely encoder of ``GT_*_caption_emb.pt`` (method.md §2.2, inferred).

Both classes follow the target-encoder interface of ``stage=targets`` (``name``, ``source``, ``frame_indices``,
``output_shape()``, ``encode()``). At tiny scale they are tiny random OpenCLIP towers (``pretrained="random"``);
at paper scale they load one local OpenCLIP checkpoint file (``pretrained="local"``). Nothing is downloaded.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import open_clip
import torch
import torch.nn.functional as F
from open_clip.model import _build_text_tower, _build_vision_tower
from torch import Tensor, nn

from neuroclips.utils.weights import is_meta, read_weight_file

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# A few-hundred-kilobyte OpenCLIP config for tests and tiny runs (real code path, random weights).
TINY_CLIP_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def clip_model_config(model_name: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The OpenCLIP architecture dict: ``tiny`` (ours) or a bundled OpenCLIP name, e.g. ``ViT-bigG-14``."""
    if model_name == "tiny":
        cfg = {k: dict(v) if isinstance(v, dict) else v for k, v in TINY_CLIP_CONFIG.items()}
    else:
        cfg = open_clip.get_model_config(model_name)
        if cfg is None:
            raise ValueError(
                f"model_name: expected 'tiny' or an OpenCLIP architecture name, found {model_name!r}"
            )
    for tower, values in (overrides or {}).items():
        cfg[tower] = {**cfg[tower], **values} if isinstance(values, dict) else values
    return cfg


@contextmanager
def seeded(seed: int):
    """Draw initial weights from a fixed seed without touching the global RNG stream."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _load_tower(tower: nn.Module, weights_path: str | None, keep: Any, strip: str, field: str) -> None:
    """Load the keys of an OpenCLIP checkpoint that ``keep`` selects (``strip`` removed) into ``tower``."""
    if weights_path is None:
        raise ValueError(f"{field}: pretrained='local' needs a weights file path, found null")
    state = read_weight_file(weights_path, field, "an OpenCLIP checkpoint (open_clip_pytorch_model.bin)")
    state = state.get("state_dict", state)
    picked = {k[len(strip) :]: v for k, v in state.items() if keep(k)}
    result = tower.load_state_dict(picked, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise KeyError(
            f"{weights_path} ({field}): expected the keys of the configured OpenCLIP tower, missing "
            f"{result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}"
        )


class ClipImageTokenEncoder(nn.Module):
    """Frozen OpenCLIP vision tower -> patch tokens (B, T, D) of images in [0, 1]."""

    name = "clip_tokens"
    source = "frames"

    def __init__(
        self,
        model_name: str = "ViT-bigG-14",
        pretrained: str = "local",
        weights_path: str | None = None,
        frame_indices: list[int] | None = (2, 3),
        assume_minus_one_to_one: bool = True,
        resize_antialias: bool = True,
        config_overrides: dict[str, Any] | None = None,
        init_seed: int = 0,
    ) -> None:
        super().__init__()
        if pretrained not in ("local", "random"):
            raise ValueError(
                f"ClipImageTokenEncoder.pretrained: expected 'local' or 'random', found {pretrained!r}"
            )
        cfg = clip_model_config(model_name, config_overrides)
        with seeded(init_seed):  # random stand-ins are identical in every stage that builds them
            self.visual = _build_vision_tower(cfg["embed_dim"], cfg["vision_cfg"])
        self.visual.output_tokens = True
        self.image_size = int(cfg["vision_cfg"]["image_size"])
        self.patch_size = int(cfg["vision_cfg"]["patch_size"])
        self.width = int(cfg["vision_cfg"]["width"])
        self.frame_indices = None if frame_indices is None else [int(i) for i in frame_indices]
        self.assume_minus_one_to_one = assume_minus_one_to_one
        self.resize_antialias = resize_antialias
        self._description = {
            "class": "ClipImageTokenEncoder",
            "model_name": model_name,
            "pretrained": pretrained,
            "weights_path": weights_path,
            "assume_minus_one_to_one": assume_minus_one_to_one,
            "resize_antialias": resize_antialias,
            "config_overrides": config_overrides,
        }
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)
        if pretrained == "local" and not is_meta(self):
            _load_tower(
                self.visual,
                weights_path,
                lambda k: k.startswith("visual."),
                "visual.",
                "scale.sr.clip_weights_path",
            )
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> ClipImageTokenEncoder:
        return super().train(False)  # frozen: never dropout / patch-dropout, whatever the parent does

    def describe(self) -> dict[str, Any]:
        """What the targets cache records, so a different encoder or option is never mixed into one cache."""
        return dict(self._description)

    def output_shape(self) -> tuple[int, ...]:
        return ((self.image_size // self.patch_size) ** 2, self.width)

    def preprocess(self, images: Tensor) -> Tensor:
        if images.shape[-2:] != (self.image_size, self.image_size):
            # sgm uses kornia's bicubic align_corners=True resize with antialias; torch's antialias differs slightly
            images = F.interpolate(
                images,
                size=(self.image_size, self.image_size),
                mode="bicubic",
                align_corners=True,
                antialias=self.resize_antialias,
            )
        if self.assume_minus_one_to_one:
            images = (images + 1.0) / 2.0  # the reference quirk: [0, 1] inputs treated as [-1, 1]
        return (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)

    @torch.no_grad()
    def encode(self, images: Tensor) -> Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(
                f"ClipImageTokenEncoder.encode: expected images (B, 3, H, W), found {tuple(images.shape)}"
            )
        _, tokens = self.visual(self.preprocess(images.float()))
        return tokens

    def forward(self, images: Tensor) -> Tensor:
        return self.encode(images)


class CaptionTextEncoder(nn.Module):
    """Frozen OpenCLIP text tower -> pooled, projected caption embedding (B, embed_dim)."""

    name = "caption_emb"
    source = "captions"
    frame_indices = None

    def __init__(
        self,
        model_name: str = "ViT-bigG-14",
        pretrained: str = "local",
        weights_path: str | None = None,
        config_overrides: dict[str, Any] | None = None,
        init_seed: int = 0,
    ) -> None:
        super().__init__()
        if pretrained not in ("local", "random"):
            raise ValueError(
                f"CaptionTextEncoder.pretrained: expected 'local' or 'random', found {pretrained!r}"
            )
        cfg = clip_model_config(model_name, config_overrides)
        with seeded(init_seed):
            self.text = _build_text_tower(cfg["embed_dim"], cfg["text_cfg"])
        self.embed_dim = int(cfg["embed_dim"])
        self.context_length = int(cfg["text_cfg"].get("context_length", 77))
        # OpenCLIP's bundled BPE tokenizer: a local file inside the package, no download
        self.tokenizer = open_clip.SimpleTokenizer(context_length=self.context_length)
        self._description = {
            "class": "CaptionTextEncoder",
            "model_name": model_name,
            "pretrained": pretrained,
            "weights_path": weights_path,
            "config_overrides": config_overrides,
        }
        if pretrained == "local" and not is_meta(self):
            _load_tower(
                self.text,
                weights_path,
                lambda k: not k.startswith(("visual.", "logit_")),
                "",
                "scale.sr.clip_weights_path",
            )
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> CaptionTextEncoder:
        return super().train(False)

    def describe(self) -> dict[str, Any]:
        return dict(self._description)

    def output_shape(self) -> tuple[int, ...]:
        return (self.embed_dim,)

    @torch.no_grad()
    def encode(self, captions: list[str]) -> Tensor:
        device = next(self.text.parameters()).device
        tokens = self.tokenizer(list(captions)).to(device)
        return self.text(tokens).float()

    def forward(self, captions: list[str]) -> Tensor:
        return self.encode(captions)


def maybe_image_encoder(enabled: bool, **kwargs: Any) -> ClipImageTokenEncoder | None:
    """Build the image encoder only when ``enabled`` (``clip_tokens.online=true``); config-usable as a ``_target_``."""
    return ClipImageTokenEncoder(**kwargs) if enabled else None
