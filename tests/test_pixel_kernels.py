"""The fused CPU kernels (numba) give the values of the batched torch code they replace on CPU, and the kernels
still compile where no on-disk cache can be written."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from neuroclips.metrics import jit
from neuroclips.metrics.hue import hue_pcc, hue_pcc_torch
from neuroclips.metrics.pixcorr import pixcorr, pixcorr_torch
from neuroclips.metrics.psnr import frame_mse, squared_error_sums_torch
from neuroclips.metrics.ssim import _ssim_chunk, ssim, ssim_variants
from tests.test_eval_metrics import _varied_pairs


def _pairs(h: int = 48, w: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    gt, pred = _varied_pairs(h=h, w=w)
    to_t = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).contiguous()  # noqa: E731
    return to_t(gt), to_t(pred)


@pytest.mark.parametrize("variant", ["rgb255", "gray_gauss", "gray_gauss_columns"])
@pytest.mark.parametrize("size", [(48, 40), (11, 64)])
def test_ssim_kernel_equals_torch(variant, size):
    gt, pred = _pairs(*size)
    ref = torch.cat([_ssim_chunk(pred[i : i + 1], gt[i : i + 1], variant) for i in range(gt.shape[0])])
    # rgb255: the torch version takes the final ratio in float32, the kernel in float64
    tol = 1e-7 if variant == "rgb255" else 1e-13
    np.testing.assert_allclose(ssim(pred, gt, variant).numpy(), ref.numpy(), atol=tol, rtol=0)


def test_mse_kernel_is_exact():
    gt, pred = _pairs()
    exact = squared_error_sums_torch(pred, gt, torch.device("cpu")) / pred[0].numel()
    assert torch.equal(frame_mse(pred, gt), exact)


@pytest.mark.parametrize("quantize", [True, False])
def test_hue_pcc_kernel_equals_torch(quantize):
    gt, pred = _pairs()
    ours, ref = hue_pcc(pred, gt, quantize).numpy(), hue_pcc_torch(pred, gt, quantize).numpy()
    # the kernel decides constant hue maps exactly (NaN); torch can leave rounding noise there instead
    defined = ~np.isnan(ours)
    np.testing.assert_allclose(ours[defined], ref[defined], atol=1e-12, rtol=0)
    assert np.isnan(ref[~defined]).sum() + (np.abs(ref[~defined]) < 1e-9).sum() == (~defined).sum()


@pytest.mark.parametrize("size", [425, 30, None])
def test_pixcorr_kernel_equals_torch(size):
    gt, pred = _pairs()
    ours = pixcorr(pred, gt, size=size).numpy()
    ref = pixcorr_torch(pred, gt, size, 8, torch.device("cpu")).numpy()
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    np.testing.assert_allclose(ours, ref, atol=2e-6, rtol=0)  # torch: float32 resize and sums


@pytest.mark.parametrize("shape, size", [((256, 256), 425), ((40, 56), 32), ((9, 7), 20), ((16, 16), None)])
def test_pixcorr_without_resampling_equals_resample_then_corrcoef_in_float64(shape, size):
    """The CPU kernel's quadratic forms against the definition: resize each channel with torch's bilinear weights as
    matrices (float64), then np.corrcoef of all pixels."""
    from neuroclips.metrics.pixcorr import resize_matrix

    rng = np.random.default_rng(1)
    h, w = shape
    gt = rng.integers(0, 256, (5, 3, h, w), dtype=np.uint8)
    pred = np.clip(gt.astype(int) + rng.integers(-60, 60, gt.shape), 0, 255).astype(np.uint8)
    ry, rx = resize_matrix(h, size or h), resize_matrix(w, size or w)
    ref = [
        np.corrcoef((ry @ (p / 255.0) @ rx.T).ravel(), (ry @ (g / 255.0) @ rx.T).ravel())[0, 1]
        for p, g in zip(pred, gt)
    ]
    ours = pixcorr(torch.from_numpy(pred), torch.from_numpy(gt), size=size).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-12, rtol=0)


def test_kernels_compile_without_a_writable_cache(monkeypatch):
    real_njit = jit.numba.njit

    def no_cache_dir(*args, cache=False, **kwargs):
        if cache:  # what numba raises where neither __pycache__ nor a user cache dir is writable
            raise RuntimeError("cannot cache function 'f': no locator available for file 'f.py'")
        return real_njit(*args, **kwargs)

    monkeypatch.setattr(jit.numba, "njit", no_cache_dir)

    @jit.cpu_kernel
    def double(x, out):  # pragma: no cover - compiled
        for i in jit.numba.prange(x.size):
            out[i] = 2 * x[i]

    out = np.empty(3)
    double(np.arange(3.0), out)
    assert out.tolist() == [0.0, 2.0, 4.0]


def test_ssim_variants_at_once_equal_one_at_a_time():
    gt, pred = _pairs()
    both = ssim_variants(pred, gt, ["gray_gauss_columns", "rgb255", "gray_gauss"])
    assert list(both) == ["gray_gauss_columns", "rgb255", "gray_gauss"]
    for variant, values in both.items():
        assert torch.equal(values, ssim(pred, gt, variant))


def test_a_cpu_metric_leaves_torch_thread_count_as_the_process_set_it():
    # numba's OpenMP pool, started by a process's first CPU metric, resets the OpenMP thread count torch shares once
    # torch's own pool runs: a fresh process (once per process) that chose one thread must still have one after it
    code = (
        "import numpy as np, torch\n"
        "torch.set_num_threads(1)\n"
        "x = torch.randn(256, 256); (x @ x).sum()\n"  # torch's own OpenMP pool runs first, as in a fit
        "from neuroclips.metrics.pixcorr import pixcorr\n"
        "from neuroclips.metrics.ssim import ssim\n"
        "frames = (np.random.default_rng(0).random((4, 3, 16, 16)) * 255).astype(np.uint8)\n"
        "pixcorr(frames, frames[::-1].copy()); ssim(frames, frames[::-1].copy(), 'rgb255')\n"
        "print(torch.get_num_threads())\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "2", "NUMBA_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "1", done.stdout + done.stderr
