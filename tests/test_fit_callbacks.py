"""The fit callbacks come from conf/callbacks/fit.yaml and are exactly the list the runtime built in code before
(the oracle below is that code): same callbacks, order, arguments and Lightning state keys."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint

import neuroclips.utils.resolvers  # noqa: F401
from neuroclips.callbacks.checkpointing import CheckpointMetadata, EpochToData
from neuroclips.callbacks.finite_loss import FiniteLossGuard
from neuroclips.callbacks.fit_standard import FitRun
from neuroclips.errors import ConfigError
from neuroclips.runtime import build_fit_callbacks
from tests.conftest import REPO

CKPT_DIR = "/runs/x/checkpoints"
META = {"stage": "x", "fingerprint": "abc"}


def config(*overrides: str):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def _checkpoint(ckpt_dir, filename, **kw):
    return ModelCheckpoint(
        dirpath=ckpt_dir, filename=filename, auto_insert_metric_name=False, enable_version_counter=False, **kw
    )


def oracle(ckpt_dir, stage, monitor, monitor_mode, seed, metadata, every_n_train_steps=None) -> list:
    """callbacks/fit_standard.fit_callbacks as it was before conf/callbacks/fit.yaml."""
    best = _checkpoint(
        ckpt_dir, "best", monitor=monitor, mode=monitor_mode, save_last=False, save_top_k=1 if monitor else 0
    )
    last = _checkpoint(ckpt_dir, "last", monitor=None, save_top_k=1, every_n_epochs=1)
    guard = FiniteLossGuard(stage, monitor)
    steps = (
        [_checkpoint(ckpt_dir, "last", monitor=None, save_top_k=1, every_n_train_steps=every_n_train_steps)]
        if every_n_train_steps
        else []
    )
    return [
        guard,
        *([best] if monitor else []),
        last,
        *steps,
        CheckpointMetadata(metadata),
        EpochToData(seed),
    ]


def describe(callback) -> tuple:
    """The callback's class, Lightning state key and every plain attribute (a clock reading aside)."""
    plain = (str, int, float, bool, type(None), dict, tuple)
    attrs = {k: v for k, v in vars(callback).items() if isinstance(v, plain) and k != "_last_time_checked"}
    return type(callback).__name__, getattr(callback, "state_key", None), attrs


def built(cfg) -> list:
    return build_fit_callbacks(cfg, FitRun(CKPT_DIR, META)).callbacks


@pytest.mark.parametrize("steps", [None, 3])
@pytest.mark.parametrize(
    "overrides", [["stage=sr"], ["stage=sr_prior"], ["stage=pr"], ["stage=sr", "recipe=reference"]]
)
def test_fit_callbacks_equal_the_list_built_in_code_before(overrides, steps):
    cfg = config(*overrides, f"checkpoint.every_n_train_steps={'null' if steps is None else steps}", "seed=7")
    want = oracle(CKPT_DIR, cfg.stage.name, cfg.stage.monitor, cfg.stage.monitor_mode, 7, META, steps)
    assert [describe(c) for c in built(cfg)] == [describe(c) for c in want]


def test_without_a_monitor_there_is_no_best_callback():
    cfg = config("stage=pr", "~stage.monitor")
    callbacks = built(cfg)
    assert [describe(c) for c in callbacks] == [
        describe(c) for c in oracle(CKPT_DIR, "pr", None, "max", 42, META)
    ]
    assert build_fit_callbacks(cfg, FitRun(CKPT_DIR, META)).best is None


def test_fit_callbacks_are_overridable_and_only_fit_stages_have_them():
    callbacks = built(config("stage=sr", "callbacks.last.every_n_epochs=5"))
    (last,) = [c for c in callbacks if isinstance(c, ModelCheckpoint) and c.filename == "last"]
    assert last._every_n_epochs == 5
    fit = build_fit_callbacks(config("stage=sr", "callbacks.best=null"), FitRun(CKPT_DIR, META))
    assert fit.best is None and [c.filename for c in fit.callbacks if isinstance(c, ModelCheckpoint)] == [
        "last"
    ]
    for stage in ("keyframe", "blurry", "video", "eval", "targets", "standins", "fusion"):
        assert "callbacks" not in config(f"stage={stage}"), stage


def test_fit_callbacks_without_epoch_seeding_or_at_all_are_refused():
    with pytest.raises(ConfigError) as err:
        built(config("stage=sr", "callbacks.epoch=null"))
    assert str(err.value) == (
        "conf/callbacks/fit.yaml: callbacks.epoch expected the per-epoch seeding callback "
        "(neuroclips.callbacks.checkpointing.EpochToData) that exact resume needs, found none."
    )
    cfg = config("stage=sr")
    OmegaConf.set_struct(cfg, False)
    del cfg["callbacks"]
    with pytest.raises(ConfigError, match=r"^conf/stage/sr.yaml: callbacks expected the fit callbacks"):
        built(cfg)
