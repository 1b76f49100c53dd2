"""Evaluation metrics with named protocols (see docs in each module and shared/design/evaluation.md).

Pure functions live in their modules: ``neuroclips.metrics.ssim.ssim``, ``.psnr.psnr``, ``.pixcorr.pixcorr``,
``.nway.nway_topk``, ``.clip_pcc.clip_pcc_per_clip``, ``.retrieval.retrieval_top1``, ``.mse.mse``, ``.hue.hue_pcc``,
``.flow.endpoint_error``; aggregations in ``.aggregate`` (``per_position``, ``per_clip``, ``all_pairs``); bootstrap
intervals and paired comparisons in ``.stats`` (the package does not re-export
``ssim``/``psnr``/``pixcorr`` so that those names keep meaning the modules). torchmetrics wrappers for batching/DDP:
``FrameSSIM``, ``FramePSNR``.
"""

from neuroclips.metrics.accumulators import FramePSNR, FrameSSIM
from neuroclips.metrics.clip_pcc import CLIP_PCC_VARIANTS, clip_pcc_per_clip, clip_pcc_score
from neuroclips.metrics.nway import NWAY_PROTOCOLS, NWayResult, nway_topk, nway_topk_frames
from neuroclips.metrics.psnr import PSNR_VARIANTS
from neuroclips.metrics.retrieval import retrieval_top1
from neuroclips.metrics.ssim import SSIM_VARIANTS

__all__ = [
    "CLIP_PCC_VARIANTS",
    "NWAY_PROTOCOLS",
    "PSNR_VARIANTS",
    "SSIM_VARIANTS",
    "FramePSNR",
    "FrameSSIM",
    "NWayResult",
    "clip_pcc_per_clip",
    "clip_pcc_score",
    "nway_topk",
    "nway_topk_frames",
    "retrieval_top1",
]
