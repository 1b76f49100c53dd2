"""The process a stage runs in: threads, deterministic algorithms and TF32 set from the config (in the seam, never
at import), this process's rank in its launch, and the experiment-tracker runs closed when its stage ends."""

from __future__ import annotations

import os

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from neuroclips.utils.environment import apply_environment_defaults


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


def finish_loggers(trainer: pl.Trainer) -> None:
    """Close experiment-tracker runs, so the next job of a sweep in this process starts its own run."""
    from pytorch_lightning.loggers import WandbLogger

    if any(isinstance(lg, WandbLogger) for lg in trainer.loggers):
        import wandb

        if wandb.run is not None:
            wandb.finish()
