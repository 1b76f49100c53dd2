"""Fitted tiny AnimateDiff + SparseCtrl video generator for `stage=generators`: caption, keyframe and blurry → 16 frames.

Why: the random tiny video generator turns any input into noise, so the demo's video column said nothing. This
stand-in is the tiny architecture of neuroclips.models.video_generator (SD-style UNet + AnimateDiff motion modules +
SparseCtrl-RGB + CLIP text encoder + VAE), fitted on the training clips only (validation blocks held out, test
clips never read):

1. the VAE: the generators' shared one (standin_generator_vae.py: fitted once on the training frames at the video
   size, L1 + KL, for this generator and the unCLIP), re-parametrised exactly (`rescale_latents`) so that its latents times SD's fixed ``scaling_factor`` (0.18215) have unit variance;
2. the UNet with its motion modules, the SparseCtrl encoder and the text encoder together, by ε-prediction on the
   reference DDIM's training schedule (linear β 0.00085-0.012), on 16-frame videos made from each clip's 6 frames
   by the same 6 → 16 interpolation the blurry video goes through. Conditions, as the pipeline gives them: the
   prompt = caption + the reference suffix (with probability `uncond_prob` the reference negative prompt, the CFG
   branch); the SparseCtrl condition = the VAE latent of the clip's keyframe (frame `keyframe_frame`, the frame the
   SR's tokens describe) at video frame `keyframe_index` with its mask; with probability `keyframe_drop` no
   SparseCtrl at all, so that the UNet alone is a video model and the "no keyframe" ablation has a meaning (the
   reference trained SparseCtrl as an add-on to a working AnimateDiff).

Layout: the three original files (``dreambooth``, ``motion_module``, ``sparsectrl``; neuroclips.models.
animatediff_writer), read by the paper-scale loader (`build_video_pipeline(pretrained="local", ...)`, strict). The
held-out check reads them back through that loader. A `standin.json` marker records the data fingerprint and the
settings; a later run re-uses the files while they match. Exactly `steps` steps (never time-bounded).
"""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F

from neuroclips.tasks.standin_generator_vae import GeneratorVaeStandin
from neuroclips.tasks.standin_marker import marker_matches, write_marker
from neuroclips.utils.atomic import atomic_folder

log = logging.getLogger("neuroclips")

FILE_FIELDS = ("dreambooth_file", "motion_module_file", "sparsectrl_file")  # the loader's arguments
CHECK_CLIPS = 20  # held-out clips in the fit's own check (each costs 12 UNet passes)


