"""Simulated cc2017: a procedural movie and a simulated brain that responds to it, in the neuroclips schema.

The movie is a sequence of scenes. A scene shows one object of one of K classes (shapes), in one of C colours,
moving with a constant velocity over a background (gradient or stripes in a scene colour). Scenes change at frame
granularity, so some clips contain a scene cut. Captions are generated from the scene parameters.

Each subject's brain has three kinds of voxels:

* semantic voxels respond linearly to the object's class and colour (one-hot, averaged over the clip's frames);
* retinotopic voxels have a Gaussian receptive field on a coarse grid and respond to local luminance,
  red-green, blue-yellow contrast or motion energy inside it;
* silent voxels carry only noise.

The response of clip t mixes in clip t-1 (hemodynamic lag), is z-scored per voxel, and each repetition gets
independent Gaussian noise (2 repetitions for training clips, 10 for test clips). Everything derives from one
seed, so the same arguments always give identical arrays.

Across subjects (what cross-subject training, ``subj=all``, can exploit or not): all subjects watch the same movie,
so the semantics (class, colour) and the retinotopic features they respond to are shared; each subject draws its
own brain from its own seed stream (``SeedSequence(seed).spawn``, stream s for subject s): its own voxel count, its
own assignment of voxels to kinds, its own semantic mixing weights, receptive fields and per-voxel noise levels.
A subject's data do not depend on which other subjects are simulated.

Usage: ``python -m neuroclips.data.simulate out=data/simulated_tiny.h5 scale=tiny [seed=0] [n_train=...]``
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import h5py
import numpy as np

from neuroclips.data import schema
from neuroclips.utils.atomic import atomic_path

CLASSES = ("circle", "square", "triangle", "cross", "ring", "diamond", "bar", "star")
COLOURS = {
    "red": (0.9, 0.15, 0.1),
    "green": (0.15, 0.8, 0.2),
    "blue": (0.15, 0.3, 0.95),
    "yellow": (0.95, 0.85, 0.1),
    "magenta": (0.85, 0.2, 0.8),
    "cyan": (0.1, 0.85, 0.85),
    "white": (0.95, 0.95, 0.95),
    "orange": (1.0, 0.55, 0.1),
}
BACKGROUNDS = ("gradient", "stripes", "plain")
GRID = 16  # retinotopic feature grid (GRID x GRID)


@dataclass(frozen=True)
class SimulationConfig:
    n_train: int = 600
    n_test: int = 60
    image_size: int = 64
    test_image_size: int | None = None  # cc2017 test frames may be larger (256) than training frames (224)
    segment_len: int = 60  # clips per movie segment
    mean_scene_frames: float = 14.0  # mean scene length in frames (6 frames per clip)
    subjects: tuple[int, ...] = (1, 2, 3)
    voxels: dict[int, int] = field(default_factory=lambda: dict(schema.SUBJECT_VOXELS))
    semantic_fraction: float = 0.3
    retinotopic_fraction: float = 0.4
    hrf_previous_weight: float = 0.3
    noise_std: float = 1.0  # per-repetition noise, relative to unit signal variance
    seed: int = 0


SCALES = {
    "tiny": SimulationConfig(),
    "paper": SimulationConfig(
        n_train=4320, n_test=1200, image_size=224, test_image_size=256, segment_len=240
    ),
}


# ----------------------------------------------------------------------------------------------- the movie
@dataclass
class Scene:
    cls: int
    colour: int
    bg: int
    bg_colour: int
    bg_colour2: int
    start: np.ndarray  # (2,) normalised position at scene start
    velocity: np.ndarray  # (2,) per frame
    size: float


def _shape_mask(cls: int, xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, r: float) -> np.ndarray:
    dx, dy = xx - cx, yy - cy
    name = CLASSES[cls]
    if name == "circle":
        return (dx**2 + dy**2) <= r**2
    if name == "square":
        return (np.abs(dx) <= r * 0.85) & (np.abs(dy) <= r * 0.85)
    if name == "triangle":
        return (dy <= r * 0.8) & (dy >= -r * 0.8 + 2 * np.abs(dx) * 0.9)
    if name == "cross":
        return ((np.abs(dx) <= r * 0.3) & (np.abs(dy) <= r)) | ((np.abs(dy) <= r * 0.3) & (np.abs(dx) <= r))
    if name == "ring":
        d2 = dx**2 + dy**2
        return (d2 <= r**2) & (d2 >= (0.55 * r) ** 2)
    if name == "diamond":
        return (np.abs(dx) + np.abs(dy)) <= r
    if name == "bar":
        return (np.abs(dx) <= r) & (np.abs(dy) <= r * 0.3)
    # star: a diamond plus a cross
    return ((np.abs(dx) + np.abs(dy)) <= r * 0.7) | (
        ((np.abs(dx) <= r * 0.15) | (np.abs(dy) <= r * 0.15)) & (np.maximum(np.abs(dx), np.abs(dy)) <= r)
    )


def _random_scene(rng: np.random.Generator) -> Scene:
    n_col = len(COLOURS)
    colour = int(rng.integers(n_col))
    bg_colour = int(rng.integers(n_col))
    while bg_colour == colour:
        bg_colour = int(rng.integers(n_col))
    speed = rng.uniform(0.0, 0.04)
    angle = rng.uniform(0, 2 * np.pi)
    return Scene(
        cls=int(rng.integers(len(CLASSES))),
        colour=colour,
        bg=int(rng.integers(len(BACKGROUNDS))),
        bg_colour=bg_colour,
        bg_colour2=int(rng.integers(n_col)),
        start=rng.uniform(0.3, 0.7, size=2),
        velocity=speed * np.array([np.cos(angle), np.sin(angle)]),
        size=float(rng.uniform(0.12, 0.25)),
    )


def _render(scene: Scene, frame_in_scene: int, size: int) -> np.ndarray:
    """One RGB frame, float32 (H, W, 3) in [0, 1]."""
    lin = (np.arange(size, dtype=np.float32) + 0.5) / size
    xx, yy = np.meshgrid(lin, lin)
    cols = list(COLOURS.values())
    c1 = np.array(cols[scene.bg_colour], np.float32) * 0.45
    c2 = np.array(cols[scene.bg_colour2], np.float32) * 0.25
    kind = BACKGROUNDS[scene.bg]
    if kind == "gradient":
        w = yy[..., None]
        img = c1 * (1 - w) + c2 * w
    elif kind == "stripes":
        w = (np.sin(xx * 2 * np.pi * 4 + frame_in_scene * 0.3) > 0).astype(np.float32)[..., None]
        img = c1 * (1 - w) + c2 * w
    else:
        img = np.broadcast_to(c1, (size, size, 3)).copy()
    pos = scene.start + scene.velocity * frame_in_scene
    pos = 0.15 + np.abs(((pos - 0.15) % 1.4) - 0.7)  # bounce inside [0.15, 0.85]
    mask = _shape_mask(scene.cls, xx, yy, pos[0], pos[1], scene.size)
    img = np.where(mask[..., None], np.array(cols[scene.colour], np.float32), img)
    return img.astype(np.float32)


def _caption(scene: Scene) -> str:
    vx, vy = scene.velocity
    if np.hypot(vx, vy) < 0.008:
        motion = "standing still"
    else:
        motion = "moving " + (
            ("right" if vx > 0 else "left") if abs(vx) > abs(vy) else ("down" if vy > 0 else "up")
        )
    colour = list(COLOURS)[scene.colour]
    bg_colour = list(COLOURS)[scene.bg_colour]
    kind = BACKGROUNDS[scene.bg]
    bg = (
        f"{_article(bg_colour)} {bg_colour} {kind} background"
        if kind != "plain"
        else f"a plain {bg_colour} background"
    )
    return f"{_article(colour)} {colour} {CLASSES[scene.cls]} {motion} over {bg}"


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


@dataclass
class Movie:
    frames: np.ndarray  # uint8 (N, 6, 3, H, W)
    captions: list[str]
    labels: np.ndarray  # int32 (N,) class of frame 2
    colours: np.ndarray  # int32 (N,)
    segment: np.ndarray
    scene_cut: np.ndarray
    semantic: np.ndarray  # float32 (N, K + C) class/colour one-hot averaged over frames
    retinotopic: np.ndarray  # float32 (N, 4, GRID, GRID) luminance, R-G, B-Y, motion


def make_movie(
    n: int, size: int, segment_len: int, mean_scene_frames: float, rng: np.random.Generator
) -> Movie:
    fpc = schema.FRAMES_PER_CLIP
    frames = np.zeros((n, fpc, 3, size, size), np.uint8)
    k, c = len(CLASSES), len(COLOURS)
    semantic = np.zeros((n, k + c), np.float32)
    retino = np.zeros((n, 4, GRID, GRID), np.float32)
    captions, labels, colours = [], np.zeros(n, np.int32), np.zeros(n, np.int32)
    scene_cut = np.zeros(n, bool)
    segment = (np.arange(n) // segment_len).astype(np.int32)
    scene, age, left = None, 0, 0
    prev_small = None
    for i in range(n):
        if i % segment_len == 0:
            left = 0  # every segment starts with a new scene
            prev_small = None
        scene_ids = []
        for j in range(fpc):
            if left <= 0:
                scene = _random_scene(rng)
                age, left = 0, max(2, int(rng.exponential(mean_scene_frames)))
            img = _render(scene, age, size)
            frames[i, j] = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8).transpose(2, 0, 1)
            semantic[i, scene.cls] += 1.0 / fpc
            semantic[i, k + scene.colour] += 1.0 / fpc
            small = (
                img.reshape(GRID, size // GRID, GRID, size // GRID, 3).mean(axis=(1, 3))
                if size % GRID == 0
                else _resize_mean(img, GRID)
            )
            lum = small.mean(-1)
            retino[i, 0] += lum / fpc
            retino[i, 1] += (small[..., 0] - small[..., 1]) / fpc
            retino[i, 2] += (small[..., 2] - 0.5 * (small[..., 0] + small[..., 1])) / fpc
            if prev_small is not None:
                retino[i, 3] += np.abs(lum - prev_small.mean(-1)) / fpc
            prev_small = small
            scene_ids.append(id(scene))
            if j == 2:
                captions.append(_caption(scene))
                labels[i], colours[i] = scene.cls, scene.colour
            age += 1
            left -= 1
        scene_cut[i] = len(set(scene_ids)) > 1
    return Movie(frames, captions, labels, colours, segment, scene_cut, semantic, retino)


def _resize_mean(img: np.ndarray, grid: int) -> np.ndarray:
    h = img.shape[0]
    edges = np.linspace(0, h, grid + 1).astype(int)
    out = np.zeros((grid, grid, 3), np.float32)
    for a in range(grid):
        for b in range(grid):
            out[a, b] = img[edges[a] : edges[a + 1], edges[b] : edges[b + 1]].mean(axis=(0, 1))
    return out


# ----------------------------------------------------------------------------------------------- the brain
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


# ----------------------------------------------------------------------------------------------- writing
def simulate(out: str | Path, cfg: SimulationConfig, progress: bool = True) -> Path:
    """Write a simulated dataset to ``out`` atomically; return its path."""
    out = Path(out)
    root = np.random.SeedSequence(cfg.seed)
    movie_seq, *subject_seqs = root.spawn(1 + max(cfg.subjects))
    movie_rng = np.random.default_rng(movie_seq)
    t0 = time.time()
    sizes = {"train": cfg.image_size, "test": cfg.test_image_size or cfg.image_size}
    counts = {"train": cfg.n_train, "test": cfg.n_test}
    movies = {}
    with atomic_path(out) as tmp:
        with h5py.File(tmp, "w") as f:
            schema.write_root_attrs(f, "simulated", {s: cfg.voxels[s] for s in cfg.subjects})
            f.attrs["simulation_seed"] = cfg.seed
            f.attrs["classes"] = list(CLASSES)
            f.attrs["colours"] = list(COLOURS)
            for split in schema.SPLITS:
                m = make_movie(counts[split], sizes[split], cfg.segment_len, cfg.mean_scene_frames, movie_rng)
                movies[split] = m
                ds = schema.create_stimuli(
                    f, split, counts[split], sizes[split], sizes[split], with_labels=True
                )
                ds["frames"][...] = m.frames
                ds["captions"][...] = m.captions
                ds["clip_index"][...] = np.arange(counts[split])
                ds["segment"][...] = m.segment if split == "train" else m.segment + 1000
                ds["scene_cut"][...] = m.scene_cut
                ds["labels"][...] = m.labels
                f[f"stimuli/{split}"].create_dataset("colours", data=m.colours)
            for s in cfg.subjects:
                rng = np.random.default_rng(subject_seqs[s - 1])
                brain = make_brain(cfg.voxels[s], cfg, rng)
                for split in schema.SPLITS:
                    sig = brain_response(brain, movies[split])
                    reps = noisy_repetitions(sig, schema.REPETITIONS[split], brain, rng)
                    d = schema.create_fmri(f, s, split, counts[split], cfg.voxels[s])
                    d[...] = reps.astype(np.float16)
                if progress:
                    print(
                        f"[simulate] subject {s}: {cfg.voxels[s]} voxels written ({time.time() - t0:.1f}s)",
                        file=sys.stderr,
                    )
    if progress:
        print(
            f"[simulate] wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {time.time() - t0:.1f}s)",
            file=sys.stderr,
        )
    return out


def config_for(scale: str, **overrides) -> SimulationConfig:
    if scale not in SCALES:
        raise ValueError(f"simulate: scale expected one of {sorted(SCALES)}, found {scale!r}.")
    cfg = SCALES[scale]
    fields = set(SimulationConfig.__dataclass_fields__)
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(f"simulate: unknown option(s) {sorted(unknown)}; expected some of {sorted(fields)}.")
    if "subjects" in overrides and isinstance(overrides["subjects"], str):
        overrides["subjects"] = tuple(int(x) for x in overrides["subjects"].split(","))
    return replace(cfg, **overrides)


def ensure_simulated(path: str | Path, scale: str = "tiny") -> Path:
    """Create the simulated file at ``path`` if it does not exist yet (race-safe: atomic rename)."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        simulate(path, config_for(scale))
    return path


