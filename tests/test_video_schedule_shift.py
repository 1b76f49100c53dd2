"""The tiny video generator's shifted noise schedule (models.video_generator_configs.video_scheduler) and the blurred
copies its VAE is also fitted on (tasks.standin_generator_vae.blurred_copies)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler

from neuroclips.generation.guidance import plan_alpha
from neuroclips.models.video_generator_configs import VIDEO_SCHEDULER, video_scheduler
from neuroclips.tasks.standin_generator_vae import blurred_copies
from neuroclips.tasks.standin_video_fit import noising_schedule


def test_shift_one_is_the_reference_schedule_exactly():
    assert video_scheduler(1.0) == VIDEO_SCHEDULER
    torch.testing.assert_close(
        noising_schedule(1.0).alphas_cumprod, DDIMScheduler(**VIDEO_SCHEDULER).alphas_cumprod, rtol=0, atol=0
    )


@pytest.mark.parametrize("shift", [4.0, 16.0])
def test_shift_multiplies_every_timesteps_snr(shift):
    reference = DDIMScheduler(**VIDEO_SCHEDULER).alphas_cumprod.double()
    shifted = DDIMScheduler(**video_scheduler(shift)).alphas_cumprod.double()

    def snr(a):
        return a / (1 - a)

    torch.testing.assert_close(
        snr(shifted) / snr(reference), torch.full_like(reference, shift), rtol=1e-3, atol=0
    )
    # the fit's forward process and the sampler's schedule are the same one
    torch.testing.assert_close(
        noising_schedule(shift).alphas_cumprod, DDIMScheduler(**video_scheduler(shift)).alphas_cumprod
    )
    # what α keeps of the blurry video at the tiny demo's first step (4 DDIM steps: t = 751)
    weight = plan_alpha(DDIMScheduler(**video_scheduler(shift)), 4, "code_t0").signal_weight
    assert weight == pytest.approx(float(shifted[751].sqrt()), rel=1e-5)
    assert weight > plan_alpha(DDIMScheduler(**VIDEO_SCHEDULER), 4, "code_t0").signal_weight


def test_shift_must_be_positive():
    with pytest.raises(ValueError, match="scale.gen.video.snr_shift"):
        video_scheduler(0)


def test_blurred_copies_are_seeded_smooth_and_one_per_frame():
    frames = torch.rand(12, 3, 32, 32)
    sizes = [4, 8]
    first, again = blurred_copies(frames, sizes, seed=3), blurred_copies(frames, sizes, seed=3)
    assert first.shape == frames.shape and torch.equal(first, again)
    for frame, copy in zip(
        frames, first
    ):  # each copy is its frame shrunk to one of the sizes and enlarged back
        candidates = [
            F.interpolate(
                F.interpolate(frame[None], size=(k, k), mode="area"), size=(32, 32), mode="bilinear"
            )[0]
            for k in sizes
        ]
        assert any(torch.allclose(copy, c, atol=1e-6) for c in candidates)

    def picks(out):  # which frames were shrunk to 4 px
        return [bool(torch.allclose(o, blurred_copies(f[None], [4], 0)[0])) for o, f in zip(out, frames)]

    assert picks(first) != picks(blurred_copies(frames, sizes, seed=4))  # the seed decides the sizes


def test_the_video_standin_is_refitted_when_the_schedule_changes():
    """The stand-in's settings (its marker) carry the schedule it was fitted on, so a new shift refits it."""
    from neuroclips.tasks.standin_video import TinyVideoStandin

    a, b = (TinyVideoStandin(enabled=False, snr_shift=shift) for shift in (1.0, 16.0))
    assert a.settings()["architecture"]["snr_shift"] == 1.0 and a.settings() != b.settings()
