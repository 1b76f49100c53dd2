"""Several subjects through the real stages: `stage=pr subj=all` then one subject's blurry videos from its slice,
and `stage=sr subj=all` under DDP (2 gloo processes) against one process."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from tests.conftest import run_cli, run_inprocess
from tests.test_ddp_stages import SR_WITHOUT_PROCESS_RANDOMNESS, _assert_close

pytestmark = pytest.mark.slow


def _state(tmp_path, run_dir: str) -> dict:
    path = tmp_path / f"runs/{run_dir}/checkpoints/last.ckpt"
    return torch.load(path, map_location="cpu", weights_only=True)


def test_pr_subj_all_then_one_subjects_blurry_from_its_slice(sim_copy, tmp_path):
    run_inprocess(["stage=standins", "logger=none", "train.standins.vae.steps=20"], tmp_path, sim_copy)
    run_inprocess(
        ["stage=targets", "logger=none", "task.encoders.clip_tokens=null", "task.encoders.caption_emb=null"],
        tmp_path,
        sim_copy,
    )
    common = ["logger=none", "trainer.enable_progress_bar=false", "system.temporal_window=clip"]
    run_inprocess(["stage=pr", "subj=all", "train.pr.max_epochs=1", *common], tmp_path, sim_copy)
    ckpt = _state(tmp_path, "default/subj1_2_3/pr")
    assert ckpt["neuroclips"]["subjects"] == [1, 2, 3]
    with h5py.File(sim_copy, "r") as f:  # one Inception Extension per subject, sized by its voxel count
        voxels = {s: f[f"fmri/subj0{s}/test"].shape[-1] for s in (1, 2, 3)}
    for k, s in enumerate((1, 2, 3)):
        lin = [
            v for n, v in ckpt["state_dict"].items() if n.startswith(f"net.inception.{k}.") and v.ndim == 2
        ]
        assert voxels[s] in {d for w in lin for d in w.shape}, (s, [tuple(w.shape) for w in lin])

    pr_ckpt = tmp_path / "runs/default/subj1_2_3/pr/checkpoints/last.ckpt"
    run_inprocess(["stage=blurry", "subj=2", f"pr_ckpt={pr_ckpt}", *common[:2]], tmp_path, sim_copy)
    out = sorted((tmp_path / "runs/default/subj2/outputs/blurry").glob("*.npy"))
    with h5py.File(sim_copy, "r") as f:
        n_test = f["fmri/subj02/test"].shape[0]
    assert len(out) == n_test
    first = np.load(out[0])
    assert first.shape[0] == 6 and np.isfinite(first.astype(np.float64)).all()

    # a one-subject stage given the multi-subject group refuses in one sentence
    proc = run_inprocess(
        ["stage=blurry", "subj=all", f"pr_ckpt={pr_ckpt}", "logger=none"], tmp_path, sim_copy, False
    )
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_sr_subj_all_ddp_equals_one_process(sim_copy, tmp_path):
    """Mixed batches under DDP: every process sees its piece of every subject's part of the global batch, and the
    negatives are gathered, so 2 processes train the 1-process experiment (SGD, no per-process randomness)."""
    run_cli(["stage=targets", "logger=none", "task.encoders.vae_latents=null"], tmp_path, sim_copy)
    common = ["stage=sr", "subj=all", "train.sr.epochs=1", *SR_WITHOUT_PROCESS_RANDOMNESS]
    run_cli([*common, "name=one"], tmp_path, sim_copy)
    run_cli([*common, "trainer=ddp_cpu", "name=two"], tmp_path, sim_copy)
    one, two = _state(tmp_path, "one/subj1_2_3/sr"), _state(tmp_path, "two/subj1_2_3/sr")
    assert one["neuroclips"]["subjects"] == two["neuroclips"]["subjects"] == [1, 2, 3]
    _assert_close(one["state_dict"], two["state_dict"])
