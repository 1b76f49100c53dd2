"""A simulated subject's brain (see ``neuroclips.data.simulate``): semantic, retinotopic and silent voxels, their
responses to a simulated movie with a hemodynamic lag, and noisy repetitions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from neuroclips.data.simulated_movie import CLASSES, COLOURS, GRID, Movie

if TYPE_CHECKING:
    from neuroclips.data.simulate import SimulationConfig


@dataclass
class Brain:
    semantic_w: np.ndarray  # (K + C, V)
    retino_w: np.ndarray  # (4 * GRID * GRID, V)
    noise_std: np.ndarray  # (V,)
    hrf_previous_weight: float


def make_brain(voxels: int, cfg: SimulationConfig, rng: np.random.Generator) -> Brain:
    n_sem = int(voxels * cfg.semantic_fraction)
    n_ret = int(voxels * cfg.retinotopic_fraction)
    kinds = np.zeros(voxels, np.int8)
    perm = rng.permutation(voxels)
    kinds[perm[:n_sem]] = 1
    kinds[perm[n_sem : n_sem + n_ret]] = 2
    d_sem = len(CLASSES) + len(COLOURS)
    semantic_w = rng.normal(size=(d_sem, voxels)).astype(np.float32) * (kinds == 1)
    # retinotopic: each voxel picks one feature channel and a Gaussian receptive field on the grid
    centres = rng.uniform(0, GRID, size=(voxels, 2))
    sigmas = rng.uniform(0.8, 2.5, size=voxels)
    channel = rng.integers(0, 4, size=voxels)
    g = np.arange(GRID) + 0.5
    gy, gx = np.meshgrid(g, g, indexing="ij")
    retino_w = np.zeros((4, GRID, GRID, voxels), np.float32)
    idx = np.nonzero(kinds == 2)[0]
    for v in idx:
        rf = np.exp(-((gx - centres[v, 0]) ** 2 + (gy - centres[v, 1]) ** 2) / (2 * sigmas[v] ** 2))
        retino_w[channel[v], :, :, v] = (rf / rf.sum()) * rng.choice([-1.0, 1.0])
    noise = cfg.noise_std * rng.uniform(0.8, 1.25, size=voxels).astype(np.float32)
    return Brain(semantic_w, retino_w.reshape(4 * GRID * GRID, voxels), noise, cfg.hrf_previous_weight)


def brain_response(brain: Brain, movie: Movie) -> np.ndarray:
    """Noise-free, z-scored response (N, V) to a movie, with the hemodynamic lag inside each segment."""
    s = movie.semantic @ brain.semantic_w + movie.retinotopic.reshape(len(movie.labels), -1) @ brain.retino_w
    prev = np.concatenate([s[:1], s[:-1]], axis=0)
    first = np.r_[True, movie.segment[1:] != movie.segment[:-1]]
    prev[first] = s[first]
    r = (1 - brain.hrf_previous_weight) * s + brain.hrf_previous_weight * prev
    mu, sd = r.mean(0, keepdims=True), r.std(0, keepdims=True)
    return ((r - mu) / np.where(sd > 1e-8, sd, 1.0)).astype(np.float32)


def noisy_repetitions(signal: np.ndarray, reps: int, brain: Brain, rng: np.random.Generator) -> np.ndarray:
    out = np.empty((signal.shape[0], reps, signal.shape[1]), np.float32)
    for r in range(reps):
        out[:, r] = signal + rng.normal(size=signal.shape).astype(np.float32) * brain.noise_std
    return out
