"""Bad input gets one clear sentence, a non-zero exit, and nothing partial written (README's error table)."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from tests.conftest import run_cli, run_inprocess


def _variant(src, tmp_path, fn):
    dst = tmp_path / "variant.h5"
    shutil.copyfile(src, dst)
    with h5py.File(dst, "a") as f:
        fn(f)
    return dst


def _wrong_voxels(f):
    for split, reps in (("train", 2), ("test", 10)):
        n = f[f"fmri/subj01/{split}"].shape[0]
        del f[f"fmri/subj01/{split}"]
        f.create_dataset(f"fmri/subj01/{split}", data=np.zeros((n, reps, 100), np.float16))


def _nan(f):
    x = f["fmri/subj01/train"][5]
    x[1, 10:16] = np.nan
    f["fmri/subj01/train"][5] = x


def _float_frames(f):
    x = f["stimuli/train/frames"][:]
    del f["stimuli/train/frames"]
    f.create_dataset("stimuli/train/frames", data=x.astype(np.float32))


def _small_frames(f):
    x = f["stimuli/test/frames"][:, :5]
    del f["stimuli/test/frames"]
    f.create_dataset("stimuli/test/frames", data=x)


CASES = {
    "wrong_voxel_count": (
        _wrong_voxels,
        "'/fmri/subj01/train' expected 13447 voxels (attribute voxels_subj01), found 100",
    ),
    "missing_group": (lambda f: f.__delitem__("stimuli/test"), "dataset '/stimuli/test/frames' is missing"),
    "nan_voxels": (_nan, "'/fmri/subj01/train' expected finite voxel values, found 6 NaN/Inf values"),
    "frames_dtype": (_float_frames, "'/stimuli/train/frames' expected dtype uint8, found float32"),
    "frames_size": (
        _small_frames,
        "'/stimuli/test/frames' expected shape (N, 6, 3, H, W), found (20, 5, 3, 64, 64)",
    ),
}


def _assert_clean_failure(proc, tmp_path, needle, stage="toy_fit"):
    assert proc.returncode == 2, proc.stderr[-3000:]
    err = [ln for ln in proc.stderr.splitlines() if ln.startswith("neuroclips: error:")]
    assert err and needle in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    run_dir = tmp_path / "runs/default/subj1" / stage
    assert not (run_dir / "summary.json").exists() and not (run_dir / "checkpoints").exists()
    assert not (tmp_path / "runs/default/subj1/outputs").exists()


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_data_file(sim_file, tmp_path, case):
    fn, needle = CASES[case]
    bad = _variant(sim_file, tmp_path, fn)
    proc = run_inprocess(["stage=toy_fit", "logger=none"], tmp_path, bad, check=False)
    _assert_clean_failure(proc, tmp_path, needle)


def test_truncated_file(sim_file, tmp_path):
    bad = tmp_path / "trunc.h5"
    bad.write_bytes(sim_file.read_bytes()[:100_000])
    proc = run_inprocess(["stage=toy_fit", "logger=none"], tmp_path, bad, check=False)
    _assert_clean_failure(proc, tmp_path, "cannot be opened as HDF5")


def test_missing_data_file(tmp_path):
    proc = run_cli(
        ["stage=toy_fit", "logger=none", "data.auto_create=false", f"data.file={tmp_path}/none.h5"],
        tmp_path,
        check=False,
    )
    _assert_clean_failure(proc, tmp_path, "none.h5: the data file does not exist")


def test_checkpoint_from_another_subject_or_stage(sim_file, tmp_path):
    run_inprocess(["stage=toy_fit", "logger=none", "stage.max_epochs=1", "subj=2"], tmp_path, sim_file)
    ckpt = tmp_path / "runs/default/subj2/toy_fit/checkpoints/best.ckpt"
    proc = run_inprocess(
        ["stage=toy_from_fit", "logger=none", f"init_ckpt={ckpt}"], tmp_path, sim_file, check=False
    )
    _assert_clean_failure(
        proc, tmp_path, "checkpoint of subject 2, expected subject 1 (subj=1)", stage="toy_from_fit"
    )
    proc = run_inprocess(
        ["stage=toy_from_fit", "logger=none", "subj=2", f"init_ckpt={ckpt}", "system.net.expected_stage=sr"],
        tmp_path,
        sim_file,
        check=False,
    )
    assert proc.returncode == 2 and "checkpoint of stage 'toy_fit', expected stage 'sr'" in proc.stderr
    # the right subject chains by path with no hand-edited paths
    run_inprocess(["stage=toy_from_fit", "logger=none", "subj=2"], tmp_path, sim_file)
    assert len(list((tmp_path / "runs/default/subj2/outputs/keyframe").glob("*.npy"))) == 20


def test_missing_checkpoint(sim_file, tmp_path):
    proc = run_inprocess(["stage=toy_from_fit", "logger=none"], tmp_path, sim_file, check=False)
    _assert_clean_failure(
        proc,
        tmp_path,
        "checkpoint of an earlier stage not found (config field 'checkpoint')",
        stage="toy_from_fit",
    )


def test_missing_weight_file_at_paper_scale(sim_file, tmp_path):
    proc = run_cli(
        ["stage=targets", "scale=paper", f"paths.weights_dir={tmp_path}/weights"],
        tmp_path,
        sim_file,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert (
        "open_clip_pytorch_model.bin: an OpenCLIP checkpoint (open_clip_pytorch_model.bin) not found (config field 'scale.sr.clip_weights_path')"
        in proc.stderr
    )
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs/default/subj1/targets/summary.json").exists()
    import h5py

    with h5py.File(sim_file) as f:
        assert "targets" not in f, "nothing was written into the data file"
