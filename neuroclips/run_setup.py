"""What every run does around its stage, before and after: top-level checks, the run directory, the files a run
writes once its checks passed (``config.yaml``, ``train.log``), and the removal of interrupted writes."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from neuroclips.errors import ConfigError, StageError
from neuroclips.resume import RESUME_MODES
from neuroclips.utils.atomic import format_bytes, remove_orphan_tmp
from neuroclips.utils.run_lock import acquire_run_lock

log = logging.getLogger("neuroclips")


def check_top_level(cfg: DictConfig) -> None:
    """Top-level keys that are read as they are: one sentence each when they are not what they must be."""
    mode = str(cfg.get("resume", "auto"))
    if mode not in RESUME_MODES:
        raise ConfigError(
            f"conf/config.yaml: resume expected one of {', '.join(RESUME_MODES)}, found {mode!r}."
        )
    outputs = str(cfg.get("outputs", "keep"))
    if outputs not in ("keep", "overwrite"):
        raise ConfigError(f"conf/config.yaml: outputs expected keep or overwrite, found {outputs!r}.")
    seed = cfg.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"conf/config.yaml: seed expected an integer, found {seed!r}.")


def make_run_dir(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise StageError(
            f"{run_dir}: the run directory cannot be written (config field 'paths.runs_dir', "
            f"env NEUROCLIPS_RUNS_DIR): {e.strerror or e}."
        ) from e


class RunFiles:
    """What a run writes once its checks passed: the resolved config and its log file. Never before: a refused
    run leaves the old run's ``config.yaml`` and ``train.log`` as they were. ``close`` detaches the log, so the
    next job of a sweep in this process logs into its own file only."""

    def __init__(self, cfg: DictConfig, run_dir: Path, rank: int):
        self.cfg, self.run_dir, self.rank = cfg, run_dir, rank
        self._handler: logging.Handler | None = None

    def begin(self) -> None:
        if self.rank != 0 or self._handler is not None:
            return
        (self.run_dir / "config.yaml").write_text(OmegaConf.to_yaml(self.cfg, resolve=True))
        self._handler = logging.FileHandler(self.run_dir / "train.log")
        self._handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
        logging.getLogger().addHandler(self._handler)

    def close(self) -> None:
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
            self._handler.close()
            self._handler = None


@contextlib.contextmanager
def locked_run_dir(run_dir: Path) -> Iterator[Path]:
    """The run dir for the span of a run: created with its parents, locked (one run per run dir; DDP ranks and stage
    subprocesses share their launch's lock), and, when the run is refused or fails, the folders it created removed
    again (no empty folders left behind)."""
    created = [d for d in (run_dir, *run_dir.parents) if not d.exists()]
    make_run_dir(run_dir)
    lock = acquire_run_lock(run_dir)
    failed = True
    try:
        yield run_dir
        failed = False
    finally:
        lock.release()
        for d in created if failed else []:
            with contextlib.suppress(OSError):
                d.rmdir()


def remove_orphans(cfg: DictConfig, run_dir: Path) -> None:
    """Temporary files of atomic writes that a kill interrupted: in the run dir, and in the outputs-store folders
    only this stage writes (another stage may be writing its own folders of the store right now)."""
    roots = [run_dir]
    outputs = Path(cfg.paths.outputs_dir)
    for kind in OmegaConf.select(cfg, "stage.outputs") or []:
        roots += [outputs / str(kind), outputs / "media" / str(kind)]
    count = size = 0
    for root in roots:
        if root.is_dir():
            n, b = remove_orphan_tmp(root)
            count, size = count + n, size + b
    if count:
        log.info("removed %d temporary files of interrupted writes (%s)", count, format_bytes(size))
