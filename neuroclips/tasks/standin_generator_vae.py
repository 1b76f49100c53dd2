"""The tiny AutoencoderKL that both fitted generators of `stage=generators` share: the unCLIP's and the video's.

Why one: the two tiny generators have the same VAE architecture (neuroclips.models.unclip_generator and
video_generator, f4, only the config's fixed ``scaling_factor`` differs), were fitted by the same recipe on the same
frames, and each fit took about 110 s of the demo's stand-in time. Fitted once here, on the training frames at the
generators' size (validation blocks held out, test frames never read), saved with ``save_pretrained`` and a
`standin.json` marker; each generator's fit reads a copy and re-parametrises it exactly for its own latent scale and
output mapping (standin_unclip.fit_latent_scale_and_output, standin_unclip.rescale_latents), so each generator's
file still carries its own VAE, in its original layout. Stage `standins` fits it (beside the PR's VAE and the
classifiers); stage `generators` (tasks/standin_generators.py) then fits the two UNets on its latents.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from neuroclips.tasks.standin_marker import marker_matches, write_marker
from neuroclips.utils.atomic import atomic_folder

log = logging.getLogger("neuroclips")


def generator_vae_config() -> dict:
    """The tiny generators' VAE architecture (scaling_factor aside), which must be the same for both."""
    from neuroclips.models.unclip_generator import UNCLIP_CONFIGS
    from neuroclips.models.video_generator_configs import VIDEO_CONFIGS

    video, unclip = (
        {k: v for k, v in cfg["tiny"]["vae"].items() if k != "scaling_factor"}
        for cfg in (VIDEO_CONFIGS, UNCLIP_CONFIGS)
    )
    if video != unclip:
        raise ValueError(
            "neuroclips/models: the tiny unCLIP and video VAEs (UNCLIP_CONFIGS/VIDEO_CONFIGS['tiny']['vae']) must "
            f"have one architecture to share a fitted VAE, found {unclip} and {video}."
        )
    return video


def blurred_copies(frames: torch.Tensor, sizes: list[int], seed: int) -> torch.Tensor:
    """A blurred copy of each frame (N, 3, S, S): area-shrunk to one of ``sizes`` px (drawn per frame, seeded) and
    bilinearly enlarged back to S.

    Why: the video generator's VAE encodes the blurry video (α) as well as sharp frames, and a VAE fitted on sharp
    frames only decodes a smooth frame with blobs and shifted colours (end_to_end.md, the VAE round trip).
    """
    side = frames.shape[-1]
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(0, len(sizes), (frames.shape[0],), generator=generator)
    out = torch.empty_like(frames)
    for i, size in enumerate(sizes):
        chosen = picks == i
        if chosen.any():
            small = F.interpolate(frames[chosen], size=(int(size), int(size)), mode="area")
            out[chosen] = F.interpolate(small, size=(side, side), mode="bilinear", align_corners=False)
    return out


class GeneratorVaeStandin:
    """Fits, saves and hands out the generators' shared tiny VAE (see module docstring)."""

    def __init__(
        self,
        *,
        out_dir: str | None,
        enabled: bool = True,
        size: int = 32,
        training: dict | None = None,
        seed: int = 0,
    ) -> None:
        if enabled and not out_dir:
            raise ValueError(f"scale.standins.generator_vae: enabled=true needs dir, found {out_dir!r}.")
        self.enabled = enabled
        self.out_dir = Path(out_dir) if out_dir else None
        self.size = int(size)
        self.training = dict(training or {})
        if self.training.get("blurred_copies") is not None:  # plain ints: the settings go into a JSON marker
            self.training["blurred_copies"] = [int(k) for k in self.training["blurred_copies"]]
        self.seed = seed

    def settings(self) -> dict:
        """What the fitted weights depend on besides the data; part of each generator's settings too."""
        return {
            "size": self.size,
            "training": self.training,
            "net": generator_vae_config(),
            "seed": self.seed,
        }

    def is_current(self, fingerprint: dict) -> bool:
        return self.out_dir is not None and marker_matches(
            self.out_dir, {"fingerprint": fingerprint, "settings": self.settings()}
        )

    def fit_and_save(self, data_file: str, held_out_rows: np.ndarray, fingerprint: dict) -> dict:
        import h5py
        from diffusers import AutoencoderKL

        from neuroclips.models.generator_loading import seeded_init
        from neuroclips.tasks.standin_unclip import read_frames
        from neuroclips.tasks.standins import fit_autoencoder

        with h5py.File(data_file, "r") as f:
            n_train = f["stimuli/train/frames"].shape[0]
        images = read_frames(data_file, np.setdiff1d(np.arange(n_train), held_out_rows))
        small = F.interpolate(
            images, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False
        )
        training = dict(self.training)
        blur_sizes = training.pop("blurred_copies", None)
        if blur_sizes:
            small = torch.cat([small, blurred_copies(small, blur_sizes, self.seed)])
        frames_u8 = small.mul(255).round().clamp(0, 255).to(torch.uint8).numpy()
        with seeded_init(self.seed):  # the initial weights and the posterior samples draw from the global RNG
            vae = AutoencoderKL(**generator_vae_config())
            stats = fit_autoencoder(vae.requires_grad_(True), frames_u8, seed=self.seed, **training)
        vae.eval().requires_grad_(False)
        stats["frames"] = int(frames_u8.shape[0])
        with atomic_folder(self.out_dir) as tmp:  # a killed run never leaves a half-written VAE
            vae.save_pretrained(str(tmp))
            write_marker(tmp, {"fingerprint": fingerprint, "settings": self.settings(), "fit": stats})
        log.info("standins: fitted the generators' VAE %s -> %s", stats, self.out_dir)
        return stats

    def load_into(self, vae: torch.nn.Module) -> None:
        """Copy the fitted weights into a generator's own (same-architecture) AutoencoderKL, in place."""
        from diffusers import AutoencoderKL

        fitted = AutoencoderKL.from_pretrained(str(self.out_dir), local_files_only=True)
        vae.load_state_dict(fitted.state_dict(), strict=True)