def read_clips(data_file: str | Path, rows: np.ndarray, size: int) -> tuple[torch.Tensor, list[str]]:
    """Frames (M, 6, 3, size, size) in [0, 1] and captions of these training-split rows."""
    with h5py.File(data_file, "r") as f:
        keep = np.sort(rows)
        frames = torch.from_numpy(f["stimuli/train/frames"][:][keep]).float().div(255.0)
        captions = [
            c.decode() if isinstance(c, bytes) else str(c) for c in f["stimuli/train/captions"][:][keep]
        ]
    small = F.interpolate(
        frames.flatten(0, 1), size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    return small.unflatten(0, frames.shape[:2]), captions


class TinyVideoStandin:
    """Fits and saves the tiny video generator (see module docstring); called by GeneratorStandins.run."""

    def __init__(
        self,
        *,
        enabled: bool = True,
        files: dict | None = None,
        size: int = 32,
        num_frames: int = 16,
        interpolation: str = "reference",
        keyframe_frame: int = 2,
        keyframe_index: int = 0,
        motion_norm: str = "per_frame",
        snr_shift: float = 1.0,
        vae: GeneratorVaeStandin | None = None,
        unet: dict | None = None,
        seed: int = 0,
    ) -> None:
        paths = {k: Path(v) for k, v in (files or {}).items() if v}
        if enabled and (set(paths) != set(FILE_FIELDS) or len({p.parent for p in paths.values()}) != 1):
            raise ValueError(
                f"scale.standins.video: enabled=true needs {', '.join(FILE_FIELDS)} in one folder, found {files!r}."
            )
        if enabled and vae is None:
            raise ValueError("scale.standins.video: enabled=true needs the generators' VAE stand-in (vae).")
        self.enabled = enabled
        self.paths = paths
        self.out_dir = next(iter(paths.values())).parent if paths else None
        self.architecture = dict(
            size=int(size),
            num_frames=int(num_frames),
            interpolation=interpolation,
            keyframe_frame=int(keyframe_frame),
            keyframe_index=int(keyframe_index),
            motion_norm=motion_norm,
            snr_shift=float(snr_shift),
        )
        self.vae = vae
        self.training = {"unet": dict(unet or {})}
        self.seed = seed

    def files(self, root: Path | None = None) -> dict[str, str]:
        """The three files' paths, in the stand-in folder or (while it is written) in `root`."""
        return {field: str((root or self.out_dir) / path.name) for field, path in self.paths.items()}

    def settings(self) -> dict:
        from neuroclips.models.video_generator_configs import VIDEO_CONFIGS

        # the nets' configs too: files fitted for another tiny architecture are refitted, not loaded and refused
        return {
            "training": self.training,
            "vae": self.vae.settings() if self.vae is not None else None,
            "architecture": self.architecture,
            "nets": VIDEO_CONFIGS["tiny"],
            "seed": self.seed,
        }

    def is_current(self, fingerprint: dict) -> bool:
        return (
            self.out_dir is not None
            and all(Path(f).exists() for f in self.files().values())
            and marker_matches(self.out_dir, {"fingerprint": fingerprint, "settings": self.settings()})
        )

    def fit_and_save(self, data_file: str, held_out_rows: np.ndarray, fingerprint: dict) -> dict:
        from safetensors.torch import save_file

        from neuroclips.models.animatediff_writer import (
            animatediff_state_dict,
            dreambooth_state_dict,
            split_motion_unet,
        )
        from neuroclips.tasks.standin_unclip import rescale_latents
        from neuroclips.tasks.standin_video_fit import build_trainable, encode_videos, fit_video_unet

        with h5py.File(data_file, "r") as f:
            n_train = f["stimuli/train/frames"].shape[0]
        rows = np.setdiff1d(np.arange(n_train), held_out_rows)
        clips, captions = read_clips(data_file, rows, self.architecture["size"])
        small = clips.flatten(0, 1)
        nets = build_trainable(self.seed, self.architecture["motion_norm"])
        # the generators' shared VAE (standin_generator_vae.py), fitted by stage=standins before this
        self.vae.load_into(nets.vae)
        nets.vae.eval().requires_grad_(False)
        stats = {"vae": {"shared": str(self.vae.out_dir)}}
        stats["vae"]["latent_std_before_rescale"] = rescale_latents(nets.vae, small)
        videos, keyframes = encode_videos(nets.vae, clips, self.architecture)
        stats["unet"] = fit_video_unet(
            nets, videos, keyframes, captions, self.architecture, seed=self.seed, **self.training["unet"]
        )
        spatial, motion = split_motion_unet(nets.unet.state_dict())
        states = {
            "dreambooth_file": dreambooth_state_dict(spatial, nets.unet_config, nets.vae, nets.text_encoder),
            "motion_module_file": animatediff_state_dict(motion),
            "sparsectrl_file": animatediff_state_dict(nets.controlnet.state_dict()),
        }
        with atomic_folder(self.out_dir) as tmp:  # a killed run never leaves a half-written file
            tmp.mkdir(parents=True)
            for field, file in self.files(tmp).items():
                save_file(states[field], file)
            stats["validation"] = self.held_out_check(tmp, data_file, held_out_rows)
            stats["clips"] = int(clips.shape[0])
            write_marker(tmp, {"fingerprint": fingerprint, "settings": self.settings(), "fit": stats})
        log.info("standins: fitted video generator %s -> %s", stats, self.out_dir)
        return stats

    @torch.no_grad()
    def held_out_check(self, root: Path, data_file: str, rows: np.ndarray) -> dict:
        """ε-prediction MSE of the held-out clips' videos, read back through the paper loader, with every condition
        and with each one taken away (another clip's keyframe, the negative prompt, no SparseCtrl)."""
        from neuroclips.models.video_generator import build_video_pipeline
        from neuroclips.tasks.standin_video_fit import ablation_losses, encode_videos

        arch = self.architecture
        pipe = build_video_pipeline(
            "local", "tiny", motion_norm=arch["motion_norm"], snr_shift=arch["snr_shift"], **self.files(root)
        )
        clips, captions = read_clips(data_file, np.sort(rows)[:CHECK_CLIPS], self.architecture["size"])
        videos, keyframes = encode_videos(pipe.vae, clips, self.architecture)
        return ablation_losses(pipe, videos, keyframes, captions, self.architecture, seed=self.seed)
