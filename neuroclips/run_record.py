"""What a run records and reports: the metadata its checkpoints carry, its ``StageResult`` (a fit's, or a finished
run's read back from its summary) and the ``summary.json`` document every stage writes."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from neuroclips.provenance import Provenance
from neuroclips.resume import last_checkpoint
from neuroclips.stage_config import config_subjects, subj_value
from neuroclips.stage_types import StageResult


def checkpoint_metadata(cfg: DictConfig, prov: Provenance) -> dict:
    return {
        "stage": str(cfg.stage.name),
        "subj": subj_value(cfg),
        "subjects": config_subjects(cfg),  # adapter order of the ridge (and every per-subject module)
        "scale": str(cfg.scale.name),
        "fingerprint": prov.fingerprint,
        "provenance": {"config": prov.config, "inputs": prov.inputs},
        "config": OmegaConf.to_container(cfg, resolve=True),
    }


def scalar_metrics(metrics: dict) -> dict[str, float]:
    out = {}
    for k, v in metrics.items():
        try:
            out[k] = float(v.item() if isinstance(v, torch.Tensor) else v)
        except (TypeError, ValueError, RuntimeError):
            continue
    return out


def previous_result(previous: dict) -> StageResult:
    """The result of a finished run with the same fingerprint, from its ``summary.json`` (not trained again)."""
    return StageResult(
        metrics=dict(previous.get("metrics") or {}),
        checkpoint=previous.get("checkpoint"),
        outputs=dict(previous.get("outputs") or {}),
    )


def fit_result(trainer: pl.Trainer, best_cb, monitor: str | None, run_dir: Path) -> StageResult:
    """A fit's result: its best checkpoint (``last.ckpt`` copied to ``best.ckpt`` when nothing chose one) and its
    last logged metrics, the monitor's best value, epochs and global step."""
    best = (best_cb.best_model_path if best_cb is not None else "") or ""
    last = last_checkpoint(run_dir)
    if not best and trainer.is_global_zero and last.exists():
        best = str(run_dir / "checkpoints" / "best.ckpt")
        shutil.copyfile(last, best)
    metrics = scalar_metrics(trainer.callback_metrics)
    if monitor and best_cb is not None and best_cb.best_model_score is not None:
        metrics[f"best/{monitor}"] = float(best_cb.best_model_score)
    metrics["epochs"] = int(trainer.current_epoch)
    metrics["global_step"] = int(trainer.global_step)
    return StageResult(metrics=metrics, checkpoint=best or None, outputs={"run_dir": str(run_dir)})


def stage_summary(cfg: DictConfig, prov: Provenance | None, result: StageResult, t0: float) -> dict:
    """The document a stage writes to ``<run_dir>/summary.json`` (rank 0) and returns."""
    return {
        "stage": str(cfg.stage.name),
        "subj": subj_value(cfg),
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


def missing_products(summary: dict, run_root: Path | None = None) -> list[str]:
    """What a finished stage's summary names as its products (its checkpoint, its outputs) that no longer exists:
    a stage whose files were deleted is not done, whatever its fingerprint. A path under the run root the summary
    was written in is looked for under ``run_root`` (the run folder may have been moved since)."""
    written_in = str(((summary.get("config") or {}).get("paths") or {}).get("run_root") or "").rstrip("/")

    def here(path: str) -> Path:
        if run_root is not None and written_in and path.startswith(written_in + "/"):
            return Path(run_root) / path[len(written_in) + 1 :]
        return Path(path)

    paths = [summary.get("checkpoint"), *(summary.get("outputs") or {}).values()]
    return [p for p in paths if isinstance(p, str) and p and not here(p).exists()]
