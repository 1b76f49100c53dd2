"""The paper's Table 1 (method.md 9.1) and which of our metrics fill its columns.

The paper's rows were computed with the MinD-Video classifier code, and the paper does not say which SSIM/PSNR
settings it used, so our rows name theirs.
"""

from __future__ import annotations

COLUMNS = ("video_2way", "video_50way", "clip_pcc", "frame_2way", "frame_50way", "ssim", "psnr")
COLUMN_TITLES = ("Video 2-way", "Video 50-way", "CLIP-pcc", "Frame 2-way", "Frame 50-way", "SSIM", "PSNR")

# NeuroClips paper Table 1 (method.md 9.1): value, +-. MinD-Video and NeuroClips rows average 3 subjects.
PAPER_TABLE1: dict[str, tuple] = {
    "MinD-Video 2023 (paper)": (
        (0.839, 0.03),
        (0.197, 0.02),
        (0.408, 0.46),
        (0.796, 0.03),
        (0.174, 0.03),
        (0.171, 0.08),
        (8.662, 1.52),
    ),
    "NeuroClips avg (paper)": (
        (0.834, 0.03),
        (0.220, 0.01),
        (0.738, 0.17),
        (0.806, 0.03),
        (0.203, 0.01),
        (0.390, 0.08),
        (9.211, 1.46),
    ),
    "NeuroClips subj 1 (paper)": (
        (0.830, 0.03),
        (0.208, 0.01),
        (0.736, 0.12),
        (0.799, 0.03),
        (0.187, 0.01),
        (0.392, 0.08),
        (9.226, 1.42),
    ),
    "NeuroClips subj 2 (paper)": (
        (0.837, 0.03),
        (0.230, 0.01),
        (0.742, 0.19),
        (0.811, 0.03),
        (0.210, 0.01),
        (0.392, 0.08),
        (9.336, 1.52),
    ),
    "NeuroClips subj 3 (paper)": (
        (0.835, 0.03),
        (0.221, 0.01),
        (0.735, 0.20),
        (0.807, 0.03),
        (0.213, 0.01),
        (0.387, 0.09),
        (9.072, 1.44),
    ),
}

# Our rows of the Table-1 comparison when a metrics.json has no preset rows (written before presets existed) or
# task.table_rows is set: which of our metrics fills each column. New runs show one row per preset instead.
DEFAULT_TABLE_ROWS: dict[str, dict[str, str]] = {
    "ours: MinD-Video protocol (top-3 GT, SSIM rgb255, PSNR skimage, CLIP-pcc adjacent)": {
        "video_2way": "video_2way_mindvideo",
        "video_50way": "video_50way_mindvideo",
        "clip_pcc": "clip_pcc_adjacent",
        "frame_2way": "frame_2way_mindvideo",
        "frame_50way": "frame_50way_mindvideo",
        "ssim": "ssim_rgb255",
        "psnr": "psnr_skimage",
    },
    # NEURONS' runner reports all-pairs ViT-L/14 CLIP-pcc since its commit 79f9346 (evaluation/presets.py)
    "ours: NEURONS runner (top-3 GT, SSIM gray_gauss_columns, PSNR skimage, CLIP-pcc all_pairs)": {
        "video_2way": "video_2way_mindvideo",
        "video_50way": "video_50way_mindvideo",
        "clip_pcc": "clip_pcc_all_pairs",
        "frame_2way": "frame_2way_mindvideo",
        "frame_50way": "frame_50way_mindvideo",
        "ssim": "ssim_gray_gauss_columns",
        "psnr": "psnr_skimage",
    },
    "ours: strict (top-1 GT, SSIM gray_gauss, PSNR skimage, CLIP-pcc all_pairs)": {
        "video_2way": "video_2way_strict",
        "video_50way": "video_50way_strict",
        "clip_pcc": "clip_pcc_all_pairs",
        "frame_2way": "frame_2way_strict",
        "frame_50way": "frame_50way_strict",
        "ssim": "ssim_gray_gauss",
        "psnr": "psnr_skimage",
    },
}
