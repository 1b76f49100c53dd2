"""The one float -> uint8 quantisation (neuroclips.utils.images): what outputs hold and what validation scores."""

from __future__ import annotations

import numpy as np
import torch

from neuroclips.utils.images import quantize, to_uint8


def test_round_half_up_and_clip():
    x = torch.tensor([0.0, 1.0, 0.5 / 255, 1.5 / 255, 2.5 / 255, 0.49 / 255, -0.1, 1.2, 254.5 / 255])
    assert quantize(x).tolist() == [0, 255, 1, 2, 3, 0, 0, 255, 255]


def test_numpy_and_torch_give_the_same_bytes_as_the_written_formula():
    rng = np.random.default_rng(0)
    a = rng.uniform(-0.05, 1.05, (4, 3, 17, 19))
    a[0, 0, 0, :5] = np.array([0.5, 1.5, 2.5, 127.5, 253.5]) / 255  # ties
    expected = np.floor(np.clip(a.astype(np.float32) * np.float32(255) + np.float32(0.5), 0, 255)).astype(
        np.uint8
    )
    assert np.array_equal(to_uint8(a), expected)
    assert np.array_equal(to_uint8(torch.from_numpy(a)), expected)
    assert np.array_equal(quantize(torch.from_numpy(a)).numpy(), expected)
    assert to_uint8(a).dtype == np.uint8 and quantize(torch.from_numpy(a)).dtype == torch.uint8


def test_uint8_passes_through_and_frames_survive_a_round_trip():
    u = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert to_uint8(u) is u
    assert np.array_equal(to_uint8(u.astype(np.float32) / 255), u)
    t = torch.from_numpy(u)
    assert quantize(t) is t
