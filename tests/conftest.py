"""Shared fixtures: a small simulated data file, and running stages through the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from neuroclips.utils.environment import apply_environment_defaults

REPO = Path(__file__).resolve().parents[1]
# Test-only override, before the shared defaults (which say offline): tests write no wandb runs; the one test of
# wandb sets WANDB_MODE itself. Under `make test` the Makefile's export comes first and wins, as any exported value.
os.environ.setdefault("WANDB_MODE", "disabled")
apply_environment_defaults()

SMALL = dict(n_train=120, n_test=20, segment_len=40)


@pytest.fixture(scope="session")
def sim_file(tmp_path_factory) -> Path:
    """A small simulated file (real voxel counts, 120 train / 20 test clips at 64 px). Do not modify it."""
    from neuroclips.data.simulate import config_for, simulate

    path = tmp_path_factory.mktemp("data") / "simulated_small.h5"
    simulate(path, config_for("tiny", **SMALL), progress=False)
    return path


TINY_VAE_FIT = {
    "steps": 2,
    "batch_size": 4,
    "lr": 1e-3,
    "kl_weight": 1e-4,
    "crop_size": None,
    "blurred_copies": [4, 8],
}


@pytest.fixture(scope="session")
def generator_vae(sim_file, tmp_path_factory):
    """The generators' shared tiny VAE (tasks/standin_generator_vae.py), fitted for 2 steps on the small file."""
    from neuroclips.data.sampler import validation_rows
    from neuroclips.tasks.standin_generator_vae import GeneratorVaeStandin

    shared = GeneratorVaeStandin(
        out_dir=str(tmp_path_factory.mktemp("generator_vae") / "vae"), size=32, training=TINY_VAE_FIT
    )
    shared.fit_and_save(str(sim_file), validation_rows(120, 0.1, 20, 0), {"frames_sha1": "x"})
    return shared


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
    run_inprocess(["stage=toy_fit", "logger=none"], root, sim_file)
    return root / "runs"


def copy_runs(runs: Path, tmp_path: Path) -> None:
    """Give a test its own copy of a runs folder (the fingerprints do not depend on where runs live)."""
    import shutil

    shutil.copytree(runs, tmp_path / "runs")


def _cli_env(tmp_path: Path, env: dict | None) -> dict:
    return {
        **os.environ,
        "NEUROCLIPS_RUNS_DIR": str(tmp_path / "runs"),
        "NEUROCLIPS_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        **(env or {}),
    }


def _cli_command(args: list[str], data_file: Path | None, module: str) -> list[str]:
    extra = [f"data.file={data_file}"] if data_file else []
    extra.append(f"hydra.searchpath=[file://{REPO}/tests/conf]")
    return [sys.executable, "-m", module, *args, *extra]


def run_cli(
    args: list[str],
    tmp_path: Path,
    data_file: Path | None = None,
    module: str = "neuroclips.train",
    timeout: int = 600,
    env: dict | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """Run ``python -m <module> <args>`` from the repo root with runs under ``tmp_path``."""
    proc = subprocess.run(
        _cli_command(args, data_file, module),
        cwd=REPO,
        env=_cli_env(tmp_path, env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"command failed ({proc.returncode}): {args}\nSTDOUT:\n{proc.stdout[-4000:]}\nSTDERR:\n{proc.stderr[-6000:]}"
        )
    return proc


def start_cli(
    args: list[str],
    tmp_path: Path,
    data_file: Path | None = None,
    module: str = "neuroclips.train",
    **popen: Any,
) -> subprocess.Popen:
    """Start what ``run_cli`` runs, in the background (output discarded unless ``popen`` says otherwise), for
    tests that kill a run or start a second one beside it."""
    popen = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, **popen}
    return subprocess.Popen(
        _cli_command(args, data_file, module), cwd=REPO, env=_cli_env(tmp_path, None), **popen
    )


def wait_while_running(
    proc: subprocess.Popen, done: Callable[[], bool], timeout: float, every: float = 0.1
) -> bool:
    """Poll ``done()`` until it holds (True), the process ends or ``timeout`` seconds pass (False)."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if done():
            return True
        time.sleep(every)
    return False


def run_inprocess(
    args: list[str],
    tmp_path: Path,
    data_file: Path | None = None,
    check: bool = True,
    env: dict | None = None,
) -> subprocess.CompletedProcess:
    """What ``run_cli`` does for ``neuroclips.train``, in this process: the same composition, the same runtime and
    the same one-sentence user-error handling as ``neuroclips.train.main``, without paying ~7 s of imports per run.
    For the tests that check refusals and messages; kills, locks and exit codes of the real CLI stay on ``run_cli``."""
    import contextlib
    import io
    import logging
    import traceback

    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    import neuroclips.utils.resolvers  # noqa: F401
    from neuroclips.errors import run_reporting_user_errors
    from neuroclips.runtime import run
    from neuroclips.utils.cli import quote_numeric_group_overrides

    if any(a.startswith(("trainer=ddp", "trainer=fsdp")) for a in args):
        raise ValueError(
            "run_inprocess: a DDP/FSDP launcher re-runs this process's command line; use run_cli."
        )
    extra = [f"data.file={data_file}"] if data_file else []
    overrides = quote_numeric_group_overrides([*args, *extra, f"hydra.searchpath=[file://{REPO}/tests/conf]"])
    new_env = {
        "NEUROCLIPS_RUNS_DIR": str(tmp_path / "runs"),
        "NEUROCLIPS_DATA_DIR": str(tmp_path / "data"),
        **(env or {}),
    }
    saved = {k: os.environ.get(k) for k in new_env}
    out, err = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(err)
    logger = logging.getLogger("neuroclips")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    code = 0
    try:
        os.environ.update(new_env)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
                    cfg = compose("config", overrides=overrides, return_hydra_config=True)
                    HydraConfig.instance().set_config(cfg)
                    with open_dict(cfg):
                        del cfg["hydra"]
                    run_reporting_user_errors(run, cfg)  # what neuroclips.train.main runs
            except SystemExit as e:  # a user error: its one sentence is on stderr
                code = e.code if isinstance(e.code, int) else 1
            except Exception:  # noqa: BLE001 - any other error: its traceback, as the CLI would print it
                traceback.print_exc()
                code = 1
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    proc = subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(
            f"run failed ({code}): {args}\nSTDOUT:\n{proc.stdout[-4000:]}\nSTDERR:\n{proc.stderr[-6000:]}"
        )
    return proc


def read_summary(tmp_path: Path, stage: str, name: str = "default", subj: int = 1) -> dict:
    import json

    return json.loads((tmp_path / "runs" / name / f"subj{subj}" / stage / "summary.json").read_text())
