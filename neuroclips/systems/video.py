"""Stage ``video`` (predict): blurry video + keyframe + caption -> NeuroClips video (method.md §7.2).

Reads the earlier stages' outputs through ``batch["inputs"]`` (datamodule ``inputs_from_outputs``); holds only
the frozen video pipeline and the recipe. Seeds derive from (seed, clip_index): batch size, ranks and order do not
change a clip's video. ``seeding="reference"`` instead re-seeds the reference's generators with the same literal
before every clip (Animatediff/scripts/neuroclips.py): still batch-independent, but device-dependent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pytorch_lightning as pl
import torch

from neuroclips.generation.video import VideoRecipe, generate_videos
from neuroclips.models.video_pipeline import NeuroClipsVideoPipeline
from neuroclips.utils.options import options_from_config


@dataclasses.dataclass(frozen=True)
class VideoOptions:
    """The video stage's settings: the ``video:`` block of conf/stage/video.yaml, where each one's default and
    reference value are written (``video.<name>`` on the command line; stage=fusion reads the same block). No
    defaults here: that file is the one place they are stated."""

    seed: int
    per_clip_seed: bool
    seeding: str
    alpha_mode: str
    theta: float
    strength: float
    interpolation: str
    use_keyframe: bool
    keyframe_index: int
    sparsectrl_scale: float
    use_caption: bool
    guidance_scale: float
    motion_norm: str  # read by the pipeline builder
    domain_lora_scale: float  # read by the pipeline builder
    write_media: bool  # read by the media writer
    media_fps: int
    media_first_frame: int
    autocast: bool

    @classmethod
    def of(cls, values: Mapping | VideoOptions) -> VideoOptions:
        return options_from_config(cls, values, "conf/stage/video.yaml", "video")

    def recipe(self, sampler: Mapping, seeding: str | None = None) -> VideoRecipe:
        """The generation recipe: these settings with the frozen generator's scale facts (``sampler``: size,
        steps); ``seeding`` overrides ``self.seeding`` (fusion always draws per-clip streams)."""
        return VideoRecipe(
            **dict(sampler),
            guidance_scale=self.guidance_scale,
            alpha_mode=self.alpha_mode,
            theta=self.theta,
            strength=self.strength,
            interpolation=self.interpolation,
            use_keyframe=self.use_keyframe,
            keyframe_index=self.keyframe_index,
            sparsectrl_scale=self.sparsectrl_scale,
            use_caption=self.use_caption,
            seed=self.seed,
            per_clip_seed=self.per_clip_seed,
            seeding=self.seeding if seeding is None else seeding,
        )


class VideoGenerator(pl.LightningModule):
    frozen_prefixes: tuple[str, ...] = ("unet.", "vae.", "text_encoder.", "controlnet.")

    def __init__(
        self,
        pipeline: NeuroClipsVideoPipeline,
        options: VideoOptions | Mapping,
        sampler: Mapping,
    ) -> None:
        """``options``: the stage's settings (``video.*``); ``sampler``: the generator's scale facts
        (``scale.gen.video``: size, steps)."""
        super().__init__()
        self.options = VideoOptions.of(options)
        self.save_hyperparameters({"options": dataclasses.asdict(self.options), "sampler": dict(sampler)})
        self.pipeline = pipeline
        # registered as children so Lightning moves them to the device; the pipeline uses the same objects
        self.unet, self.vae = pipeline.unet, pipeline.vae
        self.text_encoder, self.controlnet = pipeline.text_encoder, pipeline.controlnet
        self.recipe = self.options.recipe(sampler)

    def configure_optimizers(self):  # predict-only stage
        return None

    @torch.no_grad()
    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        inputs = batch.get("inputs", {})
        clips = [int(c) for c in batch["clip_index"]]
        # the reference runs the video stage in fp32 (notes D9): no mixed precision unless asked for
        with torch.autocast(self.device.type, enabled=self.options.autocast):
            video = generate_videos(
                self.pipeline,
                self.recipe,
                clips,
                blurry=inputs.get("blurry"),
                keyframes=inputs.get("keyframe"),
                captions=inputs.get("caption"),
            )
        r = self.recipe
        return {
            "clip_index": torch.as_tensor(clips, dtype=torch.long),
            "video": video,
            "seed": [r.seed] * len(clips),
            "meta": [
                {
                    "caption": c,
                    "alpha_mode": r.alpha_mode,
                    "use_keyframe": r.use_keyframe,
                    "steps": r.steps,
                    "video_weights": getattr(self.pipeline, "weights", "random"),
                }
                for c in (inputs.get("caption") or [""] * len(clips))
            ],
        }


def video_inputs(outputs_dir: str, alpha_mode: str, use_keyframe: bool, use_caption: bool) -> dict[str, str]:
    """Datamodule ``inputs_from_outputs`` (conf/stage/video.yaml): only the earlier outputs this recipe reads."""
    wanted = {"blurry": alpha_mode != "none", "keyframe": use_keyframe, "caption": use_caption}
    return {kind: outputs_dir for kind, on in wanted.items() if on}
