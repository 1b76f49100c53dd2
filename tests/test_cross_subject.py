"""Several subjects in one run (subj=all): mixed batches, a 3-subject SR step with different voxel counts, a
multi-subject checkpoint sliced for one subject, adaptation phases, and bad input in one sentence."""

from __future__ import annotations

import functools

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from neuroclips.checkpoints import CheckpointMismatchError, load_into, subject_slice, warm_start_from_run
from neuroclips.data.datamodule import CC2017DataModule
from neuroclips.data.schema import SUBJECT_VOXELS, SchemaError
from neuroclips.data.subject_mix import split_batch, subject_batches
from neuroclips.errors import ConfigError
from neuroclips.models.semantic import RidgeAdapters, SemanticBackbone
from neuroclips.systems.semantic import SemanticReconstructor

SUBJECTS = [1, 2, 3]
VOXELS = [SUBJECT_VOXELS[s] for s in SUBJECTS]  # 13447, 14828, 9114
T, D, H = 4, 8, 16


class PooledKeyframes(nn.Module):
    """Test double of the frozen CLIP image encoder: the keyframe pooled to T x D numbers (a fixed function)."""

    def encode(self, keyframe: torch.Tensor) -> torch.Tensor:
        pooled = nn.functional.adaptive_avg_pool2d(keyframe, (4, 4)).flatten(1)  # (B, 48)
        return pooled[:, : T * D].reshape(len(keyframe), T, D) * 10


def datamodule(sim_file, subjects=SUBJECTS, batch_size=9, **kw) -> CC2017DataModule:
    voxels = [SUBJECT_VOXELS[s] for s in subjects]
    return CC2017DataModule(
        str(sim_file),
        subj=subjects if len(subjects) > 1 else subjects[0],
        voxels=voxels if len(subjects) > 1 else voxels[0],
        batch_size=batch_size,
        val_block=20,
        load_frames=True,
        eval_batch_size=10,
        **kw,
    )


def system(voxels=VOXELS, **kw) -> SemanticReconstructor:
    torch.manual_seed(0)
    return SemanticReconstructor(
        ridge=RidgeAdapters(voxels, H),
        backbone=SemanticBackbone(hidden=H, n_blocks=1, clip_tokens=T, clip_dim=D),
        optimizer=functools.partial(torch.optim.AdamW, lr=1e-3),
        image_encoder=PooledKeyframes(),
        retrieval_k=10,
        mixup_pct=0.5,
        **kw,
    )


def trainer(epochs=1, batches=2) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_train_batches=batches,
        limit_val_batches=1,
    )


def test_mixed_batches_hold_every_subject_with_its_voxels(sim_file):
    dm = datamodule(sim_file, batch_size=10)
    dm.check_file()
    dm.setup("fit")
    batch, _, _ = next(iter(dm.train_dataloader()))
    parts = subject_batches(batch)
    assert [s for s, _ in parts] == SUBJECTS
    assert [p["fmri"].shape for _, p in parts] == [
        (4, 13447),
        (3, 14828),
        (3, 9114),
    ]  # the global batch of 10
    assert len({tuple(p["clip_index"].tolist()) for _, p in parts}) == 3  # each subject shuffles on its own
    assert [len(v) for v in dm.val_dataloader()] == [2, 2, 2]  # one validation loader per subject
    assert split_batch(32, 3, "b") == [11, 11, 10]
    with pytest.raises(ConfigError, match="at least one clip per subject"):
        split_batch(2, 3, "train.sr.batch_size")


def test_one_subject_loader_is_unchanged(sim_file):
    one, listed = datamodule(sim_file, subjects=[1]), datamodule(sim_file, subjects=[1])
    one.setup("fit")
    listed.setup("fit")
    a = next(iter(one.train_dataloader()))
    assert "fmri" in a and a["fmri"].shape == (9, 13447)


def test_three_subject_sr_step_logs_each_subject_and_the_mean(sim_file):
    sr = system()
    before = [lin.weight.clone() for lin in sr.ridge.linears]
    t = trainer()
    t.fit(sr, datamodule=datamodule(sim_file))
    m = t.callback_metrics
    per = [float(m[f"val/subj0{s}/top1_fwd"]) for s in SUBJECTS]
    assert float(m["val/top1_fwd"]) == pytest.approx(sum(per) / 3)
    assert {"val/subj01/loss", "val/subj03/loss_clip", "val/loss"} <= set(m)
    assert all(not torch.equal(b, lin.weight) for b, lin in zip(before, sr.ridge.linears))


def save_multi_subject_checkpoint(path, sr: SemanticReconstructor, stage="sr") -> None:
    torch.save(
        {
            "state_dict": sr.state_dict(),
            "neuroclips": {"stage": stage, "subj": "1_2_3", "subjects": SUBJECTS},
        },
        path,
    )


