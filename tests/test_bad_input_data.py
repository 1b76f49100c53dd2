"""Bad input in the data, converter and evaluate layers: one sentence, exit code 2, nothing partial written."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from neuroclips.data import schema
from neuroclips.data.datamodule import CC2017DataModule
from neuroclips.errors import ConfigError
from tests.conftest import run_cli
from tests.test_bad_input import _assert_clean_failure, _variant

TOKENS = ["+datamodule.targets=[clip_tokens]"]  # toy_fit reads a cached target, as sr does


def _dm(path, **kw) -> CC2017DataModule:
    return CC2017DataModule(file=str(path), subj=1, voxels=13447, **kw)


def _cache_tokens(f, done_rows=None, value=None):
    """A (N, 2, 3) clip_tokens cache for frames [2, 3] in both splits; ``done_rows`` (train) flagged done."""
    for split in ("train", "test"):
        n = f[f"stimuli/{split}/clip_index"].shape[0]
        x = np.full((n, 2, 3), 0.5, np.float16)
        if value is not None and split == "train":
            x[7, 1, 2] = value
        d = f.create_dataset(f"targets/clip_tokens/{split}", data=x)
        d.attrs["frame_indices"] = np.array([2, 3])
        done = np.ones(n, bool)
        if done_rows is not None and split == "train":
            done[:] = False
            done[:done_rows] = True
        f.create_dataset(f"targets/clip_tokens/{split}_done", data=done)


# --------------------------------------------------------------------------------------------- 1. clip_index
def _duplicate_clip_index(split):
    def fn(f):
        ci = f[f"stimuli/{split}/clip_index"][:]
        ci[4] = ci[3]
        f[f"stimuli/{split}/clip_index"][...] = ci
    return fn


def test_duplicate_clip_index_is_refused(sim_file, tmp_path):
    bad = _variant(sim_file, tmp_path, _duplicate_clip_index("train"))
    proc = run_cli(["stage=toy_fit", "logger=none"], tmp_path, bad, check=False)
    _assert_clean_failure(proc, tmp_path, "dataset '/stimuli/train/clip_index' expected a distinct clip index per clip, "
                                          "found 1 duplicated value(s), e.g. 3 appears 2 times.")
    test_bad = _variant(sim_file, tmp_path, _duplicate_clip_index("test"))
    assert schema.validate(test_bad) == [
        f"{test_bad}: dataset '/stimuli/test/clip_index' expected a distinct clip index per clip, found 1 duplicated "
        "value(s), e.g. 3 appears 2 times."
    ]


# --------------------------------------------------------------------------------------------- 2. cached targets
def test_half_cached_targets_are_refused(sim_file, tmp_path):
    bad = _variant(sim_file, tmp_path, lambda f: _cache_tokens(f, done_rows=50))
    proc = run_cli(["stage=toy_fit", "logger=none", *TOKENS], tmp_path, bad, check=False)
    # 120 train clips, one block of 20 held out for val (data.val_fraction 0.1): training reads 100, 50 not cached
    _assert_clean_failure(proc, tmp_path, "dataset '/targets/clip_tokens/train_done' marks 50 of the 100 rows read "
                                          "for train as not cached (first: row 50); finish the cache with "
                                          "`python -m neuroclips.train stage=targets subj=1")


def test_nonfinite_targets_are_refused(sim_file, tmp_path):
    bad = _variant(sim_file, tmp_path, lambda f: _cache_tokens(f, value=np.inf))
    proc = run_cli(["stage=toy_fit", "logger=none", *TOKENS], tmp_path, bad, check=False)
    _assert_clean_failure(proc, tmp_path, "dataset '/targets/clip_tokens/train' expected finite values, found NaN/Inf "
                                          "in 1 of the 100 rows read for train (first: row 7); re-encode them with "
                                          "`python -m neuroclips.train stage=targets subj=1")


def test_missing_target_dataset_is_refused(sim_file, tmp_path):
    proc = run_cli(["stage=toy_fit", "logger=none", *TOKENS], tmp_path, sim_file, check=False)
    _assert_clean_failure(proc, tmp_path, "dataset '/targets/clip_tokens/train' is missing (datamodule.targets lists "
                                          "'clip_tokens'); cache it first with `python -m neuroclips.train stage=targets")


def test_targets_of_the_wrong_shape_are_refused(sim_copy):
    with h5py.File(sim_copy, "a") as f:
        _cache_tokens(f)
        f["targets/clip_tokens/train"].attrs["frame_indices"] = np.array([2, 3, 4])
        f.create_dataset("targets/vae_latents/train", data=np.zeros((120, 5, 4, 2, 2), np.float16))
    with pytest.raises(schema.SchemaError, match=r"'/targets/clip_tokens/train' expected shape \(N, 3, \.\.\.\) \(one "
                                                 r"slot per frame in its attribute frame_indices \[2, 3, 4\]\), found "
                                                 r"\(120, 2, 3\)\.$"):
        _dm(sim_copy, targets=["clip_tokens"]).setup("fit")
    with pytest.raises(schema.SchemaError, match=r"'/targets/vae_latents/train' expected shape \(N, 6, 4, h, w\), "
                                                 r"found \(120, 5, 4, 2, 2\)\.$"):
        _dm(sim_copy, targets=["vae_latents"]).dataset("train")


def test_targets_are_checked_for_the_rows_read_once(sim_copy, monkeypatch):
    """Only the rows a loader reads count (test rows are checked when the test set is asked for), and once."""
    with h5py.File(sim_copy, "a") as f:
        _cache_tokens(f)
        f["targets/clip_tokens/test_done"][5] = False
    dm = _dm(sim_copy, targets=["clip_tokens"])
    dm.setup("fit")  # train and val are complete
    from neuroclips.data import validate

    calls = []
    monkeypatch.setattr(validate, "check_cached_targets", lambda *a, **k: calls.append(a))
    dm.dataset("train")[0]
    assert calls == [], "verified once per dataset, not per read"
    monkeypatch.undo()
    with pytest.raises(schema.SchemaError, match="marks 1 of the 20 rows read for test as not cached"):
        dm.dataset("test")


def test_stage_targets_re_encodes_nonfinite_rows(sim_copy):
    import torch

    from neuroclips.data.targets import ComputeTargets
    from tests.test_targets import MeanColour

    task = ComputeTargets({}, batch_size=16)
    assert task._encode_split(str(sim_copy), MeanColour("clip_tokens", [2, 3]), "clip_tokens", "test", torch.device("cpu")) == 20
    with h5py.File(sim_copy, "a") as f:
        f["targets/clip_tokens/test"][4, 0, 0, 1] = np.nan
    enc = MeanColour("clip_tokens", [2, 3])
    assert task._encode_split(str(sim_copy), enc, "clip_tokens", "test", torch.device("cpu")) == 1
    with h5py.File(sim_copy) as f:
        assert np.isfinite(f["targets/clip_tokens/test"][:]).all()


def _empty_train(f):
    for key in list(f["stimuli/train"].keys()) + ["fmri/subj01/train"]:
        path = key if key.startswith("fmri") else f"stimuli/train/{key}"
        d = f[path]
        data = np.zeros((0, *d.shape[1:]), d.dtype)
        del f[path]
        f.create_dataset(path, data=data)


def test_empty_training_split(sim_file, tmp_path):
    proc = run_cli(["stage=toy_fit", "logger=none", "data.limit_clips=0"], tmp_path, sim_file, check=False)
    _assert_clean_failure(proc, tmp_path, "data.limit_clips: expected a positive integer (clips per split, or null), found 0.")
    proc = run_cli(["stage=toy_fit", "logger=none", "data.val_fraction=0.95"], tmp_path, sim_file, check=False)
    _assert_clean_failure(proc, tmp_path, "data.val_fraction=0.95 with data.val_block=20 would hold out 6 of 6 blocks "
                                          "of the 120 training clips; expected fewer")
    bad = _variant(sim_file, tmp_path, _empty_train)
    with pytest.raises(ConfigError, match=r"the training split is empty \(expected at least one training clip; found "
                                          r"none left after holding out data.val_fraction=0.0"):
        _dm(bad, val_fraction=0.0).setup("fit")


# --------------------------------------------------------------------------------------------- 3. arguments
@pytest.mark.parametrize("args, needle", [
    (["stage=toy_fit", "datamodule.batch_size=0"], "datamodule.batch_size: expected a positive integer (clips per "
                                                   "optimizer step), found 0."),
    (["stage=sr", "scale.sr.train.batch_size=-3"], "scale.sr.train.batch_size: expected a positive integer (clips "
                                                   "per optimizer step), found -3."),
    (["stage=pr", "datamodule.eval_batch_size=0"], "datamodule.eval_batch_size: expected a positive integer (clips "
                                                   "per batch), found 0."),
    (["stage=toy_fit", "data.val_fraction=abc"], "data.val_fraction: expected a number in [0, 1) (share of training "
                                                 "clips held out), found 'abc'."),
])
def test_bad_datamodule_arguments(sim_file, tmp_path, args, needle):
    proc = run_cli([*args, "logger=none"], tmp_path, sim_file, check=False)
    stage = args[0].split("=")[1]
    _assert_clean_failure(proc, tmp_path, needle, stage=stage)
    assert not (tmp_path / "runs/default/subj1" / stage / "lightning_logs").exists()


@pytest.mark.parametrize("kw, needle", [
    ({"batch_size": 2.5}, "datamodule.batch_size: expected a positive integer (clips per optimizer step), found 2.5."),
    ({"batch_size": "8"}, "datamodule.batch_size: expected a positive integer (clips per optimizer step), found '8'."),
    ({"eval_batch_size": -1}, "datamodule.eval_batch_size: expected a positive integer (clips per batch), found -1."),
    ({"val_fraction": 1.0}, "data.val_fraction: expected a number in [0, 1) (share of training clips held out), found 1.0."),
    ({"val_block": 0}, "data.val_block: expected a positive integer (clips per held-out block), found 0."),
    ({"num_workers": -1}, "data.num_workers: expected a non-negative integer (loader processes), found -1."),
])
def test_bad_datamodule_arguments_in_python(sim_file, kw, needle):
    with pytest.raises(ConfigError) as e:
        _dm(sim_file, **kw)
    assert str(e.value) == needle


def test_eval_batch_size_defaults_to_batch_size_only_when_null(sim_file):
    assert _dm(sim_file, batch_size=6).eval_batch_size == 6
    assert _dm(sim_file, batch_size=6, eval_batch_size=3).eval_batch_size == 3
