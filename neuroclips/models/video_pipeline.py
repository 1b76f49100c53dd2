"""The video generator NeuroClips runs, as diffusers classes (built by ``models.video_generator``; the recipe that
drives it, α/β/γ guidance, is ``generation.video``).

``NeuroClipsVideoPipeline`` is a thin subclass of diffusers' ``AnimateDiffSparseControlNetPipeline`` that adds only
what batching and reproducibility need: a per-clip keyframe (the stock pipeline shares one condition across the
batch) and per-clip generators for the keyframe's VAE sample (the stock one draws it from the global RNG,
generation-notes.md D2). ``PerFrameGroupNorm`` / ``set_motion_norm``: the motion modules' input GroupNorm per frame,
as the reference computes it (``video.motion_norm``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from diffusers import AnimateDiffPipeline, AnimateDiffSparseControlNetPipeline
from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D
from torch import nn

from neuroclips.utils.seeding import randn_per_clip

MOTION_NORMS = ("per_frame", "all_frames")


class PerFrameGroupNorm(nn.GroupNorm):
    """GroupNorm on (B, C, F, H, W) with statistics per frame, as the reference's motion modules compute them.

    Same parameters and state-dict keys as ``nn.GroupNorm``; 4-D input behaves exactly like ``nn.GroupNorm``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            return super().forward(x)
        b, c, f, h, w = x.shape
        y = super().forward(x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w))
        return y.reshape(b, f, c, h, w).permute(0, 2, 1, 3, 4)


def set_motion_norm(module: nn.Module, mode: str) -> int:
    """Make every motion module's input GroupNorm per-frame (reference) or all-frames (stock diffusers).

    Returns how many norms were set. Parameters are shared with the replaced norm, so weights stay loaded.
    """
    if mode not in MOTION_NORMS:
        raise ValueError(f"video.motion_norm: expected one of {MOTION_NORMS}, found {mode!r}.")
    cls = PerFrameGroupNorm if mode == "per_frame" else nn.GroupNorm
    count = 0
    for sub in module.modules():
        if isinstance(sub, AnimateDiffTransformer3D):
            old = sub.norm
            new = cls.__new__(cls)
            new.__dict__ = old.__dict__.copy()  # same parameters, eps, groups: only the forward changes
            new._parameters = old._parameters
            sub.norm = new
            count += 1
    return count


class NeuroClipsVideoPipeline(AnimateDiffSparseControlNetPipeline):
    """``AnimateDiffSparseControlNetPipeline`` with per-clip conditioning frames and per-clip VAE-sample generators.

    ``conditioning_frames`` may be a tensor (B, Fc, 3, H, W) in [0, 1]: one set of frames per clip (anything else
    goes to the stock behaviour). ``conditioning_generators``: one generator per clip for the frames' VAE sample;
    or ``conditioning_noise`` (B, Fc, C, h, w): the standard-normal draws of that sample, made by the caller.
    """

    _conditioning_generators: list[torch.Generator] | None = None
    _conditioning_noise: torch.Tensor | None = None

    def __call__(
        self,
        *args,
        conditioning_generators: Sequence[torch.Generator] | None = None,
        conditioning_noise: torch.Tensor | None = None,
        **kwargs,
    ):
        self._conditioning_generators = (
            None if conditioning_generators is None else list(conditioning_generators)
        )
        self._conditioning_noise = conditioning_noise
        try:
            return super().__call__(*args, **kwargs)
        finally:
            self._conditioning_generators = None
            self._conditioning_noise = None

    def prepare_image(self, image, width, height, device, dtype):
        if not (isinstance(image, torch.Tensor) and image.ndim == 5):
            return super().prepare_image(image, width, height, device, dtype)
        if image.min() < 0 or image.max() > 1:
            raise ValueError("video conditioning frames: expected values in [0, 1].")
        b, fc = image.shape[:2]
        frames = image.reshape(b * fc, *image.shape[2:]).to(device=device, dtype=dtype)
        if frames.shape[-2:] != (height, width):
            frames = F.interpolate(frames, size=(height, width), mode="bilinear", align_corners=False)
        if not self.controlnet.config.use_simplified_condition_embedding:
            return frames.reshape(b, fc, *frames.shape[1:]).permute(0, 2, 1, 3, 4)
        dist = self.vae.encode(2 * frames - 1).latent_dist
        if self._conditioning_noise is not None:
            noise = self._conditioning_noise.to(device=device, dtype=dist.mean.dtype)
            latents = dist.mean + dist.std * noise.reshape(dist.mean.shape)
        elif self._conditioning_generators is None:
            latents = dist.sample()  # the stock pipeline's draw (global RNG)
        else:
            if len(self._conditioning_generators) != b:
                raise ValueError(
                    f"conditioning_generators: expected {b} (one per clip), found {len(self._conditioning_generators)}."
                )
            noise = randn_per_clip(
                (fc, *dist.mean.shape[1:]), self._conditioning_generators, device, dist.mean.dtype
            )
            latents = dist.mean + dist.std * noise.reshape(dist.mean.shape)
        latents = latents * self.vae.config.scaling_factor
        return latents.reshape(b, fc, *latents.shape[1:]).permute(0, 2, 1, 3, 4)

    def prepare_sparse_control_conditioning(
        self, conditioning_frames, num_frames, controlnet_frame_indices, device, dtype
    ):
        cond, mask = super().prepare_sparse_control_conditioning(
            conditioning_frames, num_frames, controlnet_frame_indices, device, dtype
        )
        # A batch-1 condition broadcasts over the CFG-doubled latents; a per-clip one must be doubled like them.
        if self.do_classifier_free_guidance and cond.shape[0] > 1:
            cond, mask = torch.cat([cond, cond]), torch.cat([mask, mask])
        return cond, mask

    def without_controlnet(self) -> AnimateDiffPipeline:
        """The plain AnimateDiff pipeline on the same components (the "no keyframe" ablation)."""
        if getattr(self, "_plain", None) is None:
            self._plain = AnimateDiffPipeline(
                vae=self.vae,
                text_encoder=self.text_encoder,
                tokenizer=self.tokenizer,
                unet=self.unet,
                motion_adapter=None,
                scheduler=self.scheduler,
            )
            self._plain.set_progress_bar_config(disable=True)
        self._plain.scheduler = self.scheduler
        return self._plain
