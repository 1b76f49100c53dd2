"""Frozen ConvNeXt teacher for the PR soft contrastive loss (method.md §4.2).

Reference: MindEye's `ConvnextXL` = a ConvNeXt-XL trunk (depths [3, 3, 27, 3], dims [256, 512, 1024, 2048],
final LayerNorm over the 7×7 tokens of a 224² frame) plus `maps_projector`, a token-wise MLP
2048 -> 512 -> 512 -> 512 (Linear, LayerNorm, ReLU, Linear, LayerNorm, ReLU, Linear without bias), loaded from
`convnext_xlarge_alpha0.75_fullckpt.pth` (dict key `model`, keys prefixed `module.`). Output: (N, 49, 512).

Reference quirk kept as option `layer_scale` (default False): the reference builds the trunk without
layer-scale `gamma` parameters and loads non-strictly, so any `gamma` in the checkpoint is silently ignored.

Also here: the teacher's input normalisation and the augmented view used for the soft targets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuroclips.errors import ConfigError
from neuroclips.utils.weights import read_weight_file

# ImageNet normalisation as written in the reference (std 0.228 for red, not the usual 0.229).
TEACHER_MEAN = (0.485, 0.456, 0.406)
TEACHER_STD = (0.228, 0.224, 0.225)


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over the channel axis of (N, C, H, W) maps."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(
            x.permute(0, 2, 3, 1), self.weight.shape, self.weight, self.bias, self.eps
        ).permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """Depthwise 7×7 conv -> LayerNorm -> Linear(4×) -> GELU -> Linear, residual (optionally layer-scaled)."""

    def __init__(self, dim: int, layer_scale: bool) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), 1e-6)) if layer_scale else None

    def forward(self, x: Tensor) -> Tensor:
        y = self.pwconv2(self.act(self.pwconv1(self.norm(self.dwconv(x).permute(0, 2, 3, 1)))))
        if self.gamma is not None:
            y = self.gamma * y
        return x + y.permute(0, 3, 1, 2)


class ConvNeXtTrunk(nn.Module):
    """ConvNeXt feature extractor (stride 32) returning normalised tokens (N, h·w, dims[-1])."""

    def __init__(self, *, depths: Sequence[int], dims: Sequence[int], layer_scale: bool = False) -> None:
        super().__init__()
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(3, dims[0], kernel_size=4, stride=4), ChannelsFirstLayerNorm(dims[0]))]
        )
        for i in range(len(dims) - 1):
            self.downsample_layers.append(
                nn.Sequential(
                    ChannelsFirstLayerNorm(dims[i]), nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2)
                )
            )
        self.stages = nn.ModuleList(
            nn.Sequential(*[ConvNeXtBlock(dim, layer_scale) for _ in range(depth)])
            for depth, dim in zip(depths, dims)
        )
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)

    def forward(self, images: Tensor) -> Tensor:
        x = images
        for downsample, stage in zip(self.downsample_layers, self.stages):
            x = stage(downsample(x))
        return self.norm(x.flatten(2).transpose(1, 2))


class ConvNeXtTeacher(nn.Module):
    """Frozen teacher: frames in [0, 1] (N, 3, H, W) -> projected tokens (N, (input_size/32)², projector_dim)."""

    def __init__(
        self,
        *,
        depths: Sequence[int] = (3, 3, 27, 3),
        dims: Sequence[int] = (256, 512, 1024, 2048),
        projector_dim: int = 512,
        layer_scale: bool = False,
        input_size: int = 224,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.backbone = ConvNeXtTrunk(depths=depths, dims=dims, layer_scale=layer_scale)
        self.maps_projector = nn.Sequential(
            nn.Linear(dims[-1], projector_dim),
            nn.LayerNorm(projector_dim),
            nn.ReLU(True),
            nn.Linear(projector_dim, projector_dim),
            nn.LayerNorm(projector_dim),
            nn.ReLU(True),
            nn.Linear(projector_dim, projector_dim, bias=False),
        )
        self.register_buffer("mean", torch.tensor(TEACHER_MEAN).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(TEACHER_STD).reshape(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> ConvNeXtTeacher:
        return super().train(False)  # frozen: always eval

    def num_tokens(self) -> int:
        return (self.input_size // 32) ** 2

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        if images.shape[-1] != self.input_size or images.shape[-2] != self.input_size:
            images = F.interpolate(
                images, size=(self.input_size, self.input_size), mode="bilinear", antialias=True
            )
        return self.maps_projector(self.backbone((images - self.mean) / self.std))


def load_convnext_teacher(
    *,
    weights: str | None,
    depths: Sequence[int] = (3, 3, 27, 3),
    dims: Sequence[int] = (256, 512, 1024, 2048),
    projector_dim: int = 512,
    layer_scale: bool = False,
    input_size: int = 224,
    allow_pickle: bool = False,
    weights_field: str = "scale.pr.teacher.weights",
) -> ConvNeXtTeacher:
    """Build the teacher; load `weights` (reference checkpoint layout) unless None (tiny: random) or on meta.

    Keys not belonging to the trunk or projector (e.g. a classifier head) are ignored, as in the reference;
    missing trunk/projector keys are an error. `allow_pickle` permits full unpickling for checkpoints that
    store non-tensor objects (only for files you trust).
    """
    teacher = ConvNeXtTeacher(
        depths=depths, dims=dims, projector_dim=projector_dim, layer_scale=layer_scale, input_size=input_size
    )
    if weights is None or next(teacher.parameters()).is_meta:
        return teacher
    path = Path(weights)
    checkpoint = read_weight_file(
        path,
        weights_field,
        "ConvNeXt teacher weights (the local convnext_xlarge_alpha0.75_fullckpt.pth)",
        allow_pickle,
        "scale.pr.teacher.allow_pickle",
    )
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else checkpoint
    state = {key.replace("module.", "", 1): value for key, value in state.items()}
    expected = teacher.state_dict()
    kept = {key: value for key, value in state.items() if key in expected}
    missing = sorted(set(expected) - set(kept))
    wrong_shape = sorted(k for k in kept if kept[k].shape != expected[k].shape)
    if missing or wrong_shape:
        raise ConfigError(
            f"ConvNeXt teacher weights {path} (config field `{weights_field}`) do not fit depths={list(depths)}, "
            f"dims={list(dims)}: {len(missing)} missing keys {missing[:3]}, {len(wrong_shape)} with other "
            f"shapes {wrong_shape[:3]}."
        )
    teacher.load_state_dict(kept, strict=False)
    return teacher


AUGMENTATIONS = ("ours", "kornia")


def kornia_teacher_augmentation(
    size: int,
    brightness: float,
    contrast: float,
    saturation: float,
    hue: float,
    jitter_p: float,
    grayscale_p: float,
    solarize_p: float,
    crop_area: float,
) -> nn.Module:
    """The reference's ``blur_augs`` (src/train_PR.py), built with kornia as the reference builds it."""
    import kornia.augmentation as K
    from kornia.augmentation.container import AugmentationSequential

    return AugmentationSequential(
        K.ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation, hue=hue, p=jitter_p),
        K.RandomGrayscale(p=grayscale_p),
        K.RandomSolarize(p=solarize_p),
        K.RandomResizedCrop((size, size), scale=(crop_area, crop_area), ratio=(1, 1), p=1.0),
        data_keys=["input"],
    )


