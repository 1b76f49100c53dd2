"""A pipeline stage run in the background, beside the stages its config lists in ``stage.beside`` (pipeline.py).

Why: on a small CPU machine the demo's longest stage, `generators` (two 1-thread UNet fits), reads nothing the
next stages write and is read only from `keyframe` on, so it runs while sr, sr_prior, pr and blurry do;
the stages beside it then get one CPU thread (``num_threads=1``, unless given), so that no two multi-threaded
processes share the cores (two 2-thread torch processes on 2 cores spin against each other and run many times
slower; its shorter fit yields to its longest, neuroclips/tasks/standin_jobs.py). Its console output goes to a log
file, not between the foreground stage's lines; the pipeline waits for it
before the first stage not beside it, and at the end. A foreground failure waits for it too, so its fits are kept
for the rerun (they are written atomically and re-used while their settings match).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

LOG_TAIL_LINES = 20


@dataclass
class BackgroundStage:
    stage: str
    beside: frozenset[str]
    log_file: Path
    process: subprocess.Popen
    started: float = field(default_factory=time.time)

    @classmethod
    def start(cls, stage: str, cmd: list[str], beside: list[str], log_dir: Path) -> BackgroundStage:
        log_dir.mkdir(parents=True, exist_ok=True)
        log_file = log_dir / f"{stage}.log"
        with open(log_file, "w") as out:  # the child keeps its own descriptor
            process = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        return cls(stage, frozenset(beside), log_file, process)

    def wait(self) -> tuple[int, float]:
        """(exit code, seconds since it started), once it has ended; a failure prints the end of its log."""
        code = self.process.wait()
        seconds = round(time.time() - self.started, 1)
        if code != 0:
            lines = self.log_file.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            print("\n".join(lines), file=sys.stderr)
        return code, seconds


def beside_of(cfg) -> list[str]:
    """The stages a stage's config lets run while it runs in the background (``stage.beside``; none by default)."""
    from omegaconf import OmegaConf

    return [str(s) for s in (OmegaConf.select(cfg, "stage.beside") or [])]


def given_keys(overrides: list[str]) -> set[str]:
    """The config keys the user's overrides set (``key=value``, ``+key=value``)."""
    return {a.split("=", 1)[0].lstrip("+") for a in overrides}


def thread_override(overrides: list[str]) -> list[str]:
    """``num_threads=1`` for a process that shares the cores with a background stage, unless the user set it."""
    return [] if "num_threads" in given_keys(overrides) else ["num_threads=1"]
