"""Optical flow for EPE: torchvision's RAFT, never downloaded.

* ``local`` -- ``raft_large(weights=None)`` (or ``raft_small`` with ``arch: small``) with the state dict at ``path``
  (torchvision's ``Raft_Large_Weights.C_T_SKHT_V2`` file, saved locally);
* ``tiny``  -- torchvision's RAFT class built small (8-16 channels, a 2-level correlation pyramid, so 32-pixel
  frames suffice) with seeded random weights: RAFT's code path and shapes at a fraction of ``raft_small``'s cost
  (which needs >= 128 px and took ~1.7 s per clip on the 2-core CI box), not meaningful flow.

Frames are resized to ``size`` (a multiple of 8, as RAFT needs; the 256x256 GT frames already are), scaled to
[-1, 1] as torchvision's RAFT transforms do, and flow is estimated for each consecutive pair.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from neuroclips.metrics.flow import endpoint_error
from neuroclips.utils.weights import read_weight_file

TINY_SEED = 1234
# RAFT's correlation pyramid needs feature maps (1/8 of the frame) of at least 2^levels: 128 px for the published
# 4-level models, 32 px for the tiny 2-level stand-in
MIN_SIZE = {"tiny": 32, "small": 128, "large": 128}


class FlowEstimator(nn.Module):
    """uint8 clips (B, T, 3, H, W) -> flow of each consecutive pair (B, T-1, 2, size, size) float32."""

    def __init__(self, raft: nn.Module, size: int, num_flow_updates: int = 12, min_size: int = 128):
        super().__init__()
        if size % 8 or size < min_size:
            raise ValueError(
                f"scale.eval.models.flow.size: expected a multiple of 8 >= {min_size}, found {size}."
            )
        self.raft, self.size, self.num_flow_updates = raft, int(size), int(num_flow_updates)

    @torch.no_grad()
    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        b, t = clips.shape[:2]
        dev = next(self.raft.parameters()).device
        x = clips.flatten(0, 1).to(dev, torch.float32) / 255.0
        if tuple(x.shape[-2:]) != (self.size, self.size):
            x = F.interpolate(
                x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True
            )
        x = (x * 2.0 - 1.0).view(b, t, 3, self.size, self.size)
        first, second = x[:, :-1].flatten(0, 1), x[:, 1:].flatten(0, 1)
        flows = self.raft(first, second, num_flow_updates=self.num_flow_updates)[-1]
        return flows.view(b, t - 1, 2, self.size, self.size).float()


def build_flow_estimator(
    source: str = "tiny",
    path: str | None = None,
    arch: str = "large",
    size: int = 256,
    num_flow_updates: int = 12,
    field: str = "scale.eval.models.flow.path",
) -> FlowEstimator:
    from torchvision.models.optical_flow import raft_large, raft_small

    if source == "tiny":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(TINY_SEED)
            raft = _tiny_raft()
        arch = "tiny"
    elif source in ("local", "random"):
        raft = (raft_large if arch == "large" else raft_small)(weights=None)
        if source == "local":
            what = f"RAFT weights (torchvision's Raft_{arch.capitalize()}_Weights state dict)"
            state = read_weight_file(str(path), field, what)
            raft.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
    else:
        raise ValueError(f"scale.eval.models.flow.source: expected local, random or tiny, found {source!r}.")
    return FlowEstimator(raft.eval().requires_grad_(False), size, num_flow_updates, MIN_SIZE.get(arch, 128))


def _tiny_raft() -> nn.Module:
    """torchvision's RAFT with tiny widths (the builder raft_small uses, other numbers)."""
    from torchvision.models.optical_flow.raft import BottleneckBlock, _raft

    return _raft(
        weights=None,
        progress=False,
        feature_encoder_layers=(8, 8, 16, 16, 16),
        feature_encoder_block=BottleneckBlock,
        feature_encoder_norm_layer=nn.InstanceNorm2d,
        context_encoder_layers=(8, 8, 16, 16, 24),
        context_encoder_block=BottleneckBlock,
        context_encoder_norm_layer=None,
        corr_block_num_levels=2,
        corr_block_radius=1,
        motion_encoder_corr_layers=(16,),
        motion_encoder_flow_layers=(16, 8),
        motion_encoder_out_channels=14,
        recurrent_block_hidden_state_size=16,
        recurrent_block_kernel_size=(3,),
        recurrent_block_padding=(1,),
        flow_head_hidden_size=16,
        use_mask_predictor=False,
    )


def clip_epe(
    estimator: FlowEstimator, gt: torch.Tensor, pred: torch.Tensor, batch_size: int = 8
) -> torch.Tensor:
    """(N, T-1) EPE of each consecutive frame pair between GT and reconstructed clips (N, T, 3, H, W) uint8."""
    out = []
    for s in range(0, gt.shape[0], batch_size):
        out.append(
            endpoint_error(estimator(gt[s : s + batch_size]), estimator(pred[s : s + batch_size])).cpu()
        )
    return torch.cat(out) if out else torch.zeros(0, max(gt.shape[1] - 1, 0), dtype=torch.float64)
