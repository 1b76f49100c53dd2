"""Fitted tiny unCLIP keyframe generator (stage=standins): unclip6 layout, strict paper-scale loader, cached."""

from __future__ import annotations

import numpy as np
import pytest
import torch

CONTEXT_DIM = 32  # scale.sr.clip_dim at tiny


@pytest.fixture(scope="module")
def fitted(sim_file, generator_vae, tmp_path_factory):
    from neuroclips.data.sampler import validation_rows
    from neuroclips.tasks.standin_unclip import TinyUnclipStandin

    task = TinyUnclipStandin(
        out_file=str(tmp_path_factory.mktemp("unclip") / "unclip" / "unclip6_tiny.safetensors"),
        clip_encoder=tiny_clip_encoder(),
        context_dim=CONTEXT_DIM,
        gen_size=32,
        sample_steps=2,
        vae=generator_vae,
        unet={"steps": 3, "batch_size": 4, "lr": 1e-3, "uncond_prob": 0.5},
        seed=0,
    )
    stats = task.fit_and_save(str(sim_file), validation_rows(120, 0.1, 20, 0), {"frames_sha1": "x"})
    return task, stats


def tiny_clip_encoder():
    """The frozen CLIP encoder exactly as conf/net/clip_tokens_encoder.yaml builds it at scale=tiny."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from tests.conftest import REPO

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["stage=standins"])
    return instantiate(cfg.scale.sr.clip_tokens_encoder)


def random_components(seed: int):
    from neuroclips.models.unclip_generator import build_unclip

    return build_unclip("random", "tiny", CONTEXT_DIM, init_seed=seed)


def test_writer_round_trips_through_the_strict_unclip6_loader(tmp_path):
    from safetensors.torch import save_file

    from neuroclips.models.unclip_generator import build_unclip
    from neuroclips.models.unclip_writer import unclip_state_dict

    source = random_components(seed=1)
    file = tmp_path / "unclip.safetensors"
    state = unclip_state_dict(source.unet, source.vae)
    assert all(k.startswith(("model.diffusion_model.", "first_stage_model.")) for k in state)
    save_file({k: v.contiguous() for k, v in state.items()}, str(file))
    loaded = build_unclip("local", "tiny", CONTEXT_DIM, unclip_file=str(file), init_seed=2)
    for ours, theirs in ((loaded.unet, source.unet), (loaded.vae, source.vae)):
        for key, value in theirs.state_dict().items():
            torch.testing.assert_close(ours.state_dict()[key], value, rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("prefix", ["model.diffusion_model.", "first_stage_model."])
def test_a_file_missing_a_key_is_refused(tmp_path, prefix):
    from safetensors.torch import save_file

    from neuroclips.models.unclip_generator import build_unclip
    from neuroclips.models.unclip_writer import unclip_state_dict

    source = random_components(seed=1)
    state = unclip_state_dict(source.unet, source.vae)
    state.pop(next(k for k in sorted(state) if k.startswith(prefix) and k.endswith(".weight")))
    file = tmp_path / "unclip.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(file))
    with pytest.raises((ValueError, KeyError, RuntimeError)):
        build_unclip("local", "tiny", CONTEXT_DIM, unclip_file=str(file))


def test_paper_size_vae_keys_are_the_ldm_names_diffusers_converts_back():
    """At the real SDXL-VAE size (built on meta), every written name is one diffusers' LDM converter maps to the
    diffusers key it came from: the writer is the converter's inverse, not only at tiny size."""
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    from neuroclips.models.unclip_generator import unclip_configs
    from neuroclips.models.unclip_writer import diffusers_to_ldm_vae_key

    with torch.device("meta"):
        vae = AutoencoderKL(**unclip_configs("paper", 1664)["vae"])
    num_up = len(vae.config.up_block_types)
    tagged = {}
    for index, (key, value) in enumerate(vae.state_dict().items()):
        ldm = diffusers_to_ldm_vae_key(key, num_up)
        if ".attn_1." in ldm and ldm.endswith(".weight") and value.dim() == 2:
            value = torch.empty(*value.shape, 1, 1)
        tagged["first_stage_model." + ldm] = torch.full(value.shape, float(index), device="cpu")
    converted = convert_ldm_vae_checkpoint(tagged, vae.config)
    keys = list(vae.state_dict())
    assert sorted(converted) == sorted(keys)
    for index, key in enumerate(keys):
        assert float(converted[key].flatten()[0]) == float(index), key


