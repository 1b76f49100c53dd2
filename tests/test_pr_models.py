"""Perceptual Reconstructor modules: shapes, the temporal window, paper-scale counts (meta), loaders."""

from __future__ import annotations

import json

import pytest
import torch

from neuroclips.models.convnext_teacher import ConvNeXtTeacher, TeacherAugmentation, load_convnext_teacher
from neuroclips.models.frozen_vae import VaeLatentEncoder, build_autoencoder_kl, load_vae_latent_encoder
from neuroclips.models.inception import InceptionExtension
from neuroclips.models.perceptual import (
    _REFERENCE_PREFIXES,
    PerceptualNet,
    reference_state_dict_to_ours,
    resolve_frames_per_window,
)
from neuroclips.models.video_decoder import TemporalVideoDecoder

TINY_NET = dict(
    voxels=50,
    inception_hidden=8,
    hidden=16,
    n_blocks=2,
    low_level_channels=8,
    low_level_size=2,
    aux_dim=8,
    decoder_channels=(8, 8, 8),
    decoder_norm_groups=4,
)


def tiny_net() -> PerceptualNet:
    torch.manual_seed(0)
    return PerceptualNet(**TINY_NET).eval()


def test_inception_extension_is_clip_major():
    torch.manual_seed(0)
    inception = InceptionExtension(voxels=20, hidden=8, frames_per_clip=6).eval()
    x = torch.randn(3, 20)
    out = inception(x)
    assert out.shape == (18, 20)
    changed = x.clone()
    changed[1] += 1.0
    out2 = inception(changed)
    assert torch.equal(out[:6], out2[:6]) and torch.equal(out[12:], out2[12:])  # rows 6..11 belong to clip 1
    assert not torch.equal(out[6:12], out2[6:12])
    with pytest.raises(ValueError, match=r"\(B, 20\)"):
        inception(torch.randn(3, 21))


def test_perceptual_net_shapes():
    out = tiny_net()(torch.randn(3, 50), "clip")
    assert out["latents"].shape == (3, 6, 4, 8, 8)
    assert out["aux_tokens"].shape == (3, 6, 4, 8)


def test_resolve_frames_per_window():
    assert resolve_frames_per_window("clip", 5, 6) == 6
    assert resolve_frames_per_window("batch", 5, 6) == 30
    assert resolve_frames_per_window(2, 4, 6) == 12
    with pytest.raises(ValueError, match="does not divide"):
        resolve_frames_per_window(3, 4, 6)
    with pytest.raises(ValueError, match="temporal_window"):
        resolve_frames_per_window("movie", 4, 6)


@pytest.mark.parametrize("window", ["clip", "batch"])
def test_temporal_window_scope(window):
    """With `clip` a clip's latents ignore the other clips of the batch; with `batch` they do not."""
    net = tiny_net()
    with torch.no_grad():
        for name, weight in net.decoder.named_parameters():
            if name.endswith(("weights.0", "weights.1")):
                weight.fill_(0.5)  # at init (1.0) the temporal branch is switched off
        x = torch.randn(3, 50)
        y = x.clone()
        y[2] = torch.randn(50)
        a = net(x, window)["latents"][0]
        b = net(y, window)["latents"][0]
    if window == "clip":
        torch.testing.assert_close(a, b)
    else:
        assert (a - b).abs().max() > 1e-6


def test_temporal_attention_changes_frames_within_a_clip():
    net = tiny_net()
    with torch.no_grad():
        for name, weight in net.decoder.named_parameters():
            if "weights" in name:
                weight.fill_(0.0)
        x = torch.randn(1, 50)
        base = net(x, "clip")["latents"]
        # perturb only frame 5's pseudo-fMRI path by perturbing its low-level maps via a hook
        handle = net.low_level.register_forward_hook(
            lambda m, i, o: o + torch.eye(6)[5].reshape(6, 1, 1, 1) * 3.0
        )
        moved = net(x, "clip")["latents"]
        handle.remove()
    assert (moved[0, 0] - base[0, 0]).abs().max() > 1e-6  # frame 0 sees frame 5 through temporal attention


def test_paper_scale_counts_on_meta():
    with torch.device("meta"):
        net = PerceptualNet(voxels=13447)
    counts = {name: sum(p.numel() for p in child.parameters()) for name, child in net.named_children()}
    assert counts["inception"] == 24_244_270
    assert counts["ridge"] == 55_083_008
    assert counts["decoder"] == 2_166_443
    assert counts["backbone"] + counts["low_level"] + counts["aux_head"] + counts["decoder"] == 149_857_667
    assert sum(counts.values()) == 229_184_945  # mindeye2-layout.md §9
    assert net.latent_size == 28


