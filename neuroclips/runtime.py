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

import contextlib
import logging
import os
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
from neuroclips.provenance import Provenance
from neuroclips.resume import clips_to_do, last_checkpoint, resume_point
from neuroclips.run_setup import RunFiles, check_top_level, make_run_dir, remove_orphans
from neuroclips.stage_fingerprint import provenance_of_stage, target_encoder_fingerprints
from neuroclips.stage_types import StageContext, StageResult  # noqa: F401  (re-exported)
from neuroclips.subjects import as_ids
from neuroclips.utils.atomic import write_json
from neuroclips.utils.environment import apply_environment_defaults
from neuroclips.utils.run_lock import acquire_run_lock

log = logging.getLogger("neuroclips")


def setup_environment(cfg: DictConfig) -> None:
    apply_environment_defaults()
    threads = cfg.get("num_threads")
    devices = OmegaConf.select(cfg, "trainer.devices", default=1)
    if threads is None and OmegaConf.select(cfg, "trainer.accelerator") == "cpu" and devices not in (1, None):
        threads = 1  # 2-core CPU boxes: one thread per DDP rank
    if threads:
        torch.set_num_threads(int(threads))
    if cfg.get("deterministic"):
        torch.use_deterministic_algorithms(True, warn_only=True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def env_rank() -> tuple[int, int]:
    rank = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", 0)))
    world = int(os.environ.get("WORLD_SIZE", 1))
    return rank, world


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


def _subj_value(cfg: DictConfig) -> int | str:
    ids = config_subjects(cfg)
    return ids[0] if len(ids) == 1 else str(cfg.subj.id)


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


def data_file(cfg: DictConfig) -> str:
    return str(OmegaConf.select(cfg, "data.file"))


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


def _checkpoint_metadata(cfg: DictConfig, prov: Provenance) -> dict:
    return {
        "stage": str(cfg.stage.name),
        "subj": _subj_value(cfg),
        "subjects": config_subjects(cfg),  # adapter order of the ridge (and every per-subject module)
        "scale": str(cfg.scale.name),
        "fingerprint": prov.fingerprint,
        "provenance": {"config": prov.config, "inputs": prov.inputs},
        "config": OmegaConf.to_container(cfg, resolve=True),
    }


def _scalar_metrics(metrics: dict) -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        try:
            out[k] = float(v.item() if isinstance(v, torch.Tensor) else v)
        except (TypeError, ValueError, RuntimeError):
            continue
    return out


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
def _check_every_n_train_steps(cfg: DictConfig) -> None:
    """``checkpoint.every_n_train_steps`` (read by ``callbacks.last_steps``): a positive integer or null."""
    steps = OmegaConf.select(cfg, "checkpoint.every_n_train_steps")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ConfigError(
            f"conf/config.yaml: checkpoint.every_n_train_steps expected a positive integer or null, "
            f"found {steps!r}."
        )


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
        previous = point.finished
        result = StageResult(
            metrics=dict(previous.get("metrics") or {}),
            checkpoint=previous.get("checkpoint"),
            outputs=dict(previous.get("outputs") or {}),
        )
        return result, None
    resume, start_epoch, done_batches = point.ckpt_path, point.epoch, point.done_batches
    _check_every_n_train_steps(cfg)
    standard = build_fit_callbacks(cfg, FitRun(str(run_dir / "checkpoints"), _checkpoint_metadata(cfg, prov)))
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
    best = (best_cb.best_model_path if best_cb is not None else "") or ""
    last = last_checkpoint(run_dir)
    if not best and trainer.is_global_zero and last.exists():
        import shutil

        best = str(run_dir / "checkpoints" / "best.ckpt")
        shutil.copyfile(last, best)
    metrics = _scalar_metrics(trainer.callback_metrics)
    if monitor and best_cb is not None and best_cb.best_model_score is not None:
        metrics[f"best/{monitor}"] = float(best_cb.best_model_score)
    metrics["epochs"] = int(trainer.current_epoch)
    metrics["global_step"] = int(trainer.global_step)
    return StageResult(metrics=metrics, checkpoint=best or None, outputs={"run_dir": str(run_dir)}), trainer


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
    rank, world = env_rank()
    device = torch.device(
        "cuda"
        if (torch.cuda.is_available() and OmegaConf.select(cfg, "trainer.accelerator") == "gpu")
        else "cpu"
    )
    ctx = StageContext(
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
        build_datamodule=partial(build_datamodule, cfg),
    )
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


def _finish_loggers(trainer: pl.Trainer) -> None:
    """Close experiment-tracker runs, so the next job of a sweep in this process starts its own run."""
    from pytorch_lightning.loggers import WandbLogger

    if any(isinstance(lg, WandbLogger) for lg in trainer.loggers):
        import wandb

        if wandb.run is not None:
            wandb.finish()


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
    created = [d for d in (run_dir, *run_dir.parents) if not d.exists()]
    make_run_dir(run_dir)
    lock = acquire_run_lock(
        run_dir
    )  # one run per run dir; DDP ranks and stage subprocesses share their launch's
    failed = True
    try:
        summary = _run_locked(cfg, run_dir, mode, runners, t0)
        failed = False
        return summary
    finally:
        lock.release()
        for d in created if failed else []:  # a refused run leaves no empty folders behind either
            with contextlib.suppress(OSError):
                d.rmdir()


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
        _finish_loggers(trainer)
    is_zero = trainer.is_global_zero if trainer is not None else rank == 0
    summary = {
        "stage": str(cfg.stage.name),
        "subj": _subj_value(cfg),
        "subjects": config_subjects(cfg),
        "scale": str(cfg.scale.name),
        "status": "dry_run" if cfg.get("dry_run") else "finished",
        "fingerprint": prov.fingerprint if prov else None,
        "provenance": prov.as_dict() if prov else None,
        "metrics": result.metrics,
        "checkpoint": result.checkpoint,
        "outputs": result.outputs,
        "config": OmegaConf.to_container(cfg, resolve=True),
        "wall_s": round(time.time() - t0, 3),
    }
    if is_zero:
        write_json(run_dir / "summary.json", summary)
        log.info("summary: %s", run_dir / "summary.json")
    return summary
