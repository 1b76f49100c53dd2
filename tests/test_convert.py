"""The cc2017 converter on files written in the released layout (and bad ones)."""

from __future__ import annotations

import os
import pickle

import h5py
import numpy as np
import pytest
import torch

from neuroclips.data import schema
from neuroclips.data.convert_cc2017 import convert, main

N_TR, N_TE = 12, 5


def write_release(d, subjects=(1, 3), test_size=16, train_size=12, caption_kind="U"):
    d.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    torch.save(torch.rand(N_TR, 6, 3, train_size, train_size, generator=g), d / "GT_train_3fps.pt")
    torch.save(torch.rand(N_TE, 6, 3, test_size, test_size, generator=g), d / "GT_test_3fps.pt")
    for split, n in (("train", N_TR), ("test", N_TE)):
        caps = np.hstack([np.array([f"a {split} clip number {i}"]) for i in range(n)])
        if caption_kind == "O":
            caps = caps.astype(object)
        torch.save(caps, d / f"GT_{split}_caption.pt")
        torch.save(torch.randn(n, 1280, generator=g), d / f"GT_{split}_caption_emb.pt")
    for s in subjects:
        v = schema.SUBJECT_VOXELS[s]
        torch.save(torch.randn(N_TR, 2, v, generator=g), d / f"subj0{s}_train_fmri.pt")
        torch.save(torch.randn(N_TE, 10, v, generator=g), d / f"subj0{s}_test_fmri.pt")
    return d


@pytest.mark.parametrize("caption_kind", ["U", "O"])
def test_converts_release_layout(tmp_path, caption_kind):
    src = write_release(tmp_path / "src", caption_kind=caption_kind)
    out = convert(src, tmp_path / "cc2017.h5", progress=False)
    assert schema.validate(out) == []
    with h5py.File(out) as f:
        assert (
            f["stimuli/train/frames"].shape == (N_TR, 6, 3, 12, 12)
            and f["stimuli/train/frames"].dtype == np.uint8
        )
        assert f["stimuli/test/frames"].shape == (N_TE, 6, 3, 16, 16)
        assert list(f.attrs["test_frame_size"]) == [16, 16]
        assert f["stimuli/test/captions"][2].decode() == "a test clip number 2"
        assert f["fmri/subj03/test"].shape == (N_TE, 10, 9114) and "subj02" not in f["fmri"]
        assert f["targets/caption_emb/train"].shape == (N_TR, 1280)
        ref = torch.load(tmp_path / "src/GT_train_3fps.pt")[3, 2]
        assert np.abs(f["stimuli/train/frames"][3, 2] / 255.0 - ref.numpy()).max() <= 0.5 / 255 + 1e-6
        fm = torch.load(tmp_path / "src/subj01_train_fmri.pt")
        assert np.allclose(f["fmri/subj01/train"][7], fm[7].numpy())


def test_wrong_voxel_count_is_refused_and_leaves_no_file(tmp_path):
    src = write_release(tmp_path / "src", subjects=(2,))
    torch.save(torch.randn(N_TR, 2, 100), src / "subj02_train_fmri.pt")
    with pytest.raises(
        schema.SchemaError,
        match=r"subj02_train_fmri.pt: expected shape \(12, 2, 14828\).*found \(12, 2, 100\)",
    ):
        convert(src, tmp_path / "out.h5", progress=False)
    assert not (tmp_path / "out.h5").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.h5")], (
        "no temporary file left behind"
    )


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/neuroclips_pwned",))


def test_malicious_pickle_is_refused(tmp_path):
    src = write_release(tmp_path / "src", subjects=(1,))
    with open(src / "GT_test_caption.pt", "wb") as fh:
        pickle.dump(_Evil(), fh)
    if os.path.exists("/tmp/neuroclips_pwned"):
        os.remove("/tmp/neuroclips_pwned")
    with pytest.raises(schema.SchemaError, match="refused to unpickle"):
        convert(src, tmp_path / "out.h5", progress=False)
    assert not os.path.exists("/tmp/neuroclips_pwned")
    assert not (tmp_path / "out.h5").exists()


def test_out_of_range_frames_and_cli_exit_code(tmp_path, capsys):
    src = write_release(tmp_path / "src", subjects=(1,))
    torch.save(torch.rand(N_TE, 6, 3, 16, 16) * 255, src / "GT_test_3fps.pt")
    assert main([f"src={src}", f"out={tmp_path / 'o.h5'}"]) == 2
    assert "expected values in [0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "o.h5").exists()


def test_missing_frames_file(tmp_path):
    src = write_release(tmp_path / "src", subjects=(1,))
    (src / "GT_train_3fps.pt").unlink()
    with pytest.raises(schema.SchemaError, match="GT_train_3fps.pt: missing"):
        convert(src, tmp_path / "o.h5", progress=False)


def test_other_writers_numpy_float16_legacy_and_lists(tmp_path):
    """Another writer might save numpy arrays, float16, uint8 frames, caption lists or the legacy format."""
    src = write_release(tmp_path / "src", subjects=(3,))
    g = np.random.default_rng(0)
    torch.save(g.standard_normal((N_TR, 2, 9114)).astype(np.float16), src / "subj03_train_fmri.pt")
    torch.save(
        torch.randn(N_TE, 10, 9114).half(), src / "subj03_test_fmri.pt", _use_new_zipfile_serialization=False
    )
    torch.save((torch.rand(N_TE, 6, 3, 16, 16) * 255).to(torch.uint8), src / "GT_test_3fps.pt")
    torch.save([f"caption {i}" for i in range(N_TR)], src / "GT_train_caption.pt")
    out = convert(src, tmp_path / "o.h5", progress=False)
    assert schema.validate(out) == []
    with h5py.File(out) as f:
        assert f["stimuli/train/captions"][4].decode() == "caption 4"
        assert f["fmri/subj03/train"].dtype == np.float32
