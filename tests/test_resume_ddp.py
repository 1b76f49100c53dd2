"""Slow runtime tests: SIGKILL mid-epoch then resume equals an unbroken run; DDP (2 CPU ranks) equals 1 process."""

from __future__ import annotations

import signal
import time

import pytest
import torch

from tests.conftest import read_summary, run_cli, start_cli, wait_while_running

pytestmark = pytest.mark.slow


def _weights(path):
    sd = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return {k: v for k, v in sd.items()}


def test_kill_and_resume_equals_unbroken_run(sim_file, tmp_path):
    common = [
        "stage=toy_fit",
        "deterministic=true",
        "stage.max_epochs=4",
        "logger=none",
        "data.num_workers=1",
        "+stage.callbacks.slow={_target_: tests.toy.system.SlowDown, seconds: 0.15}",
    ]
    a = tmp_path / "a"
    run_cli(common, a, sim_file)
    ref = _weights(a / "runs/default/subj1/toy_fit/checkpoints/last.ckpt")

    b = tmp_path / "b"
    proc = start_cli(common, b, sim_file)
    last = b / "runs/default/subj1/toy_fit/checkpoints/last.ckpt"

    def first_epoch_saved() -> bool:
        return last.exists() and torch.load(last, map_location="cpu", weights_only=True)["epoch"] >= 1

    assert wait_while_running(proc, first_epoch_saved, timeout=300), (
        "the run ended before its first epoch's save"
    )
    time.sleep(0.6)  # well inside epoch 2 (7 batches x 0.15 s)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for ckpt in last.parent.glob("*.ckpt"):  # a kill may leave a temporary file, never a truncated checkpoint
        torch.load(ckpt, map_location="cpu", weights_only=True)
    assert not (b / "runs/default/subj1/toy_fit/summary.json").exists()
    run_cli([*common, "resume=auto"], b, sim_file)
    got = _weights(last)
    assert read_summary(b, "toy_fit")["metrics"]["epochs"] == 4
    for k in ref:
        assert torch.equal(ref[k], got[k]), k


def test_ddp_two_cpu_ranks_equal_one_process(sim_file, tmp_path):
    common = ["stage=toy_fit", "stage.max_epochs=2", "logger=none", "+datamodule.shuffle_train=false"]
    one = tmp_path / "one"
    run_cli([*common, "datamodule.batch_size=16"], one, sim_file)
    two = tmp_path / "two"
    run_cli(
        [*common, "datamodule.batch_size=16", "trainer=ddp_cpu"], two, sim_file
    )  # global batch: 8 per process
    w1 = _weights(one / "runs/default/subj1/toy_fit/checkpoints/last.ckpt")
    w2 = _weights(two / "runs/default/subj1/toy_fit/checkpoints/last.ckpt")
    for k in w1:
        assert torch.allclose(w1[k], w2[k], atol=1e-5, rtol=1e-4), (k, (w1[k] - w2[k]).abs().max())
    s = read_summary(two, "toy_fit")  # rank 0 wrote one summary into the shared run directory
    assert s["stage"] == "toy_fit" and not list(
        (two / "runs/default/subj1/toy_fit").glob("*process_1*summary*")
    )


def test_ddp_predict_shards_clips_and_matches_one_process(sim_file, tmp_path):
    run_cli(["stage=toy_predict", "logger=none"], tmp_path / "one", sim_file)
    run_cli(["stage=toy_predict", "logger=none", "trainer=ddp_cpu"], tmp_path / "two", sim_file)
    import numpy as np

    d1 = tmp_path / "one/runs/default/subj1/outputs/keyframe"
    d2 = tmp_path / "two/runs/default/subj1/outputs/keyframe"
    names = sorted(p.name for p in d1.glob("*.npy"))
    assert len(names) == 20 and names == sorted(p.name for p in d2.glob("*.npy"))
    for n in names:
        assert np.array_equal(np.load(d1 / n), np.load(d2 / n))


def test_multirun_sweep_with_offline_wandb(sim_file, tmp_path):
    """`-m subj=1,2 logger=wandb`: no network, every job gets (and finishes) its own offline run."""
    env = {
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(tmp_path / "wandb"),
        "WANDB_CACHE_DIR": str(tmp_path / "wandb_cache"),
    }
    run_cli(
        ["-m", "stage=toy_fit", "subj=1,2", "logger=wandb", "stage.max_epochs=1"], tmp_path, sim_file, env=env
    )
    for subj in (1, 2):
        assert read_summary(tmp_path, "toy_fit", subj=subj)["subj"] == subj
        runs = list((tmp_path / f"runs/default/subj{subj}/toy_fit/wandb").glob("offline-run-*"))
        assert len(runs) == 1, subj
        assert list(runs[0].glob("*.wandb"))