class TeacherAugmentation(nn.Module):
    """The reference's augmented teacher view, per sample, on frames in [0, 1] (N, 3, S, S).

    ColorJitter(brightness 0.4, contrast 0.4, saturation 0.2, hue 0.1; p 0.8) -> RandomGrayscale(p 0.1) ->
    RandomSolarize(p 0.1; threshold 0.5 ± 0.1) -> RandomResizedCrop(S, area 0.9, ratio 1).
    ``augmentation="ours"`` (default): our own torch implementation of these transforms (jitter in a fixed order,
    hue rotated in YIQ). ``"kornia"``: kornia's ``AugmentationSequential``, the library the reference uses
    (src/train_PR.py ``blur_augs``: jitter in random order, hue in HSV); both draw from the global torch RNG.
    The reference crops to 224 (its frame size); here the output keeps the input size S.
    """

    def __init__(
        self,
        *,
        brightness: float = 0.4,
        contrast: float = 0.4,
        saturation: float = 0.2,
        hue: float = 0.1,
        jitter_p: float = 0.8,
        grayscale_p: float = 0.1,
        solarize_p: float = 0.1,
        crop_area: float = 0.9,
        augmentation: str = "ours",
    ) -> None:
        super().__init__()
        if augmentation not in AUGMENTATIONS:
            raise ConfigError(
                f"teacher augmentation: expected one of {AUGMENTATIONS}, found {augmentation!r}."
            )
        self.brightness, self.contrast, self.saturation, self.hue = brightness, contrast, saturation, hue
        self.jitter_p, self.grayscale_p, self.solarize_p, self.crop_area = (
            jitter_p,
            grayscale_p,
            solarize_p,
            crop_area,
        )
        self.augmentation = augmentation
        self._kornia: dict[
            int, nn.Module
        ] = {}  # one kornia pipeline per frame size (not a submodule: no state)

    def kornia_pipeline(self, size: int) -> nn.Module:
        if size not in self._kornia:
            self._kornia[size] = kornia_teacher_augmentation(
                size,
                self.brightness,
                self.contrast,
                self.saturation,
                self.hue,
                self.jitter_p,
                self.grayscale_p,
                self.solarize_p,
                self.crop_area,
            )
        return self._kornia[size]

    @staticmethod
    def _gray(x: Tensor) -> Tensor:
        return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).expand_as(x)

    def _uniform(self, n: int, spread: float, like: Tensor) -> Tensor:
        return (1 + (torch.rand(n, 1, 1, 1, device=like.device) * 2 - 1) * spread).to(like.dtype)

    def _rotate_hue(self, x: Tensor, turns: Tensor) -> Tensor:
        # Rotate chroma in YIQ space by 2π·turns (a linear approximation of an HSV hue shift).
        to_yiq = x.new_tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
        yiq = torch.einsum("ij,njhw->nihw", to_yiq, x)
        angle = (turns * 2 * math.pi).reshape(-1, 1, 1)
        i_channel = yiq[:, 1] * torch.cos(angle) - yiq[:, 2] * torch.sin(angle)
        q_channel = yiq[:, 1] * torch.sin(angle) + yiq[:, 2] * torch.cos(angle)
        rotated = torch.stack([yiq[:, 0], i_channel, q_channel], dim=1)
        return torch.einsum("ij,njhw->nihw", torch.linalg.inv(to_yiq), rotated)

    def _color_jitter(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        x = (x * self._uniform(n, self.brightness, x)).clamp(0, 1)
        mean = self._gray(x).mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * self._uniform(n, self.contrast, x) + mean).clamp(0, 1)
        gray = self._gray(x)
        x = ((x - gray) * self._uniform(n, self.saturation, x) + gray).clamp(0, 1)
        turns = (torch.rand(n, device=x.device) * 2 - 1) * self.hue
        return self._rotate_hue(x, turns.to(x.dtype)).clamp(0, 1)

    def _resized_crop(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        side = math.sqrt(self.crop_area)  # fraction of the side kept (square crop)
        offsets = (torch.rand(n, 2, device=x.device) * 2 - 1) * (1 - side)
        theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
        theta[:, 0, 0] = side
        theta[:, 1, 1] = side
        theta[:, :, 2] = offsets.to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        if self.augmentation == "kornia":
            pipeline = self.kornia_pipeline(images.shape[-1]).to(images.device)
            return pipeline(images.float()).to(images.dtype)
        x = images.float()
        n = x.shape[0]

        def chosen(p: float) -> Tensor:
            return torch.rand(n, 1, 1, 1, device=x.device) < p

        x = torch.where(chosen(self.jitter_p), self._color_jitter(x), x)
        x = torch.where(chosen(self.grayscale_p), self._gray(x), x)
        threshold = 0.5 + (torch.rand(n, 1, 1, 1, device=x.device) * 2 - 1) * 0.1
        solarized = torch.where(x >= threshold, 1 - x, x)
        x = torch.where(chosen(self.solarize_p), solarized, x)
        return self._resized_crop(x).to(images.dtype)
