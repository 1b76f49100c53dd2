"""Generation building blocks: per-clip seeds, 6->16 interpolation, α modes, fusion decisions, caption bank."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler

from neuroclips.data.schema import SchemaError
from neuroclips.generation.fusion import decide_links, fusion_groups, neighbour_pairs, train_pair_classifier
from neuroclips.generation.guidance import initial_latents, plan_alpha, sampling_scheduler
from neuroclips.generation.interpolation import interpolate_frames, interpolation_matrix
from neuroclips.models.captioning import NearestCaptionBank, load_caption_bank
from neuroclips.models.video_generator_configs import VIDEO_SCHEDULER
from neuroclips.utils.seeding import clip_generators, clip_seed, randn_per_clip


def reference_ddim() -> DDIMScheduler:
    return DDIMScheduler(**VIDEO_SCHEDULER)


# ---- seeds ---------------------------------------------------------------------------------------------------
def test_clip_seeds_depend_on_seed_clip_and_purpose_only():
    assert clip_seed(1, 5, "a") == clip_seed(1, 5, "a")
    assert len({clip_seed(1, 5, "a"), clip_seed(1, 6, "a"), clip_seed(1, 5, "b"), clip_seed(2, 5, "a")}) == 4
    assert clip_seed(1, 5, "a", per_clip=False) == clip_seed(1, 9, "a", per_clip=False)  # reference: one seed
    assert 0 <= clip_seed(12099779162349365895, 3, "x") < 2**63
    batch = randn_per_clip((2, 3), clip_generators(7, [4, 9], "n"))
    alone = randn_per_clip((2, 3), clip_generators(7, [9], "n"))
    assert torch.equal(batch[1], alone[0])  # a clip's draw does not depend on its batch neighbours


# ---- interpolation -------------------------------------------------------------------------------------------
def test_interpolation_weights_are_the_reference_ones():
    m = interpolation_matrix(6)
    assert m.shape == (16, 6)
    torch.testing.assert_close(m.sum(1), torch.ones(16))
    assert m[0].tolist() == [1, 0, 0, 0, 0, 0]
    for i in range(5):  # rows 1+3i .. 3+3i: 0.67/0.33, 0.33/0.67, then frame i+1 exactly
        torch.testing.assert_close(m[1 + 3 * i, i : i + 2], torch.tensor([0.67, 0.33]))
        torch.testing.assert_close(m[2 + 3 * i, i : i + 2], torch.tensor([0.33, 0.67]))
        assert m[3 + 3 * i, i + 1] == 1 and m[3 + 3 * i].sum() == 1
    torch.testing.assert_close(interpolation_matrix(6, "exact")[1, :2], torch.tensor([2 / 3, 1 / 3]))
    frames = torch.arange(6.0).view(1, 6, 1, 1, 1).expand(2, 6, 3, 4, 4)
    out = interpolate_frames(frames)
    assert out.shape == (2, 16, 3, 4, 4)
    torch.testing.assert_close(out[0, :4, 0, 0, 0], torch.tensor([0.0, 0.33, 0.67, 1.0]))


# ---- α guidance ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["code_t0", "paper_theta", "sdedit", "none"])
def test_alpha_modes_give_the_formula_signal_weight(mode):
    sched = reference_ddim()
    ab = sched.alphas_cumprod.double()
    plan = plan_alpha(sched, 25, mode, theta=0.3, strength=0.3)
    expected = {
        "code_t0": (961, 25, ab[961].sqrt()),  # first DDIM timestep; √ᾱ ≈ 0.050
        "paper_theta": (961, 25, (ab[999] / ab[299]).sqrt()),  # Eq. 5, ϑT = 299; ≈ 0.058
        "sdedit": (241, 7, ab[241].sqrt()),  # last ⌊25·0.3⌋ = 7 steps
        "none": (961, 25, torch.tensor(0.0)),
    }[mode]
    assert (plan.start_timestep, plan.keep_steps) == expected[:2]
    assert plan.signal_weight == pytest.approx(float(expected[2]), rel=1e-6)
    assert plan.signal_weight**2 + plan.noise_weight**2 == pytest.approx(1.0)
    # measured on z_T: the coefficient of the blurry latent, with ε held fixed
    z, eps = (
        torch.randn(1, 4, 16, 8, 8, dtype=torch.float64),
        torch.randn(1, 4, 16, 8, 8, dtype=torch.float64),
    )
    if mode != "none":
        slope = (initial_latents(plan, 2 * z, eps) - initial_latents(plan, z, eps)) / z
        torch.testing.assert_close(slope, torch.full_like(z, plan.signal_weight))
    else:
        assert torch.equal(initial_latents(plan, None, eps), eps)
    if mode == "code_t0":  # equals the reference's scheduler.add_noise at t*
        ref = sched.add_noise(z.float(), eps.float(), torch.tensor([961]))
        torch.testing.assert_close(initial_latents(plan, z.float(), eps.float()), ref, atol=1e-6, rtol=1e-5)
    assert plan_alpha(sched, 25, "code_t0").signal_weight == pytest.approx(0.0498, abs=1e-4)
    assert plan_alpha(sched, 25, "paper_theta").signal_weight == pytest.approx(0.058, abs=1e-3)


def test_sdedit_scheduler_keeps_only_the_last_steps_unchanged():
    full = reference_ddim()
    plan = plan_alpha(full, 25, "sdedit", strength=0.3)
    trunc = sampling_scheduler(full, plan)
    trunc.set_timesteps(25)
    full.set_timesteps(25)
    assert trunc.timesteps.tolist() == full.timesteps.tolist()[-7:] == [241, 201, 161, 121, 81, 41, 1]
    x, eps = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    torch.testing.assert_close(trunc.step(eps, 241, x).prev_sample, full.step(eps, 241, x).prev_sample)
    assert sampling_scheduler(full, plan_alpha(full, 25, "code_t0")) is full
    with pytest.raises(ValueError, match="alpha_mode"):
        plan_alpha(full, 25, "bogus")


# ---- fusion decisions ----------------------------------------------------------------------------------------
def test_fusion_pairs_links_and_groups():
    assert neighbour_pairs([3, 4, 5, 7, 8], [0, 0, 1, 1, 1]) == [(0, 1), (3, 4)]  # 4->5 crosses a segment
    e = torch.nn.functional.normalize(torch.tensor([[1.0, 0], [1, 0.01], [0, 1], [0, 1]]), dim=-1)
    linked, scores = decide_links(e, [(0, 1), (1, 2), (2, 3)], "cosine", 0.9)
    assert linked == [True, False, True] and scores[0] > 0.99
    assert fusion_groups(4, {0: True, 1: False, 2: True}) == [[0, 1], [2, 3]]
    assert fusion_groups(3, {}) == [[0], [1], [2]]
    assert fusion_groups(5, dict.fromkeys(range(4), True), max_clips=3) == [[0, 1, 2], [3, 4]]


def test_fusion_mlp_learns_same_class_pairs():
    g = torch.Generator().manual_seed(0)
    classes = torch.repeat_interleave(torch.arange(20), 4)
    centers = torch.nn.functional.normalize(torch.randn(20, 16, generator=g), dim=-1)
    emb = torch.nn.functional.normalize(centers[classes] + 0.05 * torch.randn(80, 16, generator=g), dim=-1)
    same = classes[1:] == classes[:-1]
    clf = train_pair_classifier(emb, same, epochs=150)
    linked, _ = decide_links(emb, [(i, i + 1) for i in range(79)], "mlp", classifier=clf)
    assert (torch.tensor(linked) == same).float().mean() > 0.9


def test_fusion_settings_reach_the_task_whole_and_refuse_unknown_or_missing_keys():
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    import neuroclips.utils.resolvers  # noqa: F401
    from neuroclips.errors import ConfigError
    from neuroclips.tasks.fusion import FusionOptions
    from tests.conftest import REPO

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["stage=fusion", "fusion.threshold=-1", "fusion.max_clips=null"])
    values = OmegaConf.to_container(cfg.task.fusion, resolve=True)
    assert values == OmegaConf.to_container(cfg.fusion, resolve=True)  # the block, whole
    options = FusionOptions.of(values)
    assert (options.threshold, options.max_clips, options.decision) == (-1, None, "cosine")
    with pytest.raises(
        ConfigError, match=r"^conf/stage/fusion.yaml: the fusion settings are .* unknown \['treshold'\]"
    ):
        FusionOptions.of({**values, "treshold": 0.5})
    with pytest.raises(ConfigError, match=r"missing \['mlp_epochs'\]"):
        FusionOptions.of({k: v for k, v in values.items() if k != "mlp_epochs"})


# ---- nearest-caption bank ------------------------------------------------------------------------------------
def test_nearest_caption_bank(tmp_path):
    emb = torch.eye(3, 8)
    bank = NearestCaptionBank(emb, ["a", "b", "c"])
    tokens = emb[[2, 0]].unsqueeze(1).repeat(1, 5, 1) + 0.01
    assert bank(tokens) == ["c", "a"]
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as f:
        f["targets/clip_tokens/train"] = np.stack(
            [np.tile(np.eye(3, 8)[i], (2, 4, 1)) for i in range(3)]
        ).astype("f2")
        f.create_dataset("stimuli/train/captions", data=["x", "y", "z"], dtype=h5py.string_dtype())
    assert load_caption_bank(str(path))(tokens) == ["z", "x"]
    with pytest.raises(SchemaError, match="stage=targets.*keyframe.caption_source"):
        load_caption_bank(str(path), target="missing")
