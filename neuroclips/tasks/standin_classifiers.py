"""Fitted tiny N-way classifiers for `stage=standins`: a frame ViT and a clip VideoMAE that know the simulated scenes.

Why: the N-way top-K protocols score a reconstruction by a frozen classifier's opinion of its class. Random tiny
classifiers give every clip the same top classes, so N-way accuracy at tiny scale measured nothing (every clip
"matched"). These stand-ins are fitted, on the training clips only (validation blocks held out, test clips never
read), to the simulated *scene class* = shape × colour (8 × 8 = 64 classes, enough distractors for 50-way with 3
ground-truth classes), so N-way accuracy at tiny scale measures whether a reconstruction shows the right object.

Layout: each is saved as a Hugging Face model folder (`save_pretrained`: config.json + model.safetensors, plus a
preprocessor_config.json) — the layout `build_frame_classifier` / `build_video_classifier` read at paper scale with
`source=local` — and fitted *through* those loaders (the loaded wrapper's own preprocessing is what is trained), so
training and evaluation see identical inputs. The head is fitted additive by default (a scene class's logit = a
shape logit + a colour logit; standin_classifier_fit.AdditiveSceneLogits) on flipped, shifted and sometimes blurred
clips, so that a constant picture scores at chance and a blurry reconstruction is still read (nway_classifiers.md).
A `standin.json` marker records the data fingerprint and settings;
a later run re-uses the folders while they match (see TinyVaeStandin.is_current).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import h5py
import numpy as np
import torch

from neuroclips.models.frozen_classifier_configs import VIDEOMAE_EVAL_FRAMES, videomae_config, vit_config
from neuroclips.models.frozen_classifiers import (
    HALF_MEAN,
    HALF_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    build_frame_classifier,
    build_video_classifier,
)
from neuroclips.tasks.standin_classifier_fit import HEADS, fit_classifier
from neuroclips.tasks.standin_marker import marker_matches, write_marker
from neuroclips.utils.atomic import atomic_folder

log = logging.getLogger("neuroclips")


def scene_classes(labels: np.ndarray, colours: np.ndarray, n_colours: int) -> np.ndarray:
    """Scene class of each clip: shape × n_colours + colour (the simulation's class of frame 2 and its colour)."""
    return labels.astype(np.int64) * n_colours + colours.astype(np.int64)


def read_labelled_clips(data_file: str | Path, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """uint8 frames (N, 6, 3, H, W), scene classes (N,) and the class count of these training-split rows.

    Clips with a scene cut are dropped: their label (frame 2's scene) does not hold for every frame."""
    with h5py.File(data_file, "r") as f:
        train = f["stimuli/train"]
        n_colours = len(f.attrs["colours"])
        n_classes = len(f.attrs["classes"]) * n_colours
        keep = np.sort(rows)
        keep = keep[~train["scene_cut"][:][keep]]
        frames = train["frames"][:][keep]
        classes = scene_classes(train["labels"][:][keep], train["colours"][:][keep], n_colours)
    return frames, classes, n_classes


class TinyClassifierStandins:
    """Fits and saves the frame and video N-way classifiers (see module docstring); called by TinyVaeStandin.run."""

    def __init__(
        self,
        *,
        enabled: bool = True,
        frame_dir: str | None,
        video_dir: str | None,
        steps: int = 400,
        batch_size: int = 32,
        lr: float = 2e-3,
        head: str = "additive",
        vertical_flip: bool = True,
        blur_prob: float = 0.3,
        blur_sizes: list[int] | tuple[int, ...] = (4, 6, 8, 12, 16),
        seed: int = 0,
    ) -> None:
        if head not in HEADS:
            raise ValueError(
                f"train.standins.classifiers.head: expected one of {list(HEADS)}, found {head!r}."
            )
        if enabled and not (frame_dir and video_dir):
            raise ValueError(
                "scale.standins.classifiers: enabled=true needs frame_dir and video_dir, found "
                f"{frame_dir!r} and {video_dir!r}."
            )
        self.enabled = enabled
        self.frame_dir = Path(frame_dir) if frame_dir else None
        self.video_dir = Path(video_dir) if video_dir else None
        self.training = dict(
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            head=head,
            vertical_flip=bool(vertical_flip),
            blur_prob=float(blur_prob),
            blur_sizes=[int(k) for k in blur_sizes],  # plain ints: the settings go into a JSON marker
        )
        self.seed = seed

    def settings(self) -> dict:
        return {"training": self.training, "seed": self.seed}

    def is_current(self, fingerprint: dict) -> bool:
        expected = {"fingerprint": fingerprint, "settings": self.settings()}
        return all(marker_matches(folder, expected) for folder in (self.frame_dir, self.video_dir))

    def fit_and_save(self, data_file: str, held_out_rows: np.ndarray, fingerprint: dict) -> dict:
        """Fit on the training rows without `held_out_rows`; report accuracy on the held-out (validation) rows."""
        with h5py.File(data_file, "r") as f:
            n_train = f["stimuli/train/frames"].shape[0]
            n_colours = len(f.attrs["colours"])
        frames, classes, n_classes = read_labelled_clips(
            data_file, np.setdiff1d(np.arange(n_train), held_out_rows)
        )
        val_frames, val_classes, _ = read_labelled_clips(data_file, held_out_rows)
        labels, val_labels = torch.from_numpy(classes), torch.from_numpy(val_classes)
        clips, val_clips = torch.from_numpy(frames), torch.from_numpy(val_frames)
        stats = {}
        # frame classifier: every frame of the uncut clips, each with its clip's class
        frame_labels = labels.repeat_interleave(clips.shape[1])
        config = vit_config("tiny")
        config.num_labels = n_classes
        preprocessor = {
            "size": {"height": config.image_size, "width": config.image_size},
            "resample": 2,
            "image_mean": list(HALF_MEAN),
            "image_std": list(HALF_STD),
        }
        stats["frame_classifier"] = self._fit_one(
            "frame_classifier",
            self.frame_dir,
            "ViTForImageClassification",
            config,
            preprocessor,
            lambda path: build_frame_classifier(
                source="local", path=path, field="scale.standins.classifiers.frame_dir"
            ),
            clips.flatten(0, 1),
            frame_labels,
            fingerprint,
            (val_clips.flatten(0, 1), val_labels.repeat_interleave(val_clips.shape[1])),
            n_colours,
        )
        config = videomae_config("tiny", VIDEOMAE_EVAL_FRAMES)
        config.num_labels = n_classes
        preprocessor = {
            "size": {"shortest_edge": config.image_size},
            "do_center_crop": True,
            "crop_size": {"height": config.image_size, "width": config.image_size},
            "resample": 2,
            "image_mean": list(IMAGENET_MEAN),
            "image_std": list(IMAGENET_STD),
        }
        stats["video_classifier"] = self._fit_one(
            "video_classifier",
            self.video_dir,
            "VideoMAEForVideoClassification",
            config,
            preprocessor,
            lambda path: build_video_classifier(
                source="local", path=path, field="scale.standins.classifiers.video_dir"
            ),
            clips[:, :VIDEOMAE_EVAL_FRAMES],
            labels,
            fingerprint,
            (val_clips[:, :VIDEOMAE_EVAL_FRAMES], val_labels),
            n_colours,
        )
        stats["classes"], stats["clips"] = n_classes, int(clips.shape[0])
        return stats

    def _fit_one(
        self,
        what,
        out_dir: Path,
        model_cls: str,
        config,
        preprocessor: dict,
        load,
        inputs,
        labels,
        fingerprint: dict,
        validation: tuple,
        n_colours: int,
    ) -> dict:
        import transformers

        with atomic_folder(out_dir) as tmp:  # a killed run never leaves a half-written model
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                getattr(transformers, model_cls)(config).save_pretrained(str(tmp))
            (tmp / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
            wrapper = load(
                str(tmp)
            )  # fitted through the paper-scale loader: the preprocessing evaluation uses
            stats = fit_classifier(
                wrapper, inputs, labels, seed=self.seed, what=what, n_colours=n_colours, **self.training
            )
            with torch.no_grad():
                stats["val_accuracy"] = float(
                    (wrapper(validation[0]).argmax(-1) == validation[1]).float().mean()
                )
            wrapper.model.save_pretrained(str(tmp))
            write_marker(tmp, {"fingerprint": fingerprint, "settings": self.settings(), "fit": stats})
        log.info("standins: fitted %s %s -> %s", what, stats, out_dir)
        return stats
