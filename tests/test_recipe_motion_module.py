"""A v3 motion-module file in the original AnimateDiff layout loads strictly into the tiny MotionAdapter.

AnimateDiff v3 has motion modules in the down and up blocks only (none in the mid block). The tiny architecture
table used to build a mid-block motion module (diffusers' default ``use_motion_mid_block=True``), so such a file
left 26 ``mid_block.motion_modules.0.*`` keys unloaded at ``scale=tiny`` and the strict loader refused it.
"""

from __future__ import annotations

import re

import torch
from diffusers import MotionAdapter

from neuroclips.models.video_generator import _load_animatediff_module
from neuroclips.models.video_generator_configs import VIDEO_CONFIGS


def original_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """diffusers MotionAdapter keys -> the original AnimateDiff v3 file's keys (``temporal_transformer`` level,
    ``attention_blocks.i``, ``norms.i``, ``ff_norm``, stored ``pos_encoder.pe`` buffers)."""
    renames = (
        (".attn1.", ".attention_blocks.0."),
        (".attn2.", ".attention_blocks.1."),
        (".norm1.", ".norms.0."),
        (".norm2.", ".norms.1."),
        (".norm3.", ".ff_norm."),
        (".pos_embed.pe", ".pos_encoder.pe"),
    )
    out = {}
    for key, value in state.items():
        key = re.sub(r"(motion_modules\.\d+)\.", r"\1.temporal_transformer.", key)
        for old, new in renames:
            key = key.replace(old, new)
        out[key] = value
    return out


def v3_file(tmp_path, config: dict) -> tuple[str, MotionAdapter]:
    """A tiny motion-module checkpoint written the way v3_sd15_mm.ckpt is laid out: no mid-block module."""
    torch.manual_seed(0)
    source = MotionAdapter(**{**config, "use_motion_mid_block": False})
    with torch.no_grad():
        for p in source.parameters():
            p.normal_()
    state = original_layout(source.state_dict())
    assert not any(k.startswith("mid_block.") for k in state)
    assert any(".temporal_transformer.transformer_blocks.0.attention_blocks.0.to_q." in k for k in state)
    assert any(k.endswith("pos_encoder.pe") for k in state)
    path = tmp_path / "v3_sd15_mm.ckpt"
    torch.save(state, path)
    return str(path), source


def test_tiny_motion_adapter_has_no_mid_block_like_v3():
    assert VIDEO_CONFIGS["tiny"]["motion_adapter"]["use_motion_mid_block"] is False
    assert VIDEO_CONFIGS["paper"]["motion_adapter"]["use_motion_mid_block"] is False
    adapter = MotionAdapter(**VIDEO_CONFIGS["tiny"]["motion_adapter"])
    assert not any(k.startswith("mid_block.") for k in adapter.state_dict())


def test_v3_original_layout_file_loads_strictly_at_tiny_scale(tmp_path):
    config = VIDEO_CONFIGS["tiny"]["motion_adapter"]
    path, source = v3_file(tmp_path, config)
    # _load_animatediff_module raises on any missing key except the recomputed pos_embed.pe buffers
    loaded = _load_animatediff_module(MotionAdapter, path, "gen.video.motion_module_file", config)
    expected = source.state_dict()
    assert set(loaded.state_dict()) == set(expected)
    for key, value in expected.items():
        assert torch.equal(loaded.state_dict()[key], value), key
