"""LightningDataModule over one neuroclips HDF5 file (simulated or converted cc2017).

Splits: ``train`` and ``val`` are carved from the training clips (``val`` = contiguous held-out blocks, seeded;
never the test set, unless ``val_split="test"``, the reference's model selection, scores the test clips instead);
``test`` is the test movie with fMRI averaged over its repetitions; ``predict`` is the test split (or ``val``),
optionally restricted to the clips that still lack outputs.

Batch sizes: ``batch_size`` is the GLOBAL batch of one optimizer step (as the one-GPU reference used it); under DDP
each process loads ``batch_size / world_size`` clips, and a batch that does not divide evenly is refused.
``eval_batch_size`` (validation, test, predict) is per process: validation batches keep the reference's size on
every rank (the PR's temporal window, the SR's in-batch validation loss), and predict outputs do not depend on it.

Several subjects (``subj`` a list, ``subj=all``): one dataset per subject and split; training batches mix the
subjects (every step holds clips of each, ``neuroclips.data.subject_mix``), validation and test are one loader per
subject in subject order. ``batch_size`` stays the global batch of one step, over all subjects and processes.

The items of a split are ``ClipDataset``'s (neuroclips/data/clip_dataset.py); the held-out rows, the per-process
batch and the epoch order are neuroclips/data/sampler.py's.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytorch_lightning as pl
import torch.distributed as dist
from torch.utils.data import DataLoader

from neuroclips.data import schema, validate
from neuroclips.data.clip_dataset import REP_POLICIES, ClipDataset
from neuroclips.data.sampler import EpochSampler, process_batch_size, validation_rows
from neuroclips.data.subject_mix import batch_key, split_batch, subject_seed, training_subset
from neuroclips.errors import ConfigError

VAL_SPLITS = ("val", "test")
SETS_READ = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("predict",)}


class CC2017DataModule(pl.LightningDataModule):
    def __init__(
        self,
        file: str,
        subj: int | list[int],
        voxels: int | list[int],
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        batch_size_field: str = "datamodule.batch_size",
        num_workers: int = 0,
        val_fraction: float = 0.1,
        val_block: int = 20,
        val_seed: int = 0,
        rep_policy: str = "epoch_parity",
        keyframe_policy: str | int = "parity_2_3",
        eval_keyframe_index: int = 2,
        load_frames: bool = False,
        load_captions: bool = False,
        targets: list[str] | None = None,
        inputs_from_outputs: dict[str, str] | None = None,
        shuffle_train: bool = True,
        drop_last: bool = False,
        in_memory: bool = False,
        shard: str = "strided",
        predict_split: str = "test",
        val_split: str = "val",
        predict_clips: list[int] | None = None,
        limit_clips: int | None = None,
        train_fraction: float | None = None,
        train_segments: list[int] | None = None,
        seed: int = 0,
        kind: str = "simulated",
        auto_create: bool = False,
        scale_name: str = "tiny",
        validate_deep: bool = True,
    ):
        super().__init__()
        batch_size = validate.positive_int(batch_size, batch_size_field, "clips per optimizer step")
        if eval_batch_size is not None:
            eval_batch_size = validate.positive_int(
                eval_batch_size, "datamodule.eval_batch_size", "clips per batch"
            )
        val_fraction = validate.fraction(
            val_fraction, "data.val_fraction", "share of training clips held out"
        )
        val_block = validate.positive_int(val_block, "data.val_block", "clips per held-out block")
        limit_clips = validate.optional_positive_int(limit_clips, "data.limit_clips", "clips per split")
        num_workers = validate.non_negative_int(num_workers, "data.num_workers", "loader processes")
        if rep_policy not in REP_POLICIES:
            raise ValueError(f"data.rep_policy: expected one of {REP_POLICIES}, found {rep_policy!r}.")
        self.file = str(file)
        from neuroclips.subjects import as_ids, as_voxels

        self.subjects = as_ids(subj if isinstance(subj, (list, tuple)) else [subj])
        self.voxels_by_subject = dict(zip(self.subjects, as_voxels(voxels, len(self.subjects))))
        self.multi = len(self.subjects) > 1
        self.subj, self.voxels = (
            self.subjects[0],
            self.voxels_by_subject[self.subjects[0]],
        )  # the one-subject view
        self.train_fraction = train_fraction
        self.train_segments = None if train_segments is None else [int(s) for s in train_segments]
        if val_split not in VAL_SPLITS:
            raise ConfigError(f"datamodule.val_split: expected one of {VAL_SPLITS}, found {val_split!r}.")
        self.batch_size = batch_size  # global: one optimizer step over all processes (process_batch_size)
        self.eval_batch_size = batch_size if eval_batch_size is None else eval_batch_size  # per process
        self.batch_size_field = batch_size_field
        self.val_split = val_split
        self.num_workers = num_workers
        self.val_fraction, self.val_block, self.val_seed = val_fraction, val_block, val_seed
        self.common = dict(
            rep_policy=rep_policy,
            keyframe_policy=keyframe_policy,
            eval_keyframe_index=eval_keyframe_index,
            load_frames=load_frames,
            load_captions=load_captions,
            targets=list(targets or []),
            inputs_from_outputs=dict(inputs_from_outputs or {}),
            in_memory=in_memory,
            seed=seed,
        )
        self.shuffle_train, self.drop_last, self.shard = shuffle_train, drop_last, shard
        self.predict_split = predict_split
        self.predict_clips = None if predict_clips is None else [int(c) for c in predict_clips]
        self.limit_clips = limit_clips
        self.kind, self.auto_create, self.scale_name = kind, auto_create, scale_name
        self.validate_deep = validate_deep
        self.seed = seed
        self._sets: dict[str, ClipDataset] = {}
        self._by_subject: dict[int, dict[str, ClipDataset]] = {}
        self._skip_train_batches = 0

    # -- setup -----------------------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        # only the tiny file is written on the fly (seconds); a paper-scale simulation is GBs: ask for it explicitly
        if (
            not Path(self.file).exists()
            and self.auto_create
            and self.kind == "simulated"
            and self.scale_name == "tiny"
        ):
            from neuroclips.data.simulate import ensure_simulated

            ensure_simulated(self.file, self.scale_name)

    def check_file(self) -> schema.FileSummary:
        """Validate the file for this subject; raise ``SchemaError`` with one sentence per problem."""
        if (
            self.multi
        ):  # a missing subject or a voxel count unlike its adapter's: one sentence, before the rest
            for s in self.subjects:
                schema.check_subject(self.file, s, self.voxels_by_subject[s])
        summary = schema.check(self.file, subjects=self.subjects, deep=self.validate_deep)
        schema.check_subject(self.file, self.subj, self.voxels)
        return summary

    def split_rows(self) -> dict[str, np.ndarray]:
        with h5py.File(self.file, "r") as f:
            n_train = f[schema.stimulus_path("train", "frames")].shape[0]
            n_test = f[schema.stimulus_path("test", "frames")].shape[0]
            test_clip_index = f[schema.stimulus_path("test", "clip_index")][:]
            train_clip_index = f[schema.stimulus_path("train", "clip_index")][:]
            restricted = self.train_fraction is not None or self.train_segments is not None
            segments = f[schema.stimulus_path("train", "segment")][:] if restricted else None
        val = validation_rows(n_train, self.val_fraction, self.val_block, self.val_seed)
        train = np.setdiff1d(np.arange(n_train), val)
        if restricted:
            train = training_subset(train, segments, self.train_fraction, self.train_segments, self.file)
        test = np.arange(n_test)
        if self.limit_clips:
            train, val, test = train[: self.limit_clips], val[: self.limit_clips], test[: self.limit_clips]
        rows = {"train": train, "val": val, "test": test}
        pred_rows = rows[self.predict_split] if self.predict_split in rows else None
        if pred_rows is None:
            raise ValueError(
                f"datamodule.predict_split: expected 'test', 'val' or 'train', found {self.predict_split!r}."
            )
        if self.predict_clips is not None:
            ci = test_clip_index if self.predict_split == "test" else train_clip_index
            wanted = set(self.predict_clips)
            pred_rows = np.array([r for r in pred_rows if int(ci[r]) in wanted], np.int64)
        rows["predict"] = pred_rows
        return rows

    def predict_clip_indices(self) -> list[int]:
        """The clip indices (``clip_index``) of the predict split's rows, in row order."""
        with h5py.File(self.file, "r") as f:
            split = "test" if self.predict_split == "test" else "train"
            clip_index = f[schema.stimulus_path(split, "clip_index")][:]
        return [int(clip_index[r]) for r in self.split_rows()["predict"]]

    def setup(self, stage: str | None = None) -> None:
        if not self._sets:
            self._build()
        for name in SETS_READ.get(
            str(stage), ()
        ):  # what the Lightning stage reads; others when first asked for
            self._verify(name)

    def _verify(self, name: str) -> None:
        for sets in self._by_subject.values():
            ds = sets[name]
            if name == "train":
                validate.check_train_not_empty(
                    self.file, len(ds), self.val_fraction, self.val_block, self.limit_clips
                )
            ds.verify()

    def _build(self) -> None:
        rows = self.split_rows()
        pred_hdf5 = "test" if self.predict_split == "test" else "train"
        for s in self.subjects:
            mk = lambda split, r, role, s=s: ClipDataset(self.file, s, split, r, role, **self.common)  # noqa: E731
            self._by_subject[s] = {
                "train": mk("train", rows["train"], "train"),
                # val_split="test" (reference model selection): the validation loader scores the test clips
                "val": mk("train", rows["val"], "val")
                if self.val_split == "val"
                else mk("test", rows["test"], "test"),
                "test": mk("test", rows["test"], "test"),
                "predict": mk(pred_hdf5, rows["predict"], "test" if self.predict_split == "test" else "val"),
            }
        self._sets = self._by_subject[self.subj]

    def dataset(self, name: str, subj: int | None = None) -> ClipDataset:
        """The ``name`` split of one subject (default: the first, the only one of a one-subject run)."""
        self.setup()
        self._verify(name)
        return self._by_subject[self.subj if subj is None else int(subj)][name]

    def set_epoch(self, epoch: int) -> None:
        for sets in self._by_subject.values():
            for ds in sets.values():
                ds.set_epoch(epoch)

    def skip_first_train_batches(self, batches: int) -> None:
        """A fit resumed from a mid-epoch checkpoint: the next training epoch starts after its first ``batches``
        (per process); the epoch's order is a function of (seed, epoch), so these are exactly the ones done."""
        self._skip_train_batches = int(batches)

    # -- loaders ---------------------------------------------------------------------------------------------
    def world_size(self) -> int:
        """DDP processes: torch.distributed when initialised (as EpochSampler shards), else the trainer's, else 1."""
        if dist.is_available() and dist.is_initialized():
            return dist.get_world_size()
        trainer = getattr(self, "trainer", None)
        return int(getattr(trainer, "world_size", 1) or 1) if trainer is not None else 1

    def train_batch_size(self) -> int:
        """Clips per process and step: the global ``batch_size`` divided over the DDP processes."""
        return process_batch_size(self.batch_size, self.world_size(), self.batch_size_field)

    def _loader(
        self,
        ds: ClipDataset,
        batch_size: int,
        shuffle: bool,
        drop_last: bool = False,
        pad: bool = False,
        block: int | None = None,
    ) -> DataLoader:
        # our own sampler (the runtime turns Lightning's distributed-sampler replacement off): it shards over
        # ranks and derives the order from (seed, epoch) alone, which makes resumed runs replay exactly
        seed = subject_seed(self.seed, ds.subj, self.multi)
        sampler = EpochSampler(ds, shuffle, seed, pad, self.shard, block=block)
        if ds.role == "train" and self._skip_train_batches:
            sampler.skip = self._skip_train_batches * batch_size
        return DataLoader(
            ds,
            batch_size=batch_size,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=self.num_workers,
            persistent_workers=False,
            pin_memory=False,
        )

    def train_dataloader(self):
        b = self.train_batch_size()
        if not self.multi:
            loader = self._loader(
                self.dataset("train"), b, self.shuffle_train, self.drop_last, pad=True, block=b
            )
            self._skip_train_batches = 0
            return loader
        from pytorch_lightning.utilities import CombinedLoader

        loaders = {}
        for s, bs in zip(self.subjects, split_batch(b, len(self.subjects), self.batch_size_field)):
            loaders[batch_key(s)] = self._loader(
                self.dataset("train", s), bs, self.shuffle_train, self.drop_last, pad=True, block=bs
            )
        self._skip_train_batches = 0
        # every step holds a batch of each subject; the epoch ends with the subject whose loader ends first
        return CombinedLoader(loaders, mode="min_size")

    def _per_subject(self, name: str):
        loaders = [self._loader(self.dataset(name, s), self.eval_batch_size, False) for s in self.subjects]
        return loaders if self.multi else loaders[0]

    def val_dataloader(self):
        """One loader (one subject) or one per subject in subject order (``dataloader_idx`` = subject position)."""
        return self._per_subject("val")

    def test_dataloader(self):
        return self._per_subject("test")

    def predict_dataloader(self) -> DataLoader:
        if self.multi:
            raise ConfigError(
                f"subj={self.subjects}: predict stages run one subject at a time; pass subj=<n> and the "
                f"multi-subject checkpoint (its adapter for that subject is used)."
            )
        return self._loader(self.dataset("predict"), self.eval_batch_size, False)
