"""recipe=reference composes for every stage, sets the reference values, and recipe=default changes nothing.

Also: the reference's MindEye2 warm start of the sr_prior diffusion prior loads a MindEye2-layout file at tiny scale.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

import neuroclips.utils.resolvers  # noqa: F401  (registers ${nc.cwd:})

REPO = Path(__file__).resolve().parents[1]
STAGES = sorted(p.stem for p in (REPO / "conf" / "stage").glob("*.yaml"))


def config(*overrides: str):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def plain(cfg) -> dict:
    cfg = OmegaConf.to_container(cfg, resolve=False)
    cfg.pop("hydra", None)
    return cfg


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("scale", ["tiny", "paper"])
def test_recipe_reference_composes_and_default_is_a_no_op(stage, scale):
    base = config(f"stage={stage}", f"scale={scale}")
    default = config(f"stage={stage}", f"scale={scale}", "recipe=default")
    assert plain(base) == plain(default)
    reference = config(f"stage={stage}", f"scale={scale}", "recipe=reference")
    assert reference.stage.name == stage
    assert reference.video.seeding == "reference" and reference.keyframe.seeding == "reference"


def test_recipe_reference_values_reach_the_stage_objects():
    cfg = config("stage=video", "recipe=reference")
    assert cfg.system.options.seeding == "reference" and cfg.system.options.per_clip_seed is False
    assert (cfg.stage.callbacks.media.first_frame, cfg.stage.callbacks.media.play_fps) == (4, 6)
    assert cfg.stage.callbacks.media.fps == 8  # the frames are still made at 8 fps
    cfg = config("stage=keyframe", "recipe=reference", "scale=paper")
    options = cfg.system.options
    assert (options.seeding, options.autocast_scope, options.quantize) == ("reference", "stage", "png")
    assert options.resize_antialias is False and cfg.datamodule.eval_batch_size == 200
    assert (cfg.system.captioner.preprocess, cfg.system.captioner.generation) == ("pil", "defaults")
    cfg = config("stage=blurry", "recipe=reference")
    assert cfg.system.temporal_window == "batch_size_frames" and cfg.datamodule.eval_batch_size == 10
    # the reference trains the PR on consecutive clips whose frames all attend
    for scale in ("tiny", "paper"):
        cfg = config("stage=pr", "recipe=reference", f"scale={scale}")
        assert (cfg.datamodule.shuffle_train, cfg.system.temporal_window) == (False, "batch")
    for stage in ("sr", "sr_prior"):
        cfg = config(f"stage={stage}", "recipe=reference", "paths.weights_dir=/w")
        expected = "/w/mindeyev2/final_subj01_pretrained_40sess_24bs/last.pth"
        node = cfg.system.backbone if stage == "sr" else cfg.system.diffusion_prior
        assert cfg.init.mindeye2_ckpt == expected and node.checkpoint == expected


def test_recipe_reference_defaults_are_ours():
    options = config("stage=keyframe").system.options
    assert (options.seeding, options.autocast_scope, options.quantize) == ("streams", "unet", "none")
    assert options.resize_antialias is True
    cfg = config("stage=video")
    assert cfg.system.options.seeding == "streams" and cfg.stage.callbacks.media.first_frame == 0
    assert config("stage=sr_prior").init.mindeye2_ckpt is None
    tiny, paper = config("stage=pr", "scale=tiny"), config("stage=pr", "scale=paper")
    assert (tiny.datamodule.shuffle_train, tiny.system.temporal_window) == (True, "clip")  # pr_plateau.md
    assert (paper.datamodule.shuffle_train, paper.system.temporal_window) == (False, "batch")


def test_sr_prior_warm_starts_from_a_mindeye2_layout_file_at_tiny_scale(tmp_path):
    """init.mindeye2_ckpt (set by recipe=reference) loads the prior's `diffusion_prior.*` keys of a MindEye2 file."""
    cfg = config("stage=sr_prior", "recipe=reference")
    node = cfg.system.diffusion_prior
    torch.manual_seed(5)
    source = instantiate(node.module)  # the tiny prior, as stage sr_prior builds it
    shared: dict[
        int, torch.Tensor
    ] = {}  # tensors shared between layers (rotary freqs) get one value, as in a real file
    state = {
        "diffusion_prior." + k: shared.setdefault(v.data_ptr(), torch.randn_like(v))
        for k, v in source.state_dict(keep_vars=True).items()
    }
    state["ridge.linears.0.weight"] = torch.randn(3, 7)  # NSD ridge: another net, left alone
    state["backbone.backbone_linear.weight"] = torch.randn(2, 2)
    path = tmp_path / "last.pth"
    torch.save({"epoch": 1, "model_state_dict": state}, path)
    prior = instantiate(node, checkpoint=str(path))
    for key, value in prior.state_dict().items():
        assert torch.equal(value, state["diffusion_prior." + key]), key
    # the recipe's own path is the reference file under the weights folder (absent here: a clear error)
    with pytest.raises(Exception, match="init.mindeye2_ckpt"):  # hydra wraps the FileNotFoundError
        instantiate(node, checkpoint=str(tmp_path / "mindeyev2" / "missing.pth"))
