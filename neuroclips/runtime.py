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
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from neuroclips.callbacks.checkpointing import AtomicCheckpointIO, CheckpointMetadata, EpochToData
from neuroclips.callbacks.prediction_writer import PredictionWriter
from neuroclips.data import schema
from neuroclips.errors import StageError
from neuroclips.outputs import OutputStore
from neuroclips.utils.atomic import write_json

log = logging.getLogger("neuroclips")

@dataclass
class StageResult:
    metrics: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    checkpoint: str | None = None


@dataclass
class StageContext:
    cfg: DictConfig
    run_dir: Path
    outputs_dir: Path
    data_file: str
    subj: int
    scale: str
    device: torch.device
    rank: int = 0
    world_size: int = 1
    progress: bool = True

    @property
    def is_global_zero(self) -> bool:
        return self.rank == 0

    def datamodule(self, **overrides):
        """A DataModule over the configured file (tasks that iterate clips use this; the seam stays here)."""
        return build_datamodule(self.cfg, **overrides)


def setup_environment(cfg: DictConfig) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
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
    kw.setdefault("subj", int(cfg.subj.id))
    kw.setdefault("voxels", int(cfg.subj.voxels))
    kw.setdefault("seed", int(cfg.seed))
    kw.setdefault("scale_name", str(cfg.scale.name))
    kw.setdefault("_target_", "neuroclips.data.datamodule.CC2017DataModule")
    return kw


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
def build_trainer(cfg: DictConfig, run_dir: Path, callbacks: list, enable_checkpointing: bool = True) -> pl.Trainer:
    logger = False
    if cfg.get("logger") and OmegaConf.select(cfg, "logger._target_"):
        logger = instantiate(cfg.logger)
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    trainer_cfg.pop("_target_", None)
    strategy = trainer_cfg.pop("strategy", "auto")
    if isinstance(strategy, dict):
        strategy = instantiate(strategy)
    return pl.Trainer(
        **trainer_cfg,
        strategy=strategy,
        default_root_dir=str(run_dir),
        callbacks=callbacks,
        logger=logger,
        enable_checkpointing=enable_checkpointing,
        plugins=[AtomicCheckpointIO()],
        use_distributed_sampler=False,  # the DataModule's EpochSampler shards over ranks itself
    )


