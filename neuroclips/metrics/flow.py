"""EPE: end-point error between the optical flow of the ground-truth clip and that of the reconstruction (lower is
better), as Mind-Animator (``EPE.py``), SemVideo and CineNeuron report it.

For every pair of consecutive frames (t, t+1) a flow model estimates the flow of the GT clip and of the
reconstruction; the EPE of the pair is the mean over pixels of the Euclidean norm of their difference, in pixels
of the frames the flow was computed at. Flow models: Mind-Animator uses RAFT (its ``EPE.py``; SemVideo reuses
Mind-Animator's scripts) [S]; CineNeuron's own evaluation reports EPE without naming the model in the summaries we
have [S]. We use torchvision's RAFT (``neuroclips.evaluation.flow_model``): ``raft_large`` with local weights at
paper scale, a small random stand-in at scale=tiny.
"""

from __future__ import annotations

import torch


def endpoint_error(flow_a: torch.Tensor, flow_b: torch.Tensor) -> torch.Tensor:
    """Mean end-point error per flow field: flows (..., 2, H, W) -> (...) float64."""
    if flow_a.shape != flow_b.shape or flow_a.ndim < 3 or flow_a.shape[-3] != 2:
        raise ValueError(
            f"EPE: expected two flows of the same shape (..., 2, H, W), found {tuple(flow_a.shape)} and "
            f"{tuple(flow_b.shape)}."
        )
    d = flow_a.double() - flow_b.double()
    return d.square().sum(-3).sqrt().mean((-2, -1))
