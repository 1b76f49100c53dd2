"""The runtime: the one place that instantiates. Seeds, data, system, callbacks, loggers, trainer; runs the stage.

A stage is one of three modes (``conf/stage/<name>.yaml`` says which):

* ``fit``: train a LightningModule (``system``) on the DataModule; best checkpoint on the validation monitor;
* ``predict``: run a LightningModule's ``predict_step`` over the clips that still lack outputs, writing each clip
  to the outputs store (resumable, sharded over DDP ranks);
* ``task``: an object (``task``) with ``run(ctx) -> StageResult`` (targets caching, stand-ins, evaluation, ...).

Every stage writes ``summary.json`` (rank 0) and the resolved config next to it. ``dry_run=true`` builds the
stage's modules on the meta device and reports parameter counts and the memory plan without running anything.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from neuroclips.callbacks.checkpointing import AtomicCheckpointIO, EpochToData
from neuroclips.callbacks.fit_standard import FitCallbacks, FitRun
from neuroclips.callbacks.prediction_writer import PredictionWriter
from neuroclips.data import schema
from neuroclips.errors import ConfigError, StageError
from neuroclips.outputs import OutputStore
from neuroclips.process_setup import env_rank, finish_loggers, setup_environment
from neuroclips.provenance import Provenance
from neuroclips.resume import clips_to_do, resume_point
from neuroclips.run_record import checkpoint_metadata, fit_result, previous_result, stage_summary
from neuroclips.run_setup import RunFiles, check_top_level, locked_run_dir, remove_orphans
from neuroclips.stage_config import (
    check_adapters,
    check_every_n_train_steps,
    config_subjects,
    data_file,
    datamodule_kwargs,
    one_subject,
    task_context,
)
from neuroclips.stage_fingerprint import provenance_of_stage
from neuroclips.stage_types import StageContext, StageResult  # noqa: F401  (re-exported)
from neuroclips.utils.atomic import write_json

log = logging.getLogger("neuroclips")


# ----------------------------------------------------------------------------------------------- data
def build_datamodule(cfg: DictConfig, check: bool = True, **overrides):
    dm = instantiate(datamodule_kwargs(cfg, **overrides), _convert_="all")
    dm.prepare_data()
    if check:
        if not Path(dm.file).exists():
            raise schema.SchemaError(
                f"{dm.file}: the data file does not exist (config field 'data.file'); write it with "
                f"`python -m neuroclips.data.simulate out={dm.file} scale={dm.scale_name}` or "
                f"`python -m neuroclips.data.convert_cc2017 src=DIR out={dm.file}`."
            )
        dm.check_file()
    return dm


# ----------------------------------------------------------------------------------------------- trainer
def build_trainer(
    cfg: DictConfig, run_dir: Path, callbacks: list, enable_checkpointing: bool = True
) -> pl.Trainer:
    logger = False
    if cfg.get("logger") and OmegaConf.select(cfg, "logger._target_"):
        logger = instantiate(cfg.logger)
    # conf/trainer/*.yaml names the class (_target_) and its settings, a strategy config included; the runtime adds
    # what only it knows: the run folder, the callbacks, the logger, atomic checkpoint writes
    return instantiate(
        cfg.trainer,
        default_root_dir=str(run_dir),
        callbacks=callbacks,
        logger=logger,
        enable_checkpointing=enable_checkpointing,
        plugins=[AtomicCheckpointIO()],
        use_distributed_sampler=False,  # the DataModule's EpochSampler shards over ranks itself
        _convert_="all",
    )


# ----------------------------------------------------------------------------------------------- provenance
def _cached_target_names(cfg: DictConfig) -> list[str]:
    names = OmegaConf.select(cfg, "datamodule.targets")
    if isinstance(names, DictConfig) and "_target_" in names:
        names = instantiate(names)
    return [str(n) for n in (names or [])]


def stage_provenance(cfg: DictConfig) -> Provenance:
    """The fingerprint of what this stage would produce now (neuroclips/stage_fingerprint.py)."""
    return provenance_of_stage(cfg, _cached_target_names(cfg))


# ----------------------------------------------------------------------------------------------- fit
def build_fit_callbacks(cfg: DictConfig, run: FitRun) -> FitCallbacks:
    """The fit callbacks of ``callbacks`` (conf/callbacks/fit.yaml), in its order: ``_partial_`` entries get
    ``run=``; entries that are null or build None are left out; ``best`` and ``epoch`` are the two the runtime
    talks to (``epoch`` is required: exact resume reseeds through it)."""
    nodes = OmegaConf.select(cfg, "callbacks")
    if not isinstance(nodes, DictConfig) or not nodes:
        raise ConfigError(
            f"conf/stage/{cfg.stage.name}.yaml: callbacks expected the fit callbacks (the defaults entry "
            f"`- /callbacks: fit`, conf/callbacks/fit.yaml), found none."
        )
    built = {}
    for name, node in nodes.items():
        callback = None if node is None else instantiate(node)
        if isinstance(callback, partial):
            callback = callback(run=run)
        if callback is not None:
            built[str(name)] = callback
    if not isinstance(built.get("epoch"), EpochToData):
        raise ConfigError(
            "conf/callbacks/fit.yaml: callbacks.epoch expected the per-epoch seeding callback "
            "(neuroclips.callbacks.checkpointing.EpochToData) that exact resume needs, found "
            f"{type(built['epoch']).__name__ if 'epoch' in built else 'none'}."
        )
    return FitCallbacks(list(built.values()), built.get("best"), built["epoch"])


def run_fit(cfg: DictConfig, run_dir: Path, prov: Provenance, begin) -> tuple[StageResult, pl.Trainer | None]:
    dm = build_datamodule(cfg)
    system = instantiate(cfg.system, _convert_="partial")
    check_adapters(dm, system)
    from neuroclips.callbacks.checkpointing import frozen_prefixes

    max_epochs = int(OmegaConf.select(cfg, "trainer.max_epochs", default=1))
    point = resume_point(
        run_dir,
        str(cfg.get("resume", "auto")),
        str(cfg.stage.name),
        config_subjects(cfg),
        prov,
        system,
        frozen_prefixes(system),
        max_epochs,
    )
    if point.finished is not None:
        return previous_result(point.finished), None
    resume, start_epoch, done_batches = point.ckpt_path, point.epoch, point.done_batches
    check_every_n_train_steps(cfg)
    standard = build_fit_callbacks(cfg, FitRun(str(run_dir / "checkpoints"), checkpoint_metadata(cfg, prov)))
    begin()
    monitor = OmegaConf.select(cfg, "stage.monitor")
    best_cb, epoch_cb = standard.best, standard.epoch
    callbacks = standard.callbacks + _extra_callbacks(cfg)
    trainer = build_trainer(cfg, run_dir, callbacks)
    if resume:
        log.info(
            "resuming from %s at epoch %d%s",
            resume,
            start_epoch,
            f", after its first {done_batches} batches" if done_batches else "",
        )
    dm.setup("fit")
    dm.set_epoch(start_epoch)
    # reseed for the first epoch now: Lightning creates its iterator before any hook
    if done_batches:
        dm.skip_first_train_batches(done_batches)
        epoch_cb.start_mid_epoch(start_epoch, env_rank()[0], point.rng_states)
    else:
        epoch_cb.start(start_epoch, env_rank()[0])
    trainer.fit(system, datamodule=dm, ckpt_path=resume)
    return fit_result(trainer, best_cb, monitor, run_dir), trainer


def _extra_callbacks(cfg: DictConfig) -> list:
    cbs = OmegaConf.select(cfg, "stage.callbacks") or {}
    return [instantiate(c) for c in (cbs.values() if isinstance(cbs, DictConfig) else cbs)]


def run_predict(
    cfg: DictConfig, run_dir: Path, prov: Provenance, begin
) -> tuple[StageResult, pl.Trainer | None]:
    one_subject(cfg)
    store = OutputStore(cfg.paths.outputs_dir)
    kinds = list(OmegaConf.select(cfg, "stage.outputs") or [])
    dm = build_datamodule(cfg)
    clips = dm.predict_clip_indices()
    extra = _extra_callbacks(cfg)
    overwrite = str(cfg.get("outputs", "keep")) == "overwrite"
    todo, stale = clips_to_do(store, kinds, clips, prov, extra, overwrite, run_dir)
    result = StageResult(outputs={k: str(store.root / k) for k in kinds})
    result.metrics = {
        "clips_total": len(clips),
        "clips_done_before": len(clips) - len(todo),
        "clips_stale": len(stale),
    }
    begin()
    if not todo:
        log.info("all %d clips already have %s; nothing to do", len(clips), kinds)
        result.metrics["clips_written"] = 0
        return result, None
    if stale:
        log.info("recomputing %d clips made under another configuration (outputs=overwrite)", len(stale))
    dm = build_datamodule(cfg, check=False, predict_clips=todo)
    system = instantiate(cfg.system, _convert_="partial")
    writer = PredictionWriter(store, kinds, stage=str(cfg.stage.name), fingerprint=prov.fingerprint)
    # the writer last: its .npy marks a clip done, so media (and anything else) are on disk before it
    trainer = build_trainer(cfg, run_dir, extra + [writer], enable_checkpointing=False)
    trainer.predict(system, datamodule=dm, return_predictions=False)
    result.metrics["clips_written"] = len(todo)
    return result, trainer


def run_task(cfg: DictConfig, run_dir: Path, prov: Provenance, begin) -> tuple[StageResult, None]:
    task = instantiate(cfg.task, _convert_="partial")
    ctx = task_context(cfg, run_dir, prov, partial(build_datamodule, cfg))
    begin()
    result = task.run(ctx)
    return result, None


# ----------------------------------------------------------------------------------------------- dry run
def run_dry(cfg: DictConfig, run_dir: Path) -> tuple[StageResult, None]:
    from neuroclips.memory_plan import memory_plan, parameter_report

    mode = str(cfg.stage.mode)
    with torch.device("meta"):
        if mode in ("fit", "predict"):
            system = instantiate(cfg.system, _convert_="partial")
            modules = {"system": system}
        else:
            task = instantiate(cfg.task, _convert_="partial")
            if not hasattr(task, "build_for_dry_run"):
                return StageResult(
                    metrics={"dry_run": True, "note": f"stage '{cfg.stage.name}' builds no modules"}
                ), None
            modules = task.build_for_dry_run()
    report = parameter_report(modules)
    plan = memory_plan(cfg, report, modules)
    return StageResult(metrics={"dry_run": True, "parameters": report, "memory_plan": plan}), None


# ----------------------------------------------------------------------------------------------- entry
def _ensure_data_file(cfg: DictConfig) -> None:
    """Write the simulated file if asked to (``data.auto_create``), so that its identity can be taken."""
    if not Path(data_file(cfg)).exists() and OmegaConf.select(cfg, "data.auto_create"):
        build_datamodule(
            cfg
        )  # task stages too: a fingerprint taken before the file existed would not match again


def run(cfg: DictConfig) -> dict:
    """Run the stage that ``cfg`` names and return its summary (also written to ``<run_dir>/summary.json``)."""
    t0 = time.time()
    setup_environment(cfg)
    if OmegaConf.select(cfg, "stage.name") is None:
        raise StageError("no stage chosen: pass stage=<name> (e.g. stage=sr); see `make help` or README.")
    check_top_level(cfg)
    mode = str(cfg.stage.mode)
    runners = {"fit": run_fit, "predict": run_predict, "task": run_task}
    if mode not in runners:
        raise StageError(
            f"conf/stage/{cfg.stage.name}.yaml: stage.mode expected fit, predict or task, found {mode!r}."
        )
    run_dir = Path(cfg.paths.run_dir)
    with locked_run_dir(run_dir):
        return _run_locked(cfg, run_dir, mode, runners, t0)


def _run_locked(cfg: DictConfig, run_dir: Path, mode: str, runners: dict, t0: float) -> dict:
    rank, _ = env_rank()
    if rank == 0:
        remove_orphans(cfg, run_dir)
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    files = RunFiles(cfg, run_dir, rank)
    try:
        return _run_stage(cfg, run_dir, mode, runners, t0, rank, files.begin)
    finally:
        files.close()


def _run_stage(cfg: DictConfig, run_dir: Path, mode: str, runners: dict, t0: float, rank: int, begin) -> dict:
    prov = None
    if cfg.get("dry_run"):
        begin()
        result, trainer = run_dry(cfg, run_dir)
    else:
        _ensure_data_file(cfg)
        prov = stage_provenance(cfg)
        result, trainer = runners[mode](cfg, run_dir, prov, begin)
    if trainer is not None:
        finish_loggers(trainer)
    is_zero = trainer.is_global_zero if trainer is not None else rank == 0
    summary = stage_summary(cfg, prov, result, t0)
    if is_zero:
        write_json(run_dir / "summary.json", summary)
        log.info("summary: %s", run_dir / "summary.json")
    return summary
