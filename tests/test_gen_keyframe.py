"""Keyframe generation at tiny scale: vector conditioning, the Euler recipe, unclip6 key mapping, captions."""

from __future__ import annotations

import math

import pytest
import torch
from diffusers import UNet2DConditionModel
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

from neuroclips.generation.keyframe import KeyframeRecipe, sample_keyframes, unclip_timesteps
from neuroclips.models.captioner import build_captioner
from neuroclips.models.unclip_generator import build_unclip, unclip_configs
from neuroclips.models.unclip_keys import (
    LDM_UNET_PREFIX,
    load_unclip_unet,
    map_unclip_unet,
    unclip_key_map,
)
from neuroclips.utils.seeding import clip_generators, randn_per_clip
from neuroclips.utils.weights import MissingWeightsError

RECIPE = KeyframeRecipe(steps=6, gen_size=32, out_size=24)


@pytest.fixture(scope="module")
def unclip():
    torch.set_num_threads(1)
    return build_unclip("random", "tiny", context_dim=32)


def sinusoid(value: float, dim: int) -> torch.Tensor:
    """sgm's timestep embedding: frequencies exp(−ln 10⁴·i/(dim/2)), cos half first."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)
    return torch.cat([torch.cos(value * freqs), torch.sin(value * freqs)]).float()


def test_timesteps_are_the_reference_spacing():
    ts = unclip_timesteps(38)
    assert len(ts) == 38 and ts[:5] == [999, 972, 946, 920, 893] and ts[-3:] == [78, 52, 26]


def test_vector_conditioning_is_sinusoids_of_size_and_crop(unclip):
    unet = unclip.unet
    dim = unet.config.addition_time_embed_dim
    ids = torch.tensor([768.0, 768.0, 0.0, 0.0])
    ours = unet.add_time_proj(ids).flatten()
    hand = torch.cat([sinusoid(v, dim) for v in ids.tolist()])
    torch.testing.assert_close(ours, hand, atol=1e-5, rtol=1e-5)
    # route T (time ids) and route P (the same vector as class_labels) give the same UNet output
    cfg = dict(unclip_configs("tiny")["unet"], addition_embed_type=None, class_embed_type="projection")
    route_p = UNet2DConditionModel(**cfg)
    sd = {k.replace("add_embedding.", "class_embedding."): v for k, v in unet.state_dict().items()}
    route_p.load_state_dict(sd, strict=True)
    x, ctx = torch.randn(2, 4, 8, 8), torch.randn(2, 16, 32)
    with torch.no_grad():
        a = unet(
            x,
            500,
            encoder_hidden_states=ctx,
            added_cond_kwargs={"text_embeds": torch.zeros(2, 0), "time_ids": ids.expand(2, 4)},
        ).sample
        b = route_p(x, 500, encoder_hidden_states=ctx, class_labels=hand.expand(2, -1)).sample
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_sampler_equals_a_hand_written_euler_loop(unclip):
    unet, vae = unclip.unet, unclip.vae
    tokens = torch.randn(1, 16, 32)
    ours = sample_keyframes(unet, vae, unclip.scheduler, RECIPE, tokens, [5])
    # hand-written: σ table in float64 from the scaled-linear betas, x ← x + (σ_next − σ)·ε̂, CFG on ε
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    abar = torch.cumprod(1 - betas, 0)
    sig = ((1 - abar) / abar).sqrt()
    ts = unclip_timesteps(RECIPE.steps)
    sigmas = [float(sig[t]) for t in ts] + [0.0]
    gens = lambda p: clip_generators(RECIPE.seed, [5], p)  # noqa: E731
    shape = (4, 8, 8)  # the tiny VAE is f4: 32 px -> 8
    uncond = randn_per_clip((16, 32), gens("keyframe_uncond"))
    base, noise = randn_per_clip(shape, gens("keyframe_base")), randn_per_clip(shape, gens("keyframe_noise"))
    x = base + sigmas[0] * (noise + 0.04 * randn_per_clip((1, 1, 1), gens("keyframe_offset")))
    ids = torch.tensor([[768.0, 768.0, 0.0, 0.0]] * 2)
    with torch.no_grad():
        for t, s, s_next in zip(ts, sigmas[:-1], sigmas[1:]):
            inp = torch.cat([x, x]) / math.sqrt(s**2 + 1)
            eps = unet(
                inp,
                t,
                encoder_hidden_states=torch.cat([uncond, tokens]),
                added_cond_kwargs={"text_embeds": torch.zeros(2, 0), "time_ids": ids},
            ).sample
            eu, ec = eps.chunk(2)
            x = x + (s_next - s) * (eu + RECIPE.guidance_scale * (ec - eu))
        img = (0.8 * vae.decode(x / vae.config.scaling_factor).sample + 0.2).clamp(0, 1)
    img = torch.nn.functional.interpolate(img, size=(24, 24), mode="bilinear", antialias=True).clamp(0, 1)
    torch.testing.assert_close(ours, img, atol=2e-4, rtol=0)


def test_keyframes_are_batch_independent_and_init_from_blurry_runs(unclip):
    tokens = torch.randn(3, 16, 32)
    batched = sample_keyframes(unclip.unet, unclip.vae, unclip.scheduler, RECIPE, tokens, [0, 1, 2])
    single = torch.cat(
        [
            sample_keyframes(unclip.unet, unclip.vae, unclip.scheduler, RECIPE, tokens[i : i + 1], [i])
            for i in range(3)
        ]
    )
    assert batched.shape == (3, 3, 24, 24) and 0 <= batched.min() and batched.max() <= 1
    torch.testing.assert_close(batched, single, atol=1e-4, rtol=0)
    recipe = KeyframeRecipe(steps=6, gen_size=32, out_size=24, init_from_blurry=True, blurry_strength=0.5)
    blurry = torch.rand(3, 3, 64, 64)
    img = sample_keyframes(unclip.unet, unclip.vae, unclip.scheduler, recipe, tokens, [0, 1, 2], blurry)
    assert img.shape == batched.shape and (img - batched).abs().max() > 1e-3
    with pytest.raises(ValueError, match="init_from_blurry"):
        sample_keyframes(unclip.unet, unclip.vae, unclip.scheduler, recipe, tokens, [0, 1, 2])


def test_unclip_key_map_agrees_with_diffusers_converter_and_loads(unclip):
    unet = unclip.unet
    mapping = unclip_key_map(unet)
    state = unet.state_dict()
    ldm = {k: state[v].clone() + 1 for k, v in mapping.items()}  # sgm-layout file with different values
    converted = convert_ldm_unet_checkpoint(ldm, dict(unet.config))  # diffusers' own, independent mapping
    assert set(converted) == set(state)
    assert all(torch.equal(converted[k], ldm[LDM_UNET_PREFIX + _inv(mapping)[k]]) for k in state)
    target = UNet2DConditionModel(**unclip_configs("tiny", 32)["unet"])
    report = load_unclip_unet(target, {**ldm, "first_stage_model.x": torch.zeros(1)})
    assert report.complete and report.covered == len(state)
    assert all(torch.equal(target.state_dict()[k], state[k] + 1) for k in state)
    broken = dict(ldm)
    broken.pop(next(iter(broken)))
    broken[LDM_UNET_PREFIX + "extra.weight"] = torch.zeros(1)
    _, bad = map_unclip_unet(target, broken)
    assert len(bad.missing) == 1 and bad.unused == [LDM_UNET_PREFIX + "extra.weight"] and not bad.complete
    with pytest.raises(ValueError, match="1 missing"):
        load_unclip_unet(target, broken)


def _inv(mapping: dict[str, str]) -> dict[str, str]:
    return {v: k[len(LDM_UNET_PREFIX) :] for k, v in mapping.items()}


def test_real_size_unclip_layout_on_meta():
    with torch.device("meta"):
        comps = build_unclip("local", "paper", context_dim=1664)  # meta: real architecture, no file read
    assert len(unclip_key_map(comps.unet)) == 1680
    assert sum(p.numel() for p in comps.unet.parameters()) == 2_501_272_324
    assert comps.vae.config.scaling_factor == 0.13025


def test_missing_unclip_file_and_tiny_captioner(tmp_path):
    with pytest.raises(MissingWeightsError, match="scale.gen.keyframe.unclip_file"):
        build_unclip("local", "tiny", unclip_file=str(tmp_path / "unclip6.ckpt"))
    captions = build_captioner("random", "tiny", max_new_tokens=4)(torch.rand(2, 3, 40, 40))
    assert len(captions) == 2 and all(isinstance(c, str) for c in captions)


def test_keyframe_options_come_from_the_stage_config_once_and_refuse_unknown_or_missing_keys():
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    import neuroclips.utils.resolvers  # noqa: F401
    from neuroclips.errors import ConfigError
    from neuroclips.systems.keyframe import KeyframeOptions
    from tests.conftest import REPO

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["stage=keyframe", "keyframe.guidance_scale=7.5"])
    values = OmegaConf.to_container(cfg.system.options, resolve=True)
    options = KeyframeOptions.of(values)
    assert options.guidance_scale == 7.5 and options.caption_source == cfg.keyframe.caption_source
    with pytest.raises(ConfigError, match=r"unknown \['guidence_scale'\]"):
        KeyframeOptions.of({**values, "guidence_scale": 1.0})
    with pytest.raises(ConfigError, match=r"missing \['seed'\]"):
        KeyframeOptions.of({k: v for k, v in values.items() if k != "seed"})
