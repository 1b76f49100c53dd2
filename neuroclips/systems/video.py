"""Stage ``video`` (predict): blurry video + keyframe + caption -> NeuroClips video (method.md §7.2).

Reads the earlier stages' outputs through ``batch["inputs"]`` (datamodule ``inputs_from_outputs``); holds only
the frozen video pipeline and the recipe. Seeds derive from (seed, clip_index): batch size, ranks and order do not
change a clip's video. ``seeding="reference"`` instead re-seeds the reference's generators with the same literal
before every clip (Animatediff/scripts/neuroclips.py): still batch-independent, but device-dependent.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from neuroclips.generation.video import VideoRecipe, generate_videos
from neuroclips.models.video_pipeline import NeuroClipsVideoPipeline
from neuroclips.utils.seeding import REFERENCE_VIDEO_SEED


class VideoGenerator(pl.LightningModule):
    frozen_prefixes: tuple[str, ...] = ("unet.", "vae.", "text_encoder.", "controlnet.")

    def __init__(
        self,
        pipeline: NeuroClipsVideoPipeline,
        recipe: dict | None = None,
        seed: int = REFERENCE_VIDEO_SEED,
        per_clip_seed: bool = True,
        autocast: bool = False,
        seeding: str = "streams",
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["pipeline"])
        self.pipeline = pipeline
        # registered as children so Lightning moves them to the device; the pipeline uses the same objects
        self.unet, self.vae = pipeline.unet, pipeline.vae
        self.text_encoder, self.controlnet = pipeline.text_encoder, pipeline.controlnet
        self.recipe = VideoRecipe(
            **{**(recipe or {}), "seed": seed, "per_clip_seed": per_clip_seed, "seeding": seeding}
        )

    def configure_optimizers(self):  # predict-only stage
        return None

    @torch.no_grad()
    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        inputs = batch.get("inputs", {})
        clips = [int(c) for c in batch["clip_index"]]
        # the reference runs the video stage in fp32 (notes D9): no mixed precision unless asked for
        with torch.autocast(self.device.type, enabled=self.hparams.autocast):
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
                {"caption": c, "alpha_mode": r.alpha_mode, "use_keyframe": r.use_keyframe, "steps": r.steps}
                for c in (inputs.get("caption") or [""] * len(clips))
            ],
        }


def video_inputs(outputs_dir: str, alpha_mode: str, use_keyframe: bool, use_caption: bool) -> dict[str, str]:
    """Datamodule ``inputs_from_outputs`` (conf/stage/video.yaml): only the earlier outputs this recipe reads."""
    wanted = {"blurry": alpha_mode != "none", "keyframe": use_keyframe, "caption": use_caption}
    return {kind: outputs_dir for kind, on in wanted.items() if on}
