"""Model selection: `validation` (default, held-out training clips) or `reference_test` (recipe=reference: the
reference chooses sr at its minimum test loss, sr_prior at its last epoch, pr at its best test PixCorr). With the
reference's option the validation loader scores the test clips, the run's config records it, and the eval report
says in one line that model selection looked at the test set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from neuroclips.data.datamodule import CC2017DataModule
from neuroclips.errors import ConfigError
from neuroclips.evaluation.selection import model_selection
from neuroclips.report import model_selection_line
from tests.conftest import REPO, read_summary, run_inprocess


def _cfg(*overrides):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.mark.parametrize(
    "stage, default, reference",
    [
        ("sr", ("val/top1_fwd", "max"), ("val/loss", "min")),
        ("sr_prior", ("val/loss_prior", "min"), ("epoch", "max")),  # the last epoch
        ("pr", ("val/pixcorr", "max"), ("val/pixcorr", "max")),
    ],
)
def test_recipe_reference_selects_on_the_test_set(stage, default, reference):
    cfg = _cfg(f"stage={stage}")
    assert cfg.stage.selection == "validation" and cfg.datamodule.val_split == "val"
    assert (cfg.stage.monitor, cfg.stage.monitor_mode) == default
    ref = _cfg(f"stage={stage}", "recipe=reference")
    assert ref.stage.selection == "reference_test" and ref.datamodule.val_split == "test"
    assert (ref.stage.monitor, ref.stage.monitor_mode) == reference
    one = _cfg(f"stage={stage}", "stage.selection=reference_test")  # the option alone, without the recipe
    assert one.datamodule.val_split == "test"
    if stage == "sr":  # the reference's test batches of 300 (retrieval_k) for its test loss
        assert (
            ref.datamodule.eval_batch_size == ref.scale.sr.retrieval_k
            and cfg.datamodule.eval_batch_size is None
        )


def test_val_split_test_makes_the_val_loader_yield_test_clips(sim_file):
    import h5py

    kw = dict(file=str(sim_file), subj=1, voxels=13447, batch_size=8, eval_batch_size=7)
    with h5py.File(sim_file, "r") as f:
        test_clips = f["/stimuli/test/clip_index"][:].tolist()
        test_fmri = f["/fmri/subj01/test"][:].astype(np.float32).mean(1)
    default = CC2017DataModule(**kw)
    assert default.dataset("val").split == "train"
    dm = CC2017DataModule(**kw, val_split="test")
    ds = dm.dataset("val")
    assert ds.split == "test" and ds.role == "test" and len(ds) == len(test_clips)
    batches = list(dm.val_dataloader())
    assert sum((b["clip_index"].tolist() for b in batches), []) == test_clips
    fmri = np.concatenate([b["fmri"].numpy() for b in batches])
    assert np.allclose(fmri, test_fmri, atol=1e-6)  # the test input: mean over the repetitions
    assert set(sum((b["rep"].tolist() for b in batches), [])) == {-1}
    with pytest.raises(
        ConfigError, match=r"^datamodule.val_split: expected one of \('val', 'test'\), found 'train'"
    ):
        CC2017DataModule(**kw, val_split="train")


def _write_summary(root: Path, stage: str, selection: str, val_split: str, monitor, mode="min"):
    d = root / stage
    d.mkdir(parents=True)
    cfg = {
        "stage": {"name": stage, "selection": selection, "monitor": monitor, "monitor_mode": mode},
        "datamodule": {"val_split": val_split},
    }
    (d / "summary.json").write_text(json.dumps({"stage": stage, "config": cfg}))


def test_report_line_says_selection_looked_at_the_test_set(tmp_path):
    _write_summary(tmp_path, "sr", "reference_test", "test", "val/loss")
    _write_summary(tmp_path, "sr_prior", "reference_test", "test", "epoch", "max")
    _write_summary(tmp_path, "pr", "validation", "val", "val/pixcorr", "max")
    sel = model_selection(tmp_path)
    assert set(sel) == {"sr", "sr_prior", "pr"} and sel["sr"]["val_split"] == "test"
    line = model_selection_line({"model_selection": sel})
    assert line.startswith("Model selection looked at the TEST set: ")
    assert "sr kept the epoch of minimum val/loss on the test clips" in line
    assert "sr_prior kept its last epoch" in line and "pr " not in line.split(":", 1)[1].split("(")[0]
    assert line.count(". ") == 0  # one sentence


def test_report_line_for_validation_selection(tmp_path):
    for stage, monitor in (("sr", "val/top1_fwd"), ("pr", "val/pixcorr")):
        _write_summary(tmp_path, stage, "validation", "val", monitor, "max")
    line = model_selection_line({"model_selection": model_selection(tmp_path)})
    assert line.startswith("Model selection: on the validation split") and "test set was not used" in line
    assert model_selection_line({"model_selection": {}}) is None  # foreign reconstructions: nothing to say


@pytest.mark.slow
def test_sr_reference_selection_end_to_end(sim_copy, tmp_path):
    """stage.selection=reference_test (what recipe=reference sets, without the recipe's weight files): sr validates
    on the test clips, best.ckpt and summary record it, the report line appears."""
    import torch

    from neuroclips.report import render_markdown

    run_inprocess(["stage=targets", "logger=none", "task.encoders.vae_latents=null"], tmp_path, sim_copy)
    run_inprocess(
        [
            "stage=sr",
            "logger=none",
            "stage.selection=reference_test",
            "train.sr.epochs=2",
            "trainer.enable_progress_bar=false",
        ],
        tmp_path,
        sim_copy,
    )
    s = read_summary(tmp_path, "sr")
    assert (
        s["config"]["stage"]["selection"] == "reference_test"
        and s["config"]["datamodule"]["val_split"] == "test"
    )
    assert "best/val/loss" in s["metrics"]
    ckpt = torch.load(s["checkpoint"], map_location="cpu", weights_only=True)
    meta = ckpt["neuroclips"]["config"]
    assert meta["datamodule"]["val_split"] == "test" and meta["stage"]["monitor"] == "val/loss"
    run_root = tmp_path / "runs/default/subj1"
    sel = model_selection(run_root)
    assert sel["sr"]["val_split"] == "test"
    doc = {
        "subject": 1,
        "scale": "tiny",
        "split": "test",
        "source": "x",
        "layout": "store",
        "data_file": "d",
        "frame_indices": [0],
        "keyframe_gt_index": 2,
        "drop_scene_cuts": False,
        "nway": {
            "protocols": [],
            "n_ways": [],
            "top_k": 1,
            "num_trials": 1,
            "seed": 0,
            "sampler": "reference",
        },
        "models": {},
        "kinds": {"blurry": {"frame_selection": "as given", "metrics": {}}},
        "model_selection": sel,
    }
    md = render_markdown(doc)
    assert (
        "- Model selection looked at the TEST set: sr kept the epoch of minimum val/loss on the test clips"
        in md
    )
