"""Stage ``keyframe`` (predict): fMRI -> clip_voxels -> prior tokens -> unCLIP keyframe -> caption (method.md §5).

Holds the frozen SR nets (from the ``sr_prior`` checkpoint), the unCLIP generator and the caption source; every
random draw of a clip comes from (seed, clip_index), so outputs do not depend on batch size, ranks or order.

Reference options (recipe=reference, src/recon_keyframe.py): ``seeding="reference"`` seeds one pair of generators
once (``utils.seed_everything(seed)``) and draws from them in sequence over the clips: the prior batched over the
predict batch (the reference's test loader holds 200 clips), then the unCLIP draws clip by clip. Outputs then depend
on batch size, order, ranks and resuming: run it in one process over all clips. ``autocast_scope="stage"`` puts the
SR nets, the prior and the unCLIP sampler under fp16 autocast (the reference's ``torch.cuda.amp.autocast`` around
the whole loop), the VAE decode staying fp32. ``quantize="png"`` quantizes the keyframe as ``ToPILImage`` does
(``mul(255).byte()``: truncation) before captioning and storing, the 8-bit image the video script reads as PNG.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Mapping

import pytorch_lightning as pl
import torch
from torch import nn

from neuroclips.generation.keyframe import KeyframeRecipe, _autocast, sample_keyframes
from neuroclips.models.unclip_generator import UnclipComponents
from neuroclips.utils.options import options_from_config
from neuroclips.utils.seeding import ReferenceRNG, check_seeding, clip_seed

log = logging.getLogger("neuroclips")

CAPTION_SOURCES = ("blip2", "nearest_train", "none")
AUTOCAST_SCOPES = ("unet", "stage")
QUANTIZE = ("none", "png")


@dataclasses.dataclass(frozen=True)
class KeyframeOptions:
    """The keyframe stage's settings: the ``keyframe:`` block of conf/stage/keyframe.yaml, where each one's default
    and reference value are written (``keyframe.<name>`` on the command line). No defaults here: that file is the
    one place they are stated."""

    seed: int
    per_clip_seed: bool
    seeding: str
    batch_size: int  # clips per predict call (the DataModule's eval batch)
    autocast_scope: str
    resize_antialias: bool
    quantize: str
    caption_preprocess: str
    caption_generation: str
    prior_steps: int
    prior_cond_scale: float
    condition_divisor: float
    guidance_scale: float
    offset_noise: float
    uncond: str
    output_mapping: str
    init_from_blurry: bool
    blurry_strength: float
    caption_source: str

    def __post_init__(self) -> None:
        if self.caption_source not in CAPTION_SOURCES:
            raise ValueError(
                f"keyframe.caption_source: expected one of {CAPTION_SOURCES}, found {self.caption_source!r}."
            )
        check_seeding("keyframe.seeding", self.seeding)
        if self.autocast_scope not in AUTOCAST_SCOPES:
            raise ValueError(
                f"keyframe.autocast_scope: expected one of {AUTOCAST_SCOPES}, found {self.autocast_scope!r}."
            )
        if self.quantize not in QUANTIZE:
            raise ValueError(f"keyframe.quantize: expected one of {QUANTIZE}, found {self.quantize!r}.")

    @classmethod
    def of(cls, values: Mapping | KeyframeOptions) -> KeyframeOptions:
        return options_from_config(cls, values, "conf/stage/keyframe.yaml", "keyframe")

    def recipe(self, sampler: Mapping) -> KeyframeRecipe:
        """The unCLIP sampling recipe: these settings with the frozen sampler's scale facts (``sampler``: steps,
        gen_size, out_size, original_size, unet_autocast)."""
        return KeyframeRecipe(
            **dict(sampler),
            guidance_scale=self.guidance_scale,
            offset_noise=self.offset_noise,
            uncond=self.uncond,
            output_mapping=self.output_mapping,
            init_from_blurry=self.init_from_blurry,
            blurry_strength=self.blurry_strength,
            resize_antialias=self.resize_antialias,
            seed=self.seed,
            per_clip_seed=self.per_clip_seed,
            seeding=self.seeding,
        )


class KeyframeGenerator(pl.LightningModule):
    frozen_prefixes: tuple[str, ...] = (
        "ridge.",
        "backbone.",
        "diffusion_prior.",
        "unet.",
        "vae.",
        "captioner.",
        "caption_bank.",
    )

    def __init__(
        self,
        ridge: nn.Module,
        backbone: nn.Module,
        diffusion_prior: nn.Module,
        unclip: UnclipComponents,
        options: KeyframeOptions | Mapping,
        sampler: Mapping,
        captioner: nn.Module | None = None,
        caption_bank: nn.Module | None = None,
    ) -> None:
        """``options``: the stage's settings (``keyframe.*``); ``sampler``: the frozen unCLIP sampler's facts of the
        scale (``scale.gen.keyframe``: steps, gen_size, out_size, original_size, unet_autocast)."""
        super().__init__()
        self.options = KeyframeOptions.of(options)
        self.save_hyperparameters({"options": dataclasses.asdict(self.options), "sampler": dict(sampler)})
        self.ridge, self.backbone, self.diffusion_prior = ridge, backbone, diffusion_prior
        self.unet, self.vae = unclip.unet, unclip.vae
        self.scheduler = unclip.scheduler
        self.unclip_weights = unclip.weights
        self.captioner = captioner
        self.caption_bank = caption_bank
        self.recipe = self.options.recipe(sampler)
        self._reference_rng: ReferenceRNG | None = None
        for module in (ridge, backbone, diffusion_prior):
            module.requires_grad_(False)

    def configure_optimizers(self):  # predict-only stage
        return None

    def reference_rng(self) -> ReferenceRNG:
        """The reference's generators, seeded once (first batch) and drawn in sequence from then on."""
        if self._reference_rng is None:
            log.info(
                "keyframe seeding=reference: one random stream over the clips in predict order, seeded once "
                "(outputs depend on batch size, order, ranks and resuming)."
            )
            self._reference_rng = ReferenceRNG(self.options.seed, self.device)
        return self._reference_rng

    def sample_prior(self, clip_voxels: torch.Tensor, clip_indices: list[int]) -> torch.Tensor:
        """One prior sample per clip with its own generator (batch-independent); with ``seeding="reference"`` one
        batched sample from the reference stream (dalle2's ``p_sample_loop`` on the whole test batch)."""
        options = self.options
        cond = clip_voxels / options.condition_divisor
        if options.seeding == "reference":  # dalle2 draws float32 noise whatever the condition's dtype
            return self.diffusion_prior.p_sample_loop(
                cond.float(),
                timesteps=options.prior_steps,
                cond_scale=options.prior_cond_scale,
                generator=self.reference_rng().on_device,
            )
        out = []
        for i, clip in enumerate(clip_indices):
            g = torch.Generator(device=cond.device).manual_seed(
                clip_seed(options.seed, clip, "prior", options.per_clip_seed)
            )
            out.append(
                self.diffusion_prior.p_sample_loop(
                    cond[i : i + 1],
                    timesteps=options.prior_steps,
                    cond_scale=options.prior_cond_scale,
                    generator=g,
                )
            )
        return torch.cat(out)

    def captions(self, keyframes: torch.Tensor, prior_tokens: torch.Tensor) -> list[str]:
        source = self.options.caption_source
        needed = {"blip2": self.captioner, "nearest_train": self.caption_bank}
        if source in needed and needed[source] is None:
            raise ValueError(
                f"keyframe.caption_source={source} needs system.{'captioner' if source == 'blip2' else 'caption_bank'}; none was built."
            )
        if source == "blip2":
            return list(self.captioner(keyframes))
        if source == "nearest_train":
            return list(self.caption_bank(prior_tokens))
        return [""] * len(keyframes)

    @torch.no_grad()
    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        for module in (self.ridge, self.backbone, self.diffusion_prior):
            module.eval()  # no dropout at inference (the reference samples in eval mode)
        clips = [int(c) for c in batch["clip_index"]]
        options = self.options
        scope = (
            _autocast(self.device, self.recipe.unet_autocast)
            if options.autocast_scope == "stage"
            else contextlib.nullcontext()
        )
        blurry = batch.get("inputs", {}).get("blurry")
        first = None if blurry is None else blurry[:, 0]
        with scope:
            _, clip_voxels = self.backbone(self.ridge(batch["fmri"].float()))
            prior_tokens = self.sample_prior(clip_voxels, clips)
            if options.seeding == "reference":  # the reference samples one keyframe after the other
                rng = self.reference_rng()
                keyframes = torch.cat(
                    [
                        sample_keyframes(
                            self.unet,
                            self.vae,
                            self.scheduler,
                            self.recipe,
                            prior_tokens[i : i + 1],
                            clips[i : i + 1],
                            blurry_first_frame=None if first is None else first[i : i + 1],
                            rng=rng,
                        )
                        for i in range(len(clips))
                    ]
                )
            else:
                keyframes = sample_keyframes(
                    self.unet,
                    self.vae,
                    self.scheduler,
                    self.recipe,
                    prior_tokens,
                    clips,
                    blurry_first_frame=first,
                )
        if options.quantize == "png":  # torchvision ToPILImage: pic.mul(255).byte() (truncation), then PNG
            keyframes = keyframes.mul(255).to(torch.uint8).float().div(255)
        captions = self.captions(keyframes, prior_tokens)
        seeds = [clip_seed(options.seed, c, "clip", options.per_clip_seed) for c in clips]
        return {
            "clip_index": torch.as_tensor(clips, dtype=torch.long),
            "keyframe": keyframes,
            "caption": captions,
            "clip_voxels": clip_voxels,
            "prior_tokens": prior_tokens,
            "seed": [options.seed] * len(clips),
            "meta": [
                {
                    "clip_seed": s,
                    "caption_source": options.caption_source,
                    "unclip_weights": self.unclip_weights,
                }
                for s in seeds
            ],
        }


# ---- config helpers (targets in conf/stage/keyframe.yaml) ----------------------------------------------------


def keyframe_inputs(outputs_dir: str, init_from_blurry: bool) -> dict[str, str]:
    """Datamodule ``inputs_from_outputs``: the blurry video only when the keyframe starts from it."""
    return {"blurry": outputs_dir} if init_from_blurry else {}


def maybe_captioner(caption_source: str, **kwargs):
    """The BLIP-2 captioner when ``caption_source == "blip2"``, else None (nothing is built or read)."""
    from neuroclips.models.captioner import build_captioner

    return build_captioner(**kwargs) if caption_source == "blip2" else None


def maybe_caption_bank(caption_source: str, data_file: str, target: str = "clip_tokens"):
    """The nearest-training-caption bank when ``caption_source == "nearest_train"``, else None."""
    from neuroclips.models.captioning import load_caption_bank
    from neuroclips.models.generator_loading import building_on_meta

    if caption_source != "nearest_train" or building_on_meta():
        return None
    return load_caption_bank(data_file, target=target)
