"""MSE, Hue-pcc, EPE and VIFI-score on inputs with known answers; the RAFT and ViFi-CLIP paths for shapes."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
import torch

from neuroclips.evaluation.flow_model import build_flow_estimator, clip_epe
from neuroclips.evaluation.vifi_clip import _strip, build_vifi_clip, vifi_score
from neuroclips.metrics.flow import endpoint_error
from neuroclips.metrics.hue import hue_pcc, rgb_to_hue
from neuroclips.metrics.mse import mse
from neuroclips.utils.weights import MissingWeightsError


def _frames(seed=0, n=3, h=16, w=20):
    return torch.randint(
        0, 256, (n, 3, h, w), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8
    )


def test_mse_on_known_differences():
    a = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    b = a.clone()
    b[0] = 255  # every pixel off by the full range: 1 on the [0, 1] scale
    b[1, :, :2] = 51  # half the pixels off by 0.2
    np.testing.assert_allclose(mse(b, a).numpy(), [1.0, 0.5 * 0.04], rtol=1e-12)
    assert mse(b, a, scale=255).numpy()[0] == pytest.approx(255.0**2)
    assert mse(a, a).abs().max() == 0


def test_hue_matches_colorsys_and_pcc_known_answers():
    x = _frames(n=2)
    ours = rgb_to_hue(x, quantize=False).numpy()
    px = x.permute(0, 2, 3, 1).reshape(-1, 3).numpy() / 255.0
    ref = np.array([colorsys.rgb_to_hsv(*p)[0] * 360.0 for p in px]).reshape(ours.shape)
    np.testing.assert_allclose(ours, ref, atol=1e-9)
    q = rgb_to_hue(
        x
    ).numpy()  # OpenCV 8-bit units: integers 0..179, within half a unit of degrees / 2 (circular)
    assert q.max() <= 179 and np.array_equal(q, np.round(q))
    assert (np.abs((q - ref / 2 + 90) % 180 - 90) <= 0.5 + 1e-9).all()
    np.testing.assert_allclose(hue_pcc(x, x).numpy(), 1.0, atol=1e-12)  # identical clips
    # a pure-colour frame whose hue runs 0..120 degrees, and the same frame turned by +100 degrees: r = 1 exactly
    hue = np.linspace(0, 120, 64).reshape(8, 8)
    a = np.array([colorsys.hsv_to_rgb(h / 360, 1, 1) for h in hue.ravel()]).reshape(8, 8, 3)
    b = np.array([colorsys.hsv_to_rgb((h + 100) / 360, 1, 1) for h in hue.ravel()]).reshape(8, 8, 3)
    ta, tb = (torch.from_numpy(np.round(v * 255).astype(np.uint8)).permute(2, 0, 1)[None] for v in (a, b))
    assert hue_pcc(tb, ta, quantize=False).item() == pytest.approx(1.0, abs=1e-3)
    grey = torch.full((1, 3, 8, 8), 128, dtype=torch.uint8)
    assert torch.isnan(hue_pcc(grey, ta)).all()  # constant hue: undefined


def test_endpoint_error_on_known_flows():
    zero = torch.zeros(2, 2, 5, 6)
    shift = zero.clone()
    shift[:, 0], shift[:, 1] = 3.0, 4.0  # every pixel moves (3, 4): end-point error 5
    np.testing.assert_allclose(endpoint_error(shift, zero).numpy(), [5.0, 5.0])
    half = zero.clone()
    half[:, 0, :, :3] = 2.0  # half the pixels move 2 px
    np.testing.assert_allclose(endpoint_error(half, zero).numpy(), [1.0, 1.0])
    with pytest.raises(ValueError, match="EPE"):
        endpoint_error(zero, zero[:, :1])


def test_raft_path_shapes_identical_clips_and_local_weights(tmp_path):
    est = build_flow_estimator("tiny", size=32, num_flow_updates=2)
    g = torch.Generator().manual_seed(0)
    clips = torch.randint(0, 256, (2, 3, 3, 32, 32), generator=g, dtype=torch.uint8)
    flows = est(clips)
    assert flows.shape == (2, 2, 2, 32, 32) and torch.isfinite(flows).all()
    epe = clip_epe(est, clips, torch.roll(clips, 4, dims=-1))
    assert epe.shape == (2, 2) and torch.isfinite(epe).all() and (epe > 0).all()
    assert clip_epe(est, clips, clips).abs().max() == 0  # identical clips: identical flow
    # paper path: torchvision's raft_small/raft_large with a local state dict (here a random raft_small's)
    from torchvision.models.optical_flow import raft_small

    torch.manual_seed(0)
    torch.save(raft_small(weights=None).state_dict(), tmp_path / "raft.pth")
    local = build_flow_estimator(
        "local", str(tmp_path / "raft.pth"), arch="small", size=128, num_flow_updates=1
    )
    again = build_flow_estimator(
        "local", str(tmp_path / "raft.pth"), arch="small", size=128, num_flow_updates=1
    )
    one = clips[:1, :2]
    assert local(one).shape == (1, 1, 2, 128, 128)
    torch.testing.assert_close(local(one), again(one))
    with pytest.raises(MissingWeightsError, match="scale.eval.models.flow.path"):
        build_flow_estimator("local", str(tmp_path / "none.pth"))
    with pytest.raises(ValueError, match="multiple of 8"):
        build_flow_estimator("local", str(tmp_path / "raft.pth"), arch="small", size=64)


def test_vifi_score_identical_and_checkpoint_keys():
    emb = build_vifi_clip("tiny")
    clips = torch.randint(
        0, 256, (3, 4, 3, 40, 48), generator=torch.Generator().manual_seed(1), dtype=torch.uint8
    )
    np.testing.assert_allclose(vifi_score(emb, clips, clips).numpy(), 1.0, atol=1e-6)
    s = vifi_score(emb, clips, clips.flip(0))
    assert s.shape == (3,) and (s <= 1 + 1e-6).all()
    # a ViFi-CLIP checkpoint holds the whole model: only image_encoder.* reaches the vision tower
    state = {
        "module.image_encoder.conv1.weight": 1,
        "module.text_encoder.x": 2,
        "module.prompt_learner.ctx": 3,
    }
    assert _strip(state) == {"conv1.weight": 1}


def test_paper_flow_and_vifi_architectures_on_meta():
    with torch.device("meta"):
        raft = build_flow_estimator("random", arch="large")
        vifi = build_vifi_clip("random")
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert 5_200_000 < count(raft) < 5_300_000  # torchvision raft_large (5.26 M)
    assert 86_000_000 < count(vifi) < 86_500_000  # CLIP ViT-B/16 vision tower + projection to 512


def test_vifi_checkpoints_are_read_by_the_shared_reader_weights_only_unless_trusted(tmp_path):
    """ViFi-CLIP's .pth keeps its weights under "model" beside a pickled training config: the shared reader unwraps
    it, and unpickles the extras only when the user trusts the file (as for every other checkpoint)."""
    import types

    from neuroclips.models.generator_loading import load_checkpoint_dict
    from neuroclips.utils.weights import UnreadableWeightsError

    weights = {"image_encoder.proj": torch.ones(2, 2)}
    path = tmp_path / "vifi.pth"
    torch.save({"model": weights, "config": types.SimpleNamespace(arch="ViT-B/16")}, path)
    with pytest.raises(UnreadableWeightsError, match=r"set scale\.eval\.models\.vifi\.trust_pickle=true"):
        load_checkpoint_dict(
            path, "scale.eval.models.vifi.path", False, "scale.eval.models.vifi.trust_pickle"
        )
    state = load_checkpoint_dict(path, "scale.eval.models.vifi.path", trust_pickle=True)
    assert _strip(state).keys() == {"proj"} and torch.equal(
        _strip(state)["proj"], weights["image_encoder.proj"]
    )
