"""Shared fixtures: a small simulated data file, and running stages through the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

SMALL = dict(n_train=120, n_test=20, segment_len=40)


@pytest.fixture(scope="session")
def sim_file(tmp_path_factory) -> Path:
    """A small simulated file (real voxel counts, 120 train / 20 test clips at 64 px). Do not modify it."""
    from neuroclips.data.simulate import config_for, simulate

    path = tmp_path_factory.mktemp("data") / "simulated_small.h5"
    simulate(path, config_for("tiny", **SMALL), progress=False)
    return path


@pytest.fixture()
def sim_copy(sim_file, tmp_path) -> Path:
    """A private copy of the small simulated file, for tests that write into it."""
    import shutil

    dst = tmp_path / "data.h5"
    shutil.copyfile(sim_file, dst)
    return dst


@pytest.fixture(scope="session")
def fitted_toy_runs(sim_file, tmp_path_factory) -> Path:
    """A runs folder with one finished toy_fit run (2 epochs), trained once per session; copy it (copy_runs)."""
    root = tmp_path_factory.mktemp("fitted")
    run_cli(["stage=toy_fit", "logger=none"], root, sim_file)
    return root / "runs"


def copy_runs(runs: Path, tmp_path: Path) -> None:
    """Give a test its own copy of a runs folder (the fingerprints do not depend on where runs live)."""
    import shutil

    shutil.copytree(runs, tmp_path / "runs")


def run_cli(args: list[str], tmp_path: Path, data_file: Path | None = None, module: str = "neuroclips.train",
            timeout: int = 600, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python -m <module> <args>`` from the repo root with runs under ``tmp_path``."""
    full_env = {**os.environ, "NEUROCLIPS_RUNS_DIR": str(tmp_path / "runs"), "NEUROCLIPS_DATA_DIR": str(tmp_path / "data"),
                "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **(env or {})}
    extra = [f"data.file={data_file}"] if data_file else []
    extra.append(f"hydra.searchpath=[file://{REPO}/tests/conf]")
    proc = subprocess.run([sys.executable, "-m", module, *args, *extra], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"command failed ({proc.returncode}): {args}\nSTDOUT:\n{proc.stdout[-4000:]}\nSTDERR:\n{proc.stderr[-6000:]}")
    return proc


def read_summary(tmp_path: Path, stage: str, name: str = "default", subj: int = 1) -> dict:
    import json

    return json.loads((tmp_path / "runs" / name / f"subj{subj}" / stage / "summary.json").read_text())
