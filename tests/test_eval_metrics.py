"""Pixel and embedding metrics against scikit-image / numpy references, and the N-way protocol against a plain loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from skimage.color import rgb2gray
from skimage.metrics import peak_signal_noise_ratio as sk_psnr
from skimage.metrics import structural_similarity as sk_ssim

from neuroclips.metrics import (
    FramePSNR,
    FrameSSIM,
    clip_pcc_per_clip,
    clip_pcc_score,
    nway_topk,
    nway_topk_frames,
    retrieval_top1,
)
from neuroclips.metrics.clip_pcc import adjacent_pair_similarity
from neuroclips.metrics.pixcorr import pixcorr
from neuroclips.metrics.psnr import psnr
from neuroclips.metrics.ssim import ssim


def _varied_pairs(seed: int = 0, h: int = 48, w: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """(gt, pred) channel-last uint8 stacks: noise, smooth, saturated, constant, identical, shifted, inverted."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    smooth = np.clip(gaussian_filter(rng.normal(128, 80, (h, w, 3)), (3, 3, 0)) * 2 - 128, 0, 255).astype(
        np.uint8
    )
    gts, preds = [], []
    for g in (noise, smooth):
        gts += [g, g, g, g, g]
        preds += [
            np.clip(g.astype(int) + rng.integers(-50, 50, g.shape), 0, 255).astype(np.uint8),
            g.copy(),
            255 - g,
            np.roll(g, 3, axis=1),
            np.full_like(g, 200),
        ]
    gts.append(np.zeros((h, w, 3), np.uint8))
    preds.append(np.full((h, w, 3), 7, np.uint8))
    return np.stack(gts), np.stack(preds)


def _sk_ssim(variant: str, g: np.ndarray, p: np.ndarray) -> float:
    if variant == "rgb255":
        return sk_ssim(g, p, data_range=255, channel_axis=-1)
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
    if variant == "gray_gauss":
        return sk_ssim(rgb2gray(g), rgb2gray(p), **kw)
    return sk_ssim(rgb2gray(g), rgb2gray(p), channel_axis=-1, **kw)  # NEURONS' call on 2-D gray images


@pytest.mark.parametrize("variant", ["rgb255", "gray_gauss", "gray_gauss_columns"])
@pytest.mark.parametrize("size", [(48, 40), (11, 64), (32, 64)])
def test_ssim_equals_scikit_image(variant, size):
    gt, pred = _varied_pairs(h=size[0], w=size[1])
    ours = ssim(pred, gt, variant=variant).numpy()
    ref = np.array([_sk_ssim(variant, g, p) for g, p in zip(gt, pred)])
    # CPU: the fused float64 kernels (the torch version's float32 rgb255 ratio is within 1e-7: test_pixel_kernels)
    np.testing.assert_allclose(ours, ref, atol=1e-10, rtol=0)


def test_ssim_accepts_channel_first_and_rejects_bad_input():
    gt, pred = _varied_pairs()
    first = ssim(torch.from_numpy(pred).permute(0, 3, 1, 2), torch.from_numpy(gt).permute(0, 3, 1, 2))
    np.testing.assert_allclose(first.numpy(), ssim(pred, gt).numpy())
    with pytest.raises(TypeError, match="uint8"):
        ssim(pred.astype(np.float32), gt)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(pred[:, :8, :8], gt[:, :8, :8], variant="gray_gauss")


@pytest.mark.parametrize("variant", ["skimage", "mind_animator"])
@pytest.mark.parametrize("size", [(48, 40), (32, 64)])  # 32x64x3 takes the float32 exact-row path
def test_psnr_equals_scikit_image_and_mind_animator(variant, size):
    gt, pred = _varied_pairs(h=size[0], w=size[1])
    ours = psnr(pred, gt, variant=variant).numpy()
    for o, g, p in zip(ours, gt, pred):
        mse = np.mean((g / 1.0 - p / 1.0) ** 2)
        if mse == 0:
            assert o == (np.inf if variant == "skimage" else 100.0)
            continue
        ref = sk_psnr(g, p, data_range=255) if variant == "skimage" else 20 * np.log10(255 / np.sqrt(mse))
        assert abs(o - ref) < 1e-10


