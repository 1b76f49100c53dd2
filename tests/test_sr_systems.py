"""The sr / sr_prior systems: a few optimisation steps on synthetic batches (fast), the full tiny chain through the
CLI (targets -> sr -> sr_prior, slow) and DDP with gathered negatives (slow)."""

from __future__ import annotations

import functools

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from neuroclips.metrics.retrieval import retrieval_top1
from neuroclips.models.prior import BrainDiffusionPrior, PriorNetwork
from neuroclips.models.semantic import RidgeAdapters, SemanticBackbone
from neuroclips.models.text_projector import TextProjector
from neuroclips.systems.semantic import SemanticReconstructor, cached_target_names
from neuroclips.systems.semantic_prior import SemanticPriorReconstructor
from tests.conftest import read_summary, run_cli, run_inprocess

V, T, D, TEXT = 40, 4, 8, 6


class LinearBrainData(Dataset):
    """fMRI = fixed random mixing of the flattened target tokens + noise; captions embed the targets linearly."""

    def __init__(self, n: int = 64, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.targets = torch.randn(n, T, D, generator=g)
        mix = torch.randn(T * D, V, generator=torch.Generator().manual_seed(99))
        self.fmri = self.targets.flatten(1) @ mix + 0.1 * torch.randn(n, V, generator=g)
        self.caption = self.targets.mean(1) @ torch.randn(
            D, TEXT, generator=torch.Generator().manual_seed(98)
        )

    def __len__(self):
        return len(self.fmri)

    def __getitem__(self, i):
        return {
            "fmri": self.fmri[i],
            "targets": {"clip_tokens": self.targets[i], "caption_emb": self.caption[i]},
        }


def nets():
    torch.manual_seed(0)
    return dict(
        ridge=RidgeAdapters(V, 16),
        backbone=SemanticBackbone(hidden=16, n_blocks=2, clip_tokens=T, clip_dim=D),
        clipproj=TextProjector(D, TEXT),
        optimizer=functools.partial(torch.optim.AdamW, lr=1e-2),
    )


def fit(system, epochs: int) -> pl.Trainer:
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(
        system,
        DataLoader(LinearBrainData(128), batch_size=16, shuffle=True),
        DataLoader(LinearBrainData(32, seed=1), batch_size=16),
    )
    return trainer


def test_sr_trains_through_mixco_and_softclip_phases():
    system = SemanticReconstructor(**nets(), mixup_pct=0.5, retrieval_k=16)
    before = system.ridge.linears[0].weight.clone()
    clipproj_before = system.clipproj.proj.clone()
    trainer = fit(system, epochs=8)
    m = trainer.callback_metrics
    assert {"val/top1_fwd", "val/top1_bwd", "val/loss", "train/loss_clip", "train/loss_text"} <= set(m)
    assert float(m["train/tau"]) == pytest.approx(0.0075)  # last epoch of the SoftCLIP ramp
    assert float(m["val/top1_fwd"]) > 2 / 16  # chance is 1/16
    assert not torch.equal(before, system.ridge.linears[0].weight)
    assert torch.equal(clipproj_before, system.clipproj.proj)  # frozen text projector
    assert system.frozen_prefixes == ("image_encoder.",)


def test_weight_decay_groups_option():
    system = SemanticReconstructor(**nets(), decay_biases_and_norms=False, retrieval_k=16)
    trainer = fit(system, epochs=1)
    decayed, plain = trainer.optimizers[0].param_groups
    assert decayed["weight_decay"] == 0.01 and plain["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decayed["params"]) and all(p.dim() < 2 for p in plain["params"])
    reference = SemanticReconstructor(**nets(), retrieval_k=16)
    assert len(fit(reference, epochs=1).optimizers[0].param_groups) == 1  # reference: decay on everything


def test_sr_prior_trains_only_the_prior_and_keeps_frozen_nets_in_train_mode():
    n = nets()
    prior = BrainDiffusionPrior(PriorNetwork(dim=D, depth=1, dim_head=4, heads=2, num_tokens=T))
    system = SemanticPriorReconstructor(diffusion_prior=prior, **n, retrieval_k=16, val_sample_steps=5)
    backbone_before = system.backbone.backbone_linear.weight.clone()
    prior_before = prior.net.learned_query.clone()
    trainer = fit(system, epochs=2)
    m = trainer.callback_metrics
    assert {"val/loss_prior", "val/prior_top1_fwd", "train/loss_prior"} <= set(m)
    assert torch.equal(backbone_before, system.backbone.backbone_linear.weight)
    assert not torch.equal(prior_before, prior.net.learned_query)
    system.train()
    assert system.backbone.training  # reference: frozen nets stay in train mode (dropout on)
    eval_mode = SemanticPriorReconstructor(diffusion_prior=prior, **nets(), frozen_mode="eval").train()
    assert not eval_mode.backbone.training and eval_mode.diffusion_prior.training
    with pytest.raises(ValueError, match="frozen_mode"):
        SemanticPriorReconstructor(diffusion_prior=prior, **nets(), frozen_mode="half")


def test_retrieval_chunks_and_target_names():
    x = torch.nn.functional.normalize(torch.randn(10, 5), dim=-1)
    res = retrieval_top1(
        x, x, 4
    )  # the SR's validation retrieval: two full chunks of 4; the last 2 clips left out
    assert (res.forward, res.backward, res.blocks) == (1.0, 1.0, 2)
    assert retrieval_top1(x, x.roll(1, 0), 100).forward < 1.0  # fewer clips than k: one chunk of all
    assert cached_target_names(False) == ["clip_tokens", "caption_emb"]
    assert cached_target_names(True) == ["caption_emb"]


@pytest.mark.slow
def test_tiny_chain_targets_sr_sr_prior_and_online(sim_copy, tmp_path):
    common = ["scale=tiny", "trainer.enable_progress_bar=false"]  # subj 1 is the default
    run_inprocess(
        ["stage=targets", *common, "task.encoders.vae_latents=null"], tmp_path, sim_copy
    )  # SR targets only
    run_inprocess(["stage=sr", *common, "train.sr.epochs=3"], tmp_path, sim_copy)
    sr = read_summary(tmp_path, "sr")
    assert sr["checkpoint"].endswith("best.ckpt") and "val/top1_fwd" in sr["metrics"]
    ckpt = torch.load(sr["checkpoint"], map_location="cpu", weights_only=True)
    assert ckpt["neuroclips"]["stage"] == "sr"
    assert {k.split(".")[0] for k in ckpt["state_dict"]} == {"ridge", "backbone", "clipproj"}
    run_inprocess(
        ["stage=sr_prior", *common, "train.sr_prior.epochs=2", "train.sr_prior.sample_every=1"],
        tmp_path,
        sim_copy,
    )
    prior = read_summary(tmp_path, "sr_prior")
    assert "val/prior_top1_fwd" in prior["metrics"]
    run_inprocess(
        ["stage=sr", *common, "train.sr.epochs=1", "clip_tokens.online=true", "name=online"],
        tmp_path,
        sim_copy,
    )
    online = torch.load(read_summary(tmp_path, "sr", name="online")["checkpoint"], weights_only=True)
    assert not any(k.startswith("image_encoder.") for k in online["state_dict"])  # frozen encoder not saved


@pytest.mark.slow
def test_sr_ddp_with_gathered_negatives(sim_copy, tmp_path):
    common = ["scale=tiny", "trainer.enable_progress_bar=false"]  # subj 1 is the default
    run_cli(
        ["stage=targets", *common, "task.encoders.vae_latents=null"], tmp_path, sim_copy
    )  # SR targets only
    run_cli(
        ["stage=sr", *common, "trainer=ddp_cpu", "system.gather_negatives=true", "train.sr.epochs=2"],
        tmp_path,
        sim_copy,
    )
    assert "val/top1_fwd" in read_summary(tmp_path, "sr")["metrics"]
