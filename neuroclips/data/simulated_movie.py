"""The simulated movie (see ``neuroclips.data.simulate``): scenes of one shape-class object in one colour moving over
a background, rendered into 6-frame clips, with captions from the scene parameters and the per-clip features a
simulated brain responds to (class/colour one-hot, retinotopic luminance, colour opponency and motion energy)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuroclips.data import schema
from neuroclips.utils.images import to_uint8

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
            frames[i, j] = to_uint8(img).transpose(2, 0, 1)
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