def test_torchmetrics_wrappers_batch_videos():
    gt, pred = _varied_pairs()
    g = torch.from_numpy(gt).permute(0, 3, 1, 2).reshape(1, -1, 3, *gt.shape[1:3])
    p = torch.from_numpy(pred).permute(0, 3, 1, 2).reshape(1, -1, 3, *gt.shape[1:3])
    m = FrameSSIM("gray_gauss")
    m.update(p[:, :5], g[:, :5])
    m.update(p[:, 5:], g[:, 5:])
    np.testing.assert_allclose(m.compute().numpy(), ssim(pred, gt, "gray_gauss").numpy())
    q = FramePSNR()
    q.update(p, g)
    assert q.compute().shape == (len(gt),)


# ------------------------------------------------------------------------------------------------ N-way top-K
def _reference_nway(gt_logits, pred_logits, n_way, top_k, num_trials, num_gt, seed):
    """A plain loop of the MinD-Video protocol (eval_metrics.n_way_top_k_acc), seeded numpy global RNG
    (``seed=None`` continues the current global stream).

    Ties are broken against the GT candidate (stable ascending sort with the GT listed first)."""
    if seed is not None:
        np.random.seed(seed)
    accs, stds = [], []
    for g_log, p_log in zip(gt_logits, pred_logits):
        class_id = g_log.argsort(descending=False, stable=True)[-num_gt:]
        pred = p_log.softmax(-1)
        pick_range = [i for i in np.arange(len(pred)) if i not in class_id]
        corrects = 0
        for _ in range(num_trials):
            idxs_picked = np.random.choice(pick_range, n_way - 1, replace=False)
            for gt_id in class_id:
                picked = torch.cat([pred[gt_id].unsqueeze(0), pred[idxs_picked]])
                if 0 in picked.argsort(descending=False, stable=True)[-top_k:]:
                    corrects += 1
                    break
        p = corrects / num_trials
        accs.append(p)
        stds.append(np.sqrt(p * (1 - p) / num_trials))
    return np.array(accs), np.array(stds)