def test_multi_subject_checkpoint_loads_one_subjects_slice(tmp_path):
    sr = system().eval()
    path = tmp_path / "best.ckpt"
    save_multi_subject_checkpoint(path, sr)
    ridge = load_into(RidgeAdapters(9114, H), str(path), "sr", 3, prefix="ridge.")
    backbone = load_into(
        SemanticBackbone(hidden=H, n_blocks=1, clip_tokens=T, clip_dim=D),
        str(path),
        "sr",
        3,
        prefix="backbone.",
    ).eval()
    voxels = torch.randn(5, 9114)
    assert torch.equal(backbone(ridge(voxels))[1], sr.encode_voxels(voxels, 2)[1])
    assert list(subject_slice(sr.state_dict(), SUBJECTS, 2)).count("ridge.linears.0.weight") == 1
    with pytest.raises(CheckpointMismatchError, match="holding subject 4"):
        load_into(RidgeAdapters(9114, H), str(path), "sr", 4, prefix="ridge.")


def test_adaptation_warm_starts_shared_nets_and_trains_only_the_new_adapter_first(sim_file, tmp_path):
    pre = system(voxels=VOXELS[1:])  # pretrained on subjects 2 + 3
    path = tmp_path / "pre.ckpt"
    torch.save(
        {"state_dict": pre.state_dict(), "neuroclips": {"stage": "sr", "subj": "2_3", "subjects": [2, 3]}},
        path,
    )
    sr = system(voxels=[VOXELS[0]], subjects=1, init_from_run=str(path), adapter_epochs=1)
    assert sr.new_adapters == [0]
    assert torch.equal(sr.backbone.backbone_linear.weight, pre.backbone.backbone_linear.weight)
    shared = sr.backbone.backbone_linear.weight.clone()
    ridge = sr.ridge.linears[0].weight.clone()
    trainer(epochs=1).fit(sr, datamodule=datamodule(sim_file, subjects=[1], train_fraction=0.125))
    assert torch.equal(shared, sr.backbone.backbone_linear.weight)  # phase 'adapter': shared nets frozen
    assert not torch.equal(ridge, sr.ridge.linears[0].weight)
    trainer(epochs=2).fit(sr, datamodule=datamodule(sim_file, subjects=[1], train_fraction=0.125))
    assert not torch.equal(shared, sr.backbone.backbone_linear.weight)  # phase 'all' (epoch 1)
    with pytest.raises(CheckpointMismatchError, match="voxel count"):
        warm_start_from_run(system(voxels=[100]), path, [2], "sr", ("ridge.", "backbone."))
    with pytest.raises(ConfigError, match="init.from_run"):
        system(adapter_epochs=2)


def test_train_fraction_and_segments_restrict_training_clips_only(sim_file):
    full, part = datamodule(sim_file, subjects=[1]), datamodule(sim_file, subjects=[1], train_fraction=0.125)
    rows_full, rows_part = full.split_rows(), part.split_rows()
    assert len(rows_part["train"]) == round(0.125 * len(rows_full["train"]))
    assert (rows_part["train"] == rows_full["train"][: len(rows_part["train"])]).all()
    assert (rows_part["val"] == rows_full["val"]).all() and (rows_part["test"] == rows_full["test"]).all()
    seg = datamodule(sim_file, subjects=[1], train_segments=[1]).split_rows()["train"]
    assert len(seg) and seg.min() >= 40 and seg.max() < 80  # segment 1 of segment_len 40
    with pytest.raises(ConfigError, match="data.train_segments"):
        datamodule(sim_file, subjects=[1], train_segments=[99]).split_rows()


def test_bad_input_is_one_sentence(sim_file, tmp_path):
    from neuroclips.data.simulate import config_for, simulate
    from neuroclips.stage_config import check_adapters
    from tests.conftest import SMALL, run_inprocess

    two = simulate(
        tmp_path / "two.h5",
        config_for("tiny", **{**SMALL, "subjects": (1, 2), "n_train": 60}),
        progress=False,
    )
    with pytest.raises(SchemaError) as missing:
        datamodule(two).check_file()
    assert "subj03" in str(missing.value) and "\n" not in str(missing.value)
    with pytest.raises(ConfigError) as wrong:
        check_adapters(datamodule(sim_file), system(voxels=[13447, 14828, 9000]))
    assert "9114" in str(wrong.value) and "\n" not in str(wrong.value)
    proc = run_inprocess(
        ["stage=toy_fit", "subj=all", "logger=none"], tmp_path, two, check=False
    )  # as the CLI
    assert proc.returncode == 2 and "subj03" in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if "error" in line]) == 1


def test_dry_run_lists_each_subjects_adapter():
    from omegaconf import OmegaConf

    from neuroclips.memory_plan import adapter_report

    report = adapter_report(OmegaConf.create({"subj": {"id": "1_2_3"}}), {"system": system()})
    assert [report[f"subj0{s}"]["voxels"] for s in SUBJECTS] == VOXELS
    assert report["total_parameters"] == sum((v + 1) * H for v in VOXELS)


