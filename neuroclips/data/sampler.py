"""Which clips each process reads, and in which order: the rows held out for validation, the per-process share of
a global batch, and the epoch order (a function of ``(seed, epoch)`` only, sharded over DDP ranks).

Used by ``CC2017DataModule`` (neuroclips/data/datamodule.py) and, for the held-out rows, by whatever must hold out
the same clips (the stand-in fits, the mean-frame baseline).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from neuroclips.errors import ConfigError

if TYPE_CHECKING:
    from neuroclips.data.clip_dataset import ClipDataset


def process_batch_size(global_batch: int, world: int, field: str = "datamodule.batch_size") -> int:
    """Clips per process of a global batch (one optimizer step) over ``world`` DDP processes; refuses a remainder."""
    global_batch, world = int(global_batch), max(int(world), 1)
    if global_batch % world:
        raise ConfigError(
            f"{field}: expected a multiple of the {world} processes, found {global_batch} (a batch size is the "
            f"global batch of one optimizer step, divided over the DDP processes)."
        )
    return global_batch // world


def validation_rows(n: int, fraction: float, block: int, seed: int) -> np.ndarray:
    """Rows of the training split held out for validation: ``round(fraction * n / block)`` contiguous blocks."""
    if fraction <= 0:
        return np.zeros(0, np.int64)
    n_blocks_total = n // block
    k = max(1, int(round(fraction * n / block)))
    if k >= n_blocks_total:
        raise ConfigError(
            f"data.val_fraction={fraction} with data.val_block={block} would hold out {k} of {n_blocks_total} blocks "
            f"of the {n} training clips; expected fewer (lower val_fraction or val_block)."
        )
    rng = np.random.default_rng(seed)
    blocks = np.sort(rng.choice(n_blocks_total, size=k, replace=False))
    return np.concatenate([np.arange(b * block, (b + 1) * block) for b in blocks]).astype(np.int64)


class EpochSampler(Sampler[int]):
    """Order of one epoch as a function of ``(seed, epoch)`` only, sharded over DDP ranks.

    The epoch is read from the dataset's shared epoch counter when iteration starts, so a run resumed at epoch k
    replays epoch k exactly as an unbroken run does. Under DDP, ``shard="strided"`` gives each rank every
    ``world``-th index; ``shard="contiguous"`` gives rank r one contiguous block (what a temporal window spanning
    consecutive clips needs). With ``pad=True`` (training) every rank gets the same number of items.

    ``block`` (training: the per-process batch) makes both shardings equal the one-process epoch step by step: the
    rank batches of step k together hold the items of the one-process batch k. Strided sharding does so by itself;
    contiguous sharding with a block cuts each global batch of ``block * world`` consecutive items into ``world``
    consecutive pieces (rank r gets piece r), instead of one contiguous block of the epoch per rank.
    """

    def __init__(
        self,
        dataset: ClipDataset,
        shuffle: bool,
        seed: int,
        pad: bool,
        shard: str = "strided",
        block: int | None = None,
    ):
        if shard not in ("strided", "contiguous"):
            raise ValueError(f"datamodule.shard: expected 'strided' or 'contiguous', found {shard!r}.")
        self.dataset, self.shuffle, self.seed, self.pad, self.shard = dataset, shuffle, seed, pad, shard
        self.block = block
        self.skip = 0  # items of the next epoch to leave out (set once by a mid-epoch resume)

    @staticmethod
    def _dist() -> tuple[int, int]:
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def _shard(self, idx: list[int], rank: int, world: int) -> list[int]:
        if world == 1:
            return idx
        if self.pad and len(idx) % world:
            idx = idx + idx[: world - len(idx) % world]
        if self.shard == "strided":
            return idx[rank::world]
        step = len(idx) if not self.block else self.block * world
        out: list[int] = []
        for s in range(0, len(idx), step):
            piece = idx[s : s + step]
            m = len(piece)
            out += piece[rank * m // world : (rank + 1) * m // world]
        return out

    def __iter__(self):
        n = len(self.dataset)
        rank, world = self._dist()
        if self.shuffle:
            g = torch.Generator().manual_seed(int(self.seed) * 1_000_003 + self.dataset.epoch)
            idx = torch.randperm(n, generator=g).tolist()
        else:
            idx = list(range(n))
        idx = self._shard(idx, rank, world)
        if self.skip:  # resumed in the middle of this epoch: its first items were trained on before the kill
            idx, self.skip = idx[self.skip :], 0
        return iter(idx)

    def __len__(self) -> int:
        rank, world = self._dist()
        return len(self._shard(list(range(len(self.dataset))), rank, world))
