"""trainer=ddp_cpu (2 gloo processes) against one process, for the real stages sr and pr.

Both runs use the same `batch_size`: it is the global batch of one optimizer step, which the DataModule divides over
the processes, so 2 processes with global batch B train the 1-process experiment with batch B.
Stated tolerance: final weights agree to atol 1e-5 / rtol 1e-3 when the run has no per-process randomness
(dropout 0, MixCo off, PR teacher augmentation neutral) and every batch-level term sees the global batch, as by
default (SR: system.gather_negatives=true; PR: system.gather_contrastive=true gathers the soft contrastive term,
which stays on here, weighted 1.0 instead of 0.1 so that a per-process term would show: with
gather_contrastive=false the weights differ beyond the tolerance). The PR's `batch` temporal window cannot cross
processes, so the PR runs use temporal_window=clip; its default contiguous sharding is kept (each rank gets a
consecutive piece of each global batch).
The comparison uses SGD: AdamW turns the last-bit differences of a different summation order into lr-sized steps
for parameters whose gradients are near zero (sign-like updates), which says nothing about DDP correctness, while
with SGD a wrong gradient reduction (e.g. a factor of 2) would show at the size of the update itself. The predict
stages are compared in tests/test_resume_ddp.py (toy) and tests/test_gen_stages.py (video: equal within one
uint8 level).
"""

from __future__ import annotations

import pytest
import torch

from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def _weights(tmp_path, name, stage):
    sd = torch.load(
        tmp_path / f"runs/{name}/subj1/{stage}/checkpoints/last.ckpt", map_location="cpu", weights_only=True
    )
    return sd["state_dict"]


def _assert_close(a, b, atol=1e-5, rtol=1e-3):
    assert a.keys() == b.keys()
    for k in a:
        if a[k].is_floating_point():
            assert torch.allclose(a[k].float(), b[k].float(), atol=atol, rtol=rtol), (
                k,
                (a[k] - b[k]).abs().max().item(),
            )


SGD = ["system.optimizer._target_=torch.optim.SGD"]
# the teacher's augmented view draws per-process random numbers; with every probability 0 and the full crop it is
# the same deterministic view in both runs, and the soft contrastive term is still computed (and gathered)
NEUTRAL_AUGMENTATION = (
    "++system.teacher_augmentation={_target_:neuroclips.models.convnext_teacher.TeacherAugmentation,"
    "jitter_p:0,grayscale_p:0,solarize_p:0,crop_area:1.0}"
)


# an SR run with no per-process randomness (no dropout, no MixCo), SGD, global batch 24 (12 clips per process)
SR_WITHOUT_PROCESS_RANDOMNESS = [
    "logger=none",
    "scale.sr.dropout=0",
    "train.sr.mixup_pct=0",
    "train.sr.batch_size=24",
    "trainer.enable_progress_bar=false",
    "train.sr.lr=0.05",
    *SGD,
]


def test_sr_ddp_equals_one_process(sim_copy, tmp_path):
    run_cli(["stage=targets", "logger=none", "task.encoders.vae_latents=null"], tmp_path, sim_copy)
    common = ["stage=sr", "train.sr.epochs=2", *SR_WITHOUT_PROCESS_RANDOMNESS]
    run_cli([*common, "name=one"], tmp_path, sim_copy)
    run_cli(
        [*common, "trainer=ddp_cpu", "name=two"], tmp_path, sim_copy
    )  # 12 clips per process, negatives gathered
    _assert_close(_weights(tmp_path, "one", "sr"), _weights(tmp_path, "two", "sr"))


def test_pr_ddp_equals_one_process(sim_copy, tmp_path):
    run_cli(["stage=standins", "logger=none", "train.standins.vae.steps=20"], tmp_path, sim_copy)
    run_cli(
        ["stage=targets", "logger=none", "task.encoders.clip_tokens=null", "task.encoders.caption_emb=null"],
        tmp_path,
        sim_copy,
    )
    common = [
        "stage=pr",
        "logger=none",
        "train.pr.max_epochs=1",
        "++system.net.dropout=0",
        "++system.net.low_level_dropout=0",
        NEUTRAL_AUGMENTATION,
        "system.cont_weight=1.0",
        "system.temporal_window=clip",
        "train.pr.batch_size=8",
        "trainer.enable_progress_bar=false",
        "train.pr.max_lr=0.05",
        *SGD,
    ]
    run_cli([*common, "name=one"], tmp_path, sim_copy)
    run_cli([*common, "trainer=ddp_cpu", "name=two"], tmp_path, sim_copy)  # 4 consecutive clips per process
    _assert_close(_weights(tmp_path, "one", "pr"), _weights(tmp_path, "two", "pr"))