def _meta(cfg: DictConfig) -> dict:
    return {
        "stage": str(cfg.stage.name),
        "subj": int(cfg.subj.id),
        "scale": str(cfg.scale.name),
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


def _checkpoint_next_epoch(path: str) -> int:
    """The epoch a fit resumed from ``path`` starts with (processed epochs in the fit loop progress)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    try:
        return int(ckpt["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])
    except (KeyError, TypeError):
        return int(ckpt.get("epoch", -1)) + 1


def _resume_path(cfg: DictConfig, run_dir: Path) -> str | None:
    last = run_dir / "checkpoints" / "last.ckpt"
    mode = str(cfg.get("resume", "auto"))
    if mode == "never":
        return None
    if mode == "must" and not last.exists():
        raise StageError(f"{last}: resume=must but no last checkpoint exists in the run directory.")
    return str(last) if last.exists() else None


def run_fit(cfg: DictConfig, run_dir: Path) -> tuple[StageResult, pl.Trainer]:
    dm = build_datamodule(cfg)
    system = instantiate(cfg.system, _convert_="partial")
    monitor = OmegaConf.select(cfg, "stage.monitor")
    from pytorch_lightning.callbacks import ModelCheckpoint

    ckpt_cb = ModelCheckpoint(
        dirpath=str(run_dir / "checkpoints"), filename="best", monitor=monitor,
        mode=str(OmegaConf.select(cfg, "stage.monitor_mode", default="min")),
        save_last=True, save_top_k=1 if monitor else 0, auto_insert_metric_name=False, enable_version_counter=False,
    )
    epoch_cb = EpochToData(int(cfg.seed))
    callbacks = [ckpt_cb, CheckpointMetadata(_meta(cfg)), epoch_cb] + _extra_callbacks(cfg)
    trainer = build_trainer(cfg, run_dir, callbacks)
    resume = _resume_path(cfg, run_dir)
    start_epoch = 0
    if resume:
        start_epoch = _checkpoint_next_epoch(resume)
        log.info("resuming from %s at epoch %d", resume, start_epoch)
    dm.setup("fit")
    dm.set_epoch(start_epoch)
    epoch_cb.start(start_epoch, env_rank()[0])  # reseed for the first epoch now: Lightning creates its iterator before any hook
    trainer.fit(system, datamodule=dm, ckpt_path=resume)
    best = ckpt_cb.best_model_path or ""
    last = run_dir / "checkpoints" / "last.ckpt"
    if not best and trainer.is_global_zero and last.exists():
        import shutil

        best = str(run_dir / "checkpoints" / "best.ckpt")
        shutil.copyfile(last, best)
    metrics = _scalar_metrics(trainer.callback_metrics)
    if monitor and ckpt_cb.best_model_score is not None:
        metrics[f"best/{monitor}"] = float(ckpt_cb.best_model_score)
    metrics["epochs"] = int(trainer.current_epoch)
    metrics["global_step"] = int(trainer.global_step)
    return StageResult(metrics=metrics, checkpoint=best or None, outputs={"run_dir": str(run_dir)}), trainer


def _extra_callbacks(cfg: DictConfig) -> list:
    cbs = OmegaConf.select(cfg, "stage.callbacks") or {}
    return [instantiate(c) for c in (cbs.values() if isinstance(cbs, DictConfig) else cbs)]


def run_predict(cfg: DictConfig, run_dir: Path) -> tuple[StageResult, pl.Trainer | None]:
    store = OutputStore(cfg.paths.outputs_dir)
    kinds = list(OmegaConf.select(cfg, "stage.outputs") or [])
    dm = build_datamodule(cfg)
    all_rows = dm.split_rows()["predict"]
    import h5py

    with h5py.File(dm.file, "r") as f:
        split = "test" if dm.predict_split == "test" else "train"
        clip_index = f[schema.stimulus_path(split, "clip_index")][:]
    clips = [int(clip_index[r]) for r in all_rows]
    todo = store.missing(kinds, clips)
    result = StageResult(outputs={k: str(store.root / k) for k in kinds})
    result.metrics = {"clips_total": len(clips), "clips_done_before": len(clips) - len(todo)}
    if not todo:
        log.info("all %d clips already have %s; nothing to do", len(clips), kinds)
        result.metrics["clips_written"] = 0
        return result, None
    dm = build_datamodule(cfg, check=False, predict_clips=todo)
    system = instantiate(cfg.system, _convert_="partial")
    writer = PredictionWriter(store, kinds, stage=str(cfg.stage.name))
    trainer = build_trainer(cfg, run_dir, [writer] + _extra_callbacks(cfg), enable_checkpointing=False)
    trainer.predict(system, datamodule=dm, return_predictions=False)
    result.metrics["clips_written"] = len(todo)
    return result, trainer


def run_task(cfg: DictConfig, run_dir: Path) -> tuple[StageResult, None]:
    task = instantiate(cfg.task, _convert_="partial")
    rank, world = env_rank()
    device = torch.device("cuda" if (torch.cuda.is_available() and OmegaConf.select(cfg, "trainer.accelerator") == "gpu") else "cpu")
    ctx = StageContext(
        cfg=cfg, run_dir=run_dir, outputs_dir=Path(cfg.paths.outputs_dir), data_file=data_file(cfg),
        subj=int(cfg.subj.id), scale=str(cfg.scale.name), device=device, rank=rank, world_size=world,
    )
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
                return StageResult(metrics={"dry_run": True, "note": f"stage '{cfg.stage.name}' builds no modules"}), None
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
def run(cfg: DictConfig) -> dict:
    """Run the stage that ``cfg`` names and return its summary (also written to ``<run_dir>/summary.json``)."""
    t0 = time.time()
    setup_environment(cfg)
    if OmegaConf.select(cfg, "stage.name") is None:
        raise StageError("no stage chosen: pass stage=<name> (e.g. stage=sr); see `make help` or README.")
    run_dir = Path(cfg.paths.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    rank, _ = env_rank()
    if rank == 0:
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    mode = str(cfg.stage.mode)
    runners = {"fit": run_fit, "predict": run_predict, "task": run_task}
    if cfg.get("dry_run"):
        result, trainer = run_dry(cfg, run_dir)
    elif mode in runners:
        result, trainer = runners[mode](cfg, run_dir)
    else:
        raise StageError(f"conf/stage/{cfg.stage.name}.yaml: stage.mode expected fit, predict or task, found {mode!r}.")
    if trainer is not None:
        _finish_loggers(trainer)
    is_zero = trainer.is_global_zero if trainer is not None else rank == 0
    summary = {
        "stage": str(cfg.stage.name),
        "subj": int(cfg.subj.id),
        "scale": str(cfg.scale.name),
        "status": "dry_run" if cfg.get("dry_run") else "finished",
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
