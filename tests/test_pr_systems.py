"""PR systems on tiny modules and fake batches: training/validation steps, windows, mixup, cached vs online
targets, optimizer schedule, the blurry predictor, and the paper-scale dry run through the real config."""

from __future__ import annotations

from functools import partial

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from neuroclips.models.convnext_teacher import ConvNeXtTeacher
from neuroclips.models.frozen_vae import VaeLatentEncoder, build_autoencoder_kl
from neuroclips.models.perceptual import PerceptualNet
from neuroclips.systems.blurry import BlurryVideoPredictor, is_consecutive
from neuroclips.systems.perceptual import PerceptualReconstructor

V = 40


def modules():
    torch.manual_seed(0)
    net = PerceptualNet(
        voxels=V,
        inception_hidden=8,
        hidden=16,
        n_blocks=1,
        low_level_channels=8,
        low_level_size=2,
        aux_dim=8,
        decoder_channels=(8, 8),
        decoder_norm_groups=4,
    )
    vae = VaeLatentEncoder(
        vae=build_autoencoder_kl(
            block_out_channels=(8, 8, 8),
            layers_per_block=1,
            norm_num_groups=4,
            sample_size=16,
            mid_block_add_attention=False,
        ),
        image_size=16,
        scaling_factor=0.5,
    )
    teacher = ConvNeXtTeacher(depths=(1, 1, 1, 1), dims=(8, 8, 8, 8), projector_dim=8, input_size=64)
    return net, vae, teacher


@torch.no_grad()
def reference_latents(vae: VaeLatentEncoder, frames: torch.Tensor) -> torch.Tensor:
    """The reference's target, written out here independently of `VaeLatentEncoder.encode` (what `stage=targets`
    caches): encode(2x - 1).latent_dist.mode() x scaling factor, on the diffusers AutoencoderKL itself."""
    return (vae.vae.encode(2 * frames - 1).latent_dist.mode() * vae.scaling_factor).float()


def batches(n_clips: int, vae: VaeLatentEncoder, with_targets: bool = True) -> list[dict]:
    torch.manual_seed(1)
    items = []
    for i in range(n_clips):
        frames = torch.rand(6, 3, 16, 16)
        item = {"fmri": torch.randn(V), "frames": frames, "clip_index": torch.tensor(i)}
        if with_targets:
            item["targets"] = {"vae_latents": reference_latents(vae, frames)}
        items.append(item)
    return items


def system(**overrides) -> PerceptualReconstructor:
    net, vae, teacher = modules()
    kwargs = dict(
        net=net, vae=vae, teacher=teacher, optimizer=partial(torch.optim.AdamW, lr=1e-3, weight_decay=0.01)
    )
    return PerceptualReconstructor(**{**kwargs, **overrides})


def fit(model, items, epochs=1, batch_size=4):
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    loader = DataLoader(items, batch_size=batch_size)
    trainer.fit(model, train_dataloaders=loader, val_dataloaders=DataLoader(items, batch_size=batch_size))
    return trainer


@pytest.mark.parametrize(
    "overrides",
    [
        dict(),
        dict(temporal_window="clip"),
        dict(mixup_pct=1.0),
        dict(objective="paper_eq1", teacher=None),
        dict(latent_source="online"),
    ],
)
def test_fit_logs_validation_metrics(overrides):
    model = system(**overrides)
    items = batches(8, model.vae, with_targets=overrides.get("latent_source") != "online")
    before = [p.detach().clone() for p in model.net.parameters()]
    trainer = fit(model, items)
    metrics = trainer.callback_metrics
    for key in ("val/pixcorr", "val/ssim", "val/loss", "train/loss"):
        assert key in metrics and torch.isfinite(metrics[key])
    assert any((a - b).abs().max() > 0 for a, b in zip(before, model.net.parameters()))
    assert not any(p.requires_grad for p in model.vae.parameters())


def test_cached_and_online_targets_agree():
    model = system()
    items = batches(2, model.vae)
    batch = {k: torch.stack([i[k] for i in items]) for k in ("fmri", "frames")}
    batch["targets"] = {"vae_latents": torch.stack([i["targets"]["vae_latents"] for i in items])}
    cached = model.target_latents(batch)
    torch.testing.assert_close(cached, batch["targets"]["vae_latents"])  # cached mode reads the cache as is
    model.hparams.latent_source = "online"
    torch.testing.assert_close(
        model.target_latents(batch), cached
    )  # online encoding equals the reference formula
    batch["targets"]["vae_latents"] = cached + 1.0  # and online mode ignores the cache
    torch.testing.assert_close(model.target_latents(batch), cached)
    model.hparams.latent_source = "cached"
    with pytest.raises(KeyError, match="latent_source=online"):
        model.target_latents({"fmri": batch["fmri"], "frames": batch["frames"]})


def test_options_are_checked():
    with pytest.raises(ValueError, match="objective"):
        system(objective="paper")
    with pytest.raises(ValueError, match="temporal_window"):
        system(temporal_window="movie")
    with pytest.raises(ValueError, match="teacher"):
        system(teacher=None)


def test_onecycle_schedule_and_frozen_keys_left_out():
    model = system()
    trainer = fit(model, batches(8, model.vae), epochs=2, batch_size=2)
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR)
    assert scheduler.total_steps == 8
    assert model.frozen_prefixes == ("vae.", "teacher.")


def test_blurry_predictor_outputs_frames():
    net, vae, _ = modules()
    predictor = BlurryVideoPredictor(net=net.eval(), vae=vae, temporal_window="batch")
    batch = {"fmri": torch.randn(3, V), "clip_index": torch.tensor([4, 5, 6])}
    out = predictor.predict_step(batch, 0)
    assert out["blurry"].shape == (3, 6, 3, 16, 16)
    assert out["blurry"].min() >= 0 and out["blurry"].max() <= 1
    assert torch.equal(out["clip_index"], batch["clip_index"])
    assert is_consecutive(torch.tensor([4, 5, 6])) and not is_consecutive(torch.tensor([4, 6]))


def test_paper_dry_run_counts_through_config(tmp_path, monkeypatch):
    """`stage=pr scale=paper dry_run=true` builds the real config on meta: ≈0.23 B trainable."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    import neuroclips.utils.resolvers  # noqa: F401  (registers ${nc.cwd:} used by conf/paths)
    from neuroclips.runtime import run_dry

    monkeypatch.setenv("NEUROCLIPS_RUNS_DIR", str(tmp_path))
    conf = str(__import__("pathlib").Path(__file__).resolve().parents[1] / "conf")
    with initialize_config_dir(config_dir=conf, version_base="1.3"):
        cfg = compose(
            "config", overrides=["stage=pr", "scale=paper", "dry_run=true"], return_hydra_config=True
        )
        HydraConfig.instance().set_config(cfg)
        result, _ = run_dry(cfg, tmp_path)
    report = result.metrics["parameters"]
    assert report["modules"]["net"]["trainable"] == 229_184_945
    assert report["modules"]["vae"]["frozen"] == 83_653_863
    assert report["trainable"] == 229_184_945


def test_blurry_window_defaults_to_training_window():
    net, vae, _ = modules()
    assert BlurryVideoPredictor(net=net, vae=vae, training_window="clip").temporal_window == "clip"
    assert (
        BlurryVideoPredictor(net=net, vae=vae, temporal_window=2, training_window="clip").temporal_window == 2
    )
