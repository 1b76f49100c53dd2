"""SR nets: shapes, MindEye2 key layout and paper-scale counts (meta device), and the recorded upstream outputs of
mindeye2-layout.md §8 reproduced with the deterministic fill (tolerance ~1e-6)."""

from __future__ import annotations

import pytest
import torch

from neuroclips.models.mixer import MixerBlock, ResidualMixer
from neuroclips.models.prior import BrainDiffusionPrior, PriorNetwork
from neuroclips.models.semantic import RidgeAdapters, SemanticBackbone
from neuroclips.models.text_projector import TextProjector, load_text_projector
from tests.sr_fill import deterministic_fill, sine_input


def paper_nets(voxels: int = 13447):
    with torch.device("meta"):
        ridge = RidgeAdapters(voxels, 4096)
        backbone = SemanticBackbone()
        prior = BrainDiffusionPrior(PriorNetwork(), timesteps=100, cond_drop_prob=0.2)
        clipproj = TextProjector(1664, 1280, weights_path="/does/not/matter/on/meta")
    return ridge, backbone, prior, clipproj


def count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize(
    "voxels, ridge_params", [(13447, 55_083_008), (14828, 60_739_584), (9114, 37_335_040)]
)
def test_paper_parameter_counts(voxels, ridge_params):
    ridge, backbone, prior, clipproj = paper_nets(voxels)
    assert count(ridge) == ridge_params == voxels * 4096 + 4096
    assert count(backbone) == 1_887_861_400
    assert count(backbone.mixer_blocks1) == 134_283_264 and count(backbone.mixer_blocks2) == 24
    assert count(backbone.backbone_linear) == 1_745_256_448 and count(backbone.clip_proj) == 8_321_664
    assert count(prior) == 259_865_216  # rotary freqs shared, counted once
    assert sum(p.numel() for p in prior.parameters() if p.requires_grad) == 259_865_200
    assert count(clipproj) == 2_129_920


def test_paper_state_dict_layout_has_the_150_keys():
    ridge, backbone, prior, clipproj = paper_nets()
    keys = {}
    for prefix, m in (
        ("ridge.", ridge),
        ("backbone.", backbone),
        ("diffusion_prior.", prior),
        ("clipproj.", clipproj),
    ):
        keys.update({prefix + k: tuple(v.shape) for k, v in m.state_dict().items()})
    assert len(keys) == 150
    assert keys["ridge.linears.0.weight"] == (4096, 13447)
    assert keys["backbone.mixer_blocks1.3.1.3.weight"] == (4096, 4096)
    assert keys["backbone.mixer_blocks2.0.1.0.weight"] == (1, 1)
    assert keys["backbone.backbone_linear.weight"] == (425984, 4096)
    assert keys["backbone.clip_proj.8.bias"] == (1664,)
    assert keys["diffusion_prior.noise_scheduler.posterior_mean_coef2"] == (100,)
    assert keys["diffusion_prior.net.to_time_embeds.0.1.net.1.0.weight"] == (3328, 3328)
    assert keys["diffusion_prior.net.causal_transformer.rel_pos_bias.relative_attention_bias.weight"] == (
        32,
        32,
    )
    assert keys["diffusion_prior.net.causal_transformer.layers.5.0.to_kv.weight"] == (104, 1664)
    assert keys["diffusion_prior.net.causal_transformer.layers.0.0.rotary_emb.freqs"] == (16,)
    assert keys["diffusion_prior.net.causal_transformer.layers.2.1.1.weight"] == (13312, 1664)
    assert keys["diffusion_prior.net.causal_transformer.layers.2.1.5.weight"] == (1664, 6656)
    assert keys["diffusion_prior.net.causal_transformer.project_out.weight"] == (1664, 1664)
    assert keys["clipproj.proj"] == (1664, 1280)
    assert sum(k.startswith("backbone.") for k in keys) == 62
    assert sum(k.startswith("diffusion_prior.") for k in keys) == 85


def test_shapes_and_mixer_api():
    ridge = RidgeAdapters([20, 30], out_features=16)
    backbone = SemanticBackbone(hidden=16, n_blocks=2, clip_tokens=4, clip_dim=8)
    h = ridge(torch.randn(3, 30), subject_index=1)
    assert h.shape == (3, 1, 16)
    tokens, clip_voxels = backbone(h)
    assert tokens.shape == clip_voxels.shape == (3, 4, 8)
    assert backbone(h.squeeze(1))[1].shape == (3, 4, 8)
    with pytest.raises(ValueError, match="expected 20 voxels"):
        ridge(torch.randn(3, 30), subject_index=0)
    one_linear = MixerBlock(8, second_linear=False)
    assert sorted(one_linear.state_dict()) == ["0.bias", "0.weight", "1.0.bias", "1.0.weight"]
    assert ResidualMixer(hidden=8, n_blocks=1)(torch.randn(2, 1, 8)).shape == (2, 1, 8)
    assert TextProjector(8, 5)(torch.randn(3, 4, 8)).shape == (3, 5)


