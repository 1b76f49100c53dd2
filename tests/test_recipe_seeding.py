"""Reference seeding (recipe=reference) reproduces the reference scripts' random streams.

Video (Animatediff/scripts/neuroclips.py): ``torch.manual_seed(seed)`` before every clip, then in this order the
blurry video's VAE sample, the unused ``keylatents`` VAE sample, ``RandomResizedCrop`` on the keyframe PNG, the
keyframe's VAE sample (SparseCtrl) and the α noise ``randn_like(latents)``; DDIM with η = 0 draws nothing per step.
The tests restate that loop with plain ``torch.manual_seed`` + ``torch.randn`` and compare.
"""

from __future__ import annotations

import pytest
import torch
from diffusers import AnimateDiffSparseControlNetPipeline
from torchvision.transforms import RandomResizedCrop

from neuroclips.generation.keyframe import KeyframeRecipe, sample_keyframes
from neuroclips.generation.video import NEGATIVE_PROMPT, PROMPT_SUFFIX, VideoRecipe, generate_videos
from neuroclips.models.video_generator import build_video_pipeline
from neuroclips.utils.seeding import REFERENCE_VIDEO_SEED, ReferenceRNG, reference_video_draws

SIZE, FRAMES, STEPS = 32, 16, 2


@pytest.fixture(scope="module")
def pipe():
    torch.set_num_threads(1)
    return build_video_pipeline(
        "random", "tiny", motion_norm="all_frames"
    )  # all_frames: = the stock pipeline


@pytest.fixture(scope="module")
def inputs():
    g = torch.Generator().manual_seed(1)
    return torch.rand(2, 6, 3, SIZE, SIZE, generator=g), torch.rand(2, 3, SIZE, SIZE, generator=g)


def cccat(a: torch.Tensor) -> torch.Tensor:
    """The reference's 6 -> 16 frame interpolation (neuroclips.py ``cccat``), restated."""
    out = [a[:, 0:1]]
    for i in range(a.shape[1] - 1):
        out += [
            (0.67 * a[:, i] + 0.33 * a[:, i + 1])[:, None],
            (0.33 * a[:, i] + 0.67 * a[:, i + 1])[:, None],
        ]
        out.append(a[:, i + 1 : i + 2])
    return torch.cat(out, dim=1)


def reference_clip_draws(latent: int):
    """The reference loop's draws for one clip, in its order, on the global RNG (a CPU run)."""
    torch.manual_seed(REFERENCE_VIDEO_SEED)
    blurry = torch.randn(FRAMES, 4, latent, latent)  # vae.encode(2 * motion - 1).latent_dist.sample()
    torch.randn(FRAMES, 4, latent, latent)  # keylatents = vae.encode(2 * keyframe - 1).latent_dist.sample()
    RandomResizedCrop.get_params(torch.zeros(3, SIZE, SIZE), (1.0, 1.0), (1.0, 1.0))  # image_transforms
    before_keyframe = torch.get_rng_state()
    keyframe = torch.randn(1, 4, latent, latent)  # controlnet_images: vae.encode(...).latent_dist.sample()
    alpha = torch.randn(1, 4, FRAMES, latent, latent)  # pipeline: noise = torch.randn_like(latents)
    after = torch.randn(8)  # whatever comes next on the stream
    return blurry, keyframe, alpha, before_keyframe, after


def test_crop_draws_advance_the_stream_like_torchvision():
    torch.manual_seed(7)
    RandomResizedCrop.get_params(torch.zeros(3, 256, 256), (1.0, 1.0), (1.0, 1.0))
    expected = torch.randn(40)
    rng = ReferenceRNG(7)
    rng.full_resized_crop_draws()
    assert torch.equal(rng.randn((40,)), expected)


def test_reference_video_draws_equal_the_plain_torch_loop():
    blurry, keyframe, alpha, _, after = reference_clip_draws(8)
    draws = reference_video_draws(REFERENCE_VIDEO_SEED, FRAMES, (4, 8, 8))
    assert torch.equal(draws["blurry_vae"], blurry)
    assert torch.equal(draws["keyframe_vae"], keyframe)
    assert torch.equal(draws["alpha_noise"], alpha[0])
    rng = ReferenceRNG(
        REFERENCE_VIDEO_SEED
    )  # nothing else is drawn in between: the stream continues as restated
    for shape in ((FRAMES, 4, 8, 8), (FRAMES, 4, 8, 8)):
        rng.randn(shape)
    rng.full_resized_crop_draws()
    rng.randn((1, 4, 8, 8)), rng.randn((1, 4, FRAMES, 8, 8))
    assert torch.equal(rng.randn((8,)), after)


