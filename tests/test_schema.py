"""The HDF5 schema: a valid file round-trips; every violation is one clear sentence."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from neuroclips.data import schema


def test_valid_file_round_trip(sim_file):
    assert schema.validate(sim_file) == []
    s = schema.check(sim_file)
    assert s.n_clips == {"train": 120, "test": 20}
    assert s.subjects == {1: 13447, 2: 14828, 3: 9114}
    assert s.frame_size["train"] == (64, 64)
    with h5py.File(sim_file) as f:
        assert f["stimuli/train/frames"].dtype == np.uint8
        assert f["fmri/subj01/train"].shape == (120, 2, 13447)
        assert f["fmri/subj01/test"].shape == (20, 10, 13447)
        assert f.attrs["schema_version"] == schema.SCHEMA_VERSION and f.attrs["fps"] == 3


def _mutate(src, tmp_path, fn):
    dst = tmp_path / "bad.h5"
    shutil.copyfile(src, dst)
    with h5py.File(dst, "a") as f:
        fn(f)
    return dst


def test_wrong_voxel_count(sim_file, tmp_path):
    def fn(f):
        del f["fmri/subj01/train"]
        f.create_dataset("fmri/subj01/train", data=np.zeros((120, 2, 100), np.float16))

    errs = schema.validate(_mutate(sim_file, tmp_path, fn))
    assert (
        len(errs) == 1
        and "'/fmri/subj01/train'" in errs[0]
        and "13447 voxels" in errs[0]
        and "found 100" in errs[0]
    )


def test_check_subject_missing_and_wrong(sim_file):
    schema.check_subject(sim_file, 1, 13447)
    with pytest.raises(schema.SchemaError, match="has 13447 voxels but subj=1 expects 999"):
        schema.check_subject(sim_file, 1, 999)


def test_missing_dataset(sim_file, tmp_path):
    errs = schema.validate(_mutate(sim_file, tmp_path, lambda f: f.__delitem__("stimuli/test/captions")))
    assert errs == [f"{tmp_path / 'bad.h5'}: dataset '/stimuli/test/captions' is missing."]


def test_missing_group(sim_file, tmp_path):
    errs = schema.validate(_mutate(sim_file, tmp_path, lambda f: f.__delitem__("fmri")))
    assert any("'/fmri' holds no subject" in e for e in errs)


def test_nan_voxels(sim_file, tmp_path):
    def fn(f):
        d = f["fmri/subj02/test"]
        x = d[3]
        x[0, :5] = np.nan
        x[1, 0] = np.inf
        d[3] = x

    errs = schema.validate(_mutate(sim_file, tmp_path, fn))
    assert len(errs) == 1 and "'/fmri/subj02/test'" in errs[0] and "found 6 NaN/Inf" in errs[0]


def test_truncated_file(sim_file, tmp_path):
    dst = tmp_path / "trunc.h5"
    data = sim_file.read_bytes()
    dst.write_bytes(data[: len(data) // 3])
    errs = schema.validate(dst)
    assert len(errs) == 1 and "cannot be opened as HDF5" in errs[0] and str(dst) in errs[0]


def test_wrong_frame_dtype_and_shape(sim_file, tmp_path):
    def fn(f):
        del f["stimuli/train/frames"]
        f.create_dataset("stimuli/train/frames", data=np.zeros((120, 6, 3, 8, 8), np.float32))

    errs = schema.validate(_mutate(sim_file, tmp_path, fn))
    assert errs == [
        f"{tmp_path / 'bad.h5'}: dataset '/stimuli/train/frames' expected dtype uint8, found float32."
    ]

    def fn2(f):
        del f["stimuli/test/frames"]
        f.create_dataset("stimuli/test/frames", data=np.zeros((20, 5, 3, 8, 8), np.uint8))

    errs = schema.validate(_mutate(sim_file, tmp_path, fn2))
    assert any("expected shape (N, 6, 3, H, W), found (20, 5, 3, 8, 8)" in e for e in errs)


def test_row_count_mismatch(sim_file, tmp_path):
    def fn(f):
        del f["stimuli/train/scene_cut"]
        f.create_dataset("stimuli/train/scene_cut", data=np.zeros(7, bool))

    errs = schema.validate(_mutate(sim_file, tmp_path, fn))
    assert errs == [
        f"{tmp_path / 'bad.h5'}: dataset '/stimuli/train/scene_cut' expected 120 rows (one per clip), found shape (7,)."
    ]


def test_missing_file(tmp_path):
    assert schema.validate(tmp_path / "nope.h5") == [f"{tmp_path / 'nope.h5'}: the data file does not exist."]