def _parse(argv: list[str]) -> dict[str, str]:
    out = {}
    for a in argv:
        if "=" not in a:
            raise SystemExit(
                f"simulate: expected key=value arguments (e.g. out=data/sim.h5 scale=tiny), found {a!r}."
            )
        k, v = a.split("=", 1)
        out[k.lstrip("-")] = v
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    out = args.pop("out", None)
    scale = args.pop("scale", "tiny")
    if out is None:
        raise SystemExit("simulate: missing out=PATH (where to write the HDF5 file).")
    typed: dict = {}
    for k, v in args.items():
        fdef = SimulationConfig.__dataclass_fields__.get(k)
        if fdef is None:
            raise SystemExit(
                f"simulate: unknown option {k!r}; expected some of {sorted(SimulationConfig.__dataclass_fields__)}."
            )
        typed[k] = (
            v
            if k == "subjects"
            else (
                float(v) if fdef.type in ("float",) else int(v) if fdef.type in ("int", "int | None") else v
            )
        )
    try:
        simulate(out, config_for(scale, **typed))
    except ValueError as e:
        raise SystemExit(str(e)) from e
    return 0


if __name__ == "__main__":
    from neuroclips.utils.environment import apply_environment_defaults

    apply_environment_defaults()
    raise SystemExit(main())