def test_video_reference_seeding_initial_noise_and_steps_equal_the_restated_reference_loop(pipe, inputs):
    """Initial latent z_T, the SparseCtrl keyframe sample and the whole sampling loop of our video stage with
    seeding=reference equal the reference loop restated with plain torch draws (and the stock diffusers pipeline
    for the steps, which draws the keyframe sample from the global RNG like the reference)."""
    blurry, keyframes = inputs
    recipe = VideoRecipe(size=SIZE, steps=STEPS, seeding="reference", per_clip_seed=False)
    captured = {}
    call = type(pipe).__call__

    def spy(self, *args, **kwargs):
        captured.update(kwargs)
        return call(self, *args, **kwargs)

    state = torch.get_rng_state()
    type(pipe).__call__ = spy
    try:
        ours = generate_videos(pipe, recipe, [5, 9], blurry, keyframes, ["a dog", "a cat"])
    finally:
        type(pipe).__call__ = call
    assert torch.equal(torch.get_rng_state(), state)  # our streams never touch the global RNG

    latent = SIZE // pipe.vae_scale_factor
    e_blurry, e_key, e_alpha, before_keyframe, _ = reference_clip_draws(latent)
    # both clips re-seeded with the same literal: the same draws
    assert all(torch.equal(captured["conditioning_noise"][i, 0], e_key) for i in range(2))
    pipe.scheduler.set_timesteps(STEPS)
    t0 = pipe.scheduler.timesteps[0]  # alpha_mode code_t0: add_noise at the first DDIM timestep
    a = float(pipe.scheduler.alphas_cumprod[t0])
    for i in range(2):
        motion = cccat(blurry[i : i + 1])[0]
        dist = pipe.vae.encode(2 * motion - 1).latent_dist
        z = ((dist.mean + dist.std * e_blurry) * pipe.vae.config.scaling_factor).permute(1, 0, 2, 3)[None]
        z_t = a**0.5 * z + (1 - a) ** 0.5 * e_alpha
        torch.testing.assert_close(captured["latents"][i : i + 1], z_t, rtol=0, atol=1e-6)

    # the steps: the stock SparseCtrl pipeline from the restated z_T, its keyframe sample drawn from the global RNG
    # positioned where the reference draws it; DDIM η = 0 draws nothing per step, so the videos agree
    stock = AnimateDiffSparseControlNetPipeline(
        vae=pipe.vae,
        text_encoder=pipe.text_encoder,
        tokenizer=pipe.tokenizer,
        unet=pipe.unet,
        motion_adapter=None,
        controlnet=pipe.controlnet,
        scheduler=pipe.scheduler,
    )
    stock.set_progress_bar_config(disable=True)
    for i, caption in enumerate(["a dog", "a cat"]):
        torch.set_rng_state(before_keyframe)
        ref = stock(
            prompt=[caption + PROMPT_SUFFIX],
            negative_prompt=[NEGATIVE_PROMPT],
            num_frames=FRAMES,
            height=SIZE,
            width=SIZE,
            num_inference_steps=STEPS,
            guidance_scale=8.5,
            output_type="pt",
            latents=captured["latents"][i : i + 1],
            conditioning_frames=keyframes[i : i + 1],
            controlnet_frame_indices=[0],
        ).frames
        torch.testing.assert_close(ours[i : i + 1], ref, rtol=0, atol=1e-5)
        assert torch.equal(torch.get_rng_state(), rng_state_after_keyframe(before_keyframe, latent))


def rng_state_after_keyframe(state: torch.Tensor, latent: int) -> torch.Tensor:
    """The global RNG state after exactly one keyframe VAE sample: the stock pipeline drew nothing else."""
    saved = torch.get_rng_state()
    torch.set_rng_state(state)
    torch.randn(1, 4, latent, latent)
    after = torch.get_rng_state()
    torch.set_rng_state(saved)
    return after


def test_video_streams_default_is_unchanged_and_reference_differs(pipe, inputs):
    blurry, keyframes = inputs
    base = VideoRecipe(size=SIZE, steps=STEPS)
    assert base.seeding == "streams"
    a = generate_videos(pipe, base, [5], blurry[:1], keyframes[:1], ["a dog"])
    b = generate_videos(
        pipe,
        VideoRecipe(size=SIZE, steps=STEPS, seeding="reference"),
        [5],
        blurry[:1],
        keyframes[:1],
        ["a dog"],
    )
    assert (a - b).abs().max() > 1e-4
    with pytest.raises(ValueError, match="video.seeding"):
        generate_videos(
            pipe,
            VideoRecipe(size=SIZE, steps=STEPS, seeding="global"),
            [5],
            blurry[:1],
            keyframes[:1],
            ["a dog"],
        )


def test_keyframe_reference_seeding_is_one_stream_in_the_reference_order():
    """unclip_recon per clip: base latent (CPU), uncond tokens, noise, offset scalar; the next clip continues."""
    from neuroclips.models.unclip_generator import build_unclip

    torch.set_num_threads(1)
    unclip = build_unclip("random", "tiny", context_dim=16)
    recipe = KeyframeRecipe(steps=2, gen_size=16, out_size=16, seeding="reference")
    tokens = torch.randn(2, 4, 16)
    rng = ReferenceRNG(42)
    args = (unclip.unet, unclip.vae, unclip.scheduler, recipe)
    both = torch.cat([sample_keyframes(*args, tokens[i : i + 1], [i], rng=rng) for i in range(2)])
    # restated: seed once, draw per clip in the reference order
    torch.manual_seed(42)
    c = unclip.unet.config.in_channels
    f = 2 ** (len(unclip.vae.config.block_out_channels) - 1)
    draws = []
    for _ in range(2):
        draws.append(
            [
                torch.randn(1, c, 16 // f, 16 // f),
                torch.randn(1, 4, 16),
                torch.randn(1, c, 16 // f, 16 // f),
                torch.randn(1),
            ]
        )
    after = torch.randn(4)
    assert torch.equal(rng.randn((4,)), after)  # exactly those draws were made, in that order
    # clip 1's keyframe depends on clip 0 having drawn first (one stream), unlike per-clip streams
    alone = sample_keyframes(*args, tokens[1:2], [1], rng=ReferenceRNG(42))
    assert (alone - both[1:2]).abs().max() > 1e-4
    with pytest.raises(ValueError, match="ReferenceRNG"):
        sample_keyframes(*args, tokens[:1], [0])


def test_the_configs_video_seed_is_the_reference_seed_the_code_defaults_to():
    """One fact, written once in conf/stage/video.yaml and once as the Python constant the defaults use."""
    from hydra import compose, initialize_config_dir

    from neuroclips.utils.resolvers import register
    from tests.conftest import REPO

    register()  # the entry points register the nc.* resolvers; alone, this test must too
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["stage=video"])
    assert cfg.video.seed == REFERENCE_VIDEO_SEED
