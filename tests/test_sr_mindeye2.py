"""Loading MindEye2-layout checkpoints: prefix strip, skip rules, report, clear errors."""

from __future__ import annotations

import pytest
import torch

from neuroclips.models.mindeye2 import (
    BLURRY_BRANCH_PREFIXES,
    init_from_mindeye2,
    load_mindeye2_state,
    read_mindeye2_state,
)
from neuroclips.models.prior import BrainDiffusionPrior, PriorNetwork
from neuroclips.models.semantic import SemanticBackbone


def nets():
    return (
        SemanticBackbone(hidden=16, n_blocks=2, clip_tokens=4, clip_dim=8),
        BrainDiffusionPrior(PriorNetwork(dim=8, depth=1, dim_head=4, heads=2, num_tokens=4)),
    )


def mindeye2_file(tmp_path, extra: dict | None = None) -> str:
    """A MindEye2-style checkpoint: NSD ridge of another width, blurry-branch keys, backbone and prior."""
    torch.manual_seed(3)
    backbone, prior = nets()
    state = {
        "ridge.linears.0.weight": torch.randn(16, 99),
        "ridge.linears.0.bias": torch.randn(16),
        "backbone.blin1.weight": torch.randn(3, 16),
        "backbone.bupsampler.conv_in.weight": torch.randn(2, 2),
    }
    state.update({"backbone." + k: v for k, v in backbone.state_dict().items()})
    state.update({"diffusion_prior." + k: v for k, v in prior.state_dict().items()})
    state.update(extra or {})
    path = tmp_path / "last.pth"
    torch.save({"epoch": 3, "model_state_dict": state}, path)
    return str(path)


def test_loads_backbone_and_prior_and_reports(tmp_path):
    path = mindeye2_file(tmp_path)
    state = read_mindeye2_state(path)
    backbone, prior = nets()
    report = load_mindeye2_state(backbone, state, "backbone.", path, skip_prefixes=BLURRY_BRANCH_PREFIXES)
    assert len(report.loaded) == len(backbone.state_dict()) and not report.missing
    assert sorted(report.skipped) == ["backbone.blin1.weight", "backbone.bupsampler.conv_in.weight"]
    assert torch.equal(backbone.backbone_linear.weight, state["backbone.backbone_linear.weight"])
    loaded_prior = init_from_mindeye2(prior, path, "diffusion_prior.")
    assert torch.equal(loaded_prior.net.learned_query, state["diffusion_prior.net.learned_query"])
    assert "loaded" in report.summary() and "skipped 2" in report.summary()


def test_null_checkpoint_and_meta_are_no_ops():
    backbone, _ = nets()
    assert init_from_mindeye2(backbone, None, "backbone.") is backbone
    with torch.device("meta"):
        meta_backbone = SemanticBackbone(hidden=16, n_blocks=2, clip_tokens=4, clip_dim=8)
    assert init_from_mindeye2(meta_backbone, "/no/such/file.pth", "backbone.") is meta_backbone


def test_errors_name_file_key_and_shapes(tmp_path):
    with pytest.raises(FileNotFoundError, match="init.mindeye2_ckpt"):
        init_from_mindeye2(nets()[0], str(tmp_path / "missing.pth"), "backbone.")
    path = mindeye2_file(tmp_path, {"backbone.unknown_layer.weight": torch.zeros(1)})
    with pytest.raises(KeyError, match="unknown_layer"):
        init_from_mindeye2(nets()[0], path, "backbone.")
    path = mindeye2_file(tmp_path, {"backbone.backbone_linear.bias": torch.zeros(5)})
    with pytest.raises(
        ValueError, match=r"backbone.backbone_linear.bias' expected shape \(32,\), found \(5,\)"
    ):
        init_from_mindeye2(nets()[0], path, "backbone.")