def test_three_subject_pr_step_and_its_one_subject_slice(tmp_path):
    from functools import partial

    from pytorch_lightning.utilities import CombinedLoader
    from torch.utils.data import DataLoader

    from neuroclips.models.perceptual import PerceptualNet
    from neuroclips.systems.perceptual import PerceptualReconstructor
    from tests.test_pr_systems import modules

    _, vae, teacher = modules()
    kw = dict(
        inception_hidden=8,
        hidden=16,
        n_blocks=1,
        low_level_channels=8,
        low_level_size=2,
        aux_dim=8,
        decoder_channels=(8, 8),
        decoder_norm_groups=4,
    )
    torch.manual_seed(0)
    net = PerceptualNet(voxels=[40, 30, 20], **kw)
    pr = PerceptualReconstructor(
        net=net, vae=vae, teacher=teacher, optimizer=partial(torch.optim.AdamW, lr=1e-3)
    )
    frames = torch.rand(8, 6, 3, 16, 16)
    items = {
        v: [
            {"fmri": torch.randn(v), "frames": frames[i], "targets": {"vae_latents": vae.encode(frames[i])}}
            for i in range(8)
        ]
        for v in (40, 30, 20)
    }
    before = [p.detach().clone() for p in net.inception.parameters()]
    train = CombinedLoader(
        {f"subj0{s}": DataLoader(items[v], batch_size=4) for s, v in zip(SUBJECTS, (40, 30, 20))},
        mode="min_size",
    )
    t = trainer()
    t.fit(
        pr,
        train_dataloaders=train,
        val_dataloaders=[DataLoader(items[v], batch_size=4) for v in (40, 30, 20)],
    )
    m = t.callback_metrics
    assert float(m["val/pixcorr"]) == pytest.approx(
        float(sum(m[f"val/adapter{k}/pixcorr"] for k in range(3)) / 3)
    )
    assert all(not torch.equal(a, b) for a, b in zip(before, net.inception.parameters()))
    path = tmp_path / "pr.ckpt"
    torch.save(
        {"state_dict": pr.state_dict(), "neuroclips": {"stage": "pr", "subj": "1_2_3", "subjects": SUBJECTS}},
        path,
    )
    one = load_into(PerceptualNet(voxels=20, **kw), str(path), "pr", 3, prefix="net.").eval()
    x = torch.randn(4, 20)
    assert torch.equal(one(x, "clip")["latents"], net.eval()(x, "clip", 2)["latents"])
    adapted = PerceptualReconstructor(
        net=PerceptualNet(voxels=20, **kw),
        vae=vae,
        teacher=teacher,
        subjects=3,
        init_from_run=str(path),
        adapter_epochs=1,
        optimizer=partial(torch.optim.AdamW, lr=1e-3),
    )
    assert adapted.new_adapters == [] and torch.equal(
        adapted.net.decoder.conv_in.weight, net.decoder.conv_in.weight
    )
    assert torch.equal(adapted.net.inception.lin0[0].weight, net.inception[2].lin0[0].weight)
    shared, own = adapted.net.decoder.conv_in.weight.clone(), adapted.net.inception.lin0[0].weight.clone()
    trainer().fit(adapted, train_dataloaders=DataLoader(items[20], batch_size=4))
    assert torch.equal(shared, adapted.net.decoder.conv_in.weight)  # phase 'adapter': shared nets frozen
    assert not torch.equal(own, adapted.net.inception.lin0[0].weight)


def test_a_subjects_simulated_data_do_not_depend_on_the_other_subjects(tmp_path):
    import h5py
    import numpy as np

    from neuroclips.data.simulate import config_for, simulate

    small = dict(n_train=20, n_test=10, segment_len=10, image_size=16)
    one = simulate(tmp_path / "one.h5", config_for("tiny", **small, subjects=(1,)), progress=False)
    three = simulate(tmp_path / "three.h5", config_for("tiny", **small), progress=False)
    with h5py.File(one) as a, h5py.File(three) as b:
        assert np.array_equal(a["fmri/subj01/train"][:], b["fmri/subj01/train"][:])
        # shared movie, own brains: the subjects' responses to the same clips differ
        assert not np.allclose(b["fmri/subj01/train"][:, :, :9114], b["fmri/subj03/train"][:])


def test_mindeye2_loader_with_a_multi_subject_container(tmp_path):
    from neuroclips.models.mindeye2 import init_from_mindeye2

    torch.manual_seed(1)
    source = SemanticBackbone(hidden=H, n_blocks=1, clip_tokens=T, clip_dim=D)
    state = {
        f"ridge.linears.{k}.{leaf}": torch.randn(H, v) if leaf == "weight" else torch.randn(H)
        for k, v in enumerate((99, 77, 55))
        for leaf in ("weight", "bias")
    }  # MindEye2's multi-subject ridge
    state.update({"backbone." + k: v for k, v in source.state_dict().items()})
    torch.save({"model_state_dict": state}, tmp_path / "last.pth")
    sr = system()  # our three-subject container: the same ridge.linears.<k> layout
    assert sorted(sr.ridge.state_dict()) == sorted(
        k[len("ridge.") :] for k in state if k.startswith("ridge.")
    )
    init_from_mindeye2(sr.backbone, str(tmp_path / "last.pth"), "backbone.")
    assert torch.equal(sr.backbone.backbone_linear.weight, source.backbone_linear.weight)
