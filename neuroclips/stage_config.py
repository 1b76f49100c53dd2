"""What a stage's config says, read and checked before anything is built: its subjects, its data file and the
DataModule's keyword arguments, the config values checked against what was built (one sentence each), and the
``StageContext`` a task stage reads them through."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from neuroclips.errors import ConfigError, StageError
from neuroclips.process_setup import env_rank
from neuroclips.provenance import Provenance
from neuroclips.stage_fingerprint import target_encoder_fingerprints
from neuroclips.stage_types import StageContext
from neuroclips.subjects import as_ids


# ----------------------------------------------------------------------------------------------- subjects
def config_subjects(cfg: DictConfig) -> list[int]:
    """The subjects of a run (``subj=1``: [1]; ``subj=all``: [1, 2, 3]), in adapter order."""
    return as_ids(cfg.subj.id)


def one_subject(cfg: DictConfig) -> int:
    """The subject of a stage that runs one subject at a time; refuses ``subj=all`` in one sentence."""
    ids = config_subjects(cfg)
    if len(ids) > 1:
        raise StageError(
            f"conf/stage/{cfg.stage.name}.yaml: stage '{cfg.stage.name}' runs one subject at a time, found subj={ids}; "
            f"pass subj=<n> (a multi-subject checkpoint gives each subject its own adapter), or use sr, sr_prior or pr."
        )
    return ids[0]


def subj_value(cfg: DictConfig) -> int | str:
    """``subj`` as summaries and checkpoints record it: the subject, or ``"1_2_3"`` for several."""
    ids = config_subjects(cfg)
    return ids[0] if len(ids) == 1 else str(cfg.subj.id)


# ----------------------------------------------------------------------------------------------- data
def datamodule_kwargs(cfg: DictConfig, **overrides) -> dict:
    data = OmegaConf.to_container(cfg.data, resolve=True)
    stage_dm = cfg.get("datamodule")
    stage_dm = OmegaConf.to_container(stage_dm, resolve=True) if stage_dm is not None else {}
    kw = {**data, **stage_dm, **overrides}
    ids = config_subjects(cfg)
    kw.setdefault("subj", ids[0] if len(ids) == 1 else ids)  # several: subj=all, one ridge adapter each
    kw.setdefault("voxels", int(cfg.subj.voxels) if len(ids) == 1 else [int(v) for v in cfg.subj.voxels])
    kw.setdefault("seed", int(cfg.seed))
    kw.setdefault("scale_name", str(cfg.scale.name))
    if "_target_" not in kw:
        raise ConfigError(
            "data._target_: expected the DataModule class to build (conf/data/*.yaml), found none."
        )
    return kw


def data_file(cfg: DictConfig) -> str:
    return str(OmegaConf.select(cfg, "data.file"))


# ----------------------------------------------------------------------------------------------- checks
def check_every_n_train_steps(cfg: DictConfig) -> None:
    """``checkpoint.every_n_train_steps`` (read by ``callbacks.last_steps``): a positive integer or null."""
    steps = OmegaConf.select(cfg, "checkpoint.every_n_train_steps")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ConfigError(
            f"conf/config.yaml: checkpoint.every_n_train_steps expected a positive integer or null, "
            f"found {steps!r}."
        )


def check_adapters(dm, system) -> None:
    """One ridge adapter per subject of the data, each as wide as that subject's voxels (one sentence otherwise)."""
    sizes = getattr(getattr(system, "ridge", None), "in_features", None)
    if sizes is None:
        return
    wanted = [dm.voxels_by_subject[s] for s in dm.subjects]
    if [int(v) for v in sizes] != wanted:
        raise ConfigError(
            f"system.ridge.in_features: expected one adapter per subject {dm.subjects} with {wanted} voxels "
            f"(conf/subj/<n>.yaml roster), found adapters of {[int(v) for v in sizes]} voxels."
        )


# ----------------------------------------------------------------------------------------------- task stages
def task_context(
    cfg: DictConfig, run_dir: Path, prov: Provenance, build_datamodule: Callable
) -> StageContext:
    """What a task stage's ``run(ctx)`` gets; ``build_datamodule`` is the runtime's (its one instantiate seam)."""
    rank, world = env_rank()
    device = torch.device(
        "cuda"
        if (torch.cuda.is_available() and OmegaConf.select(cfg, "trainer.accelerator") == "gpu")
        else "cpu"
    )
    return StageContext(
        cfg=cfg,
        run_dir=run_dir,
        outputs_dir=Path(cfg.paths.outputs_dir),
        data_file=data_file(cfg),
        subj=one_subject(cfg),
        scale=str(cfg.scale.name),
        device=device,
        rank=rank,
        world_size=world,
        provenance=prov,
        overwrite_outputs=str(cfg.get("outputs", "keep")) == "overwrite",
        target_fingerprints=target_encoder_fingerprints(cfg, prov),
        build_datamodule=build_datamodule,
    )
