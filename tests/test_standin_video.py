"""Fitted tiny AnimateDiff + SparseCtrl video generator (stage=standins): the three original files, read by the strict
paper-scale loader, cached; its writer is the inverse of the loader's key conversion."""

from __future__ import annotations

import pytest
import torch

UNET = {"steps": 2, "batch_size": 2, "lr": 1e-3, "uncond_prob": 0.5, "keyframe_drop": 0.5}


def standin(root, vae, seed: int = 0):
    from neuroclips.tasks.standin_video import TinyVideoStandin

    files = {
        "dreambooth_file": f"{root}/video/db.safetensors",
        "motion_module_file": f"{root}/video/mm.safetensors",
        "sparsectrl_file": f"{root}/video/sparsectrl.safetensors",
    }
    return TinyVideoStandin(files=files, vae=vae, unet=dict(UNET), seed=seed)


@pytest.fixture(scope="module")
def fitted(sim_file, generator_vae, tmp_path_factory):
    from neuroclips.data.sampler import validation_rows

    task = standin(tmp_path_factory.mktemp("video"), generator_vae)
    stats = task.fit_and_save(str(sim_file), validation_rows(120, 0.1, 20, 0), {"frames_sha1": "x"})
    return task, stats


def random_nets(seed: int):
    """Tiny video nets with every weight non-zero (the zero-initialised outputs too), so a dropped key shows."""
    from neuroclips.models.generator_loading import randomize_zero_init
    from neuroclips.tasks.standin_video_fit import build_trainable

    nets = build_trainable(seed, "per_frame")
    randomize_zero_init(nets.unet, nets.controlnet)
    return nets


def write_files(nets, root) -> dict[str, str]:
    from safetensors.torch import save_file

    from neuroclips.models.animatediff_writer import (
        animatediff_state_dict,
        dreambooth_state_dict,
        split_motion_unet,
    )

    spatial, motion = split_motion_unet(nets.unet.state_dict())
    states = {
        "dreambooth_file": dreambooth_state_dict(spatial, nets.unet_config, nets.vae, nets.text_encoder),
        "motion_module_file": animatediff_state_dict(motion),
        "sparsectrl_file": animatediff_state_dict(nets.controlnet.state_dict()),
    }
    files = {}
    for field, state in states.items():
        files[field] = str(root / f"{field}.safetensors")
        save_file(state, files[field])
    return files


def test_writer_round_trips_through_the_strict_video_loader(tmp_path):
    from neuroclips.models.video_generator import build_video_pipeline

    source = random_nets(seed=1)
    pipe = build_video_pipeline("local", "tiny", **write_files(source, tmp_path))
    pairs = [
        (pipe.unet, source.unet),
        (pipe.vae, source.vae),
        (pipe.text_encoder, source.text_encoder),
        (pipe.controlnet, source.controlnet),
    ]
    for ours, theirs in pairs:
        loaded = ours.state_dict()
        assert sorted(loaded) == sorted(theirs.state_dict())
        for key, value in theirs.state_dict().items():
            torch.testing.assert_close(loaded[key], value, rtol=0, atol=0, msg=key)


@pytest.mark.parametrize(
    "field, prefix",
    [
        ("motion_module_file", "down_blocks.1.motion_modules.0.temporal_transformer."),
        ("sparsectrl_file", "down_blocks.0.motion_modules.0.temporal_transformer."),
        ("sparsectrl_file", "controlnet_cond_embedding."),
        ("dreambooth_file", "model.diffusion_model."),
        ("dreambooth_file", "first_stage_model."),
        ("dreambooth_file", "cond_stage_model.transformer."),
    ],
)
def test_a_file_missing_a_key_is_refused_naming_its_field(tmp_path, field, prefix):
    from safetensors.torch import load_file, save_file

    from neuroclips.models.video_generator import build_video_pipeline

    files = write_files(random_nets(seed=1), tmp_path)
    state = load_file(files[field])
    state.pop(next(k for k in sorted(state) if k.startswith(prefix) and k.endswith(".weight")))
    save_file(state, files[field])
    with pytest.raises(ValueError, match=field):
        build_video_pipeline("local", "tiny", **files)


