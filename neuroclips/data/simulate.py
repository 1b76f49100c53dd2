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
from neuroclips.data.simulated_brain import brain_response, make_brain, noisy_repetitions
from neuroclips.data.simulated_movie import CLASSES, COLOURS, make_movie
from neuroclips.utils.atomic import atomic_path


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