def test_decoder_upsampling_and_norm_check():
    decoder = TemporalVideoDecoder(in_channels=8, block_out_channels=(8, 16), norm_groups=4)
    assert decoder(torch.randn(6, 8, 3, 3), 6).shape == (6, 4, 6, 6)
    with pytest.raises(ValueError, match="norm_groups"):
        TemporalVideoDecoder(block_out_channels=(8, 12), norm_groups=8)


def test_reference_keys_map_onto_ours():
    net = tiny_net()
    ours = net.state_dict()
    inverse = {new: old for old, new in _REFERENCE_PREFIXES}
    reference = {}
    for key, value in ours.items():
        new = max((n for n in inverse if key.startswith(n)), key=len)
        reference[inverse[new] + key[len(new) :]] = value
    assert any(k.startswith("backbone.bupsampler.mid_block.temp_attentions.0") for k in reference)
    assert reference_state_dict_to_ours(reference).keys() == ours.keys()
    with pytest.raises(KeyError, match="unknown key"):
        reference_state_dict_to_ours({"clipproj.proj": torch.zeros(1)})


# ----------------------------------------------------------------------------------------------------- VAE
def tiny_vae_kwargs():
    return dict(
        block_out_channels=(8, 8),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        mid_block_add_attention=False,
    )


def test_vae_encoder_roundtrip_from_save_pretrained(tmp_path):
    torch.manual_seed(0)
    vae = build_autoencoder_kl(sample_size=16, **tiny_vae_kwargs())
    vae.register_to_config(scaling_factor=0.5)
    vae.save_pretrained(str(tmp_path / "vae"))
    encoder = load_vae_latent_encoder(
        weights=str(tmp_path / "vae"), image_size=16, scaling_factor=None, **tiny_vae_kwargs()
    )
    assert isinstance(encoder, VaeLatentEncoder) and encoder.scaling_factor == 0.5
    assert (encoder.name, encoder.source, encoder.frame_indices) == ("vae_latents", "frames", None)
    images = torch.rand(2, 3, 16, 16)
    latents = encoder.encode(images)
    assert latents.shape == (2, *encoder.output_shape()) == (2, 4, 8, 8) and latents.dtype == torch.float32
    expected = vae.encode(2 * images - 1).latent_dist.mode() * 0.5
    torch.testing.assert_close(latents, expected)
    decoded = encoder.decode(latents)
    assert decoded.shape == (2, 3, 16, 16) and decoded.min() >= 0 and decoded.max() <= 1
    assert encoder.encode(torch.rand(1, 3, 32, 32)).shape == (1, 4, 8, 8)  # other sizes are resized
    json.dumps(encoder.describe())


def test_vae_paper_shapes_on_meta_and_missing_file(tmp_path):
    with torch.device("meta"):
        encoder = load_vae_latent_encoder(weights=str(tmp_path / "absent.pth"), image_size=224)
    assert encoder.output_shape() == (4, 28, 28)
    with pytest.raises(FileNotFoundError, match=r"absent.pth.*scale.pr.vae.weights"):
        load_vae_latent_encoder(weights=str(tmp_path / "absent.pth"), image_size=16, **tiny_vae_kwargs())


def test_vae_legacy_attention_keys_and_mismatch(tmp_path):
    kwargs = dict(tiny_vae_kwargs(), mid_block_add_attention=True)
    vae = build_autoencoder_kl(sample_size=16, **kwargs)
    legacy = {}
    for key, value in vae.state_dict().items():
        for new, old in (
            (".to_q.", ".query."),
            (".to_k.", ".key."),
            (".to_v.", ".value."),
            (".to_out.0.", ".proj_attn."),
        ):
            key = key.replace(new, old)
        legacy[key] = value
    torch.save(legacy, tmp_path / "legacy.pth")
    encoder = load_vae_latent_encoder(weights=str(tmp_path / "legacy.pth"), image_size=16, **kwargs)
    torch.testing.assert_close(
        encoder.vae.state_dict()["encoder.mid_block.attentions.0.to_q.weight"],
        vae.state_dict()["encoder.mid_block.attentions.0.to_q.weight"],
    )
    with pytest.raises(ValueError, match="do not match"):
        load_vae_latent_encoder(weights=str(tmp_path / "legacy.pth"), image_size=16, **tiny_vae_kwargs())


# ----------------------------------------------------------------------------------------------------- teacher
def test_teacher_shapes_and_xl_count_on_meta():
    teacher = ConvNeXtTeacher(depths=(1, 1, 1, 1), dims=(8, 8, 16, 16), projector_dim=8, input_size=64)
    assert teacher(torch.rand(3, 3, 32, 32)).shape == (3, 4, 8)
    assert not any(p.requires_grad for p in teacher.parameters())
    with torch.device("meta"):
        xl = load_convnext_teacher(weights="/absent/convnext.pth")
    assert xl.num_tokens() == 49
    # ConvNeXt-XL with a 1000-class head and layer scale has 350,196,968 parameters; minus the head
    # (2048·1000 + 1000) and the gammas (256·3 + 512·3 + 1024·27 + 2048·3 = 36,096):
    assert sum(p.numel() for p in xl.backbone.parameters()) == 350_196_968 - 2_049_000 - 36_096


