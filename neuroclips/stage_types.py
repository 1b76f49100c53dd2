"""What the runtime hands a task stage (`StageContext`) and what every stage returns (`StageResult`).

A leaf module (it imports nothing of ours but the provenance record's type), so tasks and the data layer can import
it at the top without pulling in the runtime."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig

if TYPE_CHECKING:
    from neuroclips.provenance import Provenance


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
    provenance: Provenance | None = None
    overwrite_outputs: bool = False  # outputs=overwrite: recompute what was made under another fingerprint
    target_fingerprints: dict[str, str] = field(default_factory=dict)  # stage=targets: per cached target
    # builds the stage's DataModule through the runtime's one instantiate seam (validates the data file, and writes
    # the simulated one when data.auto_create asks for it); None where a caller builds contexts by hand
    build_datamodule: Callable[..., Any] | None = None

    @property
    def is_global_zero(self) -> bool:
        return self.rank == 0

    def datamodule(self, **overrides):
        """A DataModule over the configured file (tasks that iterate clips use this; the seam stays in the runtime)."""
        if self.build_datamodule is None:
            raise RuntimeError("this StageContext was built without the runtime's build_datamodule")
        return self.build_datamodule(**overrides)
