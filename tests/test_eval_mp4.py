"""Evaluation input as MP4 (another tool's videos): read back with the right shape and close to the pixels."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np

from neuroclips.evaluation.readers import read_entry


def test_mp4_clip_reads_back(tmp_path):
    yy, xx = np.mgrid[0:64, 0:64]
    frames = np.stack(
        [np.stack([(xx * 4 + t * 8) % 256, yy * 4, np.full_like(xx, 128)], -1) for t in range(16)]
    ).astype(np.uint8)
    path = tmp_path / "00003.mp4"
    iio.imwrite(path, frames, plugin="pyav", fps=8, codec="libx264")
    got = read_entry(path)
    assert got.shape == (16, 3, 64, 64) and got.dtype == np.uint8
    err = np.abs(got.astype(np.float32) - frames.transpose(0, 3, 1, 2).astype(np.float32)).mean()
    assert err < 12, err  # lossy codec, same picture