def test_teacher_loads_reference_layout(tmp_path):
    kwargs = dict(depths=(1, 1, 1, 1), dims=(8, 8, 16, 16), projector_dim=8, input_size=64)
    torch.manual_seed(1)
    source = ConvNeXtTeacher(**kwargs)
    state = {"module." + k: v for k, v in source.state_dict().items()}
    state["module.head.weight"] = torch.zeros(3, 16)  # classifier head: ignored, as in the reference
    torch.save({"model": state}, tmp_path / "cnx.pth")
    teacher = load_convnext_teacher(weights=str(tmp_path / "cnx.pth"), **kwargs)
    x = torch.rand(2, 3, 64, 64)
    torch.testing.assert_close(teacher(x), source(x))
    del state["module.maps_projector.0.weight"]
    torch.save({"model": state}, tmp_path / "cnx_bad.pth")
    with pytest.raises(ValueError, match="missing keys"):
        load_convnext_teacher(weights=str(tmp_path / "cnx_bad.pth"), **kwargs)
    with pytest.raises(FileNotFoundError, match="scale.pr.teacher.weights"):
        load_convnext_teacher(weights=str(tmp_path / "nope.pth"), **kwargs)


def test_teacher_augmentation_range_and_seed():
    x = torch.rand(4, 3, 32, 32)
    torch.manual_seed(3)
    a = TeacherAugmentation()(x)
    torch.manual_seed(3)
    b = TeacherAugmentation()(x)
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    torch.testing.assert_close(a, b)
    assert (a - x).abs().mean() > 1e-3


def test_low_level_head_group_is_the_reference_and_batch_removes_the_clip_independent_part():
    from torch import nn

    from neuroclips.models.perceptual import LowLevelHead

    torch.manual_seed(0)
    features = torch.randn(12, 16) * 0.05 + torch.randn(
        16
    )  # a large part shared by every sample, as in the PR
    group = LowLevelHead(hidden=16, channels=4, size=2, dropout=0.0).eval()
    reference = nn.Sequential(group.linear, nn.Unflatten(1, (4, 2, 2)), nn.GroupNorm(1, 4))
    reference[2].load_state_dict(group.norm.state_dict())
    torch.testing.assert_close(group(features), reference(features), rtol=0, atol=0)
    batch = LowLevelHead(hidden=16, channels=4, size=2, dropout=0.0, norm="batch")
    batch.linear.load_state_dict(group.linear.state_dict())
    maps = batch.train()(features)
    assert maps.shape == (12, 4, 2, 2)
    assert maps.mean(0).abs().max() < 1e-5  # the shared part is gone: the maps vary across samples only
    assert (
        group(features).mean(0).abs().mean() > 10 * group(features).std(0).mean()
    )  # group keeps it: nearly flat
    with pytest.raises(ValueError, match="scale.pr.net.low_level_norm"):
        LowLevelHead(hidden=16, norm="layer")


def test_low_level_norm_is_the_reference_group_by_default_and_batch_on_request():
    from tests.test_recipe_reference import config

    for stage in ("pr", "blurry"):
        net = (lambda cfg: cfg.system.net) if stage == "pr" else (lambda cfg: cfg.system.net.module)  # noqa: E731
        assert net(config(f"stage={stage}", "scale=tiny")).low_level_norm == "group"
        assert (
            net(config(f"stage={stage}", "scale=tiny", "scale.pr.net.low_level_norm=batch")).low_level_norm
            == "batch"
        )
        assert net(config(f"stage={stage}", "scale=paper")).low_level_norm == "group"
        assert net(config(f"stage={stage}", "scale=tiny", "recipe=reference")).low_level_norm == "group"


def test_low_level_dropout_is_the_references_by_default_and_an_option():
    from tests.test_recipe_reference import config

    for stage in ("pr", "blurry"):
        net = (lambda cfg: cfg.system.net) if stage == "pr" else (lambda cfg: cfg.system.net.module)  # noqa: E731
        assert net(config(f"stage={stage}", "scale=tiny")).low_level_dropout == 0.3
        assert (
            net(config(f"stage={stage}", "scale=tiny", "scale.pr.net.low_level_dropout=0")).low_level_dropout
            == 0
        )
        assert net(config(f"stage={stage}", "scale=paper")).low_level_dropout == 0.3
        assert net(config(f"stage={stage}", "scale=tiny", "recipe=reference")).low_level_dropout == 0.3


def test_reference_checkpoint_needs_the_group_head():
    torch.manual_seed(0)
    ours = PerceptualNet(**TINY_NET).state_dict()
    with pytest.raises(RuntimeError, match="low_level.norm"):
        PerceptualNet(**TINY_NET, low_level_norm="batch").load_state_dict(ours)