def _logits(seed=0, b=6, c=40, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    gt = torch.randn(b, c, generator=g)
    pred = 0.7 * gt + torch.randn(b, c, generator=g)
    pred[0] = gt[0]  # a perfect reconstruction
    pred[1] = torch.round(pred[1])  # many ties among scores
    return gt.to(dtype), pred.to(dtype)


@pytest.mark.parametrize("protocol,num_gt", [("mindvideo", 3), ("strict", 1)])
@pytest.mark.parametrize("n_way,top_k", [(2, 1), (10, 1), (10, 3)])
def test_nway_equals_reference_loop(protocol, num_gt, n_way, top_k):
    gt, pred = _logits()
    ours = nway_topk(
        gt, pred, n_way=n_way, top_k=top_k, num_trials=30, protocol=protocol, sampler="reference", rng=7
    )
    acc, std = _reference_nway(gt, pred, n_way, top_k, 30, num_gt, seed=7)
    np.testing.assert_array_equal(ours.accuracy, acc)
    np.testing.assert_allclose(ours.std, std)
    assert ours.mean == pytest.approx(acc.mean()) and ours.mean_std == pytest.approx(std.mean())


def test_nway_fp16_logits_and_perfect_reconstruction():
    gt, pred = _logits(dtype=torch.float16)
    ours = nway_topk(gt, pred, n_way=2, num_trials=20, rng=3)
    acc, _ = _reference_nway(gt, pred, 2, 1, 20, 3, seed=3)
    np.testing.assert_array_equal(ours.accuracy, acc)
    assert ours.accuracy[0] == 1.0


def test_nway_exact_and_vectorized_samplers_agree_with_many_trials():
    gt, pred = _logits(b=4, c=60)
    exact = nway_topk(gt, pred, n_way=5, protocol="strict", sampler="exact")
    sampled = nway_topk(gt, pred, n_way=5, protocol="strict", sampler="reference", num_trials=4000, rng=0)
    vector = nway_topk(gt, pred, n_way=5, protocol="strict", sampler="vectorized", num_trials=4000, rng=0)
    np.testing.assert_allclose(sampled.accuracy, exact.accuracy, atol=0.03)
    np.testing.assert_allclose(vector.accuracy, exact.accuracy, atol=0.03)
    top3 = nway_topk(gt, pred, n_way=5, protocol="mindvideo", sampler="exact")
    assert (
        top3.accuracy[0] == 1.0 and top3.mean >= exact.mean
    )  # the lenient protocol scores higher on average


def test_frame_level_nway_continues_one_stream_over_positions():
    gt, pred = _logits(b=5, c=30)
    gt_f = torch.stack([gt, gt.flip(0)], dim=1)  # (clips, 2 positions, classes)
    pred_f = torch.stack([pred, pred.flip(0)], dim=1)
    value, std, acc = nway_topk_frames(gt_f, pred_f, n_way=4, num_trials=15, seed=11)
    # the reference runner: np.random.seed once, then img_classify_metric for position 0, then position 1
    np.random.seed(11)
    expected = []
    for pos in range(2):
        a, s = _reference_nway(gt_f[:, pos], pred_f[:, pos], 4, 1, 15, 3, seed=None)
        expected.append((a, s))
    np.testing.assert_array_equal(acc, np.stack([e[0] for e in expected], 1))
    assert value == pytest.approx(np.mean([e[0].mean() for e in expected]))
    assert std == pytest.approx(np.mean([e[1].mean() for e in expected]))


def test_nway_rejects_bad_arguments():
    gt, pred = _logits()
    with pytest.raises(ValueError, match="protocol"):
        nway_topk(gt, pred, n_way=2, protocol="loose")
    with pytest.raises(ValueError, match="n_way"):
        nway_topk(gt, pred, n_way=39, protocol="mindvideo")


# ------------------------------------------------------------------------------------------------ CLIP-pcc etc.
def test_clip_pcc_hand_made_embeddings():
    e = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]], [[1.0, 1.0], [1.0, 1.0], [-1.0, -1.0]]])
    np.testing.assert_allclose(adjacent_pair_similarity(e).numpy(), [[0.0, 0.0], [1.0, -1.0]], atol=1e-12)
    np.testing.assert_allclose(clip_pcc_per_clip(e, "adjacent").numpy(), [0.0, 0.0], atol=1e-12)
    # all ordered off-diagonal pairs: clip 0 -> (0 + 1 + 0) * 2 / 6; clip 1 -> (1 - 1 - 1) * 2 / 6
    np.testing.assert_allclose(clip_pcc_per_clip(e, "all_pairs").numpy(), [1 / 3, -1 / 3], atol=1e-12)
    # reported numbers: adjacent over all 4 pairs (0, 0, 1, -1); all_pairs over the 2 clips
    assert clip_pcc_score(e, "adjacent") == pytest.approx((0.0, np.std([0, 0, 1, -1])))
    assert clip_pcc_score(e, "all_pairs") == pytest.approx((0.0, 1 / 3))
    gated = clip_pcc_per_clip(e, "all_pairs", gate_scores=torch.tensor([0.9, 0.6], dtype=torch.float64))
    np.testing.assert_allclose(gated.numpy(), [1 / 3, 0.0], atol=1e-12)


def test_pixcorr_against_numpy():
    gt, pred = _varied_pairs()
    keep = [0, 1, 2, 3]  # frames with non-constant pixels
    ours = pixcorr(pred[keep], gt[keep], size=None).numpy()
    ref = [
        np.corrcoef(g.transpose(2, 0, 1).ravel() / 255.0, p.transpose(2, 0, 1).ravel() / 255.0)[0, 1]
        for g, p in zip(gt[keep], pred[keep])
    ]
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    assert pixcorr(gt[:1], gt[:1]).item() == pytest.approx(1.0)


def test_retrieval_top1():
    a = torch.eye(6)
    assert retrieval_top1(a, a, pool_size=3).forward == 1.0
    shuffled = a[[1, 0, 2, 3, 4, 5]]
    r = retrieval_top1(a, shuffled, pool_size=None)
    assert r.forward == pytest.approx(4 / 6) and r.backward == pytest.approx(4 / 6) and r.blocks == 1
