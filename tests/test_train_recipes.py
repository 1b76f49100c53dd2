"""Training recipes live in conf/train/<scale>.yaml (chosen by the scale), scale holds sizes and frozen models only."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import neuroclips.utils.resolvers  # noqa: F401
from tests.conftest import REPO

RECIPE_KEYS = {
    "train",
    "prior_train",
    "tau",
    "batch_size",
    "max_epochs",
    "max_lr",
    "epochs",
    "lr",
    "mixup_pct",
    "steps",
    "kl_weight",
    "crop_size",
    "shuffle",
    "temporal_window",
}


def config(*overrides: str):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.mark.parametrize("scale", ["tiny", "paper"])
def test_the_scale_chooses_its_recipe_and_holds_no_recipe_keys(scale):
    cfg = config("stage=sr", f"scale={scale}")
    assert cfg.train == OmegaConf.load(REPO / f"conf/train/{scale}.yaml")
    assert not RECIPE_KEYS & set(cfg.scale.sr) and not RECIPE_KEYS & set(cfg.scale.pr)
    assert (
        cfg.datamodule.batch_size == cfg.train.sr.batch_size and cfg.stage.max_epochs == cfg.train.sr.epochs
    )
    assert cfg.datamodule.batch_size_field == "train.sr.batch_size"


def test_the_stages_read_their_recipe_and_train_can_be_chosen_apart_from_scale():
    pr = config("stage=pr", "train.pr.max_lr=0.01", "train.pr.max_epochs=2")
    assert (pr.system.optimizer.lr, pr.stage.max_epochs, pr.trainer.max_epochs) == (0.01, 2, 2)
    prior = config("stage=sr_prior", "train.sr.tau.val=0.5")
    assert (
        prior.system.val_tau == 0.5
        and prior.system.val_sample_every_n_epochs == prior.train.sr_prior.sample_every
    )
    mixed = config("stage=sr", "scale=tiny", "train=paper")
    assert mixed.scale.name == "tiny" and mixed.datamodule.batch_size == 720


def test_recipe_and_experiment_come_after_train_so_they_may_override_it():
    order = [
        next(iter(e)) if isinstance(e, dict) else e
        for e in OmegaConf.to_container(OmegaConf.load(REPO / "conf/config.yaml").defaults)
    ]
    assert order.index("scale") < order.index("train") < order.index("recipe") < order.index("experiment")


@pytest.mark.parametrize("scale", ["tiny", "paper"])
def test_the_standin_fits_read_their_recipe_from_train_and_scale_keeps_only_their_facts(scale):
    cfg = config("stage=standins", f"scale={scale}")
    fits = {"pr.standin": cfg.scale.pr.standin, **{f"standins.{k}": v for k, v in cfg.scale.standins.items()}}
    assert {name: RECIPE_KEYS & set(node) for name, node in fits.items()} == {name: set() for name in fits}
    task, recipe = cfg.task, cfg.train.standins
    assert (task.steps, task.batch_size, task.crop_size, task.lr, task.kl_weight) == tuple(
        recipe.vae[k] for k in ("steps", "batch_size", "crop_size", "lr", "kl_weight")
    )
    for fit in ("classifiers", "captioner"):
        assert [task[fit][k] for k in ("steps", "batch_size", "lr")] == [
            recipe[fit][k] for k in ("steps", "batch_size", "lr")
        ]
