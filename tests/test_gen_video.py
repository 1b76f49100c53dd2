"""The NeuroClips video pipeline at tiny scale: conditioning, batch invariance, equivalence with diffusers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from diffusers import AnimateDiffPipeline, AnimateDiffSparseControlNetPipeline
from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D

from neuroclips.generation.video import NEGATIVE_PROMPT, PROMPT_SUFFIX, VideoRecipe, generate_videos
from neuroclips.models.video_generator import build_video_pipeline, merge_domain_lora
from neuroclips.models.video_pipeline import PerFrameGroupNorm, set_motion_norm
from neuroclips.utils.seeding import clip_seed
from neuroclips.utils.weights import MissingWeightsError

TINY = dict(size=32, steps=2)


@pytest.fixture(scope="module")
def pipe():
    torch.set_num_threads(1)
    return build_video_pipeline("random", "tiny", motion_norm="per_frame")


@pytest.fixture(scope="module")
def inputs():
    g = torch.Generator().manual_seed(0)
    return (
        torch.rand(4, 6, 3, 48, 48, generator=g),
        torch.rand(4, 3, 48, 48, generator=g),
        [f"clip {i}" for i in range(4)],
    )


def test_per_frame_motion_norm_normalises_each_frame(pipe):
    norms = [m.norm for m in pipe.unet.modules() if isinstance(m, AnimateDiffTransformer3D)]
    norms += [m.norm for m in pipe.controlnet.modules() if isinstance(m, AnimateDiffTransformer3D)]
    assert norms and all(isinstance(n, PerFrameGroupNorm) for n in norms)
    norm = norms[0]
    x = torch.randn(2, norm.num_channels, 5, 4, 4) * torch.arange(1, 6).view(1, 1, 5, 1, 1)
    per_frame = torch.stack(
        [F.group_norm(x[:, :, f], norm.num_groups, norm.weight, norm.bias, norm.eps) for f in range(5)], 2
    )
    torch.testing.assert_close(norm(x), per_frame)
    assert not torch.allclose(torch.nn.GroupNorm.forward(norm, x), per_frame, atol=1e-3)  # stock pools frames
    keys = set(pipe.unet.state_dict())
    set_motion_norm(pipe.unet, "all_frames")
    assert set(pipe.unet.state_dict()) == keys
    set_motion_norm(pipe.unet, "per_frame")


def test_keyframe_conditions_frame_zero_only(pipe, inputs):
    _, keyframes, _ = inputs
    pipe._guidance_scale = 8.5
    pipe._conditioning_generators = [torch.Generator().manual_seed(i) for i in range(2)]
    latents = pipe.prepare_image(keyframes[:2, None], 32, 32, "cpu", torch.float32)
    pipe._conditioning_generators = None
    assert latents.shape == (2, 4, 1, 8, 8)  # the tiny VAE is f4: 32 px -> 8
    cond, mask = pipe.prepare_sparse_control_conditioning(latents, 16, [0], "cpu", torch.float32)
    assert cond.shape == (4, 4, 16, 8, 8) and mask.shape == (4, 1, 16, 8, 8)  # doubled for CFG
    assert torch.equal(mask[:, :, 0], torch.ones_like(mask[:, :, 0])) and mask[:, :, 1:].abs().sum() == 0
    assert torch.equal(cond[:2, :, 0], latents[:, :, 0]) and cond[:, :, 1:].abs().sum() == 0
    assert torch.equal(cond[:2], cond[2:])


def test_same_clip_same_video_with_batch_1_and_batch_4(pipe, inputs):
    blurry, keyframes, captions = inputs
    recipe = VideoRecipe(**TINY)
    clips, blurry, keyframes, captions = [40, 41, 42], blurry[:3], keyframes[:3], captions[:3]
    batched = generate_videos(pipe, recipe, clips, blurry, keyframes, captions)
    single = torch.cat(
        [
            generate_videos(pipe, recipe, [c], blurry[i : i + 1], keyframes[i : i + 1], captions[i : i + 1])
            for i, c in enumerate(clips)
        ]
    )
    assert batched.shape == (3, 16, 3, 32, 32) and 0 <= batched.min() and batched.max() <= 1
    # identical up to float rounding of batched matmuls (measured ~2e-6); uint8 frames differ by at most one level
    torch.testing.assert_close(batched, single, atol=1e-4, rtol=0)
    to8 = lambda v: (v * 255 + 0.5).floor()  # noqa: E731
    assert (to8(batched) - to8(single)).abs().max() <= 1
    # order does not matter either, and another clip index gives another video
    rev = generate_videos(pipe, recipe, clips[::-1], blurry.flip(0), keyframes.flip(0), captions[::-1])
    torch.testing.assert_close(rev.flip(0), batched, atol=1e-4, rtol=0)
    other = generate_videos(pipe, recipe, [99], blurry[:1], keyframes[:1], captions[:1])
    assert (other - single[:1]).abs().max() > 1e-3


def test_alpha_none_without_keyframe_equals_plain_diffusers(pipe):
    set_motion_norm(pipe.unet, "all_frames")
    try:
        recipe = VideoRecipe(**TINY, alpha_mode="none", use_keyframe=False)
        ours = generate_videos(pipe, recipe, [7], None, None, ["a dog"])
        plain = AnimateDiffPipeline(
            vae=pipe.vae,
            text_encoder=pipe.text_encoder,
            tokenizer=pipe.tokenizer,
            unet=pipe.unet,
            motion_adapter=None,
            scheduler=pipe.scheduler,
        )
        plain.set_progress_bar_config(disable=True)
        ref = plain(
            prompt=["a dog" + PROMPT_SUFFIX],
            negative_prompt=[NEGATIVE_PROMPT],
            num_frames=16,
            height=32,
            width=32,
            num_inference_steps=2,
            guidance_scale=8.5,
            output_type="pt",
            generator=torch.Generator().manual_seed(clip_seed(recipe.seed, 7, "alpha_noise")),
        ).frames
        assert torch.equal(ours, ref)
    finally:
        set_motion_norm(pipe.unet, "per_frame")


def test_keyframe_video_equals_stock_sparsectrl_pipeline(pipe, inputs):
    _, keyframes, _ = inputs
    for module in (pipe.unet, pipe.controlnet):
        set_motion_norm(module, "all_frames")
    try:
        recipe = VideoRecipe(**TINY, alpha_mode="none")
        ours = generate_videos(pipe, recipe, [3], None, keyframes[:1], ["a cat"])
        stock = AnimateDiffSparseControlNetPipeline(
            vae=pipe.vae,
            text_encoder=pipe.text_encoder,
            tokenizer=pipe.tokenizer,
            unet=pipe.unet,
            motion_adapter=None,
            controlnet=pipe.controlnet,
            scheduler=pipe.scheduler,
        )
        stock.set_progress_bar_config(disable=True)
        torch.manual_seed(
            clip_seed(recipe.seed, 3, "keyframe_vae")
        )  # the stock pipeline samples with the global RNG
        ref = stock(
            prompt=["a cat" + PROMPT_SUFFIX],
            negative_prompt=[NEGATIVE_PROMPT],
            num_frames=16,
            height=32,
            width=32,
            num_inference_steps=2,
            guidance_scale=8.5,
            output_type="pt",
            conditioning_frames=F.interpolate(keyframes[:1], size=(32, 32), mode="bilinear"),
            controlnet_frame_indices=[0],
            generator=torch.Generator().manual_seed(clip_seed(recipe.seed, 3, "alpha_noise")),
        ).frames
        assert torch.equal(ours, ref)
    finally:
        for module in (pipe.unet, pipe.controlnet):
            set_motion_norm(module, "per_frame")


def test_domain_lora_merge_is_w_plus_up_down(pipe):
    unet = build_video_pipeline("random", "tiny").unet
    name = next(k for k in unet.state_dict() if k.endswith("attn1.to_q.weight") and "motion" not in k)
    attn = name.removesuffix(".to_q.weight")
    w = unet.state_dict()[name].clone()
    down, up = torch.randn(2, w.shape[1]), torch.randn(w.shape[0], 2)
    merged = merge_domain_lora(
        unet,
        {f"{attn}.processor.to_q_lora.down.weight": down, f"{attn}.processor.to_q_lora.up.weight": up},
        scale=0.5,
    )
    assert merged == 1
    torch.testing.assert_close(unet.state_dict()[name], w + 0.5 * up @ down)
    with pytest.raises(KeyError, match="not found"):
        merge_domain_lora(
            unet, {"x.processor.to_q_lora.down.weight": down, "x.processor.to_q_lora.up.weight": up}
        )


def test_missing_weight_file_names_file_and_field(tmp_path):
    with pytest.raises(MissingWeightsError, match="scale.gen.video.dreambooth_file"):
        build_video_pipeline("local", "tiny", dreambooth_file=str(tmp_path / "rv.safetensors"))


def test_paper_architecture_on_meta():
    with torch.device("meta"):
        pipe = build_video_pipeline("local", "paper")  # meta: builds the real architecture, reads nothing
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert pipe.unet.device.type == "meta"
    assert count(pipe.controlnet) == pytest.approx(496.73e6, rel=1e-4)
    motion = sum(p.numel() for n, p in pipe.unet.named_parameters() if "motion_modules" in n)
    assert motion == pytest.approx(417.14e6, rel=1e-3)


def test_keyframe_and_blurry_video_change_the_result(pipe, inputs):
    blurry, keyframes, captions = inputs
    recipe = VideoRecipe(**TINY)
    base = generate_videos(pipe, recipe, [1], blurry[:1], keyframes[:1], captions[:1])
    other_key = generate_videos(pipe, recipe, [1], blurry[:1], keyframes[1:2], captions[:1])
    other_blurry = generate_videos(pipe, recipe, [1], blurry[1:2], keyframes[:1], captions[:1])
    assert (base - other_key).abs().max() > 1e-3 and (base - other_blurry).abs().max() > 1e-4


def to_animatediff_layout(state: dict) -> dict:
    """Our diffusers keys back in the original AnimateDiff layout (inverse of diffusers' conversion)."""
    import re

    out = {}
    for k, v in state.items():
        if "motion_modules." in k:
            k = re.sub(r"(motion_modules\.\d+)\.", r"\1.temporal_transformer.", k)
            k = (
                k.replace(".attn1", ".attention_blocks.0")
                .replace(".attn2", ".attention_blocks.1")
                .replace(".norm1", ".norms.0")
                .replace(".norm2", ".norms.1")
                .replace(".norm3", ".ff_norm")
                .replace(".pos_embed.pe", ".pos_encoder.pe")
            )
        out[k] = v
    return out


def test_motion_module_and_sparsectrl_load_from_original_layout_files(tmp_path):
    from diffusers import MotionAdapter, SparseControlNetModel

    from neuroclips.models.video_generator import _load_animatediff_module
    from neuroclips.models.video_generator_configs import VIDEO_CONFIGS

    cfg = VIDEO_CONFIGS["tiny"]
    for cls, key, wrap, field in (
        (MotionAdapter, "motion_adapter", None, "scale.gen.video.motion_module_file"),
        (SparseControlNetModel, "controlnet", "controlnet", "scale.gen.video.sparsectrl_file"),
    ):
        src = cls(**cfg[key])
        with torch.no_grad():
            for p in src.parameters():
                p.normal_()
        original = to_animatediff_layout(src.state_dict())
        assert any("temporal_transformer" in k for k in original)
        torch.save({wrap: original} if wrap else original, tmp_path / f"{key}.ckpt")
        loaded = _load_animatediff_module(cls, tmp_path / f"{key}.ckpt", field, cfg[key])
        assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in src.state_dict().items())
        bad = {k: v for k, v in original.items() if "attention_blocks.0.to_q" not in k}
        torch.save(bad, tmp_path / "bad.ckpt")
        with pytest.raises(ValueError, match="missing"):
            _load_animatediff_module(cls, tmp_path / "bad.ckpt", field, cfg[key])
