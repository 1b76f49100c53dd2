"""Fingerprints: a rerun never mixes configurations (fit resume, predict clips, cached targets, data identity)."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
import torch

from neuroclips.provenance import data_identity, describe_difference, differing_keys, result_config
from tests.conftest import SMALL, copy_runs, read_summary, run_cli, run_inprocess

RUN = "runs/default/subj1"


# ------------------------------------------------------------------------------------------- pure functions
def test_result_config_drops_cosmetic_keys_and_keeps_the_rest():
    resolved = {
        "trainer": {"enable_progress_bar": True, "max_epochs": 3},
        "system": {"lr": 0.1},
        "logger": {"x": 1},
        "name": "a",
        "data": {"num_workers": 4, "val_seed": 0},
    }
    cfg = result_config(resolved, ["trainer.enable_progress_bar", "data.num_workers"])
    assert cfg == {"trainer": {"max_epochs": 3}, "system": {"lr": 0.1}, "data": {"val_seed": 0}}


def test_differing_keys_names_changed_added_and_removed_keys():
    old = {"system": {"lr": 0.1, "net": {"hidden": 8}}, "seed": 1}
    new = {"system": {"lr": 0.2, "net": {"hidden": 8, "depth": 2}}, "seed": 1}
    assert differing_keys(old, new) == ["system.lr", "system.net.depth"]
    from neuroclips.provenance import Provenance

    text = describe_difference(
        {"fingerprint": "a", "config": old, "inputs": {"data": "x"}}, Provenance("b", new, {"data": "y"})
    )
    assert "system.lr: 0.1 -> 0.2" in text and "input data changed" in text


def test_data_identity_follows_the_stimuli_and_fmri_not_the_targets(sim_file, tmp_path):

    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    shutil.copyfile(sim_file, a)
    shutil.copyfile(sim_file, b)
    base = data_identity(a)
    with h5py.File(a, "a") as f:  # what stage=targets does to the file
        f.create_dataset("targets/x/train", data=np.zeros((3, 2), np.float16))
    assert data_identity(a) == base
    with h5py.File(b, "a") as f:
        d = f["fmri/subj01/train"]
        d[0] = d[0] + 1.0
    assert data_identity(b) != base


def test_a_task_stage_that_creates_the_data_file_has_the_same_fingerprint_on_rerun(tmp_path, monkeypatch):
    # what `make demo` does on a fresh clone: stage=standins/targets write the simulated file (data.auto_create),
    # here at the small test size (the demo-size file takes a minute to simulate)
    from neuroclips.data import simulate

    full = simulate.config_for
    monkeypatch.setattr(simulate, "config_for", lambda scale, **kw: full(scale, **{**SMALL, **kw}))
    args = [
        "stage=targets",
        "logger=none",
        "task.encoders.clip_tokens=null",
        "task.encoders.caption_emb=null",
        "task.encoders.vae_latents=null",
    ]
    run_inprocess(args, tmp_path)
    first = read_summary(tmp_path, "targets")
    assert "data" in first["provenance"]["inputs"], "the data file's identity must be taken once it exists"
    run_inprocess(args, tmp_path)
    assert read_summary(tmp_path, "targets")["fingerprint"] == first["fingerprint"]


# ------------------------------------------------------------------------------------------- fit stages
def test_fit_rerun_under_another_config_is_refused_and_the_old_run_untouched(
    sim_file, tmp_path, fitted_toy_runs
):
    copy_runs(fitted_toy_runs, tmp_path)
    run_dir = tmp_path / RUN / "toy_fit"
    config_before = (run_dir / "config.yaml").read_text()
    last_before = (run_dir / "checkpoints/last.ckpt").read_bytes()
    proc = run_inprocess(["stage=toy_fit", "logger=none", "system.lr=0.002"], tmp_path, sim_file, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    err = proc.stderr.strip().splitlines()[-1]
    assert "system.lr: 0.001 -> 0.002" in err and "name=" in err and "resume=never" in err, err
    assert "Traceback" not in proc.stderr
    assert (run_dir / "config.yaml").read_text() == config_before
    assert (run_dir / "checkpoints/last.ckpt").read_bytes() == last_before
    ckpt = torch.load(run_dir / "checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["neuroclips"]["fingerprint"] == read_summary(tmp_path, "toy_fit")["fingerprint"]
    # raising max_epochs changes the LR schedule: a new run, refused in one sentence (not a OneCycle traceback)
    proc = run_inprocess(
        ["stage=toy_fit", "logger=none", "stage.max_epochs=3"], tmp_path, sim_file, check=False
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "trainer.max_epochs: 2 -> 3" in proc.stderr


def test_fit_rerun_with_a_cosmetic_change_resumes_and_a_finished_run_trains_nothing(
    sim_file, tmp_path, fitted_toy_runs
):
    copy_runs(fitted_toy_runs, tmp_path)
    run_dir = tmp_path / RUN / "toy_fit"
    last = run_dir / "checkpoints/last.ckpt"
    mtime = last.stat().st_mtime_ns
    proc = run_inprocess(
        ["stage=toy_fit", "logger=csv", "trainer.enable_progress_bar=false", "data.num_workers=1"],
        tmp_path,
        sim_file,
    )
    assert "already finished" in proc.stdout + proc.stderr
    assert last.stat().st_mtime_ns == mtime, "a finished stage must not train again"
    # a crash after the last epoch (no summary): a cosmetic change still accepts the checkpoint
    (run_dir / "summary.json").unlink()
    run_inprocess(["stage=toy_fit", "logger=none", "trainer.enable_progress_bar=false"], tmp_path, sim_file)
    assert read_summary(tmp_path, "toy_fit")["status"] == "finished"


# ------------------------------------------------------------------------------------------- predict stages
def _mtimes(out, clips):
    return {c: (out / "keyframe" / f"{c:05d}.npy").stat().st_mtime_ns for c in clips}


@pytest.mark.slow
def test_predict_clips_of_another_config_are_refused_and_overwrite_recomputes_only_them(sim_file, tmp_path):
    out = tmp_path / RUN / "outputs"
    run_inprocess(["stage=toy_predict", "logger=none", "data.predict_clips=[0,1,2,3,4]"], tmp_path, sim_file)
    fp_old = json.loads((out / "keyframe/00000.json").read_text())["fingerprint"]
    assert fp_old == read_summary(tmp_path, "toy_predict")["fingerprint"]
    first = _mtimes(out, range(5))

    proc = run_inprocess(
        ["stage=toy_predict", "logger=none", "+system.lr=0.5", "data.predict_clips=[0,1,2,3,4]"],
        tmp_path,
        sim_file,
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "5 of 5 clips" in proc.stderr and "outputs=overwrite" in proc.stderr and "system.lr" in proc.stderr
    assert _mtimes(out, range(5)) == first, "a refused run must not touch the old clips"

    run_inprocess(
        [
            "stage=toy_predict",
            "logger=none",
            "+system.lr=0.5",
            "data.predict_clips=[0,1,2]",
            "outputs=overwrite",
        ],
        tmp_path,
        sim_file,
    )
    second = _mtimes(out, range(5))
    assert all(second[c] != first[c] for c in (0, 1, 2)) and all(second[c] == first[c] for c in (3, 4))

    proc = run_inprocess(
        ["stage=toy_predict", "logger=none", "+system.lr=0.5", "data.predict_clips=[0,1,2,3,4]"],
        tmp_path,
        sim_file,
        check=False,
    )
    assert proc.returncode == 2 and "2 of 5 clips" in proc.stderr
    run_inprocess(
        [
            "stage=toy_predict",
            "logger=none",
            "+system.lr=0.5",
            "data.predict_clips=[0,1,2,3,4]",
            "outputs=overwrite",
        ],
        tmp_path,
        sim_file,
    )
    third = _mtimes(out, range(5))
    assert all(third[c] == second[c] for c in (0, 1, 2)) and all(third[c] != second[c] for c in (3, 4))
    s = read_summary(tmp_path, "toy_predict")
    assert s["metrics"]["clips_stale"] == 2 and s["metrics"]["clips_written"] == 2
    assert {json.loads((out / f"caption/{c:05d}.json").read_text())["fingerprint"] for c in range(5)} == {
        s["fingerprint"]
    }


@pytest.mark.slow
def test_a_new_upstream_checkpoint_changes_the_downstream_fingerprint(sim_file, tmp_path, fitted_toy_runs):
    copy_runs(fitted_toy_runs, tmp_path)
    run_inprocess(["stage=toy_from_fit", "logger=none", "data.predict_clips=[0,1]"], tmp_path, sim_file)
    before = read_summary(tmp_path, "toy_from_fit")
    run_inprocess(["stage=toy_fit", "logger=none", "system.lr=0.01", "resume=never"], tmp_path, sim_file)
    proc = run_inprocess(
        ["stage=toy_from_fit", "logger=none", "data.predict_clips=[0,1]"], tmp_path, sim_file, check=False
    )
    assert proc.returncode == 2 and "input system.net.path changed" in proc.stderr, proc.stderr[-1500:]
    run_inprocess(
        ["stage=toy_from_fit", "logger=none", "data.predict_clips=[0,1]", "outputs=overwrite"],
        tmp_path,
        sim_file,
    )
    assert read_summary(tmp_path, "toy_from_fit")["fingerprint"] != before["fingerprint"]


@pytest.mark.parametrize(
    "arg, text",
    [
        ("resume=sometimes", "resume expected one of auto, never, must, found 'sometimes'"),
        ("outputs=maybe", "outputs expected keep or overwrite, found 'maybe'"),
        ("seed=abc", "seed expected an integer, found 'abc'"),
        ("seed=true", "seed expected an integer, found True"),
    ],
)
def test_bad_resume_outputs_and_seed_values_are_one_sentence(arg, text):
    from omegaconf import OmegaConf

    from neuroclips.errors import ConfigError
    from neuroclips.run_setup import check_top_level

    key, value = arg.split("=")
    cfg = OmegaConf.create({"resume": "auto", "outputs": "keep", "seed": 1})
    cfg[key] = {"abc": "abc", "true": True}.get(value, value)
    with pytest.raises(ConfigError) as e:
        check_top_level(cfg)
    assert text in str(e.value)


def test_a_bad_top_level_value_exits_2_and_writes_nothing(sim_file, tmp_path):
    proc = run_cli(["stage=toy_fit", "logger=none", "resume=sometimes"], tmp_path, sim_file, check=False)
    assert proc.returncode == 2 and "resume expected one of auto, never, must" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists(), "a refused run leaves nothing, not even empty folders"


def test_a_run_refused_by_data_validation_writes_nothing(sim_file, tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(sim_file.read_bytes()[:5000])  # truncated
    proc = run_inprocess(
        ["stage=toy_fit", "logger=none", "data.auto_create=false"], tmp_path, bad, check=False
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-1500:]
    assert not (tmp_path / "runs").exists()
