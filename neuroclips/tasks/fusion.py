"""Stage ``fusion`` (task, sequential): multi-fMRI fusion of consecutive test clips into longer videos.

Fusion needs each clip's predecessor to be finished, so it is a task stage that runs after ``keyframe`` and
``video`` on rank 0 only, walking the clips in movie order. It reads ``keyframe``, ``video``, ``blurry`` and
``caption`` from the outputs store and writes per clip ``fused_video`` (clips that start a group keep their
``video``; linked clips are generated again with the previous fused video's last frame as keyframe), plus
``<run_dir>/fusion_groups.json`` and one ``<run_dir>/fused_long/<first>-<last>.npy`` per group of ≥ 2 clips.
Resumable: clips that already have ``fused_video`` are loaded, not regenerated.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping

import h5py
import numpy as np
import torch

from neuroclips.data import schema
from neuroclips.generation.fusion import (
    decide_links,
    fusion_groups,
    neighbour_pairs,
    train_pair_classifier,
)
from neuroclips.generation.video import generate_videos
from neuroclips.outputs import OutputStore
from neuroclips.stage_types import StageResult
from neuroclips.systems.video import VideoOptions
from neuroclips.utils.atomic import write_json, write_npy
from neuroclips.utils.images import to_uint8
from neuroclips.utils.options import options_from_config

log = logging.getLogger(__name__)


def _float(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(arr).float().div_(255.0)


@dataclasses.dataclass(frozen=True)
class FusionOptions:
    """The fusion stage's settings: the ``fusion:`` block of conf/stage/fusion.yaml, where each one's default is
    written and explained (``fusion.<name>`` on the command line). No defaults here: that file states them."""

    decision: str  # cosine | mlp
    threshold: float  # cosine threshold
    mlp_label: str  # labels | scene: what the MLP learns a link to be
    mlp_hidden: int
    mlp_epochs: int
    max_clips: int | None  # clips per fused video; None = unlimited
    limit_clips: int | None  # the first N test clips only

    @classmethod
    def of(cls, values: Mapping | FusionOptions) -> FusionOptions:
        return options_from_config(cls, values, "conf/stage/fusion.yaml", "fusion")


class FusionTask:
    def __init__(
        self,
        pipeline,
        clip_encoder,
        options: Mapping,
        sampler: Mapping,
        fusion: Mapping | FusionOptions,
        mlp_keyframe_index: int = 2,
    ) -> None:
        """``options``: the video stage's settings (``video.*``); ``sampler``: the generator's scale facts;
        ``fusion``: this stage's settings (``fusion.*``, a :class:`FusionOptions`)."""
        self.pipeline, self.clip_encoder = pipeline, clip_encoder
        # the video stage's settings and seed; per-clip streams whatever video.seeding says (the reference has no
        # fusion code whose draws could be followed)
        self.recipe = VideoOptions.of(options).recipe(sampler, seeding="streams")
        self.fusion = FusionOptions.of(fusion)
        self.mlp_keyframe_index = mlp_keyframe_index

    def build_for_dry_run(self) -> dict[str, torch.nn.Module]:
        p = self.pipeline
        return {
            "unet": p.unet,
            "vae": p.vae,
            "text_encoder": p.text_encoder,
            "controlnet": p.controlnet,
            "clip_encoder": self.clip_encoder,
        }

    # ---- pieces ----------------------------------------------------------------------------------------------
    def _embed(self, images: torch.Tensor, device, chunk: int = 32) -> torch.Tensor:
        enc = self.clip_encoder.to(device)
        return torch.cat([enc(images[i : i + chunk].to(device)).cpu() for i in range(0, len(images), chunk)])

    def _train_classifier(self, data_file: str, device):
        """The MLP on consecutive training clips: labels = same object class (``labels``) or same scene
        (``scene``: same segment and no scene cut inside the second clip)."""
        with h5py.File(data_file, "r") as f:
            frames_ds = f[schema.stimulus_path("train", "frames")]
            n = frames_ds.shape[0]
            segment = f[schema.stimulus_path("train", "segment")][:]
            if self.fusion.mlp_label == "labels":
                key = schema.stimulus_path("train", "labels")
                if key not in f:
                    raise KeyError(
                        f"{data_file}: fusion.mlp_label=labels needs '/{key}'; use fusion.mlp_label=scene."
                    )
                label = f[key][:]
                same = (label[1:] == label[:-1]) & (segment[1:] == segment[:-1])
            elif self.fusion.mlp_label == "scene":
                cut = f[schema.stimulus_path("train", "scene_cut")][:]
                same = (segment[1:] == segment[:-1]) & ~cut[1:]
            else:
                raise ValueError(
                    f"fusion.mlp_label: expected 'labels' or 'scene', found {self.fusion.mlp_label!r}."
                )
            embeds = []
            for start in range(0, n, 256):
                block = frames_ds[start : start + 256, self.mlp_keyframe_index]
                embeds.append(self._embed(_float(block), device))
        return train_pair_classifier(
            torch.cat(embeds), torch.from_numpy(same), self.fusion.mlp_hidden, self.fusion.mlp_epochs
        )

    # ---- run -------------------------------------------------------------------------------------------------
    def run(self, ctx):
        if not ctx.is_global_zero:
            return StageResult(metrics={"skipped_rank": ctx.rank})
        store = OutputStore(ctx.outputs_dir)
        clips = sorted(set(store.done("video")) & set(store.done("keyframe")))
        if self.fusion.limit_clips:
            clips = clips[: self.fusion.limit_clips]
        if not clips:
            raise FileNotFoundError(
                f"{ctx.outputs_dir}: fusion needs 'video' and 'keyframe' outputs; run stage=keyframe and stage=video first."
            )
        with h5py.File(ctx.data_file, "r") as f:
            index = f[schema.stimulus_path("test", "clip_index")][:]
            seg = f[schema.stimulus_path("test", "segment")][:]
        segment_of = {int(c): int(s) for c, s in zip(index, seg)}
        device = ctx.device
        keyframes = torch.stack([_float(store.load("keyframe", c)) for c in clips])
        embeddings = self._embed(keyframes, device)
        pairs = neighbour_pairs(clips, [segment_of[c] for c in clips])
        classifier = self._train_classifier(ctx.data_file, device) if self.fusion.decision == "mlp" else None
        linked, scores = decide_links(
            embeddings, pairs, self.fusion.decision, self.fusion.threshold, classifier
        )
        groups = fusion_groups(
            len(clips), {i: bool(ok) for (i, _), ok in zip(pairs, linked)}, self.fusion.max_clips
        )
        # a clip is chained to its predecessor only inside a group (max_clips cuts long runs)
        links = {g[k - 1]: True for g in groups for k in range(1, len(g))}

        self._move_pipeline(device)
        regenerated = 0
        previous = None
        for pos, clip in enumerate(clips):
            if store.has("fused_video", clip):
                video = _float(store.load("fused_video", clip))
            elif links.get(pos - 1, False) and previous is not None:
                video = self._regenerate(store, clip, previous[-1])
                regenerated += 1
                store.save(
                    "fused_video",
                    clip,
                    to_uint8(video),
                    {
                        "clip_index": clip,
                        "stage": "fusion",
                        "linked_to": clips[pos - 1],
                        "seed": self.recipe.seed,
                    },
                )
            else:
                video = _float(store.load("video", clip))
                store.save(
                    "fused_video",
                    clip,
                    to_uint8(video),
                    {"clip_index": clip, "stage": "fusion", "linked_to": None},
                )
            previous = video

        long_dir = ctx.run_dir / "fused_long"
        for group in groups:
            if len(group) > 1:
                ids = [clips[p] for p in group]
                frames = np.concatenate([store.load("fused_video", c) for c in ids])
                write_npy(long_dir / f"{ids[0]:05d}-{ids[-1]:05d}.npy", frames)
        write_json(
            ctx.run_dir / "fusion_groups.json",
            {
                "decision": self.fusion.decision,
                "threshold": self.fusion.threshold,
                "pairs": [
                    {"clips": [clips[i], clips[j]], "score": s, "linked": bool(ok)}
                    for (i, j), s, ok in zip(pairs, scores, linked)
                ],
                "groups": [[clips[p] for p in g] for g in groups],
            },
        )
        metrics = {
            "clips": len(clips),
            "pairs": len(pairs),
            "linked_pairs": int(sum(linked)),
            "groups": len(groups),
            "longest_group": max(len(g) for g in groups),
            "regenerated": regenerated,
            "mean_score": float(np.mean(scores)) if scores else float("nan"),
        }
        return StageResult(
            metrics=metrics,
            outputs={"fused_video": str(store.root / "fused_video"), "fused_long": str(long_dir)},
        )

    def _move_pipeline(self, device) -> None:
        p = self.pipeline
        for module in (p.unet, p.vae, p.text_encoder, p.controlnet):
            module.to(device)

    def _regenerate(self, store: OutputStore, clip: int, keyframe: torch.Tensor) -> torch.Tensor:
        r = self.recipe
        blurry = _float(store.load("blurry", clip))[None] if r.alpha_mode != "none" else None
        caption = [str(store.load_metadata("caption", clip).get("text", ""))] if r.use_caption else None
        return generate_videos(self.pipeline, r, [clip], blurry, keyframe[None], caption)[0].cpu()
