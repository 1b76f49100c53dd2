"""OmegaConf resolvers, registered once and idempotently (pure functions of the process, no live objects)."""

from __future__ import annotations

import os

from omegaconf import OmegaConf

from neuroclips.data.schema import SUBJECT_VOXELS
from neuroclips.subjects import roster_group_id, roster_voxels
from neuroclips.utils.seeding import REFERENCE_VIDEO_SEED


def register() -> None:
    # the launch directory; unlike ${hydra:runtime.cwd} it also resolves where Hydra's runtime config is not set
    # yet (the multirun sweeper computes hydra.sweep.dir before any job starts)
    OmegaConf.register_new_resolver("nc.cwd", os.getcwd, replace=True)
    # subj.id / subj.voxels from the merged subject roster (neuroclips/subjects.py)
    OmegaConf.register_new_resolver("nc.subj_id", roster_group_id, replace=True)
    OmegaConf.register_new_resolver("nc.subj_voxels", roster_voxels, replace=True)
    # conf/subj's voxel counts: the data layer's one table (data/schema.SUBJECT_VOXELS, what files are checked against)
    OmegaConf.register_new_resolver("nc.cc2017_voxels", lambda subj: SUBJECT_VOXELS[int(subj)], replace=True)
    # video.seed's default: the reference's fixed seed, written once (utils/seeding.REFERENCE_VIDEO_SEED)
    OmegaConf.register_new_resolver("nc.reference_video_seed", lambda: REFERENCE_VIDEO_SEED, replace=True)
    # true when any argument is (e.g. the generators' shared VAE is fitted when the unCLIP or the video stand-in is)
    OmegaConf.register_new_resolver("nc.any", lambda *flags: any(bool(f) for f in flags), replace=True)
    # value when flag is true, else null: a sub-config built only when it is used (e.g. a frozen encoder that
    # loads large weights only for an enabled stand-in)
    OmegaConf.register_new_resolver("nc.when", lambda flag, value: value if flag else None, replace=True)


register()
