"""The tiny VAE the fitted unCLIP and video generator share (tasks/standin_generator_vae.py): fitted once,
deterministic, reused only for the same data and settings, and each generator's file carries a copy of it."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import TINY_VAE_FIT


def test_shared_vae_is_deterministic_and_reused_only_for_the_same_data_and_settings(
    sim_file, generator_vae, tmp_path
):
    from diffusers import AutoencoderKL

    from neuroclips.data.sampler import validation_rows
    from neuroclips.tasks.standin_generator_vae import GeneratorVaeStandin
    from tests.standin_checks import assert_reused_only_for_same_data_and_settings

    assert_reused_only_for_same_data_and_settings(generator_vae, {"frames_sha1": "x"})
    again = GeneratorVaeStandin(out_dir=str(tmp_path / "vae"), size=32, training=dict(TINY_VAE_FIT))
    again.fit_and_save(str(sim_file), validation_rows(120, 0.1, 20, 0), {"frames_sha1": "x"})
    first, second = (
        AutoencoderKL.from_pretrained(str(s.out_dir), local_files_only=True).state_dict()
        for s in (generator_vae, again)
    )
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0, msg=key)


def test_both_generators_files_carry_the_shared_vae(generator_vae):
    """Loaded into each generator's own VAE (strict), before their re-parametrisations: the same weights."""
    from diffusers import AutoencoderKL

    from neuroclips.models.unclip_generator import build_unclip
    from neuroclips.tasks.standin_video_fit import build_trainable

    fitted = AutoencoderKL.from_pretrained(str(generator_vae.out_dir), local_files_only=True).state_dict()
    for vae in (build_unclip("random", "tiny", 32, init_seed=1).vae, build_trainable(1, "per_frame").vae):
        generator_vae.load_into(vae)
        for key, value in vae.state_dict().items():
            torch.testing.assert_close(value, fitted[key], rtol=0, atol=0, msg=key)


def test_generators_with_different_vae_architectures_are_refused(monkeypatch):
    from neuroclips.models.unclip_generator import UNCLIP_CONFIGS
    from neuroclips.tasks.standin_generator_vae import generator_vae_config

    monkeypatch.setitem(UNCLIP_CONFIGS["tiny"]["vae"], "block_out_channels", [16, 32])
    with pytest.raises(ValueError, match="UNCLIP_CONFIGS/VIDEO_CONFIGS"):
        generator_vae_config()


def test_stage_generators_without_the_shared_vae_says_to_run_standins_first(sim_copy, tmp_path):
    """Exit 2 in one sentence naming the folder and the config key, and nothing written."""
    from tests.conftest import run_cli

    proc = run_cli(["stage=generators", "experiment=demo"], tmp_path, sim_copy, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "scale.standins.generator_vae" in proc.stderr and "run stage=standins first" in proc.stderr
    assert str(tmp_path / "data" / "standins" / "generator_vae") in proc.stderr
    assert not (tmp_path / "data" / "standins" / "video").exists()
    assert not (tmp_path / "data" / "standins" / "unclip").exists()


def test_stage_generators_at_paper_scale_builds_no_frozen_encoder():
    """Nothing is fitted at scale=paper: the task builds without the (absent) bigG weights the unCLIP stand-in would
    read, and has nothing to do."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    import neuroclips.utils.resolvers  # noqa: F401
    from tests.conftest import REPO

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["stage=generators", "scale=paper"])
    task = instantiate(cfg.task)
    assert task.unclip is None and task.video is None and not task.vae.enabled


def test_standins_without_the_prs_vae_still_fits_the_other_standins(sim_file, tmp_path):
    """scale.pr.standin.enabled=false (the PR's VAE from local weights) skips that VAE only: the generators' VAE
    (and the classifiers, the captioner) are still fitted; with nothing enabled the stage says it skipped."""
    from types import SimpleNamespace

    from neuroclips.tasks.standin_generator_vae import GeneratorVaeStandin
    from neuroclips.tasks.standins import TinyVaeStandin

    ctx = SimpleNamespace(
        is_global_zero=True,
        datamodule=lambda: None,
        provenance=None,
        data_file=str(sim_file),
        cfg=SimpleNamespace(data=SimpleNamespace(val_fraction=0.1, val_block=20, val_seed=0)),
    )
    shared = GeneratorVaeStandin(out_dir=str(tmp_path / "g"), size=32, training=dict(TINY_VAE_FIT))
    result = TinyVaeStandin(
        out_dir=str(tmp_path / "tiny"), enabled=False, generator_vae=shared, workers=1
    ).run(ctx)
    assert (tmp_path / "g" / "standin.json").exists() and not (tmp_path / "tiny").exists()
    assert "generator_vae" in result.metrics and "tiny_vae" not in result.outputs
    nothing = TinyVaeStandin(out_dir=str(tmp_path / "tiny"), enabled=False, workers=1).run(ctx)
    assert "skipped" in nothing.metrics


def test_settings_from_a_hydra_config_are_plain_json(tmp_path):
    """Built straight from the composed config (as experiments/ scripts do), the settings still go into the marker."""
    import json

    from omegaconf import OmegaConf

    from neuroclips.tasks.standin_generator_vae import GeneratorVaeStandin

    training = OmegaConf.create({"steps": 2, "blurred_copies": [4, 8]})["blurred_copies"]
    standin = GeneratorVaeStandin(out_dir=str(tmp_path), training={"steps": 2, "blurred_copies": training})
    assert json.loads(json.dumps(standin.settings()))["training"]["blurred_copies"] == [4, 8]