def test_text_projector_loader(tmp_path):
    good = tmp_path / "proj.pth"
    torch.save({"proj": torch.ones(8, 5)}, good)
    assert torch.equal(TextProjector(8, 5, weights_path=str(good)).proj, torch.ones(8, 5))
    with pytest.raises(FileNotFoundError, match="weights_path"):
        TextProjector(8, 5, weights_path=str(tmp_path / "missing.pth"))
    torch.save({"proj": torch.ones(4, 5)}, good)
    with pytest.raises(ValueError, match=r"expected shape \(8, 5\)"):
        load_text_projector(TextProjector(8, 5), str(good))


def summary(t: torch.Tensor) -> tuple[float, float, list[float], float]:
    f = t.flatten()
    return t.mean().item(), t.std().item(), f[:4].tolist(), f[-1].item()


def assert_recorded(t, mean, std, first4, last, atol=2e-6):
    m, s, f4, lst = summary(t)
    assert m == pytest.approx(mean, abs=atol) and s == pytest.approx(std, abs=atol)
    assert f4 == pytest.approx(first4, abs=atol) and lst == pytest.approx(last, abs=atol)


@pytest.fixture(scope="module")
def tiny_prior():
    prior = BrainDiffusionPrior(
        PriorNetwork(dim=80, depth=2, dim_head=40, heads=2, num_tokens=4), timesteps=100, cond_drop_prob=0.2
    ).eval()
    deterministic_fill(prior)
    return prior, sine_input((2, 4, 80), 0.7), sine_input((2, 4, 80), 0.3), torch.tensor([3, 57])


def test_backbone_matches_recorded_upstream_outputs():
    backbone = SemanticBackbone(hidden=64, n_blocks=4, clip_tokens=8, clip_dim=16).eval()
    deterministic_fill(backbone)
    tokens, clip_voxels = backbone(sine_input((2, 1, 64), 0.0))
    assert_recorded(
        tokens, 0.00298458846, 0.120817145, [-0.0099418, -0.0224865, 0.0784242, 0.1622695], 0.0356755
    )
    assert_recorded(
        clip_voxels, -0.0469811521, 1.22637461, [1.7299668, 1.7526772, 1.5462470, 1.1376580], -0.9053555
    )


def test_prior_network_matches_recorded_upstream_outputs(tiny_prior):
    prior, image, brain, t = tiny_prior
    with torch.no_grad():
        assert_recorded(
            prior.net.to_time_embeds(t.float()),
            -0.00466068246,
            0.235251032,
            [0.3213183, -0.3212479, 0.1990262, -0.2033977],
            -0.1711601,
        )
        assert_recorded(
            prior.net(image, t, brain),
            0.000324414548,
            0.345131412,
            [0.5676132, -0.0868636, -0.5254527, 0.3419001],
            0.3213485,
        )
        assert_recorded(
            prior.net(image, t, brain, 1.0, 1.0),
            0.000533703109,
            0.560935661,
            [0.7727062, -0.3198088, -0.6174822, 0.6195132],
            0.7354111,
        )
        assert_recorded(
            prior.net.forward_with_cond_scale(image, t, brain, 3.0),
            -9.41607053e-05,
            0.660248597,
            [0.1574271, 0.3790267, -0.3413936, -0.2133260],
            -0.5067766,
            atol=5e-6,
        )
        assert torch.equal(
            prior.net.forward_with_cond_scale(image, t, brain, 1.0), prior.net(image, t, brain)
        )


def test_prior_seeded_training_and_sampling_match_recorded_upstream(tiny_prior):
    prior, image, brain, _ = tiny_prior
    torch.manual_seed(0)
    loss, pred = prior(brain, image)
    assert loss.item() == pytest.approx(0.7539891004562378, abs=2e-6)
    assert_recorded(
        pred, 0.000564800227, 0.502450534, [0.4685795, -0.1975148, -0.3727127, 0.3784166], 0.7335048
    )
    torch.manual_seed(0)
    assert_recorded(
        prior.p_sample_loop(brain, timesteps=20),
        0.000199639675,
        0.282522132,
        [0.4045314, -0.0843257, -0.3636027, 0.2608058],
        0.3469683,
    )
    torch.manual_seed(0)
    assert_recorded(
        prior.p_sample_loop(brain, timesteps=100),
        0.000228322583,
        0.282942201,
        [0.4184088, -0.0932622, -0.3731424, 0.2743726],
        0.3210207,
    )
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(
        prior.p_sample_loop(brain, 20, generator=g1), prior.p_sample_loop(brain, 20, generator=g2)
    )


def test_noise_schedule_buffers_match_recorded_sums():
    sched = BrainDiffusionPrior(
        PriorNetwork(dim=8, depth=1, dim_head=4, heads=2, num_tokens=2)
    ).noise_scheduler
    sums = {k: v.double().sum().item() for k, v in sched.state_dict().items()}
    recorded = {
        "betas": 7.87889656,
        "alphas_cumprod": 49.1077834,
        "alphas_cumprod_prev": 50.1077831,
        "sqrt_recip_alphas_cumprod": 2376.44409,
        "posterior_log_variance_clipped": -394.194076,
        "posterior_mean_coef2": 87.9601115,
        "p2_loss_weight": 100.0,
    }
    assert len(sums) == 13
    for k, v in recorded.items():
        assert sums[k] == pytest.approx(v, rel=1e-6), k
    assert sched.betas[-1].item() == pytest.approx(0.999000013, rel=1e-7)