def test_fitted_unclip_loads_through_the_paper_loader_and_samples_keyframes(fitted):
    from neuroclips.generation.keyframe import KeyframeRecipe, sample_keyframes
    from neuroclips.models.unclip_generator import build_unclip

    task, stats = fitted
    loaded = build_unclip("local", "tiny", CONTEXT_DIM, unclip_file=str(task.out_file))
    recipe = KeyframeRecipe(steps=2, gen_size=32, out_size=32, seed=0)
    images = sample_keyframes(
        loaded.unet, loaded.vae, loaded.scheduler, recipe, torch.randn(2, 64, CONTEXT_DIM), [0, 1]
    )
    assert images.shape == (2, 3, 32, 32) and torch.isfinite(images).all()
    assert stats["unet"]["steps"] == 3 and stats["vae"]["shared"] == str(task.vae.out_dir)
    validation = stats["validation"]
    assert validation["clips"] == 20  # the validation block of the 120 training clips, never fitted on
    assert stats["frames"] == 6 * 100  # every frame of the other 100 training clips
    assert -1.0 <= validation["pixcorr"] <= 1.0 and validation["mse"] >= 0.0


def test_fitted_unclip_is_reused_only_for_the_same_data_and_settings(fitted):
    from tests.standin_checks import assert_reused_only_for_same_data_and_settings

    assert_reused_only_for_same_data_and_settings(fitted[0], {"frames_sha1": "x"}, section="unet")


def test_rescaled_vae_gives_unit_latents_and_frames_through_the_mindeye2_mapping(sim_file):
    """fit_latent_scale_and_output changes no reconstruction, only the two affine maps it names."""
    from neuroclips.tasks.standin_unclip import MINDEYE2_OUTPUT, fit_latent_scale_and_output, read_frames

    vae = random_components(seed=3).vae
    images = torch.nn.functional.interpolate(read_frames(sim_file, np.arange(8)), size=(32, 32), mode="area")
    with torch.no_grad():
        before = vae.decode(vae.encode(images * 2 - 1).latent_dist.mode()).sample
        fit_latent_scale_and_output(vae, images)
        latents = vae.encode(images * 2 - 1).latent_dist.mode()
        after = vae.decode(latents).sample
    assert abs(float(latents.std()) * vae.config.scaling_factor - 1.0) < 1e-3
    scale, shift = MINDEYE2_OUTPUT
    torch.testing.assert_close(scale * after + shift, (before + 1) / 2, rtol=1e-4, atol=1e-4)


def test_fit_is_deterministic_for_a_seed(sim_file, fitted, tmp_path):
    from safetensors.torch import load_file

    from neuroclips.data.sampler import validation_rows
    from neuroclips.tasks.standin_unclip import TinyUnclipStandin

    task, _ = fitted
    again = TinyUnclipStandin(
        out_file=str(tmp_path / "u" / "unclip6_tiny.safetensors"),
        clip_encoder=task.clip_encoder,
        context_dim=CONTEXT_DIM,
        gen_size=32,
        sample_steps=2,
        vae=task.vae,
        unet=dict(task.training["unet"]),
        seed=0,
    )
    again.fit_and_save(str(sim_file), validation_rows(120, 0.1, 20, 0), {"frames_sha1": "x"})
    first, second = load_file(str(task.out_file)), load_file(str(again.out_file))
    assert first.keys() == second.keys()
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0, msg=key)