def test_paper_size_motion_names_are_animatediffs_and_convert_back():
    """At the real v3 size (built on meta) the written names are AnimateDiff's own (temporal_transformer level,
    attention_blocks, norms, ff_norm, pos_encoder) and diffusers' converter maps each back to its source key."""
    from diffusers import MotionAdapter
    from diffusers.loaders.single_file_utils import convert_animatediff_checkpoint_to_diffusers

    from neuroclips.models.animatediff_writer import animatediff_motion_key
    from neuroclips.models.video_generator_configs import VIDEO_CONFIGS

    with torch.device("meta"):
        adapter = MotionAdapter(**VIDEO_CONFIGS["paper"]["motion_adapter"])
    keys = list(adapter.state_dict())
    written = {
        name: torch.full((1,), float(i)) for i, k in enumerate(keys) for name in animatediff_motion_key(k)
    }
    prefix = "down_blocks.0.motion_modules.0.temporal_transformer."
    for name in (
        "proj_in.weight",
        "norm.weight",
        "transformer_blocks.0.attention_blocks.0.to_q.weight",
        "transformer_blocks.0.attention_blocks.1.to_out.0.bias",
        "transformer_blocks.0.norms.1.weight",
        "transformer_blocks.0.ff_norm.weight",
        "transformer_blocks.0.ff.net.0.proj.weight",
        "transformer_blocks.0.attention_blocks.0.pos_encoder.pe",
        "transformer_blocks.0.attention_blocks.1.pos_encoder.pe",
    ):
        assert prefix + name in written, name
    back = convert_animatediff_checkpoint_to_diffusers(written)
    assert sorted(back) == sorted(k for k in keys if not k.endswith("pos_embed.pe"))
    for index, key in enumerate(keys):
        if key in back:
            assert float(back[key][0]) == float(index), key


def test_fitted_video_generator_loads_through_the_paper_loader_and_makes_videos(fitted):
    from neuroclips.generation.video import VideoRecipe, generate_videos
    from neuroclips.models.video_generator import build_video_pipeline

    task, stats = fitted
    pipe = build_video_pipeline("local", "tiny", **task.files())
    recipe = VideoRecipe(size=32, steps=2)
    videos = generate_videos(
        pipe, recipe, [0, 1], torch.rand(2, 6, 3, 32, 32), torch.rand(2, 3, 32, 32), ["a red circle", "a cat"]
    )
    assert videos.shape == (2, 16, 3, 32, 32) and torch.isfinite(videos).all()
    assert stats["unet"]["steps"] == 2 and stats["vae"]["shared"] == str(fitted[0].vae.out_dir)
    assert stats["clips"] == 100  # the 120 training clips without their validation block
    validation = stats["validation"]
    assert validation["clips"] == 20  # held-out clips only
    for name in ("all", "shuffled_keyframe", "no_caption", "no_sparsectrl"):
        assert validation[f"eps_mse_{name}"] > 0.0


def test_fitted_video_generator_is_reused_only_for_the_same_data_and_settings(fitted):
    from tests.standin_checks import assert_reused_only_for_same_data_and_settings

    assert_reused_only_for_same_data_and_settings(fitted[0], {"frames_sha1": "x"}, section="unet")


def test_fit_is_deterministic_for_a_seed(sim_file, fitted, tmp_path):
    from safetensors.torch import load_file

    from neuroclips.data.sampler import validation_rows

    task, _ = fitted
    again = standin(tmp_path, task.vae)
    again.fit_and_save(str(sim_file), validation_rows(120, 0.1, 20, 0), {"frames_sha1": "x"})
    for field, file in task.files().items():
        first, second = load_file(file), load_file(again.files()[field])
        assert first.keys() == second.keys()
        for key in first:
            torch.testing.assert_close(first[key], second[key], rtol=0, atol=0, msg=f"{field}: {key}")


def test_enabled_without_the_three_files_in_one_folder_is_refused(tmp_path):
    from neuroclips.tasks.standin_video import TinyVideoStandin

    with pytest.raises(ValueError, match="scale.standins.video"):
        TinyVideoStandin(files={"dreambooth_file": str(tmp_path / "a.safetensors")})
    with pytest.raises(ValueError, match="one folder"):
        TinyVideoStandin(
            files={
                "dreambooth_file": str(tmp_path / "a" / "db.safetensors"),
                "motion_module_file": str(tmp_path / "b" / "mm.safetensors"),
                "sparsectrl_file": str(tmp_path / "a" / "sc.safetensors"),
            }
        )


def test_rescaled_video_vae_gives_unit_latents_and_the_same_frames(sim_file):
    import numpy as np

    from neuroclips.tasks.standin_unclip import read_frames, rescale_latents

    vae = random_nets(seed=3).vae
    images = torch.nn.functional.interpolate(read_frames(sim_file, np.arange(8)), size=(32, 32), mode="area")
    with torch.no_grad():
        before = vae.decode(vae.encode(images * 2 - 1).latent_dist.mode()).sample
        rescale_latents(vae, images)
        latents = vae.encode(images * 2 - 1).latent_dist.mode()
        after = vae.decode(latents).sample
    assert abs(float(latents.std()) * vae.config.scaling_factor - 1.0) < 1e-3
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)
